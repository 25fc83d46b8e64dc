"""Bit identity of the read with the kernels as they were before the speed work (issue 16).

Committed reproduction results and README figures depend on the seeded normal stream and
on the rounding of every read, so the faster kernels must give exactly the same bits:
each new kernel against its frozen twin (tests/crossbar/frozen_kernels.py, main 4e3dc05),
and the whole fast read (:meth:`ProgrammedArray.mvm`) against the old pipeline assembled
from the frozen kernels, on the same products (same BLAS calls, same machine).
"""
from __future__ import annotations

import numpy as np
import pytest

import crossbar
from crossbar import _kernels as K

import frozen_kernels as F

TABLES = (K._KN, K._WN, K._FN)


def _seeds(n):
    return [int(s) for s in np.random.default_rng(2026).integers(0, 1 << 63, size=n)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fill_normal_is_the_frozen_stream(dtype):
    """200 seeds x sizes around the edges (1, a row, 1000) and one long buffer (70000, about
    2000 slow-path draws, every layer and the tail hit)."""
    for size in (1, 2, 7, 512, 1000):
        for seed in _seeds(200):
            new, old = np.empty(size, dtype), np.empty(size, dtype)
            K.fill_normal(new, seed, *TABLES)
            F.fill_normal(old, seed, *TABLES)
            assert new.tobytes() == old.tobytes(), (size, seed)
    for seed in _seeds(3):
        new, old = np.empty(70000, dtype), np.empty(70000, dtype)
        K.fill_normal(new, seed, *TABLES)
        F.fill_normal(old, seed, *TABLES)
        assert new.tobytes() == old.tobytes(), seed
        assert np.abs(old).max() > K._ZIG_R  # the tail beyond r was drawn


def _dac_inputs(rng, dtype, levels):
    """Random inputs plus values on and next to every quantisation boundary, exact zeros,
    -0.0, saturating and large (but < 2^53 L) values."""
    L = max(levels, 1)
    k = np.arange(-L - 2, L + 3)
    edges = np.concatenate([(k + 0.5) / L, k / L, np.nextafter((k + 0.5) / L, 0), np.nextafter((k + 0.5) / L, 2),
                            [0.0, -0.0, 3.0, -7.5, 1e6, -1e9]])
    x = np.concatenate([rng.uniform(-1.5, 1.5, size=3 * edges.size), edges])
    return x.reshape(4, -1).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("abs_max", [False, True])
@pytest.mark.parametrize("levels, clip", [(127, True), (127, False), (0, True), (0, False), (7, True), (1, False)])
def test_dac_kernels_match_frozen(rng, dtype, abs_max, levels, clip):
    x = _dac_inputs(rng, dtype, levels)
    nb, n = x.shape
    dac = (abs_max, 0.75, levels, clip)
    bounds = np.array([0, n // 3, n], np.int64)
    outs = {}
    for mod in (K, F):
        o, q, r = np.empty_like(x), np.empty_like(x), np.empty(nb, dtype)
        o2, r2 = np.empty_like(x), np.empty(nb, dtype)
        o3, r3, ss = np.empty_like(x), np.empty(nb, dtype), np.empty((2, nb), dtype)
        c1 = mod.dac_rows(x, dac, 1.25, o, r)
        c2 = mod.dac_rows_squares(x, dac, 1.25, o2, q, r2)
        c3 = mod.dac_rows_tile_sumsq(x, dac, 1.25, o3, r3, bounds, ss)
        outs[mod] = (o, r, o2, q, r2, o3, r3, ss), (c1, c2, c3)
    (new, new_c), (old, old_c) = outs[K], outs[F]
    for a, b in zip(new, old):
        assert a.tobytes() == b.tobytes()
    assert [c[0] for c in new_c] == list(old_c)  # saturation counts
    assert [c[1] for c in new_c] == [0, 0, 0]    # no NaN/Inf inputs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dac_counts_nonfinite_inputs(dtype):
    x = np.array([[0.5, np.nan, 2.0], [np.inf, -np.inf, 0.0]], dtype)
    for kernel in (K.dac_rows, lambda *a: K.dac_rows_squares(*a[:4], np.empty_like(x), a[4])):
        for dac in ((False, 1.0, 127, True), (True, 1.0, 0, False)):
            _, bad = kernel(x, dac, 1.0, np.empty_like(x), np.empty(2, dtype))
            assert bad == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("adc", [(True, 127, 2.0, True), (True, 127, 2.0, False), (True, 0, 2.0, True),
                                 (True, 7, 0.5, True), (False, 0, 1.0, False)])
@pytest.mark.parametrize("first, last", [(True, True), (True, False), (False, True), (False, False)])
def test_adc_kernels_match_frozen(rng, dtype, adc, first, last):
    R = adc[2]
    L = max(adc[1], 1)
    k = np.arange(-L - 2, L + 3)
    edges = R * np.concatenate([(k + 0.5) / L, np.nextafter((k + 0.5) / L, 0), [0.0, -0.0, 5.0, -1e7]])
    p = np.concatenate([rng.uniform(-3, 3, size=12 * 64 - edges.size), edges]).reshape(12, 64).astype(dtype)
    scale = rng.uniform(0.5, 2, 64).astype(dtype)
    rs = rng.uniform(0.5, 2, 12).astype(dtype)
    acc0 = rng.normal(size=(12, 64)).astype(dtype)
    z = rng.normal(size=(12, 64)).astype(dtype)
    var = (rng.random((1, 12, 64)) * 0.1).astype(dtype)
    rows, cols = (rng.random((2, 12)) * 0.1).astype(dtype), rng.random((2, 64)).astype(dtype)
    for call in (lambda mod, acc: mod.adc_accumulate(p, scale, adc, acc, first, last, rs),
                 lambda mod, acc: mod.noise_adc_accumulate(p, z, var, rows[:1], cols[:1], scale, adc, acc, first, last,
                                                           rs),
                 lambda mod, acc: mod.noise_adc_accumulate(p, z, var[:0], rows, cols, scale, adc, acc, first, last,
                                                           rs)):
        a_new, a_old = acc0.copy(), acc0.copy()
        assert call(K, a_new) == call(F, a_old)
        assert a_new.tobytes() == a_old.tobytes()


def _tile_inputs(rng, dtype, nt, terms, nb, m):
    """Inputs of a noise + ADC kernel over ``nt`` tiles of ``nb`` x ``m``: (parts, dense
    variances (empty unless "dense" in ``terms``), rank-one row and column factors (one per
    "uniform" / "out" in ``terms``), column scales, row scales), drawn from ``rng`` in that order."""
    parts = rng.normal(size=(nt, nb, m)).astype(dtype)
    var = (rng.random((nt, nb, m)) * 0.05).astype(dtype) if "dense" in terms else np.empty((0, nb, m), dtype)
    nr = terms.count("uniform") + terms.count("out")
    rows = (rng.random((nt, nr, nb)) * 0.05).astype(dtype)
    cols = rng.random((nt, nr, m)).astype(dtype)
    scale = rng.uniform(0.5, 2, (nt, m)).astype(dtype)
    rs = rng.uniform(0.5, 2, nb).astype(dtype)
    return parts, var, rows, cols, scale, rs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nt", [1, 2, 3])
@pytest.mark.parametrize("terms", ["dense", "dense+out", "uniform", "out", "uniform+out"])
def test_noise_adc_tiles_is_normals_then_each_tile(rng, dtype, nt, terms):
    """The fused kernel (normals drawn a row at a time inside) equals the frozen pipeline:
    a (T, B, m) buffer of normals, then one noise + ADC call per tile."""
    nb, m = 5, 37
    parts, var, rows, cols, scale, rs = _tile_inputs(rng, dtype, nt, terms, nb, m)
    adc = (True, 127, 1.5, True)
    for seed in _seeds(5):
        acc_new, acc_old = np.empty((nb, m), dtype), np.empty((nb, m), dtype)
        c_new = K.noise_adc_tiles(parts, seed, var, rows, cols, scale, adc, acc_new, rs, *TABLES)
        z = np.empty((nt, nb, m), dtype)
        F.fill_normal(z.reshape(-1), seed, *TABLES)
        c_old = 0
        for k in range(nt):
            c_old += F.noise_adc_accumulate(parts[k], z[k], var[k:k + 1] if var.shape[0] else var, rows[k], cols[k],
                                            scale[k], adc, acc_old, k == 0, k == nt - 1, rs)
        assert c_new == c_old
        assert acc_new.tobytes() == acc_old.tobytes()


def _frozen_bit_slices(xn, bits, k, n_sl):
    """ProgrammedArray._bit_slices of main 4e3dc05 (numpy)."""
    levels = (1 << (bits - 1)) - 1
    codes = np.rint(xn.astype(np.float64) * levels).astype(np.int64) & ((1 << bits) - 1)
    out = np.empty((n_sl,) + xn.shape, xn.dtype)
    coef = []
    for s in range(n_sl):
        width = min(k, bits - k * s)
        d = (codes >> (k * s)) & ((1 << width) - 1)
        if s == n_sl - 1:
            d = np.where(d >= (1 << (width - 1)), d - (1 << width), d)
            m = 1 << (width - 1)
        else:
            m = (1 << width) - 1
        out[s] = d / m
        coef.append((1 << (k * s)) * m / levels)
    return out.reshape(n_sl * xn.shape[0], xn.shape[1]), coef


def _keyed_normals(seed, nt, nr, m):
    """The "boxmuller" normals of a read: row b of tile k from derive_key(seed, k nr + b), float32."""
    from crossbar._normals import derive_key, fill_normals

    z = np.empty((nt, nr, m), np.float32)
    for k in range(nt):
        for b in range(nr):
            fill_normals(z[k, b], np.uint64(derive_key(np.uint64(seed), np.uint64(k * nr + b))))
    return z


def _boxmuller_tile(p, z, var, rows, cols, scale, adc, acc, first, last, row_scale):
    """One tile of the "boxmuller" read in numpy, the operations of noise_adc_tiles_bm in its
    order (float64 unless said): u = (p + sqrt(v) z) k, where the general read noise alone
    (one dense term, no rank-one term) forms sqrt(v) z in the dtype of v, other layouts sum
    v = var + rows cols in float64; k = L / R (1 / R without levels, 1 without an ADC);
    code = floor(clip(u, -L, L) + 0.5) (clip(u, -1, 1) without levels); out = code f,
    f = (R / L) scale (R scale, scale); + acc unless first; * row_scale on the last tile.
    A float32 read's general read noise into a quantising, clipping ADC is all float32
    (k, L and f rounded once from float64; _dense_quantised_row32).
    Updates ``acc`` in place and returns the saturated conversions |u| > L (or > 1)."""
    on, levels, full_range, clip = adc
    if on and levels > 0:
        k, c = levels / full_range, full_range / levels
    elif on:
        k, c = 1.0 / full_range, full_range
    else:
        k, c = 1.0, 1.0
    f = c * scale.astype(np.float64)
    if (p.dtype == np.float32 and var.dtype == np.float32 and var.shape[0] == 1 and rows.shape[0] == 0
            and on and levels > 0 and clip):
        # a float32 read's general read noise into a quantising, clipping ADC: float32 throughout
        f32 = np.float32
        lv = f32(levels)
        u = (p + np.sqrt(var[0]) * z.astype(f32)) * f32(k)
        out = np.floor(np.clip(u, -lv, lv) + f32(0.5)) * f.astype(f32)
        if not first:
            out = out + acc
        if last:
            out = out * row_scale[:, None]
        acc[...] = out
        return int(np.count_nonzero(np.abs(u) > lv))
    p64 = p.astype(np.float64)
    if var.shape[0] == 1 and rows.shape[0] == 0:
        u = (p64 + (np.sqrt(var[0]) * z.astype(var.dtype)).astype(np.float64)) * k
    else:
        v = np.zeros(p.shape)
        for d in range(var.shape[0]):
            v = v + var[d].astype(np.float64)
        for r in range(rows.shape[0]):
            v = v + np.outer(rows[r].astype(np.float64), cols[r].astype(np.float64))
        u = (p64 + np.sqrt(v) * z.astype(np.float64)) * k
    clipped = 0
    if on and clip:
        clipped = int(np.count_nonzero(np.abs(u) > (levels if levels > 0 else 1.0)))
    if on and levels > 0:
        q = np.floor((np.clip(u, -levels, levels) if clip else u) + 0.5)
    elif on and clip:
        q = np.clip(u, -1.0, 1.0)
    else:
        q = u
    out = q * f
    if not first:
        out = out + acc.astype(np.float64)
    if last:
        out = out * row_scale.astype(np.float64)[:, None]
    acc[...] = out
    return clipped


def _dac32(x, params, alpha):
    """The float32 DAC of a float32 "boxmuller" read (crossbar._kernels.dac_rows32) in numpy
    float32: e = x float32(L / r), code = floor(clip(e, -L, L) + 0.5), out = code / L,
    out^2 = code^2 / L^2 (float32 divisions); without levels e = x float32(1 / r), out =
    clip(e, -1, 1), out^2 = out out. Returns (out, out^2, r alpha, saturated inputs: |x| > r,
    compared exactly)."""
    abs_max, r_in, levels, clip = params
    f32 = np.float32
    if abs_max:
        r = np.abs(x).max(axis=1).astype(np.float64)
        r[r == 0] = 1.0
    else:
        r = np.full(x.shape[0], float(r_in))
    if levels > 0:
        lv = f32(levels)
        e = x * (levels / r).astype(f32)[:, None]
        c = np.floor((np.clip(e, -lv, lv) if clip else e) + f32(0.5))
        xn, xsq = c / lv, (c * c) / f32(levels * levels)
    else:
        e = x * (1.0 / r).astype(f32)[:, None]
        xn = np.clip(e, f32(-1), f32(1)) if clip else e
        xsq = xn * xn
    clipped = int(np.count_nonzero(np.abs(x.astype(np.float64)) > r[:, None])) if clip else 0
    return xn, xsq, (r * alpha).astype(x.dtype), clipped


def _frozen_read(arr, x, t_s, rng, generator="legacy"):
    """The fast read of main 4e3dc05 (ProgrammedArray._mvm_analog, _mvm_bitserial and _noise_adc,
    output-referred read noise), assembled from the frozen kernels and the array's read state;
    with ``generator="boxmuller"`` the same pipeline with the row-keyed normals and noise term
    of :func:`crossbar._kernels.noise_adc_tiles_bm` (:func:`_keyed_normals`, :func:`_boxmuller_tile`)."""
    cfg = arr.config
    dt = x.dtype
    st = arr.read_state(t_s, dt)
    nb, n_out, nt = x.shape[0], arr.out_features, len(st.tiles)
    general = st.var is not None and st.var_col is None
    uniform = st.var is not None and st.var_col is not None
    dac = cfg.dac
    serial = dac.slice_bits is not None
    params = (dac.range_mode == "abs_max", arr.dac_range if dac.active else 1.0,
              (1 << (dac.bits - 1)) - 1 if dac.bits else 0, bool(dac.clip) and dac.active)
    xn, rs, xsq, sumsq = np.empty(x.shape, dt), np.empty(nb, dt), np.empty(x.shape, dt), np.empty((nt, nb), dt)
    coef = None
    dac32 = generator == "boxmuller" and dt == np.float32 and (not dac.bits or dac.bits <= 13)
    if dac32:   # the float32 DAC, then as the float64 DAC's outputs below
        xn, xsq, rs, _ = _dac32(x, params, float(st.alpha))
        for k, (a, b) in enumerate(st.tiles):   # float64 squares summed in order, as dac_rows_tile_sumsq
            sumsq[k] = np.add.accumulate(xn[:, a:b].astype(np.float64) ** 2, axis=1)[:, -1]
    if serial:
        if not dac32:
            F.dac_rows(x, params, float(st.alpha), xn, rs)
        xn, coef = _frozen_bit_slices(xn, dac.bits, dac.slice_bits, dac.slices)
        xsq = xn * xn
        sumsq = np.empty((nt, xn.shape[0]), dt)
        for k, (a, b) in enumerate(st.tiles):
            sumsq[k] = xsq[:, a:b].sum(axis=1)
        row_scale = np.ones(xn.shape[0], dt)
    elif dac32:
        pass
    elif general:
        F.dac_rows_squares(x, params, float(st.alpha), xn, xsq, rs)
    elif uniform:
        F.dac_rows_tile_sumsq(x, params, float(st.alpha), xn, rs, st.bounds, sumsq)
    else:
        F.dac_rows(x, params, float(st.alpha), xn, rs)
    if not serial:
        row_scale = rs
    nr = xn.shape[0]
    parts = np.empty((nt, nr, n_out), dt)
    for k, (a, b) in enumerate(st.tiles):
        np.matmul(xn if nt == 1 else xn[:, a:b], st.gn[a:b], out=parts[k])
    ov = arr._output_variance(parts, st, rs, coef)
    has_ov = ov.shape[0] == nr
    acc = np.empty((nr, n_out), dt)
    if not (general or uniform or has_ov):
        for k in range(nt):
            F.adc_accumulate(parts[k], st.scale[k], st.adc, acc, k == 0, k == nt - 1, row_scale)
    else:
        if generator == "legacy":
            z = np.empty((nt, nr, n_out), dt)
            F.standard_normal(rng, z)
        else:
            z = _keyed_normals(K.normal_seed(rng), nt, nr, n_out)
        tile_noise = F.noise_adc_accumulate if generator == "legacy" else _boxmuller_tile
        inv_s2 = st.inv_s2
        v = np.empty((1, nr, n_out), dt)
        for k, (a, b) in enumerate(st.tiles):
            if uniform and has_ov:
                rows, cols = np.stack([sumsq[k], ov]), np.stack([st.var_col[k], inv_s2[k]])
            elif uniform:
                rows, cols = sumsq[k:k + 1], st.var_col[k:k + 1]
            elif has_ov:
                rows, cols = ov[None], inv_s2[k:k + 1]
            else:
                rows, cols = np.empty((0, nr), dt), np.empty((0, n_out), dt)
            if general:
                np.matmul(xsq if nt == 1 else xsq[:, a:b], st.var[a:b], out=v[0])
            tile_noise(parts[k], z[k], v if general else np.empty((0, nr, n_out), dt), rows, cols,
                       st.scale[k], st.adc, acc, k == 0, k == nt - 1, row_scale)
    if not serial:
        return acc
    y = acc[:nb] * dt.type(coef[0])
    for s in range(1, len(coef)):
        y += dt.type(coef[s]) * acc[s * nb:(s + 1) * nb]
    y *= rs[:, None]
    return y


CASES = {
    "pcm": dict(),
    "pcm, 3 row tiles": dict(tile_rows=32, tile_cols=32),
    "pcm, output noise": dict(out_noise_sigma=0.05, tile_rows=48),
    "uniform read sigma": dict(read_sigma=crossbar.Law("poly", (0.3,)), tile_rows=40),
    "uniform read sigma, output noise": dict(read_sigma=crossbar.Law("poly", (0.3,)), out_noise_sigma=0.05,
                                             tile_rows=40),
    "no read noise, output noise": dict(read_sigma=None, out_noise_sigma=0.02, out_noise_convention="absolute"),
    "no noise (ADC only)": dict(read_sigma=None),
    "per-vector DAC range, no clip": dict(dac_range_mode="abs_max", adc_clip=False, tile_rows=64),
    "no converters": dict(dac_bits=None, adc_bits=None),
    "drift compensation": dict(drift_compensation=True, tile_rows=50),
    "bit-serial, 1 bit": dict(dac_slice_bits=1),
    "bit-serial, 3 bits, tiles, output noise": dict(dac_slice_bits=3, tile_rows=40, out_noise_sigma=0.05),
    "bit-serial, uniform read sigma": dict(dac_slice_bits=2, read_sigma=crossbar.Law("poly", (0.3,)), tile_rows=64),
    "bit-serial, 6-bit DAC, no noise": dict(dac_slice_bits=4, dac_bits=6, read_sigma=None),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_read_is_bit_identical_to_frozen_pipeline(case, dtype):
    w = np.random.default_rng(7).normal(size=(45, 100)) / 10.0
    x = np.random.default_rng(8).uniform(-1.3, 1.3, size=(9, 100)).astype(dtype)
    arr = crossbar.program(w, crossbar.preset("pcm", normal_generator="legacy", **CASES[case]), seed=3)
    for t_s, seed in ((3600.0, 11), (1.0, 12), (86400.0 * 365, 13)):
        y = arr.mvm(x, t_s=t_s, seed=seed)
        ref = _frozen_read(arr, x, t_s, crossbar.as_generator(seed))
        assert y.dtype == ref.dtype and y.tobytes() == ref.tobytes(), (t_s, seed)


def test_read_rejects_nonfinite_input_before_drawing():
    """The finiteness check moved into the DAC pass: same error, and the array's stream and
    clip counts are untouched by the refused call."""
    w = np.random.default_rng(7).normal(size=(6, 10))
    arr = crossbar.program(w, crossbar.preset("pcm", tile_rows=4), seed=3)
    twin = crossbar.program(w, crossbar.preset("pcm", tile_rows=4), seed=3)
    x = np.ones((2, 10))
    x[1, 3] = np.nan
    x[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"x must be finite, got 2 NaN/Inf value\(s\)"):
        arr.mvm(x)
    assert arr.clip_counts() == twin.clip_counts()
    good = np.full((2, 10), 0.5)
    assert arr.mvm(good).tobytes() == twin.mvm(good).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bits, k", [(8, 1), (8, 2), (8, 3), (6, 4), (5, 5), (12, 5)])
def test_bit_slices_match_frozen(rng, dtype, bits, k):
    L = (1 << (bits - 1)) - 1
    xn = (np.concatenate([np.arange(-L, L + 1), rng.integers(-L, L + 1, 201)]) / L).astype(dtype).reshape(-1, 2)
    n_sl = -(-bits // k)
    ref, ref_coef = _frozen_bit_slices(xn, bits, k, n_sl)
    out, out_sq = np.empty_like(ref), np.empty_like(ref)
    K.bit_slices(xn, L, bits, k, out, out_sq, True)
    assert out.tobytes() == ref.tobytes()
    assert out_sq.tobytes() == (ref * ref).tobytes()
    acc = rng.normal(size=(n_sl * xn.shape[0], 7)).astype(dtype)
    rs = rng.uniform(0.5, 2, xn.shape[0]).astype(dtype)
    y = np.empty((xn.shape[0], 7), dtype)
    K.shift_add(acc, np.array(ref_coef, dtype), rs, y)
    nb = xn.shape[0]
    want = acc[:nb] * dtype(ref_coef[0])
    for s in range(1, n_sl):
        want += dtype(ref_coef[s]) * acc[s * nb:(s + 1) * nb]
    want *= rs[:, None]
    assert y.tobytes() == want.tobytes()


@pytest.mark.parametrize("bitgen", [np.random.SFC64, np.random.PCG64, np.random.PCG64DXSM, np.random.Philox,
                                    np.random.MT19937])
def test_normal_seed_is_integers_draw(bitgen):
    """The fast seed draw equals ``rng.integers(0, 2**63)`` and leaves the generator in the same state."""
    a, b = np.random.Generator(bitgen(5)), np.random.Generator(bitgen(5))
    for _ in range(2000):
        assert K.normal_seed(a) == int(b.integers(0, 1 << 63))
    assert a.random(8).tobytes() == b.random(8).tobytes()  # the same state after the draws


@pytest.mark.parametrize("kw", [dict(), dict(tile_rows=40), dict(adc_bits=None, tile_rows=40)])
def test_output_column_mean_averages_each_tile_column(kw):
    """``read_noise_path="output_column_mean"`` (an approximation, opt-in) reads with every
    tile column's read-noise variance replaced by its mean: the uniform path, no variance
    product; the default path is untouched."""
    w = np.random.default_rng(7).normal(size=(45, 100)) / 10.0
    cfg = crossbar.preset("pcm", **kw)
    exact = crossbar.program(w, cfg, seed=3).read_state(3600.0, np.float64)
    approx_arr = crossbar.program(w, cfg.replace(read_noise_path="output_column_mean"), seed=3)
    approx = approx_arr.read_state(3600.0, np.float64)
    assert exact.var_col is None and approx.var_col is not None
    for k, (a, b) in enumerate(exact.tiles):
        np.testing.assert_allclose(approx.var_col[k], exact.var[a:b].mean(axis=0), rtol=1e-12)
    # for an input spread evenly over the rows the approximate variance is the exact one
    ones = np.ones((1, 100))
    for k, (a, b) in enumerate(exact.tiles):
        np.testing.assert_allclose((b - a) * approx.var_col[k], (ones[:, a:b] @ exact.var[a:b])[0], rtol=1e-12)
    assert np.isfinite(approx_arr.mvm(np.full((3, 100), 0.3), t_s=3600.0)).all()
    with pytest.raises(ValueError, match="read_noise_path"):
        crossbar.preset("pcm", read_noise_path="column_mean")

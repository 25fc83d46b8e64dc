"""The float32 arithmetic of a float32 "boxmuller" read (issue 16): what it may change and what not.

A float32 read with the default generator converts its inputs in float32
(:func:`crossbar._kernels.dac_rows32` and co., chosen by ``st.dac32``: "boxmuller" and at
most 13 DAC bits) and, in the common layout (general read noise alone into a quantising,
clipping ADC), adds the read noise and quantises in float32 (``_dense_quantised_row32`` in
:func:`crossbar._kernels.noise_adc_tiles_bm`); :meth:`ProgrammedArray._read_plain` reads that
common layout without the general path's glue. Pinned here, each against the float64
arithmetic it replaced (u = 2^-24, the unit roundoff of float32):

a. DAC *values*: inputs at code centres and at the clip edges give bit for bit the float64
   DAC's values, squares, row scales and saturation counts (2 to 13 bits).
b. DAC *codes* of random inputs differ from the float64 DAC's only by one code, only inside
   the rounding window around a half-integer derived in :func:`_dac_window`, and so at most
   at the rate that window allows; saturation counts are exact (``|x| > r``).
c. NaN / Inf inputs are refused, with their count, before anything changes.
d. 14 to 16 DAC bits and the "legacy" generator keep the float64 DAC, bit for bit.
e. :meth:`_read_plain` gives the general path's bits and clip counts; ``st.plain`` is set
   exactly for the common layout.
f. ADC codes differ from float64 arithmetic's only by one step inside the window of
   :func:`_adc_window`, at the rate it allows; every other output to 2 ulp of float32.

Run as a script (``python tests/crossbar/test_float32_read.py``) it prints the measured
disagreement rates on realistic pcm data (:func:`realistic_rates`); the tests print nothing.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import crossbar
from crossbar import _kernels as K
from crossbar.energy import MVMCounter

from test_read_identity import _dac32, _frozen_read, _keyed_normals

F32, F64 = np.float32, np.float64
#: the rounding window's unit: 8 u = 2^-21 (a factor >= 2 above the first-order error bounds below)
_W = 2.0 ** -21


def _poisson_bound(mean):
    """A count with this expectation (a sum of rare independent events) stays below
    ``mean + 5 sqrt(mean) + 1`` (5 sigma of a Poisson count, plus one for small means)."""
    return mean + 5 * math.sqrt(mean) + 1


def _levels(bits):
    return (1 << (bits - 1)) - 1


def _dac(kernel, x, params, alpha=1.25):
    """(values, squares, row scale, saturated, NaN/Inf) of a DAC kernel with squares on ``x``."""
    o, q, rs = np.empty_like(x), np.empty_like(x), np.empty(x.shape[0], x.dtype)
    clipped, bad = kernel(x, params, alpha, o, q, rs)
    return o, q, rs, clipped, bad


# ------------------------------------------------------------------------------- a. DAC values
def _centres_and_edges(bits, r, beyond=True):
    """Row 0: ``float32(c r / L)`` for every code c in [-L, L]; row 1: the clip edges ``+-r``
    and their float32 neighbours inside, with ``beyond`` also those outside and ``+-2 r``
    (rows padded with zeros). Without ``beyond`` each row's largest |x| is r, so a per-vector
    range (abs_max) is r too and every input stays at a code centre or an edge."""
    L = _levels(bits)
    centres = (np.arange(-L, L + 1) * r / L).astype(F32)
    r32 = F32(r)
    edges = [r32, -r32, np.nextafter(r32, F32(0)), -np.nextafter(r32, F32(0))]
    if beyond:
        edges += [np.nextafter(r32, F32(np.inf)), -np.nextafter(r32, F32(np.inf)), 2 * r32, -2 * r32]
    edges = np.array(edges, F32)
    x = np.zeros((2, max(centres.size, edges.size)), F32)
    x[0, :centres.size], x[1, :edges.size] = centres, edges
    return x


@pytest.mark.parametrize("bits", range(2, 14))
@pytest.mark.parametrize("r", [1.0, 0.75, 3.0])
@pytest.mark.parametrize("abs_max", [False, True])
def test_float32_dac_values_at_code_centres_are_the_float64_dacs(bits, r, abs_max):
    """At every code centre and at the clip edges the float32 DAC (``code / L`` and
    ``code^2 / L^2``, float32 divisions) gives the float64 DAC's float32 outputs bit for bit:
    ``L = 2^(b-1) - 1`` is odd, so ``c / L`` never sits near a float32 rounding midpoint and
    one rounding equals the float64 DAC's two; so do the squares up to 13 bits. Row scales and
    saturation counts (with a fixed range the float32 neighbours of ``+-r`` outside and ``+-2 r``
    saturate, ``+-r`` does not; with abs_max nothing does) agree too,
    for :func:`dac_rows32` and the per-tile sums of :func:`dac_rows_tile_sumsq32` as well."""
    x = _centres_and_edges(bits, r, beyond=not abs_max)
    params = (abs_max, r, _levels(bits), True)
    new, old = _dac(K.dac_rows_squares32, x, params), _dac(K.dac_rows_squares, x, params)
    for a, b in zip(new[:3], old[:3]):
        assert a.tobytes() == b.tobytes()
    assert new[3:] == old[3:]
    if not abs_max:
        assert new[3] == 4  # +-nextafter(r) and +-2 r: the edges are where they should be
    o, rs = np.empty_like(x), np.empty(2, F32)
    assert K.dac_rows32(x, params, 1.25, o, rs) == new[3:]
    assert o.tobytes() == new[0].tobytes() and rs.tobytes() == new[2].tobytes()
    bounds = np.array([0, x.shape[1] // 3, x.shape[1]], np.int64)
    sums = []
    for kernel in (K.dac_rows_tile_sumsq32, K.dac_rows_tile_sumsq):
        ss = np.empty((2, 2), F32)
        kernel(x, params, 1.25, np.empty_like(x), np.empty(2, F32), bounds, ss)
        sums.append(ss.tobytes())
    assert sums[0] == sums[1]


@pytest.mark.parametrize("bits", range(2, 14))
def test_float32_dac_values_without_clipping(bits):
    """The same identity for a DAC that does not saturate (codes beyond +-L kept)."""
    x = _centres_and_edges(bits, 0.75)
    params = (False, 0.75, _levels(bits), False)
    new, old = _dac(K.dac_rows_squares32, x, params), _dac(K.dac_rows_squares, x, params)
    for a, b in zip(new, old):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_squares_stop_being_exact_at_14_bits():
    """Why ``st.dac32`` stops at 13 bits: at 14 bits some ``code^2 / L^2`` in float32 differ
    from the float64 DAC's square (the values themselves still agree)."""
    x = _centres_and_edges(14, 1.0)
    new, old = _dac(K.dac_rows_squares32, x, (False, 1.0, _levels(14), True)), \
        _dac(K.dac_rows_squares, x, (False, 1.0, _levels(14), True))
    assert new[0].tobytes() == old[0].tobytes()
    assert (new[1] != old[1]).any()


# ------------------------------------------------------------------------------- b. DAC codes
def _dac_window(t):
    """Half-width of the rounding window around a half-integer where the float32 DAC's code of
    ``t = x L / r`` (exact) may differ from the float64 DAC's.

    Float32: ``e = fl(x fl(L / r)) = t (1 + d1)(1 + d2)``, ``|d_i| <= u = 2^-24``, so
    ``|e - t| <= (2u + u^2)|t|``; ``code = floor(fl(clip(e) + 0.5))``, where the addition is
    exact except where its sum crosses up into the next binade and for ``|e| < 0.5``: its
    rounding moves the floor only for ``e`` within ``u (|e| + 1)`` of a half-integer.
    Float64: ``floor(fl(fl(fl(x fl(1 / r)) L) + 0.5))`` is within ``4 2^-53 |t|`` of the
    exact ``floor(t + 0.5)``. So the codes can differ only where ``t`` is within
    ``3u |t| + u + O(2^-50 |t|)`` of a half-integer; we take ``w = 8u (|t| + 1) = 2^-21 (|t| + 1)``
    (for 8 bits, |t| <= 127: 2^-14). Outside ``|t| <= L + w`` both codes are +-L (clipping)."""
    return _W * (np.abs(t) + 1.0)


def _dac_disagreements(x, r, L, codes_new, codes_old):
    """(number of code disagreements, number of them outside the window or by more than one
    code, number of inputs inside the window) for a clipping DAC of range ``r``."""
    t = x.astype(F64) * (L / r)
    dist = np.abs((t + 0.5) - np.rint(t + 0.5))  # distance of t + 0.5 to the nearest integer
    inside = (dist <= _dac_window(t)) & (np.abs(t) <= L + 1)
    diff = codes_new != codes_old
    bad = diff & (~inside | (np.abs(codes_new - codes_old) != 1))
    return int(diff.sum()), int(bad.sum()), int(inside.sum())


def _codes(out, L):
    return np.rint(out.astype(F64) * L).astype(np.int64)


@pytest.mark.parametrize("bits", [4, 8, 13])
@pytest.mark.parametrize("r", [1.0, 0.3])
def test_float32_dac_codes_differ_only_inside_the_rounding_window(rng, bits, r):
    """2e5 float32 inputs uniform on [-1.2 r, 1.2 r] (a sixth saturate), plus +-r: every code
    that differs from the float64 DAC's differs by one and lies inside :func:`_dac_window`.
    Rate: for inputs spread evenly over many codes the share inside the window is
    ``2 w = 2^-20 (|t| + 1) <= 2^-20 (L + 1)`` (2^-13 for 8 bits); with N inputs the number
    inside is at most ``N p + 5 sqrt(N p) + 1`` (p the mean of 2 w), and the disagreements are
    among them. Saturation counts are exact (``|x| > r``); the float64 DAC's own count
    (``|fl(x fl(1 / r))| > 1``) can differ from that only within 2^-50 of |x| = r.

    The check can fail: the same inputs through a DAC whose gain is off by 2^-18 (inputs
    scaled by 1 + 2^-18 before the float32 DAC) are reported outside the window."""
    L = _levels(bits)
    n = 200_000
    x = rng.uniform(-1.2 * r, 1.2 * r, n).astype(F32)
    x[:4] = [r, -r, np.nextafter(F32(r), F32(2)), np.nextafter(F32(r), F32(0))]
    x = x.reshape(400, 500)
    params = (False, r, L, True)
    new, old = _dac(K.dac_rows_squares32, x, params), _dac(K.dac_rows_squares, x, params)
    c_new, c_old = _codes(new[0], L), _codes(old[0], L)
    n_diff, n_bad, n_inside = _dac_disagreements(x, r, L, c_new, c_old)
    assert n_bad == 0, f"{n_bad} of {n_diff} code disagreements outside the rounding window or by > 1 code"
    t = np.abs(x.astype(F64) * (L / r))
    p = float(np.mean(2 * _dac_window(np.minimum(t, L))))
    bound = _poisson_bound(n * p)
    assert n_diff <= n_inside <= bound, f"{n_diff} disagreements, {n_inside} inputs in the window, bound {bound:.1f}"
    # saturation: exact for the float32 DAC; the float64 DAC's rounded test differs only at |x| ~ r
    exact = int(np.count_nonzero(np.abs(x.astype(F64)) > r))
    assert new[3] == exact
    near = int(np.count_nonzero(np.abs(np.abs(x.astype(F64)) / r - 1.0) < 2.0 ** -50))
    assert abs(old[3] - exact) <= near
    # the check can fail: a DAC gain off by 2^-18 puts disagreements outside the window
    xp = (x * F32(1 + 2.0 ** -18)).astype(F32)
    c_pert = _codes(_dac(K.dac_rows_squares32, xp, params)[0], L)
    n_diff_p, n_bad_p, _ = _dac_disagreements(x, r, L, c_pert, c_old)
    assert n_bad_p > 0 and n_diff_p > n_diff


def test_abs_max_dac_counts_no_saturation(rng):
    """Regression (issue 16): with a per-vector range (``abs_max``) nothing saturates, but the
    float32 DAC counted ``|x fl32(L / r)| > L``, true for the largest input of a row whenever
    ``fl32(L / r)`` rounded up (about one row in seven). Now ``|x| > r``, exact."""
    x = (rng.uniform(-1, 1, (2000, 64)) * rng.uniform(0.01, 100, (2000, 1))).astype(F32)
    for levels in (127, 4095, 0):
        for kernel in (K.dac_rows_squares32, K.dac_rows_squares):
            assert _dac(kernel, x, (True, 1.0, levels, True))[3] == 0, (kernel, levels)
    arr = crossbar.program(np.eye(64), crossbar.preset("pcm", dac_range_mode="abs_max"), seed=0)
    arr.mvm(x, seed=1)
    assert arr.clip_counts()["dac_clipped"] == 0 and arr.clip_counts()["dac_conversions"] == x.size


# ------------------------------------------------------------------------------- c. NaN / Inf
@pytest.mark.parametrize("kw", [dict(), dict(tile_rows=32)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_float32_input_is_refused_before_anything_changes(kw, bad):
    """A default pcm array (boxmuller, float32, the common read :meth:`_read_plain`) refuses
    NaN/Inf inputs with their count, before its clip counters move or its own stream draws:
    afterwards it reads as a fresh twin does (the refused batch also holds saturating inputs,
    which would have been counted)."""
    w = np.random.default_rng(7).normal(size=(20, 100)) / 10.0
    cfg = crossbar.preset("pcm", **kw)
    arr, twin = crossbar.program(w, cfg, seed=3), crossbar.program(w, cfg, seed=3)
    st = arr.read_state(3600.0, F32)
    assert st.plain is not None and st.dac32
    x = np.random.default_rng(8).uniform(-1.5, 1.5, size=(5, 100)).astype(F32)
    x[1, 7] = x[3, 90] = x[4, 0] = bad
    with pytest.raises(ValueError, match=r"x must be finite, got 3 NaN/Inf value\(s\)"):
        arr.mvm(x, t_s=3600.0)
    with pytest.raises(ValueError, match=r"x must be finite, got 1 NaN/Inf value\(s\)"):
        arr.mvm(x[4], t_s=3600.0)
    assert arr.clip_counts() == twin.clip_counts() == dict(dac_clipped=0, dac_conversions=0, adc_clipped=0,
                                                           adc_conversions=0)
    good = np.where(np.isfinite(x), x, F32(0.5))
    for _ in range(2):
        assert arr.mvm(good, t_s=3600.0).tobytes() == twin.mvm(good, t_s=3600.0).tobytes()
    assert arr.clip_counts() == twin.clip_counts()
    assert arr.clip_counts()["dac_clipped"] > 0


# ------------------------------------------------------------------------------- d. float64 DAC kept
def _x_and_array(kw, dtype=F32):
    w = np.random.default_rng(7).normal(size=(45, 100)) / 10.0
    x = np.random.default_rng(8).uniform(-1.3, 1.3, size=(9, 100)).astype(dtype)
    return x, crossbar.program(w, crossbar.preset("pcm", **kw), seed=3)


@pytest.mark.parametrize("kw, gen", [(dict(dac_bits=14), "boxmuller"), (dict(dac_bits=15), "boxmuller"),
                                     (dict(dac_bits=16, tile_rows=32), "boxmuller"),
                                     (dict(normal_generator="legacy"), "legacy"),
                                     (dict(normal_generator="legacy", dac_bits=13, tile_rows=32), "legacy")])
def test_float64_dac_is_kept_beyond_13_bits_and_for_legacy(kw, gen):
    """``st.dac32`` is False for 14 to 16 DAC bits and for the "legacy" generator, and their
    float32 reads equal the frozen float64-DAC pipeline bit for bit. At 14+ bits the inputs
    here hit codes whose float32 square differs from the float64 DAC's, so a float32 DAC
    taken there would fail this test."""
    x, arr = _x_and_array(kw)
    st = arr.read_state(3600.0, F32)
    assert not st.dac32
    bits = arr.config.dac.bits
    if bits > 13:
        params = (False, 1.0, _levels(bits), True)
        assert (_dac(K.dac_rows_squares32, x, params)[1] != _dac(K.dac_rows_squares, x, params)[1]).any()
    for t_s, seed in ((3600.0, 11), (1.0, 12)):
        y = arr.mvm(x, t_s=t_s, seed=seed)
        ref = _frozen_read(arr, x, t_s, crossbar.as_generator(seed), generator=gen)
        assert y.dtype == ref.dtype and y.tobytes() == ref.tobytes(), (t_s, seed)


@pytest.mark.parametrize("bits", [2, 8, 13, None])
def test_float32_dac_is_taken_up_to_13_bits(bits):
    """The boundary from the other side: boxmuller float32 reads take the float32 DAC up to 13
    bits and without quantisation; float64 reads never do."""
    _, arr = _x_and_array(dict(dac_bits=bits))
    assert arr.read_state(0.0, F32).dac32
    assert not arr.read_state(0.0, F64).dac32


# ------------------------------------------------------------------------------- e. _read_plain
def _calibrated(arr):
    arr.calibrate_adc(np.random.default_rng(4).uniform(-1, 1, (16, arr.in_features)), t_s=3600.0)


def _counted(arr):
    arr.counters = MVMCounter.from_config(arr.shape, arr.config)


PLAIN = {  # config kwargs, read time, what to do to the array after programming
    "pcm": (dict(), 3600.0, None),
    "tiles 32 x 48": (dict(tile_rows=32, tile_cols=48), 3600.0, None),
    "drift compensation": (dict(drift_compensation=True, tile_rows=40), 1e5, None),
    "calibrated ADC ranges": (dict(tile_rows=32, tile_cols=48), 3600.0, _calibrated),
    "stored DAC range": (dict(), 60.0, lambda a: a.set_ranges(dac_range=0.8, adc_ranges=7.0)),
    "energy counter": (dict(tile_rows=32), 3600.0, _counted),
    "abs_max DAC, ADC without clip": (dict(dac_range_mode="abs_max", adc_clip=False, tile_rows=64), 3600.0, None),
    "no converters": (dict(dac_bits=None, adc_bits=None, tile_rows=32), 3600.0, None),
    "14-bit DAC": (dict(dac_bits=14), 3600.0, None),
    "wires, fast path": (dict(tile_rows=32, wire_noise_policy="ignore", **crossbar.WIRE_EXAMPLES["node_22nm"]),
                         3600.0, None),
}

NOT_PLAIN = {
    "output noise": dict(out_noise_sigma=0.05),
    "per-cell read noise": dict(read_noise_path="per_cell"),
    "bit-serial": dict(dac_slice_bits=2),
    "legacy generator": dict(normal_generator="legacy"),
    "wires through the circuit": dict(wire_noise_policy="reference", wire_noise_tolerance=0.0,
                                      **crossbar.WIRE_EXAMPLES["node_22nm"]),
    "column-uniform read noise": dict(read_sigma=crossbar.Law("poly", (0.3,))),
    "column-mean read noise": dict(read_noise_path="output_column_mean"),
    "no read noise": dict(read_sigma=None),
    "read noise frozen per time": dict(read_noise_draw="per_time"),
}


def _with_split_codes(x, params):
    """``x`` (float32) with inputs on which the float32 and float64 DACs give different codes
    (float32 neighbours of the half-integer points ``(k + 0.5) r / L``) in its first columns,
    so that a read taking the wrong DAC shows; with a per-vector range each row's largest
    input is set to 1.3 (the range). Unchanged for float64 or without quantisation."""
    abs_max, r, L, clip = params
    if L == 0 or x.dtype != F32:
        return x
    x = x.copy()
    if abs_max:
        x[:, -1] = F32(1.3)
        r = float(F32(1.3))
    c = ((np.arange(-L, L) + 0.5) * r / L).astype(F32)
    pool = np.concatenate([c, np.nextafter(c, F32(np.inf)), np.nextafter(c, F32(-np.inf))])[None]
    fixed = (False, r, L, clip)
    split = pool[_codes(_dac(K.dac_rows_squares32, pool, fixed)[0], L) != _codes(_dac(K.dac_rows_squares, pool,
                                                                                     fixed)[0], L)]
    assert split.size > 0
    n = min(split.size, x.shape[1] // 2)
    x[:, :n] = split[:n]
    return x


def _program(kw, setup, w):
    arr = crossbar.program(w, crossbar.preset("pcm", **kw), seed=3)
    if setup is not None:
        setup(arr)
    return arr


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("case", list(PLAIN))
def test_read_plain_is_the_general_path(case, dtype):
    """Two twin arrays, one with ``st.plain`` cleared (the general path of :meth:`_mvm_analog`):
    the same bytes for batch 1 and 7, 1-D inputs, explicit seeds and the arrays' own
    streams, and the same clip counts (and energy counts) after every read. The float32
    inputs include points where the float32 and float64 DACs disagree
    (:func:`_with_split_codes`), so the DAC each path takes is checked too."""
    kw, t_s, setup = PLAIN[case]
    w = np.random.default_rng(7).normal(size=(60, 100)) / 10.0
    fast, slow = _program(kw, setup, w), _program(kw, setup, w)
    st_fast, st_slow = fast.read_state(t_s, dtype), slow.read_state(t_s, dtype)
    assert st_fast.plain is not None
    assert (st_fast.plain[0] is K.dac_rows_squares32) == (st_fast.dac32 and dtype == F32)
    st_slow.plain = None
    xs = _with_split_codes(np.random.default_rng(8).uniform(-1.3, 1.3, size=(8, 100)).astype(dtype), st_fast.dac)
    for x, seed in ((xs[:7], 11), (xs[7:], 12), (xs[7], 13), (xs[:7], None), (xs[7:], None)):
        a, b = fast.mvm(x, t_s=t_s, seed=seed), slow.mvm(x, t_s=t_s, seed=seed)
        assert a.dtype == b.dtype == dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (x.shape, seed)
        assert fast.clip_counts() == slow.clip_counts()
    c = fast.clip_counts()
    assert c["dac_conversions"] == (0 if kw.get("dac_bits", 8) is None else 2 * 700 + 3 * 100)
    if setup is _counted:
        assert fast.counters.totals() == slow.counters.totals() and fast.counters.vectors == 7 * 2 + 3


@pytest.mark.parametrize("case", list(NOT_PLAIN))
def test_read_plain_is_only_the_common_layout(case):
    """Every layout with something more per read than the general read noise (output noise,
    per-cell or circuit reads, bit slices, the legacy generator), or without a dense read-noise
    term, leaves ``st.plain`` unset, for both dtypes."""
    w = np.random.default_rng(7).normal(size=(20, 40)) / 10.0
    arr = crossbar.program(w, crossbar.preset("pcm", **NOT_PLAIN[case]), seed=3)
    for dtype in (F32, F64):
        assert arr.read_state(3600.0, dtype).plain is None


# ------------------------------------------------------------------------------- f. ADC arithmetic
def _adc_window(a):
    """Half-width of the window around a half-integer where the float32 ADC's code may differ
    from float64 arithmetic's, for ``u = (p + sqrt(v) z) k`` with ``a = (|p| + |sqrt(v) z|) k``
    (same float32 p, v, z for both).

    Float32: ``s = fl(sqrt(v))``, ``n = fl(s z)``: ``|n - sqrt(v) z| <= (2u + u^2)|sqrt(v) z|``;
    ``q = fl(p + n)``: plus ``u |p + n|``; ``fl(q fl(k))``: plus ``2u |q k|``; so
    ``|u32 - u| <= 3u a + O(u^2 a)``; the ``+ 0.5`` before the floor moves the code only within
    ``u (|u| + 1) <= u (a + 1)`` of a half-integer (as in the DAC). Float64 is within
    ``2^-50 a`` of exact. We take ``w = 8u (a + 1) = 2^-21 (a + 1)``, twice ``4u a + u``; for an
    8-bit ADC and ``a`` about ``|u| <= 127``, 2^-14."""
    return _W * (a + 1.0)


def _adc_compare(parts, var, scale, rs, adc, seed):
    """Run :func:`noise_adc_tiles_bm` (one tile) on float32 ``parts, var, scale, rs`` and on the
    same values in float64 (same seed: the same normals). Returns a dict: codes of both, the
    exact-arithmetic ``u`` and ``a`` of :func:`_adc_window` (float64 numpy), both outputs, and
    both saturation counts."""
    nb, m = parts.shape
    p32, v32, s32, r32 = parts[None].astype(F32), var[None].astype(F32), scale[None].astype(F32), rs.astype(F32)
    out = {}
    for name, dt in (("32", F32), ("64", F64)):
        acc = np.empty((nb, m), dt)
        out["clip" + name] = K.noise_adc_tiles_bm(p32.astype(dt), seed, v32.astype(dt), np.empty((1, 0, nb), dt),
                                                  np.empty((1, 0, m), dt), s32.astype(dt), adc, acc, r32.astype(dt))
        out["y" + name] = acc
    _, L, R, _ = adc
    k = L / R
    f = (R / L) * s32[0].astype(F64)
    z = _keyed_normals(seed, 1, nb, m)[0].astype(F64)
    noise = np.sqrt(v32[0].astype(F64)) * z
    p = p32[0].astype(F64)
    out["u"] = (p + noise) * k
    out["a"] = (np.abs(p) + np.abs(noise)) * k
    for name in ("32", "64"):
        out["c" + name] = np.rint(out["y" + name].astype(F64) / (f * r32.astype(F64)[:, None])).astype(np.int64)
    return out


def _adc_check(o, L):
    """(code disagreements, those outside the window or by more than one step, outputs inside
    the window, their expected number ``N p`` for evenly spread u, saturation-count difference,
    outputs within the window of +-L, largest relative output difference where codes agree)."""
    u, a = o["u"], o["a"]
    w = _adc_window(a)
    inside = (np.abs((u + 0.5) - np.rint(u + 0.5)) <= w) & (np.abs(u) <= L + 1)
    diff = o["c32"] != o["c64"]
    bad = diff & (~inside | (np.abs(o["c32"] - o["c64"]) != 1))
    p = float(np.mean(2 * w * (np.abs(u) <= L + 1)))
    n = u.size
    near_edge = int(np.count_nonzero(np.abs(np.abs(u) - L) <= w))
    same = ~diff & (o["y64"] != 0)
    y32, y64 = o["y32"].astype(F64)[same], o["y64"][same]
    rel = float(np.max(np.abs(y32 - y64) / np.abs(y64))) if same.any() else 0.0
    return (int(diff.sum()), int(bad.sum()), int(inside.sum()), n * p, abs(o["clip32"] - o["clip64"]), near_edge,
            rel)


@pytest.mark.parametrize("adc", [(True, 127, 1.5, True), (True, 7, 0.5, True), (True, 2047, 3.0, True)])
def test_float32_adc_codes_differ_only_inside_the_rounding_window(rng, adc):
    """1e5 outputs (200 x 500) of the common float32 noise + ADC pass against the same float32
    parts, variances, scales and row scales in float64 arithmetic (same seed, so the same
    normals): every differing code differs by one step and lies inside :func:`_adc_window`;
    the number inside the window is at most ``N p + 5 sqrt(N p) + 1`` with p the mean of
    ``2 w`` (the share of an evenly spread u within w of a half-integer), so the disagreement
    rate is below that; saturation counts differ by at most the outputs within w of +-L;
    every other output agrees to 2 ulp of float32 (three float32 roundings: ``fl(f)``, the
    code times it, the row scale: ``|y32 - y| <= 3u |y| (1 + u)^2 < 2^-22 |y|``).

    The check can fail: parts scaled by 1 + 2^-18 in the float32 run are reported outside."""
    nb, m = 200, 500
    _, L, R, _ = adc
    parts = rng.uniform(-1.1 * R, 1.1 * R, (nb, m))  # some saturate
    var = rng.uniform(0, (R / L) ** 2, (nb, m))      # noise of about one code
    scale, rs = rng.uniform(0.5, 2, m), rng.uniform(0.5, 2, nb)
    o = _adc_compare(parts, var, scale, rs, adc, seed=77)
    n_diff, n_bad, n_inside, expected, d_clip, near_edge, rel = _adc_check(o, L)
    bound = _poisson_bound(expected)
    assert n_bad == 0, f"{n_bad} of {n_diff} ADC code disagreements outside the window or by > 1 step"
    assert n_diff <= n_inside <= bound, f"{n_diff} disagreements, {n_inside} in the window, bound {bound:.1f}"
    assert d_clip <= near_edge
    assert rel <= 2.0 ** -22, f"outputs with equal codes differ by {rel:.3g} relative (> 2 ulp of float32)"
    # the check can fail: a gain error of 2^-18 in the float32 run shows outside the window
    pert = _adc_compare(parts.astype(F32) * F32(1 + 2.0 ** -18), var, scale, rs, adc, seed=77)
    pert.update(u=o["u"], a=o["a"], c64=o["c64"], y64=o["y64"])
    assert _adc_check(pert, L)[1] > 0


# ------------------------------------------------------------------------------- realistic figures
def realistic_rates(batches=4, seed=0):
    """Code disagreement rates of the float32 DAC and ADC against float64 arithmetic on
    realistic pcm data: 512 x 512 normal weights, preset "pcm" (8-bit DAC and ADC), read at
    t = 3600 s, ``batches`` batches of 64 inputs uniform on [-1, 1] (float32). The DAC is
    compared on each batch; the ADC on the batch's float32 products and variances (the read's
    own ``xn @ gn`` and ``xsq @ var``) against the same values in float64, with the read's
    scales and row scales; for scale, ``blas_diff`` counts the noiseless ADC codes that the
    float32 products alone move (against float64 products of the same inputs, both converted
    in float64). Returns a dict of counts, rates and window bounds."""
    g = np.random.default_rng(seed)
    w = g.normal(size=(512, 512))
    arr = crossbar.program(w, crossbar.preset("pcm"), seed=1)
    st = arr.read_state(3600.0, F32)
    assert st.dac32 and st.plain is not None and len(st.tiles) == 1
    L_dac, L_adc = st.dac[2], st.adc[1]
    r = {"dac_n": 0, "dac_diff": 0, "dac_bad": 0, "dac_inside": 0, "dac_expected": 0.0,
         "adc_n": 0, "adc_diff": 0, "adc_bad": 0, "adc_inside": 0, "adc_expected": 0.0, "adc_rel": 0.0,
         "blas_diff": 0}
    for i in range(batches):
        x = g.uniform(-1, 1, (64, 512)).astype(F32)
        new, old = _dac(K.dac_rows_squares32, x, st.dac, st.alpha), _dac(K.dac_rows_squares, x, st.dac, st.alpha)
        n_diff, n_bad, n_inside = _dac_disagreements(x, st.dac[1], L_dac, _codes(new[0], L_dac),
                                                     _codes(old[0], L_dac))
        t = np.abs(x.astype(F64) * (L_dac / st.dac[1]))
        r["dac_n"] += x.size
        r["dac_diff"] += n_diff
        r["dac_bad"] += n_bad
        r["dac_inside"] += n_inside
        r["dac_expected"] += x.size * float(np.mean(2 * _dac_window(np.minimum(t, L_dac))))
        xn, xsq, rs = new[0], new[1], new[2]
        parts, var = xn @ st.gn, xsq @ st.var
        # for scale: the noiseless ADC codes of the float32 products against float64 products
        # of the same inputs, both converted in float64 (what the float32 BLAS alone moves)
        k = L_adc / st.adc[2]
        p64 = xn.astype(F64) @ st.gn.astype(F64)
        r["blas_diff"] += int(np.count_nonzero(np.floor(np.clip(parts.astype(F64) * k, -L_adc, L_adc) + 0.5)
                                               != np.floor(np.clip(p64 * k, -L_adc, L_adc) + 0.5)))
        o = _adc_compare(parts, var, st.scale[0], rs, st.adc, seed=1000 + i)
        n_diff, n_bad, n_inside, expected, _, _, rel = _adc_check(o, L_adc)
        r["adc_n"] += parts.size
        r["adc_diff"] += n_diff
        r["adc_bad"] += n_bad
        r["adc_inside"] += n_inside
        r["adc_expected"] += expected
        r["adc_rel"] = max(r["adc_rel"], rel)
    return r


def test_realistic_pcm_read_stays_within_the_windows():
    """On realistic pcm data (see :func:`realistic_rates`, 2 batches of 64 x 512) the DAC and
    ADC disagreements are all inside their windows, one step each."""
    r = realistic_rates(batches=2)
    assert r["dac_bad"] == 0 and r["adc_bad"] == 0
    for conv in ("dac", "adc"):
        assert r[conv + "_diff"] <= r[conv + "_inside"] <= _poisson_bound(r[conv + "_expected"])
    assert r["adc_rel"] <= 2.0 ** -22


if __name__ == "__main__":  # the figures for crossbar/README.md
    import sys
    import time

    n_batches = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    t0 = time.perf_counter()
    K.warm()
    res = realistic_rates(batches=n_batches)
    for conv in ("dac", "adc"):
        n, d, ins, b = res[conv + "_n"], res[conv + "_diff"], res[conv + "_inside"], res[conv + "_expected"]
        print(f"{conv.upper()}: {d} of {n} codes differ from float64 arithmetic (rate {d / n:.3g}); "
              f"{ins} in the rounding window (expected share {b / n:.3g}); outside the window or > 1 step: "
              f"{res[conv + '_bad']}")
    print(f"noiseless ADC codes of the float32 products vs float64 products (both converted in float64): "
          f"{res['blas_diff']} of {res['adc_n']} differ (rate {res['blas_diff'] / res['adc_n']:.3g})")
    print(f"ADC outputs with equal codes: largest relative difference {res['adc_rel']:.3g} "
          f"(2^-22 = {2.0 ** -22:.3g}); {time.perf_counter() - t0:.0f} s")


def test_fast_entry_of_mvm_keeps_every_check_after_a_read():
    """mvm's shortcut for a prepared common read (a cached state) is taken only for C or
    strided 2-D float32/float64 arrays of the right width at a float or None time: after a
    read has cached the state, every bad input still gets the full check's error, and the
    shortcut's reads (strided input, counters, explicit seeds) equal the general path's."""
    from crossbar.energy import MVMCounter

    w = np.random.default_rng(1).normal(size=(6, 20))
    arr = crossbar.program(w, crossbar.preset("pcm"), seed=4)
    x = np.random.default_rng(2).uniform(-1, 1, size=(5, 20)).astype(F32)
    arr.mvm(x, t_s=60.0)
    arr.mvm(x)                                     # t_s None -> 0.0: both states cached
    assert arr.read_state(60.0, F32).plain is not None
    bad = {   # input: the start of the general check's message
        "dtype": x.astype(">f4"),
        "x.dtype must be float32 or float64, got float16": x.astype(np.float16),
        "x.dtype must be float32 or float64, got int64": np.ones((5, 20), np.int64),
        "x.shape\\[-1\\] must equal the array's in_features=20, got 19": x[:, :19],
        "x must not be empty": x[:0],
        "x must be finite, got 5 NaN/Inf": np.where(np.arange(20) == 3, np.nan, x).astype(F32),
        "x must be finite, got 1 NaN/Inf": np.where(np.arange(100).reshape(5, 20) == 43, -np.inf, x).astype(F32),
    }
    for msg, xb in bad.items():
        with pytest.raises(ValueError, match=msg):
            arr.mvm(xb, t_s=60.0)
    for t_bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="t_s"):
            arr.mvm(x, t_s=t_bad)
    # the shortcut's reads are the general path's: strided input, int time, explicit seeds, counters
    twin = crossbar.program(w, crossbar.preset("pcm"), seed=4)
    twin.mvm(x, t_s=60.0)
    twin.mvm(x)
    xs = np.random.default_rng(3).uniform(-1, 1, size=(5, 40)).astype(F32)[:, ::2]
    for a, b in ((arr.mvm(xs, t_s=60.0, seed=9), twin.mvm(np.ascontiguousarray(xs), t_s=60, seed=9)),
                 (arr.mvm(x, t_s=60.0), twin.mvm(x, t_s=60))):
        assert a.tobytes() == b.tobytes()
    arr.counters = MVMCounter.for_array(arr)
    arr.mvm(x, t_s=60.0)
    arr.mvm(x[0], t_s=60.0)                         # 1-D: the general path
    assert arr.counters.vectors == 6

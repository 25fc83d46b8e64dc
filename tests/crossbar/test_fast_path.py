"""The fast read path: work-buffer reuse, determinism, the exact column-uniform read-noise
shortcut, and the kernels it uses. No timing here (see ``xbarsim bench mvm``)."""
from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
from scipy.stats import ks_2samp

import crossbar
from crossbar import Law
from crossbar import _kernels as K
from crossbar import array as A
from crossbar import reference as R


def _fresh_read(w, cfg, x, seed, t_s=100.0):
    return crossbar.program(w, cfg, seed=3).mvm(x, t_s=t_s, seed=seed)


@pytest.mark.parametrize("tile_rows", [None, 4])
def test_buffer_reuse_does_not_leak_between_batch_sizes_and_dtypes(rng, tile_rows):
    """One array read with changing batch sizes and dtypes gives what a fresh array gives."""
    w = rng.normal(size=(5, 11))
    cfg = crossbar.preset("pcm", tile_rows=tile_rows, dac_range_mode="abs_max", out_noise_sigma=0.05)
    arr = crossbar.program(w, cfg, seed=3)
    calls = [(8, np.float32), (3, np.float64), (8, np.float64), (1, np.float32), (8, np.float32), (3, np.float64)]
    kept = []
    for i, (nb, dt) in enumerate(calls):
        x = rng.uniform(-1, 1, size=(nb, 11)).astype(dt)
        y = arr.mvm(x, t_s=100.0, seed=i)
        assert y.dtype == dt and y.shape == (nb, 5)
        np.testing.assert_array_equal(y, _fresh_read(w, cfg, x, i))
        kept.append((y, y.copy()))
    for y, copy in kept:  # results are never work buffers: later reads leave them alone
        np.testing.assert_array_equal(y, copy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["pcm", "sonos", "rram"])
def test_same_seed_same_numbers(rng, dtype, name):
    w = rng.normal(size=(6, 9))
    x = rng.uniform(-1, 1, size=(4, 9)).astype(dtype)
    cfg = crossbar.preset(name, tile_rows=4)
    a, b = crossbar.program(w, cfg, seed=9), crossbar.program(w, cfg, seed=9)
    np.testing.assert_array_equal(a.mvm(x, t_s=10.0), b.mvm(x, t_s=10.0))     # the array's own stream
    np.testing.assert_array_equal(a.mvm(x, seed=4), a.mvm(x, seed=4))         # an explicit seed
    if name == "rram":  # no short-term noise in this preset: the read seed changes nothing
        np.testing.assert_array_equal(a.mvm(x, seed=4), a.mvm(x, seed=5))
    else:               # fresh read noise: another read seed, other numbers
        assert not np.array_equal(a.mvm(x, seed=4), a.mvm(x, seed=5))


def test_non_contiguous_input_reads_like_its_copy(rng):
    w = rng.normal(size=(4, 6))
    arr = crossbar.program(w, crossbar.preset("pcm"), seed=1)
    x = rng.uniform(-1, 1, size=(6, 5)).T          # (5, 6), Fortran order
    np.testing.assert_array_equal(arr.mvm(x, seed=2), arr.mvm(np.ascontiguousarray(x), seed=2))


def test_pickle_drops_work_buffers_and_reads_the_same(rng):
    w = rng.normal(size=(4, 6))
    arr = crossbar.program(w, crossbar.preset("pcm"), seed=1)
    x = rng.uniform(-1, 1, size=(3, 6))
    arr.mvm(x)
    back = pickle.loads(pickle.dumps(arr))
    assert back._work == {} and back._cache == {}
    np.testing.assert_array_equal(back.mvm(x, t_s=5.0, seed=1), arr.mvm(x, t_s=5.0, seed=1))


def test_threads_reading_one_array_get_their_own_buffers(rng):
    w = rng.normal(size=(64, 96))
    arr = crossbar.program(w, crossbar.preset("pcm", tile_rows=32), seed=1)
    xs = [rng.uniform(-1, 1, size=(16, 96)).astype(np.float32) for _ in range(4)]
    want = [arr.mvm(x, seed=i) for i, x in enumerate(xs)]
    got = [[None] * 20 for _ in xs]

    def work(i):
        for r in range(20):
            got[i][r] = arr.mvm(xs[i], seed=i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for y in got[i]:
            np.testing.assert_array_equal(y, want[i])


# ------------------------------------------------------------------ column-uniform shortcut
def _uniform_cfg(**kw):
    return crossbar.preset("pcm", read_sigma=Law("poly", (0.4,)), out_noise_sigma=None, **kw)


def test_uniform_read_noise_is_detected_only_when_exact(rng):
    w = rng.normal(size=(5, 12))
    x = np.ones((1, 12))
    for cfg, uniform in [(_uniform_cfg(), True), (_uniform_cfg(tile_rows=5), True),
                         (_uniform_cfg(adc_bits=None), True),       # one tile, scales folded: uniform per column
                         (_uniform_cfg(adc_bits=None, tile_rows=5), False),  # folded scales differ per row tile
                         (crossbar.preset("pcm"), False), (crossbar.preset("sonos"), False)]:
        arr = crossbar.program(w, cfg, seed=2)
        arr.mvm(x, t_s=50.0)
        st = arr._state(50.0, np.dtype(np.float64))
        assert (st.var_col is not None) == uniform, cfg
        if uniform:
            for k, (a, b) in enumerate(st.tiles):
                np.testing.assert_array_equal(np.broadcast_to(st.var_col[k], st.var[a:b].shape), st.var[a:b])


def test_zero_read_noise_law_reads_noiselessly(rng):
    w = rng.normal(size=(5, 12))
    x = rng.uniform(-1, 1, size=(4, 12))
    cfg = crossbar.preset("pcm", read_sigma=Law("poly", (0.0,)), out_noise_sigma=None)
    arr = crossbar.program(w, cfg, seed=2)
    np.testing.assert_array_equal(arr.mvm(x, seed=1), arr.mvm(x, seed=2))


def _shared_atoms(a, b, rtol=1e-6):
    """Both samples with values within ``rtol`` of each other merged onto one value. An ADC's
    outputs are atoms (code times scale); two read layouts may round the same atom to
    neighbouring floats (the float32 read scales in float32 where the column-uniform layout
    scales in float64: one ulp apart), which a two-sample KS test would take for a shift."""
    u = np.unique(np.concatenate([a, b]).astype(np.float64))
    start = np.concatenate([[True], np.diff(u) > rtol * np.abs(u[1:])])
    reps = u[start]
    return (reps[np.searchsorted(reps, a.astype(np.float64), side="right") - 1],
            reps[np.searchsorted(reps, b.astype(np.float64), side="right") - 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(dac_bits=None, adc_bits=None), dict(tile_rows=5),
                                dict(tile_rows=5, adc_output_range=4.0)])
def test_uniform_shortcut_matches_the_general_path_in_distribution(rng, monkeypatch, dtype, kw):
    """N = 3000 reads of one input: KS p > 1e-4 per output (false-alarm rate ~1e-4 per
    output), and without the ADC the sample variance is within 5 sigma^2 sqrt(2/(N-1)) of
    ``sigma^2 ||x||^2`` per tile summed with the scales."""
    n, n_in = 3000, 12
    w = rng.normal(size=(3, n_in))
    x = np.tile(rng.uniform(-1, 1, size=n_in), (n, 1)).astype(dtype)
    cfg = _uniform_cfg(**kw)
    short = crossbar.program(w, cfg, seed=7)
    y_short = short.mvm(x, seed=1)
    assert short._state(0.0, np.dtype(dtype)).var_col is not None
    monkeypatch.setattr(A, "_column_uniform", lambda var, tiles: None)   # force x^2 @ sigma^2
    general = crossbar.program(w, cfg, seed=7)
    y_gen = general.mvm(x, seed=2)
    assert general._state(0.0, np.dtype(dtype)).var_col is None
    for j in range(3):
        a, b = _shared_atoms(y_short[:, j], y_gen[:, j])
        p = ks_2samp(a, b).pvalue
        assert p > 1e-4, f"output {j}: shortcut and general path differ (KS p = {p:.2g})"
    if kw.get("adc_bits", 8) is None:
        s_cell = np.repeat(short._scales, [b - a for a, b in A._tile_bounds(n_in, cfg.tile.rows)], axis=0)
        var = (x[0].astype(np.float64)[:, None] ** 2 * s_cell**2).sum(axis=0) * 2 * 0.4**2 / 25.0**2
        bound = 5 * var * np.sqrt(2 / (n - 1))
        assert np.all(np.abs(y_short.astype(np.float64).var(axis=0, ddof=1) - var) <= bound)


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("abs_max, levels, clip", [(True, 127, True), (False, 7, True), (False, 0, False)])
def test_dac_rows_matches_reference(rng, dtype, abs_max, levels, clip):
    x = rng.uniform(-2, 2, size=(5, 13)).astype(dtype)
    x[0] = 0.0
    nb, n = x.shape
    r = np.abs(x).max(axis=1) if abs_max else np.full(nb, 1.5)
    r[r == 0] = 1.0
    out, sq, rs = np.empty_like(x), np.empty_like(x), np.empty(nb, dtype)
    bounds = np.array([0, 4, 8, 13], np.int64)
    sumsq = np.empty((3, nb), dtype)
    dac = (abs_max, 1.5, levels, clip)
    K.dac_rows_squares(x, dac, 0.5, out, sq, rs)
    ref = R.dac(x, 1.0 / r, levels, clip)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(sq, out.astype(np.float64) ** 2, rtol=tol, atol=tol)
    np.testing.assert_allclose(rs, r * 0.5, rtol=tol)
    for kernel, extra in ((K.dac_rows, ()), (K.dac_rows_tile_sumsq, (bounds, sumsq))):  # the same DAC values
        out2, rs2 = np.empty_like(x), np.empty(nb, dtype)
        kernel(x, dac, 0.5, out2, rs2, *extra)
        np.testing.assert_array_equal(out2, out)
        np.testing.assert_array_equal(rs2, rs)
    for k in range(3):
        np.testing.assert_allclose(sumsq[k], (out[:, bounds[k]:bounds[k + 1]].astype(np.float64) ** 2).sum(axis=1),
                                   rtol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_var, with_1, with_2", [(True, True, True), (False, True, False), (False, False, True),
                                                      (True, False, False)])
def test_noise_adc_rank_one_terms_match_a_dense_variance(rng, dtype, with_var, with_1, with_2):
    nb, m = 4, 9
    p = rng.normal(size=(nb, m)).astype(dtype)
    z = rng.normal(size=(nb, m)).astype(dtype)
    var = rng.uniform(0, 0.5, size=(nb, m)).astype(dtype)
    a1, c1 = rng.uniform(0, 1, nb).astype(dtype), rng.uniform(0, 1, m).astype(dtype)
    a2, c2 = rng.uniform(0, 1, nb).astype(dtype), rng.uniform(0, 1, m).astype(dtype)
    dense = (var.astype(np.float64) * with_var + np.outer(a1, c1) * with_1 + np.outer(a2, c2) * with_2)
    scale, row = rng.uniform(0.5, 2, m).astype(dtype), rng.uniform(0.5, 2, nb).astype(dtype)
    acc = np.empty((nb, m), dtype)
    rows = np.array([a for a, on in ((a1, with_1), (a2, with_2)) if on], dtype).reshape(-1, nb)
    cols = np.array([c for c, on in ((c1, with_1), (c2, with_2)) if on], dtype).reshape(-1, m)
    adc = (True, 0, 12.0, True)
    K.noise_adc_accumulate(p, z, var[None] if with_var else np.empty((0, nb, m), dtype), rows, cols, scale, adc, acc,
                           True, True, row)
    ref = R.noise_adc_accumulate(p, z, dense[None], np.empty((0, nb)), np.empty((0, m)), scale, adc, None, True,
                                 True, row)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(acc, ref, rtol=tol, atol=tol)

"""The reads with ``normal_generator="boxmuller"`` (the default): structure and statistics.

Structure: the fused kernel :func:`crossbar._kernels.noise_adc_tiles_bm` draws row b of tile k
from ``derive_key(seed, k B + b)`` inside the noise + ADC pass; tested bit for bit against
that definition (normals filled into a buffer with :func:`crossbar._normals.fill_normals`,
then the frozen per-tile kernel), and the whole read against the frozen pipeline with those
normals. Statistics: the read noise (read minus the clean read) against the exact
per-output variance from the cells' variances, tolerances from the sample size:
mean within 5 sigma / sqrt(N), variance within 5 sigma^2 sqrt(2 / (N - 1)) (N samples).
Never compares with hard-coded numbers of the stream (the generator may still change).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp, kstest

import crossbar
from crossbar import _kernels as K

import frozen_kernels as F
from test_read_identity import CASES, _boxmuller_tile, _frozen_read, _keyed_normals, _seeds, _tile_inputs


ADCS = [(True, 127, 1.5, True), (True, 127, 1.5, False), (True, 0, 1.5, True), (True, 0, 1.5, False),
        (True, 7, 0.5, True), (False, 0, 1.0, False)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nt", [1, 2, 3])
@pytest.mark.parametrize("terms", ["dense", "dense+out", "uniform", "out", "uniform+out"])
@pytest.mark.parametrize("adc", ADCS)
def test_noise_adc_tiles_bm_is_row_keyed_normals_then_each_tile(rng, dtype, nt, terms, adc):
    """noise_adc_tiles_bm == row-keyed normals in a (T, B, m) buffer, then its arithmetic per
    tile written in numpy (_boxmuller_tile): saturation counts and every bit of the result;
    odd sizes (B = 5, m = 37), 1 to 3 tiles, every variance-term layout."""
    nb, m = 5, 37
    parts, var, rows, cols, scale, rs = _tile_inputs(rng, dtype, nt, terms, nb, m)
    for seed in _seeds(3):
        acc_new, acc_ref = np.empty((nb, m), dtype), np.empty((nb, m), dtype)
        c_new = K.noise_adc_tiles_bm(parts, seed, var, rows, cols, scale, adc, acc_new, rs)
        z = _keyed_normals(seed, nt, nb, m)
        c_ref = 0
        for k in range(nt):
            c_ref += _boxmuller_tile(parts[k], z[k], var[k:k + 1] if var.shape[0] else var, rows[k], cols[k],
                                     scale[k], adc, acc_ref, k == 0, k == nt - 1, rs)
        assert c_new == c_ref
        assert acc_new.tobytes() == acc_ref.tobytes()


@pytest.mark.parametrize("adc", ADCS)
@pytest.mark.parametrize("terms", ["dense", "uniform+out"])
def test_float64_boxmuller_tile_matches_the_float64_reference(rng, adc, terms):
    """A float64 read of the boxmuller kernel equals crossbar.reference.noise_adc_accumulate
    (the obvious float64 twin) fed the same normals, to 1e-12 relative, for every converter
    setting, 2 tiles (first, then last); inputs away from the ADC's rounding boundaries."""
    from crossbar import reference

    nt, nb, m = 2, 6, 40
    L = max(adc[1], 1)
    codes = rng.integers(-L - 3, L + 4, size=(nt, nb, m))
    parts = (codes + rng.uniform(-0.3, 0.3, size=codes.shape)) * adc[2] / L  # 0.2 of a step from any boundary
    var = (rng.random((nt, nb, m)) * 1e-6) if "dense" in terms else np.empty((0, nb, m))
    nr = 2 if "uniform" in terms else 0
    rows, cols = rng.random((nt, nr, nb)) * 1e-6, rng.random((nt, nr, m))
    scale, rs = rng.uniform(0.5, 2, (nt, m)), rng.uniform(0.5, 2, nb)
    acc = np.empty((nb, m))
    K.noise_adc_tiles_bm(parts, 99, var, rows, cols, scale, adc, acc, rs)
    z = _keyed_normals(99, nt, nb, m).astype(np.float64)
    ref = None
    for k in range(nt):
        ref = reference.noise_adc_accumulate(parts[k], z[k], var[k:k + 1] if var.shape[0] else var, rows[k], cols[k],
                                             scale[k], adc, ref, k == 0, k == nt - 1, rs)
    np.testing.assert_allclose(acc, ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_read_is_the_row_keyed_pipeline(case, dtype):
    """The whole boxmuller read (tiles, bit-serial slices as rows, output noise, every term
    layout) equals the frozen pipeline fed the row-keyed normals, bit for bit."""
    w = np.random.default_rng(7).normal(size=(45, 100)) / 10.0
    x = np.random.default_rng(8).uniform(-1.3, 1.3, size=(9, 100)).astype(dtype)
    arr = crossbar.program(w, crossbar.preset("pcm", **CASES[case]), seed=3)
    assert arr.config.normal_generator == "boxmuller"
    for t_s, seed in ((3600.0, 11), (1.0, 12), (86400.0 * 365, 13)):
        y = arr.mvm(x, t_s=t_s, seed=seed)
        ref = _frozen_read(arr, x, t_s, crossbar.as_generator(seed), generator="boxmuller")
        assert y.dtype == ref.dtype and y.tobytes() == ref.tobytes(), (t_s, seed)


@pytest.mark.parametrize("kw", [dict(), dict(tile_rows=16)])
def test_generators_draw_one_seed_per_read(kw):
    """Both generators take exactly one draw (normal_seed) from the Generator per noisy read,
    so draws after a read do not shift with the generator; the reads themselves differ."""
    w = np.random.default_rng(1).normal(size=(20, 40))
    x = np.random.default_rng(2).uniform(-1, 1, size=(3, 40)).astype(np.float32)
    ys, nxt = [], []
    for gen in ("boxmuller", "legacy"):
        arr = crossbar.program(w, crossbar.preset("pcm", normal_generator=gen, **kw), seed=0)
        g = crossbar.as_generator(5)
        ys.append(arr.mvm(x, t_s=60.0, seed=g))
        nxt.append(g.random(3))
    np.testing.assert_array_equal(nxt[0], nxt[1])
    assert not np.array_equal(ys[0], ys[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, batch, kw", [((33, 17), 1, dict()), ((7, 301), 5, dict(tile_rows=64)),
                                              ((512, 3), 2, dict(tile_rows=100, dac_slice_bits=2))])
def test_same_seed_same_read_other_seed_other_read(dtype, shape, batch, kw):
    """Reproducible from the seed (int, Generator state), for odd sizes, batch 1, tiles and
    bit-serial reads; a different seed or the next read of the array's own stream differs."""
    w = np.random.default_rng(3).normal(size=shape)
    x = np.random.default_rng(4).uniform(-1, 1, size=(batch, shape[1])).astype(dtype)
    cfg = crossbar.preset("pcm", **kw)
    a, b = crossbar.program(w, cfg, seed=9), crossbar.program(w, cfg, seed=9)
    ya = a.mvm(x, t_s=10.0, seed=21)
    assert ya.dtype == dtype and ya.shape == (batch, shape[0])
    np.testing.assert_array_equal(ya, b.mvm(x, t_s=10.0, seed=21))
    np.testing.assert_array_equal(ya, a.mvm(x, t_s=10.0, seed=crossbar.as_generator(21)))
    assert not np.array_equal(ya, a.mvm(x, t_s=10.0, seed=22))
    first, second = a.mvm(x, t_s=10.0), a.mvm(x, t_s=10.0)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, b.mvm(x, t_s=10.0))   # the arrays' own streams advance alike


def _exact_read_noise(arr, x, t_s, dtype):
    """(clean read, exact per-output noise std) of a read with converters off or a 24-bit ADC:
    y_clean = r sum_k s_k (x_k @ gn_k), var = r^2 sum_k s_k^2 (x_k^2 @ var_k), in float64 from
    the read state (r = the DAC row scale, 1 here)."""
    st = arr.read_state(t_s, dtype)
    x64 = x.astype(np.float64)
    clean = np.zeros((x.shape[0], arr.out_features))
    var = np.zeros_like(clean)
    for k, (a, b) in enumerate(st.tiles):
        s = st.scale[k].astype(np.float64)
        clean += s * (x64[:, a:b] @ st.gn[a:b].astype(np.float64))
        var += s * s * ((x64[:, a:b] ** 2) @ st.var[a:b].astype(np.float64))
    return clean, np.sqrt(var)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(adc_bits=None), dict(adc_bits=24, adc_output_range=64.0, tile_rows=48)])
def test_read_noise_has_the_exact_per_output_std(dtype, kw):
    """(read - clean read) / exact std over N = 96 rows x 53 outputs x 40 reads = 203520
    samples (pcm at 1 h, no DAC; one tile without ADC, or 3 row tiles with a 24-bit ADC whose
    step, 64 / 2^23, is 1e-5 of the smallest noise std here): mean within 5/sqrt(N), variance
    within 5 sqrt(2/(N-1)) of 1 (0.016), KS vs N(0, 1) p > 1e-4; per output (N_j = 3840),
    the variance within its own bound; a 3 % wider spread would fail the pooled bound."""
    w = np.random.default_rng(5).normal(size=(53, 130))
    x = np.random.default_rng(6).uniform(-1, 1, size=(96, 130)).astype(dtype)
    x[0] = 0.0
    x[0, 7] = 0.5   # one-hot row: the variance of a single cell
    arr = crossbar.program(w, crossbar.preset("pcm", dac_bits=None, **kw), seed=2)
    clean, sd = _exact_read_noise(arr, x, 3600.0, dtype)
    assert sd.min() > 1e-3
    g = np.random.default_rng(8)
    e = np.stack([(arr.mvm(x, t_s=3600.0, seed=g) - clean) / sd for _ in range(40)])
    n = e.size
    assert n == 203520
    assert abs(e.mean()) <= 5 / np.sqrt(n)
    assert abs(e.var() - 1) <= 5 * np.sqrt(2 / (n - 1))
    assert abs((1.03 * e).var() - 1) > 5 * np.sqrt(2 / (n - 1))
    assert kstest(e.ravel(), "norm").pvalue > 1e-4
    nj = e.shape[0] * e.shape[1]
    vj = (e ** 2).reshape(nj, -1).mean(axis=0)
    assert np.all(np.abs(vj - 1) <= 5 * np.sqrt(2 / (nj - 1))), np.abs(vj - 1).max()


def test_boxmuller_read_agrees_with_the_per_cell_reference_in_distribution():
    """The fast boxmuller read and the per-cell reference path (numpy normals per cell) of the
    same programmed array: two-sample KS per output over 3000 reads of one input (p > 1e-4),
    and the test sees a 25 % wider spread."""
    w = np.random.default_rng(3).normal(size=(3, 12))
    x = np.tile(np.random.default_rng(4).uniform(-1, 1, size=12), (3000, 1))
    cfg = crossbar.preset("pcm", dac_bits=None, adc_bits=None, out_noise_sigma=None)
    fast = crossbar.program(w, cfg, seed=7).mvm(x, seed=1)
    cell = crossbar.program(w, cfg.replace(read_noise_path="per_cell"), seed=7).mvm(x, seed=2)
    for j in range(3):
        assert ks_2samp(fast[:, j], cell[:, j]).pvalue > 1e-4, j
    c = cell[:, 0]
    assert ks_2samp(fast[:, 0], c.mean() + 1.25 * (c - c.mean())).pvalue < 1e-4


def test_rows_and_tiles_draw_independent_normals():
    """Neighbouring rows of a read have uncorrelated noise (one input row repeated, so rows
    sharing normals would correlate fully): |r| <= 5/sqrt(N). Two row tiles: the read's noise
    variance is the sum of the tiles' (within 5 sqrt(2/(N-1))); tiles sharing their normals
    would give (s_0 + s_1)^2, outside that bound here (checked)."""
    w = np.random.default_rng(1).normal(size=(64, 64))
    x = np.tile(np.random.default_rng(2).uniform(-1, 1, size=64), (400, 1))
    cfg = crossbar.preset("pcm", dac_bits=None, adc_bits=None)
    arr = crossbar.program(w, cfg, seed=3)
    clean, sd = _exact_read_noise(arr, x, 0.0, np.float64)
    e = (arr.mvm(x, seed=4) - clean) / sd
    r = np.corrcoef(e[:-1].ravel(), e[1:].ravel())[0, 1]
    assert abs(r) <= 5 / np.sqrt(e[1:].size)
    cfg2 = crossbar.preset("pcm", dac_bits=None, adc_bits=24, adc_output_range=64.0, tile_rows=32)
    arr2 = crossbar.program(w, cfg2, seed=3)
    assert len(arr2.read_state(0.0, np.float64).tiles) == 2
    parts = []
    for a, b in ((0, 32), (32, 64)):
        xk = np.zeros_like(x)
        xk[:, a:b] = x[:, a:b]
        parts.append(_exact_read_noise(arr2, xk, 0.0, np.float64)[1])
    clean2, sd2 = _exact_read_noise(arr2, x, 0.0, np.float64)
    np.testing.assert_allclose(sd2 ** 2, parts[0] ** 2 + parts[1] ** 2, rtol=1e-12)
    e2 = (arr2.mvm(x, seed=5) - clean2) / sd2
    n = e2.size
    bound = 5 * np.sqrt(2 / (n - 1))
    assert abs(e2.mean()) <= 5 / np.sqrt(n) and abs(e2.var() - 1) <= bound
    shared = ((parts[0] + parts[1]) / sd2) ** 2    # variance ratio if both tiles drew the same normals
    assert shared.mean() - 1 > 3 * bound


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standard_normal_generators(dtype):
    """crossbar.standard_normal: boxmuller = one fill of derive_key(seed, 0) (float32, widened
    for float64), legacy = the ziggurat stream; one draw from the Generator either way;
    statistics of 200000 boxmuller normals (mean, variance bounds from N, KS)."""
    from crossbar._normals import derive_key, fill_normals

    out = np.empty((400, 500), dtype)
    g = crossbar.as_generator(3)
    crossbar.standard_normal(g, out)
    seed = K.normal_seed(crossbar.as_generator(3))
    ref = np.empty(out.size, np.float32)
    fill_normals(ref, np.uint64(derive_key(np.uint64(seed), np.uint64(0))))
    np.testing.assert_array_equal(out.ravel(), ref.astype(dtype))
    n = out.size
    assert abs(out.mean()) <= 5 / np.sqrt(n) and abs(out.var() - 1) <= 5 * np.sqrt(2 / (n - 1))
    assert kstest(out.ravel(), "norm").pvalue > 1e-4
    leg = np.empty(10, dtype)
    crossbar.standard_normal(crossbar.as_generator(3), leg, "legacy")
    old = np.empty(10, dtype)
    F.standard_normal(crossbar.as_generator(3), old)
    np.testing.assert_array_equal(leg, old)
    with pytest.raises(ValueError, match="generator must be one of"):
        crossbar.standard_normal(g, out, "ziggurat")


@pytest.mark.parametrize("gen", ["boxmuller", "legacy"])
def test_digital_output_noise_uses_the_generator(gen):
    """The digital read's output noise (paper preset) comes from the config's generator:
    y - x @ W.T is sigma times crossbar.standard_normal(rng, z, generator) of the same seed."""
    w = np.random.default_rng(1).normal(size=(8, 6))
    x = np.random.default_rng(2).normal(size=(5, 6))
    cfg = crossbar.preset("paper", out_noise_sigma=0.1, out_noise_convention="absolute", normal_generator=gen)
    y = crossbar.mvm(x, w, cfg, seed=4)
    z = np.empty((5, 8))
    crossbar.standard_normal(crossbar.as_generator(4), z, gen)
    np.testing.assert_allclose(y - x @ w.T, 0.1 * z, rtol=0, atol=1e-12)

"""Each numba kernel and the whole noiseless read against the float64 numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

import crossbar
from crossbar import _kernels as K
from crossbar import reference as R

def _tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _dac(x, input_range, levels, clip, want_sq=True):
    """Run the DAC kernel with a fixed range (no drift factor, no tile sums)."""
    nb = x.shape[0]
    out = np.empty_like(x)
    dac = (False, input_range, levels, clip)
    if not want_sq:
        K.dac_rows(x, dac, 1.0, out, np.empty(nb, x.dtype))
        return out, None
    out_sq = np.empty_like(x)
    K.dac_rows_squares(x, dac, 1.0, out, out_sq, np.empty(nb, x.dtype))
    return out, out_sq


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("levels, clip", [(127, True), (127, False), (0, True), (1, True), (7, True)])
@pytest.mark.parametrize("input_range", [1.0, 0.5, 2.0])
def test_dac_matches_reference(rng, dtype, levels, clip, input_range):
    L = max(levels, 1)
    edges = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 0.5 / L, -0.5 / L, 1.5 / L, 3.0 / L, 1.0 - 0.5 / L])
    x = np.concatenate([rng.uniform(-2, 2, size=(3, 11)), np.zeros((1, 11)), edges[None] * input_range]).astype(dtype)
    out, out_sq = _dac(x, input_range, levels, clip)
    ref = R.dac(x, np.full(x.shape[0], 1.0 / input_range), levels, clip)
    np.testing.assert_allclose(out, ref, **_tol(dtype))
    np.testing.assert_allclose(out_sq, ref**2, **_tol(dtype))
    if clip:
        assert np.abs(out).max() <= 1.0


def test_dac_exact_boundaries_round_half_up():
    x = np.array([[0.5, 1.5, -0.5, -1.5, 2.5]]) / 127.0
    out, _ = _dac(x, 1.0, 127, True, want_sq=False)
    np.testing.assert_allclose(out * 127.0, [[1.0, 2.0, 0.0, -1.0, 3.0]], atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("adc_on, levels, clip", [(True, 127, True), (True, 7, False), (True, 0, True), (False, 0, False)])
@pytest.mark.parametrize("first, last", [(True, True), (False, False), (False, True)])
@pytest.mark.parametrize("with_var", [True, False])
def test_noise_adc_accumulate_matches_reference(rng, dtype, adc_on, levels, clip, first, last, with_var):
    nb, m = 4, 9
    p = rng.normal(scale=8.0, size=(nb, m)).astype(dtype)
    p[0, :3] = [0.0, 20.0, -20.0]                      # zero and saturation
    p[1, :2] = np.array([0.5, 1.5]) * 12.0 / 127.0     # exactly on ADC half steps
    var = rng.uniform(0, 0.5, size=(nb, m)).astype(dtype) if with_var else None
    z = rng.normal(size=(nb, m)).astype(dtype)
    if with_var:
        z[1, :2] = 0.0
    ov = rng.uniform(0, 0.1, size=nb).astype(dtype)
    inv_s2 = rng.uniform(0.5, 2, size=m).astype(dtype)
    scale = rng.uniform(0.5, 2, size=m).astype(dtype)
    row = rng.uniform(0.5, 2, size=nb).astype(dtype)
    acc0 = rng.normal(size=(nb, m)).astype(dtype)
    acc = acc0.copy()
    adc = (adc_on, levels, 12.0, clip)
    dense = var[None] if with_var else np.empty((0, nb, m), dtype)
    K.noise_adc_accumulate(p, z, dense, ov[None], inv_s2[None], scale, adc, acc, first, last, row)
    ref = R.noise_adc_accumulate(p, z, dense, ov[None], inv_s2[None], scale, adc, acc0, first, last, row)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    # float32 may round a value sitting on an ADC step boundary the other way: allow one step there
    if dtype == np.float32 and adc_on and levels:
        step = 12.0 / levels * np.abs(scale)[None, :] * (np.abs(row)[:, None] if last else 1.0)
        assert np.all(np.abs(acc - ref) <= step + 1e-4)
        assert np.mean(np.isclose(acc, ref, **tol)) > 0.9
    else:
        np.testing.assert_allclose(acc, ref, **tol)


@pytest.mark.parametrize("adc_on", [True, False])
def test_noise_free_kernel_without_z(rng, adc_on):
    p = rng.normal(size=(3, 4))
    p[0, :2] = [20.0, 0.5 * 12.0 / 127.0]                # saturation, an exact half step
    acc = np.empty_like(p)
    adc = (adc_on, 127, 12.0, True)
    K.adc_accumulate(p, np.full(4, 2.0), adc, acc, True, True, np.full(3, 3.0))
    np.testing.assert_allclose(acc, R.adc_accumulate(p, np.full(4, 2.0), adc, None, True, True, np.full(3, 3.0)),
                               rtol=1e-12, atol=1e-12)
    if not adc_on:
        np.testing.assert_allclose(acc, 6.0 * p)


@pytest.mark.parametrize("terms", ["dense", "rank1", "dense+rank1", "rank2"])
def test_noise_adc_float32_inputs_are_computed_in_float64(rng, terms):
    """float32 buffers, ADC off: every product, square root and sum in float64, one rounding
    to float32 at the store (bit for bit against numpy in float64; numba's float() of a
    float32 stays float32, which this catches)."""
    nb, m = 6, 11
    f = np.float32
    p, z = rng.normal(size=(nb, m)).astype(f), rng.normal(size=(nb, m)).astype(f)
    var = rng.uniform(0, 1, (1, nb, m)).astype(f) if "dense" in terms else np.empty((0, nb, m), f)
    nr = {"dense": 0, "rank1": 1, "dense+rank1": 1, "rank2": 2}[terms]
    rows, cols = rng.uniform(0, 1, (nr, nb)).astype(f), rng.uniform(0, 1, (nr, m)).astype(f)
    scale, row = rng.uniform(0.5, 2, m).astype(f), rng.uniform(0.5, 2, nb).astype(f)
    acc0 = rng.normal(size=(nb, m)).astype(f)
    acc = acc0.copy()
    K.noise_adc_accumulate(p, z, var, rows, cols, scale, (False, 0, 12.0, False), acc, False, True, row)
    d = np.float64
    v = var.astype(d).sum(axis=0) + sum(np.outer(rows[r].astype(d), cols[r].astype(d)) for r in range(nr))
    u = p.astype(d) + np.sqrt(v) * z.astype(d)
    np.testing.assert_array_equal(acc, ((scale.astype(d) * u + acc0.astype(d)) * row.astype(d)[:, None]).astype(f))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_square_kernels(rng, dtype):
    parts = rng.normal(size=(3, 5, 7)).astype(dtype)
    scale = rng.uniform(0.5, 2, size=(3, 7)).astype(dtype)
    row = rng.uniform(0.5, 2, size=5).astype(dtype)
    y0 = row[:, None].astype(np.float64) * np.einsum("tj,tbj->bj", scale.astype(np.float64), parts.astype(np.float64))
    np.testing.assert_allclose(K.mean_square_tiles(parts, scale, row), R.mean_square(y0), rtol=1e-6)
    np.testing.assert_allclose(K.mean_square(parts[0]), R.mean_square(parts[0]), rtol=1e-6)
    assert K.mean_square(np.zeros((2, 2), dtype)) == 0.0


def _noiseless(name, **kw):
    """A preset with its short-term noise off (long-term noise kept), for exact comparisons."""
    return crossbar.preset(name, read_sigma=None, out_noise_sigma=None, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, tile", [((7, 13), (4, 3)), ((5, 9), (1, 1)), ((6, 10), (1, 10)),
                                          ((6, 10), (10, 1)), ((3, 17), (16, 2)), ((4, 4), (None, None))])
@pytest.mark.parametrize("adc_bits", [8, 4, None])
def test_full_read_matches_reference_pipeline(rng, dtype, shape, tile, adc_bits):
    """Tiles of one row / one column, matrices that do not divide into tiles, saturation."""
    cfg = _noiseless("pcm", tile_rows=tile[0], tile_cols=tile[1], adc_bits=adc_bits, adc_output_range=2.0,
                     dac_bits=6)
    w = rng.normal(size=shape)
    arr = crossbar.program(w, cfg, seed=5)
    x = rng.uniform(-1.5, 1.5, size=(6, shape[1])).astype(dtype)
    x[0] = 0.0
    t = 1000.0
    gp, gm = arr.conductances(t)
    gn = (gp - gm) / 25.0
    y = arr.mvm(x, t_s=t, seed=1)
    ref = R.noiseless_pipeline(x, gn, arr._scales, tile[0], 31, 1.0, True, True,
                               0 if adc_bits is None else (1 << (adc_bits - 1)) - 1, 2.0, True, adc_bits is not None)
    assert y.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(y, ref, rtol=1e-9, atol=1e-9)
    else:  # float32 partial sums may land one ADC step away when they sit on a step boundary
        step = 0.0 if adc_bits is None else 2.0 / ((1 << (adc_bits - 1)) - 1) * np.abs(arr._scales).sum(axis=0)
        assert np.all(np.abs(y - ref) <= step + 1e-4 * (1 + np.abs(ref)))
    np.testing.assert_allclose(y[0], 0.0, atol=1e-12)


def test_effective_weights_without_periphery_equal_the_read(rng):
    cfg = _noiseless("rram", dac_bits=None, adc_bits=None, tile_rows=3)
    w = rng.normal(size=(4, 8))
    arr = crossbar.program(w, cfg, seed=2)
    x = rng.normal(size=(5, 8))
    np.testing.assert_allclose(arr.mvm(x), x @ arr.effective_weights().T, rtol=1e-10, atol=1e-12)


def test_noiseless_analog_without_quantisation_recovers_weights(rng):
    """Ideal device through the analog path (an ADC without bits would be digital): W_eff == W."""
    cfg = crossbar.ArrayConfig(drift_compensation=True, tile=crossbar.TileConfig(rows=3, cols=2))
    assert not cfg.is_digital
    w = rng.normal(size=(5, 7))
    arr = crossbar.program(w, cfg, seed=0)
    np.testing.assert_allclose(arr.effective_weights(50.0), w, rtol=1e-12, atol=1e-12)
    x = rng.normal(size=(3, 7)).astype(np.float32)
    np.testing.assert_allclose(arr.mvm(x), x.astype(np.float64) @ w.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ziggurat_normals_are_standard_normal(dtype):
    """N = 200000 draws: mean within 5/sqrt(N), variance within 5 sqrt(2/(N-1)), KS vs N(0, 1), tails."""
    from scipy.stats import kstest, norm

    z = np.empty(200_000, dtype)
    K.standard_normal(np.random.default_rng(3), z, "legacy")
    n = z.size
    assert abs(z.mean()) <= 5 / np.sqrt(n)
    assert abs(z.var(ddof=1) - 1) <= 5 * np.sqrt(2 / (n - 1))
    assert kstest(z.astype(np.float64), "norm").pvalue > 1e-4
    p_tail = 2 * norm.sf(3.442619855899)  # beyond the ziggurat's base layer: the tail path
    count = np.sum(np.abs(z) > 3.442619855899)
    assert abs(count - n * p_tail) <= 5 * np.sqrt(n * p_tail)
    again = np.empty(200_000, dtype)
    K.standard_normal(np.random.default_rng(3), again, "legacy")
    np.testing.assert_array_equal(z, again)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_cell_read_equals_reference_with_the_same_draws(rng, dtype):
    """The per-cell path, exactly: its draws (G+ then G- normals of every cell and read, from
    the read generator) fed to reference.per_cell_read give the same outputs."""
    w = rng.normal(size=(5, 7))
    x = rng.uniform(-1, 1, size=(3, 7)).astype(dtype)
    cfg = crossbar.preset("pcm", dac_bits=None, adc_bits=None, tile_rows=None, read_noise_path="per_cell")
    arr = crossbar.program(w, cfg, seed=2)
    y = arr.mvm(x, seed=11)
    draws = crossbar.as_generator(11)
    zp = draws.standard_normal((3, 7, 5), dtype=dtype)
    zm = draws.standard_normal((3, 7, 5), dtype=dtype)
    dev = cfg.device
    gp, gm = arr.conductances()
    kw = dict(g_max_us=dev.g_max_us, t_s=dev.t0_s, t_read_s=dev.t_read_s)
    s_cell = arr._scales[0][None, :] / (dev.g_max_us - dev.g_min_us)
    sig_p, sig_m = dev.read_sigma(gp, g_t_us=gp, **kw) * s_cell, dev.read_sigma(gm, g_t_us=gm, **kw) * s_cell
    want = R.per_cell_read(x, arr.effective_weights().T, sig_p, sig_m, zp, zm)
    np.testing.assert_allclose(y, want, **_tol(dtype))
    assert not np.allclose(y, x @ arr.effective_weights().T, **_tol(dtype))  # noise is there


@pytest.mark.parametrize("convention,level", [("relative", 0.2), ("absolute", 0.3), ("snr_db", 12.0)])
def test_output_noise_equals_reference_with_the_same_draws(rng, convention, level):
    """The paper's output noise on the digital path, exactly: y0 + sigma_y z with sigma_y from
    reference.output_noise_sigma and z the draws of crossbar.standard_normal with the config's
    generator (boxmuller by default) seeded from the read's Generator."""
    w = rng.normal(size=(6, 9))
    x = rng.normal(size=(4, 9))
    cfg = crossbar.preset("paper", out_noise_sigma=level, out_noise_convention=convention)
    y = crossbar.program(w, cfg).mvm(x, seed=3)
    z = np.empty((4, 6))
    K.standard_normal(crossbar.as_generator(3), z)
    y0 = R.mvm_clean(x, w)
    assert R.mean_square(y0) == pytest.approx(K.mean_square(y0), rel=1e-14)
    np.testing.assert_allclose(y, y0 + R.output_noise_sigma(y0, level, convention) * z, rtol=1e-12, atol=1e-12)


def test_standard_normal_rejects_non_contiguous_buffers():
    """A non-contiguous buffer would be filled through a copy and keep its old values."""
    out = np.zeros((4, 6))[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        K.standard_normal(np.random.default_rng(0), out)
    assert not out.any()

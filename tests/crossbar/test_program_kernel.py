"""crossbar.program_and_prepare and its kernel (crossbar._program_kernels.program_pairs).

Exactness: given the same programming normals, the fused pass gives the numbers of the
float64 numpy path (``program`` then ``prepare(0.0)``) bit for bit. Distribution: with
``normal_generator="boxmuller"`` its normals are drawn row by row inside the kernel instead
of numpy's, so the programmed conductances are checked against the programming law
statistically; "legacy" takes numpy's normals as ``program`` does and gives its numbers.
"""
from __future__ import annotations

import numpy as np
import pytest

import crossbar
from crossbar import _program_kernels as PK
from crossbar.array import _fused_laws, _program_pairs


@pytest.fixture(scope="module", autouse=True)
def _warm_program_kernel():
    PK.warm()


def _training(cfg):
    """The config a training forward programs with (as models.noise.training_config)."""
    return cfg.replace(drift_mu_nu=None, drift_sigma_nu=None, relax_sigma=None)


_FUSED = {
    "pcm": _training(crossbar.preset("pcm")),
    "rram": _training(crossbar.preset("rram")),
    "pcm 16 levels": _training(crossbar.preset("pcm", n_levels=16)),
    "pcm tiles of 16 rows": _training(crossbar.preset("pcm", tile_rows=16)),
    "rram poly read noise": _training(crossbar.preset(
        "rram", read_sigma=crossbar.Law("poly", (0.05, 0.01), x="g_norm", lo=0.02, hi=0.5))),
    "pcm no programming noise": _training(crossbar.preset("pcm", prog_sigma=None)),
    "pcm no read noise": _training(crossbar.preset("pcm", read_sigma=None)),
}


def _weights(rng, shape, dtype):
    """Weights with a zero row and column (scale 1), an exact +-max (wn = +-1) and ties."""
    w = rng.uniform(-0.2, 0.2, size=shape)
    w[1] = 0.0
    w[:, 2] = 0.0
    w[0, 0] = 0.2
    w[3, 0] = -0.2
    w[4, :] = 0.05
    return w.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(12, 40), (40, 7), (300, 5)])
@pytest.mark.parametrize("name", list(_FUSED))
def test_fused_program_equals_numpy_path_with_the_same_normals(name, shape, dtype):
    """program_pairs fed numpy's normals (G+ then G-, as program draws them) reproduces
    program(w, cfg, seed) + prepare(0.0): conductances, scales, gn and the read-noise
    variance bit for bit, so every read of the two arrays is the same too."""
    cfg = _FUSED[name]
    assert _fused_laws(cfg) is not None
    w = _weights(np.random.default_rng(4), shape, dtype)
    ref = crossbar.program(w, cfg, seed=9).prepare(0.0, dtype)
    draws = crossbar.as_generator(9)
    z = draws.standard_normal((2, shape[1], shape[0])) if cfg.device.prog_sigma is not None else np.empty((2, 0, 0))
    got = _program_pairs(w, z, cfg, draws, np.dtype(dtype))
    np.testing.assert_array_equal(got.conductances()[0], ref.conductances()[0])
    np.testing.assert_array_equal(got.conductances()[1], ref.conductances()[1])
    np.testing.assert_array_equal(got._scales, ref._scales)
    s_got, s_ref = got.read_state(0.0, dtype), ref.read_state(0.0, dtype)
    np.testing.assert_array_equal(s_got.gn, s_ref.gn)
    assert (s_got.var is None) == (s_ref.var is None) == (cfg.device.read_sigma is None)
    if s_ref.var is not None:
        np.testing.assert_array_equal(s_got.var, s_ref.var)
    assert s_got.var_col is None and s_ref.var_col is None
    np.testing.assert_array_equal(s_got.scale, s_ref.scale)
    x = np.random.default_rng(5).standard_normal((6, shape[1])).astype(dtype)
    np.testing.assert_array_equal(got.mvm(x, seed=3), ref.mvm(x, seed=3))


def test_fused_state_equals_float64_formulas():
    """Against the laws written out (float64): G = clip(G_target + sigma_prog(G_target) z),
    gn = (G+ - G-) / dg, var = (sigma_read(G+)^2 + sigma_read(G-)^2) / dg^2 (PCM 1/f law at t0)."""
    cfg = _FUSED["pcm"]
    dev = cfg.device
    w = _weights(np.random.default_rng(8), (9, 30), np.float64)
    z = np.random.default_rng(1).standard_normal((2, 30, 9))
    arr = _program_pairs(w, z, cfg, crossbar.as_generator(0), np.dtype(np.float64))
    dg = dev.g_max_us - dev.g_min_us
    wn = w.T / np.abs(w.T).max(axis=0).clip(min=1e-300)
    wn[:, np.abs(w.T).max(axis=0) == 0] = 0.0
    kw = dict(g_max_us=dev.g_max_us)
    gt = [dev.g_min_us + dg * np.maximum(s * wn, 0.0) for s in (1.0, -1.0)]
    g = [np.clip(t + dev.prog_sigma(t, **kw) * z[k], dev.g_min_us, dev.g_max_us) for k, t in enumerate(gt)]
    c, a, q_max = dev.read_sigma.coeffs
    growth = np.sqrt(np.log((dev.t0_s + dev.t_read_s) / (2 * dev.t_read_s)))
    sig = [gk * np.minimum(c / np.maximum(gk / dev.g_max_us, 1e-3) ** a, q_max) * growth for gk in g]
    st = arr.read_state(0.0, np.float64)
    np.testing.assert_allclose(st.gn, (g[0] - g[1]) / dg, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(st.var, (sig[0] ** 2 + sig[1] ** 2) / dg ** 2, rtol=1e-13, atol=0)


def test_skipped_powers_are_exactly_q_max():
    """Cells below the threshold skip pow(): their factor must be q_max, the number the full
    formula gives; checked on a grid straddling the threshold (float64)."""
    c, a, q_max = 0.0088, 0.65, 0.2
    thr = (c / q_max) ** (1.0 / a)
    q = np.concatenate([np.linspace(0.0, 2 * thr, 20001), [thr * (1 - 1e-6), thr, thr * (1 + 1e-12)]])
    got = q.copy()
    PK._pcm_q(got, np.array([c, a, q_max]), thr * (1.0 - 1e-6), np.empty(q.size, np.int64), np.empty(q.size))
    want = np.minimum(c / np.maximum(q, 1e-3) ** a, q_max)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["sonos", "pcm stuck cells", "pcm per-cell read", "rram without ADC",
                                  "pcm per-time read noise", "pcm tile scales", "pcm clipped weights"])
def test_other_configs_take_program_itself(name):
    """Configs the kernel does not cover give program(w, cfg, seed) + prepare exactly (same draws)."""
    cfg = {"sonos": crossbar.preset("sonos"), "pcm stuck cells": crossbar.preset("pcm", stuck_min_fraction=0.01),
           "pcm per-cell read": crossbar.preset("pcm", read_noise_path="per_cell"),
           "rram without ADC": crossbar.preset("rram", adc_bits=None),
           "pcm per-time read noise": crossbar.preset("pcm", read_noise_draw="per_time"),
           "pcm tile scales": crossbar.preset("pcm", weight_scale="tile"),
           "pcm clipped weights": crossbar.preset("pcm", weight_clip_sigma=2.0)}[name]
    cfg = _training(cfg)
    assert _fused_laws(cfg) is None
    w = _weights(np.random.default_rng(2), (10, 12), np.float32)
    got = crossbar.program_and_prepare(w, cfg, seed=4)
    ref = crossbar.program(w, cfg, seed=4)
    np.testing.assert_array_equal(got.effective_weights(), ref.effective_weights())
    x = np.random.default_rng(3).standard_normal((4, 12)).astype(np.float32)
    np.testing.assert_array_equal(got.mvm(x, seed=1), ref.mvm(x, seed=1))


def test_program_and_prepare_checks_its_inputs():
    cfg = _FUSED["pcm"]
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        crossbar.program_and_prepare(np.ones((2, 3)), cfg, dtype=np.int32)
    with pytest.raises(ValueError, match="weights must be finite"):
        crossbar.program_and_prepare(np.array([[1.0, np.nan]]), cfg)
    with pytest.raises(ValueError, match="weights must be 2-D"):
        crossbar.program_and_prepare(np.ones(3), cfg)


def _standardised_errors(cfg, w, seed):
    """(G - G_target) / sigma_prog(G_target) of the G+ cells of the fused programming."""
    arr = crossbar.program_and_prepare(w, cfg, seed=seed)
    dev = cfg.device
    dg = dev.g_max_us - dev.g_min_us
    gt = dev.g_min_us + dg * np.maximum(w.T.astype(np.float64) / np.abs(w.T).max(axis=0), 0.0)
    return (arr.conductances()[0] - gt) / dev.prog_sigma(gt, g_max_us=dev.g_max_us), arr


@pytest.mark.parametrize("generator", ["boxmuller", "legacy"])
def test_fused_programming_noise_is_the_programming_law(generator):
    """Both normal generators. rram, weights mapped to mid-range G+ targets (12-28 uS, sigma ~2.5 uS: clipping at 1 and
    39.26 uS is beyond 4 sigma, probability < 1e-4 per cell, counted below) over N = 120000 cells:
    the standardised errors have mean within 5/sqrt(N), variance within 5 sqrt(2/(N-1)) of 1,
    a KS p-value vs N(0, 1) above 1e-4, and are uncorrelated with the G- cells' errors
    (|r| <= 5/sqrt(N)); a spread 2 % wider would fail the variance bound (checked)."""
    from scipy.stats import kstest

    cfg = _FUSED["rram"].replace(normal_generator=generator)
    rng = np.random.default_rng(6)
    w = rng.uniform(0.3, 0.7, size=(400, 300))
    w[:, 0] = 1.0  # every column's scale is 1: targets = g_min + dg w
    e, arr = _standardised_errors(cfg, w, seed=12)
    e = e[1:].ravel()   # row 0 (w = 1, target g_max) clips by design
    n = e.size
    assert n == 119600
    assert abs(e.mean()) <= 5 / np.sqrt(n)
    assert abs(e.var(ddof=1) - 1) <= 5 * np.sqrt(2 / (n - 1))
    assert abs((1.02 * e).var(ddof=1) - 1) > 5 * np.sqrt(2 / (n - 1))  # the bound would see 2 % more spread
    assert kstest(e, "norm").pvalue > 1e-4
    # G- targets are g_min = 1 uS with sigma_prog(1) ~ 1.29 uS: half clip at g_min (binomial bound)
    gm = arr.conductances()[1][1:].ravel()
    frac = np.mean(gm == cfg.device.g_min_us)
    assert abs(frac - 0.5) <= 5 * np.sqrt(0.25 / n)
    # independence of the G+ and G- draws, on the unclipped G- cells
    dev = cfg.device
    em = (gm - dev.g_min_us) / dev.prog_sigma(np.array(dev.g_min_us), g_max_us=dev.g_max_us)
    keep = gm > dev.g_min_us
    r = np.corrcoef(e[keep], em[keep])[0, 1]
    assert abs(r) <= 5 / np.sqrt(keep.sum())


@pytest.mark.parametrize("generator", ["boxmuller", "legacy"])
def test_fused_programming_matches_program_in_distribution(generator):
    """Both normal generators. pcm: the fused path and program() give the same distribution of programmed G+ (two-sample
    KS, N = 2 x 51200, p > 1e-4) and of the read-noise variance of the prepared read, and
    different seeds give different draws (the draws are fresh)."""
    from scipy.stats import ks_2samp

    cfg = _FUSED["pcm"].replace(normal_generator=generator)
    w = np.random.default_rng(7).uniform(-0.1, 0.1, size=(512, 100))
    fused = crossbar.program_and_prepare(w, cfg, seed=1)
    numpy_path = crossbar.program(w, cfg, seed=2).prepare(0.0)
    assert ks_2samp(fused.conductances()[0].ravel(), numpy_path.conductances()[0].ravel()).pvalue > 1e-4
    assert ks_2samp(fused.read_state(0.0).var.ravel(), numpy_path.read_state(0.0).var.ravel()).pvalue > 1e-4
    again = crossbar.program_and_prepare(w, cfg, seed=3)
    assert not np.array_equal(again.conductances()[0], fused.conductances()[0])
    same = crossbar.program_and_prepare(w, cfg, seed=1)
    np.testing.assert_array_equal(same.conductances()[0], fused.conductances()[0])


@pytest.mark.parametrize("name", ["pcm", "sonos"])
def test_a_stored_dac_range_is_set_before_the_read_is_prepared(name):
    """dac_range= gives the array that DAC range (as set_ranges) with its first read still
    prepared (fused path) and reads equal to program + set_ranges with the same normals;
    a bad range is refused."""
    cfg = _training(crossbar.preset(name))
    w = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
    x = np.random.default_rng(1).uniform(-3, 3, size=(5, 6)).astype(np.float32)
    ref = crossbar.program(w, cfg, seed=0)
    ref.set_ranges(dac_range=2.5)
    if _fused_laws(cfg) is not None:
        draws = crossbar.as_generator(0)
        z = draws.standard_normal((2, 6, 8))
        got = _program_pairs(w, z, cfg, draws, np.dtype(np.float32), 2.5)
        assert (0.0, "f") in got._cache
        assert crossbar.program_and_prepare(w, cfg, seed=0, dac_range=2.5).dac_range == 2.5
    else:
        got = crossbar.program_and_prepare(w, cfg, seed=0, dac_range=2.5)
    assert got.dac_range == 2.5
    np.testing.assert_array_equal(got.mvm(x, seed=4), ref.mvm(x, seed=4))
    assert got.clip_counts() == ref.clip_counts()
    with pytest.raises(ValueError, match="dac_range must be a finite number > 0"):
        crossbar.program_and_prepare(w, cfg, seed=0, dac_range=-1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(12, 40), (40, 7), (1, 1), (257, 3)])
@pytest.mark.parametrize("name", ["pcm", "rram", "pcm tiles of 16 rows", "pcm no programming noise"])
def test_boxmuller_programming_is_the_row_keyed_normals(name, shape, dtype):
    """program_and_prepare with normal_generator="boxmuller" draws one seed from the Generator
    (``normal_seed``: the Generator's state after the call is that of one draw) and gives,
    bit for bit, program_pairs fed the normals of row i = fill_normals(2 out, derive_key(seed, i))
    (G+ the first out, G- the next), widened to float64."""
    from crossbar._kernels import normal_seed
    from crossbar._normals import derive_key, fill_normals

    cfg = _FUSED[name].replace(normal_generator="boxmuller")
    w = np.random.default_rng(4).uniform(-0.2, 0.2, size=shape).astype(dtype)
    n_out, n_in = shape
    rng = crossbar.as_generator(9)
    got = crossbar.program_and_prepare(w, cfg, seed=rng, dtype=dtype)
    after = crossbar.as_generator(9)
    if cfg.device.prog_sigma is not None:
        normal_seed(after)
    np.testing.assert_array_equal(rng.random(4), after.random(4))  # one seed drawn, nothing else
    rng = crossbar.as_generator(9)
    got = crossbar.program_and_prepare(w, cfg, seed=rng, dtype=dtype)
    draws = crossbar.as_generator(9)
    if cfg.device.prog_sigma is not None:
        seed = normal_seed(draws)
        z = np.empty((2, n_in, n_out))
        row = np.empty(2 * n_out, np.float32)
        for i in range(n_in):
            fill_normals(row, np.uint64(derive_key(np.uint64(seed), np.uint64(i))))
            z[0, i], z[1, i] = row[:n_out], row[n_out:]
    else:
        z = np.empty((2, 0, 0))
    ref = _program_pairs(w, z, cfg, draws, np.dtype(dtype))
    for a, b in zip(got.conductances(), ref.conductances()):
        np.testing.assert_array_equal(a, b)
    sa, sb = got.read_state(0.0, dtype), ref.read_state(0.0, dtype)
    np.testing.assert_array_equal(sa.gn, sb.gn)
    assert (sa.var is None) == (sb.var is None)
    if sa.var is not None:
        np.testing.assert_array_equal(sa.var, sb.var)
    x = np.random.default_rng(5).standard_normal((3, n_in)).astype(dtype)
    np.testing.assert_array_equal(got.mvm(x, seed=2), ref.mvm(x, seed=2))


@pytest.mark.parametrize("name", ["pcm", "rram"])
def test_legacy_programming_is_program_bit_for_bit(name):
    """normal_generator="legacy": program_and_prepare draws numpy's normals as program does,
    so its conductances, read state and reads equal program + prepare's for the same seed
    (the training of results made before 2026-11-30), and leaves the Generator where
    program leaves it."""
    cfg = _FUSED[name].replace(normal_generator="legacy")
    assert _fused_laws(cfg) is not None
    w = np.random.default_rng(3).uniform(-0.3, 0.3, size=(24, 17)).astype(np.float32)
    x = np.random.default_rng(4).uniform(-1, 1, size=(5, 17)).astype(np.float32)
    r1, r2 = crossbar.as_generator(8), crossbar.as_generator(8)
    got = crossbar.program_and_prepare(w, cfg, seed=r1)
    ref = crossbar.program(w, cfg, seed=r2).prepare(0.0)
    for a, b in zip(got.conductances(), ref.conductances()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(r1.random(3), r2.random(3))
    np.testing.assert_array_equal(got.mvm(x, seed=5), ref.mvm(x, seed=5))

"""Statistical tests, fixed seeds, tolerances from the sample size.

Bounds used throughout (N samples of a quantity with standard deviation sigma):
mean within 5 sigma / sqrt(N); variance within 5 sigma^2 sqrt(2 / (N - 1)).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

import crossbar
from crossbar import Law


def _check_mean(sample_mean, mean, sigma, n, what):
    bound = 5.0 * sigma / np.sqrt(n)
    err = np.abs(sample_mean - mean)
    assert np.all(err <= bound), f"{what}: |mean - expected| = {err.max():.4g} > 5 sigma/sqrt(N) = {np.min(bound):.4g}"


def _check_var(sample_var, var, n, what):
    bound = 5.0 * var * np.sqrt(2.0 / (n - 1))
    err = np.abs(sample_var - var)
    assert np.all(err <= bound), f"{what}: |var - expected| exceeds 5 sigma^2 sqrt(2/(N-1)) (worst {np.max(err / bound):.3g} x bound)"


def _read_cfg(**kw):
    """PCM device, no DAC/ADC, no output noise: only read noise is short-term."""
    return crossbar.preset("pcm", dac_bits=None, adc_bits=None, out_noise_sigma=None, **kw)


@pytest.mark.parametrize("generator", ["boxmuller", "legacy"])
@pytest.mark.parametrize("t_s", [0.0, 3600.0])
def test_read_noise_mean_and_variance_follow_the_law(rng, t_s, generator):
    n_out, n_in, n = 6, 10, 4000
    w = rng.normal(size=(n_out, n_in))
    arr = crossbar.program(w, _read_cfg(tile_rows=4, normal_generator=generator), seed=3)
    x = rng.uniform(-1, 1, size=n_in)
    y = arr.mvm(np.tile(x, (n, 1)), t_s=t_s, seed=4)         # N independent reads of one input
    # expected, computed from the conductances and the device law directly
    dev = arr.config.device
    gp, gm = arr.conductances(t_s)
    gp0, gm0 = arr.conductances(0.0)
    kw = dict(g_max_us=dev.g_max_us, t_s=dev.t0_s + t_s, t_read_s=dev.t_read_s)
    sp, sm = dev.read_sigma(gp0, g_t_us=gp, **kw), dev.read_sigma(gm0, g_t_us=gm, **kw)
    s_cell = np.repeat(arr._scales, [4, 4, 2], axis=0)       # scale of each cell: (in, out)
    var = (x[:, None] ** 2 * (sp**2 + sm**2) * s_cell**2).sum(axis=0) / 25.0**2
    mean = x @ arr.effective_weights(t_s).T
    _check_mean(y.mean(axis=0), mean, np.sqrt(var), n, "read-noise mean")
    _check_var(y.var(axis=0, ddof=1), var, n, "read-noise variance")


@pytest.mark.parametrize("generator", ["boxmuller", "legacy"])
def test_fast_and_per_cell_paths_agree_in_distribution(rng, generator):
    w = rng.normal(size=(3, 12))
    x = np.tile(rng.uniform(-1, 1, size=12), (3000, 1))
    fast = crossbar.program(w, _read_cfg(normal_generator=generator), seed=7).mvm(x, seed=1)
    cell = crossbar.program(w, _read_cfg(read_noise_path="per_cell"), seed=7).mvm(x, seed=2)
    for j in range(3):
        p = ks_2samp(fast[:, j], cell[:, j]).pvalue
        assert p > 1e-4, f"output {j}: fast and per-cell reads differ (KS p = {p:.2g})"
    c = cell[:, 0]
    wider = c.mean() + 1.25 * (c - c.mean())                  # the test can fail: 25 % more spread is seen
    assert ks_2samp(fast[:, 0], wider).pvalue < 1e-4


def test_programming_noise_follows_its_law():
    """RRAM law (in G, uS), g_max = 20 uS, all weights equal: G+ targets g_max, G- targets g_min.

    Both targets sit on a clip, so half of each distribution is folded onto the bound; the
    other half is a half-normal with mean sigma sqrt(2/pi) and std sigma sqrt(1 - 2/pi).
    """
    cfg = crossbar.preset("rram", g_max_us=20.0)
    n_out, n_in = 200, 100
    arr = crossbar.program(np.full((n_out, n_in), 0.5), cfg, seed=9)
    gp, gm = arr.conductances()
    law = cfg.device.prog_sigma
    for g, target in ((gp, 20.0), (gm, 1.0)):
        sigma = float(law(np.array(target), g_max_us=20.0))
        n = g.size
        if target == 20.0:
            below = g[g < target]
            assert abs(below.size / n - 0.5) <= 5 * np.sqrt(0.25 / n)
            _check_mean(np.mean(target - below), sigma * np.sqrt(2 / np.pi), sigma * np.sqrt(1 - 2 / np.pi),
                        below.size, "half-normal programming error")
        else:
            above = g[g > target]
            _check_mean(np.mean(above - target), sigma * np.sqrt(2 / np.pi), sigma * np.sqrt(1 - 2 / np.pi),
                        above.size, "half-normal programming error")


def test_programming_noise_unclipped_mean_and_variance():
    dev = crossbar.DeviceConfig(g_min_us=0.0, g_max_us=100.0, prog_offset=Law("poly", (0.5,)),
                                prog_sigma=Law("poly", (1.0, 0.05), lo=0.0))
    cfg = crossbar.ArrayConfig(device=dev)
    w2 = np.full((300, 100), 0.5)
    w2[0, 0] = 1.0                                           # array scale 1: G+ targets 50 uS
    arr = crossbar.program(w2, cfg.replace(weight_scale="array"), seed=5)
    gp, _ = arr.conductances()
    g = gp.ravel()[1:]
    sigma = 1.0 + 0.05 * 50.0
    _check_mean(g.mean(), 50.0 + 0.5, sigma, g.size, "programming mean (target + offset)")
    _check_var(g.var(ddof=1), sigma**2, g.size, "programming variance")


@pytest.mark.parametrize("f_min, f_max", [(0.05, 0.0), (0.02, 0.1)])
def test_stuck_fractions(f_min, f_max):
    cfg = crossbar.ArrayConfig(device=crossbar.DeviceConfig(g_min_us=1.0, g_max_us=11.0, stuck_min_fraction=f_min,
                                                            stuck_max_fraction=f_max))
    w = np.full((200, 100), 0.5)
    w[0, 0] = 1.0
    arr = crossbar.program(w, cfg.replace(weight_scale="array"), seed=6)
    gp, gm = arr.conductances()
    cells = np.concatenate([gp.ravel()[1:], gm.ravel()[1:]])   # targets 6 uS and 1 uS (= g_min)
    n = cells.size // 2
    g6 = cells[:n]
    for frac, count in ((f_min, np.sum(g6 == 1.0)), (f_max, np.sum(g6 == 11.0))):
        bound = 5 * np.sqrt(n * frac * (1 - frac))
        assert abs(count - n * frac) <= bound, f"stuck count {count}, expected {n * frac} +- {bound}"
    assert np.sum(cells[n:] == 11.0) == pytest.approx(n * f_max, abs=5 * np.sqrt(n * f_max * (1 - f_max)) + 1e-9)


def test_drift_exponents_follow_their_laws():
    """PCM at G = g_max: mu_nu = 0.049, sigma_nu = 0.008 (clipped laws), no programming noise."""
    cfg = crossbar.preset("pcm", prog_sigma=None, read_sigma=None, dac_bits=None, adc_bits=None)
    arr = crossbar.program(np.ones((200, 100)), cfg, seed=8)
    t = 1e5
    g0, _ = arr.conductances(0.0)
    gt, _ = arr.conductances(t)
    nu = -np.log(gt / g0).ravel() / np.log((20.0 + t) / 20.0)
    mu, sigma = 0.049, 0.008
    _check_mean(nu.mean(), mu, sigma, nu.size, "drift exponent mean")
    _check_var(nu.var(ddof=1), sigma**2, nu.size, "drift exponent variance")


def test_global_drift_compensation_undoes_uniform_drift(rng):
    dev = crossbar.DeviceConfig(drift_mu_nu=Law("poly", (0.06,)))
    cfg = crossbar.ArrayConfig(device=dev, drift_compensation=True)
    w = rng.normal(size=(4, 6))
    arr = crossbar.program(w, cfg, seed=0)
    np.testing.assert_allclose(arr.effective_weights(1e6), w, rtol=1e-12, atol=1e-12)
    plain = crossbar.program(w, cfg.replace(drift_compensation=False), seed=0)
    np.testing.assert_allclose(plain.effective_weights(1e6), w * ((20.0 + 1e6) / 20.0) ** -0.06, rtol=1e-12)


@pytest.mark.parametrize("convention, sigma", [("absolute", 0.3), ("relative", 0.2), ("snr_db", 10.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_noise_conventions(rng, convention, sigma, dtype):
    """Per-call noise std sigma_y: absolute sigma; relative sigma RMS(y0); snr_db sqrt(ms(y0) / 10^(snr/10))."""
    w = rng.normal(size=(64, 32))
    x = rng.normal(size=(512, 32)).astype(dtype)
    cfg = crossbar.preset("paper", out_noise_sigma=sigma, out_noise_convention=convention)
    y = crossbar.mvm(x, w, cfg, seed=3)
    y0 = x.astype(np.float64) @ w.T
    ms = np.mean(y0**2)
    expected = {"absolute": sigma, "relative": sigma * np.sqrt(ms), "snr_db": np.sqrt(ms / 10 ** (sigma / 10))}
    var = expected[convention] ** 2
    noise = (y - y0).ravel()
    _check_mean(noise.mean(), 0.0, np.sqrt(var), noise.size, "output-noise mean")
    _check_var(noise.var(ddof=1), var, noise.size, "output-noise variance")
    if convention == "snr_db":
        snr = 10 * np.log10(ms / noise.var())
        assert abs(snr - sigma) < 10 / np.log(10) * 5 * np.sqrt(2 / (noise.size - 1))


def test_output_noise_on_the_analog_path_matches_convention(rng):
    """Split over row tiles, before the ADC: total output noise keeps the configured variance."""
    w = rng.normal(size=(16, 40))
    x = np.tile(rng.uniform(-1, 1, size=40), (4000, 1))
    cfg = crossbar.preset("ideal", tile_rows=16, out_noise_sigma=0.05, out_noise_convention="absolute",
                          drift_compensation=True)
    y = crossbar.mvm(x, w, cfg, seed=1)
    y0 = x[0] @ w.T
    _check_mean(y.mean(axis=0), y0, 0.05, y.shape[0], "analog-path output-noise mean")
    _check_var(y.var(axis=0, ddof=1), 0.05**2, y.shape[0], "analog-path output-noise variance")


def test_short_term_noise_is_fresh_long_term_is_frozen(rng):
    w = rng.normal(size=(5, 8))
    x = rng.normal(size=(2, 8))
    arr = crossbar.program(w, crossbar.preset("pcm"), seed=1)
    before = arr.effective_weights()
    a, b = arr.mvm(x), arr.mvm(x)
    assert not np.array_equal(a, b)                           # read noise redrawn
    np.testing.assert_array_equal(arr.effective_weights(), before)  # reads leave the long-term state alone
    other = crossbar.program(w, crossbar.preset("pcm"), seed=2)
    assert not np.array_equal(other.effective_weights(), before)    # long-term noise drawn at programming
    same = crossbar.program(w, crossbar.preset("pcm"), seed=1)
    np.testing.assert_array_equal(same.conductances()[0], arr.conductances()[0])
    np.testing.assert_array_equal(same.mvm(x, seed=5), arr.mvm(x, seed=np.random.Generator(np.random.SFC64(5))))


def _frozen_cfg(draw):
    """PCM read noise only (no programming noise, deterministic drift), no DAC/ADC."""
    return _read_cfg(prog_sigma=None, drift_sigma_nu=None, read_noise_draw=draw)


def test_read_noise_per_time_is_frozen_per_time_setting(rng):
    """read_noise_draw="per_time" (aihwkit): every read at one time sees the same draw; another
    time setting draws anew; returning to a time gives that time's draw again."""
    w = rng.normal(size=(6, 10))
    x = rng.uniform(-1, 1, size=(5, 10))
    arr = crossbar.program(w, _frozen_cfg("per_time"), seed=3)
    y1 = arr.mvm(x, t_s=3600.0, seed=1)
    np.testing.assert_array_equal(arr.mvm(x, t_s=3600.0, seed=2), y1)       # no fresh noise per read
    assert not np.allclose(y1, x @ arr.effective_weights(3600.0).T)         # but read noise is there
    for k in range(10):                                                     # other times (evicts caches)
        assert not np.array_equal(arr.mvm(x, t_s=3600.0 + k + 1), y1)
    np.testing.assert_array_equal(arr.mvm(x, t_s=3600.0), y1)
    same = crossbar.program(w, _frozen_cfg("per_time"), seed=3)
    np.testing.assert_array_equal(same.mvm(x, t_s=3600.0), y1)              # same seed, same draw
    fresh = crossbar.program(w, _frozen_cfg("per_read"), seed=3)
    assert not np.array_equal(fresh.mvm(x, t_s=3600.0, seed=1), fresh.mvm(x, t_s=3600.0, seed=2))


def test_read_noise_per_read_and_per_time_have_the_same_law(rng):
    """One input, t = 1 h. per_read: N reads of one array; per_time: one read of each of N
    arrays (seeds 0..N-1). Both spreads must equal sum_i x_i^2 (s+^2 + s-^2) / dg^2 (variance
    bound 5 sigma^2 sqrt(2/(N-1))), and the frozen spread must be zero within one array."""
    n_out, n_in, n, t_s = 4, 10, 2000, 3600.0
    w = rng.normal(size=(n_out, n_in))
    x = rng.uniform(-1, 1, size=n_in)
    per_read = crossbar.program(w, _frozen_cfg("per_read"), seed=0)
    y_read = per_read.mvm(np.tile(x, (n, 1)), t_s=t_s, seed=1)
    y_time = np.stack([crossbar.program(w, _frozen_cfg("per_time"), seed=s).mvm(x, t_s=t_s) for s in range(n)])
    dev = per_read.config.device
    gp, gm = per_read.conductances(t_s)
    gp0, gm0 = per_read.conductances(0.0)
    kw = dict(g_max_us=dev.g_max_us, t_s=dev.t0_s + t_s, t_read_s=dev.t_read_s)
    sp, sm = dev.read_sigma(gp0, g_t_us=gp, **kw), dev.read_sigma(gm0, g_t_us=gm, **kw)
    var = (x[:, None] ** 2 * (sp**2 + sm**2) * per_read._scales[0] ** 2).sum(axis=0) / 25.0**2
    mean = x @ per_read.effective_weights(t_s).T
    for y, what in ((y_read, "per_read"), (y_time, "per_time")):
        _check_mean(y.mean(axis=0), mean, np.sqrt(var), n, f"{what} mean")
        _check_var(y.var(axis=0, ddof=1), var, n, f"{what} variance")
    # the bound can fail: a spread 30 % wider is rejected
    with pytest.raises(AssertionError):
        _check_var((1.3 * (y_time - y_time.mean(axis=0))).var(axis=0, ddof=1), var, n, "wider")
    within = np.stack([crossbar.program(w, _frozen_cfg("per_time"), seed=0).mvm(x, t_s=t_s, seed=s)
                       for s in range(20)])
    assert np.ptp(within, axis=0).max() == 0.0


def test_read_noise_draw_is_validated_and_round_trips():
    cfg = crossbar.preset("pcm", read_noise_draw="per_time")
    assert crossbar.ArrayConfig.from_json(cfg.to_json()) == cfg
    assert crossbar.preset("pcm").device.read_noise_draw == "per_read"       # the default
    with pytest.raises(ValueError, match="read_noise_draw must be one of 'per_read', 'per_time', got 'once'"):
        crossbar.preset("pcm", read_noise_draw="once")


def test_per_time_array_saves_and_loads_its_draws(rng, tmp_path):
    w = rng.normal(size=(4, 6))
    x = rng.uniform(-1, 1, size=(3, 6))
    arr = crossbar.program(w, crossbar.preset("pcm", read_noise_draw="per_time"), seed=5)
    arr.save(tmp_path / "a.h5")
    back = crossbar.load_programmed(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.mvm(x, t_s=100.0, seed=1), arr.mvm(x, t_s=100.0, seed=1))

"""Bit-serial inputs, weight slicing, stored converter ranges and saturation counts.

Statistical bounds as in test_statistics.py (N samples of a quantity with standard
deviation sigma): mean within 5 sigma / sqrt(N); variance within 5 sigma^2 sqrt(2 / (N - 1)).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import crossbar
from crossbar import reference as R


def _ideal(**kw):
    """Ideal device with a DAC (8 bits, range 1) and nothing else unless overridden."""
    base = dict(dac_bits=8, dac_input_range=1.0)
    base.update(kw)
    return crossbar.preset("ideal", **base)


def _dac_quantised(x, bits, r=1.0):
    levels = (1 << (bits - 1)) - 1
    return r * R.quantize(x / r, levels, True)


@pytest.mark.parametrize("slice_bits", [1, 2, 3, 8])
@pytest.mark.parametrize("tile_rows", [None, 5])
def test_bit_serial_without_noise_equals_the_plain_read(slice_bits, tile_rows):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 13))
    x = rng.uniform(-1.3, 1.3, size=(7, 13))
    plain = crossbar.program(w, _ideal(tile_rows=tile_rows), seed=1)
    serial = crossbar.program(w, _ideal(tile_rows=tile_rows, dac_slice_bits=slice_bits), seed=1)
    y0 = plain.mvm(x)
    y1 = serial.mvm(x)
    np.testing.assert_allclose(y1, y0, rtol=1e-12, atol=1e-12)
    # and both equal the DAC-quantised product (the DAC is the only thing acting)
    np.testing.assert_allclose(y0, _dac_quantised(x, 8) @ w.T, rtol=1e-12, atol=1e-12)


def test_bit_serial_slices_are_two_complement_codes():
    arr = crossbar.program(np.eye(3), _ideal(dac_bits=4, dac_slice_bits=2), seed=0)
    levels = 7
    xn = np.array([[-1.0, -1.0 / levels, 3.0 / levels]])
    v, coef = arr._bit_slices(xn)
    # 4-bit two's complement: -7 = 1001, -1 = 1111, 3 = 0011; low slice unsigned /3, top slice signed /2
    np.testing.assert_allclose(v, [[1 / 3, 1.0, 1.0], [-1.0, -0.5, 0.0]])
    np.testing.assert_allclose(coef, [3 / 7, 4 * 2 / 7])
    np.testing.assert_allclose(coef[0] * v[0] + coef[1] * v[1], xn[0] * 1.0, rtol=1e-15)


def test_bit_serial_with_adc_quantises_each_slice():
    """With an ADC each slice is converted on its own: close to the plain read, not equal (documented)."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=(8, 32))
    x = rng.uniform(-1, 1, size=(16, 32))
    cfg = _ideal(adc_bits=6, adc_output_range=8.0)
    y0 = crossbar.program(w, cfg, seed=0).mvm(x)
    y1 = crossbar.program(w, cfg.replace(dac_slice_bits=1), seed=0).mvm(x)
    assert not np.array_equal(y0, y1)
    assert np.abs(y1 - y0).max() < 0.25 * np.abs(y0).max()


@pytest.mark.parametrize("slices,bits", [(2, 4), (3, 2)])
def test_weight_slices_without_noise_equal_the_quantised_weights(slices, bits):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(5, 9))
    x = rng.uniform(-1, 1, size=(4, 9))
    cfg = crossbar.preset("ideal", weight_slices=slices, weight_slice_bits=bits)
    arr = crossbar.program(w, cfg, seed=0)
    assert not cfg.is_digital and len(arr.weight_slices) == slices
    q = (1 << (slices * bits)) - 1
    s = np.abs(w).max(axis=1, keepdims=True)  # per-column scale (column of the crossbar = row of W)
    wq = np.sign(w) * np.floor(np.abs(w) / s * q + 0.5) / q * s
    np.testing.assert_allclose(arr.effective_weights(), wq, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(arr.mvm(x), x @ wq.T, rtol=1e-12, atol=1e-12)


def _serial_variance(arr, x, t_s):
    """Exact per-output variance of a bit-serial read without ADC: rs^2 sum_s c_s^2 (v_s^2 @ var)."""
    st = arr._state(t_s, np.dtype(np.float64))
    xn, rs = arr._dac(x, st, None, False, False)
    v, coef = arr._bit_slices(xn)
    nb = x.shape[0]
    var = sum(c * c * (v[s * nb:(s + 1) * nb] ** 2 @ st.var) for s, c in enumerate(coef))
    return var * (rs[:, None] ** 2)


@pytest.mark.parametrize("path", ["output", "per_cell"])
def test_bit_serial_read_noise_matches_the_exact_variance(path):
    """Fresh read noise per slice: output-referred and per-cell paths both give the variance
    rs^2 sum_s c_s^2 sum_i v_si^2 sigma_ij^2 (and the mean of the clean read)."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(6, 16))
    cfg = crossbar.preset("pcm", adc_bits=None, dac_slice_bits=2, read_noise_path=path)
    arr = crossbar.program(w, cfg, seed=5)
    n = 4000
    x = np.repeat(rng.uniform(-1, 1, size=(1, 16)), n, axis=0)
    t = 3600.0
    y = arr.mvm(x, t_s=t, seed=6)
    clean = _dac_quantised(x[:1], 8) @ arr.effective_weights(t).T
    var = _serial_variance(arr, x[:1], t)[0]
    sd = np.sqrt(var)
    assert np.all(np.abs(y.mean(0) - clean[0]) <= 5 * sd / np.sqrt(n)), "mean outside 5 sigma/sqrt(N)"
    bound = 5 * var * np.sqrt(2 / (n - 1))
    assert np.all(np.abs(y.var(0, ddof=1) - var) <= bound), \
        f"variance off: worst {np.max(np.abs(y.var(0, ddof=1) - var) / bound):.3g} x bound"
    # the test can fail: a plain (one-read) variance is distinguishable from the bit-serial one
    plain = crossbar.program(w, cfg.replace(dac_slice_bits=None), seed=5)
    st = plain._state(t, np.dtype(np.float64))
    var_plain = (_dac_quantised(x[:1], 8) ** 2 @ st.var)[0]
    assert np.any(np.abs(var_plain - var) > bound)


def test_weight_sliced_read_noise_fast_equals_per_cell_in_distribution():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(4, 12))
    cfg = crossbar.preset("pcm", adc_bits=None, dac_bits=None, weight_slices=2, weight_slice_bits=3)
    n = 4000
    x = np.repeat(rng.uniform(-1, 1, size=(1, 12)), n, axis=0)
    t = 60.0
    ys = [crossbar.program(w, cfg.replace(read_noise_path=p), seed=8).mvm(x, t_s=t, seed=9)
          for p in ("output", "per_cell")]
    arr = crossbar.program(w, cfg, seed=8)
    var = np.zeros(4)
    for sub, c in zip(arr.weight_slices, arr._slices[1]):
        st = sub._state(t, np.dtype(np.float64))
        var += c * c * (x[:1] ** 2 @ st.var)[0]
    bound = 5 * var * np.sqrt(2 / (n - 1))
    for y, p in zip(ys, ("output", "per_cell")):
        assert np.all(np.abs(y.var(0, ddof=1) - var) <= bound), f"{p}: variance outside 5 sigma^2 sqrt(2/(N-1))"
        mean = (x[:1] @ arr.effective_weights(t).T)[0]
        assert np.all(np.abs(y.mean(0) - mean) <= 5 * np.sqrt(var / n)), f"{p}: mean outside 5 sigma/sqrt(N)"


def test_dac_and_adc_clip_counts():
    w = np.ones((2, 4))
    arr = crossbar.program(w, _ideal(adc_bits=8, adc_output_range=2.0), seed=0)
    x = np.array([[2.0, 0.5, -1.5, 0.0], [0.1, 0.1, 0.1, 0.1]])
    y = arr.mvm(x)
    c = arr.clip_counts()
    assert c["dac_conversions"] == 8 and c["dac_clipped"] == 2
    # partial sums: row 0 = 1 + 0.5 - 1 = 0.5 (no clip), row 1 = 0.4: none clips at R = 2
    assert c["adc_conversions"] == 4 and c["adc_clipped"] == 0
    x2 = np.array([[1.0, 1.0, 1.0, 0.0]])  # partial sum 3 > R = 2: both outputs clip
    arr.mvm(x2)
    dac_f, adc_f = arr.clip_fractions()
    assert arr.clip_counts()["adc_clipped"] == 2
    assert dac_f == pytest.approx(2 / 12) and adc_f == pytest.approx(2 / 6)
    arr.reset_clip_counts()
    assert arr.clip_fractions() == (0.0, 0.0)
    np.testing.assert_allclose(y[0], [0.5, 0.5], atol=1e-2)


def test_stored_dac_range_replaces_the_config_range():
    rng = np.random.default_rng(10)
    w = rng.normal(size=(3, 5))
    x = rng.uniform(-3, 3, size=(6, 5))
    arr = crossbar.program(w, _ideal(), seed=0)
    arr.set_ranges(dac_range=3.0)
    assert arr.dac_range == 3.0
    np.testing.assert_allclose(arr.mvm(x), _dac_quantised(x, 8, 3.0) @ w.T, rtol=1e-12, atol=1e-12)
    assert arr.clip_fractions()[0] == 0.0
    with pytest.raises(ValueError, match="dac_range must be a finite number > 0"):
        arr.set_ranges(dac_range=0.0)


def test_calibrated_adc_ranges_are_per_tile_and_stop_clipping():
    rng = np.random.default_rng(11)
    w = rng.normal(size=(6, 20))
    x = rng.uniform(-1, 1, size=(50, 20))
    cfg = _ideal(adc_bits=8, adc_output_range=0.5, tile_rows=8, tile_cols=3)
    arr = crossbar.program(w, cfg, seed=0)
    arr.mvm(x)
    assert arr.clip_fractions()[1] > 0.3  # range 0.5 is far too small
    arr.reset_clip_counts()
    ranges = arr.calibrate_adc(x)
    assert ranges.shape == (3, 6)
    assert arr.clip_counts()["dac_conversions"] == 0  # calibration reads are not counted
    # one range per (row tile, column tile): equal within a column tile
    np.testing.assert_array_equal(ranges[:, 0], ranges[:, 2])
    y = arr.mvm(x)
    assert arr.clip_fractions()[1] == 0.0
    # the read equals the noiseless reference with those ranges, tile by tile
    xn = R.quantize(x, 127, True)
    ref = np.zeros_like(y)
    for k, a in enumerate(range(0, 20, 8)):
        s = np.abs(w[:, a:a + 8]).max(axis=1)  # per-column scale of this row tile
        part = xn[:, a:a + 8] @ (w[:, a:a + 8] / s[:, None]).T
        ref += ranges[k] * R.quantize(part / ranges[k], 127, True) * s
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_calibrate_adc_on_bit_serial_uses_the_slice_partial_sums():
    rng = np.random.default_rng(12)
    w = np.abs(rng.normal(size=(4, 16)))
    x = rng.uniform(-1, 1, size=(30, 16))
    arr = crossbar.program(w, _ideal(adc_bits=8, dac_slice_bits=1), seed=0)
    arr.calibrate_adc(x)
    arr.mvm(x)
    assert arr.clip_fractions()[1] == 0.0


def test_ranges_and_slices_survive_save_and_load(tmp_path):
    rng = np.random.default_rng(13)
    w = rng.normal(size=(4, 6))
    x = rng.uniform(-2, 2, size=(5, 6))
    cfg = crossbar.preset("pcm", weight_slices=2, weight_slice_bits=3, adc_range_mode="calibrated")
    arr = crossbar.program(w, cfg, seed=1)
    arr.set_ranges(dac_range=2.0)
    arr.calibrate_adc(x, t_s=10.0)
    arr.save(tmp_path / "a.h5")
    back = crossbar.load_programmed(tmp_path / "a.h5")
    assert back.dac_range == 2.0
    np.testing.assert_array_equal(back.adc_ranges, arr.adc_ranges)
    np.testing.assert_array_equal(back.mvm(x, t_s=10.0, seed=3), arr.mvm(x, t_s=10.0, seed=3))


def test_slice_config_validation():
    with pytest.raises(ValueError, match="dac_slice_bits=1 needs dac_bits"):
        crossbar.preset("ideal", dac_slice_bits=1)
    with pytest.raises(ValueError, match="dac_slice_bits must be <= dac_bits=8"):
        crossbar.preset("pcm", dac_slice_bits=9)
    assert crossbar.preset("pcm", dac_slice_bits=3).dac.slices == 3
    assert crossbar.preset("pcm", dac_slice_bits=1).dac.slices == 8
    with pytest.raises(ValueError, match="weight_slices must be an int"):
        crossbar.preset("pcm", weight_slices=0)


def test_rram_relaxation_spread_follows_the_fitted_law():
    """rram: the conductance spread grows as sqrt(sigma_prog^2 + relax_sigma^2 ln(t/t0)); at 1 day
    its added part is close to aihwkit's 1-day over 1-s polynomial fits of Wan et al. (2022)."""
    cfg = crossbar.preset("rram", dac_bits=None, adc_bits=None)
    dev = cfg.device
    n = 20000
    w = np.tile([1.0, 0.5], (n, 1))  # column scale 1: input 1 puts every G+ at the mid-range target
    arr = crossbar.program(w, cfg, seed=0)
    g_t = dev.g_min_us + 0.5 * (dev.g_max_us - dev.g_min_us)
    t = 86400.0
    gp = arr.conductances(t)[0][1]
    ln_t = np.log((dev.t0_s + t) / dev.t0_s)
    sd = float(np.sqrt(dev.prog_sigma(g_t, g_max_us=dev.g_max_us) ** 2
                       + dev.relax_sigma(g_t, g_max_us=dev.g_max_us) ** 2 * ln_t))
    bound = 5 * sd ** 2 * np.sqrt(2 / (n - 1))
    assert abs(gp.var(ddof=1) - sd ** 2) <= bound, "spread at 1 day outside 5 sigma^2 sqrt(2/(N-1))"
    g = g_t / 40.0
    pv = np.polynomial.polynomial.polyval
    added = np.sqrt(pv(g, [0.701, 22.086, -50.773, 47.095, -16.458]) ** 2
                    - pv(g, [0.348, 16.030, -43.853, 45.393, -16.815]) ** 2)  # aihwkit's 1 day over its 1 s
    assert abs(dev.relax_sigma(g_t, g_max_us=dev.g_max_us) * np.sqrt(ln_t) - added) < 0.1
    # the same instance changes with time: t_s = 0 is the programmed state, later it is not
    g0 = arr.conductances(0.0)[0][1]
    assert g0.std() < 0.8 * gp.std()
    y = [arr.mvm(np.ones((1, 2)), t_s=ts, seed=1) for ts in (1.0, t)]
    assert not np.array_equal(y[0], y[1])


def test_relax_mu_matches_float64_reference_and_round_trips(tmp_path):
    """relax_mu: G(t) = clip(G_prog + (relax_mu(G_t) + relax_sigma(G_t) z) sqrt(ln((t0 + t_s)/t0)));
    without programming noise and relax_sigma the move is deterministic and equals the float64
    formula; with relax_sigma the mean follows relax_mu within 5 standard errors; JSON and
    HDF5 round trips keep it; a malformed law is refused."""
    base = crossbar.preset("ideal", dac_bits=None, adc_bits=None)
    law = crossbar.Law("poly", (1.5, -4.0), x="g_norm")  # +1.5 uS at g_min, -2.5 uS at g_max (uS / sqrt(ln))
    dev = crossbar.DeviceConfig(g_min_us=0.0, g_max_us=25.0, relax_mu=law, t0_s=20.0)
    cfg = base.replace(device=dev)
    w = np.array([[1.0, 0.5, 0.0, -0.25]])
    arr = crossbar.program(w, cfg, seed=0)
    t = 3600.0
    gp, gm = arr.conductances(t)
    gp0, gm0 = arr.conductances(0.0)
    root = np.sqrt(np.log((20.0 + t) / 20.0))
    ref_p = np.clip(gp0 + law(gp0, g_max_us=25.0) * root, 0.0, 25.0)  # no programming noise: G_prog = G_t
    ref_m = np.clip(gm0 + law(gm0, g_max_us=25.0) * root, 0.0, 25.0)
    np.testing.assert_allclose(gp, ref_p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gm, ref_m, rtol=0, atol=1e-12)
    assert not crossbar.DeviceConfig(relax_mu=law).is_ideal
    # JSON round trip keeps the law; the HDF5 round trip keeps the programmed offsets
    back = crossbar.ArrayConfig.from_json(cfg.to_json())
    assert back.device.relax_mu == law
    arr.save(tmp_path / "a.h5")
    loaded = crossbar.load_programmed(tmp_path / "a.h5")
    np.testing.assert_array_equal(loaded.conductances(t)[0], gp)
    # with relax_sigma: mean shift relax_mu, spread relax_sigma, both times sqrt(ln)
    dev2 = dataclasses.replace(dev, relax_sigma=crossbar.Law("poly", (2.0,), x="g_norm"))
    n = 20000
    arr2 = crossbar.program(np.tile([1.0, 0.5], (n, 1)), base.replace(device=dev2), seed=1)
    d = arr2.conductances(t)[0][1] - 12.5  # input 1: every G+ targets mid-range (12.5 uS), no programming noise
    assert d.size == n
    se = 2.0 * root / np.sqrt(n)
    assert abs(d.mean() - law(12.5, g_max_us=25.0) * root) < 5 * se
    assert abs(d.std(ddof=1) - 2.0 * root) < 5 * 2.0 * root / np.sqrt(2 * (n - 1))
    with pytest.raises(ValueError, match="relax_mu"):
        crossbar.DeviceConfig(relax_mu=[1.0])

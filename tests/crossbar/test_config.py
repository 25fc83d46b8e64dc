"""Config validation, repr, JSON round trip, presets and device-model files."""
from __future__ import annotations

import json

import numpy as np
import pytest

import crossbar
from crossbar import ArrayConfig, DeviceConfig, Law


@pytest.mark.parametrize("overrides, message", [
    (dict(adc_bits=0), "adc_bits must be an int in [2, 24] or None, got 0"),
    (dict(dac_bits=1.5), "dac_bits must be an int in [2, 24] or None, got 1.5"),
    (dict(g_max_us=-1.0), "g_max_us must be a finite number in (0, inf], got -1.0"),
    (dict(g_min_us=30.0), "g_max_us must be > g_min_us=30.0, got 25.0"),
    (dict(stuck_min_fraction=1.5), "stuck_min_fraction must be a finite number in [0, 1], got 1.5"),
    (dict(stuck_min_fraction=0.6, stuck_max_fraction=0.6), "must be <= 1"),
    (dict(tile_rows=0), "tile_rows must be an int in [1, 1048576] or None, got 0"),
    (dict(out_noise_convention="db"), "out_noise_convention must be one of 'relative', 'absolute', 'snr_db'"),
    (dict(out_noise_sigma=-0.1), "out_noise_sigma must be a finite number in [0, inf] or None, got -0.1"),
    (dict(out_noise_sigma=float("nan")), "out_noise_sigma must be a finite number"),
    (dict(read_noise_path="cell"),
     "read_noise_path must be one of 'output', 'per_cell', 'output_column_mean', got 'cell'"),
    (dict(weight_scale="row"), "weight_scale must be one of 'column', 'tile', 'array', got 'row'"),
    (dict(drift_compensation=1), "drift_compensation must be a bool, got 1"),
    (dict(adc_output_range=0.0), "adc_output_range must be a finite number in (0, inf], got 0.0"),
    (dict(n_levels=1), "n_levels must be an int in [2, 16777216] or None, got 1"),
])
def test_invalid_values_say_expected_and_got(overrides, message):
    with pytest.raises(ValueError) as err:
        crossbar.preset("pcm", **overrides)
    assert message in str(err.value)


def test_unknown_keys_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['adc_bitz'\]; valid keys are .*'adc_bits'"):
        crossbar.preset("ideal", adc_bitz=8)
    with pytest.raises(ValueError, match=r"ArrayConfig: unknown key\(s\) \['extra'\]; valid keys are \['name'"):
        ArrayConfig.from_dict({"extra": 1})
    with pytest.raises(ValueError, match=r"DeviceConfig: unknown key\(s\) \['g_maxx'\]"):
        ArrayConfig.from_dict({"device": {"g_maxx": 3}})
    with pytest.raises(ValueError, match=r"Law: unknown key\(s\) \['power'\]"):
        Law.from_dict({"kind": "poly", "coeffs": [1.0], "power": 2})


@pytest.mark.parametrize("kw, message", [
    (dict(kind="cubic"), "Law.kind must be one of 'poly', 'pcm_read', 'sat_exp', 'gauss', got 'cubic'"),
    (dict(x="G"), "Law.x must be one of"),
    (dict(coeffs=()), "Law.coeffs must be a non-empty sequence"),
    (dict(kind="sat_exp", coeffs=(1.0,)), "must have 2 values, got 1"),
    (dict(lo=2.0, hi=1.0), "Law.lo must be <= Law.hi"),
])
def test_law_validation(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Law(**kw)


@pytest.mark.parametrize("name", sorted(crossbar.PRESETS))
def test_json_round_trip_of_every_preset(name):
    cfg = crossbar.preset(name, adc_bits=6, out_noise_sigma=0.2)
    again = ArrayConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(again.to_json()) == json.loads(cfg.to_json())


def test_repr_shows_only_non_defaults():
    assert repr(ArrayConfig()) == "ArrayConfig()"
    assert repr(ArrayConfig().replace(adc_bits=8)) == "ArrayConfig(adc=ADCConfig(bits=8))"
    assert "g_max_us" not in repr(crossbar.preset("pcm").device)


def test_physical_presets_default_periphery():
    for name in ("pcm", "rram", "sonos"):
        cfg = crossbar.preset(name)
        assert (cfg.dac.bits, cfg.adc.bits, cfg.tile.rows, cfg.tile.cols) == (8, 8, 512, 512)
    assert crossbar.preset("ideal").is_digital and crossbar.preset("paper").is_digital
    assert crossbar.preset("paper").output_noise.active


def test_preset_from_device_model_file(tmp_path):
    cfg = crossbar.preset("rram", adc_bits=6)
    bare = tmp_path / "bare.json"
    bare.write_text(cfg.to_json())
    wrapped = tmp_path / "model.json"
    wrapped.write_text(json.dumps({"array_config": cfg.to_dict(), "calibration": {"r2": 0.9}}))
    assert crossbar.preset(str(bare)) == cfg
    assert crossbar.preset(wrapped, tile_rows=64) == cfg.replace(tile_rows=64)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"array_config": {"devise": {}}}))
    with pytest.raises(ValueError, match=r"bad.json: ArrayConfig: unknown key\(s\) \['devise'\]"):
        crossbar.preset(bad)
    with pytest.raises(ValueError, match="expected one of .*'ideal'.* or an existing JSON file, got 'nope'"):
        crossbar.preset("nope")


def test_calibration_style_device_programs_and_reads(rng):
    """A fitted device: Law("poly", coeffs in G in uS) for every law, as calibration writes it."""
    dev = DeviceConfig(g_min_us=0.5, g_max_us=30.0, n_levels=32,
                       prog_offset=Law("poly", (0.05, -0.002)), prog_sigma=Law("poly", (0.3, 0.02), lo=0.0),
                       read_sigma=Law("poly", (0.05, 0.004), lo=0.0),
                       drift_mu_nu=Law("poly", (0.06, -0.0005), lo=0.0), drift_sigma_nu=Law("poly", (0.01,), lo=0.0),
                       stuck_min_fraction=0.01)
    cfg = ArrayConfig(device=dev)
    assert ArrayConfig.from_json(cfg.to_json()) == cfg
    w = rng.normal(size=(5, 9))
    y = crossbar.program(w, cfg, seed=1).mvm(rng.normal(size=(4, 9)), t_s=60.0, seed=2)
    assert y.shape == (4, 5) and np.isfinite(y).all()


def test_pcm_laws_match_aihwkit_formulas():
    dev = crossbar.preset("pcm").device
    g = np.array([0.5, 5.0, 12.5, 25.0])
    gn = g / 25.0
    np.testing.assert_allclose(dev.prog_sigma(g, g_max_us=25.0),
                               np.maximum(-1.1731 * gn**2 + 1.9650 * gn + 0.26348, 0.0))
    np.testing.assert_allclose(dev.drift_mu_nu(g, g_max_us=25.0), np.clip(-0.0155 * np.log(gn) + 0.0244, 0.049, 0.1))
    np.testing.assert_allclose(dev.drift_sigma_nu(g, g_max_us=25.0),
                               np.clip(-0.0125 * np.log(gn) - 0.0059, 0.008, 0.045))
    t, tr = 20.0 + 3600.0, 250e-9
    q = np.minimum(0.0088 / gn**0.65, 0.2)
    gt = 0.9 * g
    np.testing.assert_allclose(dev.read_sigma(g, g_max_us=25.0, t_s=t, t_read_s=tr, g_t_us=gt),
                               gt * q * np.sqrt(np.log((t + tr) / (2 * tr))))
    sonos = crossbar.preset("sonos").device  # I[nA] = 100 G[uS]: sigma_I = A (1 - exp(-I / B))
    i_na = np.array([100.0, 1000.0, 3200.0])
    np.testing.assert_allclose(100.0 * sonos.read_sigma(i_na / 100.0, g_max_us=32.0),
                               12.58037 * (1 - np.exp(-i_na / 215.36557)))

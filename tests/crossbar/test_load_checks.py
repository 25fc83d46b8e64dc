"""load_programmed validates what it reads: NaN/Inf, out-of-range values, truncation (issue 15)."""
from __future__ import annotations

import json
import os
import re

import h5py
import numpy as np
import pytest

import crossbar


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(0)
    arr = crossbar.program(rng.normal(size=(4, 6)), crossbar.preset("pcm"), seed=1)
    path = tmp_path / "arr.h5"
    arr.save(path)
    return path


def _edit(path, name, index, value):
    with h5py.File(path, "r+") as f:
        data = f[name][...]
        data[index] = value
        f[name][...] = data


@pytest.mark.parametrize("name, value, message", [
    ("g_pos", np.nan, r"dataset 'g_pos' must be finite and in the device range \[0, 25\] uS; 1 value\(s\) are not, e\.g\. nan at \(0, 0\)"),
    ("g_neg", np.inf, r"dataset 'g_neg' must be finite"),
    ("g_pos", -3.0, r"dataset 'g_pos' must be finite and in"),
    ("g_pos", 26.0, r"dataset 'g_pos' must be finite and in"),
    ("scales", -1.0, r"dataset 'scales' must be finite and > 0"),
    ("scales", 0.0, r"dataset 'scales' must be finite and > 0"),
    ("nu_pos", np.nan, r"dataset 'nu_pos' must be finite and >= 0"),
])
def test_bad_values_are_refused_with_file_and_field(saved, name, value, message):
    crossbar.load_programmed(saved)  # intact
    _edit(saved, name, (0, 0), value)
    with pytest.raises(ValueError, match=re.escape(str(saved)) + ": " + message):
        crossbar.load_programmed(saved)


def test_digital_weights_must_be_finite(tmp_path):
    path = tmp_path / "dig.h5"
    crossbar.program(np.ones((2, 3)), crossbar.preset("paper"), seed=0).save(path)
    _edit(path, "weights", (1, 2), np.nan)
    with pytest.raises(ValueError, match=r"dig\.h5: dataset 'weights' must be finite; 1 value"):
        crossbar.load_programmed(path)


@pytest.mark.parametrize("cut", [0, 100, 0.5, 0.9])
def test_truncated_file_is_a_value_error_naming_it(saved, cut):
    raw = saved.read_bytes()
    saved.write_bytes(raw[: int(cut * len(raw)) if isinstance(cut, float) else cut])
    with pytest.raises(ValueError, match=re.escape(str(saved)) + r": (cannot open as HDF5|damaged HDF5|dataset)"):
        crossbar.load_programmed(saved)


def test_missing_attribute_and_file(saved, tmp_path):
    with h5py.File(saved, "r+") as f:
        del f.attrs["config"]
    with pytest.raises(ValueError, match=r"arr\.h5: attribute 'config' is missing"):
        crossbar.load_programmed(saved)
    with pytest.raises(ValueError, match=r"nope\.h5: no such programmed-array file"):
        crossbar.load_programmed(tmp_path / "nope.h5")


def test_malformed_config_json(saved):
    with h5py.File(saved, "r+") as f:
        f.attrs["config"] = "{not json"
    with pytest.raises(ValueError, match=r"arr\.h5: attribute 'config': ArrayConfig\.from_json: malformed JSON"):
        crossbar.load_programmed(saved)


def test_save_is_atomic_and_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "a.h5"
        crossbar.program(np.ones((2, 3)), crossbar.preset("pcm"), seed=0).save(path)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]   # no temp file left


def test_from_json_malformed_and_incomplete():
    with pytest.raises(ValueError, match=r"ArrayConfig\.from_json: malformed JSON: Expecting"):
        crossbar.ArrayConfig.from_json("{bad")
    d = crossbar.preset("pcm").to_dict()
    del d["device"]["read_sigma"]
    assert crossbar.ArrayConfig.from_json(json.dumps(d)).device.read_sigma is None   # partial: defaults
    with pytest.raises(ValueError, match=r"missing key\(s\) \['device\.read_sigma'\]"):
        crossbar.ArrayConfig.from_json(json.dumps(d), complete=True)


def test_device_file_missing_key_is_an_error_partial_form_works(tmp_path):
    d = crossbar.preset("pcm").to_dict()
    del d["device"]["read_sigma"]
    del d["adc"]["bits"]
    path = tmp_path / "pcm.json"
    path.write_text(json.dumps({"array_config": d, "calibration": {}}))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": ArrayConfig: missing key\(s\) "
                       r"\['device\.read_sigma', 'adc\.bits'\].*\{\"base\": \"<preset name>\", \"overrides\""):
        crossbar.preset(path)
    law = crossbar.preset("pcm").to_dict()
    del law["device"]["prog_sigma"]["hi"]
    path.write_text(json.dumps(law))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['device\.prog_sigma\.hi'\]"):
        crossbar.preset(path)
    older = crossbar.preset("pcm").to_dict()   # a file from before a field existed whose default keeps its meaning
    del older["adc"]["range_mode"], older["device"]["relax_sigma"]
    path.write_text(json.dumps({"array_config": older}))
    assert crossbar.preset(path) == crossbar.preset("pcm", adc_range_mode="fixed")   # fixed: as before the field
    partial = tmp_path / "mine.json"
    partial.write_text(json.dumps({"base": "pcm", "overrides": {"adc_bits": 6, "tile_rows": 128}}))
    assert crossbar.preset(partial) == crossbar.preset("pcm", adc_bits=6, tile_rows=128)
    chained = tmp_path / "chained.json"
    chained.write_text(json.dumps({"base": "mine.json", "overrides": {"adc_bits": 4}}))
    assert crossbar.preset(chained) == crossbar.preset("pcm", adc_bits=4, tile_rows=128)
    partial.write_text(json.dumps({"base": "pcmm", "overrides": {}}))
    with pytest.raises(ValueError, match=r"mine\.json: 'base' must be one of"):
        crossbar.preset(partial)
    partial.write_text("{oops")
    with pytest.raises(ValueError, match=r"mine\.json: malformed JSON device model"):
        crossbar.preset(partial)

"""The "gauss" law kind (fitted by xbarsim calibrate) and the time-span warning of
calibrated device models."""
import json
import math

import numpy as np
import pytest

import crossbar


def test_gauss_law_matches_formula_and_round_trips():
    law = crossbar.Law("gauss", (0.01, 2.0, math.log(0.3), 0.4), x="ln_g_norm", lo=0.0)
    g = np.array([1.0, 30.0, 60.0, 100.0])
    x = np.log(g / 100.0)
    expect = 0.01 + 2.0 * np.exp(-0.5 * ((x - math.log(0.3)) / 0.4) ** 2)
    np.testing.assert_allclose(law(g, g_max_us=100.0), expect, rtol=1e-14)
    assert crossbar.Law.from_dict(law.to_dict()) == law
    peak = law(np.array([30.0]), g_max_us=100.0)[0]
    assert peak == pytest.approx(2.01) and law(np.array([100.0]), g_max_us=100.0)[0] < peak / 10


@pytest.mark.parametrize("coeffs, msg", [((1.0, 2.0, 0.0), "4 values"), ((0.0, 1.0, 0.0, 0.0), "width")])
def test_gauss_law_rejects_bad_coeffs(coeffs, msg):
    with pytest.raises(ValueError, match=msg):
        crossbar.Law("gauss", coeffs, x="ln_g_norm")


def test_time_span_warning(tmp_path):
    assert crossbar.time_span_warning("pcm", [1e9]) is None
    path = tmp_path / "dev.json"
    doc = {"array_config": crossbar.preset("rram").to_dict(), "calibration": {"time_span_s": [100.0, 1e5]}}
    path.write_text(json.dumps(doc))
    assert crossbar.measured_time_span(path) == (100.0, 1e5)
    assert crossbar.time_span_warning(path, [0.0, 5e4, 1e5 - 100.0]) is None
    w = crossbar.time_span_warning(path, [0.0, 1e6])
    assert w is not None and "1e+06" in w and "extrapolated" in w and "10x" in w
    path.write_text(json.dumps({"array_config": doc["array_config"]}))
    assert crossbar.time_span_warning(path, [1e9]) is None

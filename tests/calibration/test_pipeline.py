"""End to end: the CLI on the example file and on the shipped measured ramps, the model
loading as a crossbar preset and driving a deployment, and a pulse-ramp round trip."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

import crossbar
from calibration.cli import main
from calibration.fit import fit_ramps
from calibration.readers import RampData, read_pulse_ramps
from calibration.report import LEVEL_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "calibration" / "examples" / "example_cells.csv"
# XBARSIM_DEVICE_DATA: the measured data when the checkout is not next to ../shared (e.g. a worktree)
DEVICES = Path(os.environ.get("XBARSIM_DEVICE_DATA", ROOT.parent / "shared" / "data" / "devices"))
RAMPS = DEVICES / "reram_pulse_ramps"
GONG = DEVICES / "hfo2_reram_gong2018" / "gong_et_al.csv"
needs_ramps = pytest.mark.skipif(not (RAMPS / "set.csv").exists(),
                                 reason=f"shared measured data not found at {RAMPS} (../shared/data/devices)")
needs_gong = pytest.mark.skipif(not GONG.exists(), reason=f"shared measured data not found at {GONG}")


@pytest.fixture(scope="module")
def example_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    code = main([str(EXAMPLE), "--out", str(out / "model.json"), "--report", str(out / "rep"), "--seed", "0",
                 "--quiet"])
    assert code == 0
    return out


def test_example_cli_writes_model_and_report(example_model):
    out = example_model
    for f in ("model.json", "model.h5", "rep/levels.csv", "rep/gof.csv", "rep/params.csv", "rep/fits.png"):
        assert (out / f).is_file(), f"missing {f}"
    with open(out / "rep" / "levels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == LEVEL_COLUMNS
    assert len(rows) == 8 * 3, f"expected one row per (level, time) = 24, got {len(rows)}"
    for r in rows:  # model vs held-out measured: means within 5 standard errors of the measured mean
        n = int(r["n_cells"])
        m, s = float(r["measured_mean_us"]), float(r["measured_std_us"])
        mm, ms = float(r["model_mean_us"]), float(r["model_std_us"])
        tol = 5 * max(s, ms) / np.sqrt(n)
        assert abs(m - mm) <= tol, f"level {r['g_target_us']} t={r['t_s']}: measured {m:.3f} vs model {mm:.3f} > {tol:.3f}"
    doc = json.loads((out / "model.json").read_text())
    cal = doc["calibration"]
    assert cal["format"] == "long" and cal["sources"][0]["sha256"]
    names = {p["name"] for p in cal["parameters"]}
    for n in ("prog_sigma.c0", "read_sigma.c0", "drift_mu_nu.c0", "stuck_min_fraction", "distinguishable_levels"):
        assert n in names, f"parameter table lacks {n}"
    assert all(p["ci_lo"] is not None for p in cal["parameters"] if p["name"].endswith(".c0"))
    # the example was sampled from a known model: its truth lies inside the reported intervals (the c0 rows
    # of two laws with exact truth 0.2 and 0.01)
    row = {p["name"]: p for p in cal["parameters"]}
    assert row["prog_offset.c0"]["ci_lo"] <= 0.2 <= row["prog_offset.c0"]["ci_hi"]
    assert row["drift_sigma_nu.c0"]["ci_lo"] <= 0.01 <= row["drift_sigma_nu.c0"]["ci_hi"]


def test_calibrated_model_drives_a_deployment(example_model):
    cfg = crossbar.preset(str(example_model / "model.json"))
    dev = cfg.device
    assert dev.prog_sigma is not None and dev.read_sigma is not None and dev.drift_mu_nu is not None
    assert cfg.adc.bits == crossbar.preset("rram").adc.bits  # periphery from the base preset
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 32))
    x = rng.normal(size=(64, 32))
    arr = crossbar.program(w, cfg, seed=1)
    y0 = x @ w.T
    y1 = arr.mvm(x, t_s=0.0, seed=2)
    y2 = arr.mvm(x, t_s=3600.0, seed=3)
    assert y1.shape == (64, 16) and np.all(np.isfinite(y1)) and np.all(np.isfinite(y2))
    rel = np.linalg.norm(y1 - y0) / np.linalg.norm(y0)
    assert 0.01 < rel < 0.8, f"relative MVM error on the calibrated device should be noisy but usable, got {rel:.3f}"
    # drift lowers conductances: the effective weights shrink in magnitude over an hour
    w0, w1 = arr.effective_weights(0.0), arr.effective_weights(3600.0)
    assert np.abs(w1).sum() < np.abs(w0).sum()


def _soft_bound_ramps(n_ramps, n_pulses, seed, up=(8.0, -6.0), down=(-2.0, -5.0), c2c=0.6, read=0.3):
    """Ramps from a known linear step model in u = G / 100 uS, G in [10, 100] uS."""
    rng = np.random.default_rng(seed)
    ramps, dirs = [], []
    for k in range(n_ramps):
        sgn = 1 if k % 2 == 0 else -1
        a, b = up if sgn > 0 else down
        g = 12.0 if sgn > 0 else 98.0
        true = [g]
        for _ in range(n_pulses - 1):
            g = g + a + b * g / 100.0 + c2c * rng.standard_normal()
            true.append(g)
        ramps.append(np.array(true) + read * rng.standard_normal(n_pulses))
        dirs.append(sgn)
    return RampData(sources=["<synthetic>"], ramps=ramps, direction=np.array(dirs), names=[str(i) for i in range(n_ramps)])


@pytest.mark.parametrize("n_ramps", [20, 60])
def test_ramp_round_trip(n_ramps):
    n_pulses = 40
    data = _soft_bound_ramps(n_ramps, n_pulses, seed=n_ramps)
    fit = fit_ramps(data, seed=0, n_boot=30, pv_cells=100, degrees={"mean_step": 1, "c2c_sigma": 0})
    n_steps = n_ramps // 2 * (n_pulses - 3)
    # mean step: coefficients within 5 of their standard errors, and those no larger than K c2c / sqrt(N)
    # (K = 6 for the slope's leverage in u over the visited range)
    for name, (a, b) in (("up", (8.0, -6.0)), ("down", (-2.0, -5.0))):
        ms = fit.directions[name].mean_step
        se = ms.coeff_se()
        # coefficients are in u = G / g_max with g_max the fitted range top: rescale the truth
        want = np.array([a, b * fit.g_max_us / 100.0])
        assert np.all(se <= 6 * 0.9 / np.sqrt(n_steps) * np.array([1, 10])), f"{name}: stderr {se} too wide"
        assert np.all(np.abs(ms.coeffs - want) <= 5 * se), f"{name} mean step: expected {want}, got {ms.coeffs} +- {se}"
        c = fit.directions[name].c2c_sigma
        assert abs(c.coeffs[0] - 0.6) <= 5 * c.coeff_se()[0] + 0.05, f"{name} c2c: expected 0.6, got {c.coeffs[0]}"
    # read noise from the lag-1 covariance: sigma^2 estimated from N pairs, 5 sigma of that estimate
    tol = 5 * (0.6 ** 2 + 2 * 0.3 ** 2) / np.sqrt(2 * n_ramps * (n_pulses - 4)) / (2 * 0.3)
    assert abs(fit.read_sigma_us - 0.3) <= tol, f"read sigma: expected 0.3 +- {tol:.3f}, got {fit.read_sigma_us:.3f}"
    lo, hi = fit.read_sigma_ci
    assert lo <= fit.read_sigma_us <= hi
    # program-and-verify reaches about the verify window: error std below the tolerance, nearly all converge
    assert np.all(fit.pv["error_std_us"] <= fit.pv["tol_us"]), (fit.pv["error_std_us"], fit.pv["tol_us"])
    assert fit.pv["converged_fraction"].min() >= 0.95


@needs_ramps
def test_shipped_reram_ramps_fit_physically(tmp_path):
    out = tmp_path / "reram"
    code = main([str(RAMPS / "set.csv"), str(RAMPS / "reset.csv"), "--unit", "A", "--read-voltage", "0.1",
                 "--out", str(out / "reram.json"), "--report", str(out / "rep"), "--bootstrap", "30", "--quiet"])
    assert code == 0
    cfg = crossbar.preset(str(out / "reram.json"))
    d = cfg.device
    # conductance = current / 0.1 V: about 1.6 mS to 2.5 mS
    assert 1400 < d.g_min_us < d.g_max_us < 2700, (d.g_min_us, d.g_max_us)
    data = read_pulse_ramps([RAMPS / "set.csv", RAMPS / "reset.csv"], "A", read_voltage_v=0.1)
    assert (data.direction > 0).sum() == 39 and (data.direction < 0).sum() == 40
    fit = fit_ramps(data, seed=0, n_boot=0, pv_cells=100)
    lo, mid, hi = d.g_min_us, 0.5 * (d.g_min_us + d.g_max_us), d.g_max_us
    up, dn = fit.directions["up"].mean_step, fit.directions["down"].mean_step
    assert np.all(up(np.array([lo, mid, hi])) > 0) and np.all(dn(np.array([lo, mid, hi])) < 0)
    # steps shrink toward the bound each ramp starts from: SET steps are smallest near g_min,
    # RESET steps smallest (in magnitude) near g_max
    assert up(lo)[0] < 0.5 * up(hi)[0], f"SET step at g_min {up(lo)[0]:.2f} vs g_max {up(hi)[0]:.2f}"
    assert abs(dn(hi)[0]) < abs(dn(mid)[0]), f"RESET step at g_max {dn(hi)[0]:.2f} vs mid {dn(mid)[0]:.2f}"
    assert np.all(fit.directions["up"].c2c_sigma(np.array([lo, hi])) > 0)
    assert fit.prog_sigma(mid)[0] > 0 and fit.levels_us.size >= 2
    # the device model deploys
    arr = crossbar.program(np.random.default_rng(0).normal(size=(8, 16)), cfg, seed=0)
    assert np.all(np.isfinite(arr.mvm(np.ones((2, 16)), seed=1)))


@needs_gong
def test_shipped_gong_normalised_ramps_fit(tmp_path):
    out = tmp_path / "gong"
    code = main([str(GONG), "--unit", "norm", "--norm-range-us", "10", "100", "--out", str(out / "gong.json"),
                 "--report", str(out / "rep"), "--bootstrap", "20", "--quiet"])
    assert code == 0
    doc = json.loads((out / "gong.json").read_text())
    row = {p["name"]: p for p in doc["calibration"]["parameters"]}
    # the data's lag-1 step correlation is about -0.44: read noise dominates the step noise
    assert row["read_sigma_us"]["value"] > 0 and row["read_sigma_us"]["ci_lo"] > 0
    assert 10 <= row["g_min_us"]["value"] < row["g_max_us"]["value"] <= 100


@pytest.mark.slow  # a full calibrate in a fresh interpreter; tests/test_layering.py checks the imports statically
def test_calibrate_never_imports_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from calibration.cli import main; "
            f"rc = main([{str(EXAMPLE)!r}, '--out', {str(tmp_path / 'm.json')!r}, '--quiet']); "
            "assert rc == 0; bad = [m for m in ('torch', 'models') if m in sys.modules]; "
            "assert not bad, f'calibration imported {bad}'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

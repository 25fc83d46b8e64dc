"""dG lookup tables (Sandia cross-sim-data layout): the shipped ENODe tables end to end, a
synthetic table from a known law recovered within bounds that follow from its CDF grid, and
one test per malformed input (clear error naming file and line, exit status 2, nothing
written)."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import crossbar
from calibration.cli import main
from calibration.fit import fit_dg_lookup, quantile_moments
from calibration.readers import CalibrationInputError, detect_format, read_dg_lookup

ROOT = Path(__file__).resolve().parents[2]
ENODE = Path(os.environ.get("XBARSIM_DEVICE_DATA", ROOT.parent / "shared" / "data" / "devices")) / "enode_dg_lookup"
INC, DEC = ENODE / "dG_increasing.txt", ENODE / "dG_decreasing.txt"
needs_enode = pytest.mark.skipif(not INC.exists(), reason=f"shared measured data not found at {ENODE}")


# --------------------------------------------------------------------------- helpers

def _write_table(path, g_s, cdf, dg_s, comment="1st Row = Gbins, 2nd Row = CDF Points, 3rd row onward = dG matrix"):
    """A table in the cross-sim-data layout, values in S with full precision."""
    fmt = (lambda a: ",".join(f"{v:.17g}" for v in a))
    lines = [comment, fmt(g_s), fmt(cdf), ""] + [fmt(row) for row in dg_s]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def _run(tmp_path, files, *extra):
    out = tmp_path / "out"
    code = main([*map(str, files), "--out", str(out / "m.json"), "--report", str(out / "rep"), "--quiet", *extra])
    return code, out


def _fine_grid_moments(cdf, col, n=200_000):
    """Independent check of the moments: midpoint rule on p of np.interp over the table.
    For a monotone Q the midpoint rule errs by at most (Q(1) - Q(0)) / n; for Q^2 by at most
    max(Q^2) variation / n."""
    p = (np.arange(n) + 0.5) / n
    x = np.interp(p, cdf, col)  # constant beyond the first / last CDF point, as documented
    return x.mean(), x.std(), (col[-1] - col[0]) / n, 2 * np.max(np.abs(col)) ** 2 / n


# --------------------------------------------------------------------------- shipped ENODe tables

@needs_enode
def test_enode_tables_read_and_detect():
    assert detect_format(INC) == "dg_lookup" and detect_format(DEC) == "dg_lookup"
    d = read_dg_lookup([DEC, INC])  # order does not matter: polarity from the sign of the mean dG
    assert set(d.tables) == {"up", "down"}
    assert d.tables["up"].source == str(INC) and d.tables["down"].source == str(DEC)
    line2 = INC.read_text().splitlines()[1]
    bins_s = np.array([float(v) for v in line2.split(",")])
    assert d.n_bins == 48 and np.allclose(d.g_bins_us, bins_s * 1e6, rtol=1e-15)
    for name, tab in d.tables.items():
        assert tab.dg_us.shape == (122, 48) and tab.cdf[0] == 0.0 and tab.cdf[-1] == 1.0
        mean, std = quantile_moments(tab.cdf, tab.dg_us)
        for k in (0, 20, 47):
            m, s, tol_m, tol_v = _fine_grid_moments(tab.cdf, tab.dg_us[:, k])
            assert abs(mean[k] - m) <= tol_m + 1e-12, f"{name} bin {k}: mean {mean[k]} vs fine grid {m}"
            assert abs(std[k] ** 2 - s ** 2) <= tol_v + 1e-12, f"{name} bin {k}: var {std[k] ** 2} vs {s ** 2}"
    # by hand from the table: increasing steps about +7 uS at low G falling below +1 uS at the top,
    # decreasing steps about -0.7 uS at low G, about -3.3 uS near 750 uS
    up_m, _ = quantile_moments(d.tables["up"].cdf, d.tables["up"].dg_us)
    dn_m, _ = quantile_moments(d.tables["down"].cdf, d.tables["down"].dg_us)
    assert 6.0 < up_m[:10].mean() < 7.5 and 0.5 < up_m[-1] < 1.0
    assert -0.8 < dn_m[0] < -0.6 and -3.5 < dn_m[30:36].mean() < -3.1


@needs_enode
def test_enode_end_to_end(tmp_path):
    code, out = _run(tmp_path, [INC, DEC])
    assert code == 0
    for f in ("m.json", "m.h5", "rep/levels.csv", "rep/params.csv", "rep/steps.csv", "rep/fits.png",
              "rep/sources.txt"):
        assert (out / f).is_file(), f"missing {f}"
    cfg = crossbar.preset(str(out / "m.json"))
    dev = cfg.device
    assert dev.g_min_us == pytest.approx(297.72, abs=1e-9) and dev.g_max_us == pytest.approx(978.28, abs=1e-9)
    assert dev.read_sigma is None, "a lookup table has no read noise: none may be invented"
    doc = json.loads((out / "m.json").read_text())
    cal = doc["calibration"]
    assert cal["format"] == "dg_lookup"
    for src in cal["sources"]:  # BSD-3 attribution travels with the model
        assert src["sha256"] and src["licence"]["name"] == "BSD 3-Clause License"
        assert "Sandia" in src["licence"]["copyright"] and "Redistribution" in src["licence"]["text"]
    assert "Sandia" in (out / "rep" / "sources.txt").read_text()
    assert any("read noise is unknown and set to 0" in n for n in cal["notes"])
    table = cal["dg_table"]
    g = np.array(table["g_bins_us"])

    def law(name):
        c = cal["laws"][name]
        v = np.polynomial.polynomial.polyval(g / c["g_scale_us"], c["coeffs"])
        return v if c["lo"] is None else np.maximum(v, c["lo"])

    for name in ("up", "down"):
        m, s = np.array(table[f"{name}.table_mean_us"]), np.array(table[f"{name}.table_std_us"])
        # the mean law misses no bin's tabulated mean by more than that bin's own step spread
        miss = np.abs(law(f"{name}.mean_step") - m)
        assert np.all(miss < s), f"{name}: mean law off by {miss.max():.2f} uS at G={g[np.argmax(miss / s)]:.0f}"
        # least squares with an intercept: the bin average of the spread law equals the table's
        assert abs(law(f"{name}.c2c_sigma").mean() - s.mean()) < 1e-6
        assert table[f"{name}.tail_mass"] == 0.0  # the CDF points span [0, 1]
    # goodness of fit: for a correct law about 95 % of bins lie in the 95 % prediction interval; allow
    # 6 of 48 outside (P(>= 7 | n = 48, p = 0.05) = 0.03)
    with open(out / "rep" / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 96
    for name in ("up", "down"):
        for col in ("mean_in_95pi", "std_in_95pi"):
            outside = sum(r[col] == "0" for r in rows if r["direction"] == name)
            assert outside <= 6, f"{name} {col}: {outside} of 48 bins outside the 95% prediction interval"
    # program-and-verify with exact reads ends inside the verify window: |error| <= tol, so the
    # error std per target and the fitted prog_sigma stay below tol; all cells converge
    pv = cal["program_verify"]
    tol = pv["tol_us"]
    assert min(pv["converged_fraction"]) == 1.0
    assert max(pv["error_std_us"]) <= tol and max(np.abs(pv["error_mean_us"])) <= tol
    tg = np.array(pv["targets_us"])
    sig = dev.prog_sigma(tg, g_max_us=dev.g_max_us)
    assert np.all((sig > 0) & (sig <= tol))
    # levels: spacing 2 z sigma with sigma <= tol gives at least span / (2 z tol) levels; at most
    # span / (2 z min sigma) + 1
    row = {p["name"]: p for p in cal["parameters"]}
    n_levels = row["distinguishable_levels"]["value"]
    span, z = dev.g_max_us - dev.g_min_us, 3.0
    assert span / (2 * z * tol) <= n_levels <= span / (2 * z * sig.min()) + 1, n_levels
    # levels.csv as for ramps: one row per program-and-verify target, nothing measured
    with open(out / "rep" / "levels.csv", newline="") as f:
        lv = list(csv.DictReader(f))
    assert len(lv) == len(tg) and all(r["n_cells"] == "0" and r["measured_mean_us"] == "nan" for r in lv)
    # the model deploys
    arr = crossbar.program(np.random.default_rng(0).normal(size=(8, 16)), cfg, seed=0)
    assert np.all(np.isfinite(arr.mvm(np.ones((2, 16)), seed=1)))


# --------------------------------------------------------------------------- synthetic round trip

G_BINS_US = np.linspace(300.0, 1000.0, 48)
TRUTH = {  # polynomials in u = G / 1000 uS, lowest order first (uS per pulse)
    "up": {"mean": (8.0, 0.0, -6.0), "sigma": (0.4, 0.6)},
    "down": {"mean": (-0.5, -3.0, 1.5), "sigma": (0.5, 0.3)},
}


def _normal_tables(tmp_path, z_max, n_cdf):
    """Per bin dG ~ N(mu(G), sigma(G)^2), tabulated at p_i = Phi(z_i), z_i evenly spaced in
    [-z_max, z_max] (a symmetric grid that cannot reach p = 0 and 1)."""
    z = np.linspace(-z_max, z_max, n_cdf)
    u = G_BINS_US / 1000.0
    paths = []
    for name in ("up", "down"):
        mu = np.polynomial.polynomial.polyval(u, TRUTH[name]["mean"])
        sd = np.polynomial.polynomial.polyval(u, TRUTH[name]["sigma"])
        dg_us = mu[None, :] + sd[None, :] * z[:, None]
        paths.append(_write_table(tmp_path / f"dG_{name}.txt", G_BINS_US * 1e-6, stats.norm.cdf(z), dg_us * 1e-6))
    return paths, z


def _grid_bounds(z):
    """Bounds on the variance of the tabulated standard normal, from the grid alone.

    Tails: the mass Phi(-Z) beyond each end sits at +-Z, which loses exactly
    2 [(Z phi(Z) + Phi(-Z)) - Z^2 Phi(-Z)] of variance. Interior: Q = Phi^-1 is convex for
    p > 1/2 (concave below), so the linear interpolant L has |L| >= |Q| and only adds
    variance, at most sum_i dp_i * (dp_i^2 / 8) max|Q''| * 2 max|z| over each segment,
    with Q''(p) = z / phi(z)^2 largest at the segment's outer end.
    """
    zm = z[-1]
    tail = 2 * ((zm * stats.norm.pdf(zm) + stats.norm.sf(zm)) - zm * zm * stats.norm.sf(zm))
    dp = np.diff(stats.norm.cdf(z))
    zo = np.maximum(np.abs(z[:-1]), np.abs(z[1:]))
    interp = float(np.sum(dp ** 3 / 8 * zo / stats.norm.pdf(zo) ** 2 * 2 * zo))
    return 1.0 - tail, 1.0 - tail + interp


@pytest.mark.parametrize("z_max,n_cdf", [(4.0, 121), (2.0, 21)])
def test_synthetic_table_recovers_known_laws(tmp_path, z_max, n_cdf):
    paths, z = _normal_tables(tmp_path, z_max, n_cdf)
    data = read_dg_lookup(paths)
    fit = fit_dg_lookup(data, seed=0, pv_cells=100)
    lo, hi = _grid_bounds(z)
    eps = 1e-9
    u = G_BINS_US / 1000.0
    for name, df in fit.directions.items():
        mu = np.polynomial.polynomial.polyval(u, TRUTH[name]["mean"])
        sd = np.polynomial.polynomial.polyval(u, TRUTH[name]["sigma"])
        # symmetric grid: the interpolated quantile function has mean exactly mu (float rounding only), and
        # the law is a polynomial of degree <= 3, which least squares reproduces
        assert np.max(np.abs(df.mean_step(G_BINS_US) - mu)) <= eps * np.abs(mu).max(), \
            f"{name}: mean law {df.mean_step(G_BINS_US)[:3]} vs truth {mu[:3]}"
        # every bin's spread is sigma(G) times the grid's standard-normal spread: within [lo, hi] in variance
        ratio = (df.c2c_sigma(G_BINS_US) / sd) ** 2
        assert np.all((ratio >= lo - eps) & (ratio <= hi + eps)), \
            f"{name}: variance ratio {ratio.min():.5f}..{ratio.max():.5f} outside the grid bounds [{lo:.5f}, {hi:.5f}]"
        assert df.tail_mass == pytest.approx(2 * stats.norm.sf(z_max), rel=1e-9)
    if z_max < 3:  # 4.6 % of the probability lies outside the tabulated CDF: said in the notes
        assert any("outside sits at the first / last tabulated dG" in n for n in fit.notes)
    pv = fit.pv
    assert pv["converged_fraction"].min() == 1.0 and np.all(pv["error_std_us"] <= pv["tol_us"])


def test_single_table_mirrors_the_other_polarity(tmp_path):
    paths, _ = _normal_tables(tmp_path, 4.0, 41)
    data = read_dg_lookup(paths[:1])
    assert set(data.tables) == {"up"}
    fit = fit_dg_lookup(data, seed=0, pv_cells=50)
    assert any("mirror image" in n for n in fit.notes)
    with pytest.raises(CalibrationInputError, match="forces one polarity on two tables"):
        read_dg_lookup(paths, direction="up")


# --------------------------------------------------------------------------- malformed input

def _set_line(path, index, new):
    """Replace line ``index`` (0-based) of a file; ``new`` is the text or a function of the
    line's values (a list, edited in place)."""
    lines = Path(path).read_text().splitlines()
    if callable(new):
        values = lines[index].split(",")
        new(values)
        new = ",".join(values)
    lines[index] = new
    Path(path).write_text("\n".join(lines) + "\n")


@pytest.fixture
def tables(tmp_path):
    """Small valid increasing / decreasing tables (5 bins, 6 CDF points) in the ENODe layout."""
    g = np.array([300, 400, 500, 600, 700]) * 1e-6
    cdf = np.array([0.0, 0.1, 0.3, 0.7, 0.9, 1.0])
    base = np.linspace(-1.0, 1.0, 6)[:, None] * 1e-6
    up = _write_table(tmp_path / "inc.txt", g, cdf, 5e-6 + base + np.zeros(5))
    dn = _write_table(tmp_path / "dec.txt", g, cdf, -3e-6 + base + np.zeros(5))
    return up, dn


def _expect(tmp_path, files, bad, words):
    """read_dg_lookup names the bad file and the problem; the CLI exits 2 and writes nothing."""
    with pytest.raises(CalibrationInputError) as ei:
        read_dg_lookup(files)
    msg = str(ei.value)
    assert msg.startswith(str(bad)), f"error should start with the file {bad}: {msg}"
    for w in words:
        assert w in msg, f"error should say {w!r}: {msg}"
    code, out = _run(tmp_path, files)
    assert code == 2, f"expected exit status 2, got {code}"
    assert not out.exists(), f"nothing may be written on invalid input, found {list(out.rglob('*'))}"


def test_valid_small_tables_calibrate(tmp_path, tables):
    code, out = _run(tmp_path, tables)
    assert code == 0 and (out / "m.json").is_file()


def test_truncated_inside_a_line(tmp_path, tables):
    up, dn = tables
    text = up.read_text()
    up.write_text(text[: text.index(text.splitlines()[7]) + 20])  # stops 20 characters into line 8
    _expect(tmp_path, [up, dn], up, ["line 8:", "expected 5 dG values", "truncated"])


def test_truncated_at_a_line_end(tmp_path, tables):
    up, dn = tables
    up.write_text("\n".join(up.read_text().splitlines()[:7]) + "\n")  # 3 of 6 matrix rows
    _expect(tmp_path, [up, dn], up, ["truncated", "3 row(s), expected 6"])


# (file 0 = increasing / 1 = decreasing, 0-based line, new text or an edit of the line's values, words)
ONE_LINE_EDITS = {
    "bad_column_count": (0, 6, lambda v: v.pop(), ["line 7: 4 values, expected 5"]),
    "nan_in_matrix": (0, 8, lambda v: v.__setitem__(2, "nan"), ["line 9, value 3", "not a finite number"]),
    "non_monotone_cdf": (1, 2, "0,0.3,0.1,0.7,0.9,1", ["line 3, value 3", "CDF points must increase"]),
    "cdf_outside_unit_interval": (0, 2, "0,0.1,0.3,0.7,0.9,1.5", ["line 3, value 6", "outside [0, 1]"]),
    "mismatched_bins": (1, 1, "0.0003,0.0004,0.00051,0.0006,0.0007",
                        ["line 2, value 3", "differs from", "share their bins"]),
    # line 7, bin 2 above the next row's value: the quantile function of bin 2 decreases
    "quantile_column_decreasing": (0, 6, lambda v: v.__setitem__(1, "9e-06"), ["line 8, value 2", "must not decrease"]),
}


@pytest.mark.parametrize("case", list(ONE_LINE_EDITS))
def test_one_line_edit(tmp_path, tables, case):
    which, index, edit, words = ONE_LINE_EDITS[case]
    _set_line(tables[which], index, edit)
    _expect(tmp_path, list(tables), tables[which], words)


def test_two_increasing_tables(tmp_path, tables):
    up, _ = tables
    other = tmp_path / "inc2.txt"
    other.write_text(up.read_text())
    _expect(tmp_path, [up, other], up, ["both tables have mean dG > 0"])


# --------------------------------------------------------------------------- --read-noise-us

def _params(out):
    with open(out / "rep" / "params.csv", newline="") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


@needs_enode
def test_enode_user_read_noise(tmp_path):
    """--read-noise-us 1.0: noisy verify reads make program-and-verify worse (larger prog_sigma,
    fewer levels); the device model carries the supplied constant read-noise law, recorded as
    user-supplied with no standard error."""
    code0, out0 = _run(tmp_path / "exact", [INC, DEC])
    code1, out1 = _run(tmp_path / "noisy", [INC, DEC], "--read-noise-us", "1.0")
    assert code0 == 0 and code1 == 0
    p0, p1 = _params(out0), _params(out1)
    sig = [n for n in p0 if n.startswith("prog_sigma(G=")]
    assert len(sig) == 3
    for n in sig:  # the error of true G after verify grows with the read noise (ENODe: 0.41 -> 0.87 uS at g_min)
        assert float(p1[n]["value"]) > float(p0[n]["value"]) + 0.3, (n, p0[n]["value"], p1[n]["value"])
    assert float(p1["distinguishable_levels"]["value"]) < float(p0["distinguishable_levels"]["value"])
    # the default verify window is at least 2 sigma_read, as for ramps
    assert float(p1["verify_tolerance_us"]["value"]) == pytest.approx(2.0)
    row = p1["read_sigma_us"]
    assert float(row["value"]) == 1.0 and row["method"] == "user" and row["stderr"] == "" and row["ci_lo"] == ""
    assert p0["read_sigma_us"]["method"] != "user" and float(p0["read_sigma_us"]["value"]) == 0.0
    doc = json.loads((out1 / "m.json").read_text())
    law = doc["array_config"]["device"]["read_sigma"]
    assert law["kind"] == "poly" and law["coeffs"] == [1.0] and law["x"] == "g_norm"
    cal = doc["calibration"]
    assert cal["laws"]["read_sigma"]["method"] == "user" and cal["laws"]["read_sigma"]["stderr"] is None
    assert cal["laws"]["read_sigma"]["coeffs"] == [1.0] and cal["options"]["read_noise_us"] == 1.0
    assert any("user-supplied" in n and "--read-noise-us" in n for n in cal["notes"])
    assert not any("set to 0" in n for n in cal["notes"])
    dev = crossbar.preset(str(out1 / "m.json")).device
    g = np.array([300.0, 640.0, 970.0])
    assert np.allclose(dev.read_sigma(g, g_max_us=dev.g_max_us), 1.0)
    assert json.loads((out0 / "m.json").read_text())["array_config"]["device"]["read_sigma"] is None


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf"])
def test_read_noise_bad_values_exit_2(tmp_path, tables, bad, capsys):
    with pytest.raises(SystemExit) as ei:
        _run(tmp_path, tables, f"--read-noise-us={bad}")
    assert ei.value.code == 2
    assert "--read-noise-us must be > 0 and finite" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_read_noise_rejected_for_measured_read_noise(tmp_path, capsys):
    """Long format and pulse ramps measure read noise: the option is refused, nothing written."""
    ramps = tmp_path / "ramps.csv"
    ramps.write_text("\n".join(f"{10 + k},{60 - k}" for k in range(40)) + "\n")
    cases = [([ROOT / "calibration" / "examples" / "example_cells.csv"], [], "repeated reads"),
             ([ramps], ["--unit", "uS"], "lag-1 covariance")]
    for files, extra, how in cases:
        code, out = _run(tmp_path, files, *extra, "--read-noise-us", "1.0")
        err = capsys.readouterr().err
        assert code == 2, err
        assert "--read-noise-us applies to dG lookup tables only" in err and how in err, err
        assert not out.exists()
    code, out = _run(tmp_path, [ramps], "--unit", "uS")  # the same ramps calibrate without the option
    assert code == 0

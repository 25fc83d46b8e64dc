"""Malformed input: one test each. The error names the file, the column and the problem,
and the CLI writes nothing."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from calibration.cli import main
from calibration.readers import CalibrationInputError, read_long, read_pulse_ramps

EXAMPLE = Path(__file__).resolve().parents[2] / "calibration" / "examples" / "example_cells.csv"


def _rows():
    with open(EXAMPLE, newline="") as f:
        return list(csv.reader(f))


def _write(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _expect(tmp_path, path, column, words, argv_extra=()):
    """read_long raises naming file/column/problem; the CLI exits 2 and writes nothing."""
    with pytest.raises(CalibrationInputError) as ei:
        read_long(path)
    msg = str(ei.value)
    assert str(path) in msg, f"error should name the file {path}: {msg}"
    if column is not None:
        assert repr(column) in msg, f"error should name the column {column!r}: {msg}"
    for w in words:
        assert w in msg, f"error should say {w!r}: {msg}"
    out = tmp_path / "out"
    code = main([str(path), "--out", str(out / "m.json"), "--report", str(out / "rep"), "--quiet", *argv_extra])
    assert code == 2, f"expected exit status 2, got {code}"
    assert not out.exists(), f"nothing may be written on invalid input, found {list(out.rglob('*'))}"


def test_example_file_is_valid():
    d = read_long(EXAMPLE)
    assert d.n_cells == 240 and d.n_rows == 2880
    assert EXAMPLE.stat().st_size < 200_000


def test_missing_column(tmp_path):
    rows = [r[:2] + r[3:] for r in _rows()]  # drop t_s
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), None, ["missing required column", "t_s"])


def test_wrong_units_siemens_in_us_column(tmp_path):
    rows = _rows()
    for r in rows[1:]:
        r[4] = f"{float(r[4]) * 1e-6:.6g}"
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "g_us", ["units", "disagree"])


def test_unknown_unit_suffix(tmp_path):
    rows = _rows()
    rows[0][4] = "g_ns"
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "g_ns", ["unsupported unit 'ns'"])


def test_nan_value(tmp_path):
    rows = _rows()
    rows[7][4] = "nan"
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "g_us", ["NaN", "line 8"])


def test_negative_conductance(tmp_path):
    rows = _rows()
    rows[5][4] = "-1.5"
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "g_us", ["negative conductance", "line 6"])


def test_single_cell(tmp_path):
    rows = [r for r in _rows() if r[0] in ("cell_id", "c000")]
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "cell_id", ["at least 10 distinct cells", "got 1"])


def test_truncated_hdf5(tmp_path):
    d = read_long(EXAMPLE)
    full = tmp_path / "full.h5"
    with h5py.File(full, "w") as f:
        g = f.create_group("measurements")
        g["cell_id"] = d.cell_labels[d.cell].astype("S")
        for k in ("g_target_us", "t_s", "read_id", "g_us"):
            g[k] = getattr(d, k)
    assert read_long(full).n_rows == d.n_rows  # the intact file reads
    cut = tmp_path / "cut.h5"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _expect(tmp_path, cut, None, ["HDF5"])


def test_current_without_read_voltage(tmp_path):
    rows = _rows()
    rows[0][4] = "i_a"
    for r in rows[1:]:
        r[4] = f"{float(r[4]) * 1e-6 * 0.1:.6g}"
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "i_a", ["read voltage"])
    d = read_long(tmp_path / "x.csv", read_voltage_v=0.1)  # with the voltage it converts back to uS
    np.testing.assert_allclose(d.g_us, read_long(EXAMPLE).g_us, rtol=1e-5)


def test_duplicate_measurement(tmp_path):
    rows = _rows()
    rows.append(rows[1])
    _expect(tmp_path, _write(tmp_path / "x.csv", rows), "read_id", ["duplicate measurement"])


def test_resistance_column_converts(tmp_path):
    rows = _rows()
    rows[0][4] = "r_kohm"
    for r in rows[1:]:
        r[4] = repr(1e3 / float(r[4]))
    d = read_long(_write(tmp_path / "x.csv", rows))
    np.testing.assert_allclose(d.g_us, read_long(EXAMPLE).g_us, rtol=1e-9)


def test_ramp_gap_inside_a_ramp(tmp_path):
    rows = [["rmp1", "rmp2"]] + [[f"{1e-4 + k * 1e-7:.6g}", f"{1e-4 + k * 1.1e-7:.6g}"] for k in range(20)]
    rows[6][1] = ""
    p = _write(tmp_path / "ramps.csv", rows)
    with pytest.raises(CalibrationInputError, match=r"ramps\.csv: column 'rmp2': missing value at line 7"):
        read_pulse_ramps([p], "A", read_voltage_v=0.1)
    code = main([str(p), "--unit", "A", "--read-voltage", "0.1", "--out", str(tmp_path / "o" / "m.json"), "--quiet"])
    assert code == 2 and not (tmp_path / "o").exists()


def test_ramp_current_needs_voltage(tmp_path):
    rows = [["rmp1", "rmp2"]] + [[f"{1e-4 + k * 1e-7:.6g}", f"{1e-4 + k * 1.1e-7:.6g}"] for k in range(20)]
    p = _write(tmp_path / "ramps.csv", rows)
    with pytest.raises(CalibrationInputError, match="read voltage"):
        read_pulse_ramps([p], "A")


def test_missing_file(tmp_path):
    code = main([str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o" / "m.json"), "--quiet"])
    assert code == 2 and not (tmp_path / "o").exists()

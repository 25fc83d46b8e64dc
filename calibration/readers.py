"""Readers and schema checks for measured device data.

Three input formats (the schemas are documented in calibration/README.md):

* **Long format** (CSV or HDF5): one row per measurement, columns ``cell_id``,
  ``g_target_us``, ``t_s``, ``read_id`` and exactly one measurement column (``g_us``,
  ``g_ms``, ``g_s``, ``r_ohm``, ``r_kohm``, ``i_a``, ``i_ua``; a current needs
  ``v_read_v`` or a read voltage given by the caller). Optional ``stuck`` (0/1) and
  ``pulse``.
* **Pulse ramps** (CSV, wide): one column per ramp, one row per identical programming
  pulse; each column is the conductance (or read current, resistance, or normalised
  conductance) read after each pulse. Columns may end early (empty cells at the bottom).
* **dG lookup tables** (text, as shipped by Sandia cross-sim-data): line 1 a comment, line 2
  the conductance bins, line 3 the CDF points, an optional blank line, then a matrix (rows =
  CDF points, columns = bins) of the conductance change per pulse: for each bin, the
  quantile function of dG. One table per pulse polarity (increasing / decreasing).

Every problem raises :class:`CalibrationInputError` naming the file, the column and what
was expected. Nothing here writes files.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xbarsim.files import atomic_write_text

__all__ = [
    "CalibrationInputError",
    "LongData",
    "RampData",
    "DgTable",
    "DgLookupData",
    "MIN_CELLS",
    "MIN_RAMP_LENGTH",
    "MEASUREMENT_COLUMNS",
    "detect_format",
    "read_long",
    "read_pulse_ramps",
    "read_dg_lookup",
    "write_long_csv",
    "file_sha256",
    "source_licence",
]

#: Fewest distinct cells a long-format file must hold (fits hold cells out).
MIN_CELLS = 10
#: Fewest readings a pulse ramp must hold to contribute steps.
MIN_RAMP_LENGTH = 5
#: Fewest conductance bins (and CDF points) a dG lookup table must hold.
MIN_DG_BINS = 3
#: Units a dG lookup table may be in (conductances only); cross-sim-data writes siemens.
DG_UNITS = {"uS": 1.0, "mS": 1e3, "S": 1e6}

REQUIRED_COLUMNS = ("cell_id", "g_target_us", "t_s", "read_id")
OPTIONAL_COLUMNS = ("stuck", "pulse", "v_read_v", "temperature_c")
#: measurement column -> (quantity, factor to the base unit: uS, ohm or A)
MEASUREMENT_COLUMNS = {
    "g_us": ("g", 1.0),
    "g_ms": ("g", 1e3),
    "g_s": ("g", 1e6),
    "r_ohm": ("r", 1.0),
    "r_kohm": ("r", 1e3),
    "i_a": ("i", 1.0),
    "i_ua": ("i", 1e-6),
}
TARGET_COLUMNS = {"g_target_us": 1.0, "g_target_ms": 1e3, "g_target_s": 1e6}
_UNIT_LIKE = re.compile(r"^(g_target|g|r|i|t|v_read)_([a-z]+)$")
_VALID_UNITS = {
    "g_target": "us, ms, s",
    "g": "us, ms, s",
    "r": "ohm, kohm",
    "i": "a, ua",
    "t": "s",
    "v_read": "v",
}
RAMP_UNITS = {"uS": ("g", 1.0), "mS": ("g", 1e3), "S": ("g", 1e6), "ohm": ("r", 1.0),
              "kohm": ("r", 1e3), "A": ("i", 1.0), "uA": ("i", 1e-6), "norm": ("norm", 1.0)}


class CalibrationInputError(ValueError):
    """Measured data that does not match its schema; the message names file and column."""

    def __init__(self, path, problem: str, column: str | None = None):
        where = f"{path}" + (f": column {column!r}" if column else "")
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.column = column
        self.problem = problem


@dataclass
class LongData:
    """A validated long-format measurement table, conductances in microsiemens.

    Rows are sorted by (cell, t_s, read_id). ``cell`` is an integer index into
    ``cell_labels``; ``stuck`` is None when the file has no stuck column.
    """

    source: str
    cell: np.ndarray
    cell_labels: np.ndarray
    g_target_us: np.ndarray
    t_s: np.ndarray
    read_id: np.ndarray
    g_us: np.ndarray
    stuck: np.ndarray | None = None
    pulse: np.ndarray | None = None
    measurement_column: str = "g_us"
    temperature_c: np.ndarray | None = None
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return int(self.cell_labels.size)

    @property
    def n_rows(self) -> int:
        return int(self.g_us.size)

    def cell_targets(self) -> np.ndarray:
        """(n_cells,) target conductance of each cell in uS."""
        out = np.empty(self.n_cells)
        out[self.cell] = self.g_target_us
        return out

    def subset_cells(self, cells: np.ndarray) -> "LongData":
        """The rows of the given cell indices, cells renumbered 0..len(cells)-1."""
        cells = np.asarray(cells)
        remap = -np.ones(self.n_cells, dtype=np.int64)
        remap[cells] = np.arange(cells.size)
        keep = remap[self.cell] >= 0
        pick = (lambda a: None if a is None else a[keep])
        return LongData(
            source=self.source, cell=remap[self.cell[keep]], cell_labels=self.cell_labels[cells],
            g_target_us=self.g_target_us[keep], t_s=self.t_s[keep], read_id=self.read_id[keep],
            g_us=self.g_us[keep], stuck=pick(self.stuck), pulse=pick(self.pulse),
            measurement_column=self.measurement_column, ignored_columns=list(self.ignored_columns),
            temperature_c=pick(self.temperature_c))

    def with_times(self, t_s: np.ndarray) -> "LongData":
        """The same rows with other times (e.g. room-temperature-equivalent), re-sorted."""
        order = np.lexsort((self.read_id, t_s, self.cell))
        pick = (lambda a: None if a is None else a[order])
        return LongData(
            source=self.source, cell=self.cell[order], cell_labels=self.cell_labels,
            g_target_us=self.g_target_us[order], t_s=np.asarray(t_s, float)[order], read_id=self.read_id[order],
            g_us=self.g_us[order], stuck=pick(self.stuck), pulse=pick(self.pulse),
            measurement_column=self.measurement_column, ignored_columns=list(self.ignored_columns),
            temperature_c=pick(self.temperature_c))


@dataclass
class RampData:
    """Pulse-response ramps: conductance (uS, or normalised) after each identical pulse.

    ``ramps`` is a list of 1-D arrays (one per column, NaN-free); ``direction`` is +1 for a
    potentiating (SET) ramp, -1 for a depressing (RESET) one; ``names`` are
    "file:column".
    """

    sources: list[str]
    ramps: list[np.ndarray]
    direction: np.ndarray
    names: list[str]
    unit: str = "uS"

    @property
    def n_ramps(self) -> int:
        return len(self.ramps)


@dataclass
class DgTable:
    """One dG lookup table: for each conductance bin, the quantile function of the
    conductance change per pulse, dG = Q(p), tabulated at the CDF points ``cdf``.

    ``dg_us`` has shape (n_cdf, n_bins); ``direction`` is +1 (increasing, potentiating) or
    -1 (decreasing, depressing).
    """

    source: str
    cdf: np.ndarray
    dg_us: np.ndarray
    direction: int


@dataclass
class DgLookupData:
    """dG lookup tables on shared conductance bins (uS); ``tables`` maps "up" / "down" to
    a :class:`DgTable` (one or both)."""

    sources: list[str]
    g_bins_us: np.ndarray
    tables: dict

    @property
    def n_bins(self) -> int:
        return int(self.g_bins_us.size)


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "LICENCE.txt", "COPYING")


def source_licence(path) -> dict | None:
    """The licence file next to a data file (LICENSE, LICENSE.md, ... in the same folder):
    {"file", "sha256", "name" (its first line), "copyright" (its first line that starts with
    "Copyright"), "text"}; None when there is none. Derived models carry it along, as
    licences such as BSD-3-Clause ask."""
    folder = Path(path).resolve().parent
    for name in _LICENCE_NAMES:
        f = folder / name
        if f.is_file():
            text = f.read_text(encoding="utf-8", errors="replace")
            lines = [ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()]
            copyright_ = next((ln for ln in lines if ln.lower().startswith("copyright")), None)
            return {"file": str(f), "sha256": file_sha256(f), "name": lines[0] if lines else "",
                    "copyright": copyright_, "text": text}
    return None


# --------------------------------------------------------------------------- detection

def _check_file(path: Path) -> None:
    if not path.exists():
        raise CalibrationInputError(path, "file not found")
    if not path.is_file():
        raise CalibrationInputError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise CalibrationInputError(path, "file is empty")


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    return head == b"\x89HDF\r\n\x1a\n" or path.suffix.lower() in (".h5", ".hdf5", ".hdf")


_BINARY_MAGIC = {b"PK\x03\x04": "a zip archive (e.g. .npz)", b"\x93NUMPY": "a numpy .npy file",
                 b"\x1f\x8b": "gzip data", b"%PDF": "a PDF", b"\x89PNG": "a PNG image"}


def _check_text(path: Path) -> None:
    """A text file (UTF-8, no NUL bytes) or a CalibrationInputError naming the file and,
    where known, what it is instead."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise CalibrationInputError(path, f"is {what}, not a text table; expected a long-format CSV or HDF5 file, "
                                              "pulse-ramp CSVs or dG lookup tables (see calibration/README.md)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a multi-byte character cut at the end of the block
            raise CalibrationInputError(path, f"not a UTF-8 text file (byte {e.start}: {e.reason}); expected a CSV, "
                                              "HDF5 or dG lookup table") from None
    if b"\x00" in head:
        raise CalibrationInputError(path, "is binary (NUL bytes), not a text table; expected a CSV, HDF5 or dG "
                                          "lookup table")


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.reader(f):
            if row and any(c.strip() for c in row):
                return [c.strip() for c in row]
    raise CalibrationInputError(path, "no rows")


def _numbers(text: str) -> list[float] | None:
    """The comma-separated numbers of a line (one trailing comma allowed), or None."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) > 1 and fields[-1] == "":
        fields = fields[:-1]
    try:
        return [float(f) for f in fields]
    except ValueError:
        return None


def _looks_like_dg_lookup(path: Path) -> bool:
    """A comment line that names the CDF, or: a comment line, then two lines of numbers of
    different lengths (bins, CDF points) or followed by a blank line."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            head = [f.readline() for _ in range(4)]
    except UnicodeDecodeError:
        return False
    if _numbers(head[0]) is not None:
        return False
    if "cdf" in head[0].lower():
        return True
    bins, cdf = _numbers(head[1]), _numbers(head[2])
    return bins is not None and cdf is not None and (len(bins) != len(cdf) or head[3].strip() == "")


def detect_format(path) -> str:
    """'long', 'ramps' or 'dg_lookup': HDF5 and CSVs whose header holds ``cell_id`` are long
    format; a comment line followed by the conductance bins and the CDF points (see
    :func:`read_dg_lookup`) is a dG lookup table; a CSV whose cells are all numbers (with
    or without a header row) is pulse ramps."""
    path = Path(path)
    _check_file(path)
    if _is_hdf5(path):
        return "long"
    _check_text(path)
    header = _csv_header(path)
    low = [h.lower() for h in header]
    if "cell_id" in low or "g_target_us" in low:  # before the dG check: a 2-row table looks like one
        return "long"
    if _looks_like_dg_lookup(path):
        return "dg_lookup"
    return "ramps"


# --------------------------------------------------------------------------- long format

def _read_csv_columns(path: Path) -> tuple[dict[str, list[str]], int]:
    _check_text(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as e:
        raise CalibrationInputError(path, f"not a UTF-8 text CSV ({e.reason})") from None
    if len(rows) < 2:
        raise CalibrationInputError(path, f"expected a header row and data rows, got {len(rows)} row(s)")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise CalibrationInputError(path, f"duplicate column names {dup}")
    cols: dict[str, list[str]] = {h: [] for h in header}
    for lineno, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise CalibrationInputError(
                path, f"line {lineno} has {len(r)} fields, the header has {len(header)}")
        for h, v in zip(header, r):
            cols[h].append(v.strip())
    return cols, 2


def _read_hdf5_columns(path: Path) -> tuple[dict[str, np.ndarray], int]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CalibrationInputError(path, f"not a readable HDF5 file (truncated or corrupt?): {e}") from None
    cols: dict[str, np.ndarray] = {}
    try:
        group = f["measurements"] if "measurements" in f else f
        for name, obj in group.items():
            if not isinstance(obj, h5py.Dataset):
                continue
            try:
                arr = obj[()]
            except (OSError, RuntimeError) as e:
                raise CalibrationInputError(path, f"dataset cannot be read (truncated file?): {e}",
                                            column=name) from None
            if arr.ndim != 1:
                raise CalibrationInputError(path, f"expected a 1-D dataset, got shape {arr.shape}", column=name)
            if arr.dtype.kind in "SO":
                arr = np.array([a.decode() if isinstance(a, bytes) else str(a) for a in arr], dtype=object)
            cols[name] = arr
    except (OSError, RuntimeError, KeyError) as e:
        raise CalibrationInputError(path, f"HDF5 file cannot be read (truncated or corrupt?): {e}") from None
    finally:
        try:
            f.close()
        except Exception:  # pragma: no cover - closing a broken file
            pass
    if not cols:
        raise CalibrationInputError(path, "no 1-D datasets at the root or in group 'measurements'")
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise CalibrationInputError(path, f"datasets must have equal lengths, got {lengths}")
    return cols, 0


def _numeric(path, name: str, values, first_line: int) -> np.ndarray:
    """Column to float64; names the first bad row (CSV line number when known)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iufb":
        arr = values.astype(np.float64)
    else:
        arr = np.empty(len(values))
        for k, v in enumerate(values):
            try:
                arr[k] = float(v) if v != "" else np.nan
            except (TypeError, ValueError):
                where = f"line {k + first_line}" if first_line else f"row {k}"
                raise CalibrationInputError(path, f"{where}: expected a number, got {v!r}", column=name) from None
    bad = ~np.isfinite(arr)
    if bad.any():
        k = int(np.argmax(bad))
        where = f"line {k + first_line}" if first_line else f"row {k}"
        raise CalibrationInputError(
            path, f"{int(bad.sum())} missing/NaN/Inf value(s), first at {where} ({values[k]!r})", column=name)
    return arr


def _where(first_line: int, k: int) -> str:
    return f"line {k + first_line}" if first_line else f"row {k}"


def _long_column_names(path: Path, names: list[str], lower: dict) -> tuple[str, str]:
    """Check the column names of a long-format table; return (measurement, target) column
    (lower case)."""
    if len(lower) != len(names):
        raise CalibrationInputError(path, f"column names differ only in case: {names}")
    # unit-like names with units we do not know
    for n in names:
        m = _UNIT_LIKE.match(n.lower())
        known = n.lower() in MEASUREMENT_COLUMNS or n.lower() in TARGET_COLUMNS or n.lower() in ("t_s", "v_read_v")
        if m and not known:
            raise CalibrationInputError(
                path, f"unsupported unit {m.group(2)!r}; valid units for {m.group(1)}_*: {_VALID_UNITS[m.group(1)]}",
                column=n)
    targets = [n for n in TARGET_COLUMNS if n in lower]
    missing = [c for c in REQUIRED_COLUMNS if c not in lower and not (c == "g_target_us" and targets)]
    meas = [n for n in MEASUREMENT_COLUMNS if n in lower]
    if missing:
        raise CalibrationInputError(
            path, f"missing required column(s) {missing}; required: {list(REQUIRED_COLUMNS)} plus one of "
                  f"{list(MEASUREMENT_COLUMNS)}; got {names}")
    if len(targets) != 1:
        raise CalibrationInputError(path, f"expected exactly one target column of {list(TARGET_COLUMNS)}, got {targets}")
    if len(meas) != 1:
        raise CalibrationInputError(
            path, f"expected exactly one measurement column of {list(MEASUREMENT_COLUMNS)}, got {meas or 'none'}")
    return meas[0], targets[0]


class _LongColumns:
    """The raw columns of one long-format file, looked up by lower-case name, with the
    checked numeric conversion and error locations of :func:`read_long`."""

    def __init__(self, path: Path, cols: dict, first_line: int):
        self.path, self.cols, self.first_line = path, cols, first_line
        self.lower = {n.lower(): n for n in cols}

    def name(self, key: str) -> str:
        return self.lower[key]

    def raw(self, key: str):
        return self.cols[self.lower[key]]

    def num(self, key: str) -> np.ndarray:
        return _numeric(self.path, self.lower[key], self.raw(key), self.first_line)

    def where(self, mask: np.ndarray) -> str:
        """Location of the first True in mask (CSV line or HDF5 row)."""
        return _where(self.first_line, int(np.argmax(mask)))

    def error(self, problem: str, key: str | None = None) -> CalibrationInputError:
        return CalibrationInputError(self.path, problem, column=None if key is None else self.lower.get(key, key))


def _long_conductance(c: _LongColumns, mcol: str, n_rows: int, read_voltage_v) -> np.ndarray:
    """The measurement column converted to uS (conductance, resistance or current / voltage)."""
    value = c.num(mcol)
    kind, factor = MEASUREMENT_COLUMNS[mcol]
    if kind == "g":
        if (value < 0).any():
            raise c.error(f"negative conductance {value[value < 0][0]:g} at {c.where(value < 0)}; conductance must "
                          "be >= 0", mcol)
        return value * factor
    if kind == "r":
        if (value <= 0).any():
            raise c.error(f"resistance must be > 0, got {value[value <= 0][0]:g} at {c.where(value <= 0)}", mcol)
        return 1e6 / (value * factor)
    if "v_read_v" in c.lower:
        v = c.num("v_read_v")
    elif read_voltage_v is not None:
        v = np.full(n_rows, float(read_voltage_v))
    else:
        raise c.error("a current needs the read voltage: add a column v_read_v or pass --read-voltage", mcol)
    if (v <= 0).any():
        raise CalibrationInputError(c.path, f"read voltage must be > 0 V, got {v[v <= 0][0]:g}", column="v_read_v")
    if (value < 0).any():
        raise c.error(f"negative read current {value[value < 0][0]:g} at {c.where(value < 0)}", mcol)
    return value * factor / v * 1e6


def _check_long_units(c: _LongColumns, g_us, g_target, mcol: str, tcol: str) -> None:
    """Measured vs target within a factor 10 on the median; targets not in siemens."""
    pos = g_us > 0
    if pos.sum() >= 1:
        ratio = float(np.median(g_us[pos] / g_target[pos]))
        if not 0.1 <= ratio <= 10.0:
            raise c.error(f"measured conductance is {ratio:.3g} x the target on the median: the units of "
                          f"{c.name(mcol)!r} and {c.name(tcol)!r} disagree (e.g. siemens in a *_us column)", mcol)
    gmax = float(g_target.max())
    if gmax < 1e-3 and tcol == "g_target_us":
        raise c.error(f"targets up to {gmax:g} uS look like siemens; name the column g_target_s or convert to "
                      "microsiemens", tcol)


def _long_stuck(c: _LongColumns, n_rows: int) -> np.ndarray | None:
    """The optional stuck column as booleans (0/1, true/false, yes/no)."""
    if "stuck" not in c.lower:
        return None
    sv = np.empty(n_rows, dtype=bool)
    for k, v in enumerate(c.raw("stuck")):
        s = str(v).strip().lower() if not isinstance(v, (bool, np.bool_)) else ("1" if v else "0")
        if s in ("1", "1.0", "true", "yes", "t", "y"):
            sv[k] = True
        elif s in ("0", "0.0", "false", "no", "f", "n"):
            sv[k] = False
        else:
            raise c.error(f"expected 0/1 or true/false, got {v!r} at {_where(c.first_line, k)}", "stuck")
    return sv


def _check_long_cells(c: _LongColumns, labels, cell, g_target, t_s, read_f, stuck, tcol: str) -> np.ndarray:
    """Per-cell checks (enough cells, one target each, no duplicate (cell, t, read), a stuck
    flag constant per cell); returns the row order sorted by (cell, t_s, read_id)."""
    if labels.size < MIN_CELLS:
        raise c.error(f"needs at least {MIN_CELLS} distinct cells to fit and hold cells out, got {labels.size}",
                      "cell_id")
    tmin = np.full(labels.size, np.inf)
    tmax = np.full(labels.size, -np.inf)
    np.minimum.at(tmin, cell, g_target)
    np.maximum.at(tmax, cell, g_target)
    bad = np.flatnonzero(tmax - tmin > 1e-9 * np.maximum(1.0, tmax))
    if bad.size:
        raise c.error(f"cell {labels[bad[0]]!r} has more than one target ({tmin[bad[0]]:g} and {tmax[bad[0]]:g} uS)",
                      tcol)
    order = np.lexsort((read_f, t_s, cell))
    c_o, t_o, r_o = cell[order], t_s[order], read_f[order]
    dup = (np.diff(c_o) == 0) & (np.diff(t_o) == 0) & (np.diff(r_o) == 0)
    if dup.any():
        k = int(np.argmax(dup))
        raise c.error(f"duplicate measurement: cell {labels[c_o[k]]!r}, t_s={t_o[k]:g}, read_id={int(r_o[k])} "
                      "appears twice", "read_id")
    if stuck is not None:
        smin = np.zeros(labels.size, bool)
        smax = np.zeros(labels.size, bool)
        np.logical_or.at(smax, cell, stuck)
        np.logical_or.at(smin, cell, ~stuck)
        both = np.flatnonzero(smin & smax)
        if both.size:
            raise c.error(f"cell {labels[both[0]]!r} is flagged stuck in some rows only", "stuck")
    return order


def read_long(path, read_voltage_v: float | None = None) -> LongData:
    """Read and validate a long-format measurement table (CSV or HDF5).

    Args:
        path: CSV (header row) or HDF5 (1-D datasets named like the columns, at the root
            or in a group ``measurements``).
        read_voltage_v: read voltage for a current column when the file has no
            ``v_read_v`` column.

    Returns:
        LongData with conductances in uS, sorted by cell, time, read.

    Raises:
        CalibrationInputError: the file, the column and the problem.
    """
    path = Path(path)
    _check_file(path)
    cols, first_line = (_read_hdf5_columns(path) if _is_hdf5(path) else _read_csv_columns(path))
    c = _LongColumns(path, cols, first_line)
    mcol, tcol = _long_column_names(path, list(cols), c.lower)
    n_rows = len(c.raw(mcol))
    if n_rows == 0:
        raise CalibrationInputError(path, "no data rows")
    ids = np.asarray([str(v).strip() for v in c.raw("cell_id")], dtype=object)
    empty = np.flatnonzero(ids == "")
    if empty.size:
        raise c.error(f"empty cell id at {_where(first_line, int(empty[0]))}", "cell_id")
    g_target = c.num(tcol) * TARGET_COLUMNS[tcol]
    t_s = c.num("t_s")
    read_f = c.num("read_id")
    if (g_target <= 0).any():
        raise c.error(f"target conductance must be > 0, got {g_target[g_target <= 0][0]:g} at "
                      f"{c.where(g_target <= 0)}", tcol)
    if (t_s <= 0).any():
        raise c.error(f"time since programming must be > 0 s (drift is fitted in log time), got "
                      f"{t_s[t_s <= 0][0]:g} at {c.where(t_s <= 0)}", "t_s")
    bad = (read_f < 0) | (read_f != np.round(read_f))
    if bad.any():
        raise c.error(f"read index must be an integer >= 0, got {read_f[bad][0]:g} at {c.where(bad)}", "read_id")
    g_us = _long_conductance(c, mcol, n_rows, read_voltage_v)
    _check_long_units(c, g_us, g_target, mcol, tcol)
    if np.ptp(g_us) == 0:
        raise c.error(f"all {n_rows} measurements are equal ({g_us[0]:g} uS): no programming error, read noise or "
                      "drift can be fitted", mcol)
    stuck = _long_stuck(c, n_rows)
    pulse = c.num("pulse") if "pulse" in c.lower else None
    temp = _long_temperature(c) if "temperature_c" in c.lower else None
    labels, cell = np.unique(ids.astype(str), return_inverse=True)
    cell = cell.astype(np.int64)
    order = _check_long_cells(c, labels, cell, g_target, t_s, read_f, stuck, tcol)
    if temp is not None:
        _check_temperature_per_time(c, labels, cell[order], t_s[order], temp[order])
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS) | {mcol, tcol}
    ignored = [n for n in cols if n.lower() not in known]
    return LongData(
        source=str(path), cell=cell[order], cell_labels=labels, g_target_us=g_target[order], t_s=t_s[order],
        read_id=read_f[order].astype(np.int64), g_us=g_us[order],
        stuck=None if stuck is None else stuck[order], pulse=None if pulse is None else pulse[order],
        measurement_column=c.name(mcol), ignored_columns=ignored,
        temperature_c=None if temp is None else temp[order])


def _long_temperature(c: _LongColumns) -> np.ndarray:
    """The optional temperature_c column (the temperature during the interval before each
    read, in C): finite and above absolute zero."""
    temp = c.num("temperature_c")
    bad = (temp <= -273.15) | (temp > 1000.0)
    if bad.any():
        raise c.error(f"temperature must be in (-273.15, 1000] C, got {temp[bad][0]:g} at {c.where(bad)}",
                      "temperature_c")
    return temp


def _check_temperature_per_time(c: _LongColumns, labels, cell, t_s, temp) -> None:
    """One temperature per (cell, time): rows sorted by cell and time."""
    same = (np.diff(cell) == 0) & (np.diff(t_s) == 0)
    bad = same & (np.diff(temp) != 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise c.error(f"cell {labels[cell[k]]!r} at t_s={t_s[k]:g} has two temperatures ({temp[k]:g} and "
                      f"{temp[k + 1]:g} C); give one per read time", "temperature_c")


def write_long_csv(path, data: LongData) -> None:
    """Write LongData as a long-format CSV (g_us column), atomically."""
    header = (["cell_id", "g_target_us", "t_s", "read_id", "g_us"] + (["stuck"] if data.stuck is not None else [])
              + (["temperature_c"] if data.temperature_c is not None else []))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for k in range(data.n_rows):
        row = [data.cell_labels[data.cell[k]], f"{data.g_target_us[k]:.6g}", f"{data.t_s[k]:.6g}",
               int(data.read_id[k]), f"{data.g_us[k]:.6g}"]
        if data.stuck is not None:
            row.append(int(data.stuck[k]))
        if data.temperature_c is not None:
            row.append(f"{data.temperature_c[k]:.6g}")
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------- pulse ramps

def _isnum(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _ramp_matrix(p: Path) -> tuple[list[str], np.ndarray, int]:
    """A ramp CSV as (column names, values with nan for empty cells, line of the first data row)."""
    with open(p, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise CalibrationInputError(p, "no rows")
    has_header = not all(_isnum(c) for c in rows[0] if c.strip())
    header = [c.strip() for c in rows[0]] if has_header else [f"col{k + 1}" for k in range(len(rows[0]))]
    body = rows[1:] if has_header else rows
    first_line = 2 if has_header else 1
    if len(body) < MIN_RAMP_LENGTH:
        raise CalibrationInputError(p, f"needs at least {MIN_RAMP_LENGTH} pulses (rows) per ramp, got {len(body)}")
    arr = np.full((len(body), len(header)), np.nan)
    for i, r in enumerate(body):
        if len(r) > len(header):
            raise CalibrationInputError(p, f"line {i + first_line} has {len(r)} fields, the header has {len(header)}")
        for j, v in enumerate(r):
            v = v.strip()
            if v == "" or v.lower() == "nan":
                continue
            try:
                arr[i, j] = float(v)
            except ValueError:
                raise CalibrationInputError(p, f"line {i + first_line}: expected a number, got {v!r}",
                                            column=header[j]) from None
    return header, arr, first_line


def _ramp_columns(p: Path):
    """(name, readings) of each ramp in one CSV: the column up to its last value; a gap
    inside a ramp, or fewer than MIN_RAMP_LENGTH readings, is an error."""
    _check_file(p)
    if _is_hdf5(p):
        raise CalibrationInputError(p, "pulse ramps are read from CSV (one column per ramp); this is HDF5")
    _check_text(p)
    header, arr, first_line = _ramp_matrix(p)
    out = []
    for j, name in enumerate(header):
        col = arr[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            raise CalibrationInputError(p, "column holds no numbers", column=name)
        last = len(col) - int(np.argmax(ok[::-1]))
        if not ok[:last].all():
            k = int(np.argmin(ok[:last]))
            raise CalibrationInputError(p, f"missing value at line {k + first_line} inside the ramp (only the end "
                                           f"of a ramp may be empty)", column=name)
        col = col[:last]
        if col.size < MIN_RAMP_LENGTH:
            raise CalibrationInputError(p, f"ramp has {col.size} readings, needs at least {MIN_RAMP_LENGTH}",
                                        column=name)
        out.append((name, col))
    return out


def _ramp_to_us(p: Path, name: str, col: np.ndarray, unit: str, read_voltage_v) -> np.ndarray:
    """One ramp's readings in ``unit`` converted to uS (normalised values are kept)."""
    kind, factor = RAMP_UNITS[unit]
    if kind == "g" and (col < 0).any():
        raise CalibrationInputError(p, f"negative conductance {col[col < 0][0]:g}", column=name)
    if kind in ("r", "i") and (col <= 0).any():
        raise CalibrationInputError(p, f"{'resistance' if kind == 'r' else 'current'} must be > 0, "
                                       f"got {col[col <= 0][0]:g}", column=name)
    if kind == "g":
        g = col * factor
    elif kind == "r":
        g = 1e6 / (col * factor)
    elif kind == "i":
        g = col * factor / read_voltage_v * 1e6
    else:
        g = col.copy()
    if kind == "g" and unit == "uS" and g.max() < 1e-3:
        raise CalibrationInputError(p, f"values up to {g.max():g} look like siemens or amperes, not uS; "
                                       f"pass the right --unit", column=name)
    return g


def read_pulse_ramps(paths, unit: str, read_voltage_v: float | None = None,
                     direction: str = "auto", norm_range_us: tuple[float, float] | None = None) -> RampData:
    """Read wide pulse-ramp CSVs: one column per ramp, one row per identical pulse.

    A first row that is not all numbers is a header (column names); otherwise columns are
    named col1, col2, ... Empty cells may end a column early; a gap inside a column is an
    error.

    Args:
        paths: one or more CSV files (e.g. set.csv and reset.csv).
        unit: of the values: "uS", "mS", "S", "ohm", "kohm", "A", "uA" (a current needs
            read_voltage_v) or "norm" (normalised, needs norm_range_us).
        read_voltage_v: read voltage in V for a current.
        direction: "auto" (sign of each ramp's mean step), "up" or "down".
        norm_range_us: (lo, hi): normalised data are mapped linearly so that their
            observed min and max over all files become lo and hi uS.

    Returns:
        RampData in uS.
    """
    if unit not in RAMP_UNITS:
        raise CalibrationInputError(paths[0] if paths else "<none>",
                                    f"unit must be one of {list(RAMP_UNITS)}, got {unit!r}")
    if direction not in ("auto", "up", "down"):
        raise ValueError(f"direction must be 'auto', 'up' or 'down', got {direction!r}")
    kind, factor = RAMP_UNITS[unit]
    if kind == "i" and (read_voltage_v is None or read_voltage_v <= 0):
        raise CalibrationInputError(paths[0], f"values in {unit} are currents: pass a read voltage > 0 "
                                              f"(--read-voltage), got {read_voltage_v}")
    if kind == "norm":
        if norm_range_us is None or not (0 <= norm_range_us[0] < norm_range_us[1]):
            raise CalibrationInputError(paths[0], "normalised values need --norm-range-us LO HI with 0 <= LO < HI, "
                                                  f"got {norm_range_us}")
    ramps, names, sources = [], [], []
    for p in paths:
        p = Path(p)
        for name, col in _ramp_columns(p):
            ramps.append(_ramp_to_us(p, name, col, unit, read_voltage_v))
            names.append(f"{p.name}:{name}")
        sources.append(str(p))
    if kind == "norm":
        lo = min(float(r.min()) for r in ramps)
        hi = max(float(r.max()) for r in ramps)
        if hi <= lo:
            raise CalibrationInputError(paths[0], "normalised values are all equal; nothing to map")
        a, b = norm_range_us
        ramps = [a + (r - lo) * (b - a) / (hi - lo) for r in ramps]
    if len(ramps) < 2:
        raise CalibrationInputError(paths[0], f"needs at least 2 ramps (columns) to hold ramps out, got {len(ramps)}")
    if direction == "auto":
        dirs = np.array([1 if np.mean(np.diff(r)) >= 0 else -1 for r in ramps])
    else:
        dirs = np.full(len(ramps), 1 if direction == "up" else -1)
    return RampData(sources=sources, ramps=ramps, direction=dirs, names=names, unit="uS")


# --------------------------------------------------------------------------- dG lookup tables

_DG_LAYOUT = ("a dG lookup table is: line 1 a comment, line 2 the conductance bins, line 3 the CDF points, "
              "an optional blank line, then one row of dG per CDF point with one value per bin")


def _dg_number_line(path: Path, lineno: int, text: str, what: str, expect: int | None = None,
                    last_line: bool = False) -> np.ndarray:
    """The comma-separated numbers of one line of a dG table (one trailing comma allowed)."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) > 1 and fields[-1] == "":
        fields = fields[:-1]
    if expect is not None and len(fields) != expect:
        hint = " (the file ends inside this line: truncated?)" if last_line else ""
        raise CalibrationInputError(path, f"line {lineno}: {len(fields)} values, expected {expect} {what}{hint}")
    out = np.empty(len(fields))
    for k, f in enumerate(fields):
        try:
            out[k] = float(f)
        except ValueError:
            raise CalibrationInputError(path, f"line {lineno}, value {k + 1}: expected a number, got {f!r} "
                                              f"({what})") from None
        if not np.isfinite(out[k]):
            raise CalibrationInputError(path, f"line {lineno}, value {k + 1}: {f} is not a finite number ({what})")
    return out


def _first_not_increasing(a: np.ndarray) -> int | None:
    bad = np.flatnonzero(np.diff(a) <= 0)
    return None if bad.size == 0 else int(bad[0]) + 1


def _read_dg_table(path: Path, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One dG table file -> (bins in uS, CDF points, dG matrix in uS of shape (n_cdf, n_bins))."""
    _check_file(path)
    if _is_hdf5(path):
        raise CalibrationInputError(path, f"dG lookup tables are text files; this is HDF5 ({_DG_LAYOUT})")
    _check_text(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise CalibrationInputError(path, f"not a UTF-8 text file ({e.reason})") from None
    lines = text.splitlines()
    ends_cleanly = text.endswith(("\n", "\r"))
    if len(lines) < 3:
        raise CalibrationInputError(path, f"truncated: {len(lines)} line(s); {_DG_LAYOUT}")
    if _numbers(lines[0]) is not None:
        raise CalibrationInputError(path, f"line 1: expected a comment line, got numbers; {_DG_LAYOUT}")
    factor = DG_UNITS[unit]
    bins = _dg_number_line(path, 2, lines[1], "conductance bins")
    cdf = _dg_number_line(path, 3, lines[2], "CDF points")
    if bins.size < MIN_DG_BINS:
        raise CalibrationInputError(path, f"line 2: {bins.size} conductance bin(s), needs at least {MIN_DG_BINS}")
    k = _first_not_increasing(bins)
    if k is not None:
        raise CalibrationInputError(path, f"line 2, value {k + 1}: conductance bins must increase, got "
                                          f"{bins[k - 1]:g} then {bins[k]:g}")
    if bins[0] < 0:
        raise CalibrationInputError(path, f"line 2, value 1: negative conductance {bins[0]:g}")
    if unit == "S" and bins[-1] > 1.0:
        raise CalibrationInputError(path, f"line 2: conductance bins up to {bins[-1]:g} S are not plausible; "
                                          "if they are in uS or mS pass --unit uS or --unit mS")
    if unit == "uS" and bins[-1] < 1e-3:
        raise CalibrationInputError(path, f"line 2: conductance bins up to {bins[-1]:g} uS look like siemens; "
                                          "pass --unit S")
    if cdf.size < 2:
        raise CalibrationInputError(path, f"line 3: {cdf.size} CDF point(s), needs at least 2")
    out = np.flatnonzero((cdf < 0) | (cdf > 1))
    if out.size:
        raise CalibrationInputError(path, f"line 3, value {out[0] + 1}: CDF point {cdf[out[0]]:g} is outside [0, 1]")
    k = _first_not_increasing(cdf)
    if k is not None:
        raise CalibrationInputError(path, f"line 3, value {k + 1}: CDF points must increase, got "
                                          f"{cdf[k - 1]:g} then {cdf[k]:g}")
    i = 3
    if i < len(lines) and not lines[i].strip():  # the blank line before the matrix
        i += 1
    rows, row_line = [], []
    while i < len(lines) and len(rows) < cdf.size:
        if not lines[i].strip():
            if any(ln.strip() for ln in lines[i:]):
                raise CalibrationInputError(path, f"line {i + 1}: blank line inside the dG matrix")
            break
        rows.append(_dg_number_line(path, i + 1, lines[i], "dG values (one per conductance bin on line 2)",
                                    expect=bins.size, last_line=i == len(lines) - 1 and not ends_cleanly))
        row_line.append(i + 1)
        i += 1
    if len(rows) < cdf.size:
        raise CalibrationInputError(path, f"truncated: the dG matrix has {len(rows)} row(s), expected {cdf.size} "
                                          f"(one per CDF point on line 3)")
    more = [j for j in range(i, len(lines)) if lines[j].strip()]
    if more:
        raise CalibrationInputError(path, f"line {more[0] + 1}: more dG rows than CDF points ({cdf.size} on line 3)")
    dg = np.array(rows)
    scale = float(np.abs(dg).max())
    dec = np.argwhere(np.diff(dg, axis=0) < -1e-9 * scale)
    if dec.size:
        r, c = (int(v) for v in dec[0])
        raise CalibrationInputError(
            path, f"line {row_line[r + 1]}, value {c + 1} (bin {bins[c] * factor:.6g} uS): dG {dg[r + 1, c]:g} is "
                  f"below {dg[r, c]:g} on line {row_line[r]}; each column is a quantile function of dG and must not "
                  "decrease as the CDF grows")
    bins_us, dg_us = bins * factor, dg * factor
    span = bins_us[-1] - bins_us[0]
    if scale * factor > span:
        raise CalibrationInputError(path, f"dG values up to {scale * factor:g} uS per pulse exceed the span of the "
                                          f"conductance bins ({span:g} uS): are line 2 and the matrix in the same "
                                          "unit?")
    return bins_us, cdf, dg_us


def read_dg_lookup(paths, unit: str = "S", direction: str = "auto") -> DgLookupData:
    """Read dG lookup tables (Sandia cross-sim-data layout), one per pulse polarity.

    Each file: line 1 a comment; line 2 the conductance bins (comma-separated, increasing);
    line 3 the CDF points (increasing, within [0, 1]); an optional blank line; then one row
    per CDF point with one dG value per bin: column j is the quantile function of the
    conductance change per pulse at bin j, so it must not decrease down the rows. One
    trailing comma per line is allowed.

    Args:
        paths: one or two files (e.g. dG_increasing.txt and dG_decreasing.txt); two files
            must share their bins and have opposite polarities.
        unit: of the bins and dG values: "S" (cross-sim-data), "mS" or "uS".
        direction: "auto" (the sign of the table's mean dG), "up" or "down" (one file only).

    Returns:
        DgLookupData in uS.

    Raises:
        CalibrationInputError: the file, the line and the problem.
    """
    paths = [Path(p) for p in paths]
    if unit not in DG_UNITS:
        raise CalibrationInputError(paths[0] if paths else "<none>", f"dG lookup tables hold conductances: unit must "
                                    f"be one of {list(DG_UNITS)} (default S), got {unit!r}")
    if direction not in ("auto", "up", "down"):
        raise ValueError(f"direction must be 'auto', 'up' or 'down', got {direction!r}")
    if not 1 <= len(paths) <= 2:
        raise CalibrationInputError(paths[2] if len(paths) > 2 else "<none>", "expected one or two dG lookup tables "
                                    f"(increasing and decreasing), got {len(paths)}")
    read = [(p, *_read_dg_table(p, unit)) for p in paths]
    p0, bins0 = read[0][0], read[0][1]
    for p, bins, _, _ in read[1:]:
        if bins.size != bins0.size:
            raise CalibrationInputError(p, f"line 2: {bins.size} conductance bins, {p0} has {bins0.size}; the two "
                                           "tables must share their bins")
        bad = np.flatnonzero(~np.isclose(bins, bins0, rtol=1e-6, atol=0.0))
        if bad.size:
            k = int(bad[0])
            raise CalibrationInputError(p, f"line 2, value {k + 1}: conductance bin {bins[k]:.6g} uS differs from "
                                           f"{bins0[k]:.6g} uS in {p0}; the two tables must share their bins")
    if direction == "auto":
        means = [float(np.trapezoid(dg, cdf, axis=0).mean()) for _, _, cdf, dg in read]
        for (p, *_), m in zip(read, means):
            if m == 0:
                raise CalibrationInputError(p, "mean dG is 0: the polarity cannot be told; pass --direction up or down")
        dirs = [1 if m > 0 else -1 for m in means]
        if len(dirs) == 2 and dirs[0] == dirs[1]:
            raise CalibrationInputError(p0, f"both tables have mean dG {'>' if dirs[0] > 0 else '<'} 0 ({p0.name}: "
                                            f"{means[0]:.3g}, {read[1][0].name}: {means[1]:.3g} uS per pulse); "
                                            "expected one increasing and one decreasing table")
    else:
        if len(read) == 2:
            raise CalibrationInputError(p0, f"--direction {direction} forces one polarity on two tables; give one "
                                            "table, or let the polarity be detected")
        dirs = [1 if direction == "up" else -1]
    tables = {("up" if d > 0 else "down"): DgTable(source=str(p), cdf=cdf, dg_us=dg, direction=d)
              for (p, _, cdf, dg), d in zip(read, dirs)}
    return DgLookupData(sources=[str(p) for p in paths], g_bins_us=bins0, tables=tables)

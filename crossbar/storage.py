"""Save and load programmed arrays (HDF5): the long-term state, so reads can resume later.

Layout: attributes ``format`` ("xbarsim.programmed_array"), ``version`` (1), ``config``
(ArrayConfig JSON), ``shape``, ``digital``; datasets ``weights`` (digital path) or
``g_pos``, ``g_neg``, ``scales`` and optionally ``nu_pos``, ``nu_neg``, ``relax_pos``,
``relax_neg`` (float64, crossbar
layout: rows = inputs), ``dac_range`` (scalar) and ``adc_ranges`` (n_row_tiles, out) when
stored ranges are set. A weight-sliced array (``weight_slices`` > 1) holds one group
``slice<s>`` per slice with those datasets and the attribute ``coef`` (its shift-and-add
weight). Attribute ``read_noise_seed`` (uint64, per group of cells) when the config draws its
read noise once per time setting (``read_noise_draw="per_time"``). With wires (IR drop), the
transfer matrices already computed are kept too (beside each set of cells): datasets
``ir_a_pos``, ``ir_a_neg`` (n_times, in, out) and ``ir_drop`` with attribute ``ir_times_s``,
so a loaded array reads the same without recomputing them. The short-term generator state is
not saved: pass a seed to ``mvm`` for reproducible reads after loading.
"""
from __future__ import annotations

import os

import h5py
import numpy as np

from xbarsim.files import atomic_path

from .array import ProgrammedArray
from .config import ArrayConfig

_FORMAT = "xbarsim.programmed_array"
_VERSION = 1


def save_programmed(arr: ProgrammedArray, path: str | os.PathLike) -> None:
    """Write ``arr`` to ``path`` (HDF5, replaced atomically: a reader sees the old file or the new one)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = _FORMAT
        f.attrs["version"] = _VERSION
        f.attrs["config"] = arr.config.to_json()
        f.attrs["shape"] = np.asarray(arr.shape, dtype=np.int64)
        f.attrs["digital"] = arr.is_digital
        if arr.is_digital:
            f.create_dataset("weights", data=arr._weights)
            return
        if arr._slices is not None:
            for s, (sub, coef) in enumerate(zip(*arr._slices)):
                g = f.create_group(f"slice{s}")
                g.attrs["coef"] = float(coef)
                _write_cells(g, sub)
            return
        _write_cells(f, arr)


def _write_cells(f, arr: ProgrammedArray) -> None:
    f.create_dataset("g_pos", data=arr._g_pos)
    f.create_dataset("g_neg", data=arr._g_neg)
    f.create_dataset("scales", data=arr._scales)
    if arr._nu_pos is not None:
        f.create_dataset("nu_pos", data=arr._nu_pos)
        f.create_dataset("nu_neg", data=arr._nu_neg)
    if arr._relax_pos is not None:
        f.create_dataset("relax_pos", data=arr._relax_pos)
        f.create_dataset("relax_neg", data=arr._relax_neg)
    if arr._dac_range is not None:
        f.create_dataset("dac_range", data=arr._dac_range)
    if arr._adc_ranges is not None:
        f.create_dataset("adc_ranges", data=arr._adc_ranges)
    if arr._read_noise_seed is not None:
        f.attrs["read_noise_seed"] = np.uint64(arr._read_noise_seed)
    if arr._ir:  # IR drop: the transfer matrices computed so far
        times = sorted(arr._ir)
        f.attrs["ir_times_s"] = np.asarray(times, dtype=np.float64)
        f.create_dataset("ir_a_pos", data=np.stack([arr._ir[t][0] for t in times]))
        f.create_dataset("ir_a_neg", data=np.stack([arr._ir[t][1] for t in times]))
        f.create_dataset("ir_drop", data=np.asarray([arr._ir[t][2] for t in times]))


def load_programmed(path: str | os.PathLike) -> ProgrammedArray:
    """Read an array written by :func:`save_programmed`, and check its values.

    Checks: the file opens as HDF5; ``format``, ``version``, ``config``, ``shape`` and
    ``digital`` are present and valid; every dataset has its shape; weights are finite;
    conductances are finite and within the device's [g_min_us, g_max_us]; scales, stored DAC
    and ADC ranges are finite and > 0; drift exponents are finite and >= 0; relaxation
    offsets are finite (what :func:`crossbar.program` produces).

    Raises:
        ValueError: the file is missing, unreadable (truncated, not HDF5), not a programmed
            array of a known version, or a field is missing, mis-shaped or out of range
            (the message names the file and the field).
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such programmed-array file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: cannot open as HDF5 (truncated or not an HDF5 file): "
                         f"{_first_line(exc)}") from exc
    try:
        with f:
            return _read(f, path)
    except (OSError, KeyError, RuntimeError) as exc:  # h5py raises these for damaged data blocks
        raise ValueError(f"{path}: damaged HDF5 content: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _attr(f, path, name: str):
    if name not in f.attrs:
        raise ValueError(f"{path}: attribute {name!r} is missing (not a file written by crossbar.save_programmed?)")
    return f.attrs[name]


def _read(f: h5py.File, path) -> ProgrammedArray:
    fmt = f.attrs.get("format")
    if fmt != _FORMAT:
        raise ValueError(f"{path}: attribute 'format' must be {_FORMAT!r}, got {fmt!r}")
    try:
        version = int(_attr(f, path, "version"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: attribute 'version' must be the integer {_VERSION}") from exc
    if version != _VERSION:
        raise ValueError(f"{path}: attribute 'version' must be {_VERSION}, got {version}")
    try:
        config = ArrayConfig.from_json(_attr(f, path, "config"))
    except ValueError as exc:
        raise ValueError(f"{path}: attribute 'config': {exc}") from exc
    shape_attr = np.asarray(_attr(f, path, "shape"))
    if shape_attr.shape != (2,) or shape_attr.dtype.kind not in "iu" or (shape_attr < 1).any():
        raise ValueError(f"{path}: attribute 'shape' must be two integers >= 1, got {shape_attr.tolist()!r}")
    shape = (int(shape_attr[0]), int(shape_attr[1]))
    n_out, n_in = shape

    def read(g, name: str, expect: tuple[int, ...], lo: float | None = None, hi: float | None = None,
             lo_open: bool = False, rule: str = "") -> np.ndarray:
        where_name = f"{g.name.rstrip('/')}/{name}".lstrip("/")
        if name not in g or not isinstance(g[name], h5py.Dataset):
            raise ValueError(f"{path}: dataset {where_name!r} is missing")
        data = np.asarray(g[name][...], dtype=np.float64)
        if data.shape != expect:
            raise ValueError(f"{path}: dataset {where_name!r} must have shape {expect}, got {data.shape}")
        bad = ~np.isfinite(data)
        if lo is not None:
            bad |= (data <= lo) if lo_open else (data < lo)
        if hi is not None:
            bad |= data > hi
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0]) if data.ndim else ()
            raise ValueError(f"{path}: dataset {where_name!r} must be finite{' and ' + rule if rule else ''}; "
                             f"{int(bad.sum())} value(s) are not, e.g. {float(data[at])!r} at {at}")
        return data

    if bool(_attr(f, path, "digital")):
        return ProgrammedArray(config, shape, weights=read(f, "weights", shape))
    n_row_tiles = len(range(0, n_in, config.tile.rows or n_in))
    dev = config.device
    tol = 1e-9 * dev.g_max_us  # float rounding of the clip to the device range
    g_rule = dict(lo=dev.g_min_us - tol, hi=dev.g_max_us + tol,
                  rule=f"in the device range [{dev.g_min_us:g}, {dev.g_max_us:g}] uS")
    positive = dict(lo=0.0, lo_open=True, rule="> 0")

    def cells(g, cfg: ArrayConfig) -> ProgrammedArray:
        kw = dict(g_pos=read(g, "g_pos", (n_in, n_out), **g_rule), g_neg=read(g, "g_neg", (n_in, n_out), **g_rule),
                  scales=read(g, "scales", (n_row_tiles, n_out), **positive))
        for a, b in (("nu_pos", "nu_neg"), ("relax_pos", "relax_neg")):
            if (a in g) != (b in g):
                raise ValueError(f"{path}: datasets {a!r} and {b!r} must both be present or both absent")
        if "nu_pos" in g:
            kw.update(nu_pos=read(g, "nu_pos", (n_in, n_out), lo=0.0, rule=">= 0"),
                      nu_neg=read(g, "nu_neg", (n_in, n_out), lo=0.0, rule=">= 0"))
        if "relax_pos" in g:
            kw.update(relax_pos=read(g, "relax_pos", (n_in, n_out)), relax_neg=read(g, "relax_neg", (n_in, n_out)))
        if "dac_range" in g:
            kw["dac_range"] = float(read(g, "dac_range", (), **positive))
        if "adc_ranges" in g:
            kw["adc_ranges"] = read(g, "adc_ranges", (n_row_tiles, n_out), **positive)
        if "read_noise_seed" in g.attrs:
            kw["read_noise_seed"] = int(g.attrs["read_noise_seed"])
        elif cfg.device.read_sigma is not None and cfg.device.read_noise_draw == "per_time":
            raise ValueError(f"{path}: attribute 'read_noise_seed' is missing "
                             "(the config has read_noise_draw='per_time')")
        arr = ProgrammedArray(cfg, shape, **kw)
        if "ir_times_s" in g.attrs:
            times = [float(t) for t in np.atleast_1d(g.attrs["ir_times_s"])]
            a_pos = read(g, "ir_a_pos", (len(times), n_in, n_out))
            a_neg = read(g, "ir_a_neg", (len(times), n_in, n_out))
            drop = read(g, "ir_drop", (len(times),))
            arr._ir = {t: (a_pos[k], a_neg[k], float(drop[k])) for k, t in enumerate(times)}
        return arr

    n_sl = config.mapping.weight_slices
    if n_sl == 1:
        return cells(f, config)
    sub_cfg = config.replace(weight_slices=1, weight_clip_sigma=None)
    subs, coef = [], []
    for s in range(n_sl):
        if f"slice{s}" not in f:
            raise ValueError(f"{path}: group 'slice{s}' is missing (weight_slices={n_sl})")
        c = f[f"slice{s}"].attrs.get("coef")
        if c is None or not np.isfinite(float(c)):
            raise ValueError(f"{path}: group 'slice{s}' needs a finite attribute 'coef', got {c!r}")
        subs.append(cells(f[f"slice{s}"], sub_cfg))
        coef.append(float(c))
    return ProgrammedArray(config, shape, slices=(subs, coef))

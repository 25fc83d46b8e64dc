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

import json
import os

import h5py
import numpy as np

from .array import ProgrammedArray
from .config import ArrayConfig

_FORMAT = "xbarsim.programmed_array"
_VERSION = 1


def save_programmed(arr: ProgrammedArray, path: str | os.PathLike) -> None:
    """Write ``arr`` to ``path`` (HDF5, overwritten)."""
    with h5py.File(path, "w") as f:
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
    """Read an array written by :func:`save_programmed`.

    Raises:
        ValueError: the file is not a programmed array of a known version, or a dataset is
            missing or has the wrong shape (the message names the file and the field).
    """
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        if fmt != _FORMAT:
            raise ValueError(f"{path}: attribute 'format' must be {_FORMAT!r}, got {fmt!r}")
        version = int(f.attrs.get("version", -1))
        if version != _VERSION:
            raise ValueError(f"{path}: attribute 'version' must be {_VERSION}, got {version}")
        config = ArrayConfig.from_dict(json.loads(f.attrs["config"]))
        shape = tuple(int(v) for v in f.attrs["shape"])
        n_out, n_in = shape

        def read(g, name: str, expect: tuple[int, ...]) -> np.ndarray:
            if name not in g:
                raise ValueError(f"{path}: dataset {g.name.rstrip('/')}/{name} is missing")
            data = np.asarray(g[name][...], dtype=np.float64)
            if data.shape != expect:
                raise ValueError(f"{path}: dataset {g.name.rstrip('/')}/{name} must have shape {expect}, "
                                 f"got {data.shape}")
            return data

        if bool(f.attrs["digital"]):
            return ProgrammedArray(config, shape, weights=read(f, "weights", shape))
        n_row_tiles = len(range(0, n_in, config.tile.rows or n_in))

        def cells(g, cfg: ArrayConfig) -> ProgrammedArray:
            kw = dict(g_pos=read(g, "g_pos", (n_in, n_out)), g_neg=read(g, "g_neg", (n_in, n_out)),
                      scales=read(g, "scales", (n_row_tiles, n_out)))
            if "nu_pos" in g:
                kw.update(nu_pos=read(g, "nu_pos", (n_in, n_out)), nu_neg=read(g, "nu_neg", (n_in, n_out)))
            if "relax_pos" in g:
                kw.update(relax_pos=read(g, "relax_pos", (n_in, n_out)), relax_neg=read(g, "relax_neg", (n_in, n_out)))
            if "dac_range" in g:
                kw["dac_range"] = float(read(g, "dac_range", ()))
            if "adc_ranges" in g:
                kw["adc_ranges"] = read(g, "adc_ranges", (n_row_tiles, n_out))
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
            subs.append(cells(f[f"slice{s}"], sub_cfg))
            coef.append(float(f[f"slice{s}"].attrs["coef"]))
        return ProgrammedArray(config, shape, slices=(subs, coef))

"""Save and load programmed arrays (HDF5): the long-term state, so reads can resume later.

Layout: attributes ``format`` ("xbarsim.programmed_array"), ``version`` (1), ``config``
(ArrayConfig JSON), ``shape``, ``digital``; datasets ``weights`` (digital path) or
``g_pos``, ``g_neg``, ``scales`` and optionally ``nu_pos``, ``nu_neg`` (float64, crossbar
layout: rows = inputs); attribute ``read_noise_seed`` (uint64) when the config draws its
read noise once per time setting (``read_noise_draw="per_time"``). The short-term generator state is not saved: pass a seed to
``mvm`` for reproducible reads after loading.
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
        f.create_dataset("g_pos", data=arr._g_pos)
        f.create_dataset("g_neg", data=arr._g_neg)
        f.create_dataset("scales", data=arr._scales)
        if arr._nu_pos is not None:
            f.create_dataset("nu_pos", data=arr._nu_pos)
            f.create_dataset("nu_neg", data=arr._nu_neg)
        if arr._read_noise_seed is not None:
            f.attrs["read_noise_seed"] = np.uint64(arr._read_noise_seed)


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

        def read(name: str, expect: tuple[int, ...]) -> np.ndarray:
            if name not in f:
                raise ValueError(f"{path}: dataset {name!r} is missing")
            data = np.asarray(f[name][...], dtype=np.float64)
            if data.shape != expect:
                raise ValueError(f"{path}: dataset {name!r} must have shape {expect}, got {data.shape}")
            return data

        if bool(f.attrs["digital"]):
            return ProgrammedArray(config, shape, weights=read("weights", shape))
        n_row_tiles = len(range(0, n_in, config.tile.rows or n_in))
        kw = dict(g_pos=read("g_pos", (n_in, n_out)), g_neg=read("g_neg", (n_in, n_out)),
                  scales=read("scales", (n_row_tiles, n_out)))
        if "nu_pos" in f:
            kw.update(nu_pos=read("nu_pos", (n_in, n_out)), nu_neg=read("nu_neg", (n_in, n_out)))
        if "read_noise_seed" in f.attrs:
            kw.update(read_noise_seed=int(f.attrs["read_noise_seed"]))
        elif config.device.read_sigma is not None and config.device.read_noise_draw == "per_time":
            raise ValueError(f"{path}: attribute 'read_noise_seed' is missing (config has read_noise_draw='per_time')")
        return ProgrammedArray(config, shape, **kw)

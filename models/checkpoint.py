"""Save and load analog models: a plain state_dict plus the hardware config as JSON.

``save(model, "net.pt")`` writes ``net.pt`` (``torch.save(model.state_dict())``, loadable
with ``torch.load(..., weights_only=True)``) and ``net.json`` beside it: for every analog
layer its class, constructor options, crossbar config (``ArrayConfig.to_dict()``),
``noise_draw``, seed, time since programming and DAC input ranges (``input_ranges``). ``save_programmed`` / ``load_programmed``
store a programmed deployment (one HDF5 file per weight matrix, via crossbar).

Integrity: the JSON records ``sha256``, a digest of every tensor of the state_dict (name,
dtype, shape, bytes: :func:`state_digest`); :func:`load` recomputes it and refuses a file
whose weights changed since they were written, and refuses non-finite weights. The helpers
:func:`read_torch_file`, :func:`state_digest` and :func:`check_state` are public so every
checkpoint format of the project (the study's training checkpoints too) checks the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import crossbar
from xbarsim.files import atomic_path, atomic_write_text

from .convert import analog_layers
from .linear import AnalogLinear
from .rnn import AnalogGRU, AnalogGRUCell, AnalogLSTM, AnalogLSTMCell, AnalogRNN, AnalogRNNCell

__all__ = ["save", "load", "config_path", "save_programmed", "load_programmed", "read_torch_file", "state_digest",
           "check_state"]

FORMAT = "xbarsim.models/1"

_CLASSES = {c.__name__: c for c in (AnalogLinear, AnalogRNN, AnalogLSTM, AnalogGRU, AnalogRNNCell,
                                    AnalogLSTMCell, AnalogGRUCell)}


def config_path(path: str | os.PathLike) -> Path:
    """The JSON file beside a weights file: ``net.pt`` -> ``net.json``."""
    p = Path(path)
    if p.suffix == ".json":
        raise ValueError(f"the weights path must not end in .json (the config goes there), got {p}")
    return p.with_suffix(".json")


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with one clear error naming the file.

    Raises:
        ValueError: the file is missing, a folder, empty, truncated or not a torch file, or
            holds objects other than tensors and plain containers (refused unpickled).
    """
    import pickle

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ValueError(f"{p}: cannot read {what}: {exc.strerror or exc}") from exc
    if p.is_dir():
        raise ValueError(f"{p}: is a folder; expected a {what} file")
    if size == 0:
        raise ValueError(f"{p}: {what} is empty (0 bytes); the write was interrupted or the file was cleared")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{p}: {what} refused: it holds objects other than tensors and plain containers "
                         f"(weights_only=True): {_first_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises EOFError, KeyError, RuntimeError, OSError ...
        raise ValueError(f"{p}: {what} is damaged or truncated ({size} bytes; not a readable torch zip file): "
                         f"{type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "(no message)"


def state_digest(state: Mapping[str, torch.Tensor], extra: Any = None) -> str:
    """SHA-256 (hex) of a state_dict: every tensor's name, dtype, shape and raw bytes, in name order.

    Args:
        state: the state_dict (tensors on any device).
        extra: optional JSON-able data covered by the same digest (e.g. a checkpoint's spec
            and config), serialised with sorted keys.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"state_digest: entry {name!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if extra is not None:
        h.update(json.dumps(extra, sort_keys=True, allow_nan=True).encode())
    return h.hexdigest()


def check_state(state: Any, where: str | os.PathLike, expected: str | None, extra: Any = None) -> None:
    """Check a loaded state_dict: a mapping of tensors, digest equal to ``expected``, all values finite.

    Args:
        state: what was loaded.
        where: the file, for the messages.
        expected: the digest recorded when it was written (None: a file from before digests;
            only the finiteness check runs).
        extra: what the digest also covered (see :func:`state_digest`).

    Raises:
        ValueError: naming the file and what is wrong.
    """
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{where}: the weights are not a mapping of tensor names to tensors")
    if expected is not None:
        got = state_digest(state, extra)
        if got != expected:
            raise ValueError(f"{where}: checksum mismatch (sha256 {got[:12]}..., recorded {expected[:12]}...): the "
                             "file was changed or damaged after it was written; retrain or restore it")
    for name, t in state.items():
        if t.is_floating_point() or t.is_complex():
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                raise ValueError(f"{where}: weight {name!r} has {int(bad.sum())} non-finite value(s) (NaN or Inf)")


def _options(layer: nn.Module) -> dict[str, Any]:
    if isinstance(layer, AnalogLinear):
        return dict(in_features=layer.in_features, out_features=layer.out_features, bias=layer.bias is not None)
    opts: dict[str, Any] = dict(input_size=layer.input_size, hidden_size=layer.hidden_size, bias=layer.bias)
    if hasattr(layer, "num_layers"):
        opts.update(num_layers=layer.num_layers, batch_first=layer.batch_first, dropout=layer.dropout,
                    bidirectional=layer.bidirectional)
    if isinstance(layer, (AnalogRNN, AnalogRNNCell)):
        opts["nonlinearity"] = layer.nonlinearity
    return opts


def _layer_record(layer: nn.Module) -> dict[str, Any]:
    w = next(layer.parameters())
    return {"class": type(layer).__name__, "options": _options(layer), "dtype": str(w.dtype).replace("torch.", ""),
            "config": layer.config.to_dict(), "noise_draw": layer.noise_draw, "seed": layer.seed,
            "t_s": layer.t_s, "input_ranges": dict(layer.input_ranges)}


def save(model: nn.Module, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the state_dict to ``path`` and the analog settings to ``config_path(path)``, each atomically.

    Returns:
        (weights path, JSON path).
    """
    path = Path(path)
    jpath = config_path(path)
    layers = {name: _layer_record(layer) for name, layer in analog_layers(model)}
    if not layers:
        raise ValueError("model has no analog layers; nothing analog to save (use torch.save)")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    meta = {"format": FORMAT, "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "sha256": state_digest(state), "layers": layers}
    atomic_write_text(jpath, json.dumps(meta, indent=2) + "\n")
    return path, jpath


def _read_meta(jpath: Path) -> dict[str, Any]:
    try:
        meta = json.loads(jpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{jpath}: cannot read the analog config JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("layers"), dict):
        raise ValueError(f"{jpath}: expected a JSON object with format={FORMAT!r} and a 'layers' object")
    return meta


def _build(rec: dict[str, Any], where: str) -> nn.Module:
    cls = _CLASSES.get(rec.get("class"))
    if cls is None:
        raise ValueError(f"{where}: unknown layer class {rec.get('class')!r}; expected one of {sorted(_CLASSES)}")
    cfg = crossbar.ArrayConfig.from_dict(rec["config"])
    return cls(**rec["options"], dtype=getattr(torch, rec.get("dtype", "float32")), config=cfg,
               noise_draw=rec["noise_draw"], seed=rec.get("seed"))


def load(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Load what :func:`save` wrote.

    Args:
        path: the weights file.
        model: a module of the saved architecture to load into; its analog layers get the
            saved configs, noise_draw, seeds and times. None: only a model that *is* one
            analog layer can be rebuilt from the JSON.

    Returns:
        The model with the saved weights and analog settings.

    Raises:
        ValueError: missing or malformed JSON, an unreadable weights file, weights whose
            checksum differs from the one recorded in the JSON or that are not finite, layers
            that do not match, or ``model`` needed but not given (each names the file).
    """
    path = Path(path)
    jpath = config_path(path)
    try:
        return _load(path, jpath, model)
    except (KeyError, TypeError, RuntimeError) as exc:  # a field missing or of the wrong kind; shapes differ
        raise ValueError(f"{jpath}: the saved model does not match its description "
                         f"({type(exc).__name__}: {_first_line(exc)})") from exc


def _load(path: Path, jpath: Path, model: nn.Module | None) -> nn.Module:
    meta = _read_meta(jpath)
    layers = meta["layers"]
    if model is None:
        if list(layers) != [""]:
            raise ValueError(f"{jpath}: the saved model ({meta.get('model_class')}) is not a single analog layer; "
                             "pass model= an instance of its architecture to load into")
        model = _build(layers[""], str(jpath))
    state = read_torch_file(path, "model weights")
    check_state(state, path, meta.get("sha256"))
    found = dict(analog_layers(model))
    if set(found) != set(layers):
        raise ValueError(f"{jpath}: analog layers {sorted(layers)} do not match the model's {sorted(found)}")
    model.load_state_dict(state)
    for name, rec in layers.items():
        layer = found[name]
        if type(layer).__name__ != rec["class"]:
            raise ValueError(f"{jpath}: layer {name!r} is a {rec['class']} in the file, {type(layer).__name__} here")
        layer.set_config(crossbar.ArrayConfig.from_dict(rec["config"]))
        layer.noise_draw = rec["noise_draw"]
        layer.seed = rec.get("seed")
        layer._gens = None
        layer.set_time(rec.get("t_s"))
        layer.set_input_ranges(rec.get("input_ranges") or {})
    return model


def save_programmed(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Save a programmed deployment: weights + JSON (as :func:`save`) and every array.

    Writes ``directory/model.pt``, ``directory/model.json`` and one
    ``directory/<layer>.<weight>.h5`` per programmed weight matrix (crossbar's format).

    Returns:
        The directory.
    """
    d = Path(directory)
    layers = list(analog_layers(model))
    unprog = [name or "<model>" for name, layer in layers if not layer.programmed]
    if not layers or unprog:
        raise ValueError(f"every analog layer must be programmed first (models.program); not programmed: {unprog}")
    d.mkdir(parents=True, exist_ok=True)
    save(model, d / "model.pt")
    for name, layer in layers:
        for wname, arr in layer._programmed.items():
            arr.save(str(d / f"{name or 'model'}.{wname}.h5"))
    return d


def load_programmed(directory: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Load a deployment saved by :func:`save_programmed`; the model reads those arrays."""
    d = Path(directory)
    model = load(d / "model.pt", model)
    for name, layer in analog_layers(model):
        arrays = {}
        for wname in layer.analog_weights:
            f = d / f"{name or 'model'}.{wname}.h5"
            if not f.is_file():
                raise ValueError(f"{d}: missing programmed array file {f.name}")
            arrays[wname] = crossbar.load_programmed(str(f))
        layer.set_programmed(arrays)
    return model

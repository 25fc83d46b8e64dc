"""Deployment: program a model onto arrays, age it, read it with fresh noise, evaluate.

Long-term noise (programming noise, stuck cells, drift exponents) is drawn once per
programmed instance by :func:`program`; the time since programming is set with
:func:`set_time`; every read then draws fresh short-term noise (read noise, the paper's
output noise). :func:`evaluate` repeats this over programmed instances and noise draws.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .convert import analog_layers, set_config
from .functional import new_seed

__all__ = ["program", "set_time", "unprogram", "reseed", "evaluate", "evaluate_over_time", "accuracy"]


def _layers(model: nn.Module):
    layers = list(analog_layers(model))
    if not layers:
        raise ValueError("model has no analog layers; convert it first (models.convert(model, config))")
    return layers


def program(model: nn.Module, seed: int | None = None) -> nn.Module:
    """Program every analog layer: draw its long-term noise once (one instance).

    Args:
        model: a model with analog layers.
        seed: seed of this programmed instance (None: drawn from torch's generator);
            each layer gets its own child seed, in module order.

    Returns:
        ``model`` (changed in place); its analog layers now read the programmed arrays.
    """
    layers = _layers(model)
    for (_, layer), child in zip(layers, np.random.SeedSequence(new_seed(seed)).spawn(len(layers))):
        layer.program(child)
    return model


def set_time(model: nn.Module, t_s: float | None) -> nn.Module:
    """Set the time since programming (seconds) of every analog layer (None: config default)."""
    for _, layer in _layers(model):
        layer.set_time(t_s)
    return model


def unprogram(model: nn.Module) -> nn.Module:
    """Leave deployment: every analog layer reads its trainable weights again."""
    for _, layer in _layers(model):
        layer.unprogram()
    return model


def reseed(model: nn.Module, seed: int | None) -> nn.Module:
    """Restart the short-term noise generators of every analog layer from ``seed``."""
    layers = _layers(model)
    for (_, layer), child in zip(layers, np.random.SeedSequence(new_seed(seed)).spawn(len(layers))):
        layer.reseed(new_seed(child))
    return model


def accuracy(model: nn.Module, X: Tensor, y: Tensor, batch_size: int = 1024,
             predict: Callable[[nn.Module, Tensor], Tensor] | None = None, *,
             lengths: Tensor | None = None) -> float:
    """Fraction of ``X`` classified as ``y`` by ``argmax(model(X), -1)`` (or ``predict``).

    The one accuracy count of xbarsim (``study`` uses it too). Runs in batches of
    ``batch_size`` rows without gradients, in the model's current mode (train or eval).

    Args:
        model: any classifier; a tuple output uses its first element.
        X, y: samples (N, ...) and integer labels (N,), as tensors.
        batch_size: rows per forward call.
        predict: ``predict(model, xb) -> labels`` instead of the argmax of the logits.
        lengths: valid lengths (N,) of padded sequences: each batch calls
            ``model(xb, lengths[batch])`` (study's sequence classifiers).

    Returns:
        The fraction correct (0 for an empty ``X``).
    """
    if predict is not None and lengths is not None:
        raise ValueError("pass predict or lengths, not both")
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            xb = X[i:i + batch_size]
            if predict is not None:
                pred = predict(model, xb)
            else:
                out = model(xb) if lengths is None else model(xb, lengths[i:i + batch_size])
                if isinstance(out, tuple):
                    out = out[0]
                pred = out.argmax(-1)
            correct += int((pred == y[i:i + batch_size]).sum())
    return correct / max(1, len(X))


def _check_xy(X: Any, y: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(X, Tensor):
        X = torch.as_tensor(np.asarray(X))
    if not isinstance(y, Tensor):
        y = torch.as_tensor(np.asarray(y))
    if X.dim() < 2:
        raise ValueError(f"X must hold one sample per row (N, ...), got shape {tuple(X.shape)}")
    if y.dim() != 1 or len(y) != len(X):
        raise ValueError(f"y must have shape (N,) = ({len(X)},), got {tuple(y.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or Inf")
    return X, y


def _count(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    return int(v)


def evaluate_over_time(model: nn.Module, X: Any, y: Any, config: Any = None, *, instances: int = 1,
                       draws: int = 1, t_s: Sequence[float | None] = (None,), seed: int | None = 0,
                       batch_size: int = 1024, predict: Callable | None = None) -> np.ndarray:
    """Accuracy of programmed instances read at several times, several noise draws each.

    For each instance i: program the model (long-term noise from the instance's seed);
    for each time t in ``t_s``: for each draw d: restart the short-term noise from the
    seed of (i, d) and classify all of ``X``. The same instance is read at every time,
    so accuracy over time shows drift of one programmed device.

    Args:
        model: a model with analog layers (not changed: a deep copy is evaluated).
        X, y: samples (N, ...) and integer labels (N,).
        config: crossbar config for every analog layer, or None to keep the layers' own.
        instances: programmed instances (long-term draws).
        draws: short-term noise draws per instance and time.
        t_s: times since programming in seconds (None: the config's default read).
        seed: seed of everything (same seed, same numbers).
        batch_size: samples per forward call.
        predict: ``predict(model, xb) -> labels``; default ``argmax(model(xb), -1)``.

    Returns:
        Accuracies, shape (len(t_s), instances, draws).
    """
    X, y = _check_xy(X, y)
    instances, draws = _count("instances", instances), _count("draws", draws)
    times = list(t_s)
    if not times:
        raise ValueError("t_s must hold at least one time")
    model = copy.deepcopy(model)
    if config is not None:
        set_config(model, config)
    model.eval()
    out = np.empty((len(times), instances, draws))
    root = np.random.SeedSequence(new_seed(seed))
    for i, ss in enumerate(root.spawn(instances)):
        prog_ss, draw_ss = ss.spawn(2)
        program(model, seed=new_seed(prog_ss))
        draw_seeds = [new_seed(s) for s in draw_ss.spawn(draws)]
        for k, t in enumerate(times):
            set_time(model, t)
            for d, s in enumerate(draw_seeds):
                reseed(model, s)
                out[k, i, d] = accuracy(model, X, y, batch_size, predict)
    return out


def evaluate(model: nn.Module, X: Any, y: Any, config: Any = None, *, instances: int = 1, draws: int = 1,
             t_s: float | None = None, seed: int | None = 0, batch_size: int = 1024,
             predict: Callable | None = None) -> np.ndarray:
    """Accuracy over programmed instances and noise draws at one time since programming.

    See :func:`evaluate_over_time` for the procedure and arguments.

    Returns:
        Per-draw accuracies, shape (instances, draws); report ``a.mean()`` and ``a.std()``.

    Example:
        >>> acc = evaluate(model, X, y, crossbar.preset("pcm"), instances=5, draws=3, t_s=3600, seed=0)
        >>> acc.mean(), acc.std()
    """
    return evaluate_over_time(model, X, y, config, instances=instances, draws=draws, t_s=(t_s,), seed=seed,
                              batch_size=batch_size, predict=predict)[0]

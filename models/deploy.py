"""Deployment: program a model onto arrays, age it, read it with fresh noise, evaluate.

Long-term noise (programming noise, stuck cells, drift exponents) is drawn once per
programmed instance by :func:`program`; the time since programming is set with
:func:`set_time`; every read then draws fresh short-term noise (read noise, the paper's
output noise). :func:`evaluate` repeats this over programmed instances and noise draws.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .convert import analog_layers, set_config
from .noise import new_seed
from .ranges import calibrate_adc_ranges, clip_counts, fractions, record_inputs, reset_clip_counts

__all__ = ["program", "set_time", "unprogram", "reseed", "evaluate", "evaluate_over_time", "accuracy", "add_counts"]


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
                       batch_size: int = 1024, predict: Callable | None = None, return_clips: bool = False,
                       adc_calibration: Any = None):
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
        return_clips: also return how often the converters saturated.
        adc_calibration: model inputs (a tensor or a list of batches) to set per-tile ADC
            ranges from after each programming when the config's ``adc_range_mode`` is
            "calibrated" (without them the ADCs convert at ``adc_output_range``, with a
            warning); ignored otherwise.

    Returns:
        Accuracies, shape (len(t_s), instances, draws); with ``return_clips`` a tuple
        (accuracies, clips) where ``clips["<layer>.<weight>"]`` is an array (len(t_s), 2)
        of the (DAC, ADC) fraction of conversions that saturated over all instances and
        draws at each time (see :func:`models.clip_fractions`).
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
    adc_inputs = None
    layers = _layers(model)
    if any(layer.config.adc.active and layer.config.adc.range_mode == "calibrated" for _, layer in layers):
        if adc_calibration is None:
            warnings.warn("adc_range_mode is 'calibrated' but no adc_calibration inputs were given: the ADCs "
                          "convert at the fixed adc_output_range", stacklevel=2)
        else:
            batches = adc_calibration if isinstance(adc_calibration, (list, tuple)) else [adc_calibration]
            adc_inputs = record_inputs(model, batches)
    out = np.empty((len(times), instances, draws))
    totals: list[dict[str, dict[str, int]]] = [{} for _ in times]
    root = np.random.SeedSequence(new_seed(seed))
    for i, ss in enumerate(root.spawn(instances)):
        prog_ss, draw_ss = ss.spawn(2)
        program(model, seed=new_seed(prog_ss))
        if adc_inputs is not None:
            calibrate_adc_ranges(model, adc_inputs, t_s=0.0)
        draw_seeds = [new_seed(s) for s in draw_ss.spawn(draws)]
        for k, t in enumerate(times):
            set_time(model, t)
            reset_clip_counts(model)
            for d, s in enumerate(draw_seeds):
                reseed(model, s)
                out[k, i, d] = accuracy(model, X, y, batch_size, predict)
            add_counts(totals[k], clip_counts(model))
    if not return_clips:
        return out
    names = sorted({m for tot in totals for m in tot})
    clips = {m: np.array([fractions(tot[m]) if m in tot else (0.0, 0.0) for tot in totals]) for m in names}
    return out, clips


def add_counts(total: dict[str, dict[str, int]], counts: dict[str, dict[str, int]]) -> None:
    """Add saturation counts per matrix (as :func:`models.ranges.clip_counts`) into ``total``."""
    for m, c in counts.items():
        acc = total.setdefault(m, {k: 0 for k in c})
        for k, v in c.items():
            acc[k] += v


def evaluate(model: nn.Module, X: Any, y: Any, config: Any = None, *, instances: int = 1, draws: int = 1,
             t_s: float | None = None, seed: int | None = 0, batch_size: int = 1024,
             predict: Callable | None = None, adc_calibration: Any = None) -> np.ndarray:
    """Accuracy over programmed instances and noise draws at one time since programming.

    See :func:`evaluate_over_time` for the procedure and arguments.

    Returns:
        Per-draw accuracies, shape (instances, draws); report ``a.mean()`` and ``a.std()``.

    Example:
        >>> acc = evaluate(model, X, y, crossbar.preset("pcm"), instances=5, draws=3, t_s=3600, seed=0)
        >>> acc.mean(), acc.std()
    """
    return evaluate_over_time(model, X, y, config, instances=instances, draws=draws, t_s=(t_s,), seed=seed,
                              batch_size=batch_size, predict=predict, adc_calibration=adc_calibration)[0]

"""Swap torch's linear and recurrent layers for analog ones anywhere in a model."""
from __future__ import annotations

import copy
from typing import Any, Iterator

import numpy as np
from torch import nn

from .noise import new_seed
from .linear import AnalogLayerMixin, AnalogLinear, check_config
from .rnn import AnalogGRU, AnalogGRUCell, AnalogLSTM, AnalogLSTMCell, AnalogRNN, AnalogRNNCell

__all__ = ["convert", "to_torch", "set_config", "analog_layers", "ANALOG_TWINS"]

#: torch layer type -> its analog twin (exact types: subclasses are not converted)
ANALOG_TWINS: dict[type, type] = {
    nn.Linear: AnalogLinear,
    nn.RNN: AnalogRNN,
    nn.LSTM: AnalogLSTM,
    nn.GRU: AnalogGRU,
    nn.RNNCell: AnalogRNNCell,
    nn.LSTMCell: AnalogLSTMCell,
    nn.GRUCell: AnalogGRUCell,
}


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayerMixin]]:
    """(qualified name, layer) of every analog layer in ``model``, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, AnalogLayerMixin):
            yield name, module


def _swap(model: nn.Module, make) -> nn.Module:
    new = make(model)
    if new is not None:
        return new
    for name, child in list(model.named_children()):
        repl = _swap(child, make)
        if repl is not child:
            setattr(model, name, repl)
    return model


def convert(model: nn.Module, config: Any, *, inplace: bool = False, seed: int | None = None,
            **layer_kw: Any) -> nn.Module:
    """Replace every nn.Linear, nn.RNN, nn.LSTM, nn.GRU (and their cells) by its analog twin.

    Nested modules are searched; weights, options and train/eval mode are kept. Layers
    that are analog already get ``config`` (:func:`set_config`).

    Args:
        model: a torch module (or a single layer).
        config: :class:`crossbar.ArrayConfig` (or preset name) for every analog layer.
        inplace: change ``model`` itself instead of a deep copy.
        seed: if given, each converted layer gets its own seed spawned from it, in
            module order (same seed, same draws); None: each layer draws its seed
            from torch's global generator at its first forward.
        **layer_kw: more analog keywords for every converted layer (e.g. ``noise_draw``).

    Returns:
        The converted model (``model`` itself when ``inplace``).

    Raises:
        TypeError: ``model`` is not an nn.Module or ``config`` is not an ArrayConfig.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        >>> analog = convert(net, crossbar.preset("paper", out_noise_sigma=0.1), seed=0)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    config = check_config(config)
    if "config" in layer_kw:
        raise TypeError("pass config positionally, not in layer_kw")
    seeds = iter(np.random.SeedSequence(new_seed(seed)).spawn(10_000)) if seed is not None else None
    if not inplace:
        model = copy.deepcopy(model)

    def make(m: nn.Module):
        if isinstance(m, AnalogLayerMixin):
            m.set_config(config)
            return m
        twin = ANALOG_TWINS.get(type(m))
        if twin is None:
            return None
        kw = dict(layer_kw)
        if seeds is not None:
            kw["seed"] = new_seed(next(seeds))
        new = twin.from_torch(m, config, **kw)
        new.train(m.training)
        return new

    return _swap(model, make)


def to_torch(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The inverse of :func:`convert`: every analog layer back to its torch twin (weights kept)."""
    if not inplace:
        model = copy.deepcopy(model)

    def make(m: nn.Module):
        if isinstance(m, AnalogLayerMixin):
            new = m.to_torch()
            new.train(m.training)
            return new
        return None

    return _swap(model, make)


def set_config(model: nn.Module, config: Any) -> None:
    """Give every analog layer of ``model`` the crossbar config ``config`` (in place).

    Programmed arrays are dropped (program again to deploy with the new config).
    """
    config = check_config(config)
    for _, layer in analog_layers(model):
        layer.set_config(config)

"""Analog RNN layers (torch) on simulated crossbars: DNI training and deployment.

Public names (see docs/CONTRACTS.md and each docstring):

* layers: :class:`AnalogLinear`, :class:`AnalogRNN`, :class:`AnalogLSTM`,
  :class:`AnalogGRU`, :class:`AnalogRNNCell`, :class:`AnalogLSTMCell`,
  :class:`AnalogGRUCell` (torch's signatures + ``config``, ``noise_draw``, ``seed``);
* :func:`convert`, :func:`to_torch`, :func:`set_config`, :func:`analog_layers`;
* deployment: :func:`program`, :func:`set_time`, :func:`unprogram`, :func:`reseed`,
  :mod:`models.deploy` (``evaluate``, ``evaluate_over_time``, ``accuracy``);
* converter ranges and saturation (:mod:`models.ranges`): :func:`calibrate_input_ranges`,
  :func:`input_ranges`, :func:`set_input_ranges`, :func:`clip_fractions`, :func:`reset_clip_counts`;
* files (:mod:`models.checkpoint`): :func:`save`, :func:`load`, :func:`save_programmed`, :func:`load_programmed`;
* :class:`AnalogMVM` / :func:`analog_mvm`, the one autograd Function of every analog MVM.
"""
from __future__ import annotations

from . import deploy, functional
from .convert import ANALOG_TWINS, analog_layers, convert, set_config, to_torch
from .deploy import accuracy, evaluate, evaluate_over_time, program, reseed, set_time, unprogram
from .autograd import AnalogMVM, analog_mvm
from .noise import NOISE_DRAWS
from .checkpoint import load, load_programmed, save, save_programmed
from .linear import AnalogLayerMixin, AnalogLinear
from .ranges import calibrate_input_ranges, clip_fractions, input_ranges, reset_clip_counts, set_input_ranges
from .rnn import AnalogGRU, AnalogGRUCell, AnalogLSTM, AnalogLSTMCell, AnalogRNN, AnalogRNNCell

__all__ = [
    "AnalogLinear", "AnalogRNN", "AnalogLSTM", "AnalogGRU", "AnalogRNNCell", "AnalogLSTMCell", "AnalogGRUCell",
    "AnalogLayerMixin", "AnalogMVM", "analog_mvm", "NOISE_DRAWS",
    "convert", "to_torch", "set_config", "analog_layers", "ANALOG_TWINS",
    "program", "set_time", "unprogram", "reseed", "evaluate", "evaluate_over_time", "accuracy", "deploy", "functional",
    "save", "load", "save_programmed", "load_programmed",
    "calibrate_input_ranges", "input_ranges", "set_input_ranges", "clip_fractions", "reset_clip_counts",
]

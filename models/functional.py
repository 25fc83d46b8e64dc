"""The functional core of :mod:`models` in one namespace (a facade; the code lives in
the modules named below).

* :mod:`models.noise`: config queries, seeds, the paper's output-noise conventions and
  ``noise_draw`` (``NOISE_DRAWS``, ``check_noise_draw``, ``new_seed``, ``read_config``,
  ``adds_output_noise``, ``has_long_term_noise``, ``has_fresh_read_noise``,
  ``noise_variance``, ``add_output_noise``);
* :mod:`models.reader`: :class:`MatrixReader` (one weight matrix read for one forward
  call) and :class:`SummedNoise` (one noise draw for two reads used only summed);
* :mod:`models.autograd`: :class:`AnalogMVM` / :func:`analog_mvm`, the one autograd
  Function of every analog MVM (straight-through backward with the float weights);
* :mod:`models.cells`: the cell steps :func:`rnn_tanh_step`, :func:`rnn_relu_step`,
  :func:`lstm_step`, :func:`gru_step`;
* :mod:`models.fused`: :func:`lstm_sequence`, an LSTM layer direction on a digital
  config as one autograd node.
"""
from __future__ import annotations

from .autograd import AnalogMVM, analog_mvm
from .cells import gru_step, lstm_step, rnn_relu_step, rnn_tanh_step
from .fused import RecurrentNoise, lstm_sequence
from .noise import (NOISE_DRAWS, NoiseCoefficients, add_output_noise, adds_output_noise, check_noise_draw,
                    has_fresh_read_noise, has_long_term_noise, new_seed, noise_coefficients, noise_variance,
                    output_noise_of, read_config)
from .reader import MatrixReader, SummedNoise

__all__ = [
    "NOISE_DRAWS", "AnalogMVM", "analog_mvm", "MatrixReader", "SummedNoise", "RecurrentNoise",
    "rnn_tanh_step", "rnn_relu_step", "lstm_step", "lstm_sequence", "gru_step",
    "check_noise_draw", "new_seed", "has_long_term_noise", "add_output_noise", "noise_variance",
    "NoiseCoefficients", "noise_coefficients", "output_noise_of", "read_config", "adds_output_noise",
    "has_fresh_read_noise",
]

"""Config queries, seeds and the paper's output-noise arithmetic (no reading, no autograd).

The only module of :mod:`models` that looks inside a :class:`crossbar.ArrayConfig`.

Output noise
------------
A read of one weight matrix returns ``y = crossbar_read(x) + e`` where ``crossbar_read``
is the hardware read of :mod:`crossbar` (DAC, programmed conductances, device read
noise, tiles, ADC) and ``e`` the paper's additive output noise. ``e = scale * z`` with
``z`` standard normal and ``scale`` from the output-noise convention of the config:

* ``absolute``: ``scale = sigma`` (output units);
* ``relative``: ``scale = sigma * rms(y_clean)``;
* ``snr_db``: ``scale = sqrt(mean(y_clean**2) / 10**(snr_db / 10))``;

where ``y_clean`` is the read before the output noise and the mean runs over the batch
and outputs of *one time step* of one weight matrix (as if each step were read by its
own call, so that batching all input projections of a sequence into one call changes
nothing). ``noise_draw`` says which reads share one ``z`` (the scale always follows
the current read):

* ``"mvm"`` (default, as in the paper): fresh ``z`` for every output of every read.
* ``"step"``: within one time step, every sequence of the batch shares ``z``
  (``z`` indexed by step and output); fresh at the next step.
* ``"sequence"``: every time step of one sequence shares ``z`` (indexed by sequence and
  output); fresh at the next forward call.
* ``"batch"``: all time steps of all sequences of one forward call share one ``z``
  (indexed by output only), like aihwkit's once-per-batch weight noise.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "NOISE_DRAWS", "check_noise_draw", "new_seed", "output_noise_of", "adds_output_noise", "read_config",
    "training_config",
    "has_long_term_noise", "has_fresh_read_noise", "noise_variance", "add_output_noise", "NoiseCoefficients",
    "noise_coefficients",
]

#: Valid values of the ``noise_draw`` keyword, see the module docstring.
NOISE_DRAWS = ("mvm", "step", "sequence", "batch")


def check_noise_draw(noise_draw: Any) -> str:
    """Validate a ``noise_draw`` value.

    Raises:
        ValueError: if it is not one of :data:`NOISE_DRAWS`.
    """
    if noise_draw not in NOISE_DRAWS:
        raise ValueError(f"noise_draw must be one of {', '.join(map(repr, NOISE_DRAWS))}, got {noise_draw!r}")
    return noise_draw


def new_seed(seed: int | np.random.SeedSequence | None = None) -> int:
    """An int seed: ``seed`` itself, or one drawn from torch's global generator.

    Drawing from torch's generator makes ``torch.manual_seed`` fix every analog draw.
    """
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(2, np.uint64)[0] >> np.uint64(2))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


# ----------------------------------------------------------------------------------------
# Config queries
# ----------------------------------------------------------------------------------------


def output_noise_of(config: Any) -> tuple[float, str]:
    """(sigma, convention) of the paper's output noise in ``config``; sigma 0.0 when off."""
    on = config.output_noise
    return (float(on.sigma) if on.active else 0.0), str(on.convention)


def adds_output_noise(config: Any) -> bool:
    """True when :mod:`models` adds the output noise, False when crossbar does (or none is on).

    Without an ADC, models draws it (vectorised, with the sharing of ``noise_draw``) on
    the crossbar's read of ``read_config(config)``; with an ADC the noise has to sit before
    the ADC, inside crossbar's read, which draws it fresh on every call.
    """
    return config.output_noise.active and not config.adc.active


def read_config(config: Any) -> Any:
    """The config crossbar programs and reads with: without the output noise that models adds."""
    if adds_output_noise(config):
        return config.replace(out_noise_sigma=None)
    return config


def training_config(config: Any) -> Any:
    """The config a training forward programs with: :func:`read_config` without the drift and
    relaxation laws.

    Training reads at ``t_s = 0`` (the first read, at ``t0``), where drift and relaxation are
    the identity and drift compensation a factor of 1, so the drift exponents and relaxation
    offsets a programming draws would never be used: leaving them out gives the same reads
    in distribution and saves their draws (the random stream differs from programming with
    those laws).
    """
    cfg = read_config(config)
    d = cfg.device
    if d.drift_mu_nu is None and d.drift_sigma_nu is None and d.relax_sigma is None:
        return cfg
    return cfg.replace(drift_mu_nu=None, drift_sigma_nu=None, relax_sigma=None)


def has_long_term_noise(config: Any) -> bool:
    """True when programming ``config`` draws random numbers (programming noise, stuck cells,
    drift exponents, relaxation, read noise frozen per time setting). Without them a programmed array
    depends only on the weights, so the layers program it once and reuse it until the
    weights change."""
    d = config.device
    return (d.prog_sigma is not None or d.drift_sigma_nu is not None or d.relax_sigma is not None
            or d.stuck_min_fraction > 0 or d.stuck_max_fraction > 0
            or (d.read_sigma is not None and d.read_noise_draw == "per_time"))


def has_fresh_read_noise(config: Any) -> bool:
    """True when the device adds short-term read noise drawn fresh on every read by crossbar
    (``read_noise_draw="per_read"``)."""
    return config.device.read_sigma is not None and config.device.read_noise_draw == "per_read"


# ----------------------------------------------------------------------------------------
# Output-noise arithmetic
# ----------------------------------------------------------------------------------------


def noise_variance(y: Tensor, sigma: float, convention: str) -> list[float]:
    """Variance of the output noise for clean reads ``y`` of shape (S, B, out), per step.

    absolute: ``sigma**2``; relative: ``sigma**2 * mean(y**2)``; snr_db:
    ``mean(y**2) / 10**(sigma/10)``; means per time step (over B and out).

    Returns:
        S floats.
    """
    s = y.shape[0]
    if convention == "absolute":
        return [float(sigma) ** 2] * s
    n = y[0].numel()
    if s == 1:
        yf = y.reshape(-1)
        ms = [float(torch.dot(yf, yf)) / n]
    else:
        y2 = y.reshape(s, 1, -1)  # per-step dot products (no squared copy of y)
        ms = (torch.bmm(y2, y2.transpose(1, 2)).reshape(s) / n).tolist()
    k = float(sigma) ** 2 if convention == "relative" else 10.0 ** (-sigma / 10.0)
    return [k * m for m in ms]


def add_output_noise(y: Tensor, sigma: float, convention: str, z: Tensor) -> Tensor:
    """``y + scale * z`` with the per-step scale of ``convention`` (module docstring).

    Args:
        y: clean reads, shape (S, B, out): S time steps of B rows.
        sigma: noise level (sigma for absolute/relative, dB for snr_db).
        convention: "absolute" | "relative" | "snr_db".
        z: standard normals broadcastable to ``y``.
    """
    var = noise_variance(y, sigma, convention)
    return y + torch.tensor(var, dtype=y.dtype).sqrt_().reshape(-1, 1, 1) * z


class NoiseCoefficients(NamedTuple):
    """The output-noise variance of one read: ``per_mean_square * mean(y_clean**2) + constant``.

    relative: ``(sigma**2, 0)``; snr_db: ``(10**(-snr/10), 0)``; absolute: ``(0, sigma**2)``.
    """

    per_mean_square: float
    """factor of the mean square of the clean read (dimensionless)."""
    constant: float
    """constant part of the variance (output units squared)."""


def noise_coefficients(sigma: float, convention: str) -> NoiseCoefficients:
    """The :class:`NoiseCoefficients` of an output noise of level ``sigma`` in ``convention``."""
    if convention == "absolute":
        return NoiseCoefficients(0.0, float(sigma) ** 2)
    k = float(sigma) ** 2 if convention == "relative" else 10.0 ** (-sigma / 10.0)
    return NoiseCoefficients(k, 0.0)

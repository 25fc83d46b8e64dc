"""Reading one weight matrix for one forward call: :class:`MatrixReader`, and
:class:`SummedNoise`, the one output-noise draw of two reads that are only used summed.

A read returns ``crossbar_read(x) + e`` (see :mod:`models.noise` for the output noise
``e``, its conventions and ``noise_draw``). Different weight matrices (input vs
recurrent, layers, directions) never share draws. Long-term device noise (programming
noise, stuck cells, drift exponents) is drawn when a matrix is programmed: once per
forward call in training (shared by every read of that call), once per
:func:`models.deploy.program` in deployment. Short-term device read noise is drawn by
:mod:`crossbar` fresh on every read (``read_noise_draw="per_read"``), and so needs
``noise_draw="mvm"``.

Digital configs
---------------
For a digital config (``config.is_digital``: ideal device, no DAC/ADC, no clipping, no
drift compensation) the crossbar read is exactly ``x @ W.T`` and models adds the output
noise itself, so :class:`MatrixReader` computes the product in torch (``weight=``; or
from the programmed array's weights when deployed) and nothing is programmed in
training. No random numbers move: the digital crossbar read draws none.

Normal generators
-----------------
``config.normal_generator`` picks the source of the output-noise normals ``z``:

* ``"legacy"``: torch's generator (``torch.randn`` / ``normal_``), the stream of every result
  made before 2026-11-30 (kept bit for bit).
* ``"boxmuller"`` (default): each fill draws ONE key from the layer's torch generator
  (:func:`draw_key`: one int64, the same consumption for every fill) and the normals come
  from :mod:`crossbar`'s counter-based Box-Muller generator: the normals of time step ``t``
  of a fill are ``crossbar.fill_standard_normal`` of ``derive_key(key, t)``
  (:func:`crossbar.fill_standard_normal_steps`). The noise of a ``"mvm"`` read is added by
  :class:`crossbar.StepNoise` one step at a time (normals made in a small scratch, the
  relative scale's mean square computed in the same pass), on the step path and in the fused
  recurrences alike, so both give the same bits. One-step reads of a sequence share the
  sequence's key (drawn at the first of them), as the legacy stream shares one draw of all
  steps.
"""
from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch
from torch import Tensor

import crossbar

from .noise import (NoiseCoefficients, adds_output_noise, has_fresh_read_noise, noise_coefficients,
                    noise_variance, output_noise_of)

__all__ = ["MatrixReader", "SummedNoise", "draw_key"]


def draw_key(generator: torch.Generator) -> int:
    """One key of the ``"boxmuller"`` generator from ``generator``: one int64 draw in
    [0, 2^63 - 1) (every fill consumes exactly this, so other draws do not shift)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator))


class _Scratch(threading.local):
    """Per-thread scratch tensors reused across calls (keyed by role); for temporaries
    that never leave the function using them. Fresh large allocations cost page faults
    here that are comparable to the arithmetic done on them."""

    def __init__(self) -> None:
        self.bufs: dict[str, Tensor] = {}

    def get(self, role: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        buf = self.bufs.get(role)
        if buf is None or buf.dtype != dtype or tuple(buf.shape) != tuple(shape):
            buf = self.bufs[role] = torch.empty(shape, dtype=dtype)
        return buf


_SCRATCH = _Scratch()


class MatrixReader:
    """Reads one weight matrix for one forward call, with its output-noise draws.

    Made by the layers (one per weight matrix per forward call); holds the programmed
    array the call reads and the standard-normal draws ``z`` that ``noise_draw``
    shares (see :mod:`models.noise`).

    Args:
        programmed: a :class:`crossbar.ProgrammedArray` of the weights (out, in),
            programmed with ``read_config(config)``.
        config: the layer's :class:`crossbar.ArrayConfig` (output noise included).
        noise_draw: one of :data:`models.noise.NOISE_DRAWS`.
        steps: number of time steps of this forward call (1 for a cell or linear layer).
        batch: number of sequences (rows per time step).
        generator: torch generator for the output-noise draws.
        np_rng: numpy generator passed to crossbar reads (device read noise).
        t_s: time since programming for deployed arrays, or None.
        out_features: rows of the weight matrix (outputs of a read).
        weight: for a digital config only (``config.is_digital``, e.g. ideal, paper): the
            weights the reads use, (out, in). Then ``programmed`` may be None and reads
            are ``x @ weight.T`` in torch (plus the output noise): the digital crossbar
            read is exactly that product, so nothing is programmed. Ignored otherwise.

    Attributes:
        summed: the :class:`SummedNoise` this reader takes part in, or None (set by
            :meth:`SummedNoise.of`).
    """

    __slots__ = ("programmed", "config", "noise_draw", "steps", "batch", "generator", "np_rng",
                 "t_s", "out_features", "_sigma", "_conv", "_z", "_noise_here", "_crossbar_noise",
                 "summed", "_digital_w", "boxmuller", "_key")

    def __init__(self, programmed: Any, config: Any, noise_draw: str, steps: int, batch: int,
                 generator: torch.Generator, np_rng: np.random.Generator, t_s: float | None,
                 out_features: int, weight: Tensor | None = None):
        if programmed is None and (weight is None or not config.is_digital):
            raise ValueError("MatrixReader needs a programmed array, or weights with a digital config")
        self.programmed = programmed
        self.config = config
        self.noise_draw = noise_draw
        self.steps = steps
        self.batch = batch
        self.generator = generator
        self.np_rng = np_rng
        self.t_s = t_s
        self.out_features = out_features
        self._sigma, self._conv = output_noise_of(config)
        # With an ADC the output noise must sit before it: crossbar adds it (fresh per read).
        self._noise_here = adds_output_noise(config)
        self._crossbar_noise = config.output_noise.active and not self._noise_here
        if self._crossbar_noise and noise_draw != "mvm":
            raise ValueError(
                f"noise_draw={noise_draw!r} is not supported with an ADC (adc_bits set): the output noise "
                "sits before the ADC and crossbar draws it fresh on every read; use noise_draw='mvm'")
        if noise_draw != "mvm" and has_fresh_read_noise(config):
            raise ValueError(
                f"noise_draw={noise_draw!r} is not supported with device read noise drawn on every read "
                "(read_noise_draw='per_read'); use noise_draw='mvm', read_noise_draw='per_time' or a config "
                "without read noise")
        self._z: Tensor | None = None
        #: True with ``config.normal_generator == "boxmuller"`` (module docstring)
        self.boxmuller = getattr(config, "normal_generator", "legacy") == "boxmuller"
        self._key: int | None = None   # boxmuller "mvm": the key of a sequence's one-step reads
        self.summed: SummedNoise | None = None
        self._digital_w: Tensor | None = None
        if config.is_digital and weight is not None:
            self._digital_w = weight.detach()
        elif programmed is not None and getattr(programmed, "is_digital", False):
            # a programmed digital array holds its weights exactly (deployment)
            self._digital_w = torch.from_numpy(programmed.effective_weights())

    @property
    def adds_noise(self) -> bool:
        """True when this reader (not crossbar) adds the output noise to its reads."""
        return self._noise_here

    def digital_weight(self, dtype: torch.dtype) -> Tensor | None:
        """The weights (out, in) in ``dtype`` when a read is exactly ``x @ W.T`` plus the
        output noise models adds (digital config: ideal or paper); None otherwise."""
        w = self._digital_w
        if w is None:
            return None
        if w.dtype != dtype:
            w = self._digital_w = w.to(dtype)
        return w

    def noise_coefficients(self) -> NoiseCoefficients | None:
        """This read's output-noise variance per step as ``per_mean_square * mean(y_clean**2)
        + constant`` (:class:`models.noise.NoiseCoefficients`), or None when models adds no
        output noise for this read."""
        if not self._noise_here:
            return None
        return noise_coefficients(self._sigma, self._conv)

    def sequence_draws(self, batch: int, dtype: torch.dtype, out: Tensor | None = None) -> Tensor:
        """The standard normals of all one-step reads of a sequence, shape (S', B', out)
        with S' in (steps, 1) and B' in (batch, 1): step ``t`` uses ``z[t]`` (``z[0]``
        when S' = 1). Consumes the generator exactly as ``steps`` calls of one-step reads
        would (same numbers for the same seed). ``out``: a (steps, batch, out) C-contiguous
        buffer to fill instead of allocating (noise_draw "mvm" only; the draws do not
        outlive it)."""
        if self.noise_draw == "mvm":
            if self.boxmuller:
                raise RuntimeError("sequence_draws: boxmuller 'mvm' noise is added by crossbar.StepNoise "
                                   "(MatrixReader.sequence_key), not from drawn normals")
            if out is not None:
                if not out.is_contiguous():
                    raise ValueError(f"sequence_draws: out must be contiguous, got strides {out.stride()}")
                # same numbers as torch.randn(shape, generator=...) (which is empty().normal_())
                return out.normal_(generator=self.generator)
            z = self._z_for(0, 1, batch, dtype)  # with steps > 1 this draws all steps into self._z
            return self._z if self.steps > 1 else z
        return self._z_for(0, self.steps, batch, dtype)

    def sequence_key(self) -> int:
        """boxmuller, ``noise_draw="mvm"``: the key of this reader's one-step reads of a
        sequence (drawn at the first call, from the generator, as the first one-step read
        would), for :class:`crossbar.StepNoise` with step index ``t``."""
        if self._key is None:
            self._key = draw_key(self.generator)
        return self._key

    def _randn(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """Standard normals of ``shape`` (leading axis: steps) from this reader's generator."""
        if not self.boxmuller:
            return torch.randn(*shape, generator=self.generator, dtype=dtype)
        z = torch.empty(shape, dtype=dtype)
        crossbar.fill_standard_normal_steps(z.numpy(), draw_key(self.generator))
        return z

    def _draws(self, dtype: torch.dtype) -> Tensor:
        if self._z is None or self._z.dtype != dtype:
            shape = {"mvm": None, "step": (self.steps, 1), "sequence": (1, self.batch),
                     "batch": (1, 1)}[self.noise_draw]
            if shape is None:
                raise AssertionError("mvm draws are made per read")
            self._z = self._randn((*shape, self.out_features), dtype)
        return self._z

    @property
    def crossbar_only(self) -> bool:
        """True when a read is the crossbar's read and nothing else (an analog array, no output
        noise added here): then :meth:`read_one` is a one-step read."""
        return self._digital_w is None and not self._noise_here

    def read_one(self, h: Tensor) -> Tensor:
        """One one-step read of ``h`` (B, in) -> (B, out) when :attr:`crossbar_only`: the same
        numbers and draws as ``self(h.unsqueeze(0), t)[0]``, without its reshapes (the
        recurrent reads of a fused recurrence, once per step)."""
        return torch.from_numpy(self.programmed.mvm(h.detach().numpy(), t_s=self.t_s, seed=self.np_rng))

    def __call__(self, x: Tensor, t0: int = 0) -> Tensor:
        """Read ``x`` of shape (S, B, in) holding time steps ``t0 .. t0+S-1``; returns (S, B, out)."""
        s, b, n_in = x.shape
        wd = self.digital_weight(x.dtype)
        if wd is not None:
            self.count(s * b)
            y = torch.mm(x.detach().reshape(s * b, n_in), wd.t()).reshape(s, b, -1)
            return self._add_noise(y, t0, s, b)
        xn = x.detach().reshape(s * b, n_in).numpy()
        if self._crossbar_noise and self._conv != "absolute" and s > 1:
            # per-step scale: one crossbar call per step (only with ADC + relative/snr noise)
            ys = [self.programmed.mvm(xn[i * b:(i + 1) * b], t_s=self.t_s, seed=self.np_rng) for i in range(s)]
            y = torch.from_numpy(np.concatenate(ys, axis=0))
        else:
            y = torch.from_numpy(np.ascontiguousarray(self.programmed.mvm(xn, t_s=self.t_s, seed=self.np_rng)))
        y = y.reshape(s, b, -1)
        if y.dtype != x.dtype:
            y = y.to(x.dtype)
        return self._add_noise(y, t0, s, b)

    def count(self, vectors: int) -> None:
        """Record ``vectors`` reads done here in torch (digital path) on the programmed
        array's counter (:class:`crossbar.energy.MVMCounter`), when one is attached."""
        counter = getattr(self.programmed, "counters", None)
        if counter is not None:
            counter.add(vectors)

    def _add_noise(self, y: Tensor, t0: int, s: int, b: int) -> Tensor:
        if not self._noise_here:
            return y
        summed = self.summed
        if self.boxmuller and self.noise_draw == "mvm" and not (summed is not None and summed.first is self):
            return self._add_step_noise(y, t0, s)
        var = noise_variance(y, self._sigma, self._conv)  # list of per-step floats
        if summed is not None:
            if summed.first is self:
                # the second read of the pair adds this read's noise with its own
                summed.record_first(var, t0)
                return y
            var = summed.total_variance(var, t0)
        z = self._z_for(t0, s, b, y.dtype)
        if s == 1 and z.shape == y.shape:
            y.add_(z, alpha=math.sqrt(var[0]))
        else:
            scale = torch.tensor(var, dtype=y.dtype).sqrt_().reshape(s, 1, 1)
            y = y.addcmul_(scale, z) if z.shape == y.shape else y + scale * z
        return y

    def step_noise(self, ys: Tensor, key: int, add: Tensor | None = None, bias: Tensor | None = None,
                   double_cols: tuple[int, int] | None = None) -> Any:
        """The :class:`crossbar.StepNoise` of this reader's output noise on the reads ``ys``
        (S, B, out) (boxmuller, ``"mvm"``): call it with ``(t, step, extra_var)``."""
        coef = noise_coefficients(self._sigma, self._conv)
        return crossbar.StepNoise(ys.detach().numpy(), key, coef.per_mean_square, coef.constant,
                                  add=None if add is None else add.detach().numpy(),
                                  bias=None if bias is None else bias.detach().numpy(), double_cols=double_cols)

    def _add_step_noise(self, y: Tensor, t0: int, s: int) -> Tensor:
        """boxmuller ``"mvm"``: add the noise of steps ``t0 .. t0+s-1`` to ``y`` (S, B, out) in place
        with :class:`crossbar.StepNoise` (the second read of a :class:`SummedNoise` adds the
        first's variance)."""
        key = self.sequence_key() if (s == 1 and self.steps > 1) else draw_key(self.generator)
        if not y.is_contiguous():
            y = y.contiguous()
        noise = self.step_noise(y, key)
        summed = self.summed
        extra = summed.total_variance([0.0] * s, t0) if summed is not None else None
        for i in range(s):
            noise(i, t0 + i, 0.0 if extra is None else extra[i])
        return y

    def _z_for(self, t0: int, s: int, b: int, dtype: torch.dtype) -> Tensor:
        if self.noise_draw == "mvm":
            if s == 1 and self.steps > 1:
                # one-step reads of a sequence: draw all steps at once, hand out a step each
                if self._z is None or self._z.dtype != dtype or self._z.shape[1] != b:
                    self._z = torch.randn(self.steps, b, self.out_features, generator=self.generator, dtype=dtype)
                return self._z[t0:t0 + 1]
            # a multi-step read: its normals live until the read adds them (same numbers as torch.randn)
            return _SCRATCH.get("read_z", (s, b, self.out_features), dtype).normal_(generator=self.generator)
        z = self._draws(dtype)
        if self.noise_draw == "step":
            return z[t0:t0 + s]
        if self.noise_draw == "sequence" and z.shape[1] != b:
            raise ValueError(f"noise_draw='sequence' needs the same batch in every step, got {b} vs {z.shape[1]}")
        return z


class SummedNoise:
    """One output-noise draw for two reads that are only ever used summed.

    For an LSTM's or Elman RNN's ``W_ih x_t + W_hh h_{t-1}``, the sum of the two reads'
    independent output noises (same sharing ``noise_draw``) is one normal of the summed
    variance: one draw replaces two, exactly in distribution. The ``first`` read (the
    input projection) records its per-step variance here and adds no noise; the
    ``second`` read (the recurrent one) adds one draw of ``var_first[t] + var_second[t]``
    for step ``t``. The data flow is explicit: the first read must have run over the
    steps before the second read of any of them (it does, since the second read needs
    the first one's output); a second read of a step the first has not recorded raises.

    Make with :meth:`of`; the readers point back at it (``reader.summed``).

    Attributes:
        first, second: the two :class:`MatrixReader`.
        first_var: the first read's per-step variances (index = time step), or None
            before it ran.
    """

    __slots__ = ("first", "second", "first_var")

    def __init__(self, first: MatrixReader, second: MatrixReader):
        self.first = first
        self.second = second
        self.first_var: list[float] | None = None

    @classmethod
    def of(cls, first: MatrixReader, second: MatrixReader) -> "SummedNoise | None":
        """Merge the output noise of ``first`` and ``second`` when both add it in models with
        the same ``noise_draw``; returns the :class:`SummedNoise` (and attaches it to both
        readers), or None when they cannot be merged (each then draws its own)."""
        if not (first.adds_noise and second.adds_noise and first.noise_draw == second.noise_draw):
            return None
        if first.summed is not None or second.summed is not None:
            raise ValueError("a MatrixReader can take part in one SummedNoise only")
        pair = cls(first, second)
        first.summed = pair
        second.summed = pair
        return pair

    def record_first(self, var: list[float], t0: int) -> None:
        """Store the first read's variances of steps ``t0 .. t0+len(var)-1``."""
        if self.first_var is None:
            self.first_var = [math.nan] * max(self.first.steps, t0 + len(var))
        self.first_var[t0:t0 + len(var)] = var

    def total_variance(self, var: list[float], t0: int) -> list[float]:
        """``var[i] + first_var[t0 + i]``: the variance of the one draw of step ``t0 + i``.

        Raises:
            RuntimeError: the first read has not recorded one of these steps.
        """
        fv = self.first_var
        if fv is None or t0 + len(var) > len(fv) or any(math.isnan(v) for v in fv[t0:t0 + len(var)]):
            raise RuntimeError(
                f"SummedNoise: the second read of steps {t0}..{t0 + len(var) - 1} ran before the first read "
                "recorded them; read the input projection first")
        return [v + fv[t0 + i] for i, v in enumerate(var)]

    def first_variances(self, steps: int) -> list[float]:
        """The first read's variances of steps ``0 .. steps-1`` (for the fused recurrence).

        Raises:
            RuntimeError: the first read has not run over all of them.
        """
        fv = self.first_var
        if fv is None or len(fv) < steps or any(math.isnan(v) for v in fv[:steps]):
            raise RuntimeError("SummedNoise: the input projection must be read before the recurrence")
        return list(fv[:steps])

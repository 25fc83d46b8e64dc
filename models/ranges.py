"""Converter ranges from data, and how often the converters saturate.

Real chips set each layer's input (DAC) scaling from calibration data (NeuRRAM, IBM's
HERMES); a fixed +-1 range silently clips features that lie outside it. Here every analog
weight matrix (a layer's input and recurrent matrices separately) gets its own DAC input
range from a statistic of ``|x|`` over the inputs it reads on calibration data
(:func:`calibrate_input_ranges`), stored in the layer (``layer.input_ranges``) and saved
with checkpoints. Every programmed array counts the DAC inputs and ADC conversions that
saturated; :func:`clip_fractions` collects them per matrix. With ``adc_range_mode =
"calibrated"`` the ADC ranges of every tile come from the partial sums of the programmed
array on calibration inputs (:func:`record_inputs`, :func:`calibrate_adc_ranges`), set
right after programming, as a chip does.

The default statistic is the maximum of ``|x|`` ("max"): no input seen in calibration
clips, at the cost of resolution when a few inputs are far out. A percentile (e.g.
99.99) trades a little clipping of outliers for resolution.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

import crossbar

from .convert import analog_layers, set_config

__all__ = ["DEFAULT_STATISTIC", "LearnedInputRanges", "InputRangeClip", "clip_to_range", "calibrate_input_ranges", "record_inputs", "calibrate_adc_ranges", "input_ranges", "set_input_ranges", "clip_counts",
           "clip_fractions", "fractions", "reset_clip_counts", "matrix_name", "check_statistic"]

#: statistic of |x| a DAC range is set from unless told otherwise
DEFAULT_STATISTIC = "max"

_SAMPLE_CAP = 1 << 20  # |x| values kept per matrix for a percentile (seeded subsample beyond)


def check_statistic(statistic: Any) -> str | float:
    """Validate a range statistic: "max" or a percentile in (0, 100].

    Raises:
        ValueError: anything else.
    """
    if statistic == "max":
        return "max"
    if isinstance(statistic, str):
        try:
            statistic = float(statistic)
        except ValueError:
            pass
    if isinstance(statistic, bool) or not isinstance(statistic, (int, float)) or not math.isfinite(statistic) \
            or not 0 < statistic <= 100:
        raise ValueError(f"statistic must be 'max' or a percentile in (0, 100], got {statistic!r}")
    return float(statistic)


def matrix_name(layer_name: str, weight: str) -> str:
    """The name of one analog weight matrix in a model: ``<layer>.<weight>`` (``<weight>`` at the top)."""
    return f"{layer_name}.{weight}" if layer_name else weight


class _AbsStatistic:
    """Running statistic of |x| over every read of one matrix."""

    def __init__(self, statistic: str | float, seed: int):
        self.statistic = statistic
        self.max = 0.0
        self.count = 0
        self.samples: list[np.ndarray] = []
        self.kept = 0
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: Tensor) -> None:
        a = x.abs().reshape(-1)
        if a.numel() == 0:
            return
        self.max = max(self.max, float(a.max()))
        self.count += a.numel()
        if self.statistic != "max":
            v = a.double().numpy()
            room = _SAMPLE_CAP - self.kept
            if v.size > room:  # keep a seeded subsample, in proportion
                v = self.rng.choice(v, size=max(room, min(v.size, _SAMPLE_CAP // 16)), replace=False)
            self.samples.append(v)
            self.kept += v.size

    def value(self) -> float | None:
        if self.count == 0 or self.max == 0.0:
            return None
        if self.statistic == "max":
            return self.max
        r = float(np.percentile(np.concatenate(self.samples), self.statistic))
        return r if r > 0 else self.max


def _observe(model: nn.Module, batches: Iterable[Any], make: Any) -> dict[str, dict[str, Any]]:
    """Run a deep copy of ``model`` on the ideal config over ``batches`` (no gradients) and hand
    every input each weight matrix reads to a recorder ``make(layer_name, weight)``; returns
    the recorders by layer and weight."""
    layers = list(analog_layers(model))
    if not layers:
        raise ValueError("model has no analog layers; convert it first (models.convert(model, config))")
    work = copy.deepcopy(model)
    set_config(work, crossbar.preset("ideal"))
    work.eval()
    work_layers = dict(analog_layers(work))
    recorders: dict[str, dict[str, Any]] = {}
    for name, layer in layers:
        wl = work_layers[name]
        recorders[name] = {w: make(name, w) for w in layer.analog_weights}
        wl.unprogram()
        wl._range_observer = recorders[name]
    n = 0
    with torch.no_grad():
        for batch in batches:
            work(*batch) if isinstance(batch, tuple) else work(batch)
            n += 1
    if n == 0:
        raise ValueError("no calibration batch given")
    return recorders


def calibrate_input_ranges(model: nn.Module, batches: Iterable[Any], *, statistic: str | float = DEFAULT_STATISTIC,
                           seed: int = 0) -> dict[str, float]:
    """Set the DAC input range of every analog weight matrix from calibration data.

    A deep copy of ``model`` on the ideal config (no noise, no converters: the inputs the
    trained network computes) is run over ``batches`` without gradients; the inputs of
    every read of each weight matrix (for a recurrent layer: its input matrix sees the
    sequence, its recurrent matrix the hidden state of every step) are summarised by
    ``statistic`` of ``|x|``; the results are stored in ``model``'s layers
    (``layer.input_ranges``). A matrix whose inputs were all zero keeps none.

    Args:
        model: a model with analog layers (changed: its layers get the ranges).
        batches: an iterable of model inputs: each a tensor (``model(x)``) or a tuple of
            positional arguments (``model(*args)``), e.g. training batches.
        statistic: "max" (default, :data:`DEFAULT_STATISTIC`) or a percentile in (0, 100].
        seed: seed of the subsample kept for a percentile.

    Returns:
        ``{"<layer>.<weight>": range}`` for every matrix that got one.

    Raises:
        ValueError: no analog layers, a bad statistic, or no batch.

    Example:
        >>> models.calibrate_input_ranges(net, [X_train[:512]])
        {'0.weight': 3.02, ...}
    """
    statistic = check_statistic(statistic)
    counter = iter(range(1 << 30))
    stats = _observe(model, batches, lambda name, w: _AbsStatistic(statistic, [int(seed), next(counter)]))
    found: dict[str, float] = {}
    for name, layer in analog_layers(model):
        ranges = {}
        for w, st in stats[name].items():
            v = st.value()
            if v is not None:
                ranges[w] = v
                found[matrix_name(name, w)] = v
        layer.set_input_ranges(ranges)
    return found


class _Rows:
    """Keeps the input rows a matrix reads (for ADC calibration)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def __call__(self, x: Tensor) -> None:
        self.parts.append(x.reshape(-1, x.shape[-1]).double().numpy().copy())


def record_inputs(model: nn.Module, batches: Iterable[Any], *, max_rows: int = 8192,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs every analog matrix reads on ``batches`` (ideal config, as
    :func:`calibrate_input_ranges`), at most ``max_rows`` rows each (a seeded subsample).

    Returns:
        ``{"<layer>.<weight>": (rows, in_features) float64}``.
    """
    recs = _observe(model, batches, lambda name, w: _Rows())
    rng = np.random.default_rng(seed)
    out = {}
    for name, per in recs.items():
        for w, rec in per.items():
            if not rec.parts:
                continue
            rows = np.concatenate(rec.parts)
            if rows.shape[0] > max_rows:
                rows = rows[np.sort(rng.choice(rows.shape[0], max_rows, replace=False))]
            out[matrix_name(name, w)] = rows
    return out


def calibrate_adc_ranges(model: nn.Module, inputs: dict[str, np.ndarray], *, statistic: str | float = "max",
                         t_s: float | None = None) -> dict[str, np.ndarray]:
    """Set the per-tile ADC ranges of every programmed analog matrix from its calibration
    inputs (as :func:`record_inputs` returns) with
    :meth:`crossbar.ProgrammedArray.calibrate_adc` (partial sums of the programmed array at
    ``t_s``, after its DAC with the stored input range). Matrices without an ADC are skipped.

    Returns:
        ``{"<layer>.<weight>": ranges (n_row_tiles, out)}`` of the matrices calibrated.

    Raises:
        ValueError: a layer that is not programmed.
    """
    statistic = check_statistic(statistic)
    out = {}
    for name, layer in analog_layers(model):
        if layer._programmed is None:
            raise ValueError(f"calibrate_adc_ranges: layer {name or '<model>'} is not programmed (models.program)")
        for w, arr in layer._programmed.items():
            key = matrix_name(name, w)
            if key in inputs and not arr.is_digital and arr.config.adc.active:
                out[key] = arr.calibrate_adc(inputs[key], t_s=t_s, statistic=statistic)
    return out


def input_ranges(model: nn.Module) -> dict[str, float]:
    """The stored DAC input ranges of ``model``: ``{"<layer>.<weight>": range}``."""
    return {matrix_name(name, w): v for name, layer in analog_layers(model) for w, v in layer.input_ranges.items()}


def set_input_ranges(model: nn.Module, ranges: dict[str, float] | float | None) -> None:
    """Store DAC input ranges: a dict as :func:`input_ranges` returns, one number for every
    matrix, or None to clear them all (the configs' ``dac_input_range`` applies).

    Raises:
        ValueError: a name that is not an analog matrix of ``model`` or a bad value.
    """
    layers = list(analog_layers(model))
    if ranges is None or isinstance(ranges, (int, float)):
        for _, layer in layers:
            layer.set_input_ranges(None if ranges is None else {w: ranges for w in layer.analog_weights})
        return
    names = {matrix_name(name, w): (name, w) for name, layer in layers for w in layer.analog_weights}
    unknown = sorted(set(ranges) - set(names))
    if unknown:
        raise ValueError(f"unknown analog matrices {unknown}; the model has {sorted(names)}")
    per_layer: dict[str, dict[str, float]] = {name: {} for name, _ in layers}
    for key, value in ranges.items():
        name, w = names[key]
        per_layer[name][w] = value
    for name, layer in layers:
        layer.set_input_ranges(per_layer[name])


def clip_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    """Saturation counts of every programmed matrix: ``{"<layer>.<weight>": counts}`` with the
    counts of :meth:`crossbar.ProgrammedArray.clip_counts` (empty when nothing is programmed)."""
    return {matrix_name(name, w): c for name, layer in analog_layers(model) for w, c in layer.clip_counts().items()}


def clip_fractions(model: nn.Module) -> dict[str, tuple[float, float]]:
    """(DAC, ADC) fraction of conversions that saturated per programmed matrix since
    programming or :func:`reset_clip_counts` (0.0 where a converter is absent)."""
    return {k: fractions(c) for k, c in clip_counts(model).items()}


def fractions(c: dict[str, int]) -> tuple[float, float]:
    """(DAC, ADC) saturated fractions of one counts dict (0.0 without conversions)."""
    dac = c["dac_clipped"] / c["dac_conversions"] if c["dac_conversions"] else 0.0
    adc = c["adc_clipped"] / c["adc_conversions"] if c["adc_conversions"] else 0.0
    return dac, adc


def reset_clip_counts(model: nn.Module) -> None:
    """Zero the saturation counters of every programmed array of ``model``."""
    for _, layer in analog_layers(model):
        layer.reset_clip_counts()


# ----------------------------------------------------------------------------------------
# Learned input ranges (straight-through, as aihwkit's InputRangeParameter)
# ----------------------------------------------------------------------------------------


class InputRangeClip(torch.autograd.Function):
    r"""``y = clamp(x, -r, r)`` with a learnable range ``r`` and aihwkit's range gradient.

    Forward clips ``x`` to the DAC range ``[-r, r]``. Backward, for ``x``: the gradient
    passes where ``|x| < r`` and is zero where ``x`` clipped (the exact derivative of
    the clamp). For ``r``, with ``g = dL/dy``, ``U = {x >= r}`` and ``L = {x <= -r}``:

    * ``one_sided=False``: the exact derivative of the clamp,
      :math:`\sum_U g - \sum_L g`;
    * ``one_sided=True`` (aihwkit): only the part that widens the range,
      :math:`\sum_U \min(g, 0) - \sum_L \max(g, 0)`;

    then times ``r * gradient_scale`` when ``relative`` (aihwkit's ``gradient_relative``),
    and, when more than ``input_min_percentage`` of the inputs lie strictly inside the range,
    plus ``decay * r`` (aihwkit's decay: gradient descent shrinks the range toward the
    data until about ``1 - input_min_percentage`` of the inputs clip). With
    ``one_sided=False, relative=False, decay=0`` the backward is the exact gradient of the
    forward (tested with ``torch.autograd.gradcheck`` in float64).

    Args (forward):
        x: inputs, any shape.
        r: 0-d tensor, the range (> 0, input units).
        decay, input_min_percentage, one_sided, relative, gradient_scale: see above.
    """

    @staticmethod
    def forward(ctx, x: Tensor, r: Tensor, decay: float, input_min_percentage: float,  # type: ignore[override]
                one_sided: bool, relative: bool, gradient_scale: float) -> Tensor:
        rv = r.to(x.dtype)
        ctx.save_for_backward(x)
        ctx.r = r.detach().clone()  # the value used here (the data initialisation may update r in place later)
        ctx.opts = (decay, input_min_percentage, one_sided, relative, gradient_scale)
        return torch.maximum(torch.minimum(x, rv), -rv)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        r = ctx.r
        decay, min_pct, one_sided, relative, scale = ctx.opts
        rv = r.to(x.dtype)
        upper = x >= rv
        lower = x <= -rv
        grad_x = grad_r = None
        if ctx.needs_input_grad[0]:
            grad_x = g * ~(upper | lower)
        if ctx.needs_input_grad[1]:
            if one_sided:
                gr = (g.clamp(max=0.0) * upper).sum() - (g.clamp(min=0.0) * lower).sum()
            else:
                gr = (g * upper).sum() - (g * lower).sum()
            if relative:
                gr = gr * rv * scale
            if decay > 0 and float((x.abs() < rv).to(torch.float64).mean()) > min_pct:
                gr = gr + decay * rv
            grad_r = gr.to(r.dtype).reshape(r.shape)
        return grad_x, grad_r, None, None, None, None, None


def clip_to_range(x: Tensor, r: Tensor, *, decay: float = 0.0, input_min_percentage: float = 0.95,
                  one_sided: bool = False, relative: bool = False, gradient_scale: float = 1.0) -> Tensor:
    """:class:`InputRangeClip` as a function (defaults: the exact gradient)."""
    return InputRangeClip.apply(x, r, float(decay), float(input_min_percentage), bool(one_sided), bool(relative),
                                float(gradient_scale))


class _LearnedRange:
    """One matrix's learnable range and its data initialisation (running mean of
    ``init_std_alpha * std(x)`` over the first ``init_batches`` training reads, as aihwkit's
    ``init_from_data``)."""

    def __init__(self, value: float, learner: "LearnedInputRanges"):
        self.param = nn.Parameter(torch.tensor(float(value), dtype=torch.float32))
        self.learner = learner
        self.seen = 0

    def clip(self, x: Tensor, training: bool) -> Tensor:
        opts = self.learner
        if training and self.seen < opts.init_batches:
            std = float(x.detach().double().std()) if x.numel() > 1 else 0.0
            if std > 0:
                with torch.no_grad():
                    self.param.copy_((self.param * self.seen + opts.init_std_alpha * std) / (self.seen + 1))
                self.seen += 1
        return clip_to_range(x, self.param, decay=opts.decay, input_min_percentage=opts.input_min_percentage,
                             one_sided=opts.one_sided, relative=opts.relative, gradient_scale=opts.gradient_scale)

    def reader(self, reader: Any, training: bool) -> "_ClippingReader":
        return _ClippingReader(reader, self, training)


class _ClippingReader:
    """A reader whose inputs :func:`models.functional.analog_mvm` clips with a learned range
    first. A recurrent layer that sees one runs its step-by-step path (``analog_mvm`` per
    step, :meth:`models.rnn._AnalogRNNBase._run_direction`), so every recurrent read is
    clipped inside autograd too; everything else is the wrapped reader's."""

    _OWN = ("_reader", "_learned", "_training")

    def __init__(self, reader: Any, learned: _LearnedRange, training: bool):
        object.__setattr__(self, "_reader", reader)
        object.__setattr__(self, "_learned", learned)
        object.__setattr__(self, "_training", training)

    def __setattr__(self, name: str, value: Any) -> None:
        # state set from outside (noise_draw, merge_noise's partner.defer) belongs to the reader
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._reader, name, value)

    @property
    def wrapped(self) -> Any:
        """The reader this one clips for (its noise bookkeeping, e.g. ``SummedNoise``, is that reader's)."""
        return self._reader

    def clip_input(self, x: Tensor) -> Tensor:
        return self._learned.clip(x, self._training)

    def __call__(self, x: Tensor, t0: int = 0) -> Tensor:
        return self._reader(x, t0)

    def digital_weight(self, dtype: torch.dtype) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class LearnedInputRanges:
    """Learn the DAC input range of every analog weight matrix during training.

    As aihwkit's ``InputRangeParameter`` (``enable``, ``learn_input_range``; aihwkit
    ``simulator/parameters/pre_post.py`` and ``InputRangeForward`` in
    ``simulator/tiles/inference_torch.py``): each matrix's inputs are clipped to
    ``[-r, r]`` in the forward pass of training (:class:`InputRangeClip`), ``r`` starts from
    the data (running mean of ``init_std_alpha * std(x)`` over the first ``init_batches``
    training reads of that matrix; a recurrent matrix reads once per time step), then is
    learned by the same optimizer as the weights: a one-sided straight-through gradient
    through the clip widens it where clipping hurts the loss, relative to ``r``, and a
    decay ``decay * r`` shrinks it while more than ``input_min_percentage`` of the inputs
    lie inside. The learned values are stored exactly as calibrated ones
    (``layer.input_ranges``, :func:`input_ranges`; saved with checkpoints) by :meth:`sync`,
    which :func:`study.experiment.train_model` calls after every optimizer step, so the DAC
    of a non-digital training config uses the range of the step before. :meth:`detach`
    ends learning (the layers read as before; the stored ranges stay).

    Args:
        model: a model with analog layers.
        init_value: starting range before the data initialisation (aihwkit: 3.0).
        init_batches: training reads per matrix that initialise from data (0: off; aihwkit 100).
        init_std_alpha: the data initialisation's multiple of ``std(x)`` (aihwkit 3.0).
        decay: aihwkit's decay (0.001).
        input_min_percentage: aihwkit's threshold for the decay (0.95).
        one_sided: aihwkit's one-sided range gradient (True) or the exact clamp gradient.
        relative, gradient_scale: aihwkit's ``gradient_relative`` (True) and ``gradient_scale`` (1.0).

    Raises:
        ValueError: no analog layers, or a bad option.

    Example:
        >>> learner = LearnedInputRanges(net)
        >>> opt = torch.optim.Adam(list(net.parameters()) + learner.parameters())
        >>> ...; opt.step(); learner.sync()
        >>> learner.detach(); models.input_ranges(net)
    """

    def __init__(self, model: nn.Module, *, init_value: float = 3.0, init_batches: int = 100,
                 init_std_alpha: float = 3.0, decay: float = 0.001, input_min_percentage: float = 0.95,
                 one_sided: bool = True, relative: bool = True, gradient_scale: float = 1.0):
        for name, v in (("init_value", init_value), ("init_std_alpha", init_std_alpha)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (isinstance(init_batches, int) and init_batches >= 0):
            raise ValueError(f"init_batches must be an int >= 0, got {init_batches!r}")
        if not (math.isfinite(decay) and decay >= 0):
            raise ValueError(f"decay must be a finite number >= 0, got {decay!r}")
        if not 0 <= input_min_percentage <= 1:
            raise ValueError(f"input_min_percentage must be in [0, 1], got {input_min_percentage!r}")
        if not (math.isfinite(gradient_scale) and gradient_scale > 0):
            raise ValueError(f"gradient_scale must be a finite number > 0, got {gradient_scale!r}")
        self.init_batches, self.init_std_alpha = init_batches, float(init_std_alpha)
        self.decay, self.input_min_percentage = float(decay), float(input_min_percentage)
        self.one_sided, self.relative, self.gradient_scale = bool(one_sided), bool(relative), float(gradient_scale)
        self._layers = list(analog_layers(model))
        if not self._layers:
            raise ValueError("model has no analog layers; convert it first (models.convert(model, config))")
        self.ranges: dict[str, _LearnedRange] = {}
        for name, layer in self._layers:
            per = {w: _LearnedRange(init_value, self) for w in layer.analog_weights}
            layer._range_learner = per
            self.ranges.update({matrix_name(name, w): lr for w, lr in per.items()})

    def parameters(self) -> list[nn.Parameter]:
        """The learnable ranges (0-d tensors), to hand to the optimizer."""
        return [lr.param for lr in self.ranges.values()]

    def values(self) -> dict[str, float]:
        """Current ranges ``{"<layer>.<weight>": r}``."""
        return {k: abs(float(lr.param.detach())) for k, lr in self.ranges.items()}

    def sync(self) -> dict[str, float]:
        """Keep every range positive (``|r|``, at least 1e-6, as aihwkit takes ``abs``) and store
        the current values in the layers (``layer.input_ranges``); returns them."""
        with torch.no_grad():
            for lr in self.ranges.values():
                lr.param.abs_().clamp_(min=1e-6)
        for name, layer in self._layers:
            layer.set_input_ranges({w: abs(float(lr.param.detach())) for w, lr in layer._range_learner.items()}
                                   if layer._range_learner is not None else layer.input_ranges)
        return self.values()

    def detach(self) -> dict[str, float]:
        """:meth:`sync`, then stop clipping in the layers; returns the stored ranges."""
        values = self.sync()
        for _, layer in self._layers:
            layer._range_learner = None
        return values

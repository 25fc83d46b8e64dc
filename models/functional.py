"""The one analog MVM autograd Function, its noise scheduling, and the RNN cell steps.

Every analog matrix-vector product in :mod:`models` goes through :class:`AnalogMVM`:
its forward reads a crossbar (:mod:`crossbar`, noisy), its backward is straight-through.
The one exception is the recurrence of an LSTM layer on a *digital* config (ideal,
paper: ``config.is_digital``), which :func:`lstm_sequence` runs as one autograd node with
the same reads, draws and straight-through gradients (fewer, larger ops; see below).
The cell step functions (:func:`rnn_tanh_step`, :func:`rnn_relu_step`,
:func:`lstm_step`, :func:`gru_step`) take the two MVM outputs of one time step
(input part ``gi`` and recurrent part ``gh``, biases included) and return the new state,
with torch's gate orders (LSTM: i, f, g, o; GRU: r, z, n).

Noise draws
-----------
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

Different weight matrices (input vs recurrent, layers, directions) never share draws.
For the LSTM and Elman RNN, whose input and recurrent reads are only used summed
(``W_ih x_t + W_hh h_{t-1}``), the two independent noises of one step are drawn as one
normal of the summed variance (:meth:`MatrixReader.merge_noise`): exact in distribution,
half the random numbers. The GRU keeps two draws (its n gate uses ``r * gh_n``).
Long-term device noise (programming noise, stuck cells, drift exponents) is drawn when
a matrix is programmed: once per forward call in training (shared by every read of that
call), once per :func:`models.deploy.program` in deployment. Short-term device read
noise is drawn by :mod:`crossbar` fresh on every read, and so needs ``noise_draw="mvm"``.

Digital configs
---------------
For a digital config (``config.is_digital``: ideal device, no DAC/ADC, no clipping, no
drift compensation) the crossbar read is exactly ``x @ W.T`` and models adds the output
noise itself, so :class:`MatrixReader` computes the product in torch (``weight=``; or
from the programmed array's weights when deployed) and nothing is programmed in
training. No random numbers move: the digital crossbar read draws none. Non-digital
configs (any device noise, DAC, ADC, ...) always read through :mod:`crossbar`. The LSTM
recurrence on a digital config runs in :func:`lstm_sequence` (one node, one ``W_hh``
gradient matmul for all steps, ``tanh(x)`` as ``2 sigmoid(2x) - 1``, which differs from
``torch.tanh`` by float rounding only); ``models.rnn.FAST_RECURRENCE = False`` forces
the step-by-step path, which gives the same numbers for the same seed, to rounding.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

import crossbar

__all__ = [
    "NOISE_DRAWS",
    "AnalogMVM",
    "analog_mvm",
    "MatrixReader",
    "rnn_tanh_step",
    "rnn_relu_step",
    "lstm_step",
    "lstm_sequence",
    "gru_step",
    "check_noise_draw",
    "new_seed",
    "long_term_random",
    "add_output_noise",
    "noise_variance",
    "output_noise_of",
    "read_config",
    "models_add_output_noise",
    "read_noise_on",
]

#: Valid values of the ``noise_draw`` keyword, see the module docstring.
NOISE_DRAWS = ("mvm", "step", "sequence", "batch")

_CONVENTIONS = ("relative", "absolute", "snr_db")


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
# Config queries (the only place that looks inside a crossbar.ArrayConfig)
# ----------------------------------------------------------------------------------------


def output_noise_of(config: Any) -> tuple[float, str]:
    """(sigma, convention) of the paper's output noise in ``config``; sigma 0.0 when off."""
    on = config.output_noise
    return (float(on.sigma) if on.active else 0.0), str(on.convention)


def models_add_output_noise(config: Any) -> bool:
    """Whether :mod:`models` adds the output noise (True) or crossbar does.

    Without an ADC, models draws it (vectorised, with the sharing of ``noise_draw``) on
    the crossbar's read of ``read_config(config)``; with an ADC the noise has to sit before
    the ADC, inside crossbar's read, which draws it fresh on every call.
    """
    return config.output_noise.active and not config.adc.active


def read_config(config: Any) -> Any:
    """The config crossbar programs and reads with: without the output noise that models adds."""
    if models_add_output_noise(config):
        return config.replace(out_noise_sigma=None)
    return config


def long_term_random(config: Any) -> bool:
    """Whether programming ``config`` draws random numbers (programming noise, stuck cells,
    drift exponents). Without them a programmed array depends only on the weights, so the
    layers program it once and reuse it until the weights change."""
    d = config.device
    return (d.prog_sigma is not None or d.drift_sigma_nu is not None or d.relax_sigma is not None
            or d.stuck_min_fraction > 0 or d.stuck_max_fraction > 0)


def read_noise_on(config: Any) -> bool:
    """Whether the device adds short-term read noise (drawn fresh per read by crossbar)."""
    return config.device.read_sigma is not None


# ----------------------------------------------------------------------------------------
# Reading one weight matrix
# ----------------------------------------------------------------------------------------


class MatrixReader:
    """Reads one weight matrix for one forward call, with its output-noise draws.

    Made by the layers (one per weight matrix per forward call); holds the programmed
    array the call reads and the standard-normal draws ``z`` that ``noise_draw``
    shares (see the module docstring).

    Args:
        programmed: a :class:`crossbar.ProgrammedArray` of the weights (out, in),
            programmed with ``read_config(config)``.
        config: the layer's :class:`crossbar.ArrayConfig` (output noise included).
        noise_draw: one of :data:`NOISE_DRAWS`.
        steps: number of time steps of this forward call (1 for a cell or linear layer).
        batch: number of sequences (rows per time step).
        generator: torch generator for the output-noise draws.
        np_rng: numpy generator passed to crossbar reads (device read noise).
        t_s: time since programming for deployed arrays, or None.
        weight: for a digital config only (``config.is_digital``, e.g. ideal, paper): the
            weights the reads use, (out, in). Then ``programmed`` may be None and reads
            are ``x @ weight.T`` in torch (plus the output noise): the digital crossbar
            read is exactly that product, so nothing is programmed. Ignored otherwise.
    """

    __slots__ = ("programmed", "config", "noise_draw", "steps", "batch", "generator", "np_rng",
                 "t_s", "out_features", "_sigma", "_conv", "_z", "_noise_here", "_crossbar_noise",
                 "defer", "deferred_var", "partner", "_digital_w")

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
        self._noise_here = models_add_output_noise(config)
        self._crossbar_noise = config.output_noise.active and not self._noise_here
        if self._crossbar_noise and noise_draw != "mvm":
            raise ValueError(
                f"noise_draw={noise_draw!r} is not supported with an ADC (adc_bits set): the output noise "
                "sits before the ADC and crossbar draws it fresh on every read; use noise_draw='mvm'")
        if noise_draw != "mvm" and read_noise_on(config):
            raise ValueError(
                f"noise_draw={noise_draw!r} is not supported with device read noise, which crossbar draws "
                "fresh on every read; use noise_draw='mvm' or a config without read noise")
        self._z: Tensor | None = None
        self.defer = False
        self.deferred_var: list[float] = []
        self.partner: MatrixReader | None = None
        self._digital_w: Tensor | None = None
        if config.is_digital and weight is not None:
            self._digital_w = weight.detach()
        elif programmed is not None and getattr(programmed, "is_digital", False):
            # a programmed digital array holds its weights exactly (deployment)
            self._digital_w = torch.from_numpy(programmed.effective_weights())

    def digital_weight(self, dtype: torch.dtype) -> Tensor | None:
        """The weights (out, in) in ``dtype`` when a read is exactly ``x @ W.T`` plus the
        output noise models adds (digital config: ideal or paper); None otherwise."""
        w = self._digital_w
        if w is None:
            return None
        if w.dtype != dtype:
            w = self._digital_w = w.to(dtype)
        return w

    def noise_coefficients(self) -> tuple[float, float] | None:
        """(k, a) with this read's output-noise variance ``k * mean(y_clean**2) + a`` per
        step (relative: (sigma**2, 0); snr_db: (10**(-snr/10), 0); absolute: (0, sigma**2)),
        or None when models adds no output noise for this read."""
        if not self._noise_here:
            return None
        if self._conv == "absolute":
            return 0.0, float(self._sigma) ** 2
        k = float(self._sigma) ** 2 if self._conv == "relative" else 10.0 ** (-self._sigma / 10.0)
        return k, 0.0

    def sequence_draws(self, batch: int, dtype: torch.dtype, out: Tensor | None = None) -> Tensor:
        """The standard normals of all one-step reads of a sequence, shape (S', B', out)
        with S' in (steps, 1) and B' in (batch, 1): step ``t`` uses ``z[t]`` (``z[0]``
        when S' = 1). Consumes the generator exactly as ``steps`` calls of one-step reads
        would (same numbers for the same seed). ``out``: a (steps, batch, out) buffer to
        fill instead of allocating (noise_draw "mvm" only; the draws do not outlive it)."""
        if self.noise_draw == "mvm":
            if out is not None:
                # same numbers as torch.randn(shape, generator=...) (which is empty().normal_())
                return out.normal_(generator=self.generator)
            z = self._z_for(0, 1, batch, dtype)  # with steps > 1 this draws all steps into self._z
            return self._z if self.steps > 1 else z
        return self._z_for(0, self.steps, batch, dtype)

    def _draws(self, dtype: torch.dtype) -> Tensor:
        if self._z is None or self._z.dtype != dtype:
            shape = {"mvm": None, "step": (self.steps, 1), "sequence": (1, self.batch),
                     "batch": (1, 1)}[self.noise_draw]
            if shape is None:
                raise AssertionError("mvm draws are made per read")
            self._z = torch.randn(*shape, self.out_features, generator=self.generator, dtype=dtype)
        return self._z

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
        if self._noise_here:
            var = noise_variance(y, self._sigma, self._conv)  # list of per-step floats
            if self.defer:
                # the partner read adds this read's noise with its own (see merge_noise)
                self.deferred_var = var
                return y
            if self.partner is not None:
                pv = self.partner.deferred_var
                var = [v + pv[t0 + i] for i, v in enumerate(var)]
            z = self._z_for(t0, s, b, y.dtype)
            if s == 1 and z.shape == y.shape:
                y.add_(z, alpha=math.sqrt(var[0]))
            else:
                scale = torch.tensor(var, dtype=y.dtype).sqrt_().reshape(s, 1, 1)
                y = y.addcmul_(scale, z) if z.shape == y.shape else y + scale * z
        return y

    def merge_noise(self, partner: "MatrixReader") -> bool:
        """Let this reader add ``partner``'s output noise together with its own.

        For two reads whose outputs are only ever used summed (an LSTM's or Elman RNN's
        ``W_ih x_t + W_hh h_{t-1}``), the sum of their independent noises, drawn with the
        same sharing (``noise_draw``), is one normal of the summed variance: one draw
        replaces two, exactly in distribution. ``partner`` (the input projection, read
        first, all steps at once) then stores its per-step variance instead of drawing.

        Returns:
            True when merged (both readers add the output noise in models).
        """
        if not (self._noise_here and partner._noise_here and self.noise_draw == partner.noise_draw):
            return False
        partner.defer = True
        self.partner = partner
        return True

    def _z_for(self, t0: int, s: int, b: int, dtype: torch.dtype) -> Tensor:
        if self.noise_draw == "mvm":
            if s == 1 and self.steps > 1:
                # one-step reads of a sequence: draw all steps at once, hand out a step each
                if self._z is None or self._z.dtype != dtype or self._z.shape[1] != b:
                    self._z = torch.randn(self.steps, b, self.out_features, generator=self.generator, dtype=dtype)
                return self._z[t0:t0 + 1]
            return torch.randn(s, b, self.out_features, generator=self.generator, dtype=dtype)
        z = self._draws(dtype)
        if self.noise_draw == "step":
            return z[t0:t0 + s]
        if self.noise_draw == "sequence" and z.shape[1] != b:
            raise ValueError(f"noise_draw='sequence' needs the same batch in every step, got {b} vs {z.shape[1]}")
        return z


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


# ----------------------------------------------------------------------------------------
# The autograd Function
# ----------------------------------------------------------------------------------------


class AnalogMVM(torch.autograd.Function):
    r"""``y = read(x) ~ x W^T + noise``: a crossbar read forward, straight-through backward.

    Forward calls ``read`` (a :class:`MatrixReader`, or any callable mapping a tensor of
    shape (S, B, in) to (S, B, out) in the same dtype) without autograd; the input is
    handed to the crossbar kernel as a zero-copy numpy view (float32 or float64).

    Backward is straight-through: the noisy read is differentiated as if it were the
    ideal product with the *trainable weight parameter* ``W`` (the float weights being
    trained, not the programmed, quantised or noisy conductances):
    :math:`\partial L/\partial x = (\partial L/\partial y) W` and
    :math:`\partial L/\partial W = \sum (\partial L/\partial y)^T x` (sum over all rows).
    With all noise off and an ideal device the read equals ``x W^T`` to rounding, so
    ``torch.autograd.gradcheck`` passes in float64.

    Shape:
        x: (S, B, in); weight: (out, in); output: (S, B, out).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, read: Callable[..., Tensor], t0: int = 0) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        return read(x, t0)

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.matmul(grad_y, weight)
        if ctx.needs_input_grad[1]:
            # as (x^T grad_y)^T: MKL runs this orientation of the tall-skinny product up to 2x faster
            grad_w = x.reshape(-1, x.shape[-1]).t().mm(grad_y.reshape(-1, grad_y.shape[-1])).t()
        return grad_x, grad_w, None, None


def analog_mvm(x: Tensor, weight: Tensor, read: Callable[..., Tensor], t0: int = 0) -> Tensor:
    """Apply :class:`AnalogMVM`; ``x`` of shape (S, B, in) holds steps ``t0 .. t0+S-1``."""
    return AnalogMVM.apply(x, weight, read, t0)


# ----------------------------------------------------------------------------------------
# Cell steps (torch ops; gi and gh include their biases)
# ----------------------------------------------------------------------------------------


def rnn_tanh_step(gi: Tensor, gh: Tensor) -> Tensor:
    """Elman step, tanh: ``h' = tanh(gi + gh)``. Shapes (B, H)."""
    return torch.tanh(gi + gh)


def rnn_relu_step(gi: Tensor, gh: Tensor) -> Tensor:
    """Elman step, ReLU: ``h' = relu(gi + gh)``. Shapes (B, H)."""
    return torch.relu(gi + gh)


class _LSTMPointwise(torch.autograd.Function):
    """The LSTM gate arithmetic of one step as one autograd node (exact gradient)."""

    @staticmethod
    def forward(ctx, gi: Tensor, gh: Tensor, c: Tensor):  # type: ignore[override]
        gates = gi + gh
        h4 = gates.shape[-1] // 4
        ifo = torch.cat((gates[..., :2 * h4], gates[..., 3 * h4:]), dim=-1).sigmoid_()
        i, f, o = ifo[..., :h4], ifo[..., h4:2 * h4], ifo[..., 2 * h4:]
        g = gates[..., 2 * h4:3 * h4].tanh()
        c_new = torch.addcmul(f * c, i, g)
        tc = c_new.tanh()
        h_new = o * tc
        ctx.save_for_backward(i, f, g, o, c, tc)
        return h_new, c_new

    @staticmethod
    def backward(ctx, dh: Tensor, dc_next: Tensor):  # type: ignore[override]
        i, f, g, o, c, tc = ctx.saved_tensors
        if dh is None:
            dh = torch.zeros_like(tc)
        dc = dh * o * (1 - tc * tc)
        if dc_next is not None:
            dc = dc + dc_next
        di = dc * g * i * (1 - i)
        df = dc * c * f * (1 - f)
        dg = dc * i * (1 - g * g)
        do = dh * tc * o * (1 - o)
        dgates = torch.cat((di, df, dg, do), dim=-1)
        return dgates, dgates, dc * f


def lstm_step(gi: Tensor, gh: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """LSTM step with torch's gate order i, f, g, o.

    ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (gi + gh)``;
    ``c' = f c + i g``; ``h' = o tanh(c')``. One autograd node with a hand-written
    (exact) backward, to keep per-step overhead low.

    Shape:
        gi, gh: (B, 4H); c: (B, H); returns (h', c'), each (B, H).
    """
    return _LSTMPointwise.apply(gi, gh, c)


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


class _LSTMSequence(torch.autograd.Function):
    """A whole LSTM recurrence on a digital array as one autograd node (see :func:`lstm_sequence`)."""

    @staticmethod
    def forward(ctx, gi: Tensor, w_hh: Tensor, bias: Tensor | None, h0: Tensor, c0: Tensor,  # type: ignore[override]
                w_read: Tensor, z: Tensor | None, var_in: list[float] | None, k: float, a: float, reverse: bool):
        steps, b, h4 = gi.shape
        hs = h4 // 4
        acts = gi.new_empty(steps, b, h4)   # sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        cs = gi.new_empty(steps, b, hs)     # c_t
        tcs = gi.new_empty(steps, b, hs)    # tanh(c_t)
        out = gi.new_empty(steps, b, hs)    # h_t
        wt = w_read.t()
        n = b * h4
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        # per-step views, made once (slicing inside the loop costs more than the math)
        gis, outs, css, tcss = gi.unbind(0), out.unbind(0), cs.unbind(0), tcs.unbind(0)
        act_t = acts.unbind(0)
        a_i, a_f, a_g, a_o = (acts[..., j * hs:(j + 1) * hs].unbind(0) for j in range(4))
        zs = None if z is None else (z.unbind(0) if z.shape[0] > 1 else [z[0]] * steps)
        mm, dot, sigmoid, addcmul, mul, sqrt = torch.mm, torch.dot, torch.sigmoid, torch.addcmul, torch.mul, math.sqrt
        h, c = h0, c0
        for t in order:
            yh = mm(h, wt)
            if zs is not None:
                yf = yh.view(-1)
                var = (k * (float(dot(yf, yf)) / n) if k else a) + var_in[t]
                yh.add_(zs[t], alpha=sqrt(var))
            gates = yh.add_(gis[t])
            if bias is not None:
                gates.add_(bias)
            # tanh(x) = 2 sigmoid(2x) - 1 (torch's CPU tanh is several times slower than its
            # sigmoid): one sigmoid over all four gates, the g block pre-doubled (exact)
            gates[:, 2 * hs:3 * hs].mul_(2.0)
            sigmoid(gates, out=act_t[t])
            g_t = a_g[t].mul_(2.0).sub_(1.0)
            c = addcmul(mul(a_f[t], c), a_i[t], g_t, out=css[t])
            tc = sigmoid(mul(c, 2.0, out=tcss[t]), out=tcss[t]).mul_(2.0).sub_(1.0)
            h = mul(a_o[t], tc, out=outs[t])
        ctx.reverse = reverse
        ctx.save_for_backward(w_hh, h0, c0, acts, cs, tcs, out)
        return out, h.clone(), c.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out: Tensor | None, g_hn: Tensor | None, g_cn: Tensor | None):  # type: ignore[override]
        w_hh, h0, c0, acts, cs, tcs, out = ctx.saved_tensors
        reverse = ctx.reverse
        steps, b, h4 = acts.shape
        hs = h4 // 4
        # everything that does not depend on the recurrence, for all steps at once, in place
        # (no large temporaries: allocating several big ones in a row is slow here)
        i, f, g, o = acts.split(hs, dim=-1)
        p = torch.mul(acts, -1.0, out=_SCRATCH.get("lstm_p", acts.shape, acts.dtype)).add_(1.0).mul_(acts)
        # p: sigmoid' = s (1 - s); g part replaced below
        p[..., :hs].mul_(g)                           # d i-pre / d c
        pf = p[..., hs:2 * hs]                        # d f-pre / d c: times c_{t-1}
        if reverse:
            pf[:-1].mul_(cs[1:])
            pf[-1].mul_(c0)
        else:
            pf[1:].mul_(cs[:-1])
            pf[0].mul_(c0)
        torch.mul(g, g, out=p[..., 2 * hs:3 * hs]).neg_().add_(1).mul_(i)  # d g-pre / d c
        p[..., 3 * hs:].mul_(tcs)                     # d o-pre / d h
        p3 = p[..., :3 * hs].unflatten(-1, (3, hs))
        po = p[..., 3 * hs:]
        dh_dc = torch.mul(tcs, tcs, out=_SCRATCH.get("lstm_a", tcs.shape, tcs.dtype)).neg_().add_(1).mul_(o)
        # dh_dc: d c_t / d h_t
        dg = torch.empty_like(acts)
        dg3 = dg[..., :3 * hs].unflatten(-1, (3, hs))
        dgo = dg[..., 3 * hs:]
        dh = g_hn if g_hn is not None else acts.new_zeros(b, hs)
        dc = g_cn if g_cn is not None else acts.new_zeros(b, hs)
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        prev = None
        for t in order:
            if prev is not None:
                dh = torch.mm(dg[prev], w_hh) if g_out is None else torch.addmm(g_out[t], dg[prev], w_hh)
            elif g_out is not None:
                dh = dh + g_out[t]
            dc = torch.addcmul(dc, dh, dh_dc[t])
            torch.mul(p3[t], dc.unsqueeze(1), out=dg3[t])
            torch.mul(po[t], dh, out=dgo[t])
            dc = dc * f[t]
            prev = t
        grad_w = grad_h0 = None
        if ctx.needs_input_grad[1]:
            # sum_t dg_t^T h_{t-1}: one matmul over the steps that read an output, one for h0
            # built as its transpose (h^T dg), the faster orientation here (see AnalogMVM)
            first = steps - 1 if reverse else 0
            grad_wt = torch.mm(h0.t(), dg[first])
            if steps > 1:
                dgs = dg[:-1] if reverse else dg[1:]
                hs_in = out[1:] if reverse else out[:-1]
                grad_wt.addmm_(hs_in.reshape(-1, hs).t(), dgs.reshape(-1, h4))
            grad_w = grad_wt.t()
        grad_b = dg.sum((0, 1)) if ctx.needs_input_grad[2] else None
        if ctx.needs_input_grad[3]:
            grad_h0 = torch.mm(dg[prev], w_hh)
        return dg, grad_w, grad_b, grad_h0, dc, None, None, None, None, None, None


def lstm_sequence(gi: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, reader: "MatrixReader",
                  reverse: bool = False, bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""The recurrence of one LSTM layer direction on a digital array, as one autograd node.

    Same numbers as the step-by-step path (``analog_mvm`` of ``h`` per step, then
    :func:`lstm_step`) for the same seed, to rounding: each step reads
    ``y = h_{t-1} W^T`` with ``W = reader.digital_weight`` and adds the output noise of
    ``reader`` (merged with its partner's per-step variance, drawn by
    :meth:`MatrixReader.sequence_draws`, so the generator advances as there), then the
    gate arithmetic of :func:`lstm_step`. Backward is the exact gradient of that
    computation with the noise held fixed and the read straight-through with the
    parameter ``w_hh`` (as :class:`AnalogMVM`): the gate gradients of all steps are
    kept, so :math:`\partial L/\partial W_{hh} = \sum_t \delta_t^T h_{t-1}` is one
    matmul over all steps instead of one per step. Not twice differentiable.

    Args:
        gi: (T, B, 4H) input projections (reads of W_ih).
        w_hh: (4H, H) the recurrent weight parameter (for the straight-through gradient).
        h0, c0: (B, H) initial state.
        reader: the recurrent :class:`MatrixReader` (``reader.digital_weight`` not None).
        reverse: run the steps from T-1 down to 0.
        bias: (4H,) added to every step's gates (``b_ih + b_hh``), or None.

    Returns:
        (out (T, B, H), h_n, c_n).
    """
    w_read = reader.digital_weight(gi.dtype)
    if w_read is None:
        raise ValueError("lstm_sequence needs a digital reader (ideal or paper config)")
    reader.count(gi.shape[0] * gi.shape[1])  # one read of h per step and sequence
    coef = reader.noise_coefficients()
    z = var_in = None
    k = a = 0.0
    if coef is not None:
        k, a = coef
        steps = gi.shape[0]
        partner = reader.partner
        var_in = list(partner.deferred_var) if partner is not None else [0.0] * steps
        buf = _SCRATCH.get("lstm_z", (steps, gi.shape[1], reader.out_features), gi.dtype) \
            if reader.noise_draw == "mvm" else None
        z = reader.sequence_draws(gi.shape[1], gi.dtype, out=buf)
    return _LSTMSequence.apply(gi, w_hh, bias, h0, c0, w_read, z, var_in, k, a, reverse)


def gru_step(gi: Tensor, gh: Tensor, h: Tensor) -> Tensor:
    """GRU step with torch's gate order r, z, n.

    ``r = sigmoid(gi_r + gh_r)``, ``z = sigmoid(gi_z + gh_z)``,
    ``n = tanh(gi_n + r * gh_n)``, ``h' = (1 - z) n + z h`` (``gh_n`` includes b_hn).

    Shape:
        gi, gh: (B, 3H); h: (B, H); returns h' (B, H).
    """
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)

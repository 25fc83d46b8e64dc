r"""Fused recurrences: a whole RNN layer direction as one autograd node on a digital array.

On a digital config (``config.is_digital``: ideal, paper) a read is exactly ``x @ W.T``
plus the output noise models adds, so the recurrence of one layer direction can run as
one autograd node (:func:`lstm_sequence`): per step one matmul, one dot for the relative
noise scale and fused gate arithmetic; the backward keeps the gate gradients of all steps,
so :math:`\partial L/\partial W_{hh} = \sum_t \delta_t^T h_{t-1}` is one matmul over all
steps. Same draws and numbers as the step-by-step path (``analog_mvm`` of ``h`` per
step, then :func:`models.cells.lstm_step`) for the same seed, to rounding (``tanh(x)``
is computed as ``2 sigmoid(2x) - 1``); ``models.rnn.FAST_RECURRENCE = False`` forces the
step path.
"""
from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .reader import MatrixReader, SummedNoise

__all__ = ["RecurrentNoise", "lstm_sequence"]


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


class RecurrentNoise(NamedTuple):
    """The output noise of the recurrent reads of a fused recurrence.

    Step ``t`` adds ``sqrt(var_t) z[t]`` (``z[0]`` when ``z`` holds one step) to its read
    ``y_t = h_{t-1} W^T``, with
    ``var_t = per_mean_square * mean(y_t**2) + constant + input_var[t]``
    (``input_var``: the input projection's variance of that step when the two noises are
    drawn as one, :class:`models.reader.SummedNoise`; zeros otherwise).
    """

    z: Tensor
    """standard normals, (T, B', 4H) or (1, B', 4H) with B' in (B, 1)."""
    input_var: list[float]
    """per-step variance added from the input projection's noise (T floats)."""
    per_mean_square: float
    """factor of mean(y_t**2) in the variance (relative, snr_db; 0 for absolute)."""
    constant: float
    """constant variance (absolute convention; 0 otherwise), output units squared."""


class _LSTMSequence(torch.autograd.Function):
    """A whole LSTM recurrence on a digital array as one autograd node (see :func:`lstm_sequence`).

    Inputs ``(gi, w_hh, bias, h0, c0, w_read, noise, reverse)``; outputs
    ``(out, h_n, c_n, acts, cs, tcs)``, the last three the per-step activations the
    backward needs (not differentiable).
    """

    @staticmethod
    def forward(gi: Tensor, w_hh: Tensor, bias: Tensor | None, h0: Tensor, c0: Tensor,  # type: ignore[override]
                w_read: Tensor, noise: RecurrentNoise | None, reverse: bool):
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
        if noise is not None:
            z = noise.z
            zs = z.unbind(0) if z.shape[0] > 1 else [z[0]] * steps
            k, a, var_in = noise.per_mean_square, noise.constant, noise.input_var
        mm, dot, sigmoid, addcmul, mul, sqrt = torch.mm, torch.dot, torch.sigmoid, torch.addcmul, torch.mul, math.sqrt
        h, c = h0, c0
        for t in order:
            yh = mm(h, wt)
            if noise is not None:
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
        return out, h.clone(), c.clone(), acts, cs, tcs

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, w_hh, _, h0, c0, _, _, reverse = inputs
        out, _, _, acts, cs, tcs = output
        ctx.mark_non_differentiable(acts, cs, tcs)
        ctx.reverse = reverse
        ctx.save_for_backward(w_hh, h0, c0, acts, cs, tcs, out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_out: Tensor | None, g_hn: Tensor | None, g_cn: Tensor | None,  # type: ignore[override]
                 *_unused: Tensor):
        w_hh, h0, c0, acts, cs, tcs, out = ctx.saved_tensors
        reverse = ctx.reverse
        steps, b, h4 = acts.shape
        hs = h4 // 4
        # everything that does not depend on the recurrence, for all steps at once, in place
        # (no large temporaries: allocating several big ones in a row is slow here).
        # p holds, per gate, the derivative of the cell state (i, f, g) or of h (o) with
        # respect to that gate's pre-activation:
        i, f, g, o = acts.split(hs, dim=-1)
        p = torch.mul(acts, -1.0, out=_SCRATCH.get("lstm_p", acts.shape, acts.dtype)).add_(1.0).mul_(acts)
        # p = s (1 - s), the sigmoid derivative; the g block is replaced below
        p[..., :hs].mul_(g)                           # d c_t / d i_pre = g i (1 - i)
        pf = p[..., hs:2 * hs]                        # d c_t / d f_pre = c_{t-1} f (1 - f):
        if reverse:
            pf[:-1].mul_(cs[1:])
            pf[-1].mul_(c0)
        else:
            pf[1:].mul_(cs[:-1])
            pf[0].mul_(c0)
        torch.mul(g, g, out=p[..., 2 * hs:3 * hs]).neg_().add_(1).mul_(i)  # d c_t / d g_pre = i (1 - g^2)
        p[..., 3 * hs:].mul_(tcs)                     # d h_t / d o_pre = tanh(c_t) o (1 - o)
        p3 = p[..., :3 * hs].unflatten(-1, (3, hs))
        po = p[..., 3 * hs:]
        dh_dc = torch.mul(tcs, tcs, out=_SCRATCH.get("lstm_a", tcs.shape, tcs.dtype)).neg_().add_(1).mul_(o)
        # dh_dc = d h_t / d c_t = o (1 - tanh(c_t)^2)
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
        return dg, grad_w, grad_b, grad_h0, dc, None, None, None


def lstm_sequence(gi: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, reader: MatrixReader,
                  reverse: bool = False, bias: Tensor | None = None,
                  summed: SummedNoise | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""The recurrence of one LSTM layer direction on a digital array, as one autograd node.

    Same numbers as the step-by-step path (``analog_mvm`` of ``h`` per step, then
    :func:`models.cells.lstm_step`) for the same seed, to rounding: each step reads
    ``y = h_{t-1} W^T`` with ``W = reader.digital_weight`` and adds the output noise of
    ``reader`` (with the input projection's per-step variance when ``summed`` merges the
    two, drawn by :meth:`MatrixReader.sequence_draws`, so the generator advances as
    there), then the gate arithmetic of :func:`models.cells.lstm_step`. Backward is the
    exact gradient of that computation with the noise held fixed and the read
    straight-through with the parameter ``w_hh`` (as :class:`models.autograd.AnalogMVM`).
    Not twice differentiable.

    Args:
        gi: (T, B, 4H) input projections (reads of W_ih).
        w_hh: (4H, H) the recurrent weight parameter (for the straight-through gradient).
        h0, c0: (B, H) initial state.
        reader: the recurrent :class:`MatrixReader` (``reader.digital_weight`` not None).
        reverse: run the steps from T-1 down to 0.
        bias: (4H,) added to every step's gates (``b_ih + b_hh``), or None.
        summed: the :class:`SummedNoise` of the input projection and ``reader`` (its
            ``second``), or None when they draw separately.

    Returns:
        (out (T, B, H), h_n, c_n).
    """
    w_read = reader.digital_weight(gi.dtype)
    if w_read is None:
        raise ValueError("lstm_sequence needs a digital reader (ideal or paper config)")
    if summed is not None and summed.second is not reader:
        raise ValueError("lstm_sequence: summed.second must be the recurrent reader")
    coef = reader.noise_coefficients()
    noise = None
    if coef is not None:
        steps = gi.shape[0]
        input_var = summed.first_variances(steps) if summed is not None else [0.0] * steps
        buf = _SCRATCH.get("lstm_z", (steps, gi.shape[1], reader.out_features), gi.dtype) \
            if reader.noise_draw == "mvm" else None
        z = reader.sequence_draws(gi.shape[1], gi.dtype, out=buf)
        noise = RecurrentNoise(z=z, input_var=input_var, per_mean_square=coef.per_mean_square,
                               constant=coef.constant)
    out, h_n, c_n, _, _, _ = _LSTMSequence.apply(gi, w_hh, bias, h0, c0, w_read, noise, reverse)
    return out, h_n, c_n

r"""Fused recurrences: a whole RNN layer direction as one autograd node.

The recurrence of one layer direction (LSTM: :func:`lstm_sequence`, GRU:
:func:`gru_sequence`, Elman RNN: :func:`rnn_sequence`) runs as one autograd node for
every config: per step one recurrent read (a :class:`models.reader.MatrixReader` call,
the same crossbar read and noise draws as the step-by-step path; on a digital config
(ideal, paper) the LSTM inlines that read as one matmul and one dot for the relative
noise scale) and the gate arithmetic; the backward is hand-written, straight-through
with the float weight parameter (as :class:`models.autograd.AnalogMVM`), and keeps the
gate gradients of all steps, so :math:`\partial L/\partial W_{hh} = \sum_t \delta_t^T
h_{t-1}` is one matmul over all steps (LSTM, GRU). Same draws as the step path
(``analog_mvm`` of ``h`` per step, then the cell step of :mod:`models.cells`) for the
same seed; the Elman RNN gives its numbers bit for bit, the LSTM and GRU to rounding
(the LSTM computes ``tanh(x)`` as ``2 sigmoid(2x) - 1``; both sum the weight gradient in
one product). ``models.rnn.FAST_RECURRENCE = False`` forces the step path.

With ``normal_generator="boxmuller"`` and ``noise_draw="mvm"`` on a digital config, each
step's read is one matmul into the step's slice followed by one :class:`crossbar.StepNoise`
pass (normals made in a small scratch, the relative scale's mean square, ``+ gi``,
``+ bias``, the LSTM's g-block doubling); the step path's reads call the same kernel, so the
draws and the read's bits are the same. The LSTM's cell update and output between its two
sigmoids are :func:`crossbar.lstm_cell_update` and :func:`crossbar.lstm_hidden` there
(torch's sigmoid kept). With ``"legacy"`` every number is that of before.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

import crossbar

from .reader import _SCRATCH, MatrixReader, SummedNoise

__all__ = ["RecurrentNoise", "lstm_sequence", "gru_sequence", "rnn_sequence"]




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


class _DigitalRead:
    """The recurrent read of a digital config, inlined: ``y_t = h W^T`` plus the output noise
    of :class:`RecurrentNoise` (the numbers of :class:`MatrixReader` for the same draws)."""

    __slots__ = ("wt", "noise", "zs", "n")

    def __init__(self, w_read: Tensor, noise: RecurrentNoise | None, steps: int):
        self.wt = w_read.t()
        self.noise = noise
        self.n = w_read.shape[0]
        self.zs = None
        if noise is not None:
            z = noise.z
            self.zs = z.unbind(0) if z.shape[0] > 1 else [z[0]] * steps

    def plus(self, h: Tensor, t: int, gi: Tensor, out: Tensor) -> Tensor:
        """``out = read(h, t) + gi`` (the same numbers as ``read(h, t).add_(gi)``)."""
        return self(h, t, out).add_(gi)

    def __call__(self, h: Tensor, t: int, out: Tensor | None = None) -> Tensor:
        """The read of ``h`` at step ``t``, into ``out`` when given (else a fresh tensor)."""
        yh = torch.mm(h, self.wt) if out is None else torch.mm(h, self.wt, out=out)
        noise = self.noise
        if noise is not None:
            yf = yh.view(-1)
            k = noise.per_mean_square
            var = (k * (float(torch.dot(yf, yf)) / (h.shape[0] * self.n)) if k else noise.constant) \
                + noise.input_var[t]
            yh.add_(self.zs[t], alpha=math.sqrt(var))
        return yh


class _StepNoiseRead:
    """The recurrent read of a digital config with ``"boxmuller"`` ``"mvm"`` output noise:
    ``y_t = h W^T`` into a slice of a buffer, then :class:`crossbar.StepNoise` adds in one pass
    the noise of step ``t`` (variance from ``y_t`` itself plus ``input_var[t]``), the step's
    input projection and bias, and doubles the LSTM's g block (the numbers of the step path's
    :class:`MatrixReader` reads, which use the same kernel)."""

    __slots__ = ("wt", "reader", "key", "input_var", "noise", "ys")

    def __init__(self, w_read: Tensor, reader: MatrixReader, input_var: list[float], key: int):
        self.wt = w_read.t()
        self.reader = reader
        self.key = key
        self.input_var = input_var
        self.noise = None
        self.ys: tuple[Tensor, ...] = ()

    def bind(self, ys: Tensor, add: Tensor | None = None, bias: Tensor | None = None,
             double_cols: tuple[int, int] | None = None) -> None:
        """Reads land in ``ys[i]`` (ys: (S, B, out), C-contiguous); after the noise, ``add[i]``
        (same shape) and ``bias`` (out,) are added and the columns ``double_cols`` doubled."""
        if add is not None and not add.is_contiguous():
            add = add.contiguous()
        self.noise = self.reader.step_noise(ys, self.key, add, bias, double_cols)
        self.ys = ys.unbind(0)

    def step(self, h: Tensor, t: int, i: int) -> Tensor:
        """Read ``h`` at time step ``t`` into ``ys[i]`` and finish it (see :meth:`bind`)."""
        y = torch.mm(h, self.wt, out=self.ys[i])
        self.noise(i, t, self.input_var[t])
        return y


class _ReaderRead:
    """The recurrent read through a :class:`MatrixReader` (any config): one one-step read of
    ``h`` at step ``t``, exactly as the step path's ``analog_mvm(h, w_hh, reader, t)``."""

    __slots__ = ("reader", "one")

    def __init__(self, reader: MatrixReader):
        self.reader = reader
        # a plain reader whose read is the crossbar's alone: its direct one-step read (same numbers)
        self.one = reader.read_one if type(reader) is MatrixReader and reader.crossbar_only else None

    def plus(self, h: Tensor, t: int, gi: Tensor, out: Tensor) -> Tensor:
        """``out = read(h, t) + gi`` (the same numbers as ``read(h, t).add_(gi)``)."""
        return torch.add(self(h, t), gi, out=out)

    def __call__(self, h: Tensor, t: int, out: Tensor | None = None) -> Tensor:
        """The read of ``h`` at step ``t``: the reader's fresh tensor (``out`` is not needed)."""
        one = self.one
        return one(h) if one is not None else self.reader(h.unsqueeze(0), t)[0]


class _LSTMSequence(torch.autograd.Function):
    """A whole LSTM recurrence on a digital array as one autograd node (see :func:`lstm_sequence`).

    Inputs ``(gi, w_hh, bias, h0, c0, read, reverse)`` (``read``: a :class:`_DigitalRead` or
    :class:`_ReaderRead`, the recurrent read of each step); outputs ``(out, h_n, c_n, acts, cs, tcs)``, the
    last three the per-step activations the backward needs (not differentiable).
    """

    @staticmethod
    def forward(gi: Tensor, w_hh: Tensor, bias: Tensor | None, h0: Tensor, c0: Tensor,  # type: ignore[override]
                read: Callable[[Tensor, int], Tensor], reverse: bool):
        steps, b, h4 = gi.shape
        hs = h4 // 4
        acts = gi.new_empty(steps, b, h4)   # sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        cs = gi.new_empty(steps, b, hs)     # c_t
        tcs = gi.new_empty(steps, b, hs)    # tanh(c_t)
        out = gi.new_empty(steps, b, hs)    # h_t
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        # per-step views, made once (slicing inside the loop costs more than the math)
        gis, outs, css, tcss = gi.unbind(0), out.unbind(0), cs.unbind(0), tcs.unbind(0)
        act_t = acts.unbind(0)
        a_i, a_f, a_g, a_o = (acts[..., j * hs:(j + 1) * hs].unbind(0) for j in range(4))
        add, mul, addcmul = torch.add, torch.mul, torch.addcmul
        # 2 s - 1 in one op: addcmul(-1, s, 2) = -1 + s * 2 (the product exact, one rounding: the
        # same bits as (s + s) - 1)
        neg_one, two = gi.new_full((), -1.0), gi.new_full((), 2.0)
        h, c = h0, c0
        if isinstance(read, _StepNoiseRead):
            # boxmuller "mvm" noise: per step the read, noise, + gi, + bias and the g block's
            # doubling in one pass (crossbar.StepNoise), torch's sigmoid, the cell update
            # (crossbar.lstm_cell_update), torch's sigmoid of 2 c, the output (crossbar.lstm_hidden)
            read.bind(acts, gi, bias, (2 * hs, 3 * hs))
            acts_n, cs_n, tcs_n, out_n = acts.numpy(), cs.numpy(), tcs.numpy(), out.numpy()
            c_prev = c0.detach().contiguous().numpy()
            cell, hidden = crossbar.lstm_cell_update, crossbar.lstm_hidden
            for t in order:
                read.step(h, t, t).sigmoid_()
                cell(acts_n, cs_n, tcs_n, c_prev, t)
                tcss[t].sigmoid_()
                hidden(acts_n, tcs_n, out_n, t)
                c_prev = cs_n[t]
                h = outs[t]
            return out, h.clone(), css[order[-1]].clone(), acts, cs, tcs
        # every step works in place in its slices of acts, cs, tcs and out (no temporaries);
        # 2 x is computed as x + x (exact, the same bits as 2.0 * x, one cheaper op)
        for t in order:
            gates = read.plus(h, t, gis[t], act_t[t])   # read + gi, in acts[t]
            if bias is not None:
                gates.add_(bias)
            # tanh(x) = 2 sigmoid(2x) - 1 (torch's CPU tanh is several times slower than its
            # sigmoid): one sigmoid over all four gates, the g block pre-doubled (exact)
            g_t = a_g[t]
            add(g_t, g_t, out=g_t)
            gates.sigmoid_()
            addcmul(neg_one, g_t, two, out=g_t)
            c_t = mul(a_f[t], c, out=css[t]).addcmul_(a_i[t], g_t)
            tc = tcss[t]
            add(c_t, c_t, out=tc).sigmoid_()
            addcmul(neg_one, tc, two, out=tc)
            c = c_t
            h = mul(a_o[t], tc, out=outs[t])
        return out, h.clone(), c.clone(), acts, cs, tcs

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, w_hh, _, h0, c0, _, reverse = inputs
        out, _, _, acts, cs, tcs = output
        ctx.mark_non_differentiable(acts, cs, tcs)
        ctx.set_materialize_grads(False)  # unused outputs get None, not zero tensors to fill
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
        # respect to that gate's pre-activation; the loop multiplies it in place by dc (dh)
        # into the gate gradients dg (one fresh buffer, the gradient returned for gi):
        i, f, g, o = acts.split(hs, dim=-1)
        p = torch.sub(acts.new_ones(()), acts).mul_(acts)   # (1 - s) s, one pass less than -s + 1
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
        dg = p
        dh = g_hn if g_hn is not None else acts.new_zeros(b, hs)
        dc = g_cn if g_cn is not None else acts.new_zeros(b, hs)
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        # per-step views, made once
        dgs, p3s, pos = dg.unbind(0), p3.unbind(0), po.unbind(0)
        fs, dh_dcs = f.unbind(0), dh_dc.unbind(0)
        g_outs = None if g_out is None else g_out.unbind(0)
        mm, addmm, addcmul, mul = torch.mm, torch.addmm, torch.addcmul, torch.mul
        prev = None
        for t in order:
            if prev is not None:
                dh = mm(dgs[prev], w_hh) if g_outs is None else addmm(g_outs[t], dgs[prev], w_hh)
            elif g_outs is not None:
                dh = dh + g_outs[t]
            dc = addcmul(dc, dh, dh_dcs[t])
            p3s[t].mul_(dc.unsqueeze(1))   # dg of i, f, g at step t
            pos[t].mul_(dh)                # dg of o
            dc = mul(dc, fs[t])
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
        return dg, grad_w, grad_b, grad_h0, dc, None, None


def _recurrent_read(reader: MatrixReader, gi: Tensor, summed: SummedNoise | None,
                    bit_exact: bool = False) -> Callable[[Tensor, int], Tensor]:
    """The per-step recurrent read of a fused recurrence: inlined on a digital config (one
    matmul, the noise of ``reader``), else through ``reader``. ``bit_exact``: inline only
    where the inlined read equals ``reader``'s bit for bit (no noise, or ``noise_draw="mvm"``;
    shared draws broadcast a scale differently, equal to rounding)."""
    if summed is not None and summed.second is not reader:
        raise ValueError("summed.second must be the recurrent reader")
    w_read = reader.digital_weight(gi.dtype)
    coef = reader.noise_coefficients()
    if (w_read is None or (coef is not None and summed is None and reader.summed is not None)
            or (bit_exact and coef is not None and reader.noise_draw != "mvm")):
        return _ReaderRead(reader)
    if coef is not None and reader.boxmuller and reader.noise_draw == "mvm":
        steps = gi.shape[0]
        input_var = summed.first_variances(steps) if summed is not None else [0.0] * steps
        reader.count(steps * gi.shape[1])
        return _StepNoiseRead(w_read, reader, input_var, reader.sequence_key())
    noise = None
    if coef is not None:
        steps = gi.shape[0]
        input_var = summed.first_variances(steps) if summed is not None else [0.0] * steps
        buf = _SCRATCH.get("lstm_z", (steps, gi.shape[1], reader.out_features), gi.dtype) \
            if reader.noise_draw == "mvm" else None
        z = reader.sequence_draws(gi.shape[1], gi.dtype, out=buf)
        noise = RecurrentNoise(z=z, input_var=input_var, per_mean_square=coef.per_mean_square,
                               constant=coef.constant)
    reader.count(gi.shape[0] * gi.shape[1])  # inlined: one read of h per step and sequence
    return _DigitalRead(w_read, noise, gi.shape[0])


def lstm_sequence(gi: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, reader: MatrixReader,
                  reverse: bool = False, bias: Tensor | None = None,
                  summed: SummedNoise | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""The recurrence of one LSTM layer direction as one autograd node (any config).

    Same draws as the step-by-step path (``analog_mvm`` of ``h`` per step, then
    :func:`models.cells.lstm_step`) for the same seed, same numbers to rounding: each step
    reads ``h_{t-1}`` with ``reader`` (on a digital config inlined as ``h_{t-1} W^T`` plus
    the output noise of ``reader``, with the input projection's per-step variance when
    ``summed`` merges the two, drawn by :meth:`MatrixReader.sequence_draws` so the
    generator advances as there), then the gate arithmetic of
    :func:`models.cells.lstm_step`. Backward is the exact gradient of that computation
    with the noise held fixed and the read straight-through with the parameter ``w_hh``
    (as :class:`models.autograd.AnalogMVM`). Not twice differentiable.

    Args:
        gi: (T, B, 4H) input projections (reads of W_ih).
        w_hh: (4H, H) the recurrent weight parameter (for the straight-through gradient).
        h0, c0: (B, H) initial state.
        reader: the recurrent :class:`MatrixReader`.
        reverse: run the steps from T-1 down to 0.
        bias: (4H,) added to every step's gates (``b_ih + b_hh``), or None.
        summed: the :class:`SummedNoise` of the input projection and ``reader`` (its
            ``second``), or None when they draw separately.

    Returns:
        (out (T, B, H), h_n, c_n).
    """
    read = _recurrent_read(reader, gi, summed)
    out, h_n, c_n, _, _, _ = _LSTMSequence.apply(gi, w_hh, bias, h0, c0, read, reverse)
    return out, h_n, c_n


class _GRUSequence(torch.autograd.Function):
    """A whole GRU recurrence as one autograd node (see :func:`gru_sequence`).

    Inputs ``(gi, w_hh, b_hh, h0, read, reverse)``; outputs ``(out, h_n, rz, ns, ghn)``,
    the last three the per-step activations the backward needs (not differentiable).
    """

    @staticmethod
    def forward(gi: Tensor, w_hh: Tensor, b_hh: Tensor | None, h0: Tensor,  # type: ignore[override]
                read: Callable[[Tensor, int], Tensor], reverse: bool):
        steps, b, h3 = gi.shape
        hs = h3 // 3
        rz = gi.new_empty(steps, b, 2 * hs)   # sigmoid(r), sigmoid(z)
        ns = gi.new_empty(steps, b, hs)       # n_t
        ghn = gi.new_empty(steps, b, hs)      # gh_n (recurrent read of the n block, b_hn included)
        out = gi.new_empty(steps, b, hs)      # h_t
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        gis, outs, rzs, nss, ghns = gi.unbind(0), out.unbind(0), rz.unbind(0), ns.unbind(0), ghn.unbind(0)
        gh_buf = gi.new_empty(b, h3)          # the digital read of each step lands here
        h = h0
        kernel = isinstance(read, _StepNoiseRead)
        if kernel:
            read.bind(gh_buf.unsqueeze(0), None, b_hh)   # read, noise and + b_hh in one pass
        for t in order:
            if kernel:
                gh = read.step(h, t, 0)
            else:
                gh = read(h, t, gh_buf)
                if b_hh is not None:
                    gh.add_(b_hh)
            g_t = gis[t]
            rz_t = torch.add(g_t[:, :2 * hs], gh[:, :2 * hs], out=rzs[t]).sigmoid_()
            ghn_t = ghns[t].copy_(gh[:, 2 * hs:])
            n = torch.addcmul(g_t[:, 2 * hs:], rz_t[:, :hs], ghn_t, out=nss[t]).tanh_()
            h = torch.addcmul(n, rz_t[:, hs:], h - n, out=outs[t])       # (1 - z) n + z h
        return out, h.clone(), rz, ns, ghn

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, w_hh, _, h0, _, reverse = inputs
        out, _, rz, ns, ghn = output
        ctx.mark_non_differentiable(rz, ns, ghn)
        ctx.set_materialize_grads(False)  # unused outputs get None, not zero tensors to fill
        ctx.reverse = reverse
        ctx.save_for_backward(w_hh, h0, rz, ns, ghn, out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_out: Tensor | None, g_hn: Tensor | None, *_unused: Tensor):  # type: ignore[override]
        w_hh, h0, rz, ns, ghn, out = ctx.saved_tensors
        reverse = ctx.reverse
        steps, b, hs = ns.shape
        r, z = rz[..., :hs], rz[..., hs:]
        dt = ns.dtype
        scratch = _SCRATCH.get
        h_prev = scratch("gru_hprev", tuple(out.shape), dt)   # h_{t-1} of each step
        if reverse:
            h_prev[:-1] = out[1:]
            h_prev[-1] = h0
        else:
            h_prev[1:] = out[:-1]
            h_prev[0] = h0
        # per step, with dh the gradient reaching h_t (h_t = n + z (h_{t-1} - n)):
        #   d n_pre = dh (1 - z) (1 - n^2)                     = dh * a
        #   d z_pre = dh (h_{t-1} - n) z (1 - z)               = dh * pz
        #   d r_pre = d n_pre gh_n r (1 - r)                   = dh * a * pr
        #   d gh_n  = d n_pre r;  d h_{t-1} = dh z + d gh W_hh
        # temporaries in reused buffers (only dgi leaves this function)
        shape = tuple(ns.shape)
        one = ns.new_ones(())
        omz = torch.sub(one, z, out=scratch("gru_omz", shape, dt))
        a = torch.mul(ns, ns, out=scratch("gru_a", shape, dt)).neg_().add_(1.0).mul_(omz)
        pz = torch.sub(h_prev, ns, out=scratch("gru_pz", shape, dt)).mul_(z).mul_(omz)
        pr = torch.sub(one, r, out=scratch("gru_pr", shape, dt)).mul_(r).mul_(ghn).mul_(a)
        an = torch.mul(a, r, out=scratch("gru_an", shape, dt))
        dgi = torch.empty(steps, b, 3 * hs, dtype=dt)
        dgh = scratch("gru_dgh", (steps, b, 3 * hs), dt)
        dh = g_hn if g_hn is not None else ns.new_zeros(b, hs)
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        # per-step views, made once
        dgi_r, dgi_z, dgi_n = (dgi[..., j * hs:(j + 1) * hs].unbind(0) for j in range(3))
        dgi_rz, dgh_rz, dgh_n = dgi[..., :2 * hs].unbind(0), dgh[..., :2 * hs].unbind(0), dgh[..., 2 * hs:].unbind(0)
        dghs, zs, prs, pzs, as_, ans = dgh.unbind(0), z.unbind(0), pr.unbind(0), pz.unbind(0), a.unbind(0), an.unbind(0)
        g_outs = None if g_out is None else g_out.unbind(0)
        addmm, mul = torch.addmm, torch.mul
        prev = None
        for t in order:
            if prev is not None:
                dh = addmm(mul(dh, zs[prev]), dghs[prev], w_hh)
            if g_outs is not None:
                dh = dh + g_outs[t]
            mul(dh, prs[t], out=dgi_r[t])
            mul(dh, pzs[t], out=dgi_z[t])
            mul(dh, as_[t], out=dgi_n[t])
            dgh_rz[t].copy_(dgi_rz[t])
            mul(dh, ans[t], out=dgh_n[t])
            prev = t
        grad_w = grad_b = grad_h0 = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.mm(h_prev.reshape(-1, hs).t(), dgh.reshape(-1, 3 * hs)).t()
        if ctx.needs_input_grad[2]:
            grad_b = dgh.sum((0, 1))
        if ctx.needs_input_grad[3]:
            grad_h0 = torch.addmm(torch.mul(dh, z[prev]), dgh[prev], w_hh)
        return dgi, grad_w, grad_b, grad_h0, None, None


def gru_sequence(gi: Tensor, w_hh: Tensor, h0: Tensor, reader: MatrixReader, reverse: bool = False,
                 b_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""The recurrence of one GRU layer direction as one autograd node (any config).

    Each step reads ``gh = read(h_{t-1}) + b_hh`` with ``reader`` (the step path's
    draws), then ``r, z = sigmoid(gi_{r,z} + gh_{r,z})``, ``n = tanh(gi_n + r gh_n)``,
    ``h_t = (1 - z) n + z h_{t-1}`` (:func:`models.cells.gru_step`; same numbers to
    rounding). Backward: exact for the noise held fixed, straight-through with ``w_hh``.

    Args:
        gi: (T, B, 3H) input projections with ``b_ih`` added.
        w_hh: (3H, H) recurrent weight parameter. h0: (B, H).
        reader: the recurrent :class:`MatrixReader`. reverse: steps from T-1 down to 0.
        b_hh: (3H,) recurrent bias (inside ``r * gh_n``), or None.

    Returns:
        (out (T, B, H), h_n).
    """
    out, h_n, _, _, _ = _GRUSequence.apply(gi, w_hh, b_hh, h0, _recurrent_read(reader, gi, None), reverse)
    return out, h_n


class _RNNSequence(torch.autograd.Function):
    """A whole Elman recurrence as one autograd node (see :func:`rnn_sequence`).

    Inputs ``(gi, w_hh, h0, read, reverse, relu)``; outputs ``(out, h_n)``.
    """

    @staticmethod
    def forward(gi: Tensor, w_hh: Tensor, h0: Tensor, read: Callable[[Tensor, int], Tensor],  # type: ignore[override]
                reverse: bool, relu: bool):
        steps, b, hs = gi.shape
        out = gi.new_empty(steps, b, hs)
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        gis, outs = gi.unbind(0), out.unbind(0)
        h = h0
        kernel = isinstance(read, _StepNoiseRead)
        if kernel:
            read.bind(out, gi)   # read, noise and + gi in one pass, in out[t]
        for t in order:
            # act(gi + gh) as rnn_tanh_step / rnn_relu_step (the read is a fresh tensor: add in place)
            pre = read.step(h, t, t) if kernel else read.plus(h, t, gis[t], outs[t])
            h = pre.clamp_(min=0) if relu else pre.tanh_()
        return out, h.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _, w_hh, h0, _, reverse, relu = inputs
        ctx.set_materialize_grads(False)  # an unused output gets None, not a zero tensor to fill
        ctx.reverse, ctx.relu = reverse, relu
        ctx.save_for_backward(w_hh, h0, output[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_out: Tensor | None, g_hn: Tensor | None):  # type: ignore[override]
        # the step path's arithmetic, op for op, so the gradients equal it bit for bit:
        # torch's own tanh_backward (dh (1 - y^2)) and threshold_backward; the weight gradient as
        # (h^T d)^T per step, summed from the last step to the first (autograd's order)
        w_hh, h0, out = ctx.saved_tensors
        steps, b, hs = out.shape
        order = range(steps) if ctx.reverse else range(steps - 1, -1, -1)
        dpre = torch.empty_like(out)
        need_w = ctx.needs_input_grad[1]
        grad_w = None
        carry = g_hn
        for t in order:
            if g_out is None:
                dh = carry if carry is not None else out.new_zeros(b, hs)
            else:
                dh = g_out[t] if carry is None else g_out[t] + carry
            y = out[t]
            d = dpre[t]
            if ctx.relu:
                torch.ops.aten.threshold_backward.grad_input(dh, y, 0, grad_input=d)
            else:
                torch.ops.aten.tanh_backward.grad_input(dh, y, grad_input=d)
            prev = t + 1 if ctx.reverse else t - 1
            h_in = h0 if prev < 0 or prev >= steps else out[prev]
            if need_w:
                gw = h_in.t().mm(d).t()
                grad_w = gw if grad_w is None else grad_w.add_(gw)
            carry = torch.mm(d, w_hh)
        grad_h0 = carry if ctx.needs_input_grad[2] else None
        return dpre, grad_w, grad_h0, None, None, None


def rnn_sequence(gi: Tensor, w_hh: Tensor, h0: Tensor, reader: MatrixReader, reverse: bool = False,
                 relu: bool = False, summed: SummedNoise | None = None) -> tuple[Tensor, Tensor]:
    r"""The recurrence of one Elman RNN layer direction as one autograd node (any config).

    ``h_t = act(gi_t + read(h_{t-1}))`` with ``act`` tanh or ReLU and ``read`` the
    recurrent reads of ``reader`` (the step path's draws and numbers: forward and
    gradients equal the step path bit for bit). Backward straight-through with ``w_hh``.

    Args:
        gi: (T, B, H) input projections with both biases added.
        w_hh: (H, H) recurrent weight parameter. h0: (B, H).
        reader: the recurrent :class:`MatrixReader`. reverse: steps from T-1 down to 0.
        relu: ReLU instead of tanh.
        summed: the :class:`SummedNoise` of the input projection and ``reader``, or None.

    Returns:
        (out (T, B, H), h_n).
    """
    read = _recurrent_read(reader, gi, summed, bit_exact=True)
    return _RNNSequence.apply(gi, w_hh, h0, read, reverse, relu)

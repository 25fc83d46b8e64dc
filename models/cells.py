"""The RNN cell steps (torch ops): one time step from the two MVM outputs of that step.

Each takes the input part ``gi`` and the recurrent part ``gh`` of one time step (biases
included) and returns the new state, with torch's gate orders (LSTM: i, f, g, o; GRU:
r, z, n).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["rnn_tanh_step", "rnn_relu_step", "lstm_step", "gru_step"]


def rnn_tanh_step(gi: Tensor, gh: Tensor) -> Tensor:
    """Elman step, tanh: ``h' = tanh(gi + gh)``. Shapes (B, H)."""
    return torch.tanh(gi + gh)


def rnn_relu_step(gi: Tensor, gh: Tensor) -> Tensor:
    """Elman step, ReLU: ``h' = relu(gi + gh)``. Shapes (B, H)."""
    return torch.relu(gi + gh)


class _LSTMPointwise(torch.autograd.Function):
    """The LSTM gate arithmetic of one step as one autograd node (exact gradient).

    Outputs ``(h', c', i, f, g, o, tanh(c'))``; the last five are the activations the
    backward needs (not differentiable; :func:`lstm_step` returns only ``(h', c')``).
    """

    @staticmethod
    def forward(gi: Tensor, gh: Tensor, c: Tensor):  # type: ignore[override]
        gates = gi + gh
        h4 = gates.shape[-1] // 4
        ifo = torch.cat((gates[..., :2 * h4], gates[..., 3 * h4:]), dim=-1).sigmoid_()
        i, f, o = ifo[..., :h4], ifo[..., h4:2 * h4], ifo[..., 2 * h4:]
        g = gates[..., 2 * h4:3 * h4].tanh()
        c_new = torch.addcmul(f * c, i, g)
        tc = c_new.tanh()
        h_new = o * tc
        return h_new, c_new, i, f, g, o, tc

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        c = inputs[2]
        _, _, i, f, g, o, tc = output
        ctx.mark_non_differentiable(i, f, g, o, tc)
        ctx.save_for_backward(i, f, g, o, c, tc)

    @staticmethod
    def backward(ctx: Any, dh: Tensor, dc_next: Tensor, *_unused: Tensor):  # type: ignore[override]
        i, f, g, o, c, tc = ctx.saved_tensors
        if dh is None:
            dh = torch.zeros_like(tc)
        dc = dh * o * (1 - tc * tc)               # dL/dc' through h' = o tanh(c')
        if dc_next is not None:
            dc = dc + dc_next
        di = dc * g * i * (1 - i)                 # dc'/d(i pre-activation) = g i (1 - i)
        df = dc * c * f * (1 - f)                 # dc'/d(f pre-activation) = c f (1 - f)
        dg = dc * i * (1 - g * g)                 # dc'/d(g pre-activation) = i (1 - g^2)
        do = dh * tc * o * (1 - o)                # dh'/d(o pre-activation) = tanh(c') o (1 - o)
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
    out = _LSTMPointwise.apply(gi, gh, c)
    return out[0], out[1]


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

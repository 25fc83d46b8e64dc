r"""The one autograd Function of every analog MVM: :class:`AnalogMVM` / :func:`analog_mvm`.

Forward is a crossbar read (noisy); backward is straight-through with the float weight
parameter ``W`` (not the programmed ``W_eff``), see :class:`AnalogMVM`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ["AnalogMVM", "analog_mvm"]


class AnalogMVM(torch.autograd.Function):
    r"""``y = read(x) ~ x W^T + noise``: a crossbar read forward, straight-through backward.

    Forward calls ``read`` (a :class:`models.reader.MatrixReader`, or any callable mapping
    a tensor of shape (S, B, in) to (S, B, out) in the same dtype) without autograd; the
    input is handed to the crossbar kernel as a zero-copy numpy view (float32 or float64).

    Backward is straight-through: the noisy read is differentiated as if it were the
    ideal product with the *trainable float weight parameter* ``W``:
    :math:`\partial L/\partial x = (\partial L/\partial y) W` and
    :math:`\partial L/\partial W = \sum (\partial L/\partial y)^T x` (sum over all rows).

    Which W, and why: the gradient uses the float parameter ``W`` being trained, not the
    programmed weights ``W_eff`` the forward read (quantised, clipped, with programming
    noise, drift and stuck cells). This is the straight-through estimator of Deep Noise
    Injection (Qin and Vucinic 2018) and of aihwkit's noise-aware training: the hardware
    non-idealities are treated as noise on the forward pass only, so the update moves the
    weights the next programming starts from; ``W_eff`` is redrawn on every training
    forward (programming noise) and would make the backward pass random and biased by the
    quantiser's zero gradient almost everywhere. With all noise off and an ideal device
    ``W_eff == W`` and the read equals ``x W^T`` to rounding, so
    ``torch.autograd.gradcheck`` passes in float64.

    Shape:
        x: (S, B, in); weight: (out, in); output: (S, B, out).
    """

    @staticmethod
    def forward(x: Tensor, weight: Tensor, read: Callable[..., Tensor], t0: int = 0) -> Tensor:  # type: ignore[override]
        return read(x, t0)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, weight = inputs[0], inputs[1]
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.matmul(grad_y, weight)
        if ctx.needs_input_grad[1]:
            # as (x^T grad_y)^T: MKL runs this orientation of the tall-skinny product up to 2x faster
            grad_w = x.reshape(-1, x.shape[-1]).t().mm(grad_y.reshape(-1, grad_y.shape[-1])).t()
        return grad_x, grad_w, None, None


def analog_mvm(x: Tensor, weight: Tensor, read: Callable[..., Tensor], t0: int = 0) -> Tensor:
    """Apply :class:`AnalogMVM`; ``x`` of shape (S, B, in) holds steps ``t0 .. t0+S-1``.

    A reader with a ``clip_input`` method (a learned input range,
    :class:`models.ranges.LearnedInputRanges`) clips ``x`` with it first, inside autograd.
    """
    clip = getattr(read, "clip_input", None)
    if clip is not None:
        x = clip(x)
    return AnalogMVM.apply(x, weight, read, t0)

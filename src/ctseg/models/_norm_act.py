"""Instance normalisation followed by a leaky ReLU as one autograd node, for training on the CPU.

PyTorch's CPU backward of ``group_norm`` on a channels-last tensor with few channels is slow: for
the demo network's full-resolution layer (2 x 8 x 40 x 48 x 48) it took ~10 ms against ~2 ms for the
forward, about a fifth of a whole training step (measured on 2 cores). The backward here is the
same closed form written as a few whole-tensor passes: the per-(sample, channel) sums of the
incoming gradient and of its product with the input, then ``dx = a * g + k * x + c`` with per-(sample,
channel) coefficients. The forward is PyTorch's own kernel, so outputs are bit-identical to
``leaky_relu(group_norm(x))``; gradients agree to float rounding (``tests/contract/test_models.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["group_norm", "instance_norm_leaky_relu"]


def group_norm(x: torch.Tensor, groups: int, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """``F.group_norm``, computed in float32 for a bfloat16 CPU tensor and cast back.

    PyTorch's CPU kernel is slow on bfloat16 in the channels-last layout: 2.3 ms against 0.6 ms
    for float32 on the demo network's full-resolution layer (2 x 8 x 40 x 48 x 48, 2 cores), which
    made the norms half of a bfloat16 forward pass. The detour costs two casts and gives the
    float32 kernel's statistics (more exact than bfloat16's).
    """
    if x.dtype == torch.bfloat16 and x.device.type == "cpu":
        return F.group_norm(x.float(), groups, weight, bias, eps).to(torch.bfloat16)
    return F.group_norm(x, groups, weight, bias, eps)


def _spatial_sums(grad: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (sample, channel): the sum over space of ``grad`` and of ``grad * x``; each (B, C)."""
    batch, channels = grad.shape[:2]
    last = {4: torch.channels_last, 5: torch.channels_last_3d}.get(grad.dim())
    if last is not None and grad.is_contiguous(memory_format=last) and x.is_contiguous(memory_format=last):
        order = (0, *range(2, grad.dim()), 1)  # (B, *spatial, C): a view of channels-last memory
        g = grad.permute(order).reshape(batch, -1, channels)
        v = x.permute(order).reshape(batch, -1, channels)
        return g.sum(1), (g * v).sum(1)
    g = grad.reshape(batch, channels, -1)
    return g.sum(2), (g * x.reshape(batch, channels, -1)).sum(2)


class _InstanceNormLeakyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float, slope: float) -> torch.Tensor:
        batch, channels = x.shape[:2]
        y, mean, rstd = torch.native_group_norm(x, weight, bias, batch, channels, math.prod(x.shape[2:]), channels, eps)
        F.leaky_relu_(y, slope)
        ctx.save_for_backward(x, y, weight, mean, rstd)
        ctx.slope = slope
        return y

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, y, weight, mean, rstd = ctx.saved_tensors
        # the activation's gradient (from its output: y > 0 exactly where the normalised value is)
        grad = torch.ops.aten.leaky_relu_backward(grad_out, y, ctx.slope, True)
        batch, channels = x.shape[:2]
        n = math.prod(x.shape[2:])
        sum_g, sum_gx = _spatial_sums(grad, x)
        mean, rstd = mean.view(batch, channels), rstd.view(batch, channels)
        sum_g_xhat = rstd * (sum_gx - mean * sum_g)  # sum of grad * normalised x
        a = rstd if weight is None else rstd * weight
        k = -a * rstd * sum_g_xhat / n
        c = a * (rstd * mean * sum_g_xhat - sum_g) / n
        shape = (batch, channels) + (1,) * (x.dim() - 2)
        grad_x = torch.addcmul(torch.addcmul(c.view(shape), grad, a.view(shape)), x, k.view(shape))
        grad_w = sum_g_xhat.sum(0) if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = sum_g.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None


def instance_norm_leaky_relu(
    x: torch.Tensor, channels: int, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float, slope: float
) -> torch.Tensor:
    """``leaky_relu(group_norm(x, channels, weight, bias, eps), slope)`` for ``x`` of shape (B, channels,
    *spatial), with the fast backward above when autograd records a float32 or float64 CPU tensor;
    PyTorch's own ops otherwise (inference, export, CUDA, bfloat16: :func:`group_norm`), with the
    activation in place. ``channels`` is a Python int, not read from ``x.shape``, so an ONNX trace keeps it a constant."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or (weight is not None and weight.requires_grad))
    if needs_grad and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dim() >= 3:
        return _InstanceNormLeakyReLU.apply(x, weight, bias, eps, slope)
    return F.leaky_relu_(group_norm(x, channels, weight, bias, eps), slope)

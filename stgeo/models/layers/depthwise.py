"""Depthwise convolution with fast CPU paths for dilation and for the backward pass.

oneDNN (PyTorch's CPU convolution backend) has fast depthwise *forward* kernels, but
dilated depthwise convolutions and the depthwise *backward* pass run 10-50x slower than
the forward. :class:`DepthwiseConv2d` keeps the parameters and semantics of
``nn.Conv2d(C, C, k, groups=C, dilation=d, padding=d*(k//2))`` and computes:

* dilation ``d > 1`` as an undilated convolution on the ``d x d`` interleaved sub-grids
  (``pixel_unshuffle``; a dilated tap of the grid is an adjacent tap of the sub-grid);
* the input gradient of a dilated kernel as the same (sub-grid) depthwise convolution of
  the output gradient with the flipped kernel (a fast forward kernel);
* the weight gradient of kernels larger than 3x3 (or dilated) as one grouped convolution
  per (sample, channel) pair that correlates the padded input with the output gradient
  (``stride=d`` picks the dilated taps), accumulated over the batch in float32 (for
  undilated 3x3 kernels oneDNN's own weight gradient is faster and is used).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DataValidationError

__all__ = ["DepthwiseConv2d", "depthwise_conv2d"]


def _dense_format(x: torch.Tensor) -> torch.memory_format:
    cl = x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl and not x.is_contiguous() else torch.contiguous_format


def _forward(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    d: int,
    w_expanded: torch.Tensor | None = None,
    b_expanded: torch.Tensor | None = None,
) -> torch.Tensor:
    c, k = x.shape[1], w.shape[-1]
    if d == 1:
        return F.conv2d(x, w, b, padding=k // 2, groups=c)
    h, wd = x.shape[-2:]
    ph, pw = (-h) % d, (-wd) % d
    fmt = _dense_format(x)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    if w_expanded is None:
        w_expanded = w.repeat_interleave(d * d, dim=0)
        b_expanded = b.repeat_interleave(d * d) if b is not None else None
    y = F.conv2d(F.pixel_unshuffle(x, d), w_expanded, b_expanded, padding=k // 2, groups=c * d * d)
    y = F.pixel_shuffle(y, d)
    if ph or pw:  # crop, keeping the caller's memory format (oneDNN wants dense tensors)
        y = y[..., :h, :wd].contiguous(memory_format=fmt)
    return y


def _grad_weight(x: torch.Tensor, gy: torch.Tensor, k: int, d: int) -> torch.Tensor:
    b, c, h, w = x.shape
    p = d * (k // 2)
    xp = F.pad(x.contiguous(), (p, p, p, p)).reshape(1, b * c, h + 2 * p, w + 2 * p)
    out = F.conv2d(xp, gy.contiguous().reshape(b * c, 1, h, w), stride=d, groups=b * c)
    return out.reshape(b, c, k, k).sum(0, dtype=torch.float32).unsqueeze(1)


class _DepthwiseFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, d):
        ctx.save_for_backward(x, w)
        ctx.d = d
        ctx.has_bias = b is not None
        return _forward(x, w, b, d)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        d, k = ctx.d, w.shape[-1]
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            if d == 1:  # oneDNN's undilated input gradient is fast
                p = k // 2
                gx = torch.ops.aten.convolution_backward(
                    gy,
                    x,
                    w,
                    None,
                    [1, 1],
                    [p, p],
                    [1, 1],
                    False,
                    [0, 0],
                    x.shape[1],
                    [True, False, False],
                )[0]
            else:  # transposed dilated conv = dilated conv with the flipped kernel
                gx = _forward(gy, w.flip(-1, -2), None, d)
        if ctx.needs_input_grad[1]:
            if d == 1 and k <= 3:  # oneDNN's own weight gradient is fast for 3x3 kernels
                p = k // 2
                gw = torch.ops.aten.convolution_backward(
                    gy,
                    x,
                    w,
                    None,
                    [1, 1],
                    [p, p],
                    [1, 1],
                    False,
                    [0, 0],
                    x.shape[1],
                    [False, True, False],
                )[1]
            else:
                gw = _grad_weight(x, gy, k, d).to(w.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3)).to(w.dtype)  # CPU reductions accumulate bf16 in fp32
        return gx, gw, gb, None


def depthwise_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, dilation: int = 1
) -> torch.Tensor:
    """Depthwise "same" convolution (odd kernel, zero padding, stride 1), autocast-aware.

    Examples
    --------
    >>> import torch, torch.nn.functional as F
    >>> x, w = torch.randn(2, 3, 9, 10), torch.randn(3, 1, 5, 5)
    >>> ref = F.conv2d(x, w, padding=4, dilation=2, groups=3)
    >>> bool(torch.allclose(depthwise_conv2d(x, w, dilation=2), ref, atol=1e-5))
    True
    """
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        dt = torch.get_autocast_dtype(dev)
        x, weight = x.to(dt), weight.to(dt)
        bias = bias.to(dt) if bias is not None else None
        with torch.autocast(dev, enabled=False):
            return _dispatch(x, weight, bias, dilation)
    return _dispatch(x, weight, bias, dilation)


def _dispatch(x, weight, bias, dilation):
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return _DepthwiseFn.apply(x, weight, bias, dilation)
    return _forward(x, weight, bias, dilation)


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(channels, channels, k, groups=channels, dilation=d)`` with "same"
    padding, computed through :func:`depthwise_conv2d` (same parameters and results)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int = 1) -> None:
        if kernel_size % 2 == 0:
            raise DataValidationError(f"kernel_size must be odd, got {kernel_size}")
        super().__init__(
            channels,
            channels,
            kernel_size,
            groups=channels,
            dilation=dilation,
            padding=dilation * (kernel_size // 2),
        )
        self._expanded: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation[0]
        if self._expanded is not None and not torch.is_grad_enabled():
            return _forward(x, self.weight, self.bias, d, *self._expanded)
        return depthwise_conv2d(x, self.weight, self.bias, d)

    def fuse_for_inference(self) -> DepthwiseConv2d:
        """Pre-expand a dilated kernel once (weights are frozen at inference)."""
        d = self.dilation[0]
        if d == 1:
            return self
        with torch.no_grad():
            w = nn.Parameter(self.weight.repeat_interleave(d * d, dim=0), requires_grad=False)
            self.register_parameter("weight_expanded", w)
            b = None
            if self.bias is not None:
                b = nn.Parameter(self.bias.repeat_interleave(d * d), requires_grad=False)
                self.register_parameter("bias_expanded", b)
        self._expanded = (w, b)
        return self

    def _apply(self, fn, recurse=True):  # keep the cached expansion in sync with .to()
        out = super()._apply(fn, recurse)
        if self._expanded is not None:
            self._expanded = (self.weight_expanded, getattr(self, "bias_expanded", None))
        return out

"""Translator blocks of SimVP v2 (gSTA) and TAU, with an inference-time fused form.

A :class:`TranslatorBlock` works on frames stacked on channels ``(B, T*hid, h, w)``::

    z = BN(x);  x = x + drop_path(ls1 * (proj2(gate(GELU(proj1(z)))) + z))
    z = BN(x);  x = x + drop_path(ls2 * MLP(z))

``gate`` is the large-kernel gated attention of gSTA (depthwise 5x5 -> depthwise 7x7 with
dilation 3 -> 1x1 to 2*dim -> ``sigmoid(g) * f``) or TAU's attention (the same
statical attention times a squeeze-and-excitation channel gate, times its input).
:meth:`TranslatorBlock.fuse_for_inference` folds both batch norms and both layer scales
into the neighbouring 1x1 convolutions, which removes four memory-bound passes per block.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DataValidationError
from .common import DropPath
from .depthwise import DepthwiseConv2d

__all__ = [
    "FusedTranslatorBlock",
    "GatedSpatialAttention",
    "MixMLP",
    "TemporalAttention",
    "TranslatorBlock",
]


def _init_conv(conv: nn.Conv2d) -> None:
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _large_kernel(dim: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Depthwise 5x5 then depthwise 7x7 with dilation 3 (a 21x21 receptive field)."""
    return (
        DepthwiseConv2d(dim, 5),
        DepthwiseConv2d(dim, 7, dilation=3),
    )


class GatedSpatialAttention(nn.Module):
    """gSTA large-kernel gated attention: ``f, g = 1x1(dwd(dw(x)))``; ``sigmoid(g) * f``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw, self.dwd = _large_kernel(dim)
        self.pw = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.pw(self.dwd(self.dw(x))).chunk(2, dim=1)
        return torch.sigmoid(g) * f


class TemporalAttention(nn.Module):
    """TAU's attention: statical (large-kernel) attention x dynamical (SE channel gate) x input."""

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        self.dw, self.dwd = _large_kernel(dim)
        self.pw = nn.Conv2d(dim, dim, 1)
        hidden = max(dim // reduction, 4)
        self.se = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        statical = self.pw(self.dwd(self.dw(x)))
        dynamical = self.se(x.mean(dim=(2, 3)))
        return dynamical[:, :, None, None] * statical * x


class MixMLP(nn.Module):
    """1x1 expand (``ratio``) -> depthwise 3x3 -> GELU -> 1x1, with optional dropout."""

    def __init__(self, dim: int, ratio: float = 8.0, drop: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dw = DepthwiseConv2d(hidden, 3)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dw(self.fc1(x))))
        return self.drop(self.fc2(x))


class TranslatorBlock(nn.Module):
    """One gSTA (``kind="gsta"``) or TAU (``kind="tau"``) block at ``dim`` channels,
    followed by a 1x1 projection to ``out_dim`` when the two differ."""

    def __init__(
        self,
        dim: int,
        out_dim: int,
        *,
        kind: str = "gsta",
        mlp_ratio: float = 8.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        layer_scale: float = 1e-2,
    ) -> None:
        super().__init__()
        if kind not in ("gsta", "tau"):
            raise DataValidationError(f"translator kind must be 'gsta' or 'tau', got {kind!r}")
        self.kind = kind
        self.norm1 = nn.BatchNorm2d(dim)
        self.proj1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.gate = GatedSpatialAttention(dim) if kind == "gsta" else TemporalAttention(dim)
        self.proj2 = nn.Conv2d(dim, dim, 1)
        self.ls1 = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = MixMLP(dim, mlp_ratio, drop)
        self.ls2 = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.drop_path = DropPath(drop_path)
        self.reduce = nn.Conv2d(dim, out_dim, 1) if out_dim != dim else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _init_conv(m)
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm1(x)
        a = self.proj2(self.gate(self.act(self.proj1(z)))) + z
        x = x + self.drop_path(self.ls1[:, None, None] * a)
        x = x + self.drop_path(self.ls2[:, None, None] * self.mlp(self.norm2(x)))
        return self.reduce(x)

    @torch.no_grad()
    def fuse_for_inference(self) -> FusedTranslatorBlock:
        """An equivalent eval-mode block with batch norms and layer scales folded away."""
        return FusedTranslatorBlock(self)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _fold_in(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """1x1 conv applied to ``x * scale + shift`` as a single 1x1 conv applied to ``x``."""
    w = conv.weight[:, :, 0, 0]
    out = nn.Conv2d(conv.in_channels, conv.out_channels, 1)
    out.weight.copy_((w * scale[None, :])[:, :, None, None])
    out.bias.copy_(conv.bias + w @ shift)
    return out


def _fold_out(conv: nn.Conv2d, scale: torch.Tensor, extra_bias: torch.Tensor) -> nn.Conv2d:
    """``scale * (conv(x) + extra_bias)`` as a single 1x1 conv."""
    out = nn.Conv2d(conv.in_channels, conv.out_channels, 1)
    out.weight.copy_(conv.weight * scale[:, None, None, None])
    out.bias.copy_(scale * (conv.bias + extra_bias))
    return out


@functools.lru_cache(maxsize=1)
def _onednn_conv_gelu_available() -> bool:
    """Whether PyTorch exposes oneDNN's convolution with a fused GELU post-op (CPU)."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        x = torch.randn(1, 2, 3, 3)
        w = torch.randn(2, 1, 3, 3)
        y = op(x, w, None, [1, 1], [1, 1], [1, 1], 2, "gelu", [], "none")
        ref = F.gelu(F.conv2d(x, w, None, padding=1, groups=2))
        return bool(torch.allclose(y, ref, atol=1e-5))
    except Exception:  # any failure means "not available"
        return False


def conv_gelu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``GELU(conv(x))``, fused into one oneDNN call at inference on CPU when possible.

    The fused path saves a full read and write of the (large) activation; it is used only
    without autograd, for float32/bf16 CPU tensors whose dtype matches the weights.
    """
    if (
        x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and x.dtype in (torch.float32, torch.bfloat16)
        and x.dtype == conv.weight.dtype
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and _onednn_conv_gelu_available()
    ):
        return torch.ops.mkldnn._convolution_pointwise(
            x,
            conv.weight,
            conv.bias,
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            "gelu",
            [],
            "none",
        )
    return F.gelu(conv(x))


class FusedTranslatorBlock(nn.Module):
    """Inference form of :class:`TranslatorBlock` (identical output in eval mode)::

    x = proj2'(gate(GELU(proj1'(x)))) + x * s
    x = x + fc2'(GELU(dw(fc1'(x))))
    """

    def __init__(self, block: TranslatorBlock) -> None:
        super().__init__()
        a1, b1 = _bn_affine(block.norm1)
        a2, b2 = _bn_affine(block.norm2)
        ls1, ls2 = block.ls1.detach(), block.ls2.detach()
        self.proj1 = _fold_in(block.proj1, a1, b1)
        self.gate = block.gate
        self.proj2 = _fold_out(block.proj2, ls1, b1)
        self.register_buffer("s", (1.0 + ls1 * a1)[None, :, None, None].clone())
        self.fc1 = _fold_in(block.mlp.fc1, a2, b2)
        self.dw = block.mlp.dw
        self.fc2 = _fold_out(block.mlp.fc2, ls2, torch.zeros_like(ls2))
        self.reduce = block.reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.proj2(self.gate(conv_gelu(self.proj1, x))), x, self.s)
        x = x + self.fc2(conv_gelu(self.dw, self.fc1(x)))
        return self.reduce(x)

"""Per-frame convolutional encoder/decoder (SimVP-style spatial encoder and its mirror)."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import DataValidationError

__all__ = ["ConvNormAct", "FrameDecoder", "FrameEncoder"]


class ConvNormAct(nn.Module):
    """Conv(k) -> GroupNorm(2) -> SiLU, optionally down-sampling (stride 2) or up-sampling.

    Up-sampling convolves to ``4 * out_ch`` channels and rearranges them with
    ``PixelShuffle(2)`` (sub-pixel convolution).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        *,
        down: bool = False,
        up: bool = False,
        groups_norm: int = 2,
    ) -> None:
        super().__init__()
        if down and up:
            raise DataValidationError("a block cannot both down- and up-sample")
        if out_ch % groups_norm:
            raise DataValidationError(
                f"channel count {out_ch} must be divisible by {groups_norm} (GroupNorm groups)"
            )
        pad = kernel_size // 2
        self.conv = nn.Conv2d(
            in_ch, out_ch * (4 if up else 1), kernel_size, stride=2 if down else 1, padding=pad
        )
        self.shuffle = nn.PixelShuffle(2) if up else nn.Identity()
        self.norm = nn.GroupNorm(groups_norm, out_ch)
        self.act = nn.SiLU()
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.shuffle(self.conv(x))))


def _strides(n: int) -> list[bool]:
    """Down-sampling flags of an ``n``-block encoder: stride 2 on every second block."""
    return [i % 2 == 1 for i in range(n)]


class FrameEncoder(nn.Module):
    """``n_blocks`` ConvNormAct blocks applied per frame; returns (latent, first-block skip).

    Reduces each spatial axis by ``2 ** (n_blocks // 2)``.
    """

    def __init__(self, in_ch: int, hid: int, n_blocks: int, kernel_size: int = 3) -> None:
        super().__init__()
        flags = _strides(n_blocks)
        self.blocks = nn.ModuleList(
            ConvNormAct(in_ch if i == 0 else hid, hid, kernel_size, down=d)
            for i, d in enumerate(flags)
        )
        self.factor = 2 ** sum(flags)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = x = self.blocks[0](x)
        for blk in self.blocks[1:]:
            x = blk(x)
        return x, skip


class FrameDecoder(nn.Module):
    """Mirror of :class:`FrameEncoder` with PixelShuffle up-sampling; the skip is added
    before the last block, then a 1x1 read-out maps to ``out_ch`` channels."""

    def __init__(self, hid: int, out_ch: int, n_blocks: int, kernel_size: int = 3) -> None:
        super().__init__()
        flags = list(reversed(_strides(n_blocks)))
        self.blocks = nn.ModuleList(ConvNormAct(hid, hid, kernel_size, up=u) for u in flags)
        self.readout = nn.Conv2d(hid, out_ch, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks[:-1]:
            x = blk(x)
        x = self.blocks[-1](x + skip)
        return self.readout(x)

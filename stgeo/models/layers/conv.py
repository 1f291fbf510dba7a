"""Per-frame convolutional encoder/decoder (SimVP-style spatial encoder and its mirror)."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import DataValidationError
from .common import ForecastModule, crop_to, pad_to_multiple

__all__ = ["ConvNormAct", "EncoderTranslatorDecoder", "FrameDecoder", "FrameEncoder"]


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


class EncoderTranslatorDecoder(ForecastModule):
    """SimVP-style forecaster: per-frame encoder -> translator -> per-frame decoder with skip.

    Subclasses build ``encoder`` (a :class:`FrameEncoder`), ``decoder`` (a
    :class:`FrameDecoder`), ``factor`` (the encoder's down-sampling), ``hid_S``, ``skip_proj``
    (a 1x1 convolution mixing the stacked skips when ``T_out != T_in``, else None) and
    implement :meth:`_translate`. The input is replicate-padded to a multiple of ``factor``
    and the output cropped back, so any grid size works.
    """

    def _translate(self, z: torch.Tensor, b: int, t: int) -> torch.Tensor:  # pragma: no cover
        """Latent frames ``(B*T_in, hid_S, h, w)`` -> ``(B*T_out, hid_S, h, w)``."""
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        x = pad_to_multiple(x, self.factor)
        hp, wp = x.shape[-2:]
        z, skip = self.encoder(x.reshape(b * t, c, hp, wp))
        z = self._translate(z, b, t)
        if self.skip_proj is not None:
            skip = self.skip_proj(skip.reshape(b, t * self.hid_S, hp, wp))
        skip = skip.reshape(b * self.out_steps, self.hid_S, hp, wp)
        y = self.decoder(z, skip).reshape(b, self.out_steps, c, hp, wp)
        return crop_to(y, (h, w))

"""SimVP encoder/decoder with a Swin Transformer translator on the latent grid.

Per-frame convolutional encoder (:class:`~stgeo.models.layers.FrameEncoder`) ->
frames stacked on channels and read as tokens of the latent grid
``(B, h*w, T_in*hid_S)`` -> linear embedding to ``hid_T`` -> ``N_T`` Swin blocks (window
attention with a learned relative position bias; odd blocks shifted by half a window, with
the shifted-window attention mask) -> layer norm -> linear map to ``T_out*hid_S`` ->
per-frame decoder with the first encoder block's output as skip.

Any grid works: the input is replicate-padded to the encoder's down-sampling factor and
cropped back; the windows adapt to the latent grid actually produced (balanced windows, the
rest padded and masked, see :mod:`stgeo.models.layers.swin`).

Registered names: ``swin`` and ``swin-taxibj``.

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("swin", in_steps=4, out_steps=2, channels=1, hid_S=8, hid_T=16,
...                        N_T=2, heads=2, window=4)
>>> m(torch.randn(3, 4, 1, 13, 22)).shape
torch.Size([3, 2, 1, 13, 22])
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataValidationError
from .base import register_model
from .grids import GridRule
from .layers import (
    EncoderTranslatorDecoder,
    FrameDecoder,
    FrameEncoder,
    check_hyperparameter,
)
from .layers.swin import SwinBlock, window_geometry
from .layers.transformer import check_heads, init_transformer_weights

__all__ = ["SwinTranslator", "SwinVP", "swin_grid"]


class SwinTranslator(nn.Module):
    """Swin blocks on a token grid: ``(B, h, w, c_in) -> (B, h, w, c_out)``.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels per token (frames stacked on channels).
    dim : int
        Width of the Swin blocks.
    depth : int
        Number of blocks; odd blocks (the 2nd, 4th, ...) use shifted windows.
    heads, window : int
        Attention heads; largest window side.
    mlp_ratio, drop, drop_path : float
        MLP expansion, dropout, maximum stochastic-depth rate (linear over blocks).

    Examples
    --------
    >>> t = SwinTranslator(6, 4, dim=8, depth=2, heads=2, window=3)
    >>> t(torch.randn(2, 5, 7, 6)).shape
    torch.Size([2, 5, 7, 4])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        dim: int,
        depth: int,
        heads: int,
        window: int,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.window = window
        self.embed = nn.Linear(c_in, dim)
        rates = torch.linspace(0, drop_path, depth).tolist() if depth > 1 else [drop_path]
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim,
                heads,
                window,
                shifted=i % 2 == 1,
                mlp_ratio=mlp_ratio,
                drop=drop,
                drop_path=rates[i],
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, c_out)
        init_transformer_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        geos = {s: window_geometry(h, w, self.window, s, x.device) for s in (False, True)}
        z = self.embed(x.reshape(b, h * w, -1))
        for blk in self.blocks:
            z = blk(z, geos[blk.shifted])
        return self.head(self.norm(z)).reshape(b, h, w, -1)


class SwinVP(EncoderTranslatorDecoder):
    """SimVP-style encoder/decoder around a Swin Transformer translator.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in and out; channels per frame.
    hid_S : int
        Channels of the spatial encoder/decoder (even).
    hid_T : int
        Width of the Swin blocks (a multiple of ``heads``).
    N_S : int
        Encoder (and decoder) blocks; the latent grid is the input grid divided by
        ``2 ** (N_S // 2)``.
    N_T : int
        Swin blocks; every second one uses shifted windows.
    heads : int
        Attention heads of the Swin blocks.
    window : int
        Largest window side on the latent grid (balanced per axis, padding masked).
    mlp_ratio : float
        Expansion of the Swin MLPs.
    drop, drop_path : float
        Dropout; maximum stochastic-depth rate (linearly increasing over blocks).
    spatio_kernel : int
        Kernel size of the encoder/decoder convolutions (odd).
    """

    name = "swin"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        hid_S: int = 32,
        hid_T: int = 256,
        N_S: int = 2,
        N_T: int = 8,
        heads: int = 8,
        window: int = 7,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        spatio_kernel: int = 3,
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        _check(hid_S, hid_T, N_S, N_T, heads, window, mlp_ratio, drop, drop_path, spatio_kernel)
        self.hid_S = hid_S
        self.encoder = FrameEncoder(channels, hid_S, N_S, spatio_kernel)
        self.decoder = FrameDecoder(hid_S, channels, N_S, spatio_kernel)
        self.factor = self.encoder.factor
        self.translator = SwinTranslator(
            in_steps * hid_S,
            out_steps * hid_S,
            dim=hid_T,
            depth=N_T,
            heads=heads,
            window=window,
            mlp_ratio=mlp_ratio,
            drop=drop,
            drop_path=drop_path,
        )
        c_in, c_out = in_steps * hid_S, out_steps * hid_S
        self.skip_proj = nn.Conv2d(c_in, c_out, 1) if in_steps != out_steps else None

    def _translate(self, z: torch.Tensor, b: int, t: int) -> torch.Tensor:
        hl, wl = z.shape[-2:]
        # (B*T, hid, h, w) -> tokens with the frames stacked on channels (B, h, w, T*hid)
        tokens = z.reshape(b, t, self.hid_S, hl, wl).permute(0, 3, 4, 1, 2)
        z = self.translator(tokens.reshape(b, hl, wl, t * self.hid_S))
        # (B, h, w, T_out*hid) -> (B*T_out, hid, h, w), channels-last in memory
        z = z.reshape(b, hl, wl, self.out_steps, self.hid_S).permute(0, 3, 1, 2, 4)
        return z.reshape(b * self.out_steps, hl, wl, self.hid_S).permute(0, 3, 1, 2)


def _check(
    hid_S, hid_T, N_S, N_T, heads, window, mlp_ratio, drop, drop_path, spatio_kernel
) -> None:
    check_hyperparameter("hid_S", hid_S, minimum=2)
    if hid_S % 2:
        raise DataValidationError(f"hid_S must be even (GroupNorm with 2 groups), got {hid_S}")
    check_hyperparameter("hid_T", hid_T)
    check_hyperparameter("N_S", N_S, minimum=2)
    check_hyperparameter("N_T", N_T)
    check_hyperparameter("heads", heads)
    check_heads(hid_T, heads)
    check_hyperparameter("window", window)
    check_hyperparameter("mlp_ratio", mlp_ratio, integer=False, minimum=0.125)
    check_hyperparameter("drop", drop, integer=False, minimum=0, maximum=0.99)
    check_hyperparameter("drop_path", drop_path, integer=False, minimum=0, maximum=0.99)
    check_hyperparameter("spatio_kernel", spatio_kernel)
    if spatio_kernel % 2 == 0:
        raise DataValidationError(f"spatio_kernel must be odd, got {spatio_kernel}")


def _build_swin(in_steps, out_steps, channels, grid_shape=None, **hp) -> SwinVP:
    """SimVP encoder/decoder with a Swin translator (the grid comes from the tensors)."""
    return SwinVP(in_steps, out_steps, channels, **hp)


_TAXIBJ = {"hid_S": 32, "hid_T": 256, "N_S": 2, "N_T": 8, "drop_path": 0.1}


def swin_grid(hp) -> GridRule:
    """Grid rule of SwinVP: H, W multiples of the encoder's ``2 ** (N_S // 2)``; not fully
    convolutional (GroupNorm over H, W; attention windows laid out over, and sized for, the
    whole latent grid).

    Examples
    --------
    >>> swin_grid({"N_S": 2}).multiple
    2
    """
    note = "GroupNorm over H, W; attention windows laid out over the whole latent grid"
    return GridRule(multiple=2 ** (int(hp.get("N_S", 2)) // 2), note=note)


register_model(
    "swin",
    _build_swin,
    grid=swin_grid,
    description="SimVP encoder/decoder + Swin translator (hid_S 32, hid_T 256, N_T 8, window 7)",
)
register_model(
    "swin-taxibj",
    _build_swin,
    grid=swin_grid,
    defaults=_TAXIBJ,
    description="Swin translator, TaxiBJ scale (hid_S 32, hid_T 256, N_T 8, drop path 0.1)",
)

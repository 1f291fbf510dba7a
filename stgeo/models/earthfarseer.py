"""EarthFarseer (Wu et al., AAAI 2024): local-global spatial block, TeDev temporal block.

Per frame, a FoTF spatial block (a global AFNO transformer on patch tokens plus a local
convolution, interacting for a few rounds) refines the input; a SimVP-style encoder maps
each frame to a latent grid (4x smaller with ``N_S=4``); TeDev evolves the frames stacked on
channels (Inception group convolutions in a U-Net arrangement around Fourier blocks on the
latent grid, with a residual); the decoder mirrors the encoder, with the first encoder
block's output of the last input frame as skip, and the output adds a learned skip from the
input frames (initialised to persistence).

Any grid works: the input is replicate-padded to a multiple of ``lcm(patch, encoder
factor)`` and the output cropped back; the token and latent grids are read from the tensors.
The learned positional embedding lives on a fixed ``pos_grid`` and is interpolated to the
token grid, and the Fourier mixing has no grid-size-dependent parameter, so one set of
weights runs on any grid (see ``docs/models/earthfarseer.md``).

Registered names: ``earthfarseer`` (alias ``earthfarseer-small``) and ``earthfarseer-base``.

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("earthfarseer", in_steps=4, out_steps=3, channels=1, hid_S=8,
...                        fotf_dim=16, hid_T=32, N_T=2)
>>> m(torch.randn(2, 4, 1, 21, 34)).shape
torch.Size([2, 3, 1, 21, 34])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataValidationError
from .base import register_model
from .grids import GridRule
from .layers import (
    ForecastModule,
    FrameDecoder,
    FrameEncoder,
    check_hyperparameter,
    crop_to,
    pad_to_multiple,
)
from .layers.afno import FourierBlock, interpolate_pos_embed
from .layers.inception import InceptionBlock, check_kernels

__all__ = ["EarthFarseer", "FoTF", "TeDev", "earthfarseer_grid"]


class FoTF(nn.Module):
    """Local-global spatial block on frames ``(N, C, H, W)`` (H, W multiples of ``patch``).

    Global branch: patch embedding (``patch x patch`` convolution, stride ``patch``) ->
    learned positional embedding (interpolated to the token grid) -> ``depth`` pre-LN
    :class:`~stgeo.models.layers.afno.FourierBlock` s -> un-patching by a transposed
    convolution. Local branch: a 3x3 convolution. The branches interact for ``rounds``
    rounds, re-applying the same weights: ``z <- x + global(z) + local(z)``.

    Examples
    --------
    >>> import torch
    >>> FoTF(2, dim=16, patch=4, depth=1)(torch.randn(3, 2, 12, 20)).shape
    torch.Size([3, 2, 12, 20])
    """

    def __init__(
        self,
        channels: int,
        dim: int,
        patch: int,
        depth: int,
        *,
        rounds: int = 1,
        pos_grid: int = 8,
        num_blocks: int = 4,
        mlp_ratio: float = 2.0,
        sparsity: float = 0.01,
        activation: str = "phase",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.rounds = rounds
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.pos = nn.Parameter(
            nn.init.trunc_normal_(torch.empty(1, dim, pos_grid, pos_grid), std=0.02)
        )
        self.blocks = nn.Sequential(
            *(
                FourierBlock(dim, num_blocks, mlp_ratio, sparsity, activation, drop_path)
                for _ in range(depth)
            )
        )
        self.norm = nn.LayerNorm(dim)
        self.unpatch = nn.ConvTranspose2d(dim, channels, patch, stride=patch)
        self.local = nn.Conv2d(channels, channels, 3, padding=1)

    def global_branch(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens -> Fourier blocks -> frames, same shape as ``x``."""
        t = self.embed(x)
        t = t + interpolate_pos_embed(self.pos, tuple(t.shape[-2:])).to(t.dtype)
        t = self.norm(self.blocks(t.permute(0, 2, 3, 1)))
        return self._unpatch(t)

    def _unpatch(self, t: torch.Tensor) -> torch.Tensor:
        """``self.unpatch`` (a transposed convolution with kernel = stride = ``patch``) on
        channels-last tokens ``(N, h, w, dim)``, computed as the matrix product it is
        (tokens x ``(dim, C*p*p)``) and a pixel shuffle: several times faster than oneDNN's
        strided transposed convolution, in fp32 and bf16."""
        wt = self.unpatch.weight  # (dim, C, p, p)
        p = wt.shape[-1]
        y = F.linear(t, wt.reshape(wt.shape[0], -1).t())  # (N, h, w, C*p*p)
        y = F.pixel_shuffle(y.permute(0, 3, 1, 2), p)
        return y + self.unpatch.bias.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x
        for _ in range(self.rounds):
            z = x + self.global_branch(z) + self.local(z)
        return z


class TeDev(nn.Module):
    """Temporal evolution on frames stacked along channels ``(B, c_in, h, w) -> (B, c_out, h, w)``.

    ``n_layers // 2`` Inception encoder layers, ``depth`` Fourier blocks on the latent grid
    (one token per latent pixel), ``n_layers // 2`` Inception decoder layers each fed the
    concatenation of the previous output and the mirrored encoder output (U-Net skips), and
    a residual from the input (a 1x1 convolution when ``c_in != c_out``).

    Examples
    --------
    >>> import torch
    >>> TeDev(8, 12, hidden=16, n_layers=2, depth=1, kernels=(3,))(torch.randn(2, 8, 5, 6)).shape
    torch.Size([2, 12, 5, 6])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        hidden: int,
        n_layers: int,
        depth: int,
        *,
        kernels: Sequence[int] = (3, 5, 7),
        groups: int = 8,
        num_blocks: int = 4,
        mlp_ratio: float = 2.0,
        sparsity: float = 0.01,
        activation: str = "phase",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        half = max(1, n_layers // 2)
        red = max(1, hidden // 2)
        self.enc = nn.ModuleList(
            InceptionBlock(c_in if i == 0 else hidden, red, hidden, kernels, groups)
            for i in range(half)
        )
        self.blocks = nn.Sequential(
            *(
                FourierBlock(hidden, num_blocks, mlp_ratio, sparsity, activation, drop_path)
                for _ in range(depth)
            )
        )
        self.dec = nn.ModuleList(
            InceptionBlock(2 * hidden, red, c_out if i == half - 1 else hidden, kernels, groups)
            for i in range(half)
        )
        self.res = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips = []
        h = z
        for layer in self.enc:
            h = layer(h)
            skips.append(h)
        h = self.blocks(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for layer in self.dec:
            h = layer(torch.cat((h, skips.pop()), dim=1))
        return h + (z if self.res is None else self.res(z))


def _check(hp: dict[str, Any]) -> None:
    """Raise a stgeo error for an out-of-range EarthFarseer hyperparameter."""
    for name in ("hid_S", "N_S", "patch", "fotf_dim", "fotf_depth", "fotf_rounds", "pos_grid"):
        check_hyperparameter(name, hp[name], minimum=2 if name in ("hid_S", "N_S") else 1)
    for name in ("hid_T", "N_T", "tedev_depth", "groups", "num_blocks"):
        check_hyperparameter(name, hp[name], minimum=0 if name == "tedev_depth" else 1)
    check_hyperparameter("mlp_ratio", hp["mlp_ratio"], integer=False, minimum=0.125)
    check_hyperparameter("sparsity", hp["sparsity"], integer=False, minimum=0)
    check_hyperparameter("drop_path", hp["drop_path"], integer=False, minimum=0, maximum=0.99)
    check_hyperparameter("spatio_kernel", hp["spatio_kernel"])
    check_kernels(hp["incep_ker"])
    if hp["hid_S"] % 2 or hp["spatio_kernel"] % 2 == 0:
        raise DataValidationError(
            f"hid_S must be even (GroupNorm with 2 groups) and spatio_kernel odd, got "
            f"hid_S={hp['hid_S']}, spatio_kernel={hp['spatio_kernel']}"
        )
    for dim in ("fotf_dim", "hid_T"):
        if hp[dim] % hp["num_blocks"]:
            raise DataValidationError(
                f"{dim}={hp[dim]} must be divisible by num_blocks={hp['num_blocks']} "
                "(block-diagonal Fourier MLP)"
            )
    if hp["fourier_act"] not in ("phase", "split"):
        raise DataValidationError(
            f"fourier_act must be 'phase' or 'split', got {hp['fourier_act']!r}"
        )


class EarthFarseer(ForecastModule):
    """EarthFarseer: FoTF spatial block, SimVP-style encoder/decoder, TeDev temporal block.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in and out; channels per frame.
    hid_S : int
        Channels of the frame encoder/decoder (even).
    N_S : int
        Encoder (and decoder) blocks, strides 1, 2, 1, 2, ...: the latent grid is the padded
        input grid divided by ``2 ** (N_S // 2)``.
    spatio_kernel : int
        Kernel size of the encoder/decoder convolutions (odd).
    patch : int
        Patch size of FoTF's tokens (token grid = padded grid / ``patch``).
    fotf_dim, fotf_depth, fotf_rounds : int
        Token width, Fourier blocks, and local-global interaction rounds of FoTF.
    pos_grid : int
        Side of the learned positional-embedding grid (interpolated to any token grid).
    hid_T : int
        Channels inside TeDev (also the width of its Fourier blocks).
    N_T : int
        TeDev Inception layers (half encoder, half decoder).
    tedev_depth : int
        Fourier blocks on the latent grid inside TeDev.
    incep_ker : sequence of int
        Kernel sizes of the Inception branches (odd).
    groups : int
        Groups of the Inception convolutions.
    num_blocks : int
        Diagonal blocks of every AFNO complex MLP.
    mlp_ratio : float
        Token-MLP expansion of the Fourier blocks.
    sparsity : float
        AFNO soft-shrink threshold.
    fourier_act : {"phase", "split"}
        AFNO activations: phase-preserving (circular-shift-equivariant mixing, default) or
        the original split real/imaginary form.
    drop_path : float
        Stochastic depth of the Fourier blocks.
    """

    name = "earthfarseer"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        hid_S: int = 16,
        N_S: int = 4,
        spatio_kernel: int = 3,
        patch: int = 8,
        fotf_dim: int = 64,
        fotf_depth: int = 2,
        fotf_rounds: int = 1,
        pos_grid: int = 8,
        hid_T: int = 64,
        N_T: int = 4,
        tedev_depth: int = 2,
        incep_ker: Sequence[int] = (3, 5, 7),
        groups: int = 8,
        num_blocks: int = 4,
        mlp_ratio: float = 2.0,
        sparsity: float = 0.01,
        fourier_act: str = "phase",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        hp = dict(locals())
        _check(hp)
        fourier = {
            "num_blocks": num_blocks,
            "mlp_ratio": mlp_ratio,
            "sparsity": sparsity,
            "activation": fourier_act,
            "drop_path": drop_path,
        }
        self.hid_S = hid_S
        self.fotf = FoTF(
            channels, fotf_dim, patch, fotf_depth, rounds=fotf_rounds, pos_grid=pos_grid, **fourier
        )
        self.encoder = FrameEncoder(channels, hid_S, N_S, spatio_kernel)
        self.tedev = TeDev(
            in_steps * hid_S,
            out_steps * hid_S,
            hid_T,
            N_T,
            tedev_depth,
            kernels=tuple(incep_ker),
            groups=groups,
            **fourier,
        )
        self.decoder = FrameDecoder(hid_S, channels, N_S, spatio_kernel)
        self.multiple = math.lcm(patch, self.encoder.factor)
        # output skip from the input frames, initialised to persistence (last frame repeated);
        # with the decoder's read-out zeroed the untrained model *is* persistence
        self.persist = nn.Conv2d(in_steps * channels, out_steps * channels, 1)
        with torch.no_grad():
            self.decoder.readout.weight.zero_()
            self.decoder.readout.bias.zero_()
            self.persist.weight.zero_()
            self.persist.bias.zero_()
            for j in range(out_steps):
                for c in range(channels):
                    self.persist.weight[j * channels + c, (in_steps - 1) * channels + c] = 1.0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        x = pad_to_multiple(x, self.multiple)
        hp, wp = x.shape[-2:]
        s = self.fotf(x.reshape(b * t, c, hp, wp))
        z, skip = self.encoder(s)
        hl, wl = z.shape[-2:]
        z = self.tedev(z.reshape(b, t * self.hid_S, hl, wl))
        z = z.reshape(b * self.out_steps, self.hid_S, hl, wl)
        # the last input frame's fine-scale features are the skip of every output frame,
        # added by broadcasting (a view: no copy per output frame, the layout is kept)
        skip = skip.unflatten(0, (b, t))[:, -1:]
        y = self._decode(z, skip, b).unflatten(0, (b, self.out_steps))
        y = y + self.persist(x.reshape(b, t * c, hp, wp)).unflatten(1, (self.out_steps, c))
        return crop_to(y, (h, w))

    def _decode(self, z: torch.Tensor, skip: torch.Tensor, b: int) -> torch.Tensor:
        """:class:`FrameDecoder` with the ``(B, 1, hid_S, H, W)`` skip broadcast over the
        output frames of ``z`` ``(B*T_out, hid_S, h, w)``."""
        blocks = self.decoder.blocks
        for blk in blocks[:-1]:
            z = blk(z)
        z = (z.unflatten(0, (b, self.out_steps)) + skip).flatten(0, 1)
        return self.decoder.readout(blocks[-1](z))


def _build_earthfarseer(in_steps, out_steps, channels, grid_shape=None, **hp) -> EarthFarseer:
    """EarthFarseer; ``grid_shape`` is not needed (any grid runs with the same weights)."""
    return EarthFarseer(in_steps, out_steps, channels, **hp)


_BASE = {
    "hid_S": 32,
    "patch": 4,
    "fotf_dim": 128,
    "fotf_depth": 4,
    "fotf_rounds": 2,
    "hid_T": 128,
    "N_T": 6,
    "tedev_depth": 4,
    "incep_ker": (3, 5, 7, 11),
    "num_blocks": 8,
    "mlp_ratio": 4.0,
    "drop_path": 0.1,
}


def earthfarseer_grid(hp) -> GridRule:
    """Grid rule of EarthFarseer: H, W multiples of ``lcm(patch, 2 ** (N_S // 2))``; not fully
    convolutional (global AFNO Fourier mixing over the token grid, learned position
    embedding, GroupNorm over H, W).

    Examples
    --------
    >>> earthfarseer_grid({"patch": 8, "N_S": 4}).multiple
    8
    """
    m = math.lcm(int(hp.get("patch", 8)), 2 ** (int(hp.get("N_S", 4)) // 2))
    note = "global Fourier (AFNO) mixing and position embedding on the token grid; GroupNorm"
    return GridRule(multiple=m, note=note)


register_model(
    "earthfarseer",
    _build_earthfarseer,
    grid=earthfarseer_grid,
    aliases=("earthfarseer-small",),
    description="EarthFarseer small: FoTF (AFNO + local conv) and TeDev, latent grid /4, patch 8",
)
register_model(
    "earthfarseer-base",
    _build_earthfarseer,
    grid=earthfarseer_grid,
    defaults=_BASE,
    description="EarthFarseer base: wider and deeper FoTF/TeDev, patch 4, 2 interaction rounds",
)

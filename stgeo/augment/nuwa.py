"""NuwaDynamics (Wang et al., ICLR 2024): causal discovery plus intervention augmentation.

The augmentation works on normalised training batches ``x`` of shape ``(B, T, C, H, W)`` and
never looks at the targets. It has three parts:

* **Discovery** — :class:`DiscoveryViT`, a small vision transformer that reconstructs its
  input window (time folded into channels, ``(B, T, C, H, W) -> (B, T*C, H, W)``). It is fitted
  self-supervised by :func:`fit_discovery`. Its softmax attention tells which patches the
  reconstruction relies on.
* **Importance** — :func:`patch_importance`: the total attention each patch *receives*
  (column sums of the attention matrix), averaged over heads and layers.
* **Intervention** — :func:`intervene` replaces the ``k`` least-attended ("environment")
  patches of each input window by the mean of their 3x3 patch neighbourhood (``mode="mean"``)
  or mixes them with a random neighbour patch (``mode="mix"``).

:class:`NuwaAugment` bundles a discovery model with the intervention settings as a
callable ``(x, y) -> (x_aug, y_aug)`` that returns the batch *plus* intervened copies of a
``share`` of its samples (the paper's "update" step: train on original and intervened
samples), deterministic under its own seeded generator. It is a
:class:`stgeo.augment.TrainableAugmentation`: ``stgeo.train(..., augment="nuwa")`` (or
``augment={"name": "nuwa", "k": 0.25, "share": 0.5, ...}``, or ``augment=NuwaAugment(...)``)
fits its discovery model on the run's normalised training batches before the first epoch,
saves it in ``checkpoint_dir/augment/`` and reuses it on resume.

Patch grid
----------
A grid ``(H, W)`` with patch size ``p`` has ``ceil(H / p) x ceil(W / p)`` patches. Patch
``(i, j)`` covers rows ``i*p .. i*p + p - 1`` and columns ``j*p .. j*p + p - 1`` clipped to the
grid: padding only ever goes to the bottom and right and is smaller than one patch, so the
last patch row/column may be partial but every patch holds real pixels (no patch is all
padding). :func:`discovery_patch_size` gives the default patch size: ``ceil(max(H, W) / 16)``,
i.e. at most 16 patches along the longer side (16x16 tokens on a square grid).

Examples
--------
>>> import torch
>>> from stgeo.augment.nuwa import NuwaAugment, fit_discovery
>>> batches = [torch.randn(4, 3, 1, 20, 28) for _ in range(2)]
>>> vit = fit_discovery(batches, steps=2, embed_dim=16, seed=0)
>>> vit.patch_size
2
>>> aug = NuwaAugment(vit, k=5, share=0.5, seed=0)
>>> x, y = torch.randn(4, 3, 1, 20, 28), torch.randn(4, 2, 1, 20, 28)
>>> xa, ya = aug(x, y)
>>> xa.shape, ya.shape
(torch.Size([6, 3, 1, 20, 28]), torch.Size([6, 2, 1, 20, 28]))
>>> bool(torch.equal(xa[:4], x)) and bool(torch.equal(ya[:4], y))
True
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataValidationError, ModelFileError, StgeoTypeError

__all__ = [
    "DiscoveryViT",
    "NuwaAugment",
    "discovery_patch_size",
    "fit_discovery",
    "intervene",
    "mix_seed",
    "patch_importance",
]

FORMAT = "stgeo-nuwa"
FORMAT_VERSION = 1
WEIGHTS_FILE = "discovery.safetensors"
SETTINGS_FILE = "nuwa.json"
CACHE_FILE = "importance.safetensors"
MODES = ("mean", "mix")
#: the 8 neighbours of a patch, as (row, column) offsets in patches
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


# -- checks ---------------------------------------------------------------------------------
def _check_number(
    name: str, value: Any, *, minimum: float, maximum: float | None = None, integer: bool = True
) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        kind = "an integer" if integer else "a number"
        raise StgeoTypeError(f"{name} must be {kind}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise DataValidationError(f"{name} must be {rng}, got {value!r}")


def _check_window(x: Any, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise StgeoTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 5 or not x.is_floating_point():
        raise DataValidationError(
            f"{name} must be a floating-point batch (B, T, C, H, W), got dtype {x.dtype} and "
            f"shape {tuple(x.shape)}"
        )


def _grid(h: int, w: int, patch_size: int) -> tuple[int, int]:
    return -(-h // patch_size), -(-w // patch_size)


def discovery_patch_size(grid_shape: tuple[int, int], tokens: int = 16) -> int:
    """The default patch size for a grid: at most ``tokens`` patches along the longer side.

    ``ceil(max(H, W) / tokens)``: 384x384 -> 24 (16x16 patches), 96x96 -> 6, 32x64 -> 4
    (8x16 patches), 16x8 -> 1.

    Examples
    --------
    >>> discovery_patch_size((384, 384)), discovery_patch_size((32, 64))
    (24, 4)
    """
    _check_number("tokens", tokens, minimum=1)
    h, w = (int(s) for s in grid_shape)
    if h < 1 or w < 1:
        raise DataValidationError(f"grid_shape must be two positive sizes, got {grid_shape!r}")
    return max(1, -(-max(h, w) // tokens))


# -- discovery model ------------------------------------------------------------------------
class _Block(nn.Module):
    """Pre-norm transformer block that also returns its softmax attention ``(B, heads, N, N)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = max(1, int(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self, t: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = t.shape
        qkv = self.qkv(self.norm1(t)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, d_head)
        if need_weights:
            attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
            out = attn.to(v.dtype) @ v
        else:  # the same attention, fused (no N x N matrix kept for backward)
            attn, out = None, F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        t = t + self.proj(out.transpose(1, 2).reshape(b, n, d))
        return t + self.mlp(self.norm2(t)), attn


class DiscoveryViT(nn.Module):
    """Small self-supervised ViT that reconstructs its input window (NuwaDynamics discovery).

    ``(B, T, C, H, W)`` is read as ``(B, T*C, H, W)``, zero-padded at the bottom/right to a
    multiple of ``patch_size``, cut into patches (a strided convolution), given a learned
    positional embedding, passed through ``depth`` transformer blocks and projected back to
    pixels (a strided transposed convolution); the output is cropped to ``(H, W)``.

    The positional embedding is learned on a ``token_grid`` and bilinearly interpolated
    when the input has another patch grid (other grid sizes, crops), so one model serves
    every grid; the patch size itself is fixed by the weights.

    Parameters
    ----------
    in_steps, channels : int
        Frames and channels per frame of the windows (their product is the ViT's channels).
    patch_size : int
        Side of the square patches in pixels (see :func:`discovery_patch_size`).
    embed_dim : int
        Token width (a multiple of ``heads``).
    depth : int
        Transformer blocks.
    heads : int
        Attention heads per block.
    mlp_ratio : float
        Width of the blocks' MLPs relative to ``embed_dim``.
    token_grid : (int, int)
        Patch grid on which the positional embedding is stored.

    Examples
    --------
    >>> import torch
    >>> vit = DiscoveryViT(4, 1, patch_size=4, embed_dim=32)
    >>> recon, attn = vit.forward_with_attention(torch.randn(2, 4, 1, 18, 30))
    >>> recon.shape, attn[0].shape   # 5 x 8 = 40 patches
    (torch.Size([2, 4, 1, 18, 30]), torch.Size([2, 1, 40, 40]))
    """

    def __init__(
        self,
        in_steps: int,
        channels: int,
        *,
        patch_size: int,
        embed_dim: int = 128,
        depth: int = 1,
        heads: int = 1,
        mlp_ratio: float = 2.0,
        token_grid: tuple[int, int] = (16, 16),
    ) -> None:
        super().__init__()
        for name, value in (("in_steps", in_steps), ("channels", channels)):
            _check_number(name, value, minimum=1)
        for name, value in (("patch_size", patch_size), ("depth", depth), ("heads", heads)):
            _check_number(name, value, minimum=1)
        _check_number("embed_dim", embed_dim, minimum=heads)
        _check_number("mlp_ratio", mlp_ratio, minimum=0.125, integer=False)
        if embed_dim % heads:
            raise DataValidationError(
                f"embed_dim ({embed_dim}) must be a multiple of heads ({heads})"
            )
        if len(token_grid) != 2 or any(not isinstance(g, int) or g < 1 for g in token_grid):
            raise DataValidationError(f"token_grid must be two positive ints, got {token_grid!r}")
        self.in_steps, self.channels, self.patch_size = in_steps, channels, patch_size
        self.embed_dim, self.depth, self.heads, self.mlp_ratio = embed_dim, depth, heads, mlp_ratio
        self.token_grid = (int(token_grid[0]), int(token_grid[1]))
        c = in_steps * channels
        self.embed = nn.Conv2d(c, embed_dim, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.zeros(1, embed_dim, *self.token_grid))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(_Block(embed_dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.ConvTranspose2d(embed_dim, c, patch_size, stride=patch_size)

    def config(self) -> dict[str, Any]:
        """The constructor keywords (JSON-serialisable); ``DiscoveryViT(**config())`` rebuilds."""
        return {
            "in_steps": self.in_steps,
            "channels": self.channels,
            "patch_size": self.patch_size,
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "token_grid": list(self.token_grid),
        }

    def patch_grid(self, grid_shape: tuple[int, int]) -> tuple[int, int]:
        """Patches per column and row, ``(ceil(H / p), ceil(W / p))``, of a grid ``(H, W)``."""
        return _grid(int(grid_shape[0]), int(grid_shape[1]), self.patch_size)

    def _pos(self, gh: int, gw: int) -> torch.Tensor:
        if (gh, gw) == self.token_grid:
            return self.pos
        return F.interpolate(self.pos, size=(gh, gw), mode="bilinear", align_corners=False)

    def forward_with_attention(
        self, x: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The reconstruction ``(B, T, C, H, W)`` and every block's attention ``(B, heads, N, N)``.

        Tokens are numbered row-major over the patch grid (``N = gh * gw``); row ``i`` of an
        attention matrix is how token ``i`` (the query) distributes its attention over all
        tokens (the keys), so every row sums to 1. With ``need_weights=False`` the attention
        is fused (faster, no ``N x N`` matrix kept) and the list is empty.
        """
        _check_window(x)
        b, t, c, h, w = x.shape
        if (t, c) != (self.in_steps, self.channels):
            raise DataValidationError(
                f"the discovery model was built for windows of {self.in_steps} steps x "
                f"{self.channels} channels, got {t} x {c}"
            )
        gh, gw = self.patch_grid((h, w))
        p = self.patch_size
        z = F.pad(x.reshape(b, t * c, h, w), (0, gw * p - w, 0, gh * p - h))
        tokens = (self.embed(z) + self._pos(gh, gw)).flatten(2).transpose(1, 2)  # (B, N, D)
        maps = []
        for block in self.blocks:
            tokens, attn = block(tokens, need_weights)
            if attn is not None:
                maps.append(attn)
        tokens = self.norm(tokens).transpose(1, 2).reshape(b, self.embed_dim, gh, gw)
        out = self.head(tokens)[..., :h, :w]
        return out.reshape(b, t, c, h, w), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` (same shape), with fused attention."""
        return self.forward_with_attention(x, need_weights=False)[0]


def _first_tensor(batch: Any) -> torch.Tensor:
    """A batch may be a tensor or a ``(x, y, ...)`` tuple/list (its first item is used)."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    _check_window(batch, "each batch")
    return batch


def _build_for(x: torch.Tensor, patch_size: int | None, seed: int, **hp: Any) -> DiscoveryViT:
    _, t, c, h, w = x.shape
    p = discovery_patch_size((h, w)) if patch_size is None else patch_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DiscoveryViT(t, c, patch_size=p, token_grid=_grid(h, w, p), **hp)


def _fit_step(model: DiscoveryViT, optimiser: torch.optim.Optimizer, x: torch.Tensor) -> float:
    """One AdamW step on the reconstruction MSE; non-finite pixels (no-data masks) are fed as 0
    and left out of the loss."""
    x = x.to(next(model.parameters()).device, torch.float32)
    finite = torch.isfinite(x)
    if bool(finite.all()):
        loss = F.mse_loss(model(x), x)
    else:
        x = torch.where(finite, x, 0.0)
        loss = ((model(x) - x) ** 2 * finite).sum() / finite.sum().clamp(min=1)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def fit_discovery(
    batches: Iterable[Any],
    *,
    steps: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
    patch_size: int | None = None,
    embed_dim: int = 128,
    depth: int = 1,
    heads: int = 1,
    mlp_ratio: float = 2.0,
    weight_decay: float = 1e-4,
    model: DiscoveryViT | None = None,
    device: str | torch.device | None = None,
) -> DiscoveryViT:
    """Train a :class:`DiscoveryViT` to reconstruct its input windows (MSE on the real pixels).

    Parameters
    ----------
    batches : iterable
        Input windows ``(B, T, C, H, W)`` (normalised like the training batches), or
        ``(x, y, ...)`` tuples whose first item is used. Non-finite pixels (no data) are
        fed to the model as 0 and left out of the loss. Iterated again from the start
        until ``steps`` optimiser steps are done; a one-shot iterator (generator) ends the
        fit when it is exhausted. Grids may differ from batch to batch.
    steps : int
        Optimiser steps (AdamW).
    lr, weight_decay : float
        AdamW settings (constant learning rate).
    seed : int
        Seeds the initialisation (without touching torch's global random state); with the
        same batches the fit is deterministic on CPU.
    patch_size : int, optional
        Default: :func:`discovery_patch_size` of the first batch's grid, whose patch grid
        also becomes the positional embedding's ``token_grid``.
    embed_dim, depth, heads, mlp_ratio : int, int, int, float
        Size of the model (see :class:`DiscoveryViT`); ignored when ``model`` is given.
    model : DiscoveryViT, optional
        Continue fitting this model instead of building a new one.
    device : str or torch.device, optional
        Where to fit (default: the given model's device, else CPU).

    Returns
    -------
    DiscoveryViT
        The fitted model in eval mode; ``model.train_losses`` lists the loss of every step.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(8, 2, 1, 16, 16)
    >>> vit = fit_discovery([x], steps=10, lr=3e-3, embed_dim=16, seed=0)
    >>> vit.train_losses[-1] < vit.train_losses[0]
    True
    """
    _check_number("steps", steps, minimum=1)
    _check_number("lr", lr, minimum=0, integer=False)
    losses: list[float] = []
    optimiser = None
    while len(losses) < steps:
        n_before = len(losses)
        for batch in batches:
            x = _first_tensor(batch)
            if model is None:
                hp = {"embed_dim": embed_dim, "depth": depth, "heads": heads}
                model = _build_for(x, patch_size, seed, mlp_ratio=mlp_ratio, **hp)
            if optimiser is None:
                model.train().to(device or next(model.parameters()).device)
                optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
            losses.append(_fit_step(model, optimiser, x))
            if len(losses) >= steps:
                break
        if len(losses) == n_before:
            break
    if model is None:
        raise DataValidationError("fit_discovery got no batches: the iterable is empty")
    model.train_losses = losses
    return model.eval()


# -- importance -----------------------------------------------------------------------------
def patch_importance(model: DiscoveryViT, x: torch.Tensor) -> torch.Tensor:
    """Total attention each patch receives: ``(B, gh, gw)`` with ``gh, gw = ceil((H, W) / p)``.

    For every block and head the softmax attention ``A`` (rows: queries, columns: keys) is
    summed over its rows, ``importance_j = sum_i A_ij``; the result is averaged over heads and
    then over blocks. Each row of ``A`` sums to 1, so the importances of a sample sum to the
    number of patches ``N`` (mean 1). Runs in float32 without autograd, whatever the
    surrounding autocast. Padding is at the bottom/right and smaller than a patch, so every
    patch holds real pixels: there is no all-padding patch to exclude.

    Examples
    --------
    >>> import torch
    >>> vit = DiscoveryViT(2, 1, patch_size=4, embed_dim=16).eval()
    >>> imp = patch_importance(vit, torch.randn(3, 2, 1, 10, 17))
    >>> imp.shape, round(float(imp[0].sum()), 3)   # 3 x 5 patches
    (torch.Size([3, 3, 5]), 15.0)
    """
    _check_window(x)
    if not isinstance(model, DiscoveryViT):
        raise StgeoTypeError(f"model must be a DiscoveryViT, got {type(model).__name__}")
    device = next(model.parameters()).device
    with torch.no_grad(), torch.autocast(device.type, enabled=False):
        _, maps = model.forward_with_attention(x.to(device, torch.float32))
    received = torch.stack([a.float().sum(dim=-2).mean(dim=1) for a in maps]).mean(dim=0)
    gh, gw = model.patch_grid(x.shape[-2:])
    return received.reshape(x.shape[0], gh, gw)


# -- intervention ---------------------------------------------------------------------------
def _count(k: int | float, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise StgeoTypeError(f"k must be an int (patches) or a float in (0, 1) (share), got {k!r}")
    if isinstance(k, float):
        if not 0.0 < k < 1.0:
            raise DataValidationError(
                f"a float k is a share of the patches and must lie in (0, 1), got {k}; pass an "
                "int for a number of patches"
            )
        return min(n, round(k * n))
    if k < 0:
        raise DataValidationError(f"k must be >= 0, got {k}")
    return min(n, k)


def _selection(importance: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean ``(B, gh, gw)``: the ``k`` lowest importances of each sample (ties: first index)."""
    b, gh, gw = importance.shape
    flat = importance.reshape(b, gh * gw).float()
    order = torch.argsort(flat, dim=1, stable=True)[:, :k]
    sel = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, True)
    return sel.reshape(b, gh, gw)


def _to_pixels(m: torch.Tensor, p: int, h: int, w: int) -> torch.Tensor:
    """Patch-grid tensor ``(B, gh, gw)`` -> pixel tensor ``(B, 1, H, W)``."""
    return m.repeat_interleave(p, dim=1).repeat_interleave(p, dim=2)[:, None, :h, :w]


def _shifted(z: torch.Tensor, p: int, h: int, w: int) -> list[torch.Tensor]:
    """For each neighbour (dy, dx): the pixel at the same position ``dy`` patches down and
    ``dx`` patches right, as ``(..., H, W)``; zero where that lies outside the grid."""
    zp = F.pad(z, (p, p, p, p))
    return [
        zp[..., p + dy * p : p + dy * p + h, p + dx * p : p + dx * p + w] for dy, dx in NEIGHBOURS
    ]


def _neighbour_sum(z: torch.Tensor, p: int) -> torch.Tensor:
    """Sum over the 8 neighbour patches of the pixel at the same position (zero outside).

    Separable: ``side`` = left + right neighbours, then the rows above and below of
    ``z + side`` (3 patches each) are added — 5 additions instead of 8, no subtraction.
    """
    h, w = z.shape[-2:]
    zp = F.pad(z, (p, p, 0, 0))
    side = zp[..., :w] + zp[..., 2 * p : 2 * p + w]
    rows = F.pad(z + side, (0, 0, p, p))
    return rows[..., :h, :] + rows[..., 2 * p : 2 * p + h, :] + side


def _neighbour_mean(z: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over the 8 neighbour patches at the same pixel position; and where one exists."""
    h, w = z.shape[-2:]
    count = _neighbour_sum(torch.ones(1, 1, h, w, dtype=z.dtype, device=z.device), p)
    return _neighbour_sum(z, p) / count.clamp(min=1), count > 0


def _random_neighbour(
    z: torch.Tensor, p: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random in-grid neighbour patch per patch (seeded); its pixels and where they exist."""
    b, _, h, w = z.shape
    gh, gw = _grid(h, w, p)
    rows = torch.arange(gh)[:, None, None]
    cols = torch.arange(gw)[None, :, None]
    dy = torch.tensor([d[0] for d in NEIGHBOURS])
    dx = torch.tensor([d[1] for d in NEIGHBOURS])
    inside = (rows + dy >= 0) & (rows + dy < gh) & (cols + dx >= 0) & (cols + dx < gw)
    scores = torch.rand((b, gh, gw, len(NEIGHBOURS)), generator=generator)
    choice = scores.masked_fill(~inside, -1.0).argmax(dim=-1).to(z.device)
    choice_px = _to_pixels(choice, p, h, w)
    ones = torch.ones(1, 1, h, w, dtype=z.dtype, device=z.device)
    value, valid = torch.zeros_like(z), torch.zeros_like(choice_px, dtype=torch.bool)
    for d, (zs, os_) in enumerate(zip(_shifted(z, p, h, w), _shifted(ones, p, h, w), strict=True)):
        pick = choice_px == d
        value = torch.where(pick, zs, value)
        valid = valid | (pick & (os_ > 0))
    return value, valid


def intervene(
    x: torch.Tensor,
    importance: torch.Tensor,
    *,
    patch_size: int,
    k: int | float = 0.25,
    mode: str = "mean",
    alpha: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A copy of ``x`` whose ``k`` least-attended patches per sample are replaced.

    Parameters
    ----------
    x : torch.Tensor
        Input windows ``(B, T, C, H, W)``; any ``H``, ``W`` (also not multiples of the patch).
    importance : torch.Tensor
        ``(B, gh, gw)`` patch importances (:func:`patch_importance`) on the patch grid
        ``gh, gw = ceil(H / patch_size), ceil(W / patch_size)``.
    patch_size : int
        Side of the patches in pixels (the discovery model's).
    k : int or float
        Patches to intervene per sample: an int count, or a float in (0, 1) as a share of the
        patches (rounded). The ``k`` lowest importances are chosen (ties: lowest row-major
        index first). A grid of a single patch has no neighbour: nothing changes.
    mode : {"mean", "mix"}
        ``"mean"``: every pixel of a chosen patch becomes the mean of the pixels at the same
        position inside the patch in its (up to 8) neighbouring patches of the 3x3 patch
        neighbourhood, the patch itself excluded; neighbours outside the grid and pixel
        positions that fall into the bottom/right padding of a partial edge patch are left
        out of the mean. ``"mix"``: ``alpha * x + (1 - alpha) * n`` with ``n`` the pixel at
        the same position of one neighbour patch drawn uniformly (with ``generator``) among
        the in-grid neighbours of each chosen patch.
    alpha : float
        Weight of the original patch in ``"mix"`` mode (``[0, 1]``).
    generator : torch.Generator, optional
        CPU generator for the ``"mix"`` draws (``"mean"`` uses no randomness).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``. The same patches change in every input frame and
        channel of a sample; all other pixels are bit-identical to ``x``. A pixel of a chosen
        patch with no in-grid neighbour pixel at its position (possible only next to a
        partial edge patch on grids two patches wide) keeps its value. The arithmetic is
        float32; targets are never involved.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(36.0).reshape(1, 1, 1, 6, 6)
    >>> imp = torch.ones(1, 3, 3)
    >>> imp[0, 1, 1] = 0.0                     # the centre patch is the least attended
    >>> out = intervene(x, imp, patch_size=2, k=1)
    >>> out[0, 0, 0, 2:4, 2:4]                 # mean of the 8 surrounding 2x2 patches
    tensor([[14., 15.],
            [20., 21.]])
    >>> bool(torch.equal(out[..., :2, :], x[..., :2, :]))
    True
    """
    _check_window(x)
    _check_number("patch_size", patch_size, minimum=1)
    b, t, c, h, w = x.shape
    gh, gw = _grid(h, w, patch_size)
    if not isinstance(importance, torch.Tensor) or tuple(importance.shape) != (b, gh, gw):
        got = tuple(importance.shape) if isinstance(importance, torch.Tensor) else importance
        raise DataValidationError(
            f"importance must be a tensor (B, ceil(H/p), ceil(W/p)) = {(b, gh, gw)} for x of "
            f"shape {tuple(x.shape)} and patch_size {patch_size}, got {got}"
        )
    if mode not in MODES:
        raise DataValidationError(f"mode must be one of {MODES}, got {mode!r}")
    _check_number("alpha", alpha, minimum=0.0, maximum=1.0, integer=False)
    n = _count(k, gh * gw) if gh * gw > 1 else 0
    if n == 0:
        return x.clone()
    z = x.reshape(b, t * c, h, w).float()
    if mode == "mean":
        value, valid = _neighbour_mean(z, patch_size)
    else:
        neighbour, valid = _random_neighbour(z, patch_size, generator)
        value = alpha * z + (1.0 - alpha) * neighbour
    chosen = _to_pixels(_selection(importance.to(x.device), n), patch_size, h, w)
    out = torch.where(chosen & valid, value.to(x.dtype), x.reshape(b, t * c, h, w))
    return out.reshape(b, t, c, h, w)


# -- the augmentation -----------------------------------------------------------------------
#: settings of the discovery model and its fit; changing one drops a fitted model (replace())
DISCOVERY_SETTINGS = ("patch_size", "embed_dim", "depth", "heads", "fit_steps", "fit_batches",
                      "fit_lr")  # fmt: skip


def mix_seed(*keys: int) -> int:
    """One 63-bit seed from several non-negative ints (NumPy's ``SeedSequence``).

    Examples
    --------
    >>> mix_seed(0, 1, 2) == mix_seed(0, 1, 2) != mix_seed(0, 2, 1)
    True
    """
    for key in keys:
        _check_number("seed key", key, minimum=0)
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


class _FirstBatches:
    """Re-iterable view of the first ``n`` batches of ``batches`` (all when ``n`` is None);
    the source's iterator is closed when a pass ends early (loaders with worker threads)."""

    def __init__(self, batches: Iterable[Any], n: int | None) -> None:
        self.batches, self.n = batches, n

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.batches)
        try:
            yield from (it if self.n is None else itertools.islice(it, self.n))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()


class NuwaAugment:
    """NuwaDynamics as a batch transform ``(x, y) -> (x_aug, y_aug)``: original + intervened.

    Each call draws ``m`` of the ``B`` samples without replacement (``m = share * B``,
    stochastically rounded so that the expected share is exactly ``share``; exact whenever
    ``share * B`` is whole), computes their patch importance with the discovery model,
    intervenes on them (:func:`intervene`) and returns ``cat([x, x_intervened])`` and
    ``cat([y, y[chosen]])``: the first ``B`` samples are the batch unchanged, the targets of
    the intervened copies are the original targets (never touched). Batches grow to about
    ``(1 + share) * B`` — this is the paper's "update" step (train on original plus
    intervened samples) rather than replacing samples.

    Without a ``model`` the augmentation is *unfitted*: :meth:`fit` trains the discovery
    model (:func:`fit_discovery`) on normalised training windows. ``stgeo.train(...,
    augment=NuwaAugment(...))`` or ``augment="nuwa"`` does that on the training split before
    the first epoch, saves it with the run's checkpoints and reloads it on resume.

    All draws come from the augmentation's own CPU ``torch.Generator`` (global random state
    untouched), seeded with ``seed`` and advanced by every call; :meth:`reseed` restarts it
    from ``seed`` and extra keys (training reseeds it from the run seed, epoch and batch, so
    that a resumed run draws exactly what the uninterrupted run drew), and
    :meth:`state_dict` / :meth:`load_state_dict` save and restore its position.

    Parameters
    ----------
    model : DiscoveryViT, optional
        A fitted discovery model (:func:`fit_discovery`); it is put in eval mode. Default:
        none yet (call :meth:`fit`, or let training fit it).
    k : int or float
        Patches intervened per sample (count, or share in (0, 1)); see :func:`intervene`.
    mode : {"mean", "mix"}
        Neighbourhood mean or mix with a random neighbour.
    alpha : float
        Weight of the original patch in ``"mix"`` mode.
    share : float
        Share of each batch that is intervened (and appended), in [0, 1].
    seed : int
        Seed of the augmentation's generator (and, mixed with the seed given to
        :meth:`fit`, of the discovery model's initialisation).
    patch_size : int, optional
        Discovery patch size; default :func:`discovery_patch_size` of the first fitting
        batch's grid. With ``model`` it must equal the model's.
    cache : bool
        Keep importance maps by ``keys`` passed to :meth:`__call__` (int or str window ids
        that identify the exact input, crop included) and reuse them; saved with
        :meth:`save`. Only valid while the discovery model stays fixed.
    fit_steps, fit_batches, fit_lr : int, int or None, float
        How :meth:`fit` trains the discovery model: AdamW steps, the number of distinct
        batches it cycles through (None: as many as the steps need) and the learning rate.
    embed_dim, depth, heads : int
        Size of the discovery model :meth:`fit` builds (see :class:`DiscoveryViT`).

    Examples
    --------
    >>> import torch
    >>> vit = DiscoveryViT(2, 1, patch_size=4, embed_dim=16)
    >>> aug = NuwaAugment(vit, k=2, mode="mix", share=1.0, seed=1)
    >>> x, y = torch.randn(3, 2, 1, 12, 12), torch.randn(3, 1, 1, 12, 12)
    >>> state = aug.state_dict()
    >>> a = aug(x, y)[0]
    >>> aug.load_state_dict(state)
    >>> bool(torch.equal(aug(x, y)[0], a))
    True

    Unfitted, then fitted on a few windows:

    >>> aug = NuwaAugment(k=0.25, share=0.5, fit_steps=2, embed_dim=16)
    >>> aug.fitted
    False
    >>> _ = aug.fit([torch.randn(4, 2, 1, 12, 12)], seed=0)
    >>> aug.fitted, aug.patch_size
    (True, 1)
    """

    def __init__(
        self,
        model: DiscoveryViT | None = None,
        *,
        k: int | float = 0.25,
        mode: str = "mean",
        alpha: float = 0.5,
        share: float = 0.5,
        seed: int = 0,
        patch_size: int | None = None,
        cache: bool = False,
        fit_steps: int = 200,
        fit_batches: int | None = None,
        fit_lr: float = 1e-3,
        embed_dim: int = 128,
        depth: int = 1,
        heads: int = 1,
    ) -> None:
        if model is not None and not isinstance(model, DiscoveryViT):
            raise StgeoTypeError(f"model must be a DiscoveryViT, got {type(model).__name__}")
        if model is not None and patch_size is not None and patch_size != model.patch_size:
            raise DataValidationError(
                f"patch_size {patch_size} differs from the discovery model's "
                f"{model.patch_size}; the patch size is fixed by the fitted model"
            )
        _count(k, 10**9)  # type and range of k
        if mode not in MODES:
            raise DataValidationError(f"mode must be one of {MODES}, got {mode!r}")
        _check_number("alpha", alpha, minimum=0.0, maximum=1.0, integer=False)
        _check_number("share", share, minimum=0.0, maximum=1.0, integer=False)
        _check_number("seed", seed, minimum=0)
        for name, value in (("fit_steps", fit_steps), ("embed_dim", embed_dim)):
            _check_number(name, value, minimum=1)
        for name, value in (("patch_size", patch_size), ("fit_batches", fit_batches)):
            if value is not None:
                _check_number(name, value, minimum=1)
        _check_number("fit_lr", fit_lr, minimum=0.0, integer=False)
        self.k, self.mode, self.alpha, self.share = k, mode, float(alpha), float(share)
        self.seed, self.cache_maps = seed, bool(cache)
        self.fit_steps, self.fit_batches, self.fit_lr = fit_steps, fit_batches, float(fit_lr)
        self.embed_dim, self.depth, self.heads = embed_dim, depth, heads
        self.model: DiscoveryViT | None = None
        self.patch_size = self._requested_patch = patch_size
        self.cache: dict[Hashable, torch.Tensor] | None = {} if cache else None
        self.generator = torch.Generator().manual_seed(seed)
        self.calls = 0
        if model is not None:
            self._set_model(model)

    def _set_model(self, model: DiscoveryViT) -> None:
        self.model = model.eval()
        self.patch_size = model.patch_size
        self.embed_dim, self.depth, self.heads = model.embed_dim, model.depth, model.heads
        if self.cache is not None:
            self.cache.clear()  # maps of another model are stale

    # -- settings -------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """Whether the augmentation has a discovery model (fitted, given or loaded)."""
        return self.model is not None

    @property
    def p(self) -> float:
        """Alias of :attr:`share` (the share of intervened samples per batch)."""
        return self.share

    def settings(self) -> dict[str, Any]:
        """The augmentation's settings (JSON-serialisable; ``NuwaAugment(**settings())``)."""
        return {
            "k": self.k,
            "mode": self.mode,
            "alpha": self.alpha,
            "share": self.share,
            "seed": self.seed,
            "patch_size": self.patch_size,
            "cache": self.cache is not None,
            "fit_steps": self.fit_steps,
            "fit_batches": self.fit_batches,
            "fit_lr": self.fit_lr,
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "heads": self.heads,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"NuwaAugment({args}, fitted={self.fitted})"

    def replace(self, **changes: Any) -> NuwaAugment:
        """A new augmentation with some settings changed (its own generator and cache).

        The fitted discovery model is kept (shared, it is not trained further) unless a
        setting of the discovery (``patch_size``, ``embed_dim``, ``depth``, ``heads``,
        ``fit_steps``, ``fit_batches``, ``fit_lr``) changes: then the copy is unfitted.
        ``stgeo.train(augment={"name": "nuwa", **changes})`` uses this on the registered
        instance.

        Raises
        ------
        StgeoTypeError
            An unknown setting (the message lists the valid ones).

        Examples
        --------
        >>> aug = NuwaAugment(k=0.1).replace(k=0.2, share=1.0)
        >>> aug.k, aug.share, aug.fitted
        (0.2, 1.0, False)
        """
        if "p" in changes:  # the share's short name
            changes["share"] = changes.pop("p")
        settings = self.settings()
        unknown = sorted(set(changes) - set(settings))
        if unknown:
            raise StgeoTypeError(
                f"unknown NuwaDynamics setting(s) {unknown}; valid settings: {sorted(settings)}"
            )
        keep = self.model is not None and not any(
            k in DISCOVERY_SETTINGS and changes[k] != settings[k] for k in changes
        )
        if not keep and "patch_size" not in changes:
            settings["patch_size"] = self._requested_patch  # automatic stays automatic
        return type(self)(self.model if keep else None, **{**settings, **changes})

    # -- discovery ------------------------------------------------------------------------
    def fit(
        self, batches: Iterable[Any], *, seed: int = 0, device: str | torch.device | None = None
    ) -> NuwaAugment:
        """Fit a new discovery model on ``batches`` (normalised training windows); return self.

        ``batches`` yields ``(B, T, C, H, W)`` tensors or ``(x, y, ...)`` tuples (a training
        loader); the first ``fit_batches`` of them are cycled through for ``fit_steps``
        AdamW steps (:func:`fit_discovery`). The initialisation is seeded with
        ``mix_seed(self.seed, seed)``. Under torchrun (an initialised default process group)
        every rank ends with rank 0's weights.
        """
        _check_number("seed", seed, minimum=0)
        model = fit_discovery(
            _FirstBatches(batches, self.fit_batches),
            steps=self.fit_steps,
            lr=self.fit_lr,
            seed=mix_seed(self.seed, seed),
            patch_size=self.patch_size,
            embed_dim=self.embed_dim,
            depth=self.depth,
            heads=self.heads,
            device=device,
        )
        _broadcast_from_rank0(model)
        self._set_model(model)
        return self

    def to(self, device: str | torch.device) -> NuwaAugment:
        """Move the discovery model to ``device`` (where the batches are); return self."""
        if self.model is not None:
            self.model.to(device)
        return self

    def _fitted_model(self) -> DiscoveryViT:
        if self.model is None:
            raise DataValidationError(
                "this NuwaAugment has no discovery model yet: call aug.fit(batches) on "
                "normalised training windows, pass a fitted DiscoveryViT, or give it to "
                "stgeo.train(augment=...), which fits it on the training split"
            )
        return self.model

    # -- the transform ----------------------------------------------------------------------
    def reseed(self, *keys: int) -> None:
        """Restart the generator from ``mix_seed(seed, *keys)`` (e.g. run seed, epoch, batch).

        Examples
        --------
        >>> aug = NuwaAugment()
        >>> aug.reseed(0, 3, 7)
        >>> a = aug.generator.initial_seed()
        >>> aug.reseed(0, 3, 7)
        >>> aug.generator.initial_seed() == a
        True
        """
        self.generator.manual_seed(mix_seed(self.seed, *keys))

    def _draw(self, b: int) -> torch.Tensor:
        whole = math.floor(self.share * b)
        extra = torch.rand((), generator=self.generator).item() < self.share * b - whole
        m = min(b, whole + int(extra))
        return torch.randperm(b, generator=self.generator)[:m].sort().values

    def importance(self, x: torch.Tensor, keys: list[Hashable] | None = None) -> torch.Tensor:
        """Patch importance of ``x`` (:func:`patch_importance`), through the cache if enabled."""
        model = self._fitted_model()
        if self.cache is None or keys is None:
            return patch_importance(model, x)
        if len(keys) != x.shape[0]:
            raise DataValidationError(f"got {len(keys)} keys for {x.shape[0]} samples")
        if any(isinstance(key, bool) or not isinstance(key, (int, str)) for key in keys):
            raise StgeoTypeError("cache keys must be ints or strings (window ids), e.g. [0, 1]")
        todo = [i for i, key in enumerate(keys) if key not in self.cache]
        if todo:
            fresh = patch_importance(model, x[todo])
            for i, imp in zip(todo, fresh, strict=True):
                self.cache[keys[i]] = imp.cpu()
        return torch.stack([self.cache[key] for key in keys]).to(x.device)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, keys: list[Hashable] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cat([x, x_int]), cat([y, y[chosen]]))``; ``keys`` (one per sample) feed the cache."""
        _check_window(x)
        if not isinstance(y, torch.Tensor) or y.shape[0] != x.shape[0]:
            raise DataValidationError("y must be a tensor with the same batch size as x")
        self._fitted_model()
        self.calls += 1
        chosen = self._draw(x.shape[0])
        if chosen.numel() == 0:
            return x, y
        xs = x[chosen.to(x.device)]
        sub_keys = None if keys is None else [keys[i] for i in chosen.tolist()]
        imp = self.importance(xs, sub_keys)
        x_int = intervene(
            xs,
            imp,
            patch_size=self.model.patch_size,  # type: ignore[union-attr]
            k=self.k,
            mode=self.mode,
            alpha=self.alpha,
            generator=self.generator,
        )
        return torch.cat([x, x_int]), torch.cat([y, y[chosen.to(y.device)]])

    def state_dict(self) -> dict[str, Any]:
        """The random state to checkpoint: ``{"generator": uint8 tensor, "calls": int}``."""
        return {"generator": self.generator.get_state(), "calls": self.calls}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the next call continues the saved sequence)."""
        self.generator.set_state(state["generator"])
        self.calls = int(state["calls"])

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path/`` with the discovery weights (safetensors), settings (JSON) and cache.

        ``discovery.safetensors`` holds the model's state dict, ``nuwa.json`` the format,
        the model's constructor keywords and the augmentation settings,
        ``importance.safetensors`` the cached importance maps (when caching). Nothing is
        pickled. Files are written under temporary names and renamed. A folder holding
        files of these names that stgeo did not write (no NuwaDynamics ``nuwa.json``) is
        refused, not overwritten.

        Raises
        ------
        DataValidationError
            Nothing to save yet (unfitted), or ``path`` holds foreign files of these names.
        """
        from safetensors.torch import save_file

        model = self._fitted_model()
        out = Path(path)
        _check_ours(out)
        out.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": model.config(),
            "augment": self.settings(),
        }
        files = {
            WEIGHTS_FILE: {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        }
        if self.cache:
            doc["cache_keys"] = [[type(k).__name__, k] for k in self.cache]
            files[CACHE_FILE] = {str(i): v.contiguous() for i, v in enumerate(self.cache.values())}
        for name, tensors in files.items():
            tmp = out / f".{name}.tmp"
            save_file(tensors, str(tmp), metadata={"format": FORMAT})
            os.replace(tmp, out / name)
        tmp = out / f".{SETTINGS_FILE}.tmp"
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, out / SETTINGS_FILE)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> NuwaAugment:
        """Rebuild a saved augmentation (weights loaded strictly, generator at its seed)."""
        root = Path(path)
        doc = _read_settings(root / SETTINGS_FILE)
        aug = cls(_read_model(root, doc), **_saved_settings(doc))
        if aug.cache is not None and doc.get("cache_keys"):
            maps = _read_tensors(root / CACHE_FILE)
            kinds = {"int": int, "str": str}
            for i, (kind, key) in enumerate(doc["cache_keys"]):
                aug.cache[kinds.get(kind, str)(key)] = maps[str(i)]
        return aug

    def restore(self, path: str | os.PathLike) -> NuwaAugment:
        """Take the discovery model (and cached maps) saved in ``path`` by :meth:`save`.

        Used on resume: the saved model is reused, not refitted. The saved settings must
        equal this augmentation's (a fitted model's patch size aside when this one is
        unfitted and its ``patch_size`` is automatic).

        Raises
        ------
        DataValidationError
            The saved augmentation was made with other settings.
        ModelFileError
            ``path`` holds no valid saved augmentation.
        """
        saved = type(self).load(path)
        mine, theirs = self.settings(), saved.settings()
        if self.patch_size is None and not self.fitted:
            theirs["patch_size"] = None
        diff = sorted(k for k in mine if mine[k] != theirs[k])
        if diff:
            raise DataValidationError(
                f"the NuwaDynamics augmentation saved in {path} was made with other settings "
                f"({', '.join(f'{k}: {theirs[k]!r} != {mine[k]!r}' for k in diff)}); use the "
                "same settings, or start the run over (resume=False or another checkpoint_dir)"
            )
        device = next(self.model.parameters()).device if self.model is not None else None
        self._set_model(saved._fitted_model())
        if device is not None:
            self.to(device)
        if saved.cache:
            self.cache = dict(saved.cache)
        return self


def _broadcast_from_rank0(model: nn.Module) -> None:
    """Under an initialised torch.distributed process group: every rank takes rank 0's
    weights (ranks fit on different shards)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    with torch.no_grad():
        for t in model.state_dict().values():
            dist.broadcast(t, src=0)


def _check_ours(out: Path) -> None:
    """Refuse to overwrite files of our names that stgeo did not write."""
    ours = [out / n for n in (WEIGHTS_FILE, CACHE_FILE, SETTINGS_FILE)]
    if not any(f.exists() for f in ours):
        return
    try:
        _read_settings(out / SETTINGS_FILE)
    except ModelFileError:
        raise DataValidationError(
            f"{out} already holds files named like a saved NuwaDynamics augmentation "
            f"({', '.join(f.name for f in ours if f.exists())}) that stgeo did not write; "
            "save to another folder"
        ) from None


def _saved_settings(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor keywords of a saved augmentation (older files: ``p`` is ``share``)."""
    settings = dict(doc["augment"])
    if "p" in settings:
        settings["share"] = settings.pop("p")
    settings.pop("patch_size", None)  # fixed by the model
    for name in ("embed_dim", "depth", "heads"):
        settings.pop(name, None)
    return settings


def _read_model(root: Path, doc: Mapping[str, Any]) -> DiscoveryViT:
    try:
        model = DiscoveryViT(**{**doc["model"], "token_grid": tuple(doc["model"]["token_grid"])})
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"{root / SETTINGS_FILE} has no valid model settings: {err}") from None
    tensors = _read_tensors(root / WEIGHTS_FILE)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ModelFileError(f"{root / WEIGHTS_FILE} does not fit {SETTINGS_FILE}: {err}") from None
    return model


def _read_settings(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFileError(f"no NuwaDynamics settings at {path} (expected {SETTINGS_FILE})")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a {FORMAT} settings file")
    if doc.get("version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {doc['version']}; this stgeo reads up to "
            f"{FORMAT_VERSION}: upgrade stgeo"
        )
    return doc


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Safetensors only: anything else (a pickle, a zip checkpoint) is refused unparsed."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelFileError(f"no weights file at {path}")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise ModelFileError(
            f"{path} is not a valid safetensors file ({err}); stgeo never unpickles files"
        ) from None

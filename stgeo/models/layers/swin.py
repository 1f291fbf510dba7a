"""Swin Transformer blocks on any token grid: (shifted) window attention with masks.

A token grid ``(B, h, w, C)`` is cut into non-overlapping windows; every window runs
multi-head self-attention with a learned relative position bias (Liu et al., ICCV 2021).
Alternate blocks shift the windows by half a window (a cyclic roll of the grid), and an
attention mask stops tokens that the roll made neighbours without being neighbours (the
wrapped border strip) from attending to each other.

**Grids that are not multiples of the window.** Per axis, the grid of ``n`` tokens is cut
into ``k = ceil(n / window)`` windows of ``ceil(n / k) <= window`` tokens (balanced
windows: 16 tokens with ``window=7`` give three windows of 6, not three of 7), and the
remaining ``k * ceil(n / k) - n < k`` positions are padding. Padded positions are masked as
keys, so the output at real tokens does not depend on the padding at all. An axis that fits
in one window is not shifted. Grids with ``h != w`` get rectangular windows when one axis
is shorter than the window.

**One gather instead of pad, roll and partition.** :func:`window_geometry` precomputes, for
a grid, window and shift, the index of the source token of every window slot and the
inverse index; a block then needs one ``index_select`` to form the windows and one to put
the result back (no padded copy of the grid is made). Geometries are cached per grid.

Examples
--------
>>> import torch
>>> from stgeo.models.layers.swin import SwinBlock, window_geometry
>>> blk = SwinBlock(16, heads=2, window=4, shifted=True)
>>> geo = window_geometry(9, 6, 4, shifted=True)
>>> geo.window, geo.shift, geo.padded
((3, 3), (1, 1), (9, 6))
>>> blk(torch.randn(2, 9 * 6, 16), geo).shape
torch.Size([2, 54, 16])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from .common import DropPath, check_hyperparameter
from .transformer import FeedForward, attend, check_heads

__all__ = ["SwinBlock", "WindowAttention", "WindowGeometry", "balanced_window", "window_geometry"]


def balanced_window(n: int, window: int) -> int:
    """Largest window ``<= window`` that cuts ``n`` tokens into ``ceil(n / window)`` windows.

    Examples
    --------
    >>> [balanced_window(n, 7) for n in (3, 7, 8, 16, 21, 64)]
    [3, 7, 4, 6, 7, 7]
    """
    k = -(-n // window)
    return -(-n // k)


@dataclass(frozen=True)
class WindowGeometry:
    """How a ``grid`` of tokens maps onto (shifted) windows; see :func:`window_geometry`.

    Attributes
    ----------
    grid : (int, int)
        Real token grid (h, w).
    window, shift, padded : (int, int)
        Window size, cyclic shift and padded grid per axis.
    gather : torch.Tensor
        ``(n_windows * window_tokens,)`` index of each window slot's token in the flattened
        grid; padding slots point at token 0 (they are masked as keys and their outputs are
        never read back, so any real token serves and no padded copy is made).
    scatter : torch.Tensor
        ``(h * w,)`` window slot of each real token (the inverse of ``gather``).
    mask : torch.Tensor or None
        ``(n_windows, N, N)`` additive mask (0 or -inf), ``None`` when nothing is masked.
    rel_index : torch.Tensor
        ``(N * N,)`` row of the relative-position bias table for each pair of window slots.
    """

    grid: tuple[int, int]
    window: tuple[int, int]
    shift: tuple[int, int]
    padded: tuple[int, int]
    gather: torch.Tensor
    scatter: torch.Tensor
    mask: torch.Tensor | None
    rel_index: torch.Tensor

    @property
    def tokens(self) -> int:
        """Tokens per window."""
        return self.window[0] * self.window[1]


def _axis(n: int, window: int, shifted: bool) -> tuple[int, int, int, torch.Tensor, torch.Tensor]:
    """Window, shift and padded length of one axis; original index and wrap flag per slot.

    Slot ``r`` of the rolled, padded axis holds original position ``(r + shift) % padded``;
    slots ``r >= padded - shift`` hold the wrapped strip (the first ``shift`` positions).
    """
    size = balanced_window(n, window)
    padded = -(-n // size) * size
    shift = size // 2 if shifted and padded > size else 0
    r = torch.arange(padded)
    original = (r + shift) % padded
    wrapped = r >= padded - shift if shift else torch.zeros(padded, dtype=torch.bool)
    # window-major layout: (n_windows, size)
    return size, shift, padded, original.view(-1, size), wrapped.view(-1, size)


def _relative_index(wy: int, wx: int, window: int) -> torch.Tensor:
    iy, ix = torch.meshgrid(torch.arange(wy), torch.arange(wx), indexing="ij")
    iy, ix = iy.flatten(), ix.flatten()
    dy = iy[:, None] - iy[None, :] + window - 1
    dx = ix[:, None] - ix[None, :] + window - 1
    return (dy * (2 * window - 1) + dx).flatten()


@functools.lru_cache(maxsize=64)
def window_geometry(
    h: int, w: int, window: int, shifted: bool, device: torch.device | str = "cpu"
) -> WindowGeometry:
    """Precompute the (shifted) window layout of an ``h x w`` token grid.

    Parameters
    ----------
    h, w : int
        Token grid.
    window : int
        Largest window side; the actual window per axis is :func:`balanced_window`.
    shifted : bool
        Shift the windows by half a window (axes that fit in one window are not shifted).
    device : torch.device or str
        Where the index and mask tensors live.

    Returns
    -------
    WindowGeometry

    Examples
    --------
    >>> g = window_geometry(4, 4, 2, shifted=True)
    >>> g.window, g.shift, tuple(g.mask.shape)
    ((2, 2), (1, 1), (4, 4, 4))
    >>> window_geometry(4, 4, 2, shifted=False).mask is None
    True
    """
    wy, sy, hp, oy, fy = _axis(h, window, shifted)
    wx, sx, wp, ox, fx = _axis(w, window, shifted)
    # slot layout (window row, window col, row in window, col in window)
    oy, fy = oy[:, None, :, None], fy[:, None, :, None]
    ox, fx = ox[None, :, None, :], fx[None, :, None, :]
    valid = ((oy < h) & (ox < w)).reshape(-1, wy * wx)
    src = torch.where(valid, (oy * w + ox).reshape(valid.shape), 0).flatten()
    scatter = torch.empty(h * w, dtype=torch.long)
    scatter[src[valid.flatten()]] = torch.arange(src.numel())[valid.flatten()]
    region = (fy.long() * 2 + fx.long()).reshape(valid.shape)
    # a pair may attend iff both lie in the same region of the window and the key is real
    # (padding queries may see padding keys, so that no row of the mask is empty)
    allowed = (region[:, :, None] == region[:, None, :]) & (valid[:, None, :] | ~valid[:, :, None])
    mask = None
    if not bool(allowed.all()):
        mask = torch.zeros(allowed.shape).masked_fill_(~allowed, float("-inf")).to(device)
    return WindowGeometry(
        grid=(h, w),
        window=(wy, wx),
        shift=(sy, sx),
        padded=(hp, wp),
        gather=src.to(device),
        scatter=scatter.to(device),
        mask=mask,
        rel_index=_relative_index(wy, wx, window).to(device),
    )


class WindowAttention(nn.Module):
    """Multi-head self-attention inside (shifted) windows with a relative position bias.

    Parameters
    ----------
    dim : int
        Token width.
    heads : int
        Attention heads (a divisor of ``dim``).
    window : int
        Largest window side; the bias table has ``(2 * window - 1) ** 2`` rows per head.
    drop : float
        Dropout on the output projection.

    Examples
    --------
    >>> att = WindowAttention(8, heads=2, window=3)
    >>> att(torch.randn(1, 20, 8), window_geometry(4, 5, 3, True)).shape
    torch.Size([1, 20, 8])
    """

    def __init__(self, dim: int, heads: int, window: int, drop: float = 0.0) -> None:
        super().__init__()
        check_heads(dim, heads)
        check_hyperparameter("window", window)
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def attention_bias(self, geo: WindowGeometry, batch: int, dtype: torch.dtype) -> torch.Tensor:
        """Additive attention bias: relative position bias plus the window mask.

        Shaped ``(heads, N, N)`` without a mask, else ``(batch * n_windows, heads, N, N)``.
        """
        n = geo.tokens
        bias = self.bias_table[geo.rel_index].view(n, n, self.heads).permute(2, 0, 1)
        if geo.mask is None:
            return bias.to(dtype)
        full = bias[None] + geo.mask[:, None]
        return full.to(dtype).expand(batch, *full.shape).reshape(-1, self.heads, n, n)

    def forward(self, x: torch.Tensor, geo: WindowGeometry) -> torch.Tensor:
        """Attend within the windows of ``geo``; ``x`` is ``(B, h*w, dim)``, row-major tokens."""
        b, _, dim = x.shape
        n = geo.tokens
        qkv = self.qkv(x).index_select(1, geo.gather)
        qkv = qkv.view(b, -1, n, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).flatten(1, 2).unbind(0)
        bias = self.attention_bias(geo, b, q.dtype)
        y = attend(q, k, v, bias)
        y = y.transpose(1, 2).reshape(b, -1, dim).index_select(1, geo.scatter)
        return self.drop(self.proj(y))


class SwinBlock(nn.Module):
    """Pre-norm Swin block on ``(B, h*w, dim)`` tokens::

        x = x + drop_path(W-MSA or SW-MSA(LN(x)))
        x = x + drop_path(MLP(LN(x)))

    ``shifted`` only records which geometry the block expects (see :func:`window_geometry`);
    the caller passes the geometry, computed once per grid for all blocks.

    Examples
    --------
    >>> blk = SwinBlock(8, heads=2, window=3)
    >>> blk(torch.randn(2, 25, 8), window_geometry(5, 5, 3, False)).shape
    torch.Size([2, 25, 8])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int,
        *,
        shifted: bool = False,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.shifted = shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio, drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, geo: WindowGeometry) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), geo))
        return x + self.drop_path(self.mlp(self.norm2(x)))

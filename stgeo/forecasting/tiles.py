"""Any-grid application of a model: pad to its multiple, run on the whole grid or tile by tile.

A model trained on one grid (or on crops of it) forecasts any other grid. :class:`Tiling`
says how: the grid is replicate-padded at the bottom/right up to the model's ``multiple``
(the same padding the networks apply themselves, so a fully convolutional model gives the
same numbers as on the unpadded grid) and either run whole (``tile=None``) or cut into
overlapping tiles of ``tile`` pixels, run ``batch`` tiles at a time (memory bounded by the
tile size times ``batch``, not by the grid) and blended:

* tile origins are spread evenly, multiples of ``multiple``, adjacent tiles overlapping by at
  least ``overlap`` pixels (a fraction of the tile, default 1/4);
* in each overlap the weight of a tile is 0 on the quarter of the overlap nearest its inner
  edge (its padding artefacts are never used), rises as a raised cosine over the middle half
  and is 1 beyond; at the grid border it is 1 (borders are not dimmed). The weights are
  separable and normalised per axis, so at every pixel they sum to exactly 1.

For a fully convolutional model whose receptive-field radius is at most a quarter of the
overlap, the tiled forecast equals the whole-grid one (up to float rounding).

Examples
--------
>>> import torch
>>> t = Tiling(tile=(16, 16), overlap=0.25, batch=4)
>>> plan = t.plan((40, 30))
>>> plan.rows, plan.cols, len(plan)
((0, 12, 24), (0, 7, 14), 9)
>>> x = torch.randn(2, 3, 1, 40, 30)
>>> y = t.apply(lambda v: v[:, -1:] * 2, x)           # a pixel-wise "model"
>>> bool(torch.allclose(y, x[:, -1:] * 2, atol=1e-6))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataValidationError, StgeoTypeError

__all__ = ["TilePlan", "Tiling", "blend_profile"]


def _ramp(n: int) -> np.ndarray:
    """Weights rising over an overlap of ``n`` pixels: 0 on the first quarter, a raised
    cosine over the middle half, 1 on the last quarter (``ramp + ramp[::-1] == 1``)."""
    margin = n // 4
    width = n - 2 * margin
    d = np.arange(n, dtype=np.float64) - margin + 0.5
    return np.sin(0.5 * np.pi * np.clip(d / max(width, 1), 0.0, 1.0)) ** 2


def blend_profile(origins: tuple[int, ...], tile: int, size: int) -> np.ndarray:
    """Per-axis blending weights ``(n_tiles, tile)`` of tiles at ``origins`` along an axis.

    Each tile ramps up over its overlap with the previous tile and down over its overlap
    with the next one (see :class:`Tiling`); the profiles are then divided by their sum at
    every pixel, so they sum to 1 along the axis.

    Examples
    --------
    >>> w = blend_profile((0, 8), 16, 24)
    >>> w.shape, float(w[0, :8].min()), float(w[1, 8:].min())
    ((2, 16), 1.0, 1.0)
    >>> total = np.zeros(24); total[:16] += w[0]; total[8:] += w[1]
    >>> bool(np.allclose(total, 1.0))
    True
    """
    n = len(origins)
    prof = np.ones((n, tile), dtype=np.float64)
    for k in range(n - 1):
        ov = origins[k] + tile - origins[k + 1]
        if ov > 0:
            up = _ramp(ov)
            prof[k + 1, :ov] *= up
            prof[k, tile - ov :] *= up[::-1]
    total = np.zeros(size, dtype=np.float64)
    for k, o in enumerate(origins):
        total[o : o + tile] += prof[k]
    if np.any(total <= 0):  # pragma: no cover - prevented by the layout
        raise DataValidationError("tiles leave pixels without weight; use a larger overlap")
    for k, o in enumerate(origins):
        prof[k] /= total[o : o + tile]
    return prof


def _origins(size: int, tile: int, overlap: int, multiple: int) -> tuple[int, ...]:
    """Evenly spread tile origins (multiples of ``multiple``) with overlaps >= ``overlap``."""
    if tile >= size:
        return (0,)
    n = 1 + math.ceil((size - tile) / (tile - overlap))
    steps = np.linspace(0, (size - tile) / multiple, n)
    return tuple(int(v) * multiple for v in np.round(steps))


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one grid are and how they are blended (see :meth:`Tiling.plan`).

    Attributes
    ----------
    grid : (int, int)
        The (padded) grid the tiles cover.
    tile : (int, int)
        Tile size (at most the grid).
    rows, cols : tuple of int
        Tile origins along y and x.
    """

    grid: tuple[int, int]
    tile: tuple[int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-axis blending profiles ``(len(rows), th)`` and ``(len(cols), tw)``."""
        return (
            blend_profile(self.rows, self.tile[0], self.grid[0]),
            blend_profile(self.cols, self.tile[1], self.grid[1]),
        )


def _check_tile(tile: Any) -> tuple[int, int] | None:
    if tile is None:
        return None
    try:
        th, tw = (int(v) for v in tile)
    except (TypeError, ValueError):
        raise StgeoTypeError(f"a tile size must be two integers (H, W), got {tile!r}") from None
    if th < 1 or tw < 1:
        raise DataValidationError(f"tile sizes must be positive, got {tile!r}")
    return th, tw


@dataclass(frozen=True)
class Tiling:
    """How a model is applied to a grid: padded to ``multiple``, whole or in blended tiles.

    Parameters
    ----------
    tile : (int, int), optional
        Tile size; ``None`` runs the whole grid in one pass. Must be multiples of
        ``multiple``; clipped to the (padded) grid.
    overlap : float or int
        Overlap of adjacent tiles: a fraction of the tile (``0 <= overlap <= 0.5``) or a
        number of pixels (int, at most half the tile). Rounded down to ``multiple``.
    multiple : int
        The model's H, W divisibility (:class:`stgeo.models.GridRule`).
    batch : int
        Tiles per forward pass (bounds memory).

    Examples
    --------
    >>> Tiling(tile=(64, 64), overlap=16, multiple=4).plan((100, 64)).rows
    (0, 36)
    """

    tile: tuple[int, int] | None = None
    overlap: float | int = 0.25
    multiple: int = 1
    batch: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "tile", _check_tile(self.tile))
        ov = self.overlap
        if isinstance(ov, bool) or not isinstance(ov, (int, float)):
            raise StgeoTypeError(f"tile_overlap must be a fraction or pixels, got {ov!r}")
        if isinstance(ov, float) and not 0.0 <= ov <= 0.5:
            raise DataValidationError(
                f"tile_overlap as a fraction of the tile must be in [0, 0.5], got {ov}"
            )
        if isinstance(ov, int) and ov < 0:
            raise DataValidationError(f"tile_overlap must be >= 0 pixels, got {ov}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise DataValidationError(f"the tile batch must be a positive int, got {self.batch!r}")
        if self.tile is not None and any(t % self.multiple for t in self.tile):
            m = self.multiple
            near = [f"{(t // m) * m or m} or {(t // m + 1) * m}" for t in self.tile]
            raise DataValidationError(
                f"tile size {self.tile[0]}x{self.tile[1]} is not a multiple of {m}, which the "
                f"model needs; use {near[0]} rows and {near[1]} columns"
            )

    def padded(self, grid: tuple[int, int]) -> tuple[int, int]:
        """``grid`` rounded up to ``multiple``."""
        m = self.multiple
        return (-(-int(grid[0]) // m) * m, -(-int(grid[1]) // m) * m)

    def _overlap_px(self, tile: int) -> int:
        ov = self.overlap
        px = round(ov * tile) if isinstance(ov, float) else int(ov)
        if px > tile // 2:
            raise DataValidationError(
                f"tile_overlap of {px} pixels is more than half the tile ({tile}); use at "
                f"most {tile // 2}"
            )
        return (px // self.multiple) * self.multiple

    def plan(self, grid: tuple[int, int]) -> TilePlan:
        """The tiles covering ``grid`` (padded to ``multiple`` first)."""
        g = self.padded(grid)
        if self.tile is None:
            return TilePlan(g, g, (0,), (0,))
        t = (min(self.tile[0], g[0]), min(self.tile[1], g[1]))
        rows = _origins(g[0], t[0], self._overlap_px(t[0]), self.multiple)
        cols = _origins(g[1], t[1], self._overlap_px(t[1]), self.multiple)
        return TilePlan(g, t, rows, cols)

    def apply(self, fn: Callable[[Any], Any], x: Any) -> Any:
        """``fn`` (``(N, T, C, h, w) -> (N, T_out, C, h, w)``) applied to ``x`` ``(B, T, C, H, W)``.

        ``x`` is replicate-padded to the plan's grid, run whole or tile by tile (``batch``
        tiles per call, blended) and cropped back to ``(H, W)``.
        """
        import torch
        import torch.nn.functional as F

        b, t, c, h, w = x.shape
        plan = self.plan((h, w))
        gh, gw = plan.grid
        if (gh, gw) != (h, w):
            x = F.pad(x.reshape(b, t * c, h, w), (0, gw - w, 0, gh - h), mode="replicate")
            x = x.reshape(b, t, c, gh, gw)
        if len(plan) == 1:
            return fn(x)[..., :h, :w]
        wy, wx = (torch.as_tensor(p, dtype=torch.float32, device=x.device) for p in plan.weights())
        th, tw = plan.tile
        jobs = [(i, r, j, q) for i, r in enumerate(plan.rows) for j, q in enumerate(plan.cols)]
        jobs = [(s, *job) for s in range(b) for job in jobs]
        out = None
        for k in range(0, len(jobs), self.batch):
            part = jobs[k : k + self.batch]
            y = fn(torch.stack([x[s, :, :, r : r + th, q : q + tw] for s, _, r, _, q in part]))
            if out is None:
                out = y.new_zeros((b, y.shape[1], y.shape[2], gh, gw), dtype=torch.float32)
            for n, (s, i, r, j, q) in enumerate(part):
                out[s, :, :, r : r + th, q : q + tw] += y[n].float() * (wy[i][:, None] * wx[j])
        return out[..., :h, :w]

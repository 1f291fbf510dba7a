"""NuwaDynamics plots: the patch importance beside an original and an intervened input frame.

:func:`plot_intervention` takes the tensors (or arrays) of :mod:`stgeo.augment.nuwa` — input
windows ``(B, T, C, H, W)``, patch importance ``(B, gh, gw)`` and the intervened windows — and
draws four panels for one sample and channel: the importance map on the pixel grid, the
last input frame the same frame after the intervention and their difference, with the intervened
patches outlined. The panels are plain image axes (row 0 at the top), not maps: the batches are
normalised model inputs, not georeferenced fields.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(1, 2, 1, 12, 16))
>>> imp = np.ones((1, 3, 4))
>>> x_aug = x.copy()
>>> x_aug[0, :, :, 4:8, 8:12] = 0.0            # patch (1, 2) intervened
>>> fig = plot_intervention(x, imp, x_aug, patch_size=4)
>>> [ax.get_title() for ax in fig.axes[:4]]  # doctest: +NORMALIZE_WHITESPACE
['patch importance', 'input (last frame)', 'intervened: 1 of 12 patches',
 'intervened - input']
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import DataValidationError
from .files import check_figure_path, save_figure

__all__ = ["plot_intervention"]


def _as_array(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor (bf16 has no numpy dtype: go through float32)
        a = a.detach().cpu().float().numpy()
    out = np.asarray(a, dtype=float)
    if not np.issubdtype(out.dtype, np.number):
        raise DataValidationError(f"{name} must hold numbers, got dtype {out.dtype}")
    return out


def _windows(x: Any, x_aug: Any) -> tuple[np.ndarray, np.ndarray]:
    xa, xb = _as_array(x, "x"), _as_array(x_aug, "x_aug")
    if xa.ndim == 4:  # one window (T, C, H, W)
        xa, xb = xa[None], xb[None]
    if xa.ndim != 5 or xa.shape != xb.shape:
        raise DataValidationError(
            "x and x_aug must be windows of the same shape, (B, T, C, H, W) or (T, C, H, W); "
            f"got {np.shape(xa)} and {np.shape(xb)}"
        )
    return xa, xb


def _patch_size(h: int, w: int, gh: int, gw: int, patch_size: int | None) -> int:
    """The patch size matching a ``(gh, gw)`` patch grid on ``(h, w)`` (given or unique)."""
    fits = [p for p in range(1, max(h, w) + 1) if -(-h // p) == gh and -(-w // p) == gw]
    if patch_size is not None:
        if patch_size not in fits:
            raise DataValidationError(
                f"patch_size {patch_size} gives a {-(-h // patch_size)} x {-(-w // patch_size)} "
                f"patch grid on {h} x {w}, but the importance map is {gh} x {gw}"
            )
        return patch_size
    if len(fits) != 1:
        raise DataValidationError(
            f"cannot tell the patch size of a {gh} x {gw} importance map on a {h} x {w} grid "
            f"(candidates: {fits or 'none'}); pass patch_size="
        )
    return fits[0]


def _changed_patches(xa: np.ndarray, xb: np.ndarray, p: int, gh: int, gw: int) -> np.ndarray:
    """Boolean ``(gh, gw)``: patches with any pixel changed in any frame or channel."""
    h, w = xa.shape[-2:]
    diff = np.zeros((gh * p, gw * p), dtype=bool)
    diff[:h, :w] = np.any(xa != xb, axis=(0, 1))
    return diff.reshape(gh, p, gw, p).any(axis=(1, 3))


def _outline(ax: Any, changed: np.ndarray, p: int, h: int, w: int) -> None:
    from matplotlib.patches import Rectangle

    for i, j in zip(*np.nonzero(changed), strict=True):
        x0, y0 = j * p - 0.5, i * p - 0.5
        width, height = min(p, w - j * p), min(p, h - i * p)
        ax.add_patch(Rectangle((x0, y0), width, height, fill=False, ec="red", lw=1.2))


def plot_intervention(
    x: Any,
    importance: Any,
    x_aug: Any,
    path: str | os.PathLike | None = None,
    *,
    sample: int = 0,
    channel: int = 0,
    patch_size: int | None = None,
    cmap: str = "viridis",
    dpi: int = 100,
    overwrite: bool = False,
) -> Any:
    """Importance map, last input frame, intervened last frame and their difference.

    Parameters
    ----------
    x, x_aug : torch.Tensor or numpy.ndarray
        Input windows before and after :func:`stgeo.augment.nuwa.intervene`,
        ``(B, T, C, H, W)`` (or one window ``(T, C, H, W)``).
    importance : torch.Tensor or numpy.ndarray
        Patch importance ``(B, gh, gw)`` (or ``(gh, gw)``) from
        :func:`stgeo.augment.nuwa.patch_importance`.
    path : str or path-like, optional
        Write the figure there (suffix picks the format). An existing file is kept unless
        ``overwrite=True``; a folder or an unknown suffix is refused before drawing.
    sample, channel : int
        Which sample of the batch and which channel to draw.
    patch_size : int, optional
        Patch size in pixels; by default inferred from the grid and the importance map
        (an error asks for it when several sizes fit).
    cmap : str
        Colour map of the two frames (they share one colour scale).
    dpi : int
        Resolution of the saved figure.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        Four image panels (plus colour bars). Intervened patches — those with any pixel
        changed in any frame or channel — are outlined in red on every panel.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> x = np.zeros((2, 3, 1, 9, 14))
    >>> fig = plot_intervention(x, np.ones((2, 3, 4)), x, sample=1, patch_size=4)
    >>> fig.axes[2].get_title()
    'intervened: 0 of 12 patches'
    """
    import matplotlib.pyplot as plt

    if path is not None:
        check_figure_path(path, overwrite=overwrite, dpi=dpi)  # before any drawing
    xa, xb = _windows(x, x_aug)
    imp = _as_array(importance, "importance")
    imp = imp[None] if imp.ndim == 2 else imp
    if imp.ndim != 3 or imp.shape[0] != xa.shape[0]:
        raise DataValidationError(
            f"importance must be (B, gh, gw) with B = {xa.shape[0]}, got shape {imp.shape}"
        )
    if not (0 <= sample < xa.shape[0] and 0 <= channel < xa.shape[2]):
        raise DataValidationError(
            f"sample {sample} / channel {channel} out of range for windows of shape {xa.shape}"
        )
    h, w = xa.shape[-2:]
    gh, gw = imp.shape[1:]
    p = _patch_size(h, w, gh, gw, patch_size)
    changed = _changed_patches(xa[sample], xb[sample], p, gh, gw)
    before, after = xa[sample, -1, channel], xb[sample, -1, channel]
    vmin, vmax = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
    size = (16.0, 4.0 * h / max(w, 1) + 0.8)
    fig, axes = plt.subplots(1, 4, figsize=size, layout="constrained")
    extent = (-0.5, gw * p - 0.5, gh * p - 0.5, -0.5)
    im0 = axes[0].imshow(imp[sample], cmap="magma", extent=extent, interpolation="nearest")
    im1 = axes[1].imshow(before, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    axes[2].imshow(after, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    span = float(np.abs(after - before).max()) or 1.0
    im3 = axes[3].imshow(after - before, cmap="RdBu_r", vmin=-span, vmax=span)
    titles = ("patch importance", "input (last frame)")
    titles += (f"intervened: {int(changed.sum())} of {gh * gw} patches", "intervened - input")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_title(title)
        _outline(ax, changed, p, h, w)
    fig.colorbar(im0, ax=axes[0], shrink=0.8, label="attention received")
    fig.colorbar(im1, ax=list(axes[1:3]), shrink=0.8, label=f"channel {channel}")
    fig.colorbar(im3, ax=axes[3], shrink=0.8, label="change")
    if path is not None:
        save_figure(fig, path, dpi=dpi, overwrite=overwrite)
    return fig

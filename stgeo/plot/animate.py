"""Animations of a forecast (or of observations) to GIF or MP4.

GIF is written with matplotlib's Pillow writer (always available); MP4 needs ``ffmpeg`` on
the ``PATH`` (e.g. ``apt-get install ffmpeg``).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import tempfile, pathlib, stgeo
>>> ds = stgeo.testing.storm_cells(n_times=8, shape=(24, 24), seed=0)
>>> fc = ds.st.forecast(model="persistence", lead_steps=3)
>>> out = animate_forecast(fc, pathlib.Path(tempfile.mkdtemp()) / "fc.gif", dpi=40)
>>> out.suffix
'.gif'
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DependencyError
from .files import check_figure_path
from .maps import (
    PANEL_WIDTH,
    _draw,
    _grid,
    _make_axes,
    _masked_error,
    _panel_height,
    _panel_titles,
    _plan,
    _set_field,
    _setup_axes,
    _styles,
)
from .styles import FieldStyle

__all__ = ["animate_forecast"]

logger = logging.getLogger("stgeo.plot")


#: animation file suffixes: GIF (Pillow) and video containers (ffmpeg)
ANIMATION_FORMATS = ("gif", "mp4", "m4v", "mov", "mkv", "webm")


def _writer(path: Path, fps: float) -> Any:
    """The matplotlib writer for ``path`` (its suffix is one of :data:`ANIMATION_FORMATS`)."""
    from matplotlib import animation

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if not animation.writers.is_available("ffmpeg"):
        raise DependencyError(
            f"writing {suffix} needs ffmpeg on the PATH, which was not found; install it "
            "(e.g. `apt-get install ffmpeg` or `conda install ffmpeg`) or write a .gif "
            "instead (Pillow)"
        )
    return animation.FFMpegWriter(fps=fps)


def _freeze_layout(fig: Any, axes: Any) -> None:
    """Lay the figure out once; frames then only swap data and titles (much faster).

    Constrained layout and cartopy's gridline labels are otherwise recomputed for every
    frame although the axes never move.
    """
    fig.canvas.draw()
    fig.set_layout_engine("none")
    for ax in axes:
        for gl in ax.artists:
            if type(gl).__name__ == "Gridliner" and hasattr(gl, "_auto_update"):
                gl._auto_update = False


def _colorbars(
    fig: Any,
    axes: Any,
    artists: list[Any],
    style: FieldStyle,
    estyle: FieldStyle | None,
    has_obs: bool,
) -> None:
    """Colour bars of the animation: under the field and error panels, or beside one panel."""
    if has_obs and estyle is not None:
        fig.colorbar(
            artists[0],
            ax=list(axes[:2]),
            orientation="horizontal",
            shrink=0.7,
            aspect=40,
            **style.colorbar_kwargs(),
        )
        fig.colorbar(
            artists[2],
            ax=axes[2],
            orientation="horizontal",
            shrink=0.9,
            aspect=20,
            **estyle.colorbar_kwargs(),
        )
    else:
        fig.colorbar(
            artists[0], ax=axes[0], orientation="vertical", shrink=0.85, **style.colorbar_kwargs()
        )


def animate_forecast(
    fc: xr.DataArray | xr.Dataset,
    path: str | os.PathLike,
    obs: xr.DataArray | xr.Dataset | None = None,
    *,
    init_time: Any = None,
    variable: str | None = None,
    channel: Any = None,
    fps: float = 4.0,
    dpi: int = 80,
    cmap: Any = None,
    levels: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    error_limit: float | None = None,
    coastlines: bool = True,
    borders: bool = True,
    gridlines: bool = True,
    map_data_dir: str | os.PathLike | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Animate every lead time of one forecast (or every time of a series) to GIF/MP4.

    Parameters
    ----------
    fc : xarray.DataArray or Dataset
        A forecast ``(init_time, lead_time, [channel], y, x)``, or a plain
        ``(time, [channel], y, x)`` series (then every time is a frame).
    path : path
        Output file; ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg; also ``.m4v``, ``.mov``,
        ``.mkv``, ``.webm``). An existing file is kept unless ``overwrite=True``; a folder or
        another suffix is refused before drawing.
    obs : xarray.DataArray or Dataset, optional
        Observations ``(time, ...)``; each frame then shows forecast, observation and error.
    init_time : time or int, optional
        Initial time to animate (default the first).
    variable, channel : optional
        Variable of a Dataset / channel to draw.
    fps : float
        Frames per second.
    dpi : int
        Resolution of the frames.
    cmap, levels, vmin, vmax, error_limit
        Colour overrides (one scale for all frames).
    coastlines, borders, gridlines : bool
        Map decorations.
    map_data_dir : path, optional
        Folder with coastline/border shapefiles.
    title : str, optional
        Figure title.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    DependencyError
        An MP4 was asked for but ffmpeg is not installed.
    OutputExistsError
        ``path`` is a folder, or an existing file and ``overwrite`` is False.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tempfile, pathlib, stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=6, shape=(24, 24), seed=0)
    >>> p = animate_forecast(ds.rain_rate, pathlib.Path(tempfile.mkdtemp()) / "obs.gif", dpi=40)
    >>> p.stat().st_size > 0
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    path = check_figure_path(path, overwrite=overwrite, dpi=dpi, formats=ANIMATION_FORMATS)
    writer = _writer(path, fps)
    plan = _plan(
        fc,
        obs,
        init_time=init_time,
        lead_time=None,
        time=None,
        variable=variable,
        channel=channel,
        all_frames=True,
    )
    grid = _grid(plan.template)
    style, estyle = _styles(
        plan, cmap=cmap, levels=levels, vmin=vmin, vmax=vmax, error_limit=error_limit
    )
    ncols = 3 if plan.has_obs else 1
    fig = plt.figure(
        figsize=(
            ncols * PANEL_WIDTH + (0.4 if plan.has_obs else 1.4),
            _panel_height(grid) + (1.3 if plan.has_obs else 0.6),
        ),
        layout="constrained",
    )
    axes = _make_axes(fig, 1, ncols, grid)[0]
    first = plan.frames[0]
    blank = np.full_like(first.fc, np.nan)
    artists = [_draw(axes[0], grid, first.fc, style)]
    if plan.has_obs:
        artists.append(_draw(axes[1], grid, first.obs if first.obs is not None else blank, style))
        artists.append(_draw(axes[2], grid, _masked_error(first, style), estyle))
    for j, ax in enumerate(axes):
        _setup_axes(
            ax,
            grid,
            coastlines=coastlines,
            borders=borders,
            gridlines=gridlines,
            map_data_dir=map_data_dir,
            labels={"left": j == 0, "bottom": True},
        )
    _colorbars(fig, axes, artists, style, estyle, plan.has_obs)
    fig.suptitle(plan.title if title is None else title, fontsize=10)
    fig.get_layout_engine().set(h_pad=0.06)
    _freeze_layout(fig, axes)

    def update(k: int) -> list[Any]:
        frame = plan.frames[k]
        titles = _panel_titles(plan, frame)
        _set_field(artists[0], frame.fc)
        axes[0].set_title(titles[0], fontsize=9)
        if plan.has_obs:
            _set_field(artists[1], frame.obs if frame.obs is not None else blank)
            _set_field(artists[2], _masked_error(frame, style))
            axes[1].set_title(titles[1] if frame.obs is not None else frame.obs_missing, fontsize=9)
            axes[2].set_title(titles[2], fontsize=9)
        return artists

    anim = animation.FuncAnimation(fig, update, frames=len(plan.frames), blit=False)
    path = check_figure_path(path, overwrite=overwrite, dpi=dpi, formats=ANIMATION_FORMATS)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        anim.save(path, writer=writer, dpi=dpi)
    finally:
        plt.close(fig)
    logger.info("animation with %d frames written to %s", len(plan.frames), path)
    return path

"""Maps of forecasts, observations and their difference, in the data's own projection.

Projected grids (``y``/``x`` in metres with a ``crs`` coordinate: polar stereographic,
Lambert azimuthal equal-area, Albers, Lambert conformal, oblique Mercator, ...) are drawn in
their native projection: cartopy gets the pyproj CRS and map bounds derived from the grid,
and the data are drawn on their own ``x``/``y`` cell edges without resampling. Regular
``lat``/``lon`` grids use PlateCarree. Grids with only 2-D ``lat``/``lon`` coordinates are
drawn in PlateCarree from those; grids without any geography are drawn as plain images.

Coastlines and borders come from map data already on disk (see
:mod:`stgeo.plot.mapdata`); nothing is ever downloaded.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import stgeo
>>> from stgeo.plot import plot_forecast
>>> ds = stgeo.testing.storm_cells(n_times=8, shape=(32, 32), seed=0)
>>> fc = ds.st.forecast(model="persistence", lead_steps=2)
>>> fig = plot_forecast(fc, ds.rain_rate, lead_time="10min")
>>> len(fig.axes) >= 3
True
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import (
    INIT_TIME_DIM,
    LEAD_TIME_DIM,
    VALID_TIME_COORD,
    check_same_grid,
    get_crs,
    spatial_dims,
)
from ..errors import DataValidationError, StgeoTypeError, UnknownNameError
from .files import check_figure_path, save_figure
from .mapdata import add_map_features
from .styles import FieldStyle, error_style, field_style, label_of

__all__ = ["map_projection", "plot_field", "plot_forecast"]

logger = logging.getLogger("stgeo.plot")

PANEL_WIDTH = 3.6  # inches per map panel


# -- grids and projections -----------------------------------------------------------------
def _edges(c: np.ndarray) -> np.ndarray:
    """Cell edges of 1-D cell centres (n + 1 values)."""
    c = np.asarray(c, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


@dataclass
class _Grid:
    """How to draw one grid: axes projection, data transform, cell edges and extent."""

    kind: str  # "projected", "latlon", "curvilinear" or "plain"
    projection: Any = None  # cartopy CRS of the axes (None: plain axes)
    transform: Any = None  # cartopy CRS of the coordinates below
    xe: np.ndarray | None = None  # cell edges (1-D) or 2-D centre coordinates
    ye: np.ndarray | None = None
    extent: tuple[float, float, float, float] | None = None  # in `transform` coordinates
    bbox: tuple[float, float, float, float] | None = None  # lon/lat (west, south, east, north)
    xlabel: str = "x"
    ylabel: str = "y"
    notes: list[str] = field(default_factory=list)

    @property
    def is_map(self) -> bool:
        return self.projection is not None


def _grid_projection(crs: Any, bounds: tuple[float, float, float, float]) -> Any:
    """A cartopy projection for a pyproj CRS, with map bounds around the grid."""
    import cartopy.crs as ccrs

    class GridProjection(ccrs.Projection):
        """The data's own projection, limited to a region around its grid."""

        def __init__(self, pcrs: Any, bnds: tuple[float, float, float, float]) -> None:
            super().__init__(pcrs)
            self.bounds = tuple(float(b) for b in bnds)
            x0, x1, y0, y1 = self.bounds
            self.threshold = min(x1 - x0, y1 - y0) / 2000.0

    return GridProjection(crs, bounds)


def _lonlat_bbox(
    crs: Any, xe: np.ndarray, ye: np.ndarray
) -> tuple[float, float, float, float] | None:
    """Lon/lat box covering a projected grid (whole longitude circle if it holds a pole)."""
    from pyproj import CRS, Transformer

    try:
        tr = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        n = 25
        xs = np.concatenate(
            [
                np.linspace(xe[0], xe[-1], n),
                np.full(n, xe[-1]),
                np.linspace(xe[-1], xe[0], n),
                np.full(n, xe[0]),
            ]
        )
        ys = np.concatenate(
            [
                np.full(n, ye[0]),
                np.linspace(ye[0], ye[-1], n),
                np.full(n, ye[-1]),
                np.linspace(ye[-1], ye[0], n),
            ]
        )
        xx, yy = np.meshgrid(np.linspace(xe[0], xe[-1], 9), np.linspace(ye[0], ye[-1], 9))
        lon, lat = tr.transform(np.concatenate([xs, xx.ravel()]), np.concatenate([ys, yy.ravel()]))
        ok = np.isfinite(lon) & np.isfinite(lat)
        if not ok.any():
            return None
        lon, lat = lon[ok], lat[ok]
        w, e, s, nn = float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())
        back = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)
        x0, x1 = sorted((xe[0], xe[-1]))
        y0, y1 = sorted((ye[0], ye[-1]))
        for plat in (90.0, -90.0):
            px, py = back.transform(0.0, plat)
            if np.isfinite(px) and x0 <= px <= x1 and y0 <= py <= y1:
                w, e = -180.0, 180.0
                s, nn = (s, 90.0) if plat > 0 else (-90.0, nn)
        if e - w > 300 and not (w == -180.0 and e == 180.0):
            # the grid straddles the antimeridian: express longitudes in 0..360
            lon360 = np.mod(lon, 360.0)
            w, e = float(lon360.min()), float(lon360.max())
        return (w, s, e, nn)
    except Exception as err:  # pragma: no cover - defensive: odd CRSs
        logger.debug("could not compute the lon/lat box of the grid: %s", err)
        return None


def _coord_scale(da: xr.DataArray, name: str) -> float:
    units = str(da[name].attrs.get("units", "m")).strip().lower()
    return 1000.0 if units in ("km", "kilometre", "kilometer", "kilometres", "kilometers") else 1.0


def _latlon_grid(lat: np.ndarray, lon: np.ndarray) -> _Grid:
    import cartopy.crs as ccrs

    lat_e, lon_e = _edges(lat), _edges(lon)
    central = 180.0 if lon_e.max() > 180.0 else 0.0
    w, e = float(lon_e.min()), float(lon_e.max())
    s, n = float(max(lat_e.min(), -90.0)), float(min(lat_e.max(), 90.0))
    bbox = (w, s, e, n) if e - w < 359.0 else (-180.0, s, 180.0, n)
    return _Grid(
        "latlon",
        projection=ccrs.PlateCarree(central_longitude=central),
        transform=ccrs.PlateCarree(),
        xe=lon_e,
        ye=np.clip(lat_e, -90.0, 90.0),
        extent=(w, e, s, n),
        bbox=bbox,
        xlabel="longitude",
        ylabel="latitude",
    )


def _grid(da: xr.DataArray) -> _Grid:
    """Work out how to draw the grid of ``da`` (2-D or more, spatial dims last)."""
    ydim, xdim = spatial_dims(da)
    if (ydim, xdim) == ("lat", "lon"):
        return _latlon_grid(np.asarray(da["lat"].values), np.asarray(da["lon"].values))
    crs = None
    try:
        crs = get_crs(da)
    except Exception as err:
        logger.info("ignoring an unreadable CRS description (%s)", err)
    has_xy = (
        xdim in da.coords
        and ydim in da.coords
        and da[xdim].ndim == 1
        and da[ydim].ndim == 1
        and np.issubdtype(da[xdim].dtype, np.number)
        and np.issubdtype(da[ydim].dtype, np.number)
    )
    notes: list[str] = []
    if crs is not None and has_xy:
        if crs.is_geographic:
            return _latlon_grid(np.asarray(da[ydim].values), np.asarray(da[xdim].values))
        try:
            xe = _edges(da[xdim].values) * _coord_scale(da, xdim)
            ye = _edges(da[ydim].values) * _coord_scale(da, ydim)
            w, h = abs(xe[-1] - xe[0]), abs(ye[-1] - ye[0])
            pad = max(w, h)
            x0, x1 = min(xe[0], xe[-1]), max(xe[0], xe[-1])
            y0, y1 = min(ye[0], ye[-1]), max(ye[0], ye[-1])
            proj = _grid_projection(crs, (x0 - pad, x1 + pad, y0 - pad, y1 + pad))
            cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
            lon, lat = _pc().transform_point(cx, cy, proj)
            if not (np.isfinite(lon) and np.isfinite(lat)):
                raise ValueError("the grid centre does not map to a longitude/latitude")
            return _Grid(
                "projected", proj, proj, xe, ye, (x0, x1, y0, y1), _lonlat_bbox(crs, xe, ye)
            )
        except Exception as err:
            notes.append(f"cartopy could not use the grid's CRS ({err}); drawn in PlateCarree")
            logger.info(notes[-1])
    if "lat" in da.coords and "lon" in da.coords:
        lat, lon = da["lat"], da["lon"]
        if lat.dims == (ydim, xdim) and lon.dims == (ydim, xdim):
            import cartopy.crs as ccrs

            lat2, lon2 = np.asarray(lat.values, float), np.asarray(lon.values, float)
            w, e = float(np.nanmin(lon2)), float(np.nanmax(lon2))
            s, n = float(np.nanmin(lat2)), float(np.nanmax(lat2))
            dy = (n - s) / max(lat2.shape[0] - 1, 1) / 2
            dx = (e - w) / max(lon2.shape[1] - 1, 1) / 2
            central = 180.0 if e > 180.0 else 0.0
            return _Grid(
                "curvilinear",
                projection=ccrs.PlateCarree(central_longitude=central),
                transform=ccrs.PlateCarree(),
                xe=lon2,
                ye=lat2,
                extent=(w - dx, e + dx, max(s - dy, -90.0), min(n + dy, 90.0)),
                bbox=(w - dx, s - dy, e + dx, n + dy),
                xlabel="longitude",
                ylabel="latitude",
                notes=notes,
            )
    logger.info("the grid has no CRS and no lat/lon coordinates: drawn without a map")
    xe = _edges(da[xdim].values) if has_xy else np.arange(da.sizes[xdim] + 1) - 0.5
    ye = _edges(da[ydim].values) if has_xy else np.arange(da.sizes[ydim] + 1) - 0.5
    return _Grid("plain", None, None, xe, ye, None, None, xdim, ydim, notes)


def _pc() -> Any:
    import cartopy.crs as ccrs

    return ccrs.PlateCarree()


def map_projection(da: xr.DataArray | xr.Dataset) -> Any:
    """The cartopy projection stgeo draws ``da`` in (its own CRS, or PlateCarree).

    Use it to create axes for :func:`plot_field`.

    Parameters
    ----------
    da : xarray.DataArray or Dataset
        Gridded data with ``(y, x)`` plus a ``crs`` coordinate, or ``(lat, lon)``.

    Returns
    -------
    cartopy.crs.Projection or None
        None for grids without any geography.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=2, shape=(16, 16))
    >>> map_projection(ds.rain_rate).to_json_dict()["conversion"]["method"]["name"]
    'Lambert Azimuthal Equal Area'
    """
    return _grid(da).projection


# -- drawing -------------------------------------------------------------------------------
def _draw(ax: Any, grid: _Grid, data: np.ndarray, style: FieldStyle) -> Any:
    kw: dict[str, Any] = {"cmap": style.cmap, "norm": style.norm, "rasterized": True}
    if grid.is_map:
        kw["transform"] = grid.transform
    data = np.ma.masked_invalid(np.asarray(data, dtype=float))
    if grid.xe is not None and grid.xe.ndim == 2:
        return ax.pcolormesh(grid.xe, grid.ye, data, shading="nearest", **kw)
    if (
        _regular(grid.xe)
        and _regular(grid.ye)
        and (not grid.is_map or grid.projection == grid.transform)
    ):
        # a regular grid in the axes' own projection: an image, no resampling (fast)
        kw.pop("rasterized")
        origin = "lower" if grid.ye[-1] > grid.ye[0] else "upper"
        y0, y1 = (grid.ye[0], grid.ye[-1]) if origin == "lower" else (grid.ye[-1], grid.ye[0])
        return ax.imshow(
            data,
            extent=(grid.xe[0], grid.xe[-1], y0, y1),
            origin=origin,
            interpolation="nearest" if data.size <= 250_000 else "auto",
            **kw,
        )
    return ax.pcolormesh(grid.xe, grid.ye, data, shading="flat", **kw)


def _regular(edges: np.ndarray | None) -> bool:
    if edges is None or edges.ndim != 1 or edges.size < 2:
        return False
    d = np.diff(edges)
    return bool(np.all(d > 0) or np.all(d < 0)) and bool(np.allclose(d, d[0], rtol=1e-4, atol=0.0))


def _set_field(artist: Any, data: np.ndarray) -> None:
    """Replace the values drawn by an image or mesh artist."""
    arr = np.ma.masked_invalid(np.asarray(data, dtype=float))
    if hasattr(artist, "set_data") and not hasattr(artist, "set_paths"):
        artist.set_data(arr)
    else:
        artist.set_array(arr)


def _setup_axes(
    ax: Any,
    grid: _Grid,
    *,
    coastlines: bool,
    borders: bool,
    gridlines: bool,
    map_data_dir: Any,
    labels: dict[str, bool] | None = None,
) -> None:
    if not grid.is_map:
        ax.set_aspect("equal")
        ax.set_xlabel(grid.xlabel)
        ax.set_ylabel(grid.ylabel)
        return
    x0, x1, y0, y1 = grid.extent
    if grid.kind != "projected" and x1 - x0 >= 359.0:
        if y1 - y0 >= 179.0:
            ax.set_global()
        else:  # a full latitude band
            ax.set_extent((-180.0, 180.0, y0, y1), crs=grid.transform)
    else:
        ax.set_extent(grid.extent, crs=grid.transform)
    if coastlines or borders:
        add_map_features(
            ax, bbox=grid.bbox, coastlines=coastlines, borders=borders, map_data_dir=map_data_dir
        )
    if gridlines:
        left = True if labels is None else labels.get("left", True)
        bottom = True if labels is None else labels.get("bottom", True)
        kw: dict[str, Any] = {}
        if grid.bbox is not None:
            from matplotlib.ticker import MaxNLocator

            w, s, e, n = grid.bbox
            kw["xlocs"] = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(w, e)
            kw["ylocs"] = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(s, n)
            if e - w >= 300:
                kw["xlocs"] = np.arange(-180, 181, 30)
            kw["xlocs"] = np.unique((np.asarray(kw["xlocs"]) + 180.0) % 360.0 - 180.0)
        # labels are costly on projected maps: only on the outer panels
        gl = ax.gridlines(
            draw_labels=left or bottom,
            x_inline=False,
            y_inline=False,
            linewidth=0.5,
            color="0.4",
            alpha=0.6,
            linestyle="--",
            **kw,
        )
        if left or bottom:
            gl.top_labels = False
            gl.right_labels = False
            gl.left_labels = left
            gl.bottom_labels = bottom
            gl.xlabel_style = {"size": 7}
            gl.ylabel_style = {"size": 7}


def _make_axes(fig: Any, nrows: int, ncols: int, grid: _Grid) -> np.ndarray:
    kw = {"projection": grid.projection} if grid.is_map else {}
    axes = np.empty((nrows, ncols), dtype=object)
    for i in range(nrows):
        for j in range(ncols):
            axes[i, j] = fig.add_subplot(nrows, ncols, i * ncols + j + 1, **kw)
    return axes


def _panel_height(grid: _Grid) -> float:
    if grid.extent is not None:
        x0, x1, y0, y1 = grid.extent
        aspect = abs(y1 - y0) / max(abs(x1 - x0), 1e-9)
    else:
        aspect = abs(grid.ye[-1] - grid.ye[0]) / max(abs(grid.xe[-1] - grid.xe[0]), 1e-9)
    return float(np.clip(0.9 * PANEL_WIDTH * aspect, 0.8, 2.5 * PANEL_WIDTH)) + 0.6


# -- selecting what to draw ----------------------------------------------------------------
def _pick_variable(obj: Any, variable: str | None, what: str) -> xr.DataArray:
    if isinstance(obj, xr.DataArray):
        return obj
    if not isinstance(obj, xr.Dataset):
        raise StgeoTypeError(
            f"{what} must be an xarray DataArray or Dataset, got {type(obj).__name__}"
        )
    names = [str(k) for k, v in obj.data_vars.items() if v.ndim >= 2]
    if variable is not None:
        if variable not in obj.data_vars:
            raise UnknownNameError(
                f"{what} has no variable {variable!r}; valid variables are: "
                f"{', '.join(names) or '(none)'}"
            )
        return obj[variable]
    if len(names) == 1:
        return obj[names[0]]
    raise UnknownNameError(
        f"{what} holds {len(names)} gridded variables ({', '.join(names) or 'none'}); "
        "choose one with variable='NAME'"
    )


def _select_extra(
    da: xr.DataArray, keep: Sequence[Hashable], channel: Any, what: str
) -> xr.DataArray:
    """Select ``channel`` and squeeze length-1 dims so only ``keep`` + spatial dims remain."""
    if "channel" in da.dims:
        if channel is None:
            if da.sizes["channel"] > 1:
                first = da["channel"].values[0] if "channel" in da.coords else 0
                logger.info(
                    "%s has %d channels; drawing %r (choose with channel=...)",
                    what,
                    da.sizes["channel"],
                    first,
                )
            da = da.isel(channel=0)
        elif isinstance(channel, (int, np.integer)) and (
            "channel" not in da.coords or not np.issubdtype(da["channel"].dtype, np.integer)
        ):
            da = da.isel(channel=int(channel))
        else:
            labels = list(da["channel"].values) if "channel" in da.coords else []
            if channel not in labels:
                raise UnknownNameError(
                    f"channel {channel!r} not in {what}; valid channels: {labels}"
                )
            da = da.sel(channel=channel)
    sdims = spatial_dims(da)
    allowed = set(keep) | set(sdims)
    for d in list(da.dims):
        if d not in allowed:
            if da.sizes[d] == 1:
                da = da.isel({d: 0})
            else:
                raise DataValidationError(
                    f"{what} has an extra dimension {d!r} of size {da.sizes[d]}; select one "
                    f"value first, e.g. obj.isel({d}=0) or obj.sel({d}=...)"
                )
    return da.transpose(*[d for d in da.dims if d not in sdims], *sdims)


def _as_timedelta(v: Any) -> pd.Timedelta:
    if isinstance(v, np.timedelta64):  # (a numpy integer subclass)
        return pd.Timedelta(v)
    if isinstance(v, (bool, int, float, np.integer, np.floating)):
        raise StgeoTypeError(
            f"lead_time={v!r} is a bare number; give a duration such as '30min', "
            "pandas.Timedelta('1h') or numpy.timedelta64(30, 'm')"
        )
    try:
        return pd.Timedelta(v)
    except (ValueError, TypeError) as err:
        raise StgeoTypeError(
            f"cannot read lead_time={v!r} as a duration ({err}); use e.g. '30min' or '2h'"
        ) from err


def _fmt_lead(td: pd.Timedelta) -> str:
    total = int(td.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    d, rem = divmod(total, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d == 0 and h == 0:
        return f"{sign}{m} min" + (f" {s} s" if s else "")
    if d == 0:
        return f"{sign}{h} h" + (f" {m:02d} min" if m else "")
    return f"{sign}{d} d" + (f" {h} h" if h else "")


def _fmt_time(t: Any) -> str:
    ts = pd.Timestamp(t)
    if ts.second == 0 and ts.microsecond == 0:
        return ts.strftime("%Y-%m-%d %H:%M")
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def _default_positions(n: int, k: int = 4) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({round(float(v)) for v in np.linspace(0, n - 1, k)})


@dataclass
class _Frame:
    label: str  # e.g. "+30 min" or a time
    valid: pd.Timestamp | None
    fc: np.ndarray
    obs: np.ndarray | None = None
    obs_missing: str = ""

    @property
    def error(self) -> np.ndarray | None:
        if self.obs is None:
            return None
        return self.fc - self.obs


@dataclass
class _Plan:
    template: xr.DataArray  # a 2-D field carrying the grid coordinates and attrs
    frames: list[_Frame]
    is_forecast: bool
    has_obs: bool
    title: str
    model: str


def _select_init(fc: xr.DataArray, init_time: Any) -> xr.DataArray:
    inits = pd.DatetimeIndex(fc[INIT_TIME_DIM].values)
    if init_time is None:
        pos = 0
    elif isinstance(init_time, (int, np.integer)) and not isinstance(init_time, bool):
        pos = int(init_time)
        if not -len(inits) <= pos < len(inits):
            raise UnknownNameError(
                f"init_time position {pos} out of range: the forecast has {len(inits)} "
                "initial times"
            )
    else:
        t = pd.Timestamp(init_time)
        where = np.flatnonzero(inits == t)
        if where.size == 0:
            shown = ", ".join(_fmt_time(v) for v in inits[:5]) + (" ..." if len(inits) > 5 else "")
            raise UnknownNameError(
                f"init_time {t} is not in the forecast; its {len(inits)} initial times run "
                f"from {inits.min()} to {inits.max()} ({shown})"
            )
        pos = int(where[0])
    return fc.isel({INIT_TIME_DIM: pos})


def _select_leads(fc: xr.DataArray, lead_time: Any) -> list[int]:
    leads = pd.TimedeltaIndex(fc[LEAD_TIME_DIM].values)
    if lead_time is None:
        return _default_positions(len(leads))
    wanted = (
        lead_time if isinstance(lead_time, (list, tuple, np.ndarray, pd.Index)) else [lead_time]
    )
    out = []
    for v in wanted:
        td = _as_timedelta(v)
        where = np.flatnonzero(leads == td)
        if where.size == 0:
            raise UnknownNameError(
                f"lead_time {_fmt_lead(td)} is not in the forecast; available lead times: "
                + ", ".join(_fmt_lead(x) for x in leads)
            )
        out.append(int(where[0]))
    return out


def _select_times(da: xr.DataArray, time: Any) -> list[int]:
    times = pd.DatetimeIndex(da["time"].values)
    if time is None:
        return _default_positions(len(times))
    wanted = time if isinstance(time, (list, tuple, np.ndarray, pd.Index)) else [time]
    out = []
    for v in wanted:
        t = pd.Timestamp(v)
        where = np.flatnonzero(times == t)
        if where.size == 0:
            raise UnknownNameError(
                f"time {t} is not in the data; times run from {times.min()} to {times.max()}"
            )
        out.append(int(where[0]))
    return out


def _obs_at(
    obs: xr.DataArray | None, valid: pd.Timestamp | None, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, str]:
    if obs is None or valid is None:
        return None, ""
    times = pd.DatetimeIndex(obs["time"].values)
    where = np.flatnonzero(times == valid)
    if where.size == 0:
        logger.info("no observation at %s", valid)
        return None, f"no observation at\n{_fmt_time(valid)}"
    arr = np.asarray(obs.isel(time=int(where[0])).values, dtype=float)
    if arr.shape != shape:
        raise DataValidationError(
            f"observations are on a {arr.shape} grid but the forecast on {shape}; "
            "regrid one onto the other first"
        )
    return arr, ""


def _plan(
    fc: Any,
    obs: Any,
    *,
    init_time: Any,
    lead_time: Any,
    time: Any,
    variable: str | None,
    channel: Any,
    all_frames: bool = False,
) -> _Plan:
    if isinstance(fc, xr.DataArray) and variable is not None and fc.name is not None:
        if str(fc.name) != variable:
            raise UnknownNameError(
                f"variable={variable!r} but the forecast is a DataArray named {fc.name!r}; "
                "variable= picks a variable of a Dataset: drop it, or pass the Dataset"
            )
    da = _pick_variable(fc, variable, "the forecast")
    name = str(da.name) if da.name is not None else variable
    obs_da = None if obs is None else _pick_obs(obs, variable, name, channel)
    if obs_da is not None:
        check_same_grid(da, obs_da)  # as scoring does: never matched by position
    if INIT_TIME_DIM in da.dims or LEAD_TIME_DIM in da.dims:
        plan = _forecast_plan(da, obs_da, init_time, lead_time, channel, all_frames)
    elif "time" in da.dims:
        if lead_time is not None:
            raise DataValidationError(
                "lead_time given but the data have no lead_time dimension (dims "
                f"{tuple(da.dims)}); use time=... to choose frames of a time series"
            )
        plan = _series_plan(da, obs_da, time, channel, all_frames)
    else:
        da = _select_extra(da, [], channel, "the data")
        frame = _Frame("", None, np.asarray(da.values, dtype=float))
        plan = _Plan(da, [frame], False, False, label_of(da), str(da.attrs.get("model", "") or ""))
    if not plan.frames:
        raise DataValidationError("nothing to draw: no frames selected")
    template = plan.template
    if "channel" in template.coords and template["channel"].ndim == 0:
        plan.title += f" ({template['channel'].values.item()})"
    return plan


def _pick_obs(obs: Any, variable: str | None, name: str | None, channel: Any) -> xr.DataArray:
    """The observed field matching the forecast variable ``name``, one channel, with time."""
    obs_da = _pick_variable(
        obs,
        variable or (name if isinstance(obs, xr.Dataset) and name in obs else None),
        "the observations",
    )
    if "time" not in obs_da.dims:
        raise DataValidationError(
            f"observations need a 'time' dimension, got dims {tuple(obs_da.dims)}"
        )
    return _select_extra(obs_da, ["time"], channel, "the observations")


def _forecast_plan(
    da: xr.DataArray,
    obs_da: xr.DataArray | None,
    init_time: Any,
    lead_time: Any,
    channel: Any,
    all_frames: bool,
) -> _Plan:
    """Frames of one forecast run, one per selected lead time."""
    model = str(da.attrs.get("model", "") or da.attrs.get("model_name", "") or "forecast")
    if LEAD_TIME_DIM not in da.dims:
        raise DataValidationError(
            f"a forecast needs a 'lead_time' dimension, got dims {tuple(da.dims)}"
        )
    if INIT_TIME_DIM in da.dims:
        da = _select_init(da, init_time)
    elif init_time is not None:
        raise DataValidationError("init_time given but the forecast has no init_time dim")
    da = _select_extra(da, [LEAD_TIME_DIM], channel, "the forecast")
    init = pd.Timestamp(da[INIT_TIME_DIM].values) if INIT_TIME_DIM in da.coords else None
    positions = list(range(da.sizes[LEAD_TIME_DIM])) if all_frames else _select_leads(da, lead_time)
    frames = [_lead_frame(da.isel({LEAD_TIME_DIM: p}), init, obs_da) for p in positions]
    title = f"{model} forecast of {label_of(da)}"
    if init is not None:
        title += f", initialised {_fmt_time(init)}"
    return _Plan(da.isel({LEAD_TIME_DIM: 0}), frames, True, obs_da is not None, title, model)


def _lead_frame(
    one: xr.DataArray, init: pd.Timestamp | None, obs_da: xr.DataArray | None
) -> _Frame:
    """The frame of one lead time, with the observation valid at the same time."""
    lead = pd.Timedelta(one[LEAD_TIME_DIM].values)
    if VALID_TIME_COORD in one.coords:
        valid = pd.Timestamp(one[VALID_TIME_COORD].values)
    else:
        valid = init + lead if init is not None else None
    arr = np.asarray(one.values, dtype=float)
    o, missing = _obs_at(obs_da, valid, arr.shape)
    return _Frame(_fmt_lead(lead), valid, arr, o, missing)


def _series_plan(
    da: xr.DataArray, obs_da: xr.DataArray | None, time: Any, channel: Any, all_frames: bool
) -> _Plan:
    """Frames of a plain time series at the selected times."""
    da = _select_extra(da, ["time"], channel, "the data")
    positions = list(range(da.sizes["time"])) if all_frames else _select_times(da, time)
    frames = []
    for p in positions:
        one = da.isel(time=p)
        valid = pd.Timestamp(one["time"].values)
        arr = np.asarray(one.values, dtype=float)
        o, missing = _obs_at(obs_da, valid, arr.shape)
        frames.append(_Frame(_fmt_time(valid), valid, arr, o, missing))
    is_fc = obs_da is not None
    model = str(da.attrs.get("model", "") or ("forecast" if is_fc else "observed"))
    return _Plan(da.isel(time=0), frames, is_fc, obs_da is not None, label_of(da), model)


def _styles(
    plan: _Plan, *, cmap: Any, levels: Any, vmin: Any, vmax: Any, error_limit: Any
) -> tuple[FieldStyle, FieldStyle | None]:
    values = [f.fc for f in plan.frames] + [f.obs for f in plan.frames if f.obs is not None]
    style = field_style(plan.template, values, cmap=cmap, levels=levels, vmin=vmin, vmax=vmax)
    if not plan.has_obs:
        return style, None
    errs = [_masked_error(f, style) for f in plan.frames if f.obs is not None]
    u = str(plan.template.attrs.get("units", "") or "")
    label = "forecast - observed" + (f" [{u}]" if u else "")
    return style, error_style(errs, label=label, limit=error_limit)


def _masked_error(frame: _Frame, style: FieldStyle) -> np.ndarray:
    err = frame.error
    if err is None:
        return np.full_like(frame.fc, np.nan)
    if style.dry is not None:
        dry = (frame.fc < style.dry) & (frame.obs < style.dry)
        err = np.where(dry, np.nan, err)
    return err


# -- public API ----------------------------------------------------------------------------
def plot_field(
    da: xr.DataArray,
    ax: Any = None,
    *,
    cmap: Any = None,
    levels: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    colorbar: bool = True,
    coastlines: bool = True,
    borders: bool = True,
    gridlines: bool = True,
    map_data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 100,
    overwrite: bool = False,
) -> Any:
    """Draw one 2-D field on a map in its own projection.

    Parameters
    ----------
    da : xarray.DataArray
        A field on ``(y, x)`` (with a ``crs`` coordinate and/or 2-D ``lat``/``lon``) or
        ``(lat, lon)``; length-1 extra dims are squeezed.
    ax : matplotlib Axes, optional
        Where to draw. For maps it must be a cartopy GeoAxes, e.g.
        ``fig.add_subplot(projection=stgeo.plot.map_projection(da))``; default: a new figure.
    cmap, levels, vmin, vmax
        Colour overrides (default: chosen from the variable, see :func:`field_style`).
    title : str, optional
        Axes title (default: the time of the field, if any).
    colorbar : bool
        Add a colour bar with the variable's name and units.
    coastlines, borders, gridlines : bool
        Map decorations (coastlines/borders only when map data are on disk).
    map_data_dir : path, optional
        Folder with coastline/border shapefiles (see :func:`stgeo.plot.mapdata.find_map_data`).
    path : path, optional
        Save the figure there (PNG, PDF, SVG, ... by suffix). An existing file is kept
        unless ``overwrite=True``; a folder or an unknown suffix is refused before drawing.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib Axes
        The (Geo)Axes drawn on; the field is ``ax.images[0]`` (regular grids, drawn as an
        image) or ``ax.collections[0]`` (irregular or curvilinear grids, a mesh).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=2, shape=(32, 32), seed=0)
    >>> ax = plot_field(ds.rain_rate.isel(time=1))
    >>> ax.get_title()
    '2021-07-04 12:05'
    """
    import matplotlib.pyplot as plt

    if not isinstance(da, xr.DataArray):
        raise StgeoTypeError(f"plot_field needs an xarray DataArray, got {type(da).__name__}")
    if path is not None:
        check_figure_path(path, overwrite=overwrite, dpi=dpi)  # before any drawing
    field2d = _select_extra(da, [], None, "the field")
    grid = _grid(field2d)
    if ax is None:
        h = _panel_height(grid)
        fig = plt.figure(figsize=(PANEL_WIDTH + 1.6, h), layout="constrained")
        ax = fig.add_subplot(projection=grid.projection) if grid.is_map else fig.add_subplot()
    elif grid.is_map and not hasattr(ax, "projection"):
        raise StgeoTypeError(
            "ax is a plain matplotlib Axes but the field is on a map grid; create it with "
            "fig.add_subplot(projection=stgeo.plot.map_projection(da))"
        )
    values = np.asarray(field2d.values, dtype=float)
    style = field_style(field2d, [values], cmap=cmap, levels=levels, vmin=vmin, vmax=vmax)
    artist = _draw(ax, grid, values, style)
    _setup_axes(
        ax,
        grid,
        coastlines=coastlines,
        borders=borders,
        gridlines=gridlines,
        map_data_dir=map_data_dir,
    )
    if title is None:
        title = ""
        for c in (VALID_TIME_COORD, "time"):
            if c in field2d.coords and field2d[c].ndim == 0:
                title = _fmt_time(field2d[c].values)
                break
    ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(
            artist, ax=ax, orientation="vertical", shrink=0.85, **style.colorbar_kwargs()
        )
    if path is not None:
        save_figure(ax.figure, path, dpi=dpi, overwrite=overwrite)
    return ax


def _panel_titles(plan: _Plan, frame: _Frame) -> tuple[str, str, str]:
    valid = f"valid {_fmt_time(frame.valid)}" if frame.valid is not None else ""
    if plan.is_forecast and frame.label.startswith(("+", "-")):
        fc_t = f"{plan.model} {frame.label}\n{valid}"
    elif plan.has_obs:
        fc_t = f"{plan.model}\n{valid}"
    else:
        fc_t = frame.label if not plan.is_forecast else f"{plan.model} {frame.label}"
    obs_t = f"observed\n{valid}"
    err_t = f"{plan.model} - observed\n{frame.label}"
    return fc_t, obs_t, err_t


def _draw_comparison_rows(
    axes: np.ndarray,
    plan: _Plan,
    grid: _Grid,
    style: FieldStyle,
    estyle: FieldStyle | None,
    decorations: dict[str, Any],
) -> tuple[Any, Any]:
    """One row per frame: forecast, observation, forecast - observation.

    Returns the last forecast artist and the last error artist (None when no frame has an
    observation), for the colour bars.
    """
    field_artist = err_artist = None
    nrows = len(plan.frames)
    for i, frame in enumerate(plan.frames):
        fc_t, obs_t, err_t = _panel_titles(plan, frame)
        row = axes[i]
        field_artist = _draw(row[0], grid, frame.fc, style)
        row[0].set_title(fc_t, fontsize=9)
        if frame.obs is not None:
            _draw(row[1], grid, frame.obs, style)
            err_artist = _draw(row[2], grid, _masked_error(frame, style), estyle)
        else:
            for ax in row[1:]:
                ax.text(
                    0.5,
                    0.5,
                    frame.obs_missing,
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=9,
                    color="0.3",
                )
        row[1].set_title(obs_t, fontsize=9)
        row[2].set_title(err_t, fontsize=9)
        for j, ax in enumerate(row):
            _setup_axes(ax, grid, **decorations, labels={"left": j == 0, "bottom": i == nrows - 1})
    return field_artist, err_artist


def _draw_field_strip(
    axes: np.ndarray, plan: _Plan, grid: _Grid, style: FieldStyle, decorations: dict[str, Any]
) -> Any:
    """The frames side by side in one row; returns the last artist (for the colour bar)."""
    field_artist = None
    for i, frame in enumerate(plan.frames):
        fc_t, _, _ = _panel_titles(plan, frame)
        ax = axes[0, i]
        field_artist = _draw(ax, grid, frame.fc, style)
        ax.set_title(fc_t, fontsize=9)
        _setup_axes(ax, grid, **decorations, labels={"left": i == 0, "bottom": True})
    return field_artist


def _comparison_colorbars(
    fig: Any,
    axes: np.ndarray,
    style: FieldStyle,
    estyle: FieldStyle | None,
    field_artist: Any,
    err_artist: Any,
) -> None:
    """One shared colour bar under the field columns and one under the error column."""
    fig.colorbar(
        field_artist,
        ax=list(axes[:, :2].ravel()),
        orientation="horizontal",
        shrink=0.7,
        aspect=40,
        **style.colorbar_kwargs(),
    )
    if err_artist is not None and estyle is not None:
        fig.colorbar(
            err_artist,
            ax=list(axes[:, 2].ravel()),
            orientation="horizontal",
            shrink=0.9,
            aspect=20,
            **estyle.colorbar_kwargs(),
        )


def plot_forecast(
    fc: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset | None = None,
    *,
    init_time: Any = None,
    lead_time: Any = None,
    time: Any = None,
    variable: str | None = None,
    channel: Any = None,
    cmap: Any = None,
    levels: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    error_limit: float | None = None,
    coastlines: bool = True,
    borders: bool = True,
    gridlines: bool = True,
    map_data_dir: str | os.PathLike | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 100,
    overwrite: bool = False,
) -> Any:
    """Maps of a forecast, the observations and their difference, one row per lead time.

    Parameters
    ----------
    fc : xarray.DataArray or Dataset
        A forecast ``(init_time, lead_time, [channel], y, x)`` (or ``lat, lon``) as made by
        :func:`stgeo.forecast`, or a plain ``(time, [channel], y, x)`` field (then frames at
        ``time`` are drawn), or a single 2-D field.
    obs : xarray.DataArray or Dataset, optional
        Observations ``(time, [channel], y, x)`` on the same grid (checked as scoring does:
        observations of another area of the same shape are refused); matched on
        ``valid_time``. With them, each row shows forecast, observation and forecast minus
        observation.
    init_time : time or int, optional
        Initial time to draw (a time, or a position); default the first.
    lead_time : str, Timedelta or list, optional
        Lead time(s), e.g. ``"30min"`` or ``["15min", "1h"]``; default up to four spread over
        the horizon.
    time : time or list, optional
        For a plain time series: the times to draw (default up to four spread over it).
    variable : str, optional
        Variable of a Dataset with several (for a DataArray it must be the array's name).
    channel : label or int, optional
        Channel to draw when there is a ``channel`` dim (default the first).
    cmap, levels, vmin, vmax
        Colour overrides; forecast and observation always share one scale.
    error_limit : float, optional
        Symmetric limit of the error colour scale (default: 99th percentile of ``|error|``).
    coastlines, borders, gridlines : bool
        Map decorations (coastlines/borders only when map data are on disk; see
        :mod:`stgeo.plot.mapdata`).
    map_data_dir : path, optional
        Folder with coastline/border shapefiles.
    title : str, optional
        Figure title (default: model, variable, units and initial time).
    path : path, optional
        Save the figure there (suffix picks the format: ``.png``, ``.pdf``, ``.svg``, ...).
        An existing file is kept unless ``overwrite=True``; a folder or an unknown suffix is
        refused before drawing.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=8, shape=(32, 32), seed=0)
    >>> fc = ds.st.forecast(model="persistence", lead_steps=3)
    >>> fig = plot_forecast(fc, ds, lead_time=["5min", "15min"], init_time=2)
    >>> fig.axes[0].get_title().splitlines()[0]
    'persistence +5 min'
    >>> fig = plot_forecast(ds.rain_rate, time=["2021-07-04T12:00"])  # observations only
    """
    import matplotlib.pyplot as plt

    if path is not None:
        check_figure_path(path, overwrite=overwrite, dpi=dpi)  # before any drawing
    plan = _plan(
        fc,
        obs,
        init_time=init_time,
        lead_time=lead_time,
        time=time,
        variable=variable,
        channel=channel,
    )
    grid = _grid(plan.template)
    style, estyle = _styles(
        plan, cmap=cmap, levels=levels, vmin=vmin, vmax=vmax, error_limit=error_limit
    )
    n = len(plan.frames)
    nrows, ncols = (n, 3) if plan.has_obs else (1, n)
    ph = _panel_height(grid)
    fig = plt.figure(figsize=(ncols * PANEL_WIDTH + 0.4, nrows * ph + 1.5), layout="constrained")
    axes = _make_axes(fig, nrows, ncols, grid)
    decorations = {
        "coastlines": coastlines,
        "borders": borders,
        "gridlines": gridlines,
        "map_data_dir": map_data_dir,
    }
    if plan.has_obs:
        field_artist, err_artist = _draw_comparison_rows(
            axes, plan, grid, style, estyle, decorations
        )
        _comparison_colorbars(fig, axes, style, estyle, field_artist, err_artist)
    else:
        field_artist = _draw_field_strip(axes, plan, grid, style, decorations)
        fig.colorbar(
            field_artist,
            ax=list(axes.ravel()),
            orientation="horizontal",
            shrink=min(0.8, 0.3 * ncols + 0.2),
            aspect=35,
            **style.colorbar_kwargs(),
        )
    fig.suptitle(plan.title if title is None else title, fontsize=11)
    # cartopy nudges map titles up after the layout is made: keep the figure title clear
    fig.get_layout_engine().set(h_pad=0.06)
    if path is not None:
        save_figure(fig, path, dpi=dpi, overwrite=overwrite)
    return fig

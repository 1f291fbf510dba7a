"""Grids and PNG inspection helpers for the plotting tests."""

from __future__ import annotations

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

import stgeo
from stgeo.conventions import add_latlon, set_crs

# Finnish-radar-like polar stereographic grid (true scale at 60N, central meridian 25E)
POLAR = "+proj=stere +lat_0=90 +lon_0=25 +lat_ts=60 +ellps=WGS84 +units=m +no_defs"
# SEVIR's Lambert azimuthal equal-area projection
SEVIR_LAEA = "+proj=laea +lat_0=38 +lon_0=-98 +units=m +a=6370997.0 +ellps=sphere"
HELSINKI = (60.17, 24.94)  # lat, lon
NEW_YORK = (40.71, -74.01)
BRUSSELS = (50.85, 4.35)
OVER_COLOR = (0x54, 0x27, 0x8F)  # rain colour above 100 mm/h (stgeo.plot.styles.RAIN_COLORS[-1])


def projected_field(
    crs: str, center: tuple[float, float], shape=(48, 48), res=8000.0, n_times=3, seed=0
) -> xr.Dataset:
    """Storm cells re-gridded onto a grid of ``crs`` centred on ``center`` (lat, lon)."""
    base = stgeo.testing.storm_cells(n_times=n_times, shape=shape, seed=seed)
    tr = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_user_input(crs), always_xy=True)
    cx, cy = tr.transform(center[1], center[0])
    ny, nx = shape
    x = cx + (np.arange(nx) - (nx - 1) / 2) * res
    y = cy + (np.arange(ny) - (ny - 1) / 2) * res
    ds = xr.Dataset(
        {"rain_rate": (("time", "y", "x"), base.rain_rate.values, dict(base.rain_rate.attrs))},
        coords={
            "time": base.time.values,
            "y": ("y", y, {"units": "m"}),
            "x": ("x", x, {"units": "m"}),
        },
    )
    return add_latlon(set_crs(ds, crs), crs)


def add_blob(ds: xr.Dataset, lat: float, lon: float, value: float = 150.0, half: int = 1):
    """Put a (2 half + 1)^2 block of ``value`` at the grid cell nearest to (lat, lon).

    Returns the new dataset and the (lat, lon) of that cell's centre (from the grid's own
    coordinates, i.e. computed by pyproj for projected grids).
    """
    d2 = (ds["lat"] - lat) ** 2 + ((ds["lon"] - lon) * np.cos(np.deg2rad(lat))) ** 2
    if d2.ndim == 2:
        iy, ix = np.unravel_index(int(np.argmin(d2.values)), d2.shape)
    else:  # 1-D lat/lon grid
        iy = int(np.argmin(np.abs(ds["lat"].values - lat)))
        ix = int(np.argmin(np.abs(ds["lon"].values - lon)))
    out = ds.copy(deep=True)
    out["rain_rate"][..., iy - half : iy + half + 1, ix - half : ix + half + 1] = value
    if out["lat"].ndim == 2:
        where = (float(out["lat"][iy, ix]), float(out["lon"][iy, ix]))
    else:
        where = (float(out["lat"][iy]), float(out["lon"][ix]))
    return out, where


def read_png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def color_pixels(img: np.ndarray, rgb, tol: int = 12) -> np.ndarray:
    """(row, col) of pixels within ``tol`` of colour ``rgb``."""
    diff = np.abs(img - np.asarray(rgb)[None, None, :]).max(axis=-1)
    return np.argwhere(diff <= tol)


def expected_pixel(ax, lon: float, lat: float) -> tuple[float, float]:
    """(row, col) in the saved PNG where cartopy puts (lon, lat); save with dpi=fig.dpi."""
    import cartopy.crs as ccrs

    x, y = ax.projection.transform_point(lon, lat, ccrs.PlateCarree())
    px, py = ax.transData.transform((x, y))
    height = ax.figure.bbox.height
    return height - py, px


def axes_pixels(img: np.ndarray, ax) -> np.ndarray:
    """The part of the PNG inside the axes frame (a few pixels in from the border)."""
    x0, y0, x1, y1 = ax.get_window_extent().extents
    h = img.shape[0]
    return img[int(h - y1) + 3 : int(h - y0) - 3, int(x0) + 3 : int(x1) - 3]

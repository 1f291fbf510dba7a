"""Radar precipitation products -> canonical ``rain_rate`` stores (recipe ``radar``).

Reads one radar *event* (a folder of single-time files of one product) with pysteps'
importers (BoM's CF netCDF directly with netCDF4: pysteps' reader scans its coordinates
element by element, ~1 s per file) and writes ``rain_rate(time, y, x)`` in mm/h with

* ``x``/``y``: 1-D projection coordinates of the pixel centres in metres, **y ascending**
  (row 0 is the southernmost row; products stored north-up are flipped);
* ``crs``: the product's projection (CF grid mapping + WKT) and 2-D ``lat``/``lon``
  computed with pyproj from it;
* no-data (outside radar coverage) as NaN; "no echo" / zero precipitation as 0; the few
  negative values some products contain (retrieval artefacts, e.g. -0.1 mm in BoM) as 0;
* conversion recorded in attributes: reflectivity (dBZ) through Marshall–Palmer
  ``Z = 200 R^1.6`` (``R = (10^(dBZ/10) / 200)^(1/1.6)``, values below the product's
  no-echo threshold -> 0); accumulations (mm per period) divided by the period in hours;
  rates (mm/h) unchanged. ``source_units``, ``conversion``, ``accumulation_minutes`` and
  the provider are kept in ``rain_rate.attrs``.
* time: the file's nominal time (end of the accumulation period for accumulations), taken
  from the file name; a regular step; missing frames inside the event are inserted as NaN
  (listed in the ``missing_frames`` attribute).

Supported products (auto-detected from the file names, or ``product=``):

=========  ==========================================  ===================================
product    files                                       reader (pysteps.io.importers)
=========  ==========================================  ===================================
``fmi``    ``YYYYMMDDHHMM_fmi.radar...pgm.gz``         ``import_fmi_pgm`` (dBZ)
``knmi``   ``RAD_NL25_RAP_5min_YYYYMMDDHHMM.h5``       ``import_knmi_hdf5`` (mm / 5 min)
``bom``    ``N_YYYYMMDD_HHMMSS.prcp-c*.nc``            netCDF4 directly (mm / period, CF)
``mch``    ``AQCyyjjjHHMM?_00005.801.gif``             ``import_mch_gif`` (mm / 5 min)
``rmi``    ``YYYYMMDDHHMMSS.rad.*.qpe.hdf``            ``import_odim_hdf5`` (mm/h, ODIM)
``opera``  ``T_PA*_C_EUOC_YYYYMMDDHHMMSS.hdf``         ``import_opera_hdf5`` (dBZ)
``mrms``   ``PrecipRate_00.00_YYYYMMDD-HHMMSS.grib2``  ``import_mrms_grib`` (mm/h; pygrib)
=========  ==========================================  ===================================

Large-area sources (training sources of ``specs/datasets.md``):

* ``opera``: the EUMETNET OPERA pan-European ODIM composite (CIRRUS generator), maximum
  reflectivity DBZH on 4400 x 3800 pixels of 1 km in the LAEA projection of its
  ``projdef``; dBZ -> mm/h by Marshall–Palmer as above. ODIM ``nodata`` (outside coverage,
  about half of the grid) -> NaN; ODIM ``undetect`` -> 0 mm/h: pysteps returns undetect
  pixels as -30 dBZ, so reflectivity at or below -30 dBZ is set to 0 (a real echo there
  would be below 0.001 mm/h). 2-D ``lat``/``lon`` from pyproj.
* ``mrms``: NOAA MRMS PrecipRate (CONUS), 3500 x 7000 pixels on a regular 0.01 degree
  lat/lon grid, already in mm/h; -3 (no coverage / missing) -> NaN. Written on
  ``(time, lat, lon)`` with 1-D pixel-centre ``lat`` ascending (20.005..54.995) and ``lon``
  in -180..180 (the GRIB file's 230.005..299.995 E become -129.995..-60.005); ``crs`` is
  pysteps' geographic CRS of the product.

Chunking: the small products are stored as 8 frames x the full native grid (float32,
zarr's default zstd compression): a nowcasting window of 4 inputs + 12 targets touches 2–3
chunks, and models, metrics and the skill protocol work on the full grid. The large-area
sources are stored in chunks of **1 frame x 512 x 512 pixels** (1 MiB of float32 before
compression): a frame (67–98 MiB) is read and written alone, so a build holds one frame in
memory; a patch sampler reading a 64–256 pixel crop of a window touches 1–4 chunks per
frame (never the whole continent); and a window reads only its own frames. Tiles much
smaller would multiply the files (already ~70–100 per frame), larger ones would read mostly
unused pixels per crop. ``chunk_time``/``chunk_space`` override both.

pysteps (``pip install stgeo[radar]``, which also brings pygrib for MRMS) is needed only for
this recipe. Files are read in 2 threads for the GIF/PGM products (their decoding releases
the GIL); netCDF/HDF5/GRIB readers are not thread-safe and run in one. The 8 pysteps example
events (497 files, 40 MiB) convert in about 25–35 s on 2 busy cores into 61 MiB of stores
(lat/lon are stored as float32).

Examples
--------
>>> from stgeo.datasets.radar import RADAR_EVENTS
>>> RADAR_EVENTS["fmi-20160928"]
'radar/radar/fmi/pgm/20160928'
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import add_latlon, set_crs
from ..errors import DataValidationError, DependencyError, UnknownNameError
from .protocol import Recipe, RecipeInputs, RecipeOutput, list_files, require_file
from .registry import register_recipe, run_events

__all__ = [
    "LARGE_AREA_EVENTS",
    "PYSTEPS_EVENTS",
    "RADAR_EVENTS",
    "RadarRecipe",
    "convert_radar_events",
    "read_radar_frame",
]

#: The 8 real events of the pysteps example data (store name -> folder relative to the
#: shared data root, i.e. ``../shared/data``).
PYSTEPS_EVENTS: dict[str, str] = {
    "fmi-20160928": "radar/radar/fmi/pgm/20160928",
    "knmi-20100826": "radar/radar/KNMI/2010/08",
    "bom2-20180616": "radar/radar/bom/prcp-cscn/2/2018/06/16",
    "bom66-20201031": "radar/radar/bom/prcp-c10/66/2020/10/31",
    "mch-20150515": "radar/radar/mch/20150515",
    "mch-20160711": "radar/radar/mch/20160711",
    "mch-20170131": "radar/radar/mch/20170131",
    "rmi-20210704": "radar/radar/rmi/radqpe/20210704",
}
#: The 2 large-area training sources (OPERA pan-European composite, MRMS CONUS).
LARGE_AREA_EVENTS: dict[str, str] = {
    "opera-20241126": "radar/radar/OPERA/20241126/CIRRUS",
    "mrms-20190610": "radar/mrms/2019/06/10",
}
#: All named radar events (``stgeo recipe radar --all-events``): the 8 pysteps example
#: events, then the 2 large-area sources.
RADAR_EVENTS: dict[str, str] = {**PYSTEPS_EVENTS, **LARGE_AREA_EVENTS}

MP_A, MP_B = 200.0, 1.6  # Marshall–Palmer


@dataclass(frozen=True)
class _Product:
    name: str
    regex: str  # file-name regex; group 1 = time stamp
    time_fmt: str
    importer: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    provider: str = ""
    #: spatial chunk edge (pixels) of the store; 0: one chunk spans the full grid
    chunk_space: int = 0
    #: frames per chunk (the ``chunk_time`` default)
    chunk_time: int = 8
    #: regular lat/lon grid (dims ``lat``/``lon``) rather than a projected ``y``/``x`` grid
    latlon: bool = False
    #: reflectivity at or below this value is ODIM "undetect" as pysteps returns it -> 0
    undetect_dbz: float | None = None


PRODUCTS: dict[str, _Product] = {
    p.name: p
    for p in (
        _Product(
            "fmi",
            r"^(\d{12})_fmi\.radar\..*\.pgm(\.gz)?$",
            "%Y%m%d%H%M",
            "import_fmi_pgm",
            {},
            "Finnish Meteorological Institute (FMI)",
        ),
        _Product(
            "knmi",
            r"^RAD_NL25_RAP_5min_(\d{12})\.h5$",
            "%Y%m%d%H%M",
            "import_knmi_hdf5",
            {"qty": "ACRR", "accutime": 5.0, "pixelsize": 1000.0},
            "Royal Netherlands Meteorological Institute (KNMI)",
        ),
        _Product(
            "bom",
            r"^\d+_(\d{8}_\d{6})\.prcp-c\w*\.nc$",
            "%Y%m%d_%H%M%S",
            "import_bom_rf3",
            {},
            "Australian Bureau of Meteorology (BoM)",
        ),
        _Product(
            "mch",
            r"^AQC(\d{9})\w?_\d+\.801\.gif$",
            "%y%j%H%M",
            "import_mch_gif",
            {"product": "AQC", "unit": "mm", "accutime": 5.0},
            "MeteoSwiss",
        ),
        _Product(
            "rmi",
            r"^(\d{14})\.rad\..*\.h(df|5)$",
            "%Y%m%d%H%M%S",
            "import_odim_hdf5",
            {"qty": "RATE"},
            "Royal Meteorological Institute of Belgium (RMI)",
        ),
        # large-area composites: one frame per chunk along time, 512 x 512 pixel tiles (see
        # the module docstring, "Chunking")
        _Product(
            "opera",
            r"^T_PA\w*_C_EUOC_(\d{14})\.h(df|5)$",
            "%Y%m%d%H%M%S",
            "import_opera_hdf5",
            {"qty": "DBZH"},
            "EUMETNET OPERA (Odyssey data centre)",
            chunk_space=512,
            chunk_time=1,
            undetect_dbz=-30.0,
        ),
        _Product(
            "mrms",
            r"^PrecipRate_00\.00_(\d{8}-\d{6})\.grib2$",
            "%Y%m%d-%H%M%S",
            "import_mrms_grib",
            {"window_size": 1},
            "NOAA/NSSL Multi-Radar/Multi-Sensor System (MRMS)",
            chunk_space=512,
            chunk_time=1,
            latlon=True,
        ),
    )
}


def _pysteps_importer(name: str):
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # pysteps prints its config path
            from pysteps.io import importers
    except ImportError as e:  # pragma: no cover - pysteps is in the dev extra
        raise DependencyError(
            f"the radar recipe reads provider formats with pysteps ({e}); install it with "
            "`pip install stgeo[radar]`"
        ) from None
    return getattr(importers, name)


def _detect(files: Sequence[Path], product: str | None) -> tuple[_Product, list[Path]]:
    if product is not None:
        key = product.lower()
        if key not in PRODUCTS:
            raise UnknownNameError(
                f"unknown radar product {product!r}; supported: {', '.join(PRODUCTS)}"
            )
        p = PRODUCTS[key]
        match = [f for f in files if re.match(p.regex, f.name)]
        if not match:
            raise DataValidationError(
                f"no {key} files in the source (expected names matching {p.regex!r}); "
                f"found e.g. {[f.name for f in files[:3]]}"
            )
        return p, match
    counts = {k: [f for f in files if re.match(p.regex, f.name)] for k, p in PRODUCTS.items()}
    best = max(counts, key=lambda k: len(counts[k]))
    if not counts[best]:
        raise DataValidationError(
            "no radar files recognised in the source: expected FMI PGM, KNMI HDF5, BoM "
            "netCDF, MeteoSwiss GIF, RMI ODIM HDF5, OPERA ODIM HDF5 or MRMS GRIB2 files named "
            f"as their providers publish them (found e.g. {[f.name for f in files[:3]]}); "
            "pass product=... if they were renamed"
        )
    return PRODUCTS[best], counts[best]


def _file_time(p: _Product, path: Path) -> pd.Timestamp:
    m = re.match(p.regex, path.name)
    if m is None:  # pragma: no cover - filtered before
        raise DataValidationError(f"cannot read a time from the file name {path.name}")
    return pd.Timestamp(datetime.strptime(m.group(1), p.time_fmt))


def read_radar_frame(path: str | os.PathLike, product: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one radar file and return ``(rain_rate_mm_per_h, metadata)``, north-up rows.

    Parameters
    ----------
    path : str or path
        A single product file.
    product : {"fmi", "knmi", "bom", "mch", "rmi", "opera", "mrms"}
        The product (see the module docstring).

    Returns
    -------
    (numpy.ndarray, dict)
        float32 rain rate in mm/h as stored by the provider (row 0 at ``metadata["yorigin"]``)
        and pysteps' metadata plus ``source_units``/``conversion``.

    Raises
    ------
    DataValidationError
        The file cannot be read as that product (wrong, truncated or foreign file).

    Examples
    --------
    >>> import os
    >>> from stgeo.datasets.radar import read_radar_frame
    >>> read_radar_frame(os.devnull, "knmi")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    DataValidationError: ...
    """
    p = PRODUCTS[product]
    path = Path(path)
    kwargs = dict(p.kwargs)
    if p.name == "fmi":
        kwargs["gzipped"] = path.name.endswith(".gz")
    try:
        if p.name == "bom":
            data, md = _read_bom(path)
        else:
            imp = _pysteps_importer(p.importer)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data, _, md = imp(str(path), **kwargs)
    except DependencyError:
        raise
    except Exception as e:
        if type(e).__name__ == "MissingOptionalDependency":  # pysteps: pygrib, h5py, ...
            raise DependencyError(
                f"reading {p.name.upper()} files needs a package pysteps did not find ({e}); "
                "install it with `pip install stgeo[radar]`"
            ) from None
        raise DataValidationError(
            f"cannot read {path} as a {p.name.upper()} radar file ({type(e).__name__}: {e}); "
            "the file is truncated, corrupted or of another product"
        ) from None
    data = np.ma.filled(np.ma.asarray(data, dtype=np.float32), np.nan)
    if data.ndim != 2 or data.size == 0:
        raise DataValidationError(f"{path}: expected a 2-D radar image, got shape {data.shape}")
    unit = str(md.get("unit"))
    md = dict(md)
    md["source_units"] = {"mm": "mm", "mm/h": "mm h-1", "dBZ": "dBZ"}.get(unit, unit)
    if unit == "dBZ":
        rate = _dbz_to_rain(data, md, p)
    elif unit == "mm":
        acc = float(md["accutime"])
        rate = data * np.float32(60.0 / acc)
        md["conversion"] = f"accumulation over {acc:g} min divided by {acc / 60.0:g} h"
        md["accumulation_minutes"] = acc
    elif unit == "mm/h":
        rate = data
        md["conversion"] = "none (already a rain rate in mm/h)"
    else:
        raise DataValidationError(f"{path}: unsupported unit {unit!r} from the importer")
    with np.errstate(invalid="ignore"):
        rate[rate < 0] = 0.0  # a few negative retrieval artefacts (BoM)
    md["conversion"] += "; negative values set to 0"
    return rate.astype(np.float32), md


def _dbz_to_rain(data: np.ndarray, md: dict[str, Any], p: _Product) -> np.ndarray:
    """Marshall–Palmer rain rate from reflectivity; no echo (and ODIM undetect) -> 0.

    Records the rule in ``md["conversion"]``.
    """
    thr = float(md.get("threshold", -np.inf))
    with np.errstate(invalid="ignore", over="ignore"):
        # (10^(dBZ/10) / a)^(1/b) == 10^((dBZ - 10 log10 a) / (10 b)): one power
        rate = np.power(
            np.float32(10.0),
            (data - np.float32(10.0 * np.log10(MP_A))) / np.float32(10.0 * MP_B),
        )
        rate[data < thr] = 0.0
        if p.undetect_dbz is not None:
            rate[data <= p.undetect_dbz] = 0.0
    md["conversion"] = (
        f"Marshall-Palmer Z = {MP_A:g} R^{MP_B:g}: R = (10^(dBZ/10)/{MP_A:g})^(1/{MP_B:g}); "
        f"reflectivity below {thr:g} dBZ (no echo) -> 0"
    )
    if p.undetect_dbz is not None:
        md["conversion"] += (
            f"; reflectivity at or below {p.undetect_dbz:g} dBZ (ODIM 'undetect', which "
            f"pysteps returns as {p.undetect_dbz:g} dBZ; real echoes there are below "
            "0.001 mm/h) -> 0; ODIM 'nodata' (outside coverage) -> NaN"
        )
    return rate


def _read_bom(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """BoM Rainfields netCDF (CF): ``precipitation`` in mm over ``valid_time - start_time``.

    Read with netCDF4 directly: pysteps' importer scans the coordinates element by element
    (about 1 s per file for products without ``valid_min``).
    """
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        var = nc.variables["precipitation"]
        units = getattr(var, "units", "")
        if units not in ("kg m-2", "mm"):
            raise DataValidationError(f"precipitation units {units!r}, expected kg m-2 or mm")
        data = np.ma.filled(np.ma.asarray(var[:], dtype=np.float32), np.nan)
        acc = (int(nc.variables["valid_time"][:]) - int(nc.variables["start_time"][:])) / 60.0
        y = nc.variables["y"][:]
    if acc <= 0:
        raise DataValidationError(f"{path}: start_time is not before valid_time")
    md = {"unit": "mm", "accutime": acc, "yorigin": "upper" if y[0] > y[-1] else "lower"}
    return data, md


def _proj_and_coords(md: dict[str, Any], ny: int, nx: int, first: Path, product: str):
    """CRS string and pixel-centre x/y (metres, y ascending) from pysteps' metadata."""
    if product == "bom":
        # the CF grid mapping (with its ellipsoid) and the pixel centres from the file
        import netCDF4

        with netCDF4.Dataset(first) as nc:
            gm = nc.variables[nc.variables["precipitation"].grid_mapping]
            from pyproj import CRS

            proj = CRS.from_cf({k: gm.getncattr(k) for k in gm.ncattrs()}).to_wkt()
            fac = 1000.0 if getattr(nc.variables["x"], "units", "m") == "km" else 1.0
            x = np.asarray(nc.variables["x"][:], dtype=np.float64) * fac
            y = np.asarray(nc.variables["y"][:], dtype=np.float64) * fac
        if y[0] > y[-1]:
            y = y[::-1]
        return proj, x, y
    proj = str(md["projection"]).strip()
    x1, x2, y1, y2 = (float(md[k]) for k in ("x1", "x2", "y1", "y2"))
    dx, dy = float(md["xpixelsize"]), float(md["ypixelsize"])
    if md.get("cartesian_unit") == "km":
        x1, x2, y1, y2, dx, dy = (v * 1000.0 for v in (x1, x2, y1, y2, dx, dy))

        def km_to_m(m: re.Match) -> str:
            v = float(m.group(2))
            return f"+{m.group(1)}={v * 1000.0 if v < 1e5 else v}"

        proj = re.sub(r"\+(a|b)=([0-9.eE+-]+)", km_to_m, proj)
    nxf, nyf = (x2 - x1) / dx, (y2 - y1) / dy
    if abs(nxf - nx) < 0.5 and abs(nyf - ny) < 0.5:  # outer edges
        x = x1 + (np.arange(nx) + 0.5) * dx
        y = y1 + (np.arange(ny) + 0.5) * dy
    elif abs(nxf - (nx - 1)) < 0.5 and abs(nyf - (ny - 1)) < 0.5:  # first/last centres
        x = np.linspace(x1, x2, nx)
        y = np.linspace(y1, y2, ny)
    else:
        raise DataValidationError(
            f"{first}: the georeferencing ({x1}..{x2} by {dx}, {y1}..{y2} by {dy}) does not "
            f"match the {ny}x{nx} image"
        )
    return proj, x, y


def _latlon32(ds: xr.Dataset) -> xr.Dataset:
    """lat/lon as float32 (0.4 m resolution at mid latitudes; halves the store size)."""
    return ds.assign_coords(lat=ds["lat"].astype(np.float32), lon=ds["lon"].astype(np.float32))


@dataclass(frozen=True)
class _RadarPlan:
    src: Path
    product: _Product
    files: list[Path]
    times: pd.DatetimeIndex
    chunk_time: int
    chunk_space: int = 0


def _time_axis(
    times: pd.DatetimeIndex, md0: dict[str, Any], src: Path
) -> tuple[pd.Timedelta, pd.DatetimeIndex]:
    """The event's regular step and full time axis (gaps included)."""
    step = (
        pd.Timedelta(pd.Series(np.diff(times.values)).mode().iloc[0])
        if len(times) > 1
        else (pd.Timedelta(minutes=float(md0.get("accutime", 5))))
    )
    full = pd.date_range(times[0], times[-1], freq=step)
    if not times.isin(full).all():
        raise DataValidationError(
            f"{src}: file times are not on a regular {step} grid; give one event per folder"
        )
    return step, full


def _rain_attrs(md0: dict[str, Any], prod: _Product) -> dict[str, Any]:
    attrs = {
        "units": "mm h-1",
        "standard_name": "rainfall_rate",
        "long_name": "rain rate",
        "source_units": md0["source_units"],
        "conversion": md0["conversion"],
        "provider": prod.provider,
        "product": prod.name,
        "time_reference": "nominal file time (end of the accumulation period)",
    }
    if "accumulation_minutes" in md0:
        attrs["accumulation_minutes"] = md0["accumulation_minutes"]
    if md0["source_units"] == "dBZ":
        attrs.update(zr_a=MP_A, zr_b=MP_B)
    return attrs


def _latlon_grid(md0: dict[str, Any], ny: int, nx: int, first: Path) -> xr.Dataset:
    """1-D pixel-centre ``lat`` (ascending) and ``lon`` (-180..180) of a regular lat/lon grid."""
    proj, lon, lat = _proj_and_coords(md0, ny, nx, first, "latlon")
    step = min(abs(float(md0["xpixelsize"])), abs(float(md0["ypixelsize"])))
    decimals = int(np.ceil(-np.log10(step))) + 2  # centres exact to 1 % of a pixel
    lon = np.round((lon + 180.0) % 360.0 - 180.0, decimals)
    lat = np.round(lat, decimals)
    if not (np.all(np.diff(lon) > 0) and np.all(np.diff(lat) > 0)):
        raise DataValidationError(
            f"{first}: the longitudes cross the antimeridian or are not increasing; this grid "
            "cannot be written with 1-D lat/lon"
        )
    grid = xr.Dataset(
        coords={
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        }
    )
    return grid.assign_attrs(proj=proj)


def _projected_grid(md0: dict[str, Any], ny: int, nx: int, first: Path, product: str):
    proj, x, y = _proj_and_coords(md0, ny, nx, first, product)
    grid = xr.Dataset(
        coords={
            "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
            "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
        }
    )
    return grid.assign_attrs(proj=proj)


def _template(
    plan: _RadarPlan, full: pd.DatetimeIndex, step: pd.Timedelta, md0: dict[str, Any], shape
) -> xr.Dataset:
    import dask.array as da

    ny, nx = shape
    prod, times = plan.product, plan.times
    if prod.latlon:
        grid = _latlon_grid(md0, ny, nx, plan.files[0])
    else:
        grid = _projected_grid(md0, ny, nx, plan.files[0], prod.name)
    proj = grid.attrs.pop("proj")
    dims = ("time", "lat", "lon") if prod.latlon else ("time", "y", "x")
    data = da.zeros((len(full), ny, nx), dtype=np.float32, chunks=(plan.chunk_time, ny, nx))
    tpl = xr.Dataset(
        {"rain_rate": (dims, data, _rain_attrs(md0, prod))},
        coords={"time": ("time", full.values, {"long_name": "time", "step": str(step)})},
    ).assign_coords(grid.coords)
    with warnings.catch_warnings():  # pyproj: "angle ... lost in conversion to CF" (somerc)
        warnings.simplefilter("ignore", UserWarning)
        tpl = set_crs(tpl, proj)
        if not prod.latlon:
            tpl = _latlon32(add_latlon(tpl, proj))
    tpl.attrs.update(
        title=f"{prod.provider} radar rain rate, {times[0]:%Y-%m-%d}",
        institution=prod.provider,
        source=f"{prod.name} files converted by stgeo (pysteps importers)",
        Conventions="CF-1.8",
        missing_frames=",".join(str(t) for t in full.difference(times)),
    )
    return tpl


def _store_chunks(plan: _RadarPlan, dims: Sequence[str]) -> dict[str, int]:
    chunks = {"time": plan.chunk_time}
    if plan.chunk_space > 0:
        chunks.update({d: plan.chunk_space for d in dims if d != "time"})
    return chunks


class RadarRecipe(Recipe):
    """Convert one radar event (a folder of product files) into a ``rain_rate`` store.

    Source: the folder holding one event's files (all of one product), e.g.
    ``../shared/data/radar/radar/fmi/pgm/20160928``. Options: ``product`` (``fmi``,
    ``knmi``, ``bom``, ``mch``, ``rmi``, ``opera`` or ``mrms``; default: detected from file
    names), ``chunk_time`` (frames per chunk; default 8, 1 for the large-area ``opera`` and
    ``mrms``), ``chunk_space`` (spatial chunk edge in pixels; default 0 = the full grid,
    512 for ``opera`` and ``mrms``) and ``max_frames`` (convert only the first N frames;
    default 0 = all; recorded in the store, so such a store is never taken for the whole
    event). Named events (``--all-events``): :data:`RADAR_EVENTS`.

    Raises :class:`~stgeo.errors.DataValidationError` on no recognised files,
    unreadable/truncated files, checksum mismatch or a changing grid.

    Examples
    --------
    >>> from stgeo.datasets import run_recipe  # doctest: +SKIP
    >>> run_recipe("radar", "../shared/data/radar/radar/mch/20150515", "mch.zarr")  # doctest: +SKIP
    'mch.zarr'
    """

    def inputs(
        self,
        source: str | None,
        *,
        product: str | None = None,
        chunk_time: int | None = None,
        chunk_space: int | None = None,
        max_frames: int = 0,
    ) -> RecipeInputs:
        src = require_file(str(source), "radar source folder")
        prod, files = _detect(list_files(src), product)
        times = [_file_time(prod, f) for f in files]
        order = np.argsort(np.asarray(times, dtype="datetime64[ns]"), kind="stable")
        files = [files[i] for i in order]
        times = pd.DatetimeIndex([times[i] for i in order])
        if times.has_duplicates:
            raise DataValidationError(
                f"{src}: several files for the same time {times[times.duplicated()][0]}"
            )
        if max_frames < 0:
            raise DataValidationError(f"max_frames must be >= 0 (0: all), got {max_frames}")
        if max_frames:
            files, times = files[:max_frames], times[:max_frames]
        chunk_time = max(1, int(prod.chunk_time if chunk_time is None else chunk_time))
        chunk_space = max(0, int(prod.chunk_space if chunk_space is None else chunk_space))
        plan = _RadarPlan(src, prod, files, times, chunk_time, chunk_space)
        # options shape the store and its fingerprint; the defaults of the small products are
        # left out so their stores keep the fingerprint they were built with
        opts: dict[str, Any] = {"product": prod.name, "chunk_time": chunk_time}
        if chunk_space:
            opts["chunk_space"] = chunk_space
        if max_frames:
            opts["max_frames"] = int(max_frames)
        return RecipeInputs(files=files, options=opts, root=src, plan=plan)

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        plan: _RadarPlan = inputs.plan
        first, md0 = read_radar_frame(plan.files[0], plan.product.name)
        step, full = _time_axis(plan.times, md0, plan.src)
        tpl = _template(plan, full, step, md0, first.shape)
        reader = _BlockReader(
            plan, first, flip=md0.get("yorigin", "upper") == "upper", dims=tpl.rain_rate.dims
        )
        regions = [
            (start, functools.partial(reader.block, full[start : start + plan.chunk_time]))
            for start in range(0, len(full), plan.chunk_time)
        ]
        chunks = _store_chunks(plan, tpl.rain_rate.dims)
        return RecipeOutput(tpl, chunks=chunks, regions=regions, close=reader.close)


class _BlockReader:
    """Reads the frames of a block of times (NaN where a file is missing)."""

    def __init__(
        self, plan: _RadarPlan, first: np.ndarray, *, flip: bool, dims: Sequence[str]
    ) -> None:
        self.by_time = dict(zip(plan.times, plan.files, strict=True))
        self.first_file, self.first = plan.files[0], first
        self.shape = first.shape
        self.product, self.flip, self.dims = plan.product.name, flip, tuple(dims)
        # gzip/PIL decoding overlaps in threads; netCDF4/HDF5/GRIB are not thread-safe: one
        workers = 2 if self.product in ("fmi", "mch") else 1
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def _read(self, f: Path) -> np.ndarray:
        if f == self.first_file and self.first is not None:
            first, self.first = self.first, None  # used once: do not hold a large frame
            return first
        return read_radar_frame(f, self.product)[0]

    def block(self, block: pd.DatetimeIndex) -> xr.Dataset:
        ny, nx = self.shape
        arr = np.full((len(block), ny, nx), np.nan, dtype=np.float32)
        todo = [(i, self.by_time[t]) for i, t in enumerate(block) if t in self.by_time]
        frames = self.pool.map(self._read, [f for _, f in todo])
        for (i, f), frame in zip(todo, frames, strict=True):
            if frame.shape != (ny, nx):
                raise DataValidationError(
                    f"{f}: image shape {frame.shape} differs from the event's {(ny, nx)}; "
                    "one folder must hold one product on one grid"
                )
            arr[i] = frame[::-1] if self.flip else frame
        return xr.Dataset({"rain_rate": (self.dims, arr)}, coords={"time": block.values})

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def convert_radar_events(
    root: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    events: Sequence[str] | None = None,
    **options: Any,
) -> dict[str, str]:
    """Convert the named radar events under ``root`` (the shared data folder).

    The same as :func:`stgeo.datasets.run_events` for ``"radar"`` and
    ``stgeo recipe radar --all-events ROOT --dest-dir DIR``.

    Parameters
    ----------
    root : path
        Folder holding ``radar/radar/...`` (``../shared/data``).
    dest_dir : path
        Stores are written as ``dest_dir/<event>.zarr``.
    events : list of str, optional
        Subset of :data:`RADAR_EVENTS` keys (default: all 10, i.e. the 8 pysteps example
        events and the 2 large-area sources; :data:`PYSTEPS_EVENTS` lists the 8).

    Returns
    -------
    dict
        Event name -> store path.

    Examples
    --------
    >>> convert_radar_events("../shared/data", "stores", events=["rmi-20210704"])  # doctest: +SKIP
    {'rmi-20210704': 'stores/rmi-20210704.zarr'}
    """
    return run_events("radar", root, dest_dir, events=events, **options)


register_recipe(
    "radar",
    RadarRecipe,
    options={"product": str, "chunk_time": int, "chunk_space": int, "max_frames": int},
    description="radar event folder (FMI PGM, KNMI HDF5, BoM netCDF, MeteoSwiss GIF, RMI ODIM, "
    "OPERA ODIM composite, MRMS GRIB2) -> rain_rate mm/h",
    events=RADAR_EVENTS,
)

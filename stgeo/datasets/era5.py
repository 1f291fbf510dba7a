"""ERA5 single-level fields (netCDF or GRIB) -> canonical lat/lon store (recipe ``era5``).

Reads a netCDF file (or GRIB when ``cfgrib`` is installed) as published by the Copernicus
Climate Data Store, e.g. ``t2m(time, latitude, longitude)``, and writes each selected
variable on ``(time, lat, lon)`` with **ascending latitude**, 1-D ``lat``/``lon`` coordinates
(CF attributes), CF units/standard names (``t2m``: ``K``, ``air_temperature``), scalar GRIB
coordinates (``number``, ``step``, ``surface``, ``valid_time``) dropped. Longitudes are kept
as published (-180..180 or 0..360).

Chunking: the full lat/lon grid and as many hourly frames as fit ~16 MiB (between 8 and
256): 256 frames for a regional grid, 8 for a global 0.25 deg grid, so a 12-in/12-out
window touches one or two chunks.

Examples
--------
>>> from stgeo.datasets.era5 import KNOWN_VARIABLES
>>> KNOWN_VARIABLES["t2m"]["units"]
'K'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DataValidationError, DependencyError, UnknownNameError
from .protocol import Recipe, RecipeInputs, RecipeOutput, require_file, time_chunk
from .registry import register_recipe

__all__ = ["KNOWN_VARIABLES", "Era5Recipe", "read_era5"]

KNOWN_VARIABLES: dict[str, dict[str, str]] = {
    "t2m": {"units": "K", "standard_name": "air_temperature", "long_name": "2 metre temperature"},
    "d2m": {
        "units": "K",
        "standard_name": "dew_point_temperature",
        "long_name": "2 metre dewpoint temperature",
    },
    "u10": {
        "units": "m s-1",
        "standard_name": "eastward_wind",
        "long_name": "10 metre U wind component",
    },
    "v10": {
        "units": "m s-1",
        "standard_name": "northward_wind",
        "long_name": "10 metre V wind component",
    },
    "msl": {
        "units": "Pa",
        "standard_name": "air_pressure_at_mean_sea_level",
        "long_name": "mean sea level pressure",
    },
    "sp": {"units": "Pa", "standard_name": "surface_air_pressure", "long_name": "surface pressure"},
    "tp": {
        "units": "m",
        "standard_name": "lwe_thickness_of_precipitation_amount",
        "long_name": "total precipitation",
    },
    "tcc": {"units": "1", "standard_name": "cloud_area_fraction", "long_name": "total cloud cover"},
}

_RENAME = {"latitude": "lat", "longitude": "lon", "valid_time": "time"}


def _open(path: Path) -> xr.Dataset:
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"GRIB"):
        try:
            import cfgrib  # noqa: F401
        except ImportError:
            raise DependencyError(
                f"{path} is GRIB; reading it needs cfgrib and eccodes (`pip install cfgrib "
                "eccodes`), or convert it to netCDF"
            ) from None
        try:
            return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
        except Exception as e:
            raise DataValidationError(f"cannot read {path} as GRIB ({e}); truncated?") from None
    if not magic.startswith((b"\x89HDF", b"CDF")):
        raise DataValidationError(
            f"{path} is neither netCDF nor GRIB (first bytes {magic!r}); expected an ERA5 file "
            "downloaded from the Copernicus Climate Data Store"
        )
    try:
        return xr.open_dataset(path, engine="netcdf4")
    except Exception as e:
        raise DataValidationError(
            f"cannot open {path} as netCDF ({type(e).__name__}: {e}); the file is truncated "
            "or corrupted"
        ) from None


def read_era5(path: str, variables: tuple = ()) -> xr.Dataset:
    """Open an ERA5 file and return the canonical ``(time, lat, lon)`` dataset (lazy).

    Parameters
    ----------
    path : str
        netCDF or GRIB file.
    variables : tuple of str
        Variables to keep (default: every variable with time, latitude and longitude).

    Raises
    ------
    DataValidationError
        Not an ERA5-like file (no time/latitude/longitude), truncated file.
    UnknownNameError
        A requested variable is absent.

    Examples
    --------
    >>> ds = read_era5("../shared/data/era5/era5-2mt-2019-03-uk.nc")  # doctest: +SKIP
    >>> float(ds.lat[0]) < float(ds.lat[-1])  # doctest: +SKIP
    True
    """
    p = require_file(path, "ERA5 file")
    ds = _rename_dims(_open(p), p)
    names = _pick_variables(ds, p, variables)
    ds = _drop_extra_dims(ds[names], p, names)
    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise DataValidationError(f"{p}: the time coordinate could not be decoded")
    ds = ds.sortby("lat").sortby("time")
    ds["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude"}
    ds["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude"}
    for n in names:
        a = {k: v for k, v in ds[n].attrs.items() if not k.startswith("GRIB_")}
        known = KNOWN_VARIABLES.get(n, {})
        a.update(known)  # CF names (cfgrib writes standard_name "unknown" for t2m)
        if "units" not in a:
            raise DataValidationError(f"{p}: variable {n!r} has no units")
        ds[n].attrs = a
        ds[n].encoding = {}
    ds.attrs = {
        "title": f"ERA5 {', '.join(names)}",
        "source": f"ECMWF ERA5 reanalysis ({p.name})",
        "institution": "European Centre for Medium-Range Weather Forecasts",
        "Conventions": "CF-1.8",
        "license": "Copernicus licence: contains modified Copernicus Climate Change Service "
        "information",
    }
    return ds


def _rename_dims(ds: xr.Dataset, p: Path) -> xr.Dataset:
    """latitude/longitude/valid_time -> lat/lon/time; time, lat and lon must then exist."""
    ren = {k: v for k, v in _RENAME.items() if k in ds.dims or k in ds.coords}
    if "valid_time" in ren and "time" in ds.dims:
        ren.pop("valid_time")
    if "time" in ds.coords and "time" not in ds.dims and "valid_time" in ds.dims:
        ds = ds.drop_vars("time")
    ds = ds.rename(ren)
    missing = [d for d in ("time", "lat", "lon") if d not in ds.dims]
    if missing:
        raise DataValidationError(
            f"{p} is not an ERA5 single-level file: dims {missing} are missing (it has "
            f"{dict(ds.sizes)}); expected time, latitude and longitude"
        )
    return ds


def _pick_variables(ds: xr.Dataset, p: Path, variables: tuple) -> list[str]:
    gridded = [str(k) for k, v in ds.data_vars.items() if {"time", "lat", "lon"} <= set(v.dims)]
    names = list(variables) or gridded
    for n in names:
        if n not in gridded:
            raise UnknownNameError(
                f"variable {n!r} not in {p.name}; it has {', '.join(gridded) or '(none)'}"
            )
    if not names:
        raise DataValidationError(f"{p} has no variable on (time, latitude, longitude)")
    return names


def _drop_extra_dims(ds: xr.Dataset, p: Path, names: list[str]) -> xr.Dataset:
    """Drop size-1 extra dims and scalar coords; refuse levels/members to choose from."""
    extra = [d for v in names for d in ds[v].dims if d not in ("time", "lat", "lon")]
    for d in set(extra):
        if ds.sizes[d] != 1:
            raise DataValidationError(
                f"{p}: variables have the extra dimension {d!r} of size {ds.sizes[d]}; "
                "select one level/member before converting"
            )
        ds = ds.isel({d: 0})
    drop = [c for c in ds.coords if c not in ("time", "lat", "lon")]
    return ds.drop_vars(drop).transpose("time", "lat", "lon")


class Era5Recipe(Recipe):
    """Convert an ERA5 netCDF/GRIB file into a canonical store (ascending latitude).

    Source: the file (or a folder holding exactly one ``.nc``, else one ``.grib``).
    Option: ``variables`` (variables to keep, default all on time/latitude/longitude,
    e.g. ``t2m``).

    Examples
    --------
    >>> from stgeo.datasets import run_recipe  # doctest: +SKIP
    >>> src = "../shared/data/era5/era5-2mt-2019-03-uk.nc"
    >>> run_recipe("era5", src, "t2m.zarr")  # doctest: +SKIP
    't2m.zarr'
    """

    def inputs(self, source: str | None, *, variables: tuple = ()) -> RecipeInputs:
        src = require_file(str(source), "ERA5 source")
        if src.is_dir():
            cands = sorted(src.glob("*.nc")) or sorted(src.glob("*.grib")) + sorted(
                src.glob("*.grb")
            )
            if len(cands) != 1:
                raise DataValidationError(
                    f"{src} holds {len(cands)} ERA5 files ({[c.name for c in cands]}); give "
                    "one file"
                )
            src = cands[0]
        opts: dict[str, Any] = {"variables": list(variables)}
        return RecipeInputs(files=[src], options=opts, root=src.parent, plan=src)

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        ds = read_era5(str(inputs.plan), tuple(inputs.options["variables"]))
        frame = sum(ds[v].dtype.itemsize for v in ds.data_vars) * ds.sizes["lat"] * ds.sizes["lon"]
        return RecipeOutput(ds, chunks={"time": time_chunk(frame)}, close=ds.close)

    def write(self, inputs: RecipeInputs, output: RecipeOutput, dest: str) -> str:
        try:
            return super().write(inputs, output, dest)
        except (OSError, RuntimeError, ValueError) as e:
            raise DataValidationError(
                f"cannot read the data of {inputs.plan} ({type(e).__name__}: {e}); truncated file?"
            ) from None


register_recipe(
    "era5",
    Era5Recipe,
    options={"variables": tuple},
    description="ERA5 single-level netCDF/GRIB (e.g. t2m) -> (time, lat, lon), ascending lat",
)

"""The canonical data model of stgeo and its validation.

A forecastable dataset has

* a ``time`` dimension with a ``datetime64`` coordinate, monotonic increasing, no
  duplicates and a regular step (an optional ``event`` coordinate along ``time`` marks
  independent sequences: the step is checked within each event and no window crosses
  from one event into another; gaps are only allowed between events or when asked for);
* two spatial dimensions, ``(y, x)`` for projected or index grids or ``(lat, lon)`` for
  regular latitude/longitude grids, spatial dims last;
* optional extra dims such as ``channel`` (e.g. inflow/outflow);
* numeric data variables with CF attributes (``units``; ``standard_name`` where one exists);
* ``lat``/``lon`` coordinates (1-D for lat/lon grids, 2-D ``(y, x)`` otherwise) in degrees,
  and for projected grids a ``crs`` variable (``crs_wkt``/``spatial_ref`` attributes) that
  the data variables point to with ``grid_mapping = "crs"``.

:func:`validate` checks all of this and raises a specific
:class:`~stgeo.errors.DataValidationError` (what is wrong, what was expected, how to fix).

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=8, shape=(32, 32), seed=0)
>>> stgeo.validate(ds) is ds
True
>>> stgeo.conventions.spatial_dims(ds)
('y', 'x')
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataValidationError, StgeoTypeError, UnknownNameError

__all__ = [
    "CHANNEL_DIM",
    "EVENT_COORD",
    "INIT_TIME_DIM",
    "LEAD_TIME_DIM",
    "TIME_DIM",
    "VALID_TIME_COORD",
    "add_latlon",
    "as_dataset",
    "data_variables",
    "find_spatial_dims",
    "freq_string",
    "segments",
    "set_crs",
    "spatial_dims",
    "time_step",
    "validate",
]

TIME_DIM = "time"
CHANNEL_DIM = "channel"
EVENT_COORD = "event"
# forecast output: one forecast per init_time, one frame per lead_time (a timedelta), and
# valid_time = init_time + lead_time as a coordinate
INIT_TIME_DIM = "init_time"
LEAD_TIME_DIM = "lead_time"
VALID_TIME_COORD = "valid_time"
SPATIAL_DIM_PAIRS: tuple[tuple[str, str], ...] = (("y", "x"), ("lat", "lon"))

# common misnamings -> canonical name, used for "how to fix" hints
_ALIASES = {
    "latitude": "lat",
    "longitude": "lon",
    "rows": "y",
    "row": "y",
    "cols": "x",
    "col": "x",
    "height": "y",
    "width": "x",
    "south_north": "y",
    "west_east": "x",
    "projection_y_coordinate": "y",
    "projection_x_coordinate": "x",
    "valid_time": "time",
    "times": "time",
    "date": "time",
    "datetime": "time",
    "t": "time",
    "frame": "time",
}


def as_dataset(obj: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """``obj`` as a Dataset (a DataArray becomes its only variable, named ``"data"`` if unnamed).

    Raises
    ------
    StgeoTypeError
        If ``obj`` is neither a Dataset nor a DataArray.

    Examples
    --------
    >>> import xarray as xr
    >>> list(as_dataset(xr.DataArray([1.0], dims="time", name="rain")).data_vars)
    ['rain']
    """
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "data")
    if isinstance(obj, xr.Dataset):
        return obj
    raise StgeoTypeError(
        f"expected an xarray Dataset or DataArray, got {type(obj).__name__}; wrap numpy arrays "
        "with xarray.DataArray(arr, dims=('time', 'y', 'x'), coords={'time': times})"
    )


def _rename_hint(dims: Iterable[Hashable]) -> str:
    mapping = {d: _ALIASES[str(d).lower()] for d in dims if str(d).lower() in _ALIASES}
    if mapping:
        return f" Rename them, e.g. ds = ds.rename({mapping!r})."
    return ""


def spatial_dims(obj: xr.Dataset | xr.DataArray) -> tuple[str, str]:
    """Return the names of the two spatial dims, ``("y", "x")`` or ``("lat", "lon")``.

    Raises
    ------
    DataValidationError
        If neither pair is present, with a rename hint for common misnamings.

    Examples
    --------
    >>> import xarray as xr, numpy as np
    >>> spatial_dims(xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "lat", "lon")))
    ('lat', 'lon')
    """
    pair = find_spatial_dims(obj)
    if pair is not None:
        return pair
    dims = set(obj.dims)
    raise DataValidationError(
        f"no spatial dimensions found: dims are {tuple(obj.dims)}, expected ('y', 'x') for "
        "projected/index grids or ('lat', 'lon') for regular lat/lon grids." + _rename_hint(dims)
    )


def find_spatial_dims(obj: xr.Dataset | xr.DataArray) -> tuple[str, str] | None:
    """Like :func:`spatial_dims`, but None when ``obj`` has no spatial dim pair.

    Examples
    --------
    >>> import xarray as xr
    >>> find_spatial_dims(xr.DataArray([1.0], dims="time")) is None
    True
    """
    dims = set(obj.dims)
    for pair in SPATIAL_DIM_PAIRS:
        if set(pair) <= dims:
            return pair
    return None


def data_variables(ds: xr.Dataset | xr.DataArray) -> list[str]:
    """Names of the gridded data variables (those with time and both spatial dims)."""
    ds = as_dataset(ds)
    try:
        sdims = spatial_dims(ds)
    except DataValidationError:
        return []
    return [
        str(k) for k, v in ds.data_vars.items() if TIME_DIM in v.dims and set(sdims) <= set(v.dims)
    ]


def segments(time: xr.DataArray | pd.Index, step: pd.Timedelta, event=None) -> np.ndarray:
    """Label contiguous runs of the time axis: a new segment starts at each gap or event change.

    Parameters
    ----------
    time : array of datetime64
        The time coordinate.
    step : Timedelta
        The regular time step.
    event : array, optional
        Event labels along time; a change of label starts a new segment.

    Returns
    -------
    numpy.ndarray of int64
        Segment number of every time index (0, 0, 0, 1, 1, ...).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.to_datetime(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 03:00"])
    >>> segments(t, pd.Timedelta("1h")).tolist()
    [0, 0, 1]
    """
    t = np.asarray(time, dtype="datetime64[ns]")
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    brk = np.diff(t) != np.timedelta64(pd.Timedelta(step).value, "ns")
    if event is not None:
        ev = np.asarray(event)
        brk |= ev[1:] != ev[:-1]
    return np.concatenate([[0], np.cumsum(brk)]).astype(np.int64)


def time_step(obj: xr.Dataset | xr.DataArray) -> pd.Timedelta:
    """The regular time step of ``obj`` (the most common difference within events).

    Examples
    --------
    >>> import stgeo
    >>> stgeo.conventions.time_step(stgeo.testing.storm_cells(n_times=4, shape=(16, 16)))
    Timedelta('0 days 00:05:00')
    """
    if TIME_DIM not in obj.dims:
        raise DataValidationError(
            f"no {TIME_DIM!r} dimension: dims are {tuple(obj.dims)}." + _rename_hint(obj.dims)
        )
    if "step" in obj[TIME_DIM].attrs:
        return pd.Timedelta(obj[TIME_DIM].attrs["step"])
    t = np.asarray(obj[TIME_DIM].values)
    if not np.issubdtype(t.dtype, np.datetime64):
        raise DataValidationError(
            f"the time coordinate has dtype {t.dtype}, expected datetime64. Decode it with "
            "xarray.decode_cf(ds) or ds.assign_coords(time=pandas.to_datetime(...))."
        )
    if t.size < 2:
        raise DataValidationError(
            "cannot infer the time step from fewer than 2 time steps; "
            "set ds.time.attrs['step'] = '5min' (any pandas Timedelta string)"
        )
    d = np.diff(t.astype("datetime64[ns]")).astype(np.int64)
    if EVENT_COORD in obj.coords and obj[EVENT_COORD].dims == (TIME_DIM,):
        ev = np.asarray(obj[EVENT_COORD].values)
        d = d[ev[1:] == ev[:-1]]
    d = d[d > 0]
    if d.size == 0:
        raise DataValidationError("cannot infer the time step: no increasing consecutive times")
    vals, counts = np.unique(d, return_counts=True)
    return pd.Timedelta(int(vals[np.argmax(counts)]), unit="ns")


def _check_time(ds: xr.Dataset, allow_gaps: bool) -> None:
    if TIME_DIM not in ds.dims:
        raise DataValidationError(
            f"missing the {TIME_DIM!r} dimension: dims are {tuple(ds.dims)}; a forecastable "
            "dataset "
            "needs a time axis." + _rename_hint(ds.dims)
        )
    if TIME_DIM not in ds.coords:
        raise DataValidationError(
            "the time dimension has no coordinate; assign one with "
            "ds.assign_coords(time=pandas.date_range(start, periods=n, freq='5min'))"
        )
    t = np.asarray(ds[TIME_DIM].values)
    if not np.issubdtype(t.dtype, np.datetime64):
        raise DataValidationError(
            f"the time coordinate has dtype {t.dtype}, expected datetime64. Decode it with "
            "xarray.decode_cf(ds) or ds.assign_coords(time=pandas.to_datetime(ds.time.values))."
        )
    if np.isnat(t).any():
        raise DataValidationError(
            f"the time coordinate has {int(np.isnat(t).sum())} missing (NaT) values; drop them "
            "with ds.sel(time=ds.time.notnull())"
        )
    has_event = EVENT_COORD in ds.coords and ds[EVENT_COORD].dims == (TIME_DIM,)
    ev = np.asarray(ds[EVENT_COORD].values) if has_event else np.zeros(t.size, dtype=int)
    tn = t.astype("datetime64[ns]")
    same = ev[1:] == ev[:-1]
    d = np.diff(tn)
    zero = np.timedelta64(0, "ns")
    dup = same & (d == zero)
    if dup.any():
        i = int(np.argmax(dup)) + 1
        raise DataValidationError(
            f"duplicated time {pd.Timestamp(tn[i])} (and {int(dup.sum()) - 1} more); "
            "remove duplicates with ds.drop_duplicates('time')"
        )
    back = same & (d < zero)
    if back.any():
        i = int(np.argmax(back)) + 1
        raise DataValidationError(
            f"time is not monotonic increasing: {pd.Timestamp(tn[i])} follows "
            f"{pd.Timestamp(tn[i - 1])}; sort with ds.sortby('time')"
        )
    if t.size < 2:
        return
    step = time_step(ds)
    stepn = np.timedelta64(step.value, "ns")
    off = same & (d % stepn != zero)
    if off.any():
        i = int(np.argmax(off)) + 1
        raise DataValidationError(
            f"irregular time axis: {pd.Timestamp(tn[i - 1])} -> {pd.Timestamp(tn[i])} is not a "
            f"multiple of the time step {step}; resample to a regular step, e.g. "
            f"ds.resample(time='{freq_string(step)}').mean()"
        )
    gaps = same & (d > stepn)
    if gaps.any() and not allow_gaps:
        i = int(np.argmax(gaps)) + 1
        raise DataValidationError(
            f"the time axis has {int(gaps.sum())} gap(s), the first from "
            f"{pd.Timestamp(tn[i - 1])} to {pd.Timestamp(tn[i])} (step {step}). Fill them "
            f"(ds.resample(time='{freq_string(step)}').asfreq() inserts NaN frames), mark "
            "independent sequences with an 'event' "
            "coordinate along time, or pass allow_gaps=True: windows never cross a gap."
        )


def freq_string(step: pd.Timedelta) -> str:
    """A compact string for a time step that pandas parses back to the same step.

    Examples
    --------
    >>> import pandas as pd
    >>> [freq_string(pd.Timedelta(s)) for s in ("5min", "1h", "30s")]
    ['5min', '1h', '30s']
    >>> pd.Timedelta(freq_string(pd.Timedelta("1D"))) == pd.Timedelta("1D")
    True
    """
    try:
        s = pd.tseries.frequencies.to_offset(step).freqstr
    except ValueError:  # pragma: no cover - exotic steps
        return str(step)
    s = s if s[:1].isdigit() else f"1{s}"
    return s if pd.Timedelta(s) == step else str(step)


def _check_latlon(ds: xr.Dataset, sdims: tuple[str, str], require: bool) -> None:
    if sdims == ("lat", "lon"):
        lat, lon = ds["lat"], ds["lon"]
    elif "lat" in ds.coords and "lon" in ds.coords:
        lat, lon = ds["lat"], ds["lon"]
        if not set(lat.dims) <= set(sdims) or not set(lon.dims) <= set(sdims):
            raise DataValidationError(
                f"lat/lon coordinates must be defined on the spatial dims {sdims}, "
                f"got lat{lat.dims} and lon{lon.dims}"
            )
    else:
        if require:
            raise DataValidationError(
                "no lat/lon coordinates: a projected grid needs 2-D 'lat' and 'lon' coordinates "
                "on (y, x). Compute them with stgeo.conventions.add_latlon(ds, crs) from the "
                "projection, or pass strict=False for an index grid without geography."
            )
        return
    for name, arr, lo, hi in (("lat", lat, -90.0, 90.0), ("lon", lon, -180.0, 360.0)):
        v = np.asarray(arr.values, dtype=float)
        if not np.issubdtype(np.asarray(arr.values).dtype, np.number):
            raise DataValidationError(f"{name} must be numeric degrees, got dtype {arr.dtype}")
        fin = v[np.isfinite(v)]
        if fin.size and (fin.min() < lo or fin.max() > hi):
            raise DataValidationError(
                f"{name} values out of range: found [{fin.min():.4g}, {fin.max():.4g}], expected "
                f"degrees within [{lo:g}, {hi:g}]. Are these projected metres or radians? Put "
                "projected coordinates in x/y and compute lat/lon with "
                "stgeo.conventions.add_latlon(ds, crs)."
            )


def _check_values(ds: xr.Dataset, names: Sequence[str]) -> None:
    for name in names:
        da = ds[name]
        if not (np.issubdtype(da.dtype, np.floating) or np.issubdtype(da.dtype, np.integer)):
            raise DataValidationError(
                f"variable {name!r} has dtype {da.dtype}; stgeo needs numeric (float or integer) "
                f"data. Convert it, e.g. ds[{name!r}] = ds[{name!r}].astype('float32')"
            )
        if not np.issubdtype(da.dtype, np.floating):
            continue
        # cheap first look at a few frames; only if they are all NaN scan the whole variable
        nt = da.sizes[TIME_DIM]
        idx = sorted({0, nt // 2, nt - 1})
        if bool(da.isel({TIME_DIM: idx}).notnull().any()):
            continue
        if not bool(da.notnull().any()):
            raise DataValidationError(
                f"variable {name!r} is all NaN: nothing to learn from or score. Check the reader "
                "(fill value, scale factor, mask) or drop the variable."
            )


def _checked_variables(
    dset: xr.Dataset, variables: str | Sequence[str] | None, sdims: tuple[str, str]
) -> list[str]:
    """The variables to check: ``variables`` (each must be gridded), default every gridded one."""
    gridded = data_variables(dset)
    if variables is None:
        if not gridded:
            raise DataValidationError(
                f"no data variable has the dims ('time', {sdims[0]!r}, {sdims[1]!r}); variables: "
                f"{ {k: v.dims for k, v in dset.data_vars.items()} }"
            )
        names = list(gridded)
    else:
        names = [variables] if isinstance(variables, str) else list(variables)
        for n in names:
            if n not in dset.data_vars:
                raise UnknownNameError(
                    f"unknown variable {n!r}; valid variables are: {', '.join(gridded) or '(none)'}"
                )
            if n not in gridded:
                raise DataValidationError(
                    f"variable {n!r} has dims {dset[n].dims}; it needs 'time' and {sdims}"
                )
    for n in names:
        v = dset[n]
        if v.dims[-2:] != sdims:
            raise DataValidationError(
                f"variable {n!r} has dims {v.dims}; the spatial dims {sdims} must come last. "
                f"Fix with ds[{n!r}] = ds[{n!r}].transpose(..., {sdims[0]!r}, {sdims[1]!r})"
            )
    return names


def _check_sizes(
    dset: xr.Dataset,
    sdims: tuple[str, str],
    min_grid: tuple[int, int] | None,
    min_times: int | None,
) -> None:
    ny, nx = dset.sizes[sdims[0]], dset.sizes[sdims[1]]
    if min_grid is not None and (ny < min_grid[0] or nx < min_grid[1]):
        raise DataValidationError(
            f"the grid is {ny}x{nx} but at least {min_grid[0]}x{min_grid[1]} is needed; use a "
            "larger domain or a model configured for smaller grids"
        )
    if min_times is not None and dset.sizes[TIME_DIM] < min_times:
        raise DataValidationError(
            f"only {dset.sizes[TIME_DIM]} time steps, at least {min_times} are needed "
            "(input steps + output steps)"
        )


def _check_units(dset: xr.Dataset, names: Sequence[str]) -> None:
    for n in names:
        if "units" not in dset[n].attrs:
            raise DataValidationError(
                f"variable {n!r} has no 'units' attribute (CF); set it, e.g. "
                f"ds[{n!r}].attrs['units'] = 'mm h-1', or pass strict=False"
            )


def validate(
    ds: xr.Dataset | xr.DataArray,
    *,
    variables: str | Sequence[str] | None = None,
    min_grid: tuple[int, int] | None = None,
    min_times: int | None = None,
    allow_gaps: bool = False,
    strict: bool = True,
    check_values: bool = True,
) -> xr.Dataset | xr.DataArray:
    """Check that ``ds`` follows the canonical data model; return it unchanged.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        The data to check.
    variables : str or list of str, optional
        Variables that must exist (default: every variable with time and spatial dims).
    min_grid : (int, int), optional
        Smallest spatial size (ny, nx) a model needs.
    min_times : int, optional
        Smallest number of time steps needed (e.g. ``in_steps + out_steps``).
    allow_gaps : bool
        Accept gaps in the time axis (windows never cross them).
    strict : bool
        Also require CF metadata: ``units`` on every variable and lat/lon coordinates.
        Entry points such as :func:`stgeo.forecast` use ``strict=False``.
    check_values : bool
        Check dtypes and that no variable is entirely NaN (reads a few frames lazily;
        the whole variable only when those frames are all NaN).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        ``ds`` itself, so calls can be chained.

    Raises
    ------
    DataValidationError
        Missing or misnamed dims, non-datetime, non-monotonic, duplicated or irregular time,
        gaps, all-NaN variables, non-numeric dtype, too small grid, lat/lon out of range,
        missing units (strict).
    UnknownNameError
        A requested variable does not exist (the message lists the valid ones).

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=6, shape=(24, 24), seed=1)
    >>> _ = stgeo.validate(ds, variables="rain_rate", min_grid=(16, 16))
    >>> try:
    ...     stgeo.validate(ds.rename(time="date"))
    ... except stgeo.errors.DataValidationError as err:
    ...     print(str(err)[:30])
    missing the 'time' dimension:
    """
    dset = as_dataset(ds)
    _check_time(dset, allow_gaps)
    sdims = spatial_dims(dset)
    names = _checked_variables(dset, variables, sdims)
    _check_sizes(dset, sdims, min_grid, min_times)
    _check_latlon(dset, sdims, require=strict)
    if strict:
        _check_units(dset, names)
    if check_values:
        _check_values(dset, names)
    return ds


# -- helpers used by recipes and generators ----------------------------------------------
def set_crs(ds: xr.Dataset, crs: Any, *, name: str = "crs") -> xr.Dataset:
    """Attach a CF grid-mapping variable describing ``crs`` and point the data variables to it.

    Parameters
    ----------
    ds : xarray.Dataset
    crs : pyproj.CRS, str or int
        Anything ``pyproj.CRS.from_user_input`` accepts (proj string, EPSG code, WKT).

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=2, shape=(8, 8))
    >>> ds = set_crs(ds, "+proj=stere +lat_0=90 +lon_0=25 +lat_ts=60 +ellps=WGS84")
    >>> ds.rain_rate.attrs["grid_mapping"]
    'crs'
    """
    import warnings

    from pyproj import CRS

    c = CRS.from_user_input(crs)
    with warnings.catch_warnings():  # pyproj warns CF/PROJ forms are lossy; the WKT is kept too
        warnings.simplefilter("ignore", UserWarning)
        attrs = dict(c.to_cf())
        attrs["crs_wkt"] = c.to_wkt()
        attrs["spatial_ref"] = attrs["crs_wkt"]
        try:
            attrs["proj4"] = c.to_proj4()
        except Exception:  # pragma: no cover - some CRSs have no proj4 form
            pass
    out = ds.assign_coords({name: xr.DataArray(np.int32(0), attrs=attrs)})
    for v in data_variables(out):
        out[v].attrs["grid_mapping"] = name
    return out


def get_crs(obj: xr.Dataset | xr.DataArray):
    """Return the ``pyproj.CRS`` of ``obj`` (``EPSG:4326`` for lat/lon grids), or ``None``.

    Examples
    --------
    >>> import stgeo
    >>> get_crs(stgeo.testing.storm_cells(n_times=2, shape=(8, 8))) is None
    False
    """
    from pyproj import CRS

    for name in ("crs", "spatial_ref"):
        if name in obj.coords or (isinstance(obj, xr.Dataset) and name in obj.variables):
            a = obj[name].attrs
            for key in ("crs_wkt", "spatial_ref", "proj4"):
                if key in a:
                    return CRS.from_user_input(a[key])
            return CRS.from_cf(a)
    if {"lat", "lon"} <= set(obj.dims):
        return CRS.from_epsg(4326)
    return None


def add_latlon(ds: xr.Dataset, crs: Any | None = None) -> xr.Dataset:
    """Compute 2-D ``lat``/``lon`` coordinates on ``(y, x)`` from projected ``x``/``y`` coordinates.

    Parameters
    ----------
    ds : xarray.Dataset
        With 1-D ``x`` and ``y`` coordinates in the projection's units (metres).
    crs : optional
        The projection; default: the dataset's ``crs`` variable.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(coords={"y": [0.0, 1000.0], "x": [0.0, 1000.0]})
    >>> out = add_latlon(ds, "+proj=laea +lat_0=38 +lon_0=-98 +a=6370997 +units=m")
    >>> float(out.lat[0, 0].round(3)), float(out.lon[0, 0].round(3))
    (38.0, -98.0)
    """
    from pyproj import CRS, Transformer

    c = CRS.from_user_input(crs) if crs is not None else get_crs(ds)
    if c is None:
        raise DataValidationError("no CRS given and the dataset has no 'crs' variable")
    if "x" not in ds.coords or "y" not in ds.coords:
        raise DataValidationError("add_latlon needs 1-D 'x' and 'y' projection coordinates")
    tr = Transformer.from_crs(c, CRS.from_epsg(4326), always_xy=True)
    xx, yy = np.meshgrid(ds["x"].values, ds["y"].values)
    lon, lat = tr.transform(xx, yy)
    return ds.assign_coords(
        lat=(
            ("y", "x"),
            lat.astype(np.float64),
            {"units": "degrees_north", "standard_name": "latitude"},
        ),
        lon=(
            ("y", "x"),
            lon.astype(np.float64),
            {"units": "degrees_east", "standard_name": "longitude"},
        ),
    )

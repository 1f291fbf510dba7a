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
  a variable whose ``standard_name`` is a precipitation amount, rate or flux
  (:data:`NON_NEGATIVE_STANDARD_NAMES`) holds no negative values;
* ``lat``/``lon`` coordinates (1-D for lat/lon grids, 2-D ``(y, x)`` otherwise) in degrees,
  and for projected grids a ``crs`` variable (``crs_wkt``/``spatial_ref`` attributes) that
  the data variables point to with ``grid_mapping = "crs"``. Events on different grids
  (e.g. SEVIR patches) instead carry per-event geolocation: coordinates with
  ``standard_name`` ``latitude``/``longitude`` on ``(E, y, x)``, the ``event`` coordinate
  along time giving each frame's integer position along ``E``.

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

import warnings
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataValidationError, StgeoTypeError, StgeoWarning, UnknownNameError

__all__ = [
    "CHANNEL_DIM",
    "EVENT_COORD",
    "INIT_TIME_DIM",
    "LEAD_TIME_DIM",
    "NEGATIVE_TOLERANCE",
    "NON_NEGATIVE_STANDARD_NAMES",
    "TIME_DIM",
    "VALID_TIME_COORD",
    "add_latlon",
    "as_dataset",
    "check_bool",
    "check_int",
    "check_names",
    "check_same_grid",
    "check_time_values",
    "check_units",
    "data_variables",
    "event_grid_corners",
    "find_spatial_dims",
    "freq_string",
    "grid_corners",
    "grid_corners_differ",
    "segments",
    "set_crs",
    "spatial_dims",
    "time_step",
    "units_equal",
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

#: CF standard names of precipitation amounts, rates and fluxes: never negative, so
#: :func:`validate` flags a variable carrying one that goes below 0 (beyond
#: :data:`NEGATIVE_TOLERANCE`).
NON_NEGATIVE_STANDARD_NAMES = frozenset(
    {
        "rainfall_rate",
        "rainfall_flux",
        "rainfall_amount",
        "thickness_of_rainfall_amount",
        "precipitation_flux",
        "precipitation_amount",
        "lwe_precipitation_rate",
        "lwe_thickness_of_precipitation_amount",
        "convective_precipitation_rate",
        "convective_precipitation_flux",
        "convective_precipitation_amount",
        "large_scale_precipitation_flux",
        "large_scale_precipitation_amount",
        "snowfall_rate",
        "snowfall_flux",
        "snowfall_amount",
        "lwe_snowfall_rate",
        "lwe_thickness_of_snowfall_amount",
    }
)
#: Values above ``-NEGATIVE_TOLERANCE * max(1, maximum)`` (in the data's units) count as 0:
#: round-off and the small overshoots of an interpolation, not an offset or a fill value.
NEGATIVE_TOLERANCE = 1e-3

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


def _coords_close(a: xr.DataArray, b: xr.DataArray) -> bool:
    av, bv = np.asarray(a.values), np.asarray(b.values)
    if av.shape != bv.shape:
        return False
    if np.issubdtype(av.dtype, np.number) and np.issubdtype(bv.dtype, np.number):
        return bool(np.allclose(av, bv, rtol=1e-6, atol=1e-6, equal_nan=True))
    return bool(np.array_equal(av, bv))


def check_same_grid(fcst: xr.DataArray, obs: xr.DataArray) -> None:
    """Raise unless a forecast and observations lie on the same grid.

    The spatial dims must have the same names and sizes, and the spatial coordinates and
    ``lat``/``lon`` (where both carry them) the same values: observations of another area
    with the same shape are refused, not matched by position. Scoring
    (:func:`stgeo.metrics.score`) and plotting (:func:`stgeo.plot.plot_forecast`) both check
    their inputs with it.

    Raises
    ------
    DataValidationError
        The grids differ (the message names the dim or coordinate that differs).

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=2, shape=(16, 16), seed=0)
    >>> check_same_grid(ds.rain_rate, ds.rain_rate)
    >>> moved = ds.rain_rate.assign_coords(y=ds.y + 1e5)
    >>> try:
    ...     check_same_grid(ds.rain_rate, moved)
    ... except DataValidationError as err:
    ...     print(str(err).split(".")[0])
    forecast and observations are on different grids: coordinate 'y' differs
    """
    fs, os_ = find_spatial_dims(fcst), find_spatial_dims(obs)
    if fs is None and os_ is None:
        return
    if fs is None or fs != os_:
        raise DataValidationError(
            f"forecast and observations are on different grids: forecast spatial dims {fs}, "
            f"observation spatial dims {os_}. Rename or regrid one of them."
        )
    for d in fs:
        if fcst.sizes[d] != obs.sizes[d]:
            raise DataValidationError(
                f"forecast and observations are on different grids: {d!r} has "
                f"{fcst.sizes[d]} points in the forecast and {obs.sizes[d]} in the "
                "observations. Regrid or crop one to the other (e.g. obs.sel(x=fcst.x))."
            )
    for c in dict.fromkeys([*fs, "lat", "lon"]):  # the grid's own dims first
        if c not in fcst.coords or c not in obs.coords:
            continue
        oc = obs[c]
        if set(oc.dims) == set(fcst[c].dims) and oc.dims != fcst[c].dims:
            oc = oc.transpose(*fcst[c].dims)  # transposed observations are matched by dim name
        if not _coords_close(fcst[c], oc):
            hint = "Regrid one onto the other (or select the same area) first."
            if c in fs and _coords_close(fcst[c], oc.isel({c: slice(None, None, -1)})):
                hint = (
                    f"The observations run the other way along {c!r}: "
                    f"use obs.sortby({c!r}, ascending={bool(fcst[c][0] < fcst[c][-1])})."
                )
            raise DataValidationError(
                f"forecast and observations are on different grids: coordinate {c!r} "
                f"differs. {hint}"
            )


def grid_corners(obj: xr.Dataset | xr.DataArray) -> dict[str, list[float]] | None:
    """Latitude and longitude of the grid's first and last cell (``None`` without ``lat``
    and ``lon`` coordinates): where a grid lies, for models tied to their training grid.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=2, shape=(8, 8), seed=0)
    >>> c = stgeo.conventions.grid_corners(ds)
    >>> sorted(c), len(c["lat"])
    (['lat', 'lon'], 2)
    """
    ds = as_dataset(obj)
    if "lat" not in ds.coords or "lon" not in ds.coords:
        return None
    out = {}
    for name in ("lat", "lon"):
        c = ds.coords[name]
        v = np.asarray(c.isel({d: [0, -1] for d in c.dims}).values, dtype=float)
        if not np.isfinite(v).all():  # a corner without a place: nothing to compare
            return None
        out[name] = [round(float(v.flat[0]), 6), round(float(v.flat[-1]), 6)]
    return out


def event_grid_corners(obj: xr.Dataset | xr.DataArray) -> list[dict[str, list[float]]]:
    """The grid corners (:func:`grid_corners`) of each event of data whose events carry
    their own geolocation (per-event ``latitude`` / ``longitude`` on ``(E, y, x)``, see
    the module docstring); an empty list for other data.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=2, shape=(8, 8), seed=0)
    >>> stgeo.conventions.event_grid_corners(ds)
    []
    """
    ds = as_dataset(obj)
    sdims = find_spatial_dims(ds)
    coords = None if sdims is None else _event_latlon_coords(ds, sdims)
    if coords is None:
        return []
    lat, lon, edim = coords
    out = []
    for e in range(ds.sizes[edim]):
        one = xr.Dataset(coords={"lat": lat.isel({edim: e}), "lon": lon.isel({edim: e})})
        if (c := grid_corners(one)) is not None:
            out.append(c)
    return out


def grid_corners_differ(
    trained: dict[str, Any], data: dict[str, Any] | None, grid_shape: Sequence[int]
) -> str | None:
    """Whether the data's grid lies elsewhere than the training grid of the same shape: a
    description of the difference, or ``None`` when the corners agree to a quarter of a
    cell along each axis (or either side has no finite lat/lon to compare).

    Examples
    --------
    >>> uk = {"lat": [58.0, 50.0], "lon": [-10.0, 2.0]}
    >>> grid_corners_differ(uk, {"lat": [58.01, 50.0], "lon": [-10.0, 2.0]}, (33, 49))
    >>> grid_corners_differ(uk, {"lat": [48.0, 40.0], "lon": [-10.0, 2.0]}, (33, 49))
    'the training grid spans lat 58..50, lon -10..2; the data grid lat 48..40, lon -10..2'
    """
    if not data or not trained:
        return None
    t = {k: np.asarray(trained[k], float) for k in ("lat", "lon")}
    d = {k: np.asarray(data[k], float) for k in ("lat", "lon")}
    if not all(np.isfinite(v).all() for v in (*t.values(), *d.values())):
        return None
    n = dict(zip(("lat", "lon"), (max(int(k) - 1, 1) for k in grid_shape), strict=True))
    step = {k: abs(t[k][-1] - t[k][0]) / n[k] for k in t}  # cell size along each axis
    gap = {
        "lat": np.abs(d["lat"] - t["lat"]),
        "lon": np.abs((d["lon"] - t["lon"] + 180) % 360 - 180),  # 350E is 10W
    }
    fallback = max(max(step.values()), 1e-6)  # an axis of one cell: the other axis's size
    tol = {k: (step[k] or fallback) / 4 for k in step}
    if all(np.all(gap[k] <= tol[k]) for k in gap):
        return None

    def span(c: dict[str, Any]) -> str:
        return f"lat {c['lat'][0]:g}..{c['lat'][-1]:g}, lon {c['lon'][0]:g}..{c['lon'][-1]:g}"

    text = f"the training grid spans {span(trained)}; the data grid {span(data)}"
    for k, dim in (("lat", "latitude"), ("lon", "longitude")):
        if np.all(np.abs(d[k][::-1] - t[k]) <= tol[k]) and np.any(gap[k] > tol[k]):
            text += f" (the {dim}s run the other way: sort them, e.g. ds.sortby({k!r}))"
    return text


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
    if TIME_DIM not in obj.coords:
        raise DataValidationError(
            "the time dimension has no coordinate; assign one with "
            "ds.assign_coords(time=pandas.date_range(start, periods=n, freq='5min'))"
        )
    check_time_values(obj[TIME_DIM])
    t = np.asarray(obj[TIME_DIM].values)
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


def _time_kind(coord: xr.DataArray) -> tuple[str, str]:
    """``(kind, detail)`` of a time coordinate: ``"datetime64"`` or what stops it being one."""
    dtype = coord.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "tz", str(dtype.tz)
    if np.issubdtype(dtype, np.datetime64):
        return "datetime64", ""
    if np.issubdtype(dtype, np.timedelta64):
        return "timedelta", str(dtype)
    if np.issubdtype(dtype, np.bool_):
        return "other", str(dtype)
    if np.issubdtype(dtype, np.number):
        return "number", str(dtype)
    if dtype.kind in "US":
        return "str", str(dtype)
    vals = np.asarray(coord.values).ravel()
    first = next((v for v in vals[:64] if v is not None), None)
    calendar = getattr(first, "calendar", None)
    if calendar is not None and type(first).__module__.startswith("cftime"):
        return "cftime", str(calendar) or "standard"
    if getattr(first, "tzinfo", None) is not None:
        return "tz", str(first.tzinfo)
    if isinstance(first, str):
        return "str", "str"
    return "other", f"{dtype} ({type(first).__name__} values)"


def _time_fix(kind: str, detail: str, what: str) -> str:
    """What is wrong with a non-datetime64 time coordinate of ``kind`` and how to fix it."""
    if kind == "cftime":
        align = ", align_on='date'" if detail in ("360_day", "360") else ""
        return (
            f"{what} holds cftime dates of the {detail!r} calendar; stgeo needs numpy "
            "datetime64 (the standard calendar). Convert the calendar, e.g. "
            f"ds = ds.convert_calendar('standard', use_cftime=False{align}) (dates that do "
            "not exist in the standard calendar are dropped)."
        )
    if kind == "tz":
        return (
            f"{what} is timezone-aware ({detail}); stgeo needs naive datetime64 in UTC. "
            "Convert, e.g. ds = ds.assign_coords(time=ds.indexes['time'].tz_convert(None)) "
            "(UTC, naive)."
        )
    if kind == "str":
        return (
            f"{what} holds strings, not dates. Parse them, e.g. "
            "ds = ds.assign_coords(time=pandas.to_datetime(ds.time.values))."
        )
    if kind == "number":
        return (
            f"{what} holds plain numbers ({detail}), not dates. Decode CF times with "
            "xarray.decode_cf(ds) (they need a 'units' attribute such as 'minutes since "
            "2020-01-01'), or assign dates, e.g. ds.assign_coords(time=pandas.date_range("
            "start, periods=ds.sizes['time'], freq='5min'))."
        )
    if kind == "timedelta":
        return (
            f"{what} holds durations ({detail}), not dates. Add them to a start date, e.g. "
            "ds.assign_coords(time=pandas.Timestamp('2020-01-01') + ds.time.values)."
        )
    return (
        f"{what} has dtype {detail}, expected datetime64. Convert it, e.g. "
        "ds.assign_coords(time=pandas.to_datetime(ds.time.values))."
    )


def check_time_values(coord: xr.DataArray, what: str = "the time coordinate") -> None:
    """Raise unless ``coord`` holds naive ``datetime64`` values, naming the time type at fault.

    cftime dates (e.g. a ``noleap`` calendar), timezone-aware times, strings, plain numbers
    and durations each get their own message with a fix that works for that type.

    Parameters
    ----------
    coord : xarray.DataArray
        A time coordinate.
    what : str
        How the message names it (e.g. ``"the observations' time coordinate"``).

    Raises
    ------
    DataValidationError
        The values are not naive datetime64.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> check_time_values(xr.DataArray(np.array(["2020-01-01"], "datetime64[ns]")))
    >>> try:
    ...     check_time_values(xr.DataArray(["2020-01-01"]))
    ... except DataValidationError as err:
    ...     print(str(err)[:36])
    the time coordinate holds strings, n
    """
    kind, detail = _time_kind(coord)
    if kind != "datetime64":
        raise DataValidationError(_time_fix(kind, detail, what))


# -- units --------------------------------------------------------------------------------
def _parse_units(text: str) -> Any:
    """The ``cf_units.Unit`` of ``text``, or None when UDUNITS cannot read it."""
    try:
        import cf_units
    except ImportError:  # pragma: no cover - cf-units is a dependency
        return None
    try:
        unit = cf_units.Unit(text)
    except (ValueError, TypeError):
        return None
    return None if unit.is_unknown() or unit.is_no_unit() else unit


def _norm_units(text: Any) -> str:
    return " ".join(str(text).split()) if text is not None else ""


def units_equal(a: Any, b: Any) -> bool | None:
    """Whether two unit strings mean the same units (CF/UDUNITS spellings), None if unknown.

    ``"mm h-1"``, ``"mm/h"`` and ``"mm hr-1"`` are equal; ``"m s-1"`` and ``"km h-1"`` are
    not (they are convertible, see :func:`check_units`). Missing or empty units give None;
    strings UDUNITS cannot read are compared as text.

    Examples
    --------
    >>> units_equal("mm h-1", "mm/h"), units_equal("dBZ", "mm h-1"), units_equal("", "K")
    (True, False, None)
    """
    ta, tb = _norm_units(a), _norm_units(b)
    if not ta or not tb:
        return None
    if ta == tb:
        return True
    ua, ub = _parse_units(ta), _parse_units(tb)
    if ua is None or ub is None:
        return False
    return bool(ua == ub)


def _conversion_hint(ua: Any, ub: Any, name: str) -> str:
    """How to convert a variable from units ``ua`` to ``ub`` (scale and offset)."""
    scale = float(ua.convert(1.0, ub)) - float(ua.convert(0.0, ub))
    offset = float(ua.convert(0.0, ub))
    expr = f"ds[{name!r}] * {scale:.6g}" + (f" + {offset:.6g}" if offset else "")
    return f" They are convertible: ds[{name!r}] = ({expr}).assign_attrs(units={str(ub)!r})."


def check_units(actual: Any, expected: Any, *, what: str, expected_what: str, name: str) -> None:
    """Raise unless the units ``actual`` mean the same as ``expected`` (compared by meaning).

    Missing (None or empty) units on either side are not compared. Units that differ
    raise; when they are convertible (``m s-1`` and ``km h-1``) the message gives the
    conversion, stgeo never converts silently.

    Parameters
    ----------
    actual, expected : str or None
        Unit strings (CF/UDUNITS, e.g. ``"mm h-1"``).
    what, expected_what : str
        How the message names the two sides (e.g. ``"the observations"``, ``"the forecast"``).
    name : str
        The variable, for the conversion hint.

    Raises
    ------
    DataValidationError
        The units differ in meaning.

    Examples
    --------
    >>> check_units("mm/h", "mm h-1", what="the data", expected_what="the model", name="rain")
    >>> try:
    ...     check_units("km h-1", "m s-1", what="the data", expected_what="the model",
    ...                 name="wind")
    ... except DataValidationError as err:
    ...     print(str(err).split(". ")[-1])
    They are convertible: ds['wind'] = (ds['wind'] * 0.277778).assign_attrs(units='m s-1').
    """
    same = units_equal(actual, expected)
    if same is None or same:
        return
    ta, tb = _norm_units(actual), _norm_units(expected)
    ua, ub = _parse_units(ta), _parse_units(tb)
    msg = (
        f"units differ: {what} have {name!r} in {ta!r}, {expected_what} expects {tb!r}. "
        "Scores and forecasts in different units are meaningless."
    )
    if ua is not None and ub is not None and ua.is_convertible(ub):
        raise DataValidationError(msg + _conversion_hint(ua, ub, name))
    if ua is None or ub is None:
        unread = ta if ua is None else tb
        raise DataValidationError(
            msg + f" ({unread!r} is not a UDUNITS unit, so the two were compared as text; if "
            f"they mean the same, set the same units attribute on both.)"
        )
    raise DataValidationError(
        msg + " They are not convertible (e.g. reflectivity dBZ is not a rain rate mm h-1): "
        "use data of the same quantity, or convert it physically first (e.g. a Z-R relation)."
    )


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
    if ds.sizes[TIME_DIM] == 0:
        raise DataValidationError(
            "the time axis is empty (0 time steps): nothing to learn from, forecast or score. "
            "Check the selection that produced it (e.g. ds.sel(time=slice(start, end)) with "
            "start after end or outside the data)."
        )
    check_time_values(ds[TIME_DIM])
    t = np.asarray(ds[TIME_DIM].values)
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
        more = int(dup.sum()) - 1
        raise DataValidationError(
            f"duplicated time {pd.Timestamp(tn[i])}{f' (and {more} more)' if more else ''}; "
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
            f"multiple of the time step {freq_string(step)}; resample to a regular step, e.g. "
            f"ds.resample(time='{freq_string(step)}').mean()"
        )
    gaps = same & (d > stepn)
    if gaps.any() and not allow_gaps:
        i = int(np.argmax(gaps)) + 1
        raise DataValidationError(
            f"the time axis has {int(gaps.sum())} gap(s), the first from "
            f"{pd.Timestamp(tn[i - 1])} to {pd.Timestamp(tn[i])} (step {freq_string(step)}). "
            f"Fill them (ds.resample(time='{freq_string(step)}').asfreq() inserts NaN frames), "
            "mark independent sequences with an 'event' "
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
        per_event = _event_latlon(ds, sdims)
        if per_event is None:
            if require:
                raise DataValidationError(
                    "no lat/lon coordinates: a projected grid needs 2-D 'lat' and 'lon' "
                    "coordinates on (y, x), or per-event ones on (event dim, y, x) with "
                    "standard_name latitude/longitude (see stgeo.conventions). Compute them "
                    "with stgeo.conventions.add_latlon(ds, crs) from the projection, or pass "
                    "strict=False for an index grid without geography."
                )
            return
        lat, lon = per_event
    _check_degrees(lat, lon)


def _event_latlon(
    ds: xr.Dataset, sdims: tuple[str, str]
) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Per-event geolocation: the first event's lat/lon, when the dataset carries it.

    Events on different grids (e.g. SEVIR patches) carry lat/lon coordinates with
    ``standard_name`` latitude/longitude on ``(E, y, x)``, where the ``event`` coordinate
    along time holds each frame's integer position along ``E``.
    """
    coords = _event_latlon_coords(ds, sdims)
    if coords is None:
        return None
    lat, lon, edim = coords
    ev = np.asarray(ds[EVENT_COORD].values)
    first = {edim: int(ev[0]) if ev.size else 0}
    return lat.isel(first), lon.isel(first)


def _event_latlon_coords(
    ds: xr.Dataset, sdims: tuple[str, str]
) -> tuple[xr.DataArray, xr.DataArray, str] | None:
    """The per-event lat/lon coordinates on ``(E, y, x)`` and ``E``, checked; or None."""
    if EVENT_COORD not in ds.coords or ds[EVENT_COORD].dims != (TIME_DIM,):
        return None
    found: dict[str, xr.DataArray] = {}
    for c in ds.coords.values():
        std = c.attrs.get("standard_name")
        if std in ("latitude", "longitude") and c.ndim == 3 and c.dims[1:] == sdims:
            found.setdefault(str(std), c)
    if set(found) != {"latitude", "longitude"}:
        return None
    lat, lon = found["latitude"], found["longitude"]
    edim = lat.dims[0]
    if lon.dims[0] != edim:
        raise DataValidationError(
            f"per-event lat/lon must share their event dim, got {lat.name}{lat.dims} and "
            f"{lon.name}{lon.dims}"
        )
    ev = np.asarray(ds[EVENT_COORD].values)
    n = ds.sizes[edim]
    if not np.issubdtype(ev.dtype, np.integer) or (ev.size and (ev.min() < 0 or ev.max() >= n)):
        raise DataValidationError(
            f"the per-event geolocation {lat.name}/{lon.name} is on ({edim!r}, ...) with {n} "
            f"events, but the 'event' coordinate along time is not an integer position along "
            f"{edim!r} (values {ev.min() if ev.size else '-'}..{ev.max() if ev.size else '-'})"
        )
    return lat, lon, edim


def _check_degrees(lat: xr.DataArray, lon: xr.DataArray) -> None:
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


def _check_values(ds: xr.Dataset, names: Sequence[str], strict: bool) -> None:
    for name in names:
        da = ds[name]
        if not (np.issubdtype(da.dtype, np.floating) or np.issubdtype(da.dtype, np.integer)):
            raise DataValidationError(
                f"variable {name!r} has dtype {da.dtype}; stgeo needs numeric (float or integer) "
                f"data. Convert it, e.g. ds[{name!r}] = ds[{name!r}].astype('float32')"
            )
        floating = np.issubdtype(da.dtype, np.floating)
        amount = da.attrs.get("standard_name") in NON_NEGATIVE_STANDARD_NAMES
        if not (floating or amount):
            continue
        # cheap first look at a few frames; only if they are all NaN scan the whole variable
        nt = da.sizes[TIME_DIM]
        idx = sorted({0, nt // 2, nt - 1})
        sample = da.isel({TIME_DIM: idx})
        lazy = da.chunks is not None  # the sign of a lazy variable: from those frames only
        part = sample if lazy else da
        look = xr.Dataset(
            {
                **({"any": sample.notnull().any()} if floating else {}),
                **({"lo": part.min(), "hi": part.max()} if amount else {}),
            }
        ).compute()  # one pass over the frames read
        if floating and not bool(look["any"]) and not bool(da.notnull().any()):
            raise DataValidationError(
                f"variable {name!r} is all NaN: nothing to learn from or score. Check the reader "
                "(fill value, scale factor, mask) or drop the variable."
            )
        if amount:
            _check_sign(da, name, float(look["lo"]), float(look["hi"]), lazy, strict)


def _check_sign(
    da: xr.DataArray, name: str, lo: float, hi: float, sampled: bool, strict: bool
) -> None:
    """A precipitation amount/rate/flux below 0: an error (``strict``) or a warning."""
    if not lo < -NEGATIVE_TOLERANCE * max(1.0, hi):  # (NaN: all no-data, nothing to say)
        return
    where = " in its first, middle and last frames" if sampled else ""
    msg = (
        f"variable {name!r} (standard_name {da.attrs['standard_name']!r}) goes down to "
        f"{lo:.6g}{where}, but a precipitation amount, rate or flux is never negative. Check "
        f"the data for an offset or a fill value (mark no-data as NaN, e.g. "
        f"ds[{name!r}] = ds[{name!r}].where(ds[{name!r}] >= 0))"
    )
    if strict:
        raise DataValidationError(msg + ", or pass strict=False to only be warned")
    warnings.warn(msg, StgeoWarning, stacklevel=4)


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


def check_names(value: Any, name: str) -> list[str] | None:
    """``value`` (None, a name or a sequence of names) as a list of names, type-checked.

    A string is one name, never iterated letter by letter.

    Examples
    --------
    >>> check_names("rain", "variable"), check_names(("a", "b"), "variables")
    (['rain'], ['a', 'b'])
    """
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise StgeoTypeError(
            f"{name} must be a name or a list of names (str), got {type(value).__name__} {value!r}"
        )
    names = list(value)
    bad = [v for v in names if not isinstance(v, str)]
    if bad or not names:
        raise StgeoTypeError(
            f"{name} must be a name or a non-empty list of names (str), got {value!r}"
        )
    return names


def check_int(value: Any, name: str, *, minimum: int = 1, optional: bool = True) -> None:
    """Raise unless ``value`` is an int >= ``minimum`` (bools refused), or None if optional.

    Examples
    --------
    >>> check_int(3, "in_steps")
    >>> try:
    ...     check_int(True, "in_steps")
    ... except StgeoTypeError as err:
    ...     print(err)
    in_steps must be an integer >= 1, got True (bool)
    """
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise StgeoTypeError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise DataValidationError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_bool(value: Any, name: str) -> None:
    """Raise unless ``value`` is a bool (``"no"`` or ``0`` are refused, not read as truth).

    Examples
    --------
    >>> check_bool(False, "strict")
    """
    if not isinstance(value, (bool, np.bool_)):
        raise StgeoTypeError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__})"
        )


def _check_validate_args(variables: Any, min_grid: Any, min_times: Any, *flags: Any) -> None:
    check_names(variables, "variables")
    if min_grid is not None:
        if isinstance(min_grid, (str, bytes)) or not isinstance(min_grid, Sequence):
            raise StgeoTypeError(f"min_grid must be a pair (ny, nx) of ints, got {min_grid!r}")
        if len(min_grid) != 2:
            raise DataValidationError(f"min_grid must be a pair (ny, nx), got {min_grid!r}")
        for v in min_grid:
            check_int(v, "min_grid entries", optional=False)
    check_int(min_times, "min_times")
    for name, flag in zip(("allow_gaps", "strict", "check_values"), flags, strict=True):
        check_bool(flag, name)


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
        Check dtypes, that no variable is entirely NaN (reads a few frames lazily; the whole
        variable only when those frames are all NaN), and that a precipitation amount, rate
        or flux (``standard_name`` in :data:`NON_NEGATIVE_STANDARD_NAMES`) is not negative:
        an error with ``strict``, else a :class:`~stgeo.errors.StgeoWarning`. The sign is
        checked on the whole variable when it is in memory, on the first, middle and last
        frames when it is lazy (dask), so that a large store is not read.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        ``ds`` itself, so calls can be chained.

    Raises
    ------
    DataValidationError
        Missing or misnamed dims, an empty time axis, times that are not naive datetime64
        (the message names the type: cftime, timezone-aware, strings, numbers), non-monotonic,
        duplicated or irregular time, gaps, all-NaN variables, non-numeric dtype, too
        small grid, lat/lon out of range (2-D or per-event), missing units (strict), a
        negative precipitation amount, rate or flux (strict).
    UnknownNameError
        A requested variable does not exist (the message lists the valid ones).
    StgeoTypeError
        An argument of the wrong type (``variables=3``, ``strict="no"``, ``min_times=True``).

    Warns
    -----
    StgeoWarning
        A negative precipitation amount, rate or flux with ``strict=False``.

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
    _check_validate_args(variables, min_grid, min_times, allow_gaps, strict, check_values)
    _check_time(dset, allow_gaps)
    sdims = spatial_dims(dset)
    names = _checked_variables(dset, variables, sdims)
    _check_sizes(dset, sdims, min_grid, min_times)
    _check_latlon(dset, sdims, require=strict)
    if strict:
        _check_units(dset, names)
    if check_values:
        _check_values(dset, names, strict)
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

"""Inputs checked at the boundary of validate: time types, empty time axis, argument types,
units compared by meaning, per-event geolocation."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo.conventions import check_units, units_equal, validate
from stgeo.errors import DataValidationError, StgeoTypeError


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=8, shape=(16, 16), seed=0)


def test_empty_time_axis_is_named(storms):
    with pytest.raises(DataValidationError, match="time axis is empty"):
        validate(storms.isel(time=slice(0, 0)))
    with pytest.raises(DataValidationError, match="time axis is empty"):
        stgeo.forecast(storms.isel(time=slice(0, 0)), "persistence", progress=False)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda t: xr.date_range(
                str(t[0]), periods=t.size, freq="5min", use_cftime=True, calendar="noleap"
            ),
            "cftime dates of the 'noleap' calendar",
        ),
        (lambda t: pd.DatetimeIndex(t).tz_localize("UTC"), "timezone-aware"),
        (lambda t: [str(v) for v in t], "holds strings"),
        (lambda t: np.arange(t.size), "plain numbers"),
        (lambda t: t - t[0], "durations"),
    ],
)
def test_time_type_is_the_problem_named(storms, make, match):
    bad = storms.assign_coords(time=make(storms.time.values))
    with pytest.raises(DataValidationError, match=match):
        validate(bad)


def test_cftime_fix_in_the_message_works(storms):
    t = xr.date_range("2001-03-01", periods=storms.sizes["time"], freq="5min", use_cftime=True,
                      calendar="noleap")  # fmt: skip
    bad = storms.assign_coords(time=t)
    with pytest.raises(DataValidationError) as info:
        validate(bad)
    assert "convert_calendar('standard', use_cftime=False)" in str(info.value)
    validate(bad.convert_calendar("standard", use_cftime=False))  # the suggested fix passes


def test_tz_fix_in_the_message_works(storms):
    t = pd.DatetimeIndex(storms.time.values).tz_localize("UTC").tz_convert("Europe/Helsinki")
    bad = storms.assign_coords(time=t)
    with pytest.raises(DataValidationError, match=r"tz_convert\(None\)"):
        validate(bad)
    fixed = bad.assign_coords(time=bad.indexes["time"].tz_convert(None))
    validate(fixed)
    assert (fixed.time.values == storms.time.values).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"variables": 3}, StgeoTypeError, "variables must be a name"),
        ({"variables": [b"rain_rate"]}, StgeoTypeError, "variables must be"),
        ({"strict": "no"}, StgeoTypeError, "strict must be True or False"),
        ({"allow_gaps": 1}, StgeoTypeError, "allow_gaps must be True or False"),
        ({"min_grid": "16"}, StgeoTypeError, "min_grid must be a pair"),
        ({"min_grid": (16,)}, DataValidationError, "min_grid must be a pair"),
        ({"min_grid": (True, 4)}, StgeoTypeError, "min_grid entries"),
        ({"min_times": 2.5}, StgeoTypeError, "min_times must be an integer"),
        ({"min_times": 0}, DataValidationError, "min_times must be an integer >= 1"),
    ],
)
def test_argument_types(storms, kwargs, error, match):
    with pytest.raises(error, match=match):
        validate(storms, **kwargs)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("mm h-1", "mm/h", True),
        ("mm h-1", "mm hr-1", True),
        ("mm h-1", "mm  h-1", True),
        ("m s-1", "m/s", True),
        ("m s-1", "km h-1", False),
        ("dBZ", "mm h-1", False),
        ("K", "degC", False),
        ("vehicles", "vehicles", True),
        ("vehicles", "cars", False),
        ("", "mm h-1", None),
        (None, "K", None),
    ],
)
def test_units_compared_by_meaning(a, b, same):
    assert units_equal(a, b) is same


def test_convertible_units_give_the_conversion():
    with pytest.raises(DataValidationError, match=r"\* 0.277778"):
        check_units("km h-1", "m s-1", what="the data", expected_what="the model", name="wind")
    with pytest.raises(DataValidationError, match=r"\+ 273.15"):
        check_units("degC", "K", what="the data", expected_what="the model", name="t2m")
    with pytest.raises(DataValidationError, match="not convertible"):
        check_units("dBZ", "mm/h", what="the data", expected_what="the model", name="r")
    check_units("mm/h", "mm hr-1", what="the data", expected_what="the model", name="r")


def test_per_event_geolocation_validates_strictly(storms):
    """Events on different grids carry lat/lon on (event, y, x); strict validate reads them."""
    a = storms.isel(time=slice(0, 4)).drop_vars(["lat", "lon"], errors="ignore")
    ds = xr.concat([a, a], "time").assign_coords(event=("time", [0] * 4 + [1] * 4))
    lat = np.linspace(30, 40, 16 * 16).reshape(16, 16)
    geo = {
        "event_lat": (("event_id", "y", "x"), np.stack([lat, lat + 1]),
                      {"standard_name": "latitude", "units": "degrees_north"}),
        "event_lon": (("event_id", "y", "x"), np.stack([lat - 100, lat - 99]),
                      {"standard_name": "longitude", "units": "degrees_east"}),
    }  # fmt: skip
    with pytest.raises(DataValidationError, match="no lat/lon"):
        validate(ds)
    validate(ds.assign_coords(geo))
    bad = ds.assign_coords(event=("time", [0] * 4 + [5] * 4)).assign_coords(geo)
    with pytest.raises(DataValidationError, match="not an integer position"):
        validate(bad)
    radians = ds.assign_coords(geo)
    radians = radians.assign_coords(event_lat=radians.event_lat * 100)
    with pytest.raises(DataValidationError, match="lat values out of range"):
        validate(radians)

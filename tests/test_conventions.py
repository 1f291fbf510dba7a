"""One test per kind of bad input that stgeo.validate must reject with a specific error."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo.conventions import segments, spatial_dims, time_step, validate
from stgeo.errors import DataValidationError, UnknownNameError


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=12, shape=(24, 20), seed=0)


def test_valid_dataset_passes_and_is_returned(storms):
    assert validate(storms) is storms
    da = storms.rain_rate
    assert validate(da) is da
    assert spatial_dims(storms) == ("y", "x")
    assert time_step(storms) == pd.Timedelta("5min")


def test_latlon_grid_passes():
    ds = stgeo.testing.storm_cells(n_times=4, shape=(10, 12), projected=False)
    validate(ds)
    assert spatial_dims(ds) == ("lat", "lon")


def test_missing_time_dim_suggests_rename(storms):
    with pytest.raises(
        DataValidationError, match=r"missing the 'time' dimension.*rename\(\{'date': 'time'\}\)"
    ):
        validate(storms.rename(time="date"))


def test_misnamed_spatial_dims_suggests_rename():
    da = xr.DataArray(
        np.ones((3, 4, 5), "f4"),
        dims=("time", "latitude", "longitude"),
        coords={"time": pd.date_range("2020", periods=3, freq="h")},
    )
    with pytest.raises(DataValidationError, match="'latitude': 'lat'"):
        validate(da, strict=False)


def test_non_monotonic_time(storms):
    ds = storms.isel(time=[0, 2, 1, 3])
    with pytest.raises(DataValidationError, match="not monotonic.*sortby"):
        validate(ds)


def test_duplicated_time(storms):
    ds = storms.isel(time=[0, 1, 1, 2])
    with pytest.raises(DataValidationError, match="duplicated time.*drop_duplicates") as err:
        validate(ds)
    assert "more)" not in str(err.value)
    with pytest.raises(DataValidationError, match=r"\(and 1 more\)"):
        validate(storms.isel(time=[0, 1, 1, 2, 2]))


def test_irregular_time(storms):
    t = storms.time.values.copy()
    t[3] = t[3] + np.timedelta64(90, "s")
    with pytest.raises(DataValidationError, match="irregular time axis"):
        validate(storms.assign_coords(time=t))


def test_gap_in_time_and_allow_gaps(storms):
    ds = storms.isel(time=[0, 1, 2, 5, 6, 7])
    with pytest.raises(DataValidationError, match="gap.*allow_gaps=True"):
        validate(ds)
    validate(ds, allow_gaps=True)


def test_event_coordinate_allows_restart(storms):
    a, b = storms.isel(time=slice(0, 6)), storms.isel(time=slice(0, 6))
    ds = xr.concat([a, b], "time").assign_coords(event=("time", [0] * 6 + [1] * 6))
    validate(ds)  # times repeat across events: allowed
    assert segments(ds.time, time_step(ds), ds.event).tolist() == [0] * 6 + [1] * 6


def test_non_datetime_time(storms):
    with pytest.raises(DataValidationError, match="plain numbers"):
        validate(storms.assign_coords(time=np.arange(storms.sizes["time"])))


def test_all_nan_variable(storms):
    ds = storms.copy()
    ds["rain_rate"] = ds.rain_rate * np.nan
    with pytest.raises(DataValidationError, match="all NaN"):
        validate(ds)


def test_partly_nan_sample_frames_are_not_all_nan(storms):
    ds = storms.copy(deep=True)
    ds["rain_rate"][0] = np.nan
    ds["rain_rate"][-1] = np.nan
    ds["rain_rate"][6] = np.nan
    validate(ds)  # other frames still hold data


def test_wrong_dtype(storms):
    ds = storms.copy()
    ds["rain_rate"] = ds.rain_rate.astype(str)
    with pytest.raises(DataValidationError, match="dtype.*numeric"):
        validate(ds)


def test_grid_too_small(storms):
    with pytest.raises(DataValidationError, match="grid is 24x20 but at least 32x32"):
        validate(storms, min_grid=(32, 32))


def test_too_few_times(storms):
    with pytest.raises(DataValidationError, match="only 12 time steps, at least 16"):
        validate(storms, min_times=16)


def test_latlon_out_of_range(storms):
    ds = storms.assign_coords(lat=storms.lat * 1000)
    with pytest.raises(DataValidationError, match="lat values out of range"):
        validate(ds)


def test_missing_latlon_on_projected_grid(storms):
    ds = storms.drop_vars(["lat", "lon"])
    with pytest.raises(DataValidationError, match="no lat/lon coordinates.*add_latlon"):
        validate(ds)
    validate(ds, strict=False)


def test_missing_units_strict_only(storms):
    ds = storms.copy()
    ds["rain_rate"].attrs = {}
    with pytest.raises(DataValidationError, match="no 'units' attribute"):
        validate(ds)
    validate(ds, strict=False)


def test_unknown_variable_lists_valid_ones(storms):
    with pytest.raises(UnknownNameError, match="unknown variable 'rain'.*rain_rate") as e:
        validate(storms, variables="rain")
    assert isinstance(e.value, ValueError)


def test_spatial_dims_not_last(storms):
    ds = storms.transpose("y", "time", "x")
    with pytest.raises(DataValidationError, match="must come last"):
        validate(ds)


def test_not_xarray():
    with pytest.raises(TypeError, match="expected an xarray Dataset"):
        validate(np.zeros((3, 4, 4)))


def test_add_latlon_matches_pyproj():
    from pyproj import Transformer

    crs = "+proj=laea +lat_0=38 +lon_0=-98 +units=m +a=6370997.0 +ellps=sphere"
    ds = xr.Dataset(coords={"y": [-1e5, 0.0, 2e5], "x": [-3e5, 0.0, 5e4]})
    out = stgeo.conventions.add_latlon(ds, crs)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(5e4, 2e5)
    np.testing.assert_allclose([out.lat[2, 2], out.lon[2, 2]], [lat, lon], rtol=1e-12)
    assert stgeo.conventions.get_crs(
        stgeo.conventions.set_crs(out.assign(v=(("y", "x"), np.ones((3, 3)))), crs)
    ).equals(crs)


def _shifted(storms, offset, frames=None):
    """The storms with ``offset`` added (to every frame, or to the ``frames`` positions)."""
    ds = storms.copy(deep=True)
    rain = ds.rain_rate.values
    rain[slice(None) if frames is None else frames] += offset
    ds["rain_rate"] = ds.rain_rate.copy(data=rain)
    return ds


def test_negative_precipitation_is_an_error_when_strict_and_a_warning_otherwise(storms):
    neg = _shifted(storms, -5.0)
    assert neg.rain_rate.attrs["standard_name"] == "rainfall_rate"
    with pytest.raises(
        DataValidationError, match=r"'rain_rate' \(standard_name 'rainfall_rate'\) goes down to -5"
    ):
        validate(neg)
    with pytest.warns(stgeo.errors.StgeoWarning, match="never negative.*fill value"):
        validate(neg, strict=False)
    validate(neg, check_values=False)  # the values are not looked at
    validate(_shifted(storms, -1e-4))  # round-off below 0 is no offset
    other = neg.copy()
    other.rain_rate.attrs.pop("standard_name")
    validate(other)  # no standard name: a variable may be negative


def test_the_sign_of_a_lazy_variable_is_read_from_its_sampled_frames(storms):
    lazy = _shifted(storms, -5.0, frames=[0]).chunk({"time": 4})
    with pytest.raises(DataValidationError, match="in its first, middle and last frames"):
        validate(lazy)
    validate(
        _shifted(storms, -5.0, frames=[1]).chunk({"time": 4})
    )  # not read: a big store stays unread

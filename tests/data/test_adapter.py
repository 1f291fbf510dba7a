"""Tests of the xarray <-> array adapter (to_frames / from_frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo.data import from_frames, to_frames
from stgeo.errors import DataValidationError, UnknownNameError


def _two_vars(n=6, ny=8, nx=10):
    t = pd.date_range("2020-01-01", periods=n, freq="10min")
    rng = np.random.default_rng(0)
    return xr.Dataset(
        {
            "rain": (("time", "y", "x"), rng.random((n, ny, nx)), {"units": "mm h-1"}),
            "wind": (
                ("time", "level", "y", "x"),
                rng.random((n, 3, ny, nx)).astype("f4"),
                {"units": "m s-1"},
            ),
            "count": (("time", "y", "x"), rng.integers(0, 9, (n, ny, nx)), {"units": "1"}),
        },
        coords={"time": t, "level": [850, 700, 500], "event": ("time", [0, 0, 0, 1, 1, 1])},
    )


def test_to_frames_names_order_and_values():
    ds = _two_vars()
    fr = to_frames(ds, ["wind", "rain", "count"])
    assert fr.dims == ("time", "channel", "y", "x")
    assert fr.dtype == np.float32
    assert fr.channel.values.tolist() == ["wind:850", "wind:700", "wind:500", "rain", "count"]
    np.testing.assert_array_equal(fr.sel(channel="wind:700").values, ds.wind.sel(level=700))
    np.testing.assert_allclose(fr.sel(channel="rain").values, ds.rain.values.astype("f4"))
    np.testing.assert_array_equal(fr.sel(channel="count").values, ds["count"].values)
    assert "event" in fr.coords and fr.event.dims == ("time",)
    assert fr.attrs["variables"] == ["wind", "rain", "count"]
    assert fr.attrs["units"] == ["m s-1"] * 3 + ["mm h-1", "1"]


def test_to_frames_default_all_variables_and_dataarray():
    ds = stgeo.testing.crowd_flows(n_days=1, shape=(8, 8))
    fr = to_frames(ds)
    assert fr.channel.values.tolist() == ["flow:inflow", "flow:outflow"]
    assert {"lat", "lon"} <= set(fr.coords)
    fr2 = to_frames(ds.flow)
    assert fr2.channel.values.tolist() == fr.channel.values.tolist()
    rr = stgeo.testing.storm_cells(n_times=3, shape=(8, 8))
    assert "crs" in to_frames(rr).coords


def test_to_frames_is_lazy_on_a_zarr_store(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=8, shape=(16, 16))
    p = stgeo.to_zarr(ds, tmp_path / "s.zarr", chunks={"time": 2})
    fr = to_frames(stgeo.open_dataset(p), "rain_rate")
    assert fr.chunks is not None and fr.chunks[0] == (2, 2, 2, 2)
    np.testing.assert_array_equal(fr.values[:, 0], ds.rain_rate.values)


def test_to_frames_unknown_variable_lists_valid():
    with pytest.raises(UnknownNameError, match="rain"):
        to_frames(_two_vars(), "rian")


def test_to_frames_two_extra_dims_is_a_clear_error():
    ds = _two_vars()
    ds["bad"] = ds.wind.expand_dims(member=2, axis=1).copy()
    with pytest.raises(DataValidationError, match="more than one extra dim"):
        to_frames(ds, "bad")


def test_to_frames_validates_time():
    ds = _two_vars().rename(time="date")
    with pytest.raises(DataValidationError, match="time"):
        to_frames(ds)


def test_from_frames_roundtrip_numpy_and_dataarray():
    ds = _two_vars()
    fr = to_frames(ds, ["rain", "wind"])
    ch = fr.channel.values.tolist()
    out = from_frames(fr, ch, ds)
    assert out["wind"].dims == ("time", "level", "y", "x")
    assert out["wind"].level.values.tolist() == [850, 700, 500]
    np.testing.assert_array_equal(out["wind"].values, ds.wind.values)
    np.testing.assert_allclose(out["rain"].values, ds.rain.values.astype("f4"))
    assert out["rain"].attrs["units"] == "mm h-1"
    # numpy with extra leading dims (init_time, lead_time)
    arr = np.stack([fr.values[:2], fr.values[2:4]])
    out = from_frames(arr, ch, ds)
    assert out["wind"].dims == ("dim_0", "dim_1", "level", "y", "x")
    np.testing.assert_array_equal(out["wind"].values[1, 0], ds.wind.values[2])


def test_from_frames_errors():
    ds = _two_vars()
    arr = np.zeros((2, 4, 8, 10), dtype="f4")
    with pytest.raises(DataValidationError, match="channels"):
        from_frames(arr, ["rain"], ds)
    with pytest.raises(UnknownNameError, match="rain"):
        from_frames(arr, ["nope", "wind:850", "wind:700", "wind:500"], ds)
    with pytest.raises(DataValidationError, match="do not match"):
        from_frames(arr, ["rain", "wind:1", "wind:700", "wind:500"], ds)
    with pytest.raises(DataValidationError, match="grid"):
        from_frames(np.zeros((2, 1, 3, 3)), ["rain"], ds)

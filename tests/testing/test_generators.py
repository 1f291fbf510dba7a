"""The embedded synthetic datasets: deterministic, valid, physically plausible."""

import numpy as np
import pandas as pd
import pytest

import stgeo
from stgeo.errors import DataValidationError


def test_storms_deterministic_and_valid():
    a = stgeo.testing.storm_cells(n_times=10, shape=(40, 30), seed=5)
    b = stgeo.testing.storm_cells(n_times=10, shape=(40, 30), seed=5)
    c = stgeo.testing.storm_cells(n_times=10, shape=(40, 30), seed=6)
    np.testing.assert_array_equal(a.rain_rate.values, b.rain_rate.values)
    assert not np.array_equal(a.rain_rate.values, c.rain_rate.values)
    stgeo.validate(a)
    assert a.rain_rate.dtype == np.float32
    assert a.rain_rate.attrs["units"] == "mm h-1"
    # real geography: the grid is centred on the requested point
    assert abs(float(a.lat.mean()) - 50.5) < 0.1 and abs(float(a.lon.mean()) - 4.5) < 0.1


def test_storms_rain_statistics_are_plausible():
    ds = stgeo.testing.storm_cells(n_times=96, shape=(64, 64), seed=0)
    r = ds.rain_rate.values
    assert r.min() >= 0
    wet = (r > 0).mean()
    assert 0.02 < wet < 0.6  # showers: much of the domain dry
    assert 5 < r.max() < 300  # mm/h: heavy showers but not absurd
    assert (r[(r > 0)] >= 0.1).all()  # dry pixels are exactly zero


def test_storms_move_with_the_wind():
    """Successive frames are best matched by a shift (advection), not by staying in place."""
    ds = stgeo.testing.storm_cells(n_times=30, shape=(64, 64), seed=1, mean_speed_ms=15.0)
    r = ds.rain_rate.values
    a, b = r[10], r[11]
    best, best_err = (0, 0), np.inf
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            err = np.mean((np.roll(a, (dy, dx), axis=(0, 1))[8:-8, 8:-8] - b[8:-8, 8:-8]) ** 2)
            if err < best_err:
                best, best_err = (dy, dx), err
    assert best != (0, 0)
    # 15 m/s * 300 s = 4.5 km = ~2.25 pixels at 2 km
    assert 1 <= np.hypot(*best) <= 4


def test_storms_latlon_grid():
    ds = stgeo.testing.storm_cells(n_times=3, shape=(20, 24), projected=False)
    assert ds.rain_rate.dims == ("time", "lat", "lon")
    stgeo.validate(ds)


def test_crowd_flows_cycles():
    ds = stgeo.testing.crowd_flows(n_days=14, shape=(16, 8), step="1h", seed=0)
    stgeo.validate(ds)
    f = ds.flow.sum(("channel", "y", "x")).to_series()
    hourly = f.groupby(f.index.hour).mean()
    assert hourly.idxmin() in (0, 1, 2, 3, 4, 5)  # quiet at night
    assert hourly.loc[[8, 18]].min() > 3 * hourly.loc[3]  # commuting peaks
    weekday = f[f.index.day_of_week < 5].groupby(f[f.index.day_of_week < 5].index.hour).mean()
    weekend = f[f.index.day_of_week >= 5].groupby(f[f.index.day_of_week >= 5].index.hour).mean()
    assert weekday.loc[8] > 1.5 * weekend.loc[8]  # no morning rush at weekends
    assert (ds.flow.values == np.round(ds.flow.values)).all()  # counts


def test_crowd_flows_holidays_look_like_sundays():
    hol = ["2015-11-04"]  # a Wednesday
    ds = stgeo.testing.crowd_flows(n_days=7, shape=(8, 8), step="1h", seed=0, holidays=hol)
    f = ds.flow.sum(("channel", "y", "x")).to_series()
    at8 = f[f.index.hour == 8]
    assert at8.loc["2015-11-04"].iloc[0] < 0.7 * at8.loc["2015-11-03"].iloc[0]


def test_bad_arguments():
    with pytest.raises(DataValidationError, match="shape"):
        stgeo.testing.storm_cells(shape=(2, 50))
    with pytest.raises(DataValidationError, match="divide one day"):
        stgeo.testing.crowd_flows(step="7min")
    assert pd.Timedelta(
        stgeo.conventions.time_step(stgeo.testing.crowd_flows(n_days=1))
    ) == pd.Timedelta("30min")

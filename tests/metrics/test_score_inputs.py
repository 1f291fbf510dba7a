"""score() checks its inputs: dtypes, time types, units by meaning, non-finite and all-NaN
fields (counted), argument types; transposed observations are matched by dim name."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError


@pytest.fixture(scope="module")
def pair():
    ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
    fc = stgeo.forecast(ds, "persistence", lead_steps=2, progress=False)
    return fc.isel(init_time=slice(0, -2)), ds.rain_rate


def test_baseline_scores(pair):
    fc, obs = pair
    ref = stgeo.score(fc, obs, metrics="mse")
    # units spelled differently but equal in meaning are accepted
    same = stgeo.score(fc, obs.assign_attrs(units="mm/h"), metrics="mse")
    xr.testing.assert_identical(ref, same)


@pytest.mark.parametrize("lazy", [False, True])
def test_all_inf_observations_refused_not_csi(pair, lazy):
    fc, obs = pair
    bad = obs * 0 + np.inf
    bad = bad.chunk(time=4) if lazy else bad
    with pytest.raises(DataValidationError, match=r"observations hold 5120 infinite value"):
        stgeo.score(fc, bad, metrics="csi", thresholds=[1.0])


def test_one_inf_pixel_is_counted(pair):
    fc, obs = pair
    bad = obs.copy()
    bad[3, 2, 2] = np.inf
    with pytest.raises(DataValidationError, match=r"hold \d+ infinite value"):
        stgeo.score(fc, bad, metrics="mse")
    with pytest.raises(DataValidationError, match="forecast hold"):
        stgeo.score(fc.where(fc.x != fc.x[0], -np.inf), obs, metrics="mse")


@pytest.mark.parametrize("which", ["forecast", "observations"])
def test_all_nan_refused_with_count(pair, which):
    fc, obs = pair
    if which == "forecast":
        fc = fc * np.nan
    else:
        obs = obs * np.nan
    with pytest.raises(DataValidationError, match=rf"the {which} are all NaN \(5120 values"):
        stgeo.score(fc, obs, metrics=["mse", "csi"], thresholds=[1.0])


def test_partly_nan_is_no_data_not_an_error(pair):
    fc, obs = pair
    part = obs.where(obs.x != obs.x[0])
    res = stgeo.score(fc, part, metrics="mse")
    assert np.isfinite(res.mse.values).all()


@pytest.mark.parametrize(
    ("units", "match"),
    [
        ("dBZ", "not convertible"),
        ("K", "not convertible"),
        ("m s-1", r"\* 3.6e\+06"),
        ("mm min-1", r"\* 60"),
    ],
)
def test_units_differ(pair, units, match):
    fc, obs = pair
    with pytest.raises(DataValidationError, match=match):
        stgeo.score(fc, obs.assign_attrs(units=units), metrics="mse")


@pytest.mark.parametrize("dtype", [object, complex])
def test_object_and_complex_observations(pair, dtype):
    fc, obs = pair
    with pytest.raises(DataValidationError, match="scores need real numbers"):
        stgeo.score(fc, obs.astype(dtype), metrics="mse")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: pd.DatetimeIndex(t).tz_localize("UTC"), "timezone-aware"),
        (
            lambda t: xr.date_range(
                "2021-07-04T12:00", periods=t.size, freq="5min", use_cftime=True, calendar="noleap"
            ),
            "cftime",
        ),
        (lambda t: [str(v) for v in t], "strings"),
        (lambda t: np.arange(t.size), "plain numbers"),
    ],
)
def test_observation_time_type_named(pair, make, match):
    fc, obs = pair
    bad = obs.assign_coords(time=make(obs.time.values))
    with pytest.raises(DataValidationError, match=match) as info:
        stgeo.score(fc, bad, metrics="mse")
    assert "lack" not in str(info.value)


def test_transposed_observations_score_the_same(pair):
    fc, obs = pair
    ref = stgeo.score(fc, obs, metrics=["mse", "csi"], thresholds=[1.0])
    got = stgeo.score(fc, obs.transpose("time", "x", "y"), metrics=["mse", "csi"],
                      thresholds=[1.0])  # fmt: skip
    xr.testing.assert_allclose(ref, got)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thresholds": True, "metrics": "csi"}, "thresholds must be real numbers"),
        ({"thresholds": "1", "metrics": "csi"}, "thresholds must be real numbers"),
        ({"variable": 3}, "variable must be a name"),
        ({"compute": "yes"}, "compute must be True or False"),
        ({"batch_init_times": True}, "batch_init_times must be positive integers"),
        ({"metrics": 3}, "metrics must be a name"),
    ],
)
def test_argument_types(pair, kwargs, match):
    fc, obs = pair
    kwargs = {"metrics": "mse", **kwargs}
    with pytest.raises(StgeoTypeError, match=match):
        stgeo.score(fc, obs, **kwargs)


@pytest.mark.parametrize("preserve", [("lead_time",), "lead_time", ()])
def test_preserve_and_reduce_dims_together_refused(pair, preserve):
    fc, obs = pair
    with pytest.raises(DataValidationError, match="either reduce_dims or preserve_dims"):
        stgeo.score(fc, obs, metrics="mse", preserve_dims=preserve, reduce_dims=("x",))
    # reduce_dims alone (preserve_dims left at its default) or with None still works
    for kw in ({}, {"preserve_dims": None}):
        res = stgeo.score(fc, obs, metrics="mse", reduce_dims=("y", "x"), **kw)
        assert "lead_time" in res.mse.dims

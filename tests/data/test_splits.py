"""Tests of time-based splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stgeo.data import split_by_time
from stgeo.errors import DataValidationError, StgeoTypeError


@pytest.fixture
def ds():
    t = pd.date_range("2020-01-01", periods=100, freq="1h")
    return xr.Dataset({"v": (("time", "y", "x"), np.zeros((100, 2, 2)))}, coords={"time": t})


def test_fractions_are_consecutive_and_disjoint(ds):
    p = split_by_time(ds, train=0.7, val=0.1, test=0.2)
    assert [p[k].sizes["time"] for k in ("train", "val", "test")] == [70, 10, 20]
    assert p["train"].time[-1] < p["val"].time[0] and p["val"].time[-1] < p["test"].time[0]
    assert p["test"].time[-1] == ds.time[-1]
    p = split_by_time(ds.v, train=0.5, test=0.25)  # DataArray; val skipped
    assert set(p) == {"train", "test"} and p["test"].time[0] == ds.time[50]


def test_time_pairs_inclusive(ds):
    p = split_by_time(
        ds,
        train=(None, "2020-01-02T23:00"),
        val=("2020-01-03", "2020-01-03T11:00"),
        test=("2020-01-04", None),
    )
    assert p["train"].sizes["time"] == 48 and p["val"].sizes["time"] == 12
    assert p["test"].time[0] == np.datetime64("2020-01-04") and p["test"].sizes["time"] == 28


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": ("2020-01-01", "2020-01-03"), "test": ("2020-01-02", None)}, "overlap"),
        ({"train": (None, None), "val": ("2020-01-04", "2020-01-04T05:00")}, "overlap"),
        ({"train": 0.8, "test": 0.3}, "sum"),
        ({"train": 0.8, "test": ("2020-01-04", None)}, "not a mix"),
        ({"train": 0.0}, r"\(0, 1\]"),
        ({"test": ("2021-01-01", None)}, "empty"),
        ({"train": ("2020-01-03", "2020-01-01")}, "after end"),
        ({"train": "2020"}, "pair"),
        ({}, "at least one"),
    ],
)
def test_errors(ds, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        split_by_time(ds, **kwargs)


def test_type_error():
    with pytest.raises(StgeoTypeError):
        split_by_time(np.zeros(3), train=0.5)

"""Calendar features of forecast times (stgeo.data.time_features / TimeFeatures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stgeo.data import TimeFeatures, time_features
from stgeo.errors import DataValidationError, StgeoTypeError


def test_known_dates():
    f = time_features(
        ["2014-07-04T12:00", "2014-07-05T00:00", "2014-07-07T18:00"], holidays="US", subdiv="NY"
    )
    names = TimeFeatures(holidays="US").names()
    col = {n: i for i, n in enumerate(names)}
    assert f.shape == (3, 11) and f.dtype == np.float32
    assert f[:, col["holiday"]].tolist() == [1.0, 0.0, 0.0]  # Independence Day (a Friday)
    assert f[:, col["weekend"]].tolist() == [0.0, 1.0, 0.0]  # Saturday
    assert f[:, 2:9].argmax(1).tolist() == [4, 5, 0]  # Friday, Saturday, Monday
    assert f[:, 2:9].sum(1).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(f[:, :2], [[0, -1], [0, 1], [-1, 0]], atol=1e-6)  # noon, 0h, 18h


def test_country_and_subdivision_matter():
    days = pd.to_datetime(["2014-10-01", "2014-07-04", "2014-02-12"])
    cn = time_features(days, holidays="CN")[:, -1]
    us = time_features(days, holidays="US")[:, -1]
    assert cn.tolist() == [1.0, 0.0, 0.0] and us.tolist() == [0.0, 1.0, 0.0]
    # Lincoln's Birthday is a public holiday of New York State, not a federal one
    assert time_features(days[2:], holidays="US", subdiv="NY")[0, -1] == 1.0


def test_without_country_no_holiday_column():
    tf = TimeFeatures()
    assert tf.size == 10 and "holiday" not in tf.names()
    assert time_features("2014-07-04").shape == (1, 10)


def test_timezone_converts_utc_times():
    # 02:00 UTC on 5 July is 22:00 on 4 July in New York: a Friday and a holiday
    f = time_features(["2014-07-05T02:00"], holidays="US", timezone="America/New_York")
    assert f[0, -1] == 1.0 and f[0, 2:9].argmax() == 4 and f[0, 9] == 0.0


def test_round_trip_and_bad_settings():
    tf = TimeFeatures(holidays="US", subdiv="NY")
    assert TimeFeatures.from_dict(tf.to_dict()) == tf
    with pytest.raises(DataValidationError, match="needs the country"):
        TimeFeatures(subdiv="NY")
    with pytest.raises(DataValidationError, match="knows no country"):
        TimeFeatures(holidays="XX")
    with pytest.raises(DataValidationError, match="NOPE"):
        TimeFeatures(holidays="US", subdiv="NOPE")
    with pytest.raises(DataValidationError, match="time zone"):
        TimeFeatures(timezone="Mars/Olympus")
    with pytest.raises(DataValidationError, match="unknown time-feature settings"):
        TimeFeatures.from_dict({"country": "US"})
    with pytest.raises(StgeoTypeError):
        TimeFeatures(holidays=1)
    with pytest.raises(DataValidationError, match="NaT"):
        time_features(pd.to_datetime(["2014-07-04", None]))

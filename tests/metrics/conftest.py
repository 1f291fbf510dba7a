"""Shared fixtures for the metrics tests."""

from __future__ import annotations

import pytest
import xarray as xr
from metrics_helpers import make_pair


@pytest.fixture
def pair() -> tuple[xr.DataArray, xr.DataArray]:
    return make_pair()

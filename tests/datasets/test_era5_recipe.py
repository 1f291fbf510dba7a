"""The ERA5 recipe on the real 2 m temperature file (../shared/data/era5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dataset_helpers import need_shared

import stgeo
from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import run_recipe
from stgeo.errors import DataValidationError, DependencyError, UnknownNameError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def era5_store(tmp_path_factory):
    src = need_shared("era5", "era5-2mt-2019-03-uk.nc")
    dest = tmp_path_factory.mktemp("era5") / "t2m.zarr"
    return src, run_recipe("era5", src, dest, variables="t2m")


def test_store_matches_raw(era5_store):
    src, path = era5_store
    ds = stgeo.open_dataset(path)
    stgeo.validate(ds)
    assert ds.t2m.dims == ("time", "lat", "lon")
    assert ds.t2m.attrs["units"] == "K" and ds.t2m.attrs["standard_name"] == "air_temperature"
    assert np.all(np.diff(ds.lat.values) > 0)
    assert ds.lat.values[0] == 50.0 and ds.lat.values[-1] == 58.0
    assert ds.sizes == {"time": 744, "lat": 33, "lon": 49}
    assert stgeo.conventions.time_step(ds) == pd.Timedelta("1h")
    with xr.open_dataset(src) as raw:
        for t, la, lo in [(0, 50.0, -10.0), (100, 58.0, 2.0), (743, 54.25, -3.5), (400, 52, 0)]:
            want = float(raw.t2m.isel(time=t).sel(latitude=la, longitude=lo))
            got = float(ds.t2m.isel(time=t).sel(lat=la, lon=lo))
            assert got == want
        np.testing.assert_array_equal(ds.t2m.isel(time=5).values, raw.t2m.isel(time=5).values[::-1])


def test_catalog_entry(era5_store):
    (e,) = load_catalog_file(REPO / "catalogs" / "era5.yaml")
    ds = stgeo.open_dataset(era5_store[1])
    assert e.variables == ["t2m"] and e.units == {"t2m": "K"}
    sizes = {k: e.select_split(ds, k).sizes["time"] for k in ("train", "val", "test")}
    assert sizes == {"train": 21 * 24, "val": 3 * 24, "test": 7 * 24}
    assert (Path(need_shared()) / e.recipe["source"]).exists()


def test_grib_needs_cfgrib_or_converts(tmp_path):
    src = need_shared("era5", "era5-2mt-2019-03-uk.grib")
    try:
        import cfgrib  # noqa: F401
    except ImportError:
        with pytest.raises(DependencyError, match="cfgrib"):
            run_recipe("era5", src, tmp_path / "g.zarr")
        return
    ds = stgeo.open_dataset(run_recipe("era5", src, tmp_path / "g.zarr"))
    assert ds.t2m.shape == (744, 33, 49)


def test_bad_inputs(tmp_path, era5_store):
    src = era5_store[0]
    trunc = tmp_path / "trunc.nc"
    trunc.write_bytes(src.read_bytes()[:200_000])
    with pytest.raises(DataValidationError, match=r"trunc\.nc"):
        run_recipe("era5", trunc, tmp_path / "a.zarr")
    assert not (tmp_path / "a.zarr").exists()
    text = tmp_path / "notes.nc"
    text.write_text("hello")
    with pytest.raises(DataValidationError, match="neither netCDF nor GRIB"):
        run_recipe("era5", text, tmp_path / "a.zarr")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"a": (("n",), np.arange(3.0))}).to_netcdf(foreign)
    with pytest.raises(DataValidationError, match="not an ERA5"):
        run_recipe("era5", foreign, tmp_path / "a.zarr")
    with pytest.raises(UnknownNameError, match="t2m"):
        run_recipe("era5", src, tmp_path / "a.zarr", variables="u10")

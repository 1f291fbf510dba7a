"""The BikeNYC recipe: the real netCDF tail and the original HDF5 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dataset_helpers import need_shared, write_deepst_h5

import stgeo
from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import run_recipe
from stgeo.datasets.bikenyc import MANHATTAN_BBOX
from stgeo.errors import DataValidationError

REPO = Path(__file__).resolve().parents[2]
TAIL = "bikenyc_tail_20140804T23_20140930T23.nc"


@pytest.fixture(scope="module")
def tail_store(tmp_path_factory):
    src = need_shared("bikenyc", TAIL)
    return src, run_recipe("bikenyc", src.parent, tmp_path_factory.mktemp("b") / "b.zarr")


def test_real_tail(tail_store):
    src, path = tail_store
    ds = stgeo.open_dataset(path)
    stgeo.validate(ds)
    assert ds.flow.dims == ("time", "channel", "y", "x")
    assert ds.flow.shape == (1369, 2, 16, 8)
    assert list(ds.channel.values) == ["inflow", "outflow"]
    assert ds.flow.attrs["units"] == "1"
    assert str(ds.time.values[0])[:13] == "2014-08-04T23"
    assert "event" not in ds.coords  # one contiguous run
    with xr.open_dataset(src) as raw:
        for t, i, j in [(0, 3, 4), (700, 10, 2), (1368, 8, 5)]:
            new, end = raw.flow.isel(time=t, row=i, col=j).values
            assert ds.flow.isel(time=t, y=i, x=j).sel(channel="outflow") == new
            assert ds.flow.isel(time=t, y=i, x=j).sel(channel="inflow") == end
        np.testing.assert_array_equal(ds.flow.sum().values, raw.flow.sum().values)
    # cell centres inside the documented Manhattan box, row 0 north
    s, w, n, e = MANHATTAN_BBOX
    assert s < float(ds.lat.min()) < float(ds.lat.max()) < n
    assert w < float(ds.lon.min()) < float(ds.lon.max()) < e
    assert float(ds.lat[0, 0]) > float(ds.lat[-1, 0])
    assert float(ds.lat[0, 0]) == pytest.approx(n - (n - s) / 32)


def test_matches_windowed_npz(tail_store):
    """The ST-SSL test windows (nodes = row*8 + col, last axis new/end) agree with the store."""
    npz = need_shared("bikenyc", "NYCBike1", "test.npz")
    ds = stgeo.open_dataset(tail_store[1])
    y = np.load(npz)["y"][:, 0]  # (864, 128, 2): targets of the last 864 hours
    flows = ds.flow.isel(time=slice(-864, None)).values  # (864, 2, 16, 8)
    np.testing.assert_array_equal(y[..., 0].reshape(-1, 16, 8), flows[:, 1])  # new = outflow
    np.testing.assert_array_equal(y[..., 1].reshape(-1, 16, 8), flows[:, 0])  # end = inflow


def test_catalog_entry(tail_store):
    (e,) = load_catalog_file(REPO / "catalogs" / "bikenyc.yaml")
    ds = stgeo.open_dataset(tail_store[1])
    test = e.select_split(ds, "test")
    val = e.select_split(ds, "val")
    assert test.sizes["time"] == 240 and val.sizes["time"] == 168
    assert str(test.time.values[-1])[:13] == "2014-09-30T23"
    assert e.select_split(ds, "train").sizes["time"] == 1369 - 240 - 168
    assert e.recipe["name"] == "bikenyc"
    assert (need_shared() / e.recipe["source"]).exists()


def test_original_h5_layout(tmp_path):
    times = pd.date_range("2014-04-01", periods=24 * 6, freq="1h")
    raw = tmp_path / "raw"
    raw.mkdir()
    data = write_deepst_h5(raw / "NYC14_M16x8_T60_NewEnd.h5", times, 24, (16, 8), seed=1)
    ds = stgeo.open_dataset(run_recipe("bikenyc", raw, tmp_path / "o.zarr"))
    stgeo.validate(ds)
    assert ds.flow.shape == (144, 2, 16, 8)
    np.testing.assert_array_equal(ds.time.values, times.values)
    np.testing.assert_array_equal(ds.flow.sel(channel="outflow").values, data[:, 0])
    np.testing.assert_array_equal(ds.flow.sel(channel="inflow").values, data[:, 1])
    # drop_incomplete_days with a missing hour drops that day only
    (tmp_path / "gap").mkdir()
    write_deepst_h5(tmp_path / "gap" / "x.h5", times.delete(30), 24, (16, 8))
    ds2 = stgeo.open_dataset(
        run_recipe(
            "bikenyc", tmp_path / "gap" / "x.h5", tmp_path / "g.zarr", drop_incomplete_days="true"
        )
    )
    assert ds2.sizes["time"] == 24 * 5
    assert not (ds2.time.dt.day == 2).any()


def test_bad_files(tmp_path):
    import h5py

    p = tmp_path / "NYC14_M16x8_T60_NewEnd.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.zeros((4, 2, 16, 8))
    with pytest.raises(DataValidationError, match=r"'date'.*missing"):
        run_recipe("bikenyc", p, tmp_path / "o.zarr")
    times = pd.date_range("2014-04-01", periods=48, freq="1h")
    write_deepst_h5(p, times, 24, (16, 8))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataValidationError, match="truncated"):
        run_recipe("bikenyc", p, tmp_path / "o.zarr")
    q = tmp_path / "x.h5"
    with h5py.File(q, "w") as f:
        f["date"] = np.asarray([b"2014040125"] * 2)  # slot 25 does not exist
        f["data"] = np.zeros((2, 2, 16, 8))
    with pytest.raises(DataValidationError, match="slot"):
        run_recipe("bikenyc", q, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()

"""The TaxiBJ+ recipe on files generated in the UrbanFM layout (the tensors are not offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stgeo
from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import run_recipe
from stgeo.datasets.taxibj import BEIJING_BBOX
from stgeo.errors import DataValidationError

REPO = Path(__file__).resolve().parents[2]
SIZES = {"train": 96, "valid": 48, "test": 40}


def make_urbanfm(root: Path, period: str = "P1", *, sizes=SIZES, channel=False, seed=0):
    """TaxiBJ+/Pn/{train,valid,test}/{X,Y,ext}.npy with X = 4x4 block sums of Y."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in sizes.items():
        d = root / period / split
        d.mkdir(parents=True)
        y = rng.integers(0, 40, size=(n, 128, 128)).astype(np.float32)
        x = y.reshape(n, 32, 4, 32, 4).sum(axis=(2, 4))
        ext = np.column_stack(
            [rng.normal(20, 5, n), rng.uniform(0, 10, n), rng.integers(0, 2, (n, 2)),
             rng.integers(0, 7, n), rng.integers(0, 24, n), rng.integers(0, 17, n)]
        ).astype(np.float32)  # fmt: skip
        np.save(d / "X.npy", x[:, None] if channel else x)
        np.save(d / "Y.npy", y[:, None] if channel else y)
        np.save(d / "ext.npy", ext)
        out[split] = (x, y, ext)
    return out


@pytest.fixture
def urbanfm(tmp_path):
    return tmp_path / "TaxiBJ+", make_urbanfm(tmp_path / "TaxiBJ+")


@pytest.mark.parametrize("grid, idx, shape", [("fine", 1, (128, 128)), ("coarse", 0, (32, 32))])
def test_round_trip(urbanfm, tmp_path, grid, idx, shape):
    src, arrays = urbanfm
    p = run_recipe("taxibj-plus", src, tmp_path / f"{grid}.zarr", grid=grid)
    ds = stgeo.open_dataset(p)
    stgeo.validate(ds)
    n = sum(SIZES.values())
    assert ds.flow.dims == ("time", "y", "x") and ds.flow.shape == (n, *shape)
    assert ds.flow.attrs["units"] == "1" and ds.attrs["grid"] == grid
    want = np.concatenate([arrays[s][idx] for s in SIZES])
    np.testing.assert_array_equal(ds.flow.values, want)
    ext = np.concatenate([arrays[s][2] for s in SIZES])
    np.testing.assert_array_equal(ds.external.values, ext)
    assert ds.external.dims == ("time", "external_factor") and ds.sizes["external_factor"] == 7
    # times: consecutive 30-min slots from the period start, train -> valid -> test
    times = pd.DatetimeIndex(ds.time.values)
    assert (
        times[0] == pd.Timestamp("2013-07-01") and (np.diff(times) == np.timedelta64(30, "m")).all()
    )
    ev = ds.event.values
    assert ev.tolist() == [0] * 96 + [1] * 48 + [2] * 40
    assert ds.event.attrs["flag_meanings"] == "train valid test"
    assert "no timestamps" in ds.attrs["time_note"]
    # lat/lon on the TaxiBJ bounding box; row 0 north, column 0 west
    south, west, north, east = BEIJING_BBOX
    lat, lon = ds.lat.values, ds.lon.values
    assert lat.shape == shape and south < lat.min() < lat.max() < north
    assert west < lon.min() < lon.max() < east
    assert lat[0, 0] > lat[-1, 0] and lon[0, 0] < lon[0, -1]


def test_coarse_and_fine_stores_align(urbanfm, tmp_path):
    """Same times and events; each coarse cell is the sum of its 4 x 4 fine cells."""
    src, _ = urbanfm
    fine = stgeo.open_dataset(run_recipe("taxibj-plus", src, tmp_path / "f.zarr"))
    coarse = stgeo.open_dataset(run_recipe("taxibj-plus", src, tmp_path / "c.zarr", grid="coarse"))
    np.testing.assert_array_equal(fine.time.values, coarse.time.values)
    np.testing.assert_array_equal(fine.event.values, coarse.event.values)
    f = fine.flow.values
    summed = f.reshape(f.shape[0], 32, 4, 32, 4).sum(axis=(2, 4))
    np.testing.assert_allclose(summed, coarse.flow.values)
    # the fine lat/lon average to the coarse ones (same bounding box)
    lat_f = fine.lat.values.reshape(32, 4, 32, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(lat_f, coarse.lat.values, atol=1e-9)


def test_period_folder_channel_axis_and_start(tmp_path):
    arrays = make_urbanfm(tmp_path / "TaxiBJ+", "P3", channel=True)
    p = run_recipe(
        "taxibj-plus", tmp_path / "TaxiBJ+" / "P3", tmp_path / "p3.zarr", start="2015-03-02"
    )
    ds = stgeo.open_dataset(p)
    assert ds.flow.dims == ("time", "y", "x")  # a single channel axis is squeezed
    np.testing.assert_array_equal(ds.flow.values[:96], arrays["train"][1])
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2015-03-02")
    assert ds.attrs["period"].startswith("P3")


def test_layout_errors(tmp_path):
    root = tmp_path / "TaxiBJ+"
    make_urbanfm(root)
    with pytest.raises(DataValidationError, match="no TaxiBJ\\+ period folder"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr", period="P2")
    with pytest.raises(DataValidationError, match="unknown TaxiBJ\\+ period"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr", period="P9")
    with pytest.raises(DataValidationError, match="grid must be"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr", grid="medium")
    (root / "P1" / "valid" / "ext.npy").unlink()
    with pytest.raises(DataValidationError, match="valid/ext.npy"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr")


def test_bad_files(tmp_path):
    root = tmp_path / "TaxiBJ+"
    make_urbanfm(root)
    test_dir = root / "P1" / "test"
    np.save(test_dir / "ext.npy", np.zeros((3, 7), np.float32))  # wrong length
    with pytest.raises(DataValidationError, match="external factors of shape \\(3, 7\\) for 40"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr")
    np.save(test_dir / "ext.npy", np.zeros((40, 7), np.float32))
    data = (test_dir / "Y.npy").read_bytes()
    (test_dir / "Y.npy").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataValidationError, match="truncated"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()
    np.save(test_dir / "Y.npy", np.zeros((40, 3, 128, 128), np.float32))
    with pytest.raises(DataValidationError, match="expected \\(N, H, W\\)"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr")


def test_more_frames_than_the_period_is_refused(tmp_path):
    root = tmp_path / "TaxiBJ+" / "P1"
    for split, n in (("train", 5904), ("valid", 1), ("test", 1)):  # P1: 123 days x 48 slots
        (root / split).mkdir(parents=True)
        np.save(root / split / "X.npy", np.zeros((n, 4, 4), np.float32))
        np.save(root / split / "ext.npy", np.zeros((n, 7), np.float32))
    with pytest.raises(DataValidationError, match="has only 5904 half-hour slots"):
        run_recipe("taxibj-plus", root, tmp_path / "o.zarr", grid="coarse")


def test_catalog_entries():
    entries = {e.name: e for e in load_catalog_file(REPO / "catalogs" / "taxibj_plus.yaml")}
    assert {"taxibj-plus-p1", "taxibj-plus-p1-coarse"} <= set(entries)
    assert entries["taxibj-plus-p1-coarse"].recipe["grid"] == "coarse"
    assert entries["taxibj-plus-p1"].time_step == "30min"

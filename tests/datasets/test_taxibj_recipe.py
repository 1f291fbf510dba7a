"""The TaxiBJ recipe on generated files of the published layout + the real BJ_Holiday.txt."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_helpers import need_shared, write_deepst_h5

import stgeo
from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import run_recipe
from stgeo.datasets.taxibj import BEIJING_BBOX, parse_slots
from stgeo.errors import DataValidationError

REPO = Path(__file__).resolve().parents[2]


def _write_meteo(path: Path, times: pd.DatetimeIndex) -> np.ndarray:
    import h5py

    step = pd.Timedelta("30min")
    slots = ((times - times.normalize()) / step).astype(int) + 1
    temp = np.linspace(-5, 10, len(times))
    weather = np.zeros((len(times), 17))
    weather[np.arange(len(times)), np.arange(len(times)) % 17] = 1
    with h5py.File(path, "w") as f:
        f["date"] = np.asarray(
            [f"{t:%Y%m%d}{s:02d}".encode() for t, s in zip(times, slots, strict=True)]
        )
        f["Temperature"] = temp
        f["WindSpeed"] = np.full(len(times), 3.0)
        f["Weather"] = weather
    return temp


@pytest.fixture
def taxibj_dir(tmp_path):
    hol = need_shared("taxibj_meta", "BJ_Holiday.txt")
    d = tmp_path / "TaxiBJ"
    d.mkdir()
    # BJ15: 2015-06-28..07-01 with one missing slot on 06-29; BJ16: 2015-12-30..2016-01-02
    t15 = pd.date_range("2015-06-28", periods=48 * 4, freq="30min")
    t15 = t15.delete(48 + 20)
    t16 = pd.date_range("2015-12-30", periods=48 * 4, freq="30min")
    d15 = write_deepst_h5(d / "BJ15_M32x32_T30_InOut.h5", t15, 48, (32, 32), seed=1)
    d16 = write_deepst_h5(d / "BJ16_M32x32_T30_InOut.h5", t16, 48, (32, 32), seed=2, shuffle=True)
    met_t = pd.date_range("2015-06-28", "2016-01-02T23:30", freq="30min")
    temp = _write_meteo(d / "BJ_Meteorology.h5", met_t)
    shutil.copy(hol, d / "BJ_Holiday.txt")
    return {"dir": d, "t15": t15, "t16": t16, "d15": d15, "d16": d16, "met_t": met_t, "temp": temp}


def test_layout_and_values(taxibj_dir, tmp_path):
    d = taxibj_dir
    ds = stgeo.open_dataset(run_recipe("taxibj", d["dir"], tmp_path / "bj.zarr"))
    stgeo.validate(ds)  # strict: gaps only between events
    assert ds.flow.dims == ("time", "channel", "y", "x") and ds.flow.shape[1:] == (2, 32, 32)
    assert ds.flow.attrs["units"] == "1"
    # the incomplete day 2015-06-29 is dropped, everything else kept
    assert ds.sizes["time"] == 48 * 7
    days = pd.DatetimeIndex(ds.time.values).normalize().unique()
    assert pd.Timestamp("2015-06-29") not in days and len(days) == 7
    # three contiguous runs -> three events; windows cannot cross them
    assert len(np.unique(ds.event.values)) == 3
    seg = stgeo.conventions.segments(ds.time, pd.Timedelta("30min"), ds.event)
    np.testing.assert_array_equal(seg, ds.event.values)
    # values: inflow/outflow as in the file, at sample points (BJ16 was stored shuffled)
    t16 = d["t16"]
    for k in (0, 77, 191):
        got = ds.flow.sel(time=t16[k]).values
        np.testing.assert_array_equal(got, d["d16"][k])
    np.testing.assert_array_equal(ds.flow.sel(time="2015-06-28T05:30").values, d["d15"][11])
    # holidays from the real file: 2016-01-01..03 are holidays, 2015-12-30 is not
    hol = ds.holiday.to_series()
    assert hol["2016-01-01"].eq(1).all() and hol["2016-01-02"].eq(1).all()
    assert hol["2015-12-30"].eq(0).all()
    # meteorology aligned by time
    i = d["met_t"].get_loc(pd.Timestamp("2016-01-02T10:00"))
    assert float(ds.temperature.sel(time="2016-01-02T10:00")) == pytest.approx(d["temp"][i])
    assert ds.weather.shape == (48 * 7, 17)
    # lat/lon in the documented bounding box, row 0 north
    s, w, n, e = BEIJING_BBOX
    assert s < float(ds.lat.min()) and float(ds.lat.max()) < n
    assert w < float(ds.lon.min()) and float(ds.lon.max()) < e
    assert float(ds.lat[0, 0]) > float(ds.lat[-1, 0])
    # chunking for windowed reading
    assert ds.flow.data.chunksize == (256, 2, 32, 32)


def test_years_and_no_drop(taxibj_dir, tmp_path):
    d = taxibj_dir
    ds = stgeo.open_dataset(
        run_recipe("taxibj", d["dir"], tmp_path / "a.zarr", years="15", drop_incomplete_days=False)
    )
    assert ds.sizes["time"] == len(d["t15"])
    stgeo.validate(ds)  # the missing slot starts a new event


def test_holiday_checksum_verified(taxibj_dir, tmp_path):
    (taxibj_dir["dir"] / "BJ_Holiday.txt").unlink()
    bad = tmp_path / "meta"
    bad.mkdir()
    shutil.copy(need_shared("taxibj_meta", "SHA256SUMS"), bad / "SHA256SUMS")
    (bad / "BJ_Holiday.txt").write_text("20160101\n")  # a tampered copy
    with pytest.raises(DataValidationError, match="checksum mismatch"):
        run_recipe(
            "taxibj", taxibj_dir["dir"], tmp_path / "x.zarr", holidays=bad / "BJ_Holiday.txt"
        )
    # the real one verifies (its SHA256SUMS sits next to it)
    ok = run_recipe(
        "taxibj",
        taxibj_dir["dir"],
        tmp_path / "y.zarr",
        holidays=need_shared("taxibj_meta", "BJ_Holiday.txt"),
    )
    assert int(stgeo.open_dataset(ok).holiday.sum()) == 2 * 48  # data end on 2016-01-02


def test_bad_inputs(tmp_path):
    import h5py

    d = tmp_path / "in"
    d.mkdir()
    with pytest.raises(DataValidationError, match="no TaxiBJ flow files"):
        run_recipe("taxibj", d, tmp_path / "o.zarr")
    p = d / "BJ16_M32x32_T30_InOut.h5"
    with h5py.File(p, "w") as f:
        f["date"] = np.asarray([b"2015110101"] * 3)
        f["data"] = np.zeros((3, 3, 32, 32))
    with pytest.raises(DataValidationError, match=r"\(N, 2, H, W\)"):
        run_recipe("taxibj", d, tmp_path / "o.zarr")
    with h5py.File(p, "w") as f:
        f["date"] = np.asarray([b"2015110101"] * 2)
        f["data"] = np.zeros((3, 2, 32, 32))
    with pytest.raises(DataValidationError, match="2 dates for 3 frames"):
        run_recipe("taxibj", d, tmp_path / "o.zarr")
    write_deepst_h5(p, pd.date_range("2015-11-01", periods=96, freq="30min"), 48, (32, 32))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataValidationError, match="truncated"):
        run_recipe("taxibj", d, tmp_path / "o.zarr")
    p.write_text("20151101\n")
    with pytest.raises(DataValidationError, match="HDF5"):
        run_recipe("taxibj", d, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()


def test_parse_slots_errors():
    assert parse_slots([b"2015110148"], 48)[0] == pd.Timestamp("2015-11-01T23:30")
    for bad in ([b"2015110149"], [b"20151101"], [b"2015130101"]):
        with pytest.raises(DataValidationError):
            parse_slots(bad, 48)


def test_catalog_entry():
    (e,) = load_catalog_file(REPO / "catalogs" / "taxibj.yaml")
    assert e.time_step == "30min" and e.variables == ["flow"]
    test = pd.Timestamp(e.splits["test"][1]) - pd.Timestamp(e.splits["test"][0])
    assert test == pd.Timedelta(days=28) - pd.Timedelta("30min")  # last 4 weeks
    assert pd.Timestamp(e.splits["test"][1]) == pd.Timestamp("2016-04-10T23:30")

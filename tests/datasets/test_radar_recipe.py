"""The radar recipe on the 8 real pysteps example events (../shared/data/radar)."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_helpers import need_shared, shared_data

import stgeo
from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import run_recipe
from stgeo.datasets.radar import PYSTEPS_EVENTS as RADAR_EVENTS
from stgeo.datasets.radar import convert_radar_events, read_radar_frame
from stgeo.errors import DataValidationError, IncompleteStoreError

pytestmark = pytest.mark.realdata
REPO = Path(__file__).resolve().parents[2]


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def radar_stores(tmp_path_factory):
    """Convert all 8 events once per session (this is also the speed benchmark)."""
    root = need_shared("radar", "radar")
    dest = tmp_path_factory.mktemp("radar")
    t0 = time.perf_counter()
    stores = convert_radar_events(shared_data(), dest, events=list(RADAR_EVENTS))
    seconds = time.perf_counter() - t0
    print(f"\nconverted 8 radar events in {seconds:.1f} s")
    return {"stores": stores, "seconds": seconds, "root": root, "dest": dest}


def _files(event: str) -> list[Path]:
    d = shared_data() / RADAR_EVENTS[event]
    return sorted(f for f in d.iterdir() if f.is_file())


def test_all_events_fast_and_small(radar_stores):
    assert radar_stores["seconds"] < 180.0
    raw = sum(_size(shared_data() / p) for p in RADAR_EVENTS.values())
    stores = sum(_size(Path(p)) for p in radar_stores["stores"].values())
    print(f"raw {raw / 2**20:.1f} MiB -> stores {stores / 2**20:.1f} MiB ({stores / raw:.2f}x)")
    assert stores < 2 * raw


@pytest.mark.parametrize("event", list(RADAR_EVENTS))
def test_store_is_canonical(radar_stores, event):
    ds = stgeo.open_dataset(radar_stores["stores"][event])
    stgeo.validate(ds)  # strict
    files = _files(event)
    rr = ds.rain_rate
    assert rr.dims == ("time", "y", "x")
    assert rr.dtype == np.float32
    assert rr.attrs["units"] == "mm h-1" and rr.attrs["standard_name"] == "rainfall_rate"
    assert ds.sizes["time"] == len(files)
    assert rr.data.chunksize[0] == 8 and rr.data.chunksize[1:] == rr.shape[1:]
    assert np.all(np.diff(ds.y.values) > 0) and np.all(np.diff(ds.x.values) > 0)
    assert ds.attrs["missing_frames"] == ""
    crs = stgeo.conventions.get_crs(ds)
    assert crs is not None and crs.is_projected
    vals = rr.isel(time=slice(0, 8)).values
    assert np.nanmin(vals) >= 0.0
    assert np.isfinite(vals).any()


def _raw_rate(event: str, path: Path) -> np.ndarray:
    """Rain rate (mm/h) read with plain libraries where possible; provider row order."""
    if event.startswith("fmi"):
        from PIL import Image

        pv = np.asarray(Image.open(io.BytesIO(gzip.open(path).read()))).astype(float)
        dbz = np.where(pv == 255, np.nan, pv * 0.5 - 32.0)
        with np.errstate(invalid="ignore"):
            return np.where(dbz < -31.5, 0.0, (10 ** (dbz / 10) / 200.0) ** (1 / 1.6))
    if event.startswith("knmi"):
        import h5py

        with h5py.File(path) as h:
            pv = h["image1/image_data"][:].astype(float)
            formula = h["image1/calibration"].attrs["calibration_formulas"].decode()
        gain, offset = (float(v) for v in re.findall(r"=([-0-9.]+)\*PV\+([-0-9.]+)", formula)[0])
        return np.where(pv == 65535, np.nan, pv * gain + offset) * 12.0
    if event.startswith("bom"):
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            acc = np.ma.filled(nc["precipitation"][:].astype(float), np.nan)
        minutes = 6.0 if event.startswith("bom2") else 10.0
        return np.maximum(acc, 0.0) * 60.0 / minutes  # 17 pixels of -0.1 mm in bom66
    if event.startswith("rmi"):
        import h5py

        with h5py.File(path) as h:
            return h["dataset1/data1/data"][:].astype(float)
    # MeteoSwiss GIF palettes: decoded by pysteps' colour table
    from pysteps.io import importers

    acc = importers.import_mch_gif(str(path), product="AQC", unit="mm", accutime=5.0)[0]
    return np.asarray(acc, dtype=float) * 12.0


@pytest.mark.parametrize("event", list(RADAR_EVENTS))
def test_values_match_raw_files(radar_stores, event):
    ds = stgeo.open_dataset(radar_stores["stores"][event])
    files = _files(event)
    rng = np.random.default_rng(0)
    for k in (0, len(files) // 2, len(files) - 1):
        raw = _raw_rate(event, files[k])[::-1]  # providers store north-up; stores y ascending
        got = ds.rain_rate.isel(time=k).values
        assert np.array_equal(np.isnan(raw), np.isnan(got))
        np.testing.assert_allclose(got, raw, rtol=1e-5, atol=1e-5, equal_nan=True)
        wet = np.argwhere(raw > 0.5)
        if len(wet):
            i, j = wet[rng.integers(len(wet))]
            assert got[i, j] == pytest.approx(raw[i, j], rel=1e-5)


@pytest.mark.parametrize("event", list(RADAR_EVENTS))
def test_corners_match_pyproj(radar_stores, event):
    from pyproj import CRS, Transformer

    ds = stgeo.open_dataset(radar_stores["stores"][event])
    f = _files(event)[0]
    product = ds.rain_rate.attrs["product"]
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    if product == "bom":
        import netCDF4

        with netCDF4.Dataset(f) as nc:
            gm = nc["proj"]
            crs = CRS.from_cf({k: gm.getncattr(k) for k in gm.ncattrs()})
            xs = nc["x"][:].astype(float) * 1000.0
            ys = nc["y"][:].astype(float) * 1000.0
        corners = {(0, 0): (xs[0], ys.min()), (ny - 1, nx - 1): (xs[-1], ys.max())}
    else:
        _, md = read_radar_frame(f, product)
        proj, fac = md["projection"], 1.0
        if md.get("cartesian_unit") == "km":
            fac = 1000.0
            proj = proj.replace("+a=6378.137", "+a=6378137").replace("+b=6356.752", "+b=6356752")
        crs = CRS.from_user_input(proj)
        dx, dy = md["xpixelsize"] * fac, md["ypixelsize"] * fac
        x1, y1, x2, y2 = (md[k] * fac for k in ("x1", "y1", "x2", "y2"))
        corners = {
            (0, 0): (x1 + dx / 2, y1 + dy / 2),
            (0, nx - 1): (x2 - dx / 2, y1 + dy / 2),
            (ny - 1, 0): (x1 + dx / 2, y2 - dy / 2),
            (ny - 1, nx - 1): (x2 - dx / 2, y2 - dy / 2),
        }
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    for (i, j), (x, y) in corners.items():
        lon, lat = tr.transform(x, y)
        assert float(ds.lat[i, j]) == pytest.approx(lat, abs=2e-5)
        assert float(ds.lon[i, j]) == pytest.approx(lon, abs=2e-5)
        assert float(ds.x[j]) == pytest.approx(x, abs=0.01)
        assert float(ds.y[i]) == pytest.approx(y, abs=0.01)


@pytest.mark.parametrize("event", list(RADAR_EVENTS))
def test_catalog_entry(radar_stores, event):
    (entry,) = [
        e for e in load_catalog_file(REPO / "catalogs" / "radar.yaml") if e.name == f"radar-{event}"
    ]
    assert entry.recipe["name"] == "radar"
    assert (shared_data() / entry.recipe["source"]).resolve() == (
        shared_data() / RADAR_EVENTS[event]
    ).resolve()
    assert entry.store == f"radar/{event}.zarr"
    assert entry.thresholds == [0.1, 1.0, 5.0]
    ds = stgeo.open_dataset(radar_stores["stores"][event])
    assert pd.Timedelta(entry.time_step) == stgeo.conventions.time_step(ds)
    # the splits cover every frame exactly once: train+val (80/20) or test
    n = ds.sizes["time"]
    got = {k: entry.select_split(ds, k).sizes["time"] for k in entry.splits}
    assert sum(got.values()) == n
    if "train" in got:
        assert got["train"] == int(0.8 * n)


def test_idempotent_and_resumable(radar_stores, tmp_path, monkeypatch):
    src = shared_data() / RADAR_EVENTS["rmi-20210704"]
    ref = radar_stores["stores"]["rmi-20210704"]
    # identical re-run: returns the existing store untouched
    before = os.stat(Path(ref) / "zarr.json").st_mtime_ns
    assert run_recipe("radar", src, ref) == ref
    assert os.stat(Path(ref) / "zarr.json").st_mtime_ns == before
    # an interrupted build leaves nothing that opens as complete ...
    from stgeo.data.store import StoreBuilder

    dest = tmp_path / "rmi.zarr"
    real = StoreBuilder.write_region
    calls = {"n": 0}

    def flaky(self, part, *, start):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, part, start=start)

    monkeypatch.setattr(StoreBuilder, "write_region", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_recipe("radar", src, dest)
    with pytest.raises((IncompleteStoreError, FileNotFoundError)):
        stgeo.open_dataset(dest)
    # ... and a re-run finishes it (resuming: the 2 written regions are not rewritten)
    calls["n"] = -100
    run_recipe("radar", src, dest)
    assert calls["n"] == -100 + 5 - 2  # 39 frames = 5 regions of 8, 2 done before
    a = stgeo.open_dataset(dest).rain_rate.values
    b = stgeo.open_dataset(ref).rain_rate.values
    np.testing.assert_array_equal(a, b)


# -- bad inputs ------------------------------------------------------------------------------
def _copy_event(event: str, dest: Path, n: int = 3) -> list[Path]:
    dest.mkdir()
    out = []
    for f in _files(event)[:n]:
        shutil.copy(f, dest / f.name)
        out.append(dest / f.name)
    return out


@pytest.mark.parametrize("event", ["knmi-20100826", "fmi-20160928", "bom2-20180616"])
def test_truncated_file(tmp_path, event):
    need_shared(RADAR_EVENTS[event])
    files = _copy_event(event, tmp_path / "ev")
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 3])
    with pytest.raises(DataValidationError, match=re.escape(files[1].name)):
        run_recipe("radar", tmp_path / "ev", tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_checksum_mismatch_detected(tmp_path):
    need_shared("radar", "SHA256SUMS")
    # a copy of the real layout (with its SHA256SUMS) where one file has a flipped byte
    rel = Path(RADAR_EVENTS["mch-20150515"]).relative_to("radar")
    ev = tmp_path / "radar" / rel
    ev.parent.mkdir(parents=True)
    files = _copy_event("mch-20150515", ev)
    shutil.copy(shared_data() / "radar" / "SHA256SUMS", tmp_path / "radar" / "SHA256SUMS")
    b = bytearray(files[2].read_bytes())
    b[len(b) // 2] ^= 0xFF
    files[2].write_bytes(bytes(b))
    with pytest.raises(DataValidationError, match="checksum mismatch"):
        run_recipe("radar", ev, tmp_path / "out.zarr")
    # the intact files verify
    files[2].unlink()
    assert stgeo.open_dataset(run_recipe("radar", ev, tmp_path / "ok.zarr")).sizes["time"] == 2


def test_foreign_and_empty_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="no radar files recognised"):
        run_recipe("radar", tmp_path / "empty", tmp_path / "o.zarr")
    # a text file named like a KNMI product
    d = tmp_path / "fake"
    d.mkdir()
    (d / "RAD_NL25_RAP_5min_201008260000.h5").write_text("not hdf5")
    with pytest.raises(DataValidationError, match="cannot read"):
        run_recipe("radar", d, tmp_path / "o.zarr")
    with pytest.raises(DataValidationError, match="does not exist"):
        run_recipe("radar", tmp_path / "nowhere", tmp_path / "o.zarr")
    with pytest.raises(stgeo.errors.UnknownNameError, match="product"):
        run_recipe("radar", d, tmp_path / "o.zarr", product="dwd")

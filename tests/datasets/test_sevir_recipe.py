"""The SEVIR recipe on generated CATALOG.csv + HDF5 files in the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_helpers import SEVIR_PROJ, make_sevir

import stgeo
from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import run_recipe
from stgeo.errors import DataValidationError

REPO = Path(__file__).resolve().parents[2]
F18 = "vil/2018/SEVIR_VIL_STORMEVENTS_2018_0101_0630.h5"
F19 = "vil/2019/SEVIR_VIL_STORMEVENTS_2019_0701_1231.h5"
EVENTS = [
    {"id": "S800001", "time": "2018-06-01 12:00:00", "file": F18, "lat": 35.0, "lon": -97.0},
    {"id": "S800002", "time": "2018-06-01 12:30:00", "file": F18, "lat": 41.0, "lon": -88.0},
    {"id": "R19010", "time": "2019-03-05 02:00:00", "file": F18, "lat": 30.0, "lon": -95.0},
    {"id": "S858968", "time": "2019-09-17 19:54:00", "file": F19, "lat": 47.8, "lon": -91.4},
]


@pytest.fixture(scope="module")
def sevir(tmp_path_factory):
    root = tmp_path_factory.mktemp("SEVIR")
    arrays = make_sevir(root, EVENTS, size=384)  # the real VIL size: (N, 384, 384, 49) uint8
    store = run_recipe("sevir", root, tmp_path_factory.mktemp("stores") / "vil.zarr")
    return root, arrays, store


def test_layout_and_values(sevir):
    _, arrays, store = sevir
    ds = stgeo.open_dataset(store)
    stgeo.validate(ds, strict=False)
    stgeo.validate(ds)  # strict: per-event geolocation (event_lat/event_lon on event_id, y, x)
    assert ds.vil.dtype == np.uint8 and ds.vil.dims == ("time", "y", "x")
    assert ds.vil.shape == (4 * 49, 384, 384)
    assert ds.vil.data.chunksize == (49, 384, 384)  # one event per chunk
    assert list(ds.event_id.values) == [e["id"] for e in EVENTS]
    assert list(ds.event_type.values) == [0] * 4
    assert ds.event_type.attrs["flag_meanings"] == "Hail"
    for k, e in enumerate(EVENTS):
        sl = slice(49 * k, 49 * (k + 1))
        got = ds.vil.isel(time=sl).values
        want = np.moveaxis(arrays[e["id"]], -1, 0)[:, ::-1]  # files are north-up
        np.testing.assert_array_equal(got, want)
        assert (ds.event.values[sl] == k).all()
        t = pd.DatetimeIndex(ds.time.values[sl])
        assert t[0] == pd.Timestamp(e["time"]) - pd.Timedelta(minutes=119)
        assert t[-1] == pd.Timestamp(e["time"]) + pd.Timedelta(minutes=121)
        assert (np.diff(t.values) == np.timedelta64(5, "m")).all()
    # times repeat/overlap across events, yet windows never cross events
    seg = stgeo.conventions.segments(ds.time, stgeo.conventions.time_step(ds), ds.event)
    assert len(np.unique(seg)) == 4


def test_per_event_geolocation(sevir):
    from pyproj import Transformer

    root, _, store = sevir
    ds = stgeo.open_dataset(store)
    cat = pd.read_csv(root / "CATALOG.csv")
    cat = cat[cat.img_type == "vil"].set_index("id")
    fwd = Transformer.from_crs("EPSG:4326", SEVIR_PROJ, always_xy=True)
    inv = Transformer.from_crs(SEVIR_PROJ, "EPSG:4326", always_xy=True)
    for eid in ds.event_id.values:
        r = cat.loc[eid]
        x0, y0 = fwd.transform(r.llcrnrlon, r.llcrnrlat)
        x1, y1 = fwd.transform(r.urcrnrlon, r.urcrnrlat)
        dx, dy = (x1 - x0) / 384, (y1 - y0) / 384
        lat = ds.event_lat.sel(event_id=eid).values
        lon = ds.event_lon.sel(event_id=eid).values
        for (i, j), (x, y) in {
            (0, 0): (x0 + dx / 2, y0 + dy / 2),
            (383, 383): (x1 - dx / 2, y1 - dy / 2),
            (0, 383): (x1 - dx / 2, y0 + dy / 2),
        }.items():
            lo, la = inv.transform(x, y)
            assert lat[i, j] == pytest.approx(la, abs=1e-4)
            assert lon[i, j] == pytest.approx(lo, abs=1e-4)
        # the patch's outer corners are the catalog corners; row 0 is the southern edge
        assert lat[0, 0] < lat[-1, 0]
        assert float(ds.x_origin.sel(event_id=eid)) == pytest.approx(x0)
        assert float(ds.llcrnrlat.sel(event_id=eid)) == pytest.approx(r.llcrnrlat)


def test_split_and_filters(sevir, tmp_path):
    root, _, _ = sevir
    for split, ids in [
        ("train", ["S800001", "S800002"]),
        ("val", ["R19010"]),
        ("test", ["S858968"]),
    ]:
        ds = stgeo.open_dataset(run_recipe("sevir", root, tmp_path / f"{split}.zarr", split=split))
        assert list(ds.event_id.values) == ids
        assert ds.attrs["split"] == split
    ds = stgeo.open_dataset(run_recipe("sevir", root, tmp_path / "m.zarr", max_events="1"))
    assert ds.sizes["event_id"] == 1 and ds.sizes["time"] == 49


def test_streams_one_event_at_a_time(sevir, tmp_path, monkeypatch):
    import h5py

    root, _, _ = sevir
    reads = []
    orig = h5py.Dataset.__getitem__

    def spy(self, key):
        out = orig(self, key)
        reads.append(np.asarray(out).nbytes)
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    run_recipe("sevir", root, tmp_path / "s.zarr")
    assert reads and max(reads) <= 384 * 384 * 49  # never more than one event's slab


def test_idempotent_and_catalog(sevir):
    root, _, store = sevir
    mtime = (Path(store) / "zarr.json").stat().st_mtime_ns
    assert run_recipe("sevir", root, store) == store
    assert (Path(store) / "zarr.json").stat().st_mtime_ns == mtime
    (e,) = load_catalog_file(REPO / "catalogs" / "sevir.yaml")
    assert e.thresholds == [16, 74, 133, 160, 181, 219]
    assert e.splits["val"][0] == "2019-01-01" and e.splits["test"][0] == "2019-06-01"
    assert e.variables == ["vil"] and e.time_step == "5min"


def test_bad_inputs(tmp_path):
    import h5py

    root = tmp_path / "S"
    root.mkdir()
    with pytest.raises(DataValidationError, match=r"no CATALOG\.csv"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    make_sevir(root, EVENTS[:2], size=16)
    cat = pd.read_csv(root / "CATALOG.csv")
    # catalog that does not belong to the file: swapped file_index
    bad = cat.copy()
    bad.loc[bad.img_type == "vil", "file_index"] = [1, 0]
    bad.to_csv(root / "CATALOG.csv", index=False)
    with pytest.raises(DataValidationError, match="does not belong"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    # missing columns
    cat.drop(columns=["minute_offsets"]).to_csv(root / "CATALOG.csv", index=False)
    with pytest.raises(DataValidationError, match="minute_offsets"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    # wrong array shape for the catalog's size
    cat.assign(size_x=32, size_y=32).to_csv(root / "CATALOG.csv", index=False)
    with pytest.raises(DataValidationError, match="expected uint8"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    # missing data file
    cat.to_csv(root / "CATALOG.csv", index=False)
    f = root / "data" / F18
    raw = f.read_bytes()
    f.unlink()
    with pytest.raises(DataValidationError, match="not found"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    # truncated data file
    f.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataValidationError, match="truncated"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    # a foreign HDF5 file
    with h5py.File(f, "w") as h:
        h["images"] = np.zeros((2, 16, 16, 49), np.uint8)
    with pytest.raises(DataValidationError, match="not a SEVIR vil file"):
        run_recipe("sevir", root, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()

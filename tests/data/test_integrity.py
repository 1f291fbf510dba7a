"""Corrupt stores never look complete: missing, altered and truncated chunks are detected.

The "Corrupt stores" reproducers of issue 15 are tests here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import stgeo
from stgeo.cli import main
from stgeo.errors import CorruptStoreError, StgeoWarning


def _chunk(store, var, *index):
    return Path(store, var, "c", *(str(i) for i in index))


def _flip(path: Path, n: int = 64) -> None:
    raw = bytearray(path.read_bytes())
    start = max(0, len(raw) // 2 - n // 2)
    for i in range(start, min(len(raw), start + n)):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.fixture
def float_store(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=24, shape=(16, 16), seed=1)
    return stgeo.to_zarr(ds, tmp_path / "f.zarr", chunks={"time": 8}), ds


def test_stores_are_checksummed_and_record_their_chunks(float_store):
    store, _ = float_store
    import json

    meta = json.loads(Path(store, "rain_rate", "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]][-1] == "crc32c"
    attrs = json.loads(Path(store, "zarr.json").read_text())["attributes"]
    assert attrs["stgeo_integrity"]["chunks"]["rain_rate"] == 3
    assert attrs["stgeo_integrity"]["checksum"] == "crc32c"
    assert "stgeo_integrity" not in stgeo.open_dataset(store).attrs


def test_deleted_chunk_of_a_uint8_variable_is_refused(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
    ds["mask"] = (ds.rain_rate > 1).astype("uint8")  # mostly zeros: the fill value
    store = stgeo.to_zarr(ds, tmp_path / "u.zarr", chunks={"time": 4})
    gone = _chunk(store, "mask", 2, 0, 0)
    assert gone.is_file()  # every chunk is written, all-zero ones too
    gone.unlink()
    with pytest.raises(CorruptStoreError) as err:
        stgeo.open_dataset(store)
    msg = str(err.value)
    assert "'mask'" in msg and str(gone) in msg and "stgeo verify" in msg
    assert "fillna" not in msg and "drop_duplicates" not in msg
    with pytest.warns(StgeoWarning, match="c/2/0/0"):
        masked = stgeo.open_dataset(store, missing_chunks="mask")
    assert bool(masked["mask"].isel(time=slice(8, 12)).isnull().all())
    np.testing.assert_array_equal(masked["mask"].isel(time=slice(0, 8)), ds["mask"][:8])
    assert masked.rain_rate.notnull().all()
    report = stgeo.verify(store)
    assert not report.ok
    assert [(p.variable, p.key, p.problem) for p in report.problems] == [
        ("mask", "c/2/0/0", "missing")
    ]


def test_flipped_bytes_in_a_float_chunk_fail_everywhere(float_store, tmp_path):
    store, ds = float_store
    bad = _chunk(store, "rain_rate", 1, 0, 0)
    _flip(bad, 64)
    opened = stgeo.open_dataset(store)  # opening reads no data
    np.testing.assert_array_equal(opened.rain_rate[:8], ds.rain_rate[:8])  # intact chunk
    with pytest.raises(CorruptStoreError, match=str(bad)) as err:
        _ = opened.rain_rate.values
    assert "'rain_rate'" in str(err.value) and "checksum" in str(err.value)
    with pytest.raises(CorruptStoreError, match=str(bad)):
        stgeo.forecast(store, "persistence", lead_steps=2, progress=False)
    with pytest.raises(CorruptStoreError, match=str(bad)):
        stgeo.score(opened.rain_rate, ds.rain_rate, metrics=["mse"]).compute()
    report = stgeo.verify(store)
    assert [(p.key, p.problem) for p in report.problems] == [("c/1/0/0", "fails its checksum")]
    assert report.problems[0].file == str(bad)


def test_truncated_chunk_names_its_file(float_store):
    store, _ = float_store
    bad = _chunk(store, "rain_rate", 2, 0, 0)
    bad.write_bytes(bad.read_bytes()[:20])
    with pytest.raises(CorruptStoreError, match=str(bad)):
        _ = stgeo.open_dataset(store).rain_rate.values
    assert stgeo.verify(store).problems[0].key == "c/2/0/0"


def test_old_store_without_checksums_opens_and_decode_errors_are_named(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=8, shape=(16, 16), seed=0)
    old = tmp_path / "old.zarr"  # as an older stgeo wrote it: no checksums, no record
    ds.assign_attrs(stgeo_complete=True).chunk({"time": 4}).to_zarr(old, consolidated=False)
    xr.testing.assert_identical(stgeo.open_dataset(old).load(), ds)
    report = stgeo.verify(old)
    assert report.ok and not report.checksummed
    assert "written by an older stgeo" in str(report)
    bad = _chunk(old, "rain_rate", 1, 0, 0)
    bad.write_bytes(bad.read_bytes()[:20])  # zstd fails: a raw RuntimeError before
    with pytest.raises(CorruptStoreError, match=str(bad)) as err:
        _ = stgeo.open_dataset(old).rain_rate.values
    assert "RuntimeError" in str(err.value)
    assert stgeo.verify(old).problems[0].problem == "is unreadable"


def test_score_refuses_a_forecast_missing_one_of_three_chunks(tmp_path, capsys):
    ds = stgeo.testing.storm_cells(n_times=24, shape=(16, 16), seed=3)
    obs = stgeo.to_zarr(ds, tmp_path / "obs.zarr")
    fc = tmp_path / "fc.zarr"
    stgeo.forecast(obs, "persistence", lead_steps=2, output=fc, batch_size=8, progress=False)
    full = stgeo.open_dataset(fc).rain_rate
    assert full.chunks[0] == (8, 8, 8)
    _chunk(fc, "rain_rate", 1, 0, 0, 0).unlink()
    run = ["score", str(fc), obs, "--metrics", "mse"]
    assert main(run) == 1
    err = capsys.readouterr().err
    assert "missing 1 chunk file" in err and "c/1/0/0/0" in err and "--mask-missing-chunks" in err
    with pytest.warns(StgeoWarning, match="read as NaN"):
        assert main([*run, "--mask-missing-chunks"]) == 0
    assert "mse" in capsys.readouterr().out
    # the masked chunk is left out of the scores (not read as zeros)
    with pytest.warns(StgeoWarning):
        masked = stgeo.open_dataset(fc, missing_chunks="mask").rain_rate
    assert bool(masked.isel(init_time=slice(8, 16)).isnull().all())
    observed = masked.valid_time.isin(ds.time).all("lead_time").values
    got = stgeo.score(masked[observed], ds.rain_rate, metrics=["mse"]).compute()
    keep = np.r_[0:8, 16:24]
    ok = full.isel(init_time=keep).load()
    ok = ok.sel(init_time=ok.valid_time.isin(ds.time).all("lead_time"))
    expected = stgeo.score(ok, ds.rain_rate, metrics=["mse"]).compute()
    xr.testing.assert_allclose(got, expected)


def test_verify_command(float_store, capsys):
    store, _ = float_store
    assert main(["verify", store]) == 0
    assert "OK: every chunk present and intact" in capsys.readouterr().out
    os.remove(_chunk(store, "rain_rate", 0, 0, 0))
    assert main(["verify", store]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED rain_rate: c/0/0/0 missing" in out
    assert main(["verify", str(Path(store).parent / "nothing.zarr")]) == 1


def test_missing_chunks_argument_is_checked(float_store):
    with pytest.raises(stgeo.errors.DataValidationError, match="missing_chunks"):
        stgeo.open_dataset(float_store[0], missing_chunks="ignore")


def test_damaged_metadata_and_non_stores_are_named(float_store, tmp_path):
    store, _ = float_store
    Path(store, "zarr.json").write_text("{broken")
    with pytest.raises(CorruptStoreError, match="zarr.json is not valid JSON"):
        stgeo.open_dataset(store)
    (tmp_path / "folder.zarr").mkdir()
    with pytest.raises(stgeo.errors.DataValidationError, match="not a Zarr store"):
        stgeo.open_dataset(tmp_path / "folder.zarr")


def _edit_json(path: Path, edit) -> None:
    import json

    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_an_edited_array_shape_is_reported_and_refused(float_store):
    store, _ = float_store
    meta = Path(store, "rain_rate", "zarr.json")
    _edit_json(meta, lambda doc: doc["shape"].__setitem__(0, 16))
    report = stgeo.verify(store)
    assert not report.ok and "OK" not in str(report)
    assert report.problems[0].file == str(meta) and "shape [16, 16, 16]" in str(report)
    with pytest.raises(CorruptStoreError, match=str(meta)):
        stgeo.open_dataset(store)  # was a raw ValueError ("conflicting sizes")


def test_a_removed_integrity_record_is_not_taken_for_an_older_store(float_store):
    store, _ = float_store
    _edit_json(Path(store, "zarr.json"), lambda doc: doc["attributes"].pop("stgeo_integrity"))
    os.remove(_chunk(store, "rain_rate", 1, 0, 0))  # would read as NaN
    report = stgeo.verify(store)
    assert not report.ok and "stgeo_integrity" in str(report) and "older stgeo" not in str(report)
    with pytest.raises(CorruptStoreError, match="stgeo_integrity"):
        stgeo.open_dataset(store)


def test_verify_takes_a_catalog_name_and_missing_paths_are_stgeo_errors(tmp_path):
    from stgeo.datasets import build_catalog
    from stgeo.errors import PathNotFoundError

    with stgeo.set_options(cache_dir=str(tmp_path)):
        build_catalog(["synthetic-storms"], n_times="4", shape="8,8")
        assert stgeo.verify("synthetic-storms").ok
        with pytest.raises(PathNotFoundError, match="stgeo catalog build synthetic-crowd"):
            stgeo.verify("synthetic-crowd")
    with pytest.raises(PathNotFoundError, match="no store at"):  # a FileNotFoundError too
        stgeo.verify(tmp_path / "missing.zarr")

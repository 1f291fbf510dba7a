"""Zarr I/O: lazy opening, atomic writes that survive an interrupted process, resumable builds."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo.data.store import StoreBuilder
from stgeo.errors import (
    DataValidationError,
    IncompleteStoreError,
    OutputExistsError,
    PathNotFoundError,
    UnknownNameError,
)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=16, shape=(16, 16), seed=2)


def test_roundtrip_is_lazy_and_identical(storms, tmp_path):
    p = stgeo.to_zarr(storms, tmp_path / "s.zarr", chunks={"time": 4})
    ds = stgeo.open_dataset(p)
    assert ds.rain_rate.chunks[0] == (4, 4, 4, 4)
    assert "stgeo_complete" not in ds.attrs
    xr.testing.assert_identical(ds.load(), storms)
    assert stgeo.conventions.get_crs(ds) == stgeo.conventions.get_crs(storms)


def test_finished_stores_open_with_plain_xarray_without_warnings(storms, tmp_path):
    """Users open stgeo's stores (data, forecasts) with xarray directly too: the metadata
    is consolidated once the store is complete (to_zarr and StoreBuilder alike)."""
    p = stgeo.to_zarr(storms, tmp_path / "s.zarr", chunks={"time": 4})
    b = stgeo.data.StoreBuilder(tmp_path / "b.zarr", storms.chunk({"time": 8}))
    for start in (0, 8):
        b.write_region(storms.isel(time=slice(start, start + 8)), start=start)
    q = b.commit()
    for path in (p, q):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = xr.open_zarr(path)
        assert ds.attrs["stgeo_complete"] is True
        xr.testing.assert_equal(ds.rain_rate.load(), storms.rain_rate)
    # a staging store is never consolidated: only finished stores announce their contents
    b2 = stgeo.data.StoreBuilder(tmp_path / "c.zarr", storms.chunk({"time": 8}))
    b2.write_region(storms.isel(time=slice(0, 8)), start=0)
    with pytest.raises(ValueError, match="[Cc]onsolidated metadata"):
        xr.open_zarr(tmp_path / ".c.zarr.partial", consolidated=True)


def test_overwrite_false_refuses(storms, tmp_path):
    p = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        stgeo.to_zarr(storms, p, overwrite=False)


def test_unknown_name_or_missing_path(tmp_path):
    with pytest.raises(PathNotFoundError, match="no store at"):  # a FileNotFoundError too
        stgeo.open_dataset(tmp_path / "missing.zarr")
    with pytest.raises(FileNotFoundError, match="no store at"):
        stgeo.open_dataset(str(tmp_path / "missing.zarr"))
    with pytest.raises(UnknownNameError, match="Did you mean 'synthetic-storms'"):
        stgeo.open_dataset("synthetic-storm")


_WRITER = textwrap.dedent(
    """
    import sys, time
    import dask.array as da
    import numpy as np
    import xarray as xr
    import stgeo

    fill = float(sys.argv[2])
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05

    def slow(block):
        time.sleep(pause)
        return np.full(block.shape, fill, dtype="f4")

    data = da.zeros((400, 8, 8), chunks=(1, 8, 8), dtype="f4").map_blocks(slow, dtype="f4")
    ds = xr.Dataset({"v": (("time", "y", "x"), data)})
    with __import__("dask").config.set(scheduler="synchronous"):
        stgeo.to_zarr(ds, sys.argv[1], overwrite=True)
    print("done")
    """
)


def _run_and_kill(script: Path, dest: Path, fill: float) -> None:
    proc = subprocess.Popen([sys.executable, str(script), str(dest), str(fill)])
    staging = dest.with_name(f".{dest.name}.partial")
    deadline = time.time() + 60
    # wait until some data chunks are on disk, then kill the writer without warning
    while time.time() < deadline:
        chunks = list((staging / "v" / "c").glob("*")) if staging.exists() else []
        if len(chunks) >= 5:
            break
        time.sleep(0.05)
    else:  # pragma: no cover
        proc.kill()
        pytest.fail("the writer never started writing chunks")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staging.exists()


def test_interrupted_write_never_looks_complete_and_rerun_finishes(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    dest = tmp_path / "out.zarr"
    _run_and_kill(script, dest, 1.0)
    assert not dest.exists()
    with pytest.raises(IncompleteStoreError, match="interrupted write"):
        stgeo.open_dataset(dest)
    # re-running the same write finishes cleanly
    out = subprocess.run(
        [sys.executable, str(script), str(dest), "1.0", "0"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    ds = stgeo.open_dataset(dest)
    assert ds.sizes["time"] == 400
    assert float(ds.v.min()) == float(ds.v.max()) == 1.0
    assert not dest.with_name(f".{dest.name}.partial").exists()


def test_interrupted_overwrite_keeps_previous_store(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    dest = tmp_path / "out.zarr"
    xr.Dataset({"v": (("time", "y", "x"), np.full((400, 8, 8), 7.0, "f4"))}).pipe(
        stgeo.to_zarr, dest
    )
    _run_and_kill(script, dest, 2.0)
    ds = stgeo.open_dataset(dest)  # the old complete store is untouched
    assert float(ds.v.min()) == float(ds.v.max()) == 7.0


def test_store_with_false_completion_flag_is_rejected(storms, tmp_path):
    p = tmp_path / "raw.zarr"
    storms.assign_attrs(stgeo_complete=False).to_zarr(p, consolidated=False)
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        stgeo.open_dataset(p)


def test_store_builder_resumes_after_crash(storms, tmp_path):
    dest = tmp_path / "b.zarr"
    tpl = storms.chunk({"time": 4})
    b = StoreBuilder(dest, tpl, chunks={"time": 4})
    for start in (0, 4):
        b.write_region(storms.isel(time=slice(start, start + 4)), start=start)
    del b  # "crash": never committed
    with pytest.raises(IncompleteStoreError):
        stgeo.open_dataset(dest)
    b2 = StoreBuilder(dest, tpl, chunks={"time": 4})
    assert b2.is_done(0) and b2.is_done(4) and not b2.is_done(8)
    for start in (8, 12):
        b2.write_region(storms.isel(time=slice(start, start + 4)), start=start)
    b2.commit()
    xr.testing.assert_identical(stgeo.open_dataset(dest).load(), storms)


def test_store_builder_restarts_for_a_different_template(storms, tmp_path):
    dest = tmp_path / "b.zarr"
    b = StoreBuilder(dest, storms.chunk({"time": 4}))
    b.write_region(storms.isel(time=slice(0, 4)), start=0)
    b2 = StoreBuilder(dest, storms.isel(time=slice(0, 8)).chunk({"time": 4}))
    assert not b2.is_done(0)
    assert os.path.exists(b2.staging)


def test_bad_chunks_and_unwritable_folders_are_clear_errors(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=6, shape=(8, 8), seed=0)
    with pytest.raises(stgeo.errors.DataValidationError, match=r"dims \['tim'\]"):
        stgeo.to_zarr(ds, tmp_path / "a.zarr", chunks={"tim": 8})
    with pytest.raises(stgeo.errors.DataValidationError, match="integers >= 1"):
        stgeo.to_zarr(ds, tmp_path / "b.zarr", chunks={"time": 0})
    with pytest.raises(stgeo.errors.DataValidationError, match="integers >= 1"):
        StoreBuilder(tmp_path / "c.zarr", ds, chunks={"time": -2})
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    with pytest.raises(stgeo.errors.DataValidationError, match="cannot be created"):
        stgeo.to_zarr(ds, blocker / "sub" / "d.zarr")
    assert blocker.read_text() == "mine"
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


def test_a_second_process_waits_for_the_writer_of_the_same_store(storms, tmp_path):
    """Two processes building one store: the second waits for the first to publish instead
    of clearing its staging folder under it, then sees the published store (here: refuses
    to replace it without overwrite=True) and replaces it when asked."""
    dest = tmp_path / "shared.zarr"
    held = tmp_path / "held"
    script = (
        "import sys, time, pathlib, stgeo\n"
        "from stgeo.data.safety import writer_lock\n"
        "dest = pathlib.Path(sys.argv[1])\n"
        "with writer_lock(dest):\n"
        "    pathlib.Path(sys.argv[2]).touch()\n"
        "    time.sleep(1.5)\n"
        "    stgeo.to_zarr(stgeo.testing.storm_cells(n_times=3, shape=(8, 8)), dest)\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script, str(dest), str(held)])
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert other.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        # dest did not exist when this writer started: it waited, and then found the
        # other process's published store (without the lock it would have written its own)
        with pytest.warns(UserWarning, match="another process is writing"):
            with pytest.raises(OutputExistsError, match="overwrite"):
                stgeo.to_zarr(storms, dest)
    finally:
        assert other.wait(timeout=60) == 0
    assert stgeo.open_dataset(dest).sizes["time"] == 3  # the other process's store, whole
    stgeo.to_zarr(storms, dest, overwrite=True)
    assert stgeo.open_dataset(dest).sizes["time"] == storms.sizes["time"]
    assert not (tmp_path / ".shared.zarr.partial").exists()


def test_a_builder_that_fails_to_start_leaves_the_store_free(storms, tmp_path):
    """A StoreBuilder whose construction fails (here: a foreign folder in the way of its
    staging folder) releases the store's writer lock at once, for every other process."""
    dest = tmp_path / "b.zarr"
    foreign = tmp_path / ".b.zarr.partial"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    # the error is kept (as a notebook keeps its last traceback, and with it the builder)
    with pytest.raises(OutputExistsError, match="in the way") as err:
        StoreBuilder(dest, storms.chunk({"time": 4}))
    assert (foreign / "notes.txt").read_text() == "mine"
    script = (
        "import sys, warnings\n"
        "from stgeo.data.safety import writer_lock\n"
        "warnings.simplefilter('error')\n"  # waiting would warn
        "with writer_lock(sys.argv[1]):\n"
        "    print('free')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(dest)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "free", out.stderr
    assert err.traceback  # still alive during the check above


@pytest.mark.parametrize("owner", ["dataset", "rain_rate", "time"])
def test_attributes_a_store_cannot_hold_are_named_before_any_write(storms, tmp_path, owner):
    ds = storms.copy()
    attrs = ds.attrs if owner == "dataset" else ds[owner].attrs
    attrs["when"] = pd.Timestamp("2021-01-01")
    with pytest.raises(DataValidationError, match=r"attrs\['when'\] of .*Timestamp") as err:
        stgeo.to_zarr(ds, tmp_path / "u.zarr")
    assert "str(" in str(err.value)
    if owner != "dataset":
        assert repr(owner) in str(err.value)
    with pytest.raises(DataValidationError, match="when"):
        StoreBuilder(tmp_path / "b.zarr", ds.chunk({"time": 4}))
    assert list(tmp_path.iterdir()) == []  # nothing written, no staging folder


def test_a_failed_write_leaves_a_staging_folder_stgeo_owns(storms, tmp_path):
    bad = storms.assign(note=("time", np.array([{"a": 1}] * storms.sizes["time"], dtype=object)))
    dest = tmp_path / "u.zarr"
    with pytest.raises(ValueError, match="serialize"):
        stgeo.to_zarr(bad, dest)  # fails inside xarray, after the staging folder was made
    staging = tmp_path / ".u.zarr.partial"
    assert staging.is_dir()
    for path in (dest, staging):  # never reads as a complete store
        with pytest.raises(IncompleteStoreError):
            stgeo.open_dataset(path)
    report = stgeo.verify(staging)
    assert not report.ok and "INCOMPLETE" in str(report)
    assert stgeo.to_zarr(storms, dest) == str(dest)  # the leftover is stgeo's: cleared
    assert [p.name for p in tmp_path.iterdir()] == ["u.zarr"]


def test_an_empty_group_left_by_an_older_failed_write_is_cleared(storms, tmp_path):
    import zarr

    # what a write failing on its attributes left: an empty group, no attributes
    zarr.open_group(str(tmp_path / ".u.zarr.partial"), mode="w", zarr_format=3)
    stgeo.to_zarr(storms, tmp_path / "u.zarr")
    assert [p.name for p in tmp_path.iterdir()] == ["u.zarr"]

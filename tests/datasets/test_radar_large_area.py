"""The radar recipe on the two large-area training sources: OPERA (ODIM HDF5) and MRMS (GRIB2).

Each test store holds only the first 2 frames (``max_frames=2``): the conversion of a frame
takes 2-5 s, and the full events are checked by hand (see the datasets guide for timings).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import need_shared

import stgeo
from stgeo.datasets import run_recipe
from stgeo.datasets.protocol import existing_store_matches, fingerprint
from stgeo.datasets.radar import LARGE_AREA_EVENTS, MP_A, MP_B, RADAR_EVENTS
from stgeo.datasets.registry import get_recipe
from stgeo.errors import DataValidationError, IncompleteStoreError

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _src(event: str) -> Path:
    return need_shared(LARGE_AREA_EVENTS[event])


def _files(event: str) -> list[Path]:
    return sorted(f for f in _src(event).iterdir() if f.is_file())


@pytest.fixture(scope="module")
def opera(tmp_path_factory):
    src = _src("opera-20241126")
    dest = tmp_path_factory.mktemp("opera") / "opera.zarr"
    return run_recipe("radar", src, dest, max_frames=2)


@pytest.fixture(scope="module")
def mrms(tmp_path_factory):
    pytest.importorskip("pygrib")
    src = _src("mrms-20190610")
    dest = tmp_path_factory.mktemp("mrms") / "mrms.zarr"
    return run_recipe("radar", src, dest, max_frames=2)


def test_events_are_named():
    assert RADAR_EVENTS["opera-20241126"] == "radar/radar/OPERA/20241126/CIRRUS"
    assert RADAR_EVENTS["mrms-20190610"] == "radar/mrms/2019/06/10"
    from stgeo.datasets import recipe_info

    assert {"opera-20241126", "mrms-20190610"} <= set(recipe_info("radar")["events"])


def test_opera_store(opera):
    ds = stgeo.open_dataset(opera)
    stgeo.validate(ds)
    rr = ds.rain_rate
    assert rr.dims == ("time", "y", "x") and rr.shape == (2, 4400, 3800)
    assert rr.dtype == np.float32 and rr.attrs["units"] == "mm h-1"
    assert rr.attrs["product"] == "opera" and rr.attrs["zr_a"] == MP_A
    assert str(ds.time.values[1] - ds.time.values[0]) == "300000000000 nanoseconds"
    # chunks a patch sampler can crop: one frame x 512 x 512 (lat/lon too)
    assert rr.encoding["chunks"] == (1, 512, 512)
    assert ds.lat.encoding["chunks"] == (512, 512)
    assert np.all(np.diff(ds.y.values) > 0)
    np.testing.assert_allclose(np.diff(ds.x.values), 1000.0, atol=1e-3)  # 1 km pixels
    crs = stgeo.conventions.get_crs(ds)
    assert crs.is_projected
    assert crs.coordinate_operation.method_name == "Lambert Azimuthal Equal Area"


def test_opera_corners_match_provenance(opera):
    """Pixel centres of the corners lie within 0.03 deg of the file's corner coordinates."""
    ds = stgeo.open_dataset(opera)
    lat, lon = ds.lat.values, ds.lon.values
    # y ascending: row 0 is the south; PROVENANCE / ODIM `where` corners (pixel edges)
    corners = {
        (0, 0): (31.7462153182675, -10.4345768386404),  # LL
        (0, -1): (31.987650276733, 29.421038635578),  # LR
        (-1, 0): (67.0228327624372, -39.5357864125034),  # UL
        (-1, -1): (67.6210371071631, 57.8119647501499),  # UR
    }
    for (i, j), (la, lo) in corners.items():
        assert abs(lat[i, j] - la) < 0.03 and abs(lon[i, j] - lo) < 0.03, (i, j)


def test_opera_nodata_undetect_and_conversion(opera):
    """nodata -> NaN, undetect -> 0, echoes -> Marshall-Palmer (against the raw ODIM file)."""
    import h5py

    with h5py.File(_files("opera-20241126")[0], "r") as f:
        what = f["dataset1/data1/what"].attrs
        raw = f["dataset1/data1/data"][:][::-1]  # north-up -> y ascending
        nodata, undetect = float(what["nodata"]), float(what["undetect"])
    rr = stgeo.open_dataset(opera).rain_rate.isel(time=0).values
    nod, und = raw == nodata, raw == undetect
    assert 0.3 < nod.mean() < 0.7 and und.any()  # about half the grid is outside coverage
    assert np.isnan(rr[nod]).all()
    assert (rr[und] == 0).all()
    echo = ~nod & ~und & (raw > -30)
    expect = (10 ** (raw[echo] / 10) / MP_A) ** (1 / MP_B)
    np.testing.assert_allclose(rr[echo], expect, rtol=1e-4)
    assert np.isfinite(rr[~nod]).all() and (rr[~nod] >= 0).all()
    # strong echoes (up to ~78 dBZ in this event: hail or clutter) stay as converted
    assert 1.0 < np.nanmax(rr) <= (10**8 / MP_A) ** (1 / MP_B)


def test_mrms_store(mrms):
    ds = stgeo.open_dataset(mrms)
    stgeo.validate(ds)
    rr = ds.rain_rate
    assert rr.dims == ("time", "lat", "lon") and rr.shape == (2, 3500, 7000)
    assert rr.encoding["chunks"] == (1, 512, 512)
    assert str(ds.time.values[1] - ds.time.values[0]) == "120000000000 nanoseconds"
    # PROVENANCE: 20.005-54.995 N, 230.005-299.995 E -> -129.995..-60.005 in -180..180
    np.testing.assert_allclose(ds.lat.values[[0, -1]], [20.005, 54.995], atol=1e-9)
    np.testing.assert_allclose(ds.lon.values[[0, -1]], [-129.995, -60.005], atol=1e-9)
    np.testing.assert_allclose(np.diff(ds.lon.values), 0.01, atol=1e-6)
    assert np.all(np.diff(ds.lat.values) > 0)


def test_mrms_missing_is_nan(mrms):
    import pygrib

    with pygrib.open(str(_files("mrms-20190610")[0])) as g:
        raw = np.asarray(g.message(1).values)[::-1]  # north-up -> lat ascending
    rr = stgeo.open_dataset(mrms).rain_rate.isel(time=0).values
    miss = raw == -3
    assert miss.any() and np.isnan(rr[miss]).all()
    np.testing.assert_allclose(rr[~miss], raw[~miss], rtol=1e-6)
    assert (rr[~miss] >= 0).all() and 0.005 < (rr >= 1).mean() < 0.1


def test_frame_limit_is_part_of_the_identity(opera, tmp_path):
    """A 2-frame store is never taken for the whole event (the options are fingerprinted)."""
    rec = get_recipe("radar")
    src = str(_src("opera-20241126"))
    part = rec.inputs(src, max_frames=2)
    whole = rec.inputs(src)
    assert len(whole.files) == 13 and len(part.files) == 2
    fp_whole = fingerprint(list(whole.files), recipe="radar", **whole.options)
    fp_part = fingerprint(list(part.files), recipe="radar", **part.options)
    assert existing_store_matches(opera, "radar", fp_part)
    assert not existing_store_matches(opera, "radar", fp_whole)
    with pytest.raises(DataValidationError, match="max_frames"):
        rec.inputs(src, max_frames=-1)


def test_failed_build_does_not_look_complete(tmp_path):
    """A frame failing midway leaves no store at the destination, only the staging folder."""
    ev = tmp_path / "CIRRUS"
    ev.mkdir()
    files = _files("opera-20241126")[:3]
    for f in files[:2]:
        (ev / f.name).symlink_to(f)
    (ev / files[2].name).write_bytes(files[2].read_bytes()[:100_000])  # truncated
    dest = tmp_path / "opera.zarr"
    with pytest.raises(DataValidationError, match=re.escape(files[2].name)):
        run_recipe("radar", ev, dest)
    assert not dest.exists()
    assert (tmp_path / ".opera.zarr.partial").exists()
    with pytest.raises(IncompleteStoreError):
        stgeo.open_dataset(dest)
    # the interrupted staging store is resumed once the file is whole again
    (ev / files[2].name).unlink()
    shutil.copy(files[2], ev / files[2].name)
    ds = stgeo.open_dataset(run_recipe("radar", ev, dest))
    assert ds.sizes["time"] == 3 and np.isfinite(ds.rain_rate.isel(time=2).values).any()

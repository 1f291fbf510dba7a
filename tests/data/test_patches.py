"""Patch sampling over many events: exact crops, seeding, chunk reads, importance, errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import stgeo
from stgeo.data import (
    EventLoader,
    EventWindows,
    Importance,
    Normalizer,
    Windows,
    crops_per_window,
    read_frames,
    stream_statistics,
    to_frames,
    wet_fraction_map,
)
from stgeo.errors import DataValidationError


def _coded(event: int, n: int, shape: tuple[int, int]) -> xr.Dataset:
    """Frames whose value encodes (event, time, y, x): any mix-up shows."""
    t = pd.date_range("2021-01-01", periods=n, freq="5min")
    h, w = shape
    v = (
        event * 1e6
        + np.arange(n)[:, None, None] * 1e3
        + np.arange(h)[None, :, None] * 10
        + np.arange(w)[None, None, :] * 0.01
    )
    return xr.Dataset(
        {"v": (("time", "y", "x"), v.astype("float64").astype("float32"), {"units": "1"})},
        coords={"time": t, "y": np.arange(h), "x": np.arange(w)},
    )


def _events(tmp_path, chunks=None):
    grids = [(24, 32), (20, 20), (40, 36)]
    lengths = [12, 9, 15]
    frames = []
    for i, (g, n) in enumerate(zip(grids, lengths, strict=True)):
        p = stgeo.to_zarr(_coded(i, n, g), tmp_path / f"e{i}.zarr", chunks=chunks)
        frames.append(to_frames(stgeo.open_dataset(p)))
    return frames


def test_crops_are_exact_windows_that_never_cross_events(tmp_path):
    frames = _events(tmp_path, chunks={"time": 1, "y": 8, "x": 8})
    ew = EventWindows([Windows(f, 3, 2) for f in frames], ["a", "b", "c"])
    assert ew.counts() == {"a": 8, "b": 5, "c": 11}
    loader = EventLoader(ew, batch_size=5, patch_size=(8, 12), seed=3, prefetch=2)
    loader.set_epoch(1)
    values = [f.values for f in frames]
    seen = []
    for (x, y), idx in zip(loader, loader.batch_indices(), strict=True):
        x, y = x.numpy(), y.numpy()
        origins = loader.crop_origins(idx)
        ev, k = ew.locate(idx)
        for j in range(len(idx)):
            t0 = ew.windows[ev[j]].t0_index[k[j]]
            y0, x0 = origins[j]
            ref = values[ev[j]][t0 - 2 : t0 + 3, :, y0 : y0 + 8, x0 : x0 + 12]
            np.testing.assert_array_equal(np.concatenate([x[j], y[j]]), ref)
            assert np.all(ref // 1e6 == ev[j])  # one event per window
        seen.extend(ew.index[idx].tolist())
    assert sorted(seen) == list(range(len(ew)))  # every window once per epoch


def test_partial_windows_crop_exactly_and_read_nan_past_the_range(tmp_path):
    frames = _events(tmp_path, chunks={"time": 1, "y": 8, "x": 8})
    ends = [f.time.values[-3] for f in frames]  # training ranges end 2 frames early
    ws = [
        Windows(f, 3, 4, min_targets=1, time_range=(None, e))
        for f, e in zip(frames, ends, strict=True)
    ]
    ew = EventWindows(ws, ["a", "b", "c"])
    # with full targets: 12, 9, 15 frames less 2 -> 4, 1, 7 windows; partial: 7, 4, 10
    assert ew.counts() == {"a": 7, "b": 4, "c": 10}
    imp = Importance(threshold=0.0, cell=4)  # every value is "wet": maps exist for all frames
    spans = [w.frame_range() for w in ws]
    maps = [
        stream_statistics(f, a, b + 1, None, imp) for f, (a, b) in zip(frames, spans, strict=True)
    ]
    ld = EventLoader(ew, batch_size=6, patch_size=(8, 12), seed=1, importance=imp, wet_maps=maps)
    values = [f.values for f in frames]
    for (x, y), idx in zip(ld, ld.batch_indices(), strict=True):
        x, y = x.numpy(), y.numpy()
        ev, k = ew.locate(idx)
        for j, ((y0, x0), e, i) in enumerate(zip(ld.crop_origins(idx), ev, k, strict=True)):
            w = ew.windows[e]
            t0, n_last = w.t0_index[i], w.frames.sizes["time"] - 3  # last training frame
            ref = values[e][t0 - 2 : t0 + 5, :, y0 : y0 + 8, x0 : x0 + 12]
            np.testing.assert_array_equal(x[j], ref[:3])
            n_ok = min(4, n_last - t0)  # targets up to the end of the range
            np.testing.assert_array_equal(y[j, :n_ok], ref[3 : 3 + n_ok])
            assert np.isnan(y[j, n_ok:]).all() and n_ok >= 1


def test_repeated_windows_get_their_own_crops(tmp_path):
    frames = _events(tmp_path)
    reps = crops_per_window([f.shape[2:] for f in frames], (8, 8), "area")
    assert reps == [12, 7, 23]  # ceil(24*32/64), ceil(20*20/64), ceil(40*36/64)
    ew = EventWindows([Windows(f, 3, 2) for f in frames], ["a", "b", "c"], repeats=reps)
    assert ew.counts() == {"a": 8 * 12, "b": 5 * 7, "c": 11 * 23} and len(ew) == 96 + 35 + 253
    ev, k = ew.locate(np.arange(len(ew)))
    assert np.array_equal(np.bincount(ev), [96, 35, 253])
    assert np.array_equal(k[:16], np.tile(np.arange(8), 2))  # repeats of event a's windows
    ld = EventLoader(ew, batch_size=8, patch_size=8, seed=0)
    ld.set_epoch(2)
    origins = ld.crop_origins(np.arange(len(ew)))
    first = origins[ev == 2][k[ev == 2] == 0]  # the 23 crops of event c's first window
    assert len(first) == 23 and len({tuple(o) for o in first}) > 15  # at their own positions
    x, _ = ld.read_batch(np.array([0, 8]))  # window 0 of event a, twice
    assert np.array_equal(x[:, :, 0, 0, 0] // 1e3, [[0, 1, 2], [0, 1, 2]])  # the same times
    assert x[0, 0, 0, 0, 0] != x[1, 0, 0, 0, 0]  # other crops
    sub = ew.subset(np.arange(0, len(ew), 2))
    assert sub.repeats == reps and len(sub) == len(ew) // 2
    assert crops_per_window([(64, 64)], (16, 16), 3) == [3]
    for bad in (0, "areas", 1.5, True):
        with pytest.raises(DataValidationError, match="crops_per_window must be"):
            crops_per_window([(64, 64)], (16, 16), bad)
    with pytest.raises(DataValidationError, match="repeats needs one integer"):
        EventWindows([Windows(frames[0], 3, 2)], ["a"], repeats=[0])


def test_crops_are_seeded_per_seed_epoch_and_window(tmp_path):
    frames = _events(tmp_path)
    ew = EventWindows([Windows(f, 2, 1) for f in frames], ["a", "b", "c"])

    def origins(seed, epoch, shuffle=True):
        ld = EventLoader(ew, 4, patch_size=8, seed=seed, shuffle=shuffle)
        ld.set_epoch(epoch)
        return ld.crop_origins(np.arange(len(ew))), np.concatenate(ld.batch_indices())

    a, order_a = origins(0, 0)
    b, order_b = origins(0, 0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(order_a, order_b)
    assert not np.array_equal(a, origins(0, 1)[0]) and not np.array_equal(a, origins(1, 0)[0])
    assert not np.array_equal(order_a, origins(0, 1)[1])
    # validation crops and order: the same every epoch
    v0, o0 = origins(0, 0, shuffle=False)
    v5, _ = origins(0, 5, shuffle=False)
    np.testing.assert_array_equal(v0, v5)
    np.testing.assert_array_equal(o0, np.arange(len(ew)))
    # crops stay inside every event's grid and cover it
    ev, _ = ew.locate(np.arange(len(ew)))
    grids = np.array([f.shape[2:] for f in frames])[ev]
    assert np.all(a >= 0) and np.all(a + 8 <= grids)


READS: list[str] = []


def _count_chunk_reads(monkeypatch):
    """Record the chunk keys every local Zarr store reads."""
    original = zarr.storage.LocalStore.get

    async def get(self, key, *args, **kwargs):
        if re.search(r"(^|/)c/\d", key):  # chunk keys of Zarr v3 (metadata is zarr.json)
            READS.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", get)


def test_a_crop_reads_only_the_chunks_it_intersects(tmp_path, monkeypatch):
    ds = _coded(0, 6, (64, 64))
    path = stgeo.to_zarr(ds, tmp_path / "big.zarr", chunks={"time": 1, "y": 16, "x": 16})
    _count_chunk_reads(monkeypatch)
    frames = to_frames(stgeo.open_dataset(path))
    READS.clear()
    region = (slice(20, 30), slice(14, 34))  # chunk rows 1; chunk columns 0, 1, 2
    out = read_frames(frames, np.array([1, 2, 4]), region=region)
    assert len(READS) == 3 * 3, READS  # 3 frames x 3 chunks, not 3 x 16
    np.testing.assert_array_equal(out, frames.values[[1, 2, 4]][:, :, 20:30, 14:34])
    # the dask path (modified data) reads only the intersecting chunks too
    lazy = to_frames(stgeo.open_dataset(path)) + 0
    ref = frames.values[[3]][:, :, 20:30, 14:34]
    READS.clear()
    np.testing.assert_array_equal(read_frames(lazy, np.array([3]), region=region), ref)
    assert len(READS) == 3, READS
    with pytest.raises(DataValidationError, match="region"):
        read_frames(frames, np.array([0]), region=(slice(60, 70), slice(0, 4)))


def test_grid_and_patch_size_errors(tmp_path):
    frames = _events(tmp_path)
    ew = EventWindows([Windows(f, 2, 1) for f in frames], ["a", "b", "c"])
    with pytest.raises(DataValidationError, match="different grids.*patch_size"):
        EventLoader(ew, 4)
    with pytest.raises(
        DataValidationError, match=r"larger than the grid of event\(s\) b \(20x20\)"
    ):
        EventLoader(ew, 4, patch_size=(22, 16))
    with pytest.raises(DataValidationError, match="patch_size"):
        EventLoader(ew, 4, patch_size=(0, 4))


def _rainy(n=24, shape=(64, 64), seed=0):
    """Rain only in the top-left quarter; the rest is dry."""
    rng = np.random.default_rng(seed)
    v = np.zeros((n, *shape), np.float32)
    h, w = shape[0] // 2, shape[1] // 2
    v[:, :h, :w] = rng.gamma(2.0, 1.0, (n, h, w))
    t = pd.date_range("2021-01-01", periods=n, freq="5min")
    return xr.Dataset({"r": (("time", "y", "x"), v, {"units": "mm h-1"})}, coords={"time": t})


def test_importance_sampling_raises_the_wet_fraction_and_keeps_dry_crops():
    fr = to_frames(_rainy())
    w = Windows(fr, 2, 1)
    ew = EventWindows([w], ["rain"])
    imp = Importance(threshold=0.5, floor=0.2, saturation=0.5, cell=8)
    first, maps = stream_statistics(fr, 0, fr.sizes["time"], Normalizer(), imp)
    values = fr.values

    def crops(importance, epochs=12):
        wet, dry = [], []
        for e in range(epochs):
            ld = EventLoader(ew, 8, patch_size=16, importance=importance, wet_maps=[(first, maps)])
            ld.set_epoch(e)
            for (y0, x0), t0 in zip(ld.crop_origins(np.arange(len(ew))), w.t0_index, strict=True):
                c = values[t0 + 1, 0, y0 : y0 + 16, x0 : x0 + 16]
                wet.append(float((c >= 0.5).mean()))
                dry.append(bool((c < 0.5).all()))
        return np.mean(wet), np.mean(dry)

    wet_u, dry_u = crops(None)
    wet_i, dry_i = crops(imp)
    assert wet_i > 1.5 * wet_u  # signal favoured
    assert dry_i >= imp.floor * dry_u * 0.8 and dry_i > 0.05  # dry crops still appear
    # the acceptance rule as documented
    assert imp.acceptance(0.0) == pytest.approx(0.2)
    assert imp.acceptance(0.25) == pytest.approx(0.2 + 0.8 * 0.5)
    assert imp.acceptance(0.9) == pytest.approx(1.0)


def test_wet_fraction_map_and_importance_settings():
    x = np.zeros((2, 1, 10, 10), np.float32)
    x[0, 0, :5, :5] = 1.0
    x[1, 0, 0, 0] = np.nan  # no-data counts dry
    m = wet_fraction_map(x, 0.5, 4)
    assert m.shape == (2, 3, 3)
    assert m[0, 0, 0] == 1.0 and m[0, 0, 1] == pytest.approx(4 / 16) and m[1].max() == 0
    assert m[0, 2, 2] == 0.0  # partial edge cell, its own pixel count
    assert Importance.coerce(True, [0.1]).threshold == 0.1
    with pytest.raises(DataValidationError, match="catalog thresholds"):
        Importance.coerce(True, [])
    with pytest.raises(DataValidationError, match="floor"):
        Importance(threshold=0.1, floor=0.0)
    with pytest.raises(DataValidationError, match="threshold"):
        Importance.coerce({"floor": 0.1})

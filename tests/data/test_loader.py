"""Tests of BatchLoader: exactness, once-per-epoch, determinism, bounded reads, threads."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import stgeo
from stgeo.data import BatchLoader, Normalizer, Windows, to_frames
from stgeo.data import loader as loader_mod
from stgeo.errors import DataValidationError, StgeoTypeError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small crowd-flow store on disk, chunked along time, with a gap."""
    ds = stgeo.testing.crowd_flows(n_days=3, shape=(8, 8), seed=4)
    ds = ds.isel(time=np.r_[0:70, 75:144])  # a gap: no window may cross it
    p = stgeo.to_zarr(ds, tmp_path_factory.mktemp("l") / "f.zarr", chunks={"time": 16})
    return ds, to_frames(stgeo.open_dataset(p))


def _collect(loader):
    xs, ys = [], []
    for x, y in loader:
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
        xs.append(x.numpy().copy())
        ys.append(y.numpy().copy())
    return xs, ys


def test_batches_are_exact_windows_each_once(store):
    _, fr = store
    w = Windows(fr, in_steps=4, out_steps=3)
    loader = BatchLoader(w, 16, seed=5, block_size=16, shuffle_blocks=2)
    loader.set_epoch(3)
    plan = loader.batch_indices()
    xs, ys = _collect(loader)
    assert len(xs) == len(plan) == len(loader) == -(-len(w) // 16)
    flat = np.concatenate(plan)
    assert sorted(flat.tolist()) == list(range(len(w)))  # every window exactly once
    assert not np.array_equal(flat, np.arange(len(w)))  # and shuffled
    for b, (x, y) in zip(plan, zip(xs, ys, strict=False), strict=False):
        wx, wy = w[b]
        np.testing.assert_array_equal(x, wx)
        np.testing.assert_array_equal(y, wy)
    assert xs[0].shape == (16, 4, 2, 8, 8) and ys[0].shape == (16, 3, 2, 8, 8)
    assert xs[-1].shape[0] == len(w) - 16 * (len(xs) - 1)


def test_shuffle_is_a_function_of_seed_and_epoch(store):
    _, fr = store
    w = Windows(fr, in_steps=2, out_steps=1)

    def order(seed, epoch):
        lo = BatchLoader(w, 8, seed=seed, block_size=16)
        lo.set_epoch(epoch)
        return np.concatenate(lo.batch_indices())

    np.testing.assert_array_equal(order(1, 2), order(1, 2))
    assert not np.array_equal(order(1, 2), order(1, 3))
    assert not np.array_equal(order(1, 2), order(2, 2))
    # the data follow the plan: two loaders with the same (seed, epoch) give equal batches
    a, b = BatchLoader(w, 8, seed=9), BatchLoader(w, 8, seed=9, prefetch=0)
    a.set_epoch(4)
    b.set_epoch(4)
    for (xa, ya), (xb, yb) in zip(a, b, strict=False):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_no_shuffle_keeps_index_order_and_drop_last(store):
    _, fr = store
    w = Windows(fr, in_steps=3, out_steps=2, stride=2)
    lo = BatchLoader(w, 10, shuffle=False, drop_last=True, block_size=16)
    plan = lo.batch_indices()
    assert len(plan) == len(lo) == len(w) // 10
    np.testing.assert_array_equal(np.concatenate(plan), np.arange(10 * len(plan)))
    xs, _ = _collect(lo)
    assert len(xs) == len(plan) and all(x.shape[0] == 10 for x in xs)
    np.testing.assert_array_equal(xs[-1], w.inputs(plan[-1]))


def test_reads_are_bounded_by_a_few_blocks(store, monkeypatch):
    _, fr = store
    w = Windows(fr, in_steps=4, out_steps=2)
    sizes = []
    real = loader_mod.read_frames

    def spy(frames, positions):
        sizes.append(len(positions))
        return real(frames, positions)

    monkeypatch.setattr(loader_mod, "read_frames", spy)
    lo = BatchLoader(w, 4, seed=0, block_size=16, shuffle_blocks=2)
    n = sum(x.shape[0] for x, _ in lo)
    assert n == len(w)
    # each read: at most 2 blocks of 16 time steps plus the window margins (span - 1 each)
    assert max(sizes) <= 2 * (16 + 5)
    assert len(sizes) == len(lo._groups())
    # the default block size is a whole number of the store's time chunks
    assert BatchLoader(w, 4).block_size % 16 == 0


def test_normalizer_applied_and_inverse(store):
    _ds, fr = store
    train = fr.isel(time=slice(0, 60))
    norm = Normalizer("standard").fit(train)
    w = Windows(fr, in_steps=2, out_steps=2)
    lo = BatchLoader(w, 32, normalizer=norm, shuffle=False)
    x, y = next(iter(lo))
    np.testing.assert_allclose(
        x.numpy(), norm.transform(w.inputs(np.arange(32))), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        norm.inverse(y).numpy(), w.targets(np.arange(32)), rtol=1e-4, atol=1e-3
    )
    bad = Normalizer().fit(to_frames(stgeo.testing.storm_cells(n_times=4, shape=(8, 8))))
    with pytest.raises(DataValidationError, match="channel"):
        next(iter(BatchLoader(w, 4, normalizer=bad, prefetch=0)))


def test_inference_windows_missing_targets_are_nan():
    t = pd.date_range("2020-01-01", periods=10, freq="1h")
    fr = xr.DataArray(
        np.arange(10, dtype="f4")[:, None, None, None] * np.ones((1, 1, 2, 2)),
        dims=("time", "channel", "y", "x"),
        coords={"time": t, "channel": ["v"]},
    )
    w = Windows(fr, in_steps=2, out_steps=3, require_targets=False)
    assert len(w) == 9
    ((x, y),) = list(BatchLoader(w, 16, shuffle=False))
    assert x.shape == (9, 2, 1, 2, 2)
    assert y[-1].isnan().all() and y[6, 2].isnan().all() and y[6, 1, 0, 0, 0] == 9


def test_early_break_stops_threads_and_errors_propagate(store, monkeypatch):
    _, fr = store
    w = Windows(fr, in_steps=2, out_steps=1)
    before = {t.name for t in threading.enumerate()}
    for _x, _y in BatchLoader(w, 4, block_size=16):
        break
    left = [t for t in threading.enumerate() if t.name.startswith("stgeo-")]
    for t in left:
        t.join(timeout=2)
    assert not any(t.is_alive() for t in left), before

    def boom(frames, positions):
        raise OSError("disk on fire")

    monkeypatch.setattr(loader_mod, "read_frames", boom)
    with pytest.raises(OSError, match="disk on fire"):
        list(BatchLoader(w, 4))


def test_bad_arguments(store):
    _, fr = store
    w = Windows(fr, in_steps=2, out_steps=1)
    with pytest.raises(StgeoTypeError):
        BatchLoader(fr, 4)
    with pytest.raises(DataValidationError, match="batch_size"):
        BatchLoader(w, 0)
    with pytest.raises(DataValidationError, match="drop_last"):
        BatchLoader(w, len(w) + 1, drop_last=True)
    with pytest.raises(DataValidationError, match="not fitted"):
        BatchLoader(w, 4, normalizer=Normalizer())
    with pytest.raises(DataValidationError, match="epoch"):
        BatchLoader(w, 4).set_epoch(-1)


@pytest.mark.parametrize("method", ["standard", "log1p", "minmax"])
def test_loader_applies_the_normaliser_exactly(method):

    fr = to_frames(stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=4))
    norm = Normalizer(method).fit(fr)
    w = Windows(fr, 3, 2)
    x, y = next(iter(BatchLoader(w, 4, shuffle=False, normalizer=norm)))
    ex, ey = w[np.arange(4)]
    np.testing.assert_allclose(x.numpy(), norm.transform(ex), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), norm.transform(ey), rtol=1e-5, atol=1e-6)

"""Streaming keeps memory bounded: NumPy/Zarr block streaming and a Dask LocalCluster."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo.metrics as sm
from stgeo.testing import RssSampler

MiB = 2**20


def _zarr_pair(path, n_init, n_lead=6, shape=(96, 96)):
    rng = np.random.default_rng(0)
    t = pd.date_range("2022-01-01", periods=n_init + n_lead, freq="5min")
    obs = xr.Dataset(
        {"vil": (("time", "y", "x"), rng.random((n_init + n_lead, *shape), np.float32) * 255)},
        coords={"time": t},
    )
    lead = pd.to_timedelta(np.arange(1, n_lead + 1) * 5, unit="min")
    fc = xr.Dataset(
        {
            "vil": (
                ("init_time", "lead_time", "y", "x"),
                rng.random((n_init, n_lead, *shape), np.float32) * 255,
            )
        },
        coords={"init_time": t[:n_init], "lead_time": lead},
    )
    path.mkdir()
    fc.to_zarr(
        path / "fc.zarr",
        consolidated=False,
        encoding={"vil": {"chunks": (3, n_lead, *shape), "compressors": None}},
    )
    obs.to_zarr(
        path / "obs.zarr",
        consolidated=False,
        encoding={"vil": {"chunks": (8, *shape), "compressors": None}},
    )
    fz = xr.open_zarr(path / "fc.zarr", chunks=None, consolidated=False).vil
    oz = xr.open_zarr(path / "obs.zarr", chunks=None, consolidated=False).vil
    assert fz.chunks is None  # lazily indexed files, not Dask
    return fz, oz


KW = {
    "metrics": ["csi", "mse", "fss"],
    "thresholds": [16, 133],
    "windows": [5],
    "batch_init_times": 3,
}


def _peak(fz, oz):
    tracemalloc.start()
    try:
        res = sm.score(fz, oz, **KW)
        return res, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_block_streaming_from_zarr_stays_bounded(tmp_path):
    small = _zarr_pair(tmp_path / "small", n_init=6)
    big = _zarr_pair(tmp_path / "big", n_init=36)
    _, peak_small = _peak(*small)
    streamed, peak_big = _peak(*big)
    nbytes = big[0].nbytes
    # peak memory depends on the block size, not on the length of the forecast
    assert peak_big < 1.2 * peak_small + MiB, (peak_small / MiB, peak_big / MiB)
    block = nbytes // 12  # 3 of 36 init times
    assert peak_big < 8 * block, f"peak {peak_big / MiB:.1f} MiB, block {block / MiB:.2f} MiB"
    assert peak_big < 0.7 * nbytes
    eager = sm.score(big[0].load(), big[1].load(), **{**KW, "batch_init_times": 36})
    xr.testing.assert_allclose(streamed, eager, rtol=1e-12)


@pytest.mark.slow
def test_dask_localcluster_worker_memory_stays_below_forecast_size():
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")

    n_init, n_lead, h, w = 64, 8, 256, 256  # 128 MiB float32 forecast
    t = pd.date_range("2022-01-01", periods=n_init + n_lead, freq="5min")
    fc = xr.DataArray(
        da.random.default_rng(1).random(
            (n_init, n_lead, h, w), chunks=(1, n_lead, h, w), dtype=np.float32
        )
        * 255,
        dims=("init_time", "lead_time", "y", "x"),
        coords={
            "init_time": t[:n_init],
            "lead_time": pd.to_timedelta(np.arange(1, n_lead + 1) * 5, unit="min"),
        },
    )
    obs = xr.DataArray(
        da.random.default_rng(2).random((n_init + n_lead, h, w), chunks=(8, h, w), dtype=np.float32)
        * 255,
        dims=("time", "y", "x"),
        coords={"time": t},
    )

    import os

    pytest.importorskip("psutil")

    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            memory_limit="1GiB",
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(lambda: __import__("stgeo.metrics"))
        sampler = RssSampler(list(client.run(os.getpid).values()), every=0.02)
        sampler.sample()
        before = sampler.peak_each / MiB
        sampler.start()
        try:
            res = sm.score(fc, obs, metrics=["csi", "mse"], thresholds=[16, 74, 133])
        finally:
            sampler.stop()
    after = sampler.peak_each / MiB
    assert res.csi.dims == ("threshold", "lead_time")
    # random fields: CSI at 16 is about P(both >= 16) / P(either >= 16)
    p = 1 - 16 / 255
    assert float(res.csi.sel(threshold=16).mean()) == pytest.approx(
        p * p / (1 - (1 - p) ** 2), abs=2e-3
    )
    growth = after - before
    # the 128 MiB forecast (+16 MiB observations) is never held at once by the worker
    assert growth < 80, f"worker peak RSS grew by {growth:.0f} MiB for a 128 MiB forecast"

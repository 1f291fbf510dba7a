"""Scale benchmark: Dask batch forecasting out of core (evaluation.md, "dask").

A radar-like Zarr store ``rain_rate(time, y=256, x=256)`` float32 larger than a Dask
worker's memory limit (4 GiB, or 1.25 GiB with ``--quick``; workers capped at 1 GiB) is
written in the run, chunk by chunk. A small learned model (a seeded ConvLSTM, 4 frames in,
1 out) forecasts every valid origin with ``stgeo.forecast(..., lazy=True, output=...)``. The
workers read their own input frames from the store and write the forecast store by region.
The run is timed on a ``distributed.LocalCluster`` with 1 worker and with 2 workers (one
thread each) and compared with the single-process forecast (``stgeo.forecast(...,
output=...)``, torch on every core) measured in the same run. Every output is checked
value for value against that single-process result. Peak memory is the largest RSS any
worker process reached while forecasting, sampled every 50 ms.

Run from the repository root::

    python benchmarks/dask_forecast.py [--quick] [--store-gib 4] [--memory-limit 1GiB]

The last line printed is one JSON object: ``seconds_1w``, ``seconds_2w``, ``speedup``,
``peak_worker_mem_mib``, ``store_gib``, ``identical`` (plus ``seconds_single_process``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

MiB = 2**20
SIZE, CHUNK = 256, 16
IN_STEPS = 4


def _frames(block: np.ndarray, block_info=None) -> np.ndarray:
    """Moving, growing and decaying rain bands: smooth, so they compress like radar data."""
    (t0, t1), _, _ = block_info[None]["array-location"]
    t = np.arange(t0, t1, dtype=np.float32)[:, None, None]
    yy, xx = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    phase = 0.05 * xx[None] + 0.03 * yy[None] - 0.2 * t
    rain = 8.0 * np.sin(phase) * np.cos(0.02 * yy[None] + 0.01 * t) - 2.0
    return np.clip(rain, 0.0, None).astype(np.float32)


def build_store(path: Path, n_times: int) -> str:
    import dask.array as da

    import stgeo

    tpl = stgeo.testing.storm_cells(n_times=1, shape=(SIZE, SIZE), seed=0)
    times = pd.date_range("2020-06-01", periods=n_times, freq="5min")
    data = da.zeros((n_times, SIZE, SIZE), chunks=(CHUNK, SIZE, SIZE), dtype=np.float32)
    data = data.map_blocks(_frames, dtype=np.float32)
    rr = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={"time": times, **{k: v for k, v in tpl.coords.items() if k != "time"}},
        attrs=dict(tpl.rain_rate.attrs),
    )
    ds = rr.to_dataset(name="rain_rate")
    ds.attrs.update(tpl.attrs, title="stgeo dask benchmark frames")
    return stgeo.to_zarr(ds, path, chunks={"time": CHUNK}, overwrite=True)  # --workdir re-runs


def small_model(path: Path) -> str:
    import torch

    import stgeo
    from stgeo.models import ModelSpec, TrainedModel

    torch.manual_seed(0)
    spec = ModelSpec(
        "convlstm",
        IN_STEPS,
        1,
        ["rain_rate"],
        ["rain_rate"],
        "5min",
        (SIZE, SIZE),
        hyperparameters={"hidden": 8, "num_layers": 1, "kernel_size": 3, "patch": 4},
        normalization={"method": "log1p", "channels": ["rain_rate"], "mean": [0.5], "std": [1.0]},
    )
    module = stgeo.create_model("convlstm", in_steps=IN_STEPS, out_steps=1, **spec.hyperparameters)
    return TrainedModel(module, spec).save(path, overwrite=True)


def on_cluster(
    store: str, model: str, out: Path, workers: int, memory_limit: str, chunk: int
) -> tuple[float, int]:
    import distributed

    import stgeo

    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(lambda: __import__("stgeo.forecasting"))  # imports are not part of the run
        pids = list(client.run(__import__("os").getpid).values())
        sampler = stgeo.testing.RssSampler(pids)
        sampler.start()
        t0 = time.perf_counter()
        try:
            stgeo.forecast(
                stgeo.open_dataset(store),
                model,
                lead_steps=1,
                batch_size=chunk // 4,
                chunk_size=chunk,
                lazy=True,
                output=out,
                overwrite=True,
                progress=False,
            )
            seconds = time.perf_counter() - t0
        finally:
            peak = sampler.stop().peak_each
    return seconds, peak


def same_values(a: str | Path, b: str | Path) -> bool:
    x = xr.open_zarr(a, consolidated=False)["rain_rate"]
    y = xr.open_zarr(b, consolidated=False)["rain_rate"]
    if x.shape != y.shape:
        return False
    return bool((x == y).all().compute(scheduler="threads"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 1.25 GiB store instead of 4 GiB")
    ap.add_argument("--store-gib", type=float, default=None, help="size of the input store")
    ap.add_argument("--memory-limit", default="1GiB", help="memory limit of each worker")
    ap.add_argument("--chunk", type=int, default=64, help="init times per Dask chunk")
    ap.add_argument("--workdir", default=None, help="folder for the stores (default: a temp dir)")
    args = ap.parse_args(argv)

    import stgeo

    gib = args.store_gib or (1.25 if args.quick else 4.0)
    n_times = int(gib * 2**30 / (SIZE * SIZE * 4))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="stgeo-dask-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        store = build_store(work / "frames.zarr", n_times)
        on_disk = sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file()) / MiB
        print(
            f"input store: {n_times} frames of {SIZE}x{SIZE} float32 = {gib:.2f} GiB "
            f"({on_disk:.0f} MiB on disk), written in {time.perf_counter() - t0:.1f} s"
        )
        model = small_model(work / "model")

        t0 = time.perf_counter()
        stgeo.forecast(
            stgeo.open_dataset(store),
            model,
            lead_steps=1,
            batch_size=args.chunk // 4,
            output=work / "single.zarr",
            overwrite=True,
            progress=False,
        )
        single = time.perf_counter() - t0
        print(f"single process (torch on every core): {single:.1f} s")

        res: dict[int, tuple[float, int]] = {}
        for workers in (1, 2):
            out = work / f"fc-{workers}w.zarr"
            res[workers] = on_cluster(store, model, out, workers, args.memory_limit, args.chunk)
            print(
                f"LocalCluster, {workers} worker(s) x 1 thread, limit {args.memory_limit}: "
                f"{res[workers][0]:.1f} s, peak worker RSS {res[workers][1] / MiB:.0f} MiB",
                flush=True,
            )
        identical = all(same_values(work / f"fc-{w}w.zarr", work / "single.zarr") for w in res)
        print(f"outputs identical to the single-process forecast: {identical}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    out = {
        "seconds_1w": res[1][0],
        "seconds_2w": res[2][0],
        "speedup": res[1][0] / res[2][0],
        "peak_worker_mem_mib": max(r[1] for r in res.values()) / MiB,
        "store_gib": gib,
        "identical": identical,
        "seconds_single_process": single,
        "origins": n_times - IN_STEPS + 1,
        "memory_limit": args.memory_limit,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

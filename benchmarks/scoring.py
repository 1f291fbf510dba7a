"""Memory/speed benchmark: score a large lazy forecast on a Dask LocalCluster.

A SEVIR-like forecast ``(init_time, lead_time, y, x)`` of float32 VIL (2 GiB; 256 MiB with
``--quick``) and observations ``(time, y, x)`` are built lazily with Dask, aligned on
``valid_time`` and scored with :func:`stgeo.metrics.score` (CSI at the six SEVIR thresholds,
CSI-M, per-pixel MSE) on a LocalCluster whose single worker is capped at ``--memory-limit``.
Reported: wall time, throughput, peak worker RSS, client RSS growth; the speed is also given
as a ratio against a plain NumPy count of the same statistics on one in-memory block,
measured in the same run; and the cluster result on a slice is checked against NumPy.

Run from the repository root::

    python benchmarks/scoring.py [--quick] [--memory-limit 500MiB]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import pandas as pd
import xarray as xr

from stgeo.testing import RssSampler

MiB = 2**20
THRESHOLDS = [16, 74, 133, 160, 181, 219]


def _inputs(n_init: int, n_lead: int, size: int, seed: int = 0):
    import dask.array as da

    t = pd.date_range("2019-06-01", periods=n_init + n_lead, freq="5min")
    lead = pd.to_timedelta(np.arange(1, n_lead + 1) * 5, unit="min")
    rng = da.random.default_rng(seed)
    fc = xr.DataArray(
        rng.random((n_init, n_lead, size, size), chunks=(1, 8, size, size), dtype=np.float32) * 255,
        dims=("init_time", "lead_time", "y", "x"),
        coords={"init_time": t[:n_init], "lead_time": lead},
        name="vil",
        attrs={"units": "1", "long_name": "vertically integrated liquid (0-255)"},
    )
    fc = fc.assign_coords(valid_time=fc.init_time + fc.lead_time)
    obs = xr.DataArray(
        da.random.default_rng(seed + 1).random(
            (n_init + n_lead, size, size), chunks=(4, size, size), dtype=np.float32
        )
        * 255,
        dims=("time", "y", "x"),
        coords={"time": t},
        name="vil",
        attrs={"units": "1"},
    )
    return fc, obs


def _numpy_reference(f: np.ndarray, o: np.ndarray) -> tuple[dict, float]:
    """Counts and MSE by plain NumPy on in-memory arrays (the reference speed)."""
    t0 = time.perf_counter()
    out = {}
    for t in THRESHOLDS:
        fe, oe = f >= t, o >= t
        h = int(np.count_nonzero(fe & oe))
        out[t] = (h, int(np.count_nonzero(oe)) - h, int(np.count_nonzero(fe)) - h)
    err = f.astype(np.float64) - o
    out["mse"] = float(np.mean(err * err))
    return out, time.perf_counter() - t0


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 MiB forecast instead of 2 GiB")
    ap.add_argument("--memory-limit", default="1GiB", help="Dask worker memory limit")
    ap.add_argument("--threads", type=int, default=2, help="threads of the single worker")
    args = ap.parse_args(argv)

    import dask
    import distributed

    import stgeo.metrics as sm

    n_init, n_lead, size = (16, 16, 512) if args.quick else (128, 16, 512)
    fc, obs = _inputs(n_init, n_lead, size)
    fc_gib = fc.nbytes / 2**30
    limit_mib = dask.utils.parse_bytes(args.memory_limit) / MiB

    # reference: NumPy on in-memory blocks (2 init times x all leads), same statistics
    f_blk, o_blk = (a.values for a in sm.align(fc.isel(init_time=[0, 1]), obs, load=True))
    ref, ref_s = _numpy_reference(f_blk, o_blk)
    for _ in range(4):  # best of 5: the machine is shared and noisy
        ref_s = min(ref_s, _numpy_reference(f_blk, o_blk)[1])
    ref_mib_s = f_blk.nbytes / MiB / ref_s

    client_rss0 = _peak_rss_mib()
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=args.threads,
            memory_limit=args.memory_limit,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = list(client.run(os.getpid).values())
        # the worker imports stgeo (and, through stgeo/__init__, torch) to run the kernels:
        # import it first so the baseline excludes that fixed cost
        client.run(lambda: __import__("stgeo.metrics"))
        base = sum(__import__("psutil").Process(p).memory_info().rss for p in pids)
        sampler = RssSampler(pids)
        sampler.start()
        t0 = time.perf_counter()
        res = sm.score(fc, obs, metrics=["csi", "csi_m", "mse"], thresholds=THRESHOLDS)
        seconds = time.perf_counter() - t0
        sampled = sampler.stop().peak_total
        # sampled RSS (ru_maxrss is useless here: Linux keeps the parent's high-water mark
        # across fork + exec, so a fresh worker "inherits" the client's peak)
        worker_peak = max(sampled, base) / MiB
        # correctness on a slice, through the cluster, against the NumPy reference
        one = sm.score(
            fc.isel(init_time=[0, 1]),
            obs,
            metrics=["hits", "misses", "false_alarms", "mse"],
            thresholds=THRESHOLDS,
            preserve_dims=(),
        )
    client_growth = max(0.0, _peak_rss_mib() - client_rss0)
    identical = all(
        (
            int(one.hits.sel(threshold=t)),
            int(one.misses.sel(threshold=t)),
            int(one.false_alarms.sel(threshold=t)),
        )
        == ref[t]
        for t in THRESHOLDS
    ) and bool(np.isclose(float(one.mse), ref["mse"], rtol=1e-9))

    mib_s = fc.nbytes / MiB / seconds
    figures = {
        "forecast_gib": round(fc_gib, 3),
        "obs_gib": round(obs.nbytes / 2**30, 3),
        "seconds": round(seconds, 2),
        "throughput_mib_s": round(mib_s, 1),
        "numpy_ref_mib_s": round(ref_mib_s, 1),
        "speed_ratio_vs_numpy": round(mib_s / ref_mib_s, 3),
        "worker_memory_limit_mib": round(limit_mib),
        "worker_baseline_rss_mib": round(base / MiB, 1),
        "peak_worker_rss_mib": round(worker_peak, 1),
        "scoring_rss_growth_mib": round(worker_peak - base / MiB, 1),
        "client_rss_growth_mib": round(client_growth, 1),
        "growth_under_500mib": bool(worker_peak - base / MiB < 500),
        "identical": identical,
        "csi_m": round(float(res.csi_m.mean()), 6),
    }
    rows = [
        ("forecast size (GiB)", figures["forecast_gib"]),
        ("observations size (GiB)", figures["obs_gib"]),
        ("wall time (s)", figures["seconds"]),
        ("throughput (MiB/s)", figures["throughput_mib_s"]),
        ("NumPy reference, in memory (MiB/s)", figures["numpy_ref_mib_s"]),
        ("speed ratio vs NumPy", figures["speed_ratio_vs_numpy"]),
        ("worker memory limit (MiB)", figures["worker_memory_limit_mib"]),
        ("worker RSS before scoring, stgeo imported (MiB)", figures["worker_baseline_rss_mib"]),
        ("peak worker RSS (MiB)", figures["peak_worker_rss_mib"]),
        ("worker RSS growth while scoring (MiB)", figures["scoring_rss_growth_mib"]),
        ("client RSS growth (MiB)", figures["client_rss_growth_mib"]),
        ("slice equals NumPy counts", figures["identical"]),
        ("CSI-M (random fields)", figures["csi_m"]),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"stgeo.metrics.score on a lazy {fc_gib:.2f} GiB forecast (LocalCluster, 1 worker, "
        f"{args.threads} threads)"
    )
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

"""The Dask path: a lazy array of forecasts whose ``init_time`` chunks run when computed.

Each chunk is one task calling the batch job of :mod:`stgeo.forecasting.core`; with an active
``distributed`` client the job (model and window definitions) is scattered to every worker
once instead of travelling inside every task.

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
>>> fc = stgeo.forecast(ds, "persistence", lead_steps=2, lazy=True, chunk_size=8)
>>> fc.chunks[0]
(8, 4)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from .core import _ForecastJob

__all__: list[str] = []


def _job_reference(job: _ForecastJob) -> Any:
    """The job as a graph dependency: scattered to every worker of an active ``distributed``
    client (sent once, not inside every task), else a plain delayed object."""
    import dask

    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return dask.delayed(job, pure=False)
    return client.scatter(job, broadcast=True, hash=False)


def _lazy_forecasts(job: _ForecastJob, n: int, chunk: int, shape: tuple[int, ...]) -> Any:
    """A Dask array ``(n, *shape)`` whose ``init_time`` chunks are forecast when computed."""
    import dask
    import dask.array as dsa

    ref = _job_reference(job)
    blocks = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        task = dask.delayed(_run_job, pure=True)(ref, start, stop)
        blocks.append(dsa.from_delayed(task, shape=(stop - start, *shape), dtype=np.float32))
    return dsa.concatenate(blocks, axis=0)


def _run_job(job: _ForecastJob, start: int, stop: int) -> np.ndarray:
    return job(start, stop)


def _write_regions(
    packed: xr.Dataset, output: str | os.PathLike, dim: str, chunk: int, overwrite: bool
) -> str:
    """Write the lazy forecasts ``packed`` to ``output`` chunk by chunk along ``dim``;
    each chunk is recorded once written, so a restarted run computes only the others.
    Returns the published store's path."""
    from ..data import StoreBuilder

    builder = StoreBuilder(output, packed, dim=dim, chunks={dim: chunk}, overwrite=overwrite)
    n = packed.sizes[dim]
    builder.write_coordinates(packed)  # valid_time: cheap, and rewritten identically on resume
    writes = {
        s: builder.region_writer(packed.isel({dim: slice(s, s + chunk)}), start=s)
        for s in range(0, n, chunk)
        if not builder.is_done(s)
    }
    _run_regions(writes, builder.mark_done)
    return builder.commit()


def _run_regions(writes: dict[int, Any], done: Callable[[int], None]) -> None:
    """Compute the region writes, calling ``done(start)`` as each finishes: all at once on an
    active ``distributed`` client, else in waves of one region per core."""
    import dask

    try:
        from distributed import as_completed, get_client

        client = get_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        futures = {client.compute(w): s for s, w in writes.items()}
        for fut in as_completed(list(futures)):
            fut.result()
            done(futures[fut])
        return
    items = list(writes.items())
    wave = max(1, os.cpu_count() or 1)
    for i in range(0, len(items), wave):
        part = items[i : i + wave]
        dask.compute(*[w for _, w in part])
        for s, _ in part:
            done(s)

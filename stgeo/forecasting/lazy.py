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

from typing import Any

import numpy as np

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

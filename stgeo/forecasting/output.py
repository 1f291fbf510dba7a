"""Forecasts as labelled xarray objects: in memory, written to Zarr batch by batch, or lazy.

:class:`_Labels` turns ``(init_time, lead_time, channel, y, x)`` arrays (numpy or Dask) into
the variables of the input with the forecast dims and coordinates (``init_time``,
``lead_time``, ``valid_time``) and the model's attributes; the three ``_*_result`` functions
run a batch job (:mod:`stgeo.forecasting.core`) and return what :func:`stgeo.forecast` returns.

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=6, shape=(8, 8), seed=0)
>>> fc = stgeo.forecast(ds, "persistence", lead_steps=2, progress=False)
>>> sorted(fc.coords)
['crs', 'init_time', 'lat', 'lead_time', 'lon', 'valid_time', 'x', 'y']
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import INIT_TIME_DIM, LEAD_TIME_DIM, VALID_TIME_COORD, freq_string
from ..errors import StgeoWarning
from ..models.base import ModelSpec
from .core import _ForecastJob

__all__: list[str] = []

_MEMORY_WARN_BYTES = 2 * 1024**3
_TITLE = "stgeo forecast"


@dataclass
class _Labels:
    """How forecasts of one call are labelled: dims, coordinates, variables and attributes."""

    like: xr.Dataset
    channels: list[str]
    variables: list[str]
    spatial_dims: tuple[str, ...]
    grid: tuple[int, ...]
    lead_times: np.ndarray
    attrs: dict[str, Any]

    @classmethod
    def create(
        cls,
        spec: ModelSpec,
        label: str,
        step: pd.Timedelta,
        leads: list[int],
        frames: xr.DataArray,
        like: xr.Dataset,
        spatial_dims: tuple[str, ...],
    ) -> _Labels:
        lead_td = pd.to_timedelta(np.asarray(leads) * step)
        attrs = {
            "model": label if len(label) < 300 else spec.model,
            "model_name": spec.model,
            "time_step": freq_string(step),
            "in_steps": spec.in_steps,
            "out_steps": spec.out_steps,
        }
        if spec.calibration:
            attrs["calibration"] = "quantile mapping per lead (fitted on the training split)"
        return cls(
            like,
            list(spec.channels),
            list(spec.variables),
            tuple(spatial_dims),
            tuple(frames.shape[-2:]),
            np.asarray(lead_td, dtype="timedelta64[ns]"),
            attrs,
        )

    def shape(self, n: int) -> tuple[int, ...]:
        """Shape of the forecasts of ``n`` initial times (before unpacking the channels)."""
        return (n, len(self.lead_times), len(self.channels), *self.grid)

    def __call__(self, arr: Any, t0: Any) -> dict[str, xr.DataArray]:
        """The labelled variables of forecasts ``arr`` from the initial times ``t0``."""
        from ..data import from_frames

        it = np.asarray(t0, dtype="datetime64[ns]")
        lt = self.lead_times
        da = xr.DataArray(
            arr,
            dims=(INIT_TIME_DIM, LEAD_TIME_DIM, "channel", *self.spatial_dims),
            coords={
                INIT_TIME_DIM: it,
                LEAD_TIME_DIM: lt,
                VALID_TIME_COORD: ((INIT_TIME_DIM, LEAD_TIME_DIM), it[:, None] + lt[None, :]),
            },
        )
        out = from_frames(da, self.channels, self.like)
        for v in out.values():
            v.attrs.update(self.attrs)
            v[INIT_TIME_DIM].attrs.update(long_name="forecast initial time (last input time)")
            v[LEAD_TIME_DIM].attrs.update(long_name="forecast lead time")
            v[VALID_TIME_COORD].attrs.update(long_name="time the forecast is valid for")
        return out

    def result(self, out: dict[str, xr.DataArray]) -> xr.DataArray | xr.Dataset:
        """One variable as a DataArray, several as a Dataset."""
        return out[self.variables[0]] if len(out) == 1 else xr.Dataset(out)


def _batches(n: int, batch_size: int, progress: bool | None, desc: str) -> Iterator:
    """``(start, indices)`` of each batch of ``n`` windows, with a progress bar if asked."""
    from ..options import show_progress

    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=desc, unit="window", leave=False)
    try:
        for s in range(0, n, batch_size):
            idx = np.arange(s, min(s + batch_size, n))
            yield s, idx
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()


def _opened(path: Any, names: list[str]) -> xr.DataArray | xr.Dataset:
    """The written store opened lazily: its one variable, or the Dataset."""
    from ..data import open_dataset

    opened = open_dataset(path)
    return opened[names[0]] if len(names) == 1 else opened


def _in_memory_result(
    job: _ForecastJob, labels: _Labels, init_times: pd.DatetimeIndex, progress: bool | None
) -> xr.DataArray | xr.Dataset:
    """Every batch computed into one numpy array (a warning when it is large)."""
    shape = labels.shape(len(init_times))
    nbytes = int(np.prod(shape)) * 4
    if nbytes > _MEMORY_WARN_BYTES:
        warnings.warn(
            f"the forecasts take {nbytes / 1024**3:.1f} GiB in memory; pass output='path.zarr'"
            " to write them to disk batch by batch",
            StgeoWarning,
            stacklevel=3,
        )
    result = np.empty(shape, dtype=np.float32)
    desc = f"forecast {job.spec.model}"
    for s, idx in _batches(len(init_times), job.batch_size, progress, desc):
        result[s : s + len(idx)] = job.batch(idx)
    return labels.result(labels(result, init_times))


def _store_result(
    job: _ForecastJob,
    labels: _Labels,
    init_times: pd.DatetimeIndex,
    progress: bool | None,
    output: str | os.PathLike,
    overwrite: bool = False,
) -> xr.DataArray | xr.Dataset:
    """Batches written to the Zarr store ``output`` by region (resumable, published atomically)."""
    import dask.array as dsa

    from ..data import StoreBuilder

    shape = labels.shape(len(init_times))
    bs = job.batch_size
    zeros = dsa.zeros(shape, dtype=np.float32, chunks=(bs, *shape[1:]))
    template = xr.Dataset(labels(zeros, init_times))
    template.attrs.update(title=_TITLE, **labels.attrs)
    builder = StoreBuilder(
        output, template, dim=INIT_TIME_DIM, chunks={INIT_TIME_DIM: bs}, overwrite=overwrite
    )
    desc = f"forecast {job.spec.model}"
    for s, idx in _batches(len(init_times), bs, progress, desc):
        if builder.is_done(s):
            continue
        part = xr.Dataset(labels(job.batch(idx), init_times[idx]))
        builder.write_region(part, start=s)
    return _opened(builder.commit(), list(template.data_vars))


def _lazy_result(
    job: _ForecastJob,
    labels: _Labels,
    init_times: pd.DatetimeIndex,
    chunk_size: int,
    output: str | os.PathLike | None,
    overwrite: bool = False,
) -> xr.DataArray | xr.Dataset:
    """Dask-backed forecasts; with ``output``, written chunk by chunk by whichever scheduler
    (resumable: a restarted run computes only the chunks not yet written)."""
    from .lazy import _lazy_forecasts, _write_regions

    shape = labels.shape(len(init_times))
    arr = _lazy_forecasts(job, shape[0], chunk_size, shape[1:])
    result = labels.result(labels(arr, init_times))
    if output is None:
        return result
    packed = result.to_dataset() if isinstance(result, xr.DataArray) else result
    packed.attrs.update(title=_TITLE, **labels.attrs)
    path = _write_regions(packed, output, INIT_TIME_DIM, chunk_size, overwrite)
    return _opened(path, list(packed.data_vars))

"""Inference: ``stgeo.forecast(data, model)`` -> forecasts ``(init_time, lead_time, ..., y, x)``.

Lazy input windows are batched to the device, normalised with the statistics stored with the
model, run through the network (autoregressively beyond the trained horizon, feeding
predictions back in chunks of ``out_steps``), de-normalised and labelled: ``init_time``,
``lead_time`` (timedelta), ``valid_time = init_time + lead_time``, the input's spatial
coordinates (lat/lon, CRS) and attributes.

:func:`forecast` only orchestrates: what ``model=`` means and whether the data fit it
(:mod:`~stgeo.forecasting.resolve`), the checked input windows
(:mod:`~stgeo.forecasting.inputs`), the numerical core and its batch job
(:mod:`~stgeo.forecasting.core`), the Dask path (:mod:`~stgeo.forecasting.lazy`) and the
labelled result (:mod:`~stgeo.forecasting.output`).

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
>>> fc = stgeo.forecast(ds, "persistence", lead_steps=3, progress=False)
>>> fc.dims, fc.sizes["lead_time"], str(fc.lead_time.values[0].astype("timedelta64[m]"))
(('init_time', 'lead_time', 'y', 'x'), 3, '5 minutes')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import xarray as xr

from ..conventions import spatial_dims
from ..data import open_data, to_frames
from .core import _leads, _prepared_job, rollout_offsets
from .inputs import _check_arguments, _time_step, _windows
from .output import _in_memory_result, _Labels, _lazy_result, _store_result
from .resolve import _check_compat, _load_if_path, _resolve_model, _variables

__all__ = ["forecast"]


def forecast(
    data: xr.Dataset | xr.DataArray | str | os.PathLike,
    model: Any,
    *,
    variable: str | Sequence[str] | None = None,
    init_times: Any = None,
    lead_steps: int | Sequence[int] | None = None,
    in_steps: int | None = None,
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
    output: str | os.PathLike | None = None,
    progress: bool | None = None,
    lazy: bool = False,
    chunk_size: int | None = None,
    **model_kwargs: Any,
) -> xr.DataArray | xr.Dataset:
    """Forecast from every (or selected) initial time of ``data`` with a model.

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray, str or path
        Observations (catalog name or store path accepted), read lazily. They need not be
        the training data and need no future frames: only the inputs of each window.
    model : str, path, TrainedModel or torch.nn.Module
        A registered baseline's name (``"persistence"`` uses 1 input step; ``"climatology"``
        uses one ``period`` of inputs, default ``"1D"``, e.g. ``period="7D"``; each baseline
        declares its settings in its registration, see
        :func:`stgeo.models.baseline_settings`), the path of a model saved with
        :meth:`TrainedModel.save`, a :class:`TrainedModel`, or a bare module (then give
        ``in_steps``; no normalisation is applied).
    variable : str or list of str, optional
        Variables to forecast; default: the model's (trained models) or all (baselines).
    init_times : time, list of times or slice, optional
        Forecast initial times ``t0`` (the last input time). Default: every time with a
        complete input history. A slice selects the valid ``t0`` within it (inputs may come
        from before its start).
    lead_steps : int or list of int, optional
        ``N`` (leads 1..N time steps) or explicit leads. Default: the model's ``out_steps``
        (persistence: 1; climatology: one period). Longer than the trained horizon rolls out.
    in_steps : int, optional
        Input frames for a bare module or a baseline (persistence: 1 by default).
    batch_size : int
        Windows per forward pass.
    device, precision : str
        ``"auto"``: CUDA/MPS/CPU, and bf16 where the device computes it natively.
    output : str or path, optional
        Write the forecasts to this Zarr store batch by batch (resumable; never holding all
        of them in memory) and return the lazily opened result.
    progress : bool, optional
        Progress bar (default: only on a terminal).
    lazy : bool
        Return a Dask-backed result instead: each ``init_time`` chunk is forecast when it is
        computed, on whichever Dask scheduler is active (threads, processes, or the workers
        of a ``distributed`` cluster). Nothing is computed until then, so the forecasts of a
        long period can be scored (:func:`stgeo.score`) or written (``output=``) chunk by
        chunk, in parallel and out of core. With an active ``distributed.Client`` the model
        and the window definitions are sent to every worker once; the input frames are read
        by the workers themselves (from the Zarr store when the data came from one).
        With ``output``, the store is written by the workers chunk by chunk and published
        atomically.
    chunk_size : int, optional
        ``init_time`` values per Dask chunk (a multiple of ``batch_size``; default
        ``8 * batch_size``). Only with ``lazy=True``.
    **model_kwargs
        Options of a baseline, handed to its settings hook (e.g. ``period="7D"``).

    Returns
    -------
    xarray.DataArray
        Named after the variable, dims ``(init_time, lead_time, [extra dim], y, x)``,
        ``lead_time`` timedelta64, coordinate ``valid_time(init_time, lead_time)``, the
        input's spatial coordinates (lat/lon, CRS) and variable attributes plus ``model``,
        ``model_name``, ``time_step`` and ``in_steps``. With several variables, an
        ``xarray.Dataset`` of such arrays.

    Raises
    ------
    DataValidationError
        Raised before any computation: data variables, channels, grid or time step that
        differ from the model's; too short history; NaN/inf in the needed inputs;
        ``init_times`` without a complete history.
    UnknownNameError
        Unknown baseline or variable name.
    ModelFileError
        ``model`` is a path to something that is not a stgeo model.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
    >>> fc = stgeo.forecast(ds, "persistence", lead_steps=2, init_times=ds.time[-2:],
    ...                     progress=False)
    >>> bool((fc.isel(lead_time=1) == ds.rain_rate.isel(time=slice(-2, None)).values).all())
    True
    >>> fc.valid_time.shape
    (2, 2)
    """
    _check_arguments(batch_size, chunk_size, lazy, in_steps)
    ds = open_data(data)
    model = _load_if_path(model)
    frames = to_frames(ds, _variables(model, variable))
    sdims = spatial_dims(frames)
    step = _time_step(frames)
    module, spec, label = _resolve_model(
        model,
        frames=frames,
        step=step,
        in_steps=in_steps,
        lead_steps=lead_steps,
        model_kwargs=model_kwargs,
    )
    _check_compat(spec, frames, step, sdims, label)
    leads = _leads(lead_steps if lead_steps is not None else spec.out_steps)
    hist_off = rollout_offsets(spec, leads)
    win = _windows(frames, hist_off, last_lead=max(leads), init_times=init_times, label=label)

    # -- everything checked: compute ---------------------------------------------------
    job = _prepared_job(module, spec, win, leads, hist_off, batch_size, device, precision)
    labels = _Labels.create(spec, label, step, leads, frames, ds, sdims)
    if lazy:
        return _lazy_result(job, labels, win.init_times, chunk_size or 8 * batch_size, output)
    if output is None:
        return _in_memory_result(job, labels, win.init_times, progress)
    return _store_result(job, labels, win.init_times, progress, output)

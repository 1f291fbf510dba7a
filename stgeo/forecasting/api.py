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

import numpy as np
import xarray as xr

from ..conventions import spatial_dims
from ..data import open_data, to_frames
from ..data.safety import check_output
from .core import (
    _batch_bytes,
    _check_fits_memory,
    _leads,
    _prepared_job,
    external_table,
    rollout_offsets,
)
from .inputs import _check_arguments, _time_step, _windows
from .output import _in_memory_result, _Labels, _lazy_result, _store_result
from .resolve import (
    _check_compat,
    _check_grid_place,
    _check_step,
    _load_if_path,
    _resolve_model,
    _tiling,
    _tiling_attrs,
    _use_pretrained,
    _variables,
)

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
    overwrite: bool = False,
    progress: bool | None = None,
    lazy: bool = False,
    chunk_size: int | None = None,
    tiling: str | tuple[int, int] | None = "auto",
    tile_overlap: float | int = 0.25,
    step_tolerance: float = 0.25,
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
        :func:`stgeo.models.baseline_settings`), an architecture's name (``"convlstm"``:
        the pretrained model of that architecture that fits the data, see
        :mod:`stgeo.pretrained`; the result's ``attrs["pretrained"]`` names it), a
        pretrained model's name, the path of a model saved with
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
        of them in memory) and return the lazily opened result. A run interrupted (killed)
        and started again with the same arguments computes only the forecasts not yet
        written. ``output`` may not be, contain or lie inside the data or the model folder.
    overwrite : bool
        Replace an existing forecast store at ``output`` (written by stgeo). Default False:
        an existing store raises :class:`~stgeo.errors.OutputExistsError`; a folder stgeo
        did not write is never replaced.
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
    tiling : {"auto", "off"}, (int, int) or None
        How the model is applied to the data's grid (see the guide, "Forecasting any grid").
        The grid is replicate-padded to the model's multiple
        (:func:`stgeo.models.grid_rule`) and cropped back. ``"auto"`` (or None): a fully
        convolutional model runs on the whole grid; any other model trained on another
        grid runs in tiles of its trained size, blended over their overlaps. ``"off"``:
        always the whole grid. ``(th, tw)``: tiles of that size for any model (multiples of
        the model's multiple), e.g. to bound the memory of a fully convolutional model on a
        very large grid. Tiles run ``batch_size`` at a time.
    tile_overlap : float or int
        Overlap of adjacent tiles: a fraction of the tile (default 0.25) or pixels.
    step_tolerance : float
        Largest relative difference between the data's time step and the model's accepted
        (default 0.25: a 5-minute model forecasts 6-minute data, with a warning and the
        attribute ``model_time_step``; leads count in the data's step). A model whose spec
        says ``time_step="per-event"`` forecasts data of any step.
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
        Raised before any computation: data variables or channels that differ from the
        model's; a time step further than ``step_tolerance`` from the model's; a tile size
        the model cannot use; too short history; infinite values in the needed inputs;
        ``init_times`` without a complete history.
        Units of the data that differ in meaning from those the model was trained on
        (the message gives the conversion when there is one).
    StgeoTypeError
        Wrongly typed arguments, e.g. ``lead_steps="12"`` or ``progress="no"``.
    UnknownNameError
        Unknown baseline or variable name.
    ModelFileError
        ``model`` is a path to something that is not a stgeo model.
    OutputExistsError, OutputOverlapsInputError
        ``output`` is taken (see ``overwrite``) or is one of the inputs.

    Notes
    -----
    NaN in the inputs is no data: the model sees the normalised value of physical 0 there
    (:func:`stgeo.data.fill_nodata`) and the forecast is NaN, for every lead and channel,
    wherever any input frame of its initial time is NaN (for every model, baselines
    included).

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
    _check_arguments(
        batch_size,
        chunk_size,
        lazy,
        in_steps,
        lead_steps=lead_steps,
        variable=variable,
        progress=progress,
        precision=precision,
        output=output,
        step_tolerance=step_tolerance,
        tile_overlap=tile_overlap,
    )
    ds = open_data(data)
    model, ds, variable, pretrained_attrs = _use_pretrained(model, ds, variable, step_tolerance)
    model = _load_if_path(model)
    if output is not None:  # before any work: never write over an input or a user's folder
        check_output(output, "store", inputs=[data, ds, model], overwrite=overwrite)
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
    step_attrs = _check_step(spec, step, label, step_tolerance)
    _check_compat(spec, frames, sdims, label)
    grid = (int(frames.shape[-2]), int(frames.shape[-1]))
    _check_grid_place(spec, ds, grid, label)
    tiles = _tiling(spec, grid, tiling, tile_overlap, batch_size)
    leads = _leads(lead_steps if lead_steps is not None else spec.out_steps)
    frame = (int(frames.sizes["channel"]), *grid)
    _check_memory(spec, frame, leads, batch_size)  # before anything the size of the leads
    hist_off = rollout_offsets(spec, leads)
    win = _windows(frames, hist_off, last_lead=leads[-1], init_times=init_times, label=label)
    _check_memory(spec, frame, leads, batch_size, len(win.init_times), output is None and not lazy)

    # -- everything checked: compute ---------------------------------------------------
    job = _prepared_job(module, spec, win, leads, hist_off, batch_size, device, precision, tiles)
    job.external = external_table(spec, ds)  # a model's weather inputs (None for most)
    labels = _Labels.create(spec, label, step, leads, frames, ds, sdims)
    labels.attrs.update(step_attrs, **_tiling_attrs(tiles, grid), **pretrained_attrs)
    if lazy:
        chunk = chunk_size or 8 * batch_size
        return _lazy_result(job, labels, win.init_times, chunk, output, overwrite)
    if output is None:
        return _in_memory_result(job, labels, win.init_times, progress)
    return _store_result(job, labels, win.init_times, progress, output, overwrite)


def _check_memory(
    spec: Any,
    frame: tuple[int, ...],
    leads: Sequence[int],
    batch_size: int,
    n_init: int | None = None,
    in_memory: bool = False,
) -> None:
    """Refuse a forecast whose arrays cannot fit in the memory available: one batch of
    windows (always), the ``valid_time`` labels and, returned in memory, every forecast
    (``n_init`` known)."""
    batch = _batch_bytes(min(batch_size, n_init or batch_size), len(leads), spec, frame)
    shape = " x ".join(str(n) for n in frame)
    if n_init is None:
        _check_fits_memory(
            batch,
            f"forecasting one batch of {batch_size} windows to {len(leads)} leads "
            f"({shape} float32 each)",
            "ask for fewer lead steps (a list such as lead_steps=[12, 24] keeps only those "
            "leads) or a smaller batch_size",
        )
        return
    labels = n_init * len(leads) * 8  # valid_time (init_time, lead_time), datetime64
    if not in_memory:
        _check_fits_memory(
            batch + labels,
            f"forecasting {n_init} initial times to {len(leads)} leads",
            "ask for fewer lead steps or initial times (init_times=...)",
        )
        return
    result = n_init * len(leads) * int(np.prod(frame)) * 4
    _check_fits_memory(
        result + batch + labels,
        f"the forecasts ({n_init} initial times x {len(leads)} leads x {shape} float32), "
        "returned in memory,",
        "pass output='forecasts.zarr' to write them to disk batch by batch, or ask for "
        "fewer lead steps or initial times (init_times=...)",
    )

"""Inference: ``stgeo.forecast(data, model)`` -> forecasts ``(init_time, lead_time, ..., y, x)``.

Lazy input windows are batched to the device, normalised with the statistics stored with the
model, run through the network (autoregressively beyond the trained horizon, feeding
predictions back in chunks of ``out_steps``), de-normalised and labelled: ``init_time``,
``lead_time`` (timedelta), ``valid_time = init_time + lead_time``, the input's spatial
coordinates (lat/lon, CRS) and attributes. The numerical core, :func:`forecast_array`, is a
pure function on numpy arrays so it can run chunk by chunk on Dask workers.

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
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import INIT_TIME_DIM, LEAD_TIME_DIM, VALID_TIME_COORD, freq_string
from ..data import open_data, variables_of
from ..errors import DataValidationError, StgeoTypeError, StgeoWarning
from ..models.artifact import TrainedModel, load_model
from ..models.base import ModelSpec

__all__ = ["forecast", "forecast_array", "rollout_offsets"]

_MEMORY_WARN_BYTES = 2 * 1024**3


# -- the pure numerical core -----------------------------------------------------------------
def _spec_offsets(spec: ModelSpec) -> tuple[list[int], list[int]]:
    inp = list(spec.input_offsets) if spec.input_offsets else list(range(-spec.in_steps + 1, 1))
    out = list(spec.target_offsets) if spec.target_offsets else list(range(1, spec.out_steps + 1))
    return [int(o) for o in inp], [int(o) for o in out]


def _leads(lead_steps: int | Sequence[int]) -> list[int]:
    if isinstance(lead_steps, (int, np.integer)) and not isinstance(lead_steps, bool):
        if lead_steps < 1:
            raise DataValidationError(f"lead_steps must be >= 1, got {lead_steps}")
        return list(range(1, int(lead_steps) + 1))
    try:
        leads = [int(v) for v in lead_steps]  # type: ignore[union-attr]
    except TypeError:
        raise StgeoTypeError(
            f"lead_steps must be an int (1..N) or a list of positive ints, got {lead_steps!r}"
        ) from None
    if not leads or min(leads) < 1 or sorted(set(leads)) != leads:
        raise DataValidationError(
            f"lead_steps must be increasing positive integers without repeats, got {leads}"
        )
    return leads


def rollout_offsets(spec: ModelSpec, lead_steps: int | Sequence[int]) -> list[int]:
    """Offsets (<= 0, relative to ``t0``) of the observed frames a forecast to ``lead_steps`` needs.

    For a contiguous model (``in_steps`` consecutive inputs) this is just its input window;
    with non-contiguous inputs (e.g. period/trend offsets) rolling out further needs more
    history.

    Examples
    --------
    >>> from stgeo.models import ModelSpec
    >>> s = ModelSpec("m", 2, 1, ["v"], ["v"], "1h", input_offsets=[-24, 0])
    >>> rollout_offsets(s, 3)
    [-24, -23, -22, 0]
    """
    leads = _leads(lead_steps)
    inp, out = _spec_offsets(spec)
    if out != list(range(1, len(out) + 1)):
        return inp
    n_out = len(out)
    chunks = -(-max(leads) // n_out)
    need = {k * n_out + o for k in range(chunks) for o in inp}
    return sorted(o for o in need if o <= 0)


def forecast_array(
    model: Any,
    spec: ModelSpec,
    inputs: np.ndarray,
    lead_steps: int | Sequence[int],
    *,
    input_offsets: Sequence[int] | None = None,
    device: Any = None,
    precision: str | None = "auto",
    normalize: bool = True,
) -> np.ndarray:
    """Forecast from input windows: the pure numerical core of :func:`forecast`.

    Parameters
    ----------
    model : torch.nn.Module
        A forecaster (plain, or prepared by ``stgeo.models.runtime.prepare_for_inference``).
    spec : ModelSpec
        Its spec (sizes, offsets, normalisation).
    inputs : numpy.ndarray
        ``(B, T_hist, C, H, W)`` observed frames in physical units at ``input_offsets``
        relative to each ``t0``.
    lead_steps : int or sequence of int
        ``N`` (leads 1..N) or explicit leads in time steps. Beyond the model's ``out_steps``
        predictions are fed back in chunks of ``out_steps`` (autoregressive rollout).
    input_offsets : sequence of int, optional
        Offsets of the ``T_hist`` input frames; default the model's own input offsets
        (use :func:`rollout_offsets` for non-contiguous inputs and long rollouts).
    device : str or torch.device, optional
        Where to compute (default: the module's device).
    precision : {"auto", "bf16", "fp32"} or None
        Autocast precision for a plain module; None for a prepared one.
    normalize : bool
        Apply the spec's normaliser to the inputs and its inverse to the outputs.

    Returns
    -------
    numpy.ndarray
        ``(B, len(leads), C, H, W)`` float32 in physical units.

    Examples
    --------
    >>> import numpy as np
    >>> from stgeo.models import ModelSpec
    >>> spec = ModelSpec("persistence", 1, 2, ["v"], ["v"], "1h")
    >>> x = np.arange(4, dtype="float32").reshape(4, 1, 1, 1, 1)
    >>> forecast_array(spec.build(), spec, x, 5).shape
    (4, 5, 1, 1, 1)
    """
    import torch

    from ..models.runtime import predict

    leads = _leads(lead_steps)
    inp_off, out_off = _spec_offsets(spec)
    hist_off = [int(o) for o in (input_offsets if input_offsets is not None else inp_off)]
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim != 5 or x.shape[1] != len(hist_off):
        raise DataValidationError(
            f"inputs must be (B, {len(hist_off)}, C, H, W) for input offsets {hist_off}, "
            f"got shape {x.shape}"
        )
    if len(spec.channels) and x.shape[2] != len(spec.channels):
        raise DataValidationError(
            f"inputs have {x.shape[2]} channels, the model expects {len(spec.channels)} "
            f"({spec.channels})"
        )
    contiguous_out = out_off == list(range(1, len(out_off) + 1))
    if not contiguous_out and not set(leads) <= set(out_off):
        raise DataValidationError(
            f"this model predicts only the offsets {out_off}; it cannot roll out to leads "
            f"{[v for v in leads if v not in out_off]}"
        )
    normalizer = None
    if normalize and spec.normalization:
        from ..data import Normalizer

        normalizer = Normalizer.from_dict(spec.normalization)
    t = torch.from_numpy(x)
    if device is not None:
        t = t.to(device)
    if normalizer is not None:
        t = normalizer.transform(t)
    hist = {o: t[:, i] for i, o in enumerate(hist_off)}

    def run(inp: torch.Tensor) -> torch.Tensor:
        y = predict(model, inp, precision)
        if y.ndim != 5 or y.shape[0] != inp.shape[0] or y.shape[2:] != inp.shape[2:]:
            raise DataValidationError(
                f"the model returned shape {tuple(y.shape)} for input {tuple(inp.shape)}; "
                "a forecaster must map (B, T_in, C, H, W) to (B, T_out, C, H, W)"
            )
        if y.shape[1] != len(out_off):
            raise DataValidationError(
                f"the model returned {y.shape[1]} frames, its spec says out_steps={len(out_off)}"
            )
        return y.to(t.device)

    preds: dict[int, torch.Tensor] = {}
    if not contiguous_out:
        missing = [o for o in inp_off if o not in hist]
        if missing:
            raise DataValidationError(f"inputs lack the offsets {missing} the model needs")
        y = run(torch.stack([hist[o] for o in inp_off], 1))
        preds = {o: y[:, i] for i, o in enumerate(out_off)}
    else:
        n_out = len(out_off)
        for k in range(-(-max(leads) // n_out)):
            frames = []
            for o in inp_off:
                s = k * n_out + o
                if s <= 0:
                    if s not in hist:
                        raise DataValidationError(
                            f"rolling out to lead {max(leads)} needs the observed frame at offset "
                            f"{s}, which the inputs lack; pass input_offsets=rollout_offsets(...)"
                        )
                    frames.append(hist[s])
                else:
                    frames.append(preds[s])
            y = run(torch.stack(frames, 1))
            for i in range(n_out):
                preds[k * n_out + i + 1] = y[:, i]
    out = torch.stack([preds[v] for v in leads], 1)
    if normalizer is not None:
        out = normalizer.inverse(out)
    return out.float().cpu().numpy()


# -- the Dask path ----------------------------------------------------------------------------
class _ForecastJob:
    """Everything a worker needs to forecast a block of windows (pickled once per worker)."""

    def __init__(self, module, spec, windows, leads, offsets, batch_size, device) -> None:
        self.module = module
        self.spec = spec
        self.windows = windows
        self.leads = list(leads)
        self.offsets = list(offsets)
        self.batch_size = int(batch_size)
        self.device = device

    def batch(self, idx: np.ndarray) -> np.ndarray:
        """Forecasts of the windows ``idx`` (one forward pass per ``out_steps`` of leads)."""
        return forecast_array(
            self.module,
            self.spec,
            self.windows.inputs(idx),
            self.leads,
            input_offsets=self.offsets,
            device=self.device,
            precision=None,
        )

    def __call__(self, start: int, stop: int) -> np.ndarray:
        _match_worker_threads()
        bs = self.batch_size
        return np.concatenate(
            [self.batch(np.arange(s, min(s + bs, stop))) for s in range(start, stop, bs)]
        )


def _match_worker_threads() -> None:
    """On a Dask ``distributed`` worker, let torch use that worker's threads, not every core
    of the machine (several workers on one machine would otherwise oversubscribe it)."""
    try:
        from distributed import get_worker

        n = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


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


# -- model resolution ------------------------------------------------------------------------
def _is_path(model: Any) -> bool:
    if isinstance(model, os.PathLike):
        return True
    s = str(model)
    return Path(s).exists() or os.sep in s or s.endswith((".safetensors", ".pt", ".pth", ".ckpt"))


def _resolve_model(
    model: Any,
    *,
    frames: xr.DataArray,
    step: pd.Timedelta,
    in_steps: int | None,
    lead_steps: int | Sequence[int] | None,
    model_kwargs: dict[str, Any],
) -> tuple[Any, ModelSpec, str]:
    """(module, spec, label) for a name, path, TrainedModel or nn.Module."""
    import torch

    from .._registry import MODELS
    from ..models.base import create_model

    channels = [str(c) for c in frames["channel"].values]
    variables = variables_of(channels)
    if isinstance(model, TrainedModel) or (
        isinstance(model, (str, os.PathLike)) and _is_path(model)
    ):
        if model_kwargs:
            raise StgeoTypeError(
                f"extra keyword arguments {sorted(model_kwargs)} only apply to baseline models "
                "given by name; a trained model carries its own settings"
            )
        tm = model if isinstance(model, TrainedModel) else load_model(model)
        label = tm.spec.model if isinstance(model, TrainedModel) else str(model)
        return tm.module, tm.spec, label
    if isinstance(model, torch.nn.Module):
        if in_steps is None:
            raise DataValidationError(
                "a bare torch module needs in_steps=...; better, pass a TrainedModel or a path"
            )
        if model_kwargs:
            raise StgeoTypeError(f"unexpected keyword arguments {sorted(model_kwargs)}")
        return model, _bare_spec(model, frames, step, in_steps), type(model).__name__
    if not isinstance(model, str):
        raise StgeoTypeError(
            "model must be a registered baseline name, a path to a saved model, a TrainedModel "
            f"or a torch.nn.Module, got {type(model).__name__}"
        )
    entry = MODELS.entry(model)
    if not entry.meta.get("baseline"):
        raise StgeoTypeError(
            f"{entry.name!r} is an architecture with untrained weights; train it first "
            f"(m = stgeo.train(ds, model={entry.name!r}, ...)) and pass the result or its path"
        )
    kw = dict(model_kwargs)
    if entry.name == "climatology":
        if "period_steps" in kw:
            period_steps = int(kw.pop("period_steps"))
        else:
            period = pd.Timedelta(kw.pop("period", "1D"))
            ratio = period / step
            if ratio < 1 or ratio != int(ratio):
                raise DataValidationError(
                    f"climatology period {period} is not a whole multiple of the data's time "
                    f"step {step}; give period= as a multiple (e.g. '1D', '7D')"
                )
            period_steps = int(ratio)
        n_in = in_steps or period_steps
        kw["period_steps"] = period_steps
    elif entry.name == "persistence":
        n_in = in_steps or 1
    else:
        if in_steps is None:
            raise DataValidationError(f"baseline {entry.name!r} needs in_steps=...")
        n_in = in_steps
    n_out = (
        max(_leads(lead_steps))
        if lead_steps is not None
        else (kw.get("period_steps", 1) if entry.name == "climatology" else 1)
    )
    module = create_model(
        entry.name, in_steps=n_in, out_steps=n_out, channels=len(channels), grid_shape=None, **kw
    )
    spec = ModelSpec(
        entry.name, n_in, n_out, variables, channels, freq_string(step), None, hyperparameters=kw
    )
    return module, spec, entry.name


def _bare_spec(module: Any, frames: xr.DataArray, step: pd.Timedelta, in_steps: int) -> ModelSpec:
    import torch

    channels = [str(c) for c in frames["channel"].values]
    shape = (1, in_steps, len(channels), *frames.shape[-2:])
    try:
        with torch.no_grad():
            p = next(iter(module.parameters()), None)
            dev = p.device if p is not None else torch.device("cpu")
            y = module(torch.zeros(shape, device=dev, dtype=p.dtype if p is not None else None))
    except Exception as err:
        raise DataValidationError(
            f"the module cannot forecast input of shape {shape} (B, T_in, C, H, W): {err}"
        ) from None
    if y.ndim != 5 or tuple(y.shape[2:]) != shape[2:]:
        raise DataValidationError(
            f"the module maps {shape} to {tuple(y.shape)}; a forecaster must return "
            "(B, T_out, C, H, W)"
        )
    return ModelSpec(
        type(module).__name__,
        in_steps,
        int(y.shape[1]),
        variables_of(channels),
        channels,
        freq_string(step),
        tuple(frames.shape[-2:]),
    )


def _check_compat(
    spec: ModelSpec, frames: xr.DataArray, step: pd.Timedelta, sdims: tuple[str, str], label: str
) -> None:
    channels = [str(c) for c in frames["channel"].values]
    if channels != list(spec.channels):
        raise DataValidationError(
            f"the model {label!r} was trained on channels {spec.channels}, the data give "
            f"{channels}; select the same variables (variable={spec.variables!r})"
        )
    if pd.Timedelta(spec.time_step) != step:
        raise DataValidationError(
            f"the model {label!r} was trained on a time step of {spec.time_step}, the data have "
            f"{freq_string(step)}; resample the data, e.g. "
            f"ds.resample(time={spec.time_step!r}).mean()"
        )
    grid = tuple(int(v) for v in frames.shape[-2:])
    if spec.grid_shape is not None and tuple(spec.grid_shape) != grid:
        raise DataValidationError(
            f"the model {label!r} was trained on a {spec.grid_shape[0]}x{spec.grid_shape[1]} grid, "
            f"the data grid is {grid[0]}x{grid[1]}; select the same domain (e.g. with .isel) "
            "or train a model for this grid"
        )
    if spec.grid_shape is not None and tuple(spec.spatial_dims) != tuple(sdims):
        raise DataValidationError(
            f"the model {label!r} was trained on spatial dims {tuple(spec.spatial_dims)}, "
            f"the data have {sdims}"
        )
    if spec.normalization:  # a malformed normaliser fails here, not inside the first batch
        from ..data import Normalizer

        try:
            Normalizer.from_dict(spec.normalization)
        except DataValidationError as err:
            msg = f"the model {label!r} has an unusable normalisation: {err}"
            raise DataValidationError(msg) from None


def _check_finite(frames: xr.DataArray, positions: np.ndarray) -> None:
    """Raise if any needed input frame holds NaN/inf (a lazy, chunked reduction)."""
    if positions.size == 0:
        return
    lo, hi = int(positions.min()), int(positions.max())
    if hi - lo + 1 <= 2 * positions.size:
        sub = frames.isel(time=slice(lo, hi + 1))
    else:
        sub = frames.isel(time=positions)
    bad = (~np.isfinite(sub)).any(dim=[d for d in sub.dims if d != "time"])
    bad = np.asarray(bad.values)
    if bad.any():
        times = pd.DatetimeIndex(sub["time"].values[bad])
        shown = ", ".join(str(t) for t in times[:3])
        raise DataValidationError(
            f"the input frames contain NaN or infinite values at {len(times)} time(s) "
            f"({shown}{', ...' if len(times) > 3 else ''}); the model needs complete inputs. "
            "Fill them first, e.g. ds = ds.fillna(0), or choose other init_times"
        )


def _init_time_args(init_times: Any) -> dict[str, Any]:
    if init_times is None:
        return {}
    if isinstance(init_times, slice):
        if init_times.step is not None:
            raise DataValidationError("init_times slices take no step; use a list of times")
        return {"time_range": (init_times.start, init_times.stop), "inputs_in_range": False}
    if isinstance(init_times, (str, pd.Timestamp, np.datetime64)):
        return {"init_times": [init_times]}
    if isinstance(init_times, xr.DataArray):
        return {"init_times": list(np.atleast_1d(init_times.values))}
    return {"init_times": list(init_times)}


# -- the public function ---------------------------------------------------------------------
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
        A baseline name (``"persistence"`` uses 1 input step; ``"climatology"`` uses one
        ``period`` of inputs, default ``"1D"``, e.g. ``period="7D"``), the path of a model
        saved with :meth:`TrainedModel.save`, a :class:`TrainedModel`, or a bare module
        (then give ``in_steps``; no normalisation is applied).
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
        Options of a baseline (e.g. ``period="7D"``).

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
    from ..conventions import spatial_dims, time_step
    from ..data import StoreBuilder, Windows, from_frames, open_dataset, to_frames
    from ..models.runtime import prepare_for_inference, resolve_precision
    from ..options import resolve_device, show_progress

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if chunk_size is not None:
        if not lazy:
            raise DataValidationError("chunk_size applies to lazy=True forecasts only")
        if (
            isinstance(chunk_size, bool)
            or not isinstance(chunk_size, int)
            or chunk_size < 1
            or chunk_size % batch_size
        ):
            raise DataValidationError(
                f"chunk_size must be a positive multiple of batch_size ({batch_size}), "
                f"got {chunk_size!r}"
            )
    if in_steps is not None and (
        isinstance(in_steps, bool) or not isinstance(in_steps, int) or in_steps < 1
    ):
        raise DataValidationError(f"in_steps must be a positive integer, got {in_steps!r}")
    ds = open_data(data)
    # the variables: the model's, unless asked otherwise
    trained_vars = None
    if isinstance(model, TrainedModel):
        trained_vars = model.spec.variables
    elif isinstance(model, (str, os.PathLike)) and _is_path(model):
        model = load_model(model)
        trained_vars = model.spec.variables
    if trained_vars is not None and variable is not None:
        asked = [variable] if isinstance(variable, str) else list(variable)
        if asked != list(trained_vars):
            raise DataValidationError(
                f"the model was trained on variables {trained_vars}, not {asked}; forecast "
                "those variables (or train a model for these)"
            )
    frames = to_frames(ds, variable if trained_vars is None else trained_vars)
    sdims = spatial_dims(frames)
    if frames.sizes["time"] < 2 and "step" not in frames["time"].attrs:
        raise DataValidationError(
            f"only {frames.sizes['time']} time step(s): not enough history to forecast from"
        )
    step = time_step(frames)
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
    need = -min(hist_off) + 1
    if frames.sizes["time"] < need:
        raise DataValidationError(
            f"too short history: forecasting to lead {max(leads)} with {label!r} needs "
            f"{need} consecutive time steps of input (offsets {hist_off[0]}..0), the data "
            f"have {frames.sizes['time']}"
        )
    try:
        win = Windows(
            frames, input_offsets=hist_off, require_targets=False, **_init_time_args(init_times)
        )
    except DataValidationError as err:
        raise DataValidationError(
            f"cannot forecast with {label!r} (needs input offsets {hist_off[0]}..0, i.e. "
            f"{need} time steps of history without gaps): {err}"
        ) from None
    positions = (win.t0_index[:, None] + np.asarray(hist_off)[None, :]).ravel()
    _check_finite(frames, np.unique(positions))

    # -- everything checked: compute ---------------------------------------------------
    dev = resolve_device(device)
    prec = resolve_precision(dev, precision)
    if not any(True for _ in module.parameters()):
        prec = "fp32"  # baselines: nothing to accelerate, keep the values exact
    fast = prepare_for_inference(module, dev, prec)
    channels = list(spec.channels)
    lead_td = pd.to_timedelta(np.asarray(leads) * step)
    n = len(win)
    attrs_extra = {
        "model": label if len(label) < 300 else spec.model,
        "model_name": spec.model,
        "time_step": freq_string(step),
        "in_steps": spec.in_steps,
        "out_steps": spec.out_steps,
    }

    def label_batch(arr: Any, t0: pd.DatetimeIndex) -> dict[str, xr.DataArray]:
        it = np.asarray(t0, dtype="datetime64[ns]")
        lt = np.asarray(lead_td, dtype="timedelta64[ns]")
        da = xr.DataArray(
            arr,
            dims=(INIT_TIME_DIM, LEAD_TIME_DIM, "channel", *sdims),
            coords={
                INIT_TIME_DIM: it,
                LEAD_TIME_DIM: lt,
                VALID_TIME_COORD: ((INIT_TIME_DIM, LEAD_TIME_DIM), it[:, None] + lt[None, :]),
            },
        )
        out = from_frames(da, channels, ds)
        for v in out.values():
            v.attrs.update(attrs_extra)
            v[INIT_TIME_DIM].attrs.update(long_name="forecast initial time (last input time)")
            v[LEAD_TIME_DIM].attrs.update(long_name="forecast lead time")
            v[VALID_TIME_COORD].attrs.update(long_name="time the forecast is valid for")
        return out

    def batches():
        show = show_progress(progress)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=f"forecast {spec.model}", unit="window", leave=False)
        try:
            for s in range(0, n, batch_size):
                idx = np.arange(s, min(s + batch_size, n))
                yield s, idx
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()

    job = _ForecastJob(fast, spec, win, leads, hist_off, batch_size, dev)
    compute = job.batch
    shape = (n, len(leads), len(channels), *frames.shape[-2:])
    if lazy:
        from ..data import to_zarr

        arr = _lazy_forecasts(job, n, chunk_size or 8 * batch_size, shape[1:])
        out = label_batch(arr, win.init_times)
        result = out[spec.variables[0]] if len(out) == 1 else xr.Dataset(out)
        if output is None:
            return result
        packed = result.to_dataset() if isinstance(result, xr.DataArray) else result
        packed.attrs.update(title="stgeo forecast", **attrs_extra)
        opened = open_dataset(to_zarr(packed, output))
        names = list(packed.data_vars)
        return opened[names[0]] if len(names) == 1 else opened
    if output is None:
        nbytes = int(np.prod(shape)) * 4
        if nbytes > _MEMORY_WARN_BYTES:
            warnings.warn(
                f"the forecasts take {nbytes / 1024**3:.1f} GiB in memory; pass output='path.zarr'"
                " to write them to disk batch by batch",
                StgeoWarning,
                stacklevel=2,
            )
        result = np.empty(shape, dtype=np.float32)
        for s, idx in batches():
            result[s : s + len(idx)] = compute(idx)
        out = label_batch(result, win.init_times)
        return out[spec.variables[0]] if len(out) == 1 else xr.Dataset(out)

    import dask.array as dsa

    lazy = dsa.zeros(
        shape, dtype=np.float32, chunks=(batch_size, len(leads), len(channels), *frames.shape[-2:])
    )
    template = xr.Dataset(label_batch(lazy, win.init_times))
    template.attrs.update(title="stgeo forecast", **attrs_extra)
    builder = StoreBuilder(output, template, dim=INIT_TIME_DIM, chunks={INIT_TIME_DIM: batch_size})
    for s, idx in batches():
        if builder.is_done(s):
            continue
        part = xr.Dataset(label_batch(compute(idx), win.init_times[idx]))
        builder.write_region(part, start=s)
    path = builder.commit()
    opened = open_dataset(path)
    names = list(template.data_vars)
    return opened[names[0]] if len(names) == 1 else opened

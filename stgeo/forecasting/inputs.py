"""The inputs of a forecast, checked before anything is computed: the arguments, the data's
time step, the windows (initial times with a complete history) and their finiteness.

Examples
--------
>>> _init_time_args(slice("2021-07-04T12:00", None))
{'time_range': ('2021-07-04T12:00', None), 'inputs_in_range': False}
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataValidationError, StgeoTypeError

__all__: list[str] = []


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_arguments(
    batch_size: Any, chunk_size: Any, lazy: bool, in_steps: Any, **others: Any
) -> None:
    """Raise on a bad ``batch_size``, ``chunk_size`` (lazy only) or ``in_steps``, and on
    wrongly typed ``others`` (the rest of :func:`stgeo.forecast`'s arguments)."""
    _check_types(lazy=lazy, **others)
    if not _is_positive_int(batch_size):
        raise DataValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if chunk_size is not None:
        if not lazy:
            raise DataValidationError("chunk_size applies to lazy=True forecasts only")
        if not _is_positive_int(chunk_size) or chunk_size % batch_size:
            raise DataValidationError(
                f"chunk_size must be a positive multiple of batch_size ({batch_size}), "
                f"got {chunk_size!r}"
            )
    if in_steps is not None and not _is_positive_int(in_steps):
        raise DataValidationError(f"in_steps must be a positive integer, got {in_steps!r}")


def _check_number(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise StgeoTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value < 0:
        raise DataValidationError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_types(**kw: Any) -> None:
    """Type checks of :func:`stgeo.forecast`'s keyword arguments (only those given)."""
    from ..conventions import check_bool, check_names

    if "lead_steps" in kw and kw["lead_steps"] is not None:
        from .core import _leads

        _leads(kw["lead_steps"])
    check_names(kw.get("variable"), "variable")
    check_bool(kw.get("lazy", False), "lazy")
    if kw.get("progress") is not None:
        check_bool(kw["progress"], "progress")
    if not isinstance(kw.get("precision", "auto"), str):
        raise StgeoTypeError(f"precision must be a string such as 'auto', got {kw['precision']!r}")
    for name in ("step_tolerance", "tile_overlap"):
        if name in kw:
            _check_number(kw[name], name)
    out = kw.get("output")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise StgeoTypeError(
            f"output must be a path (str or os.PathLike) of a Zarr store, got {type(out).__name__}"
        )


def _time_step(frames: xr.DataArray) -> pd.Timedelta:
    """The data's time step; raise when a single frame does not tell it."""
    from ..conventions import time_step

    if frames.sizes["time"] < 2 and "step" not in frames["time"].attrs:
        raise DataValidationError(
            f"only {frames.sizes['time']} time step(s): not enough history to forecast from"
        )
    return time_step(frames)


def _init_time_args(init_times: Any) -> dict[str, Any]:
    """``init_times=`` as keyword arguments of :class:`stgeo.data.Windows`."""
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


def _windows(
    frames: xr.DataArray, hist_off: list[int], *, last_lead: int, init_times: Any, label: str
) -> Any:
    """The input windows at ``hist_off`` of every requested initial time, checked finite."""
    from ..data import Windows

    _check_history(frames, hist_off, last_lead, label)
    _check_time_range(frames, init_times, hist_off)
    need = -min(hist_off) + 1
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
    return win


def _slice_ends(init_times: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None] | None:
    """The start and end of an ``init_times`` slice as timestamps (None: not a readable slice)."""
    if not isinstance(init_times, slice):
        return None
    try:
        return tuple(  # type: ignore[return-value]
            None if t is None else pd.Timestamp(t) for t in (init_times.start, init_times.stop)
        )
    except (TypeError, ValueError):
        return None  # Windows says what is wrong with it


def _check_time_range(frames: xr.DataArray, init_times: Any, hist_off: list[int]) -> None:
    """Say so when an ``init_times`` slice lies outside the data's times (rather than "no
    valid window"): a start after the last time, an end before the first initial time."""
    ends = _slice_ends(init_times)
    times = pd.DatetimeIndex(frames["time"].values)
    if ends is None or not len(times):
        return
    start, stop = ends
    first, last = times.min(), times.max()
    need = -min(hist_off) + 1
    earliest = times[min(need, len(times)) - 1] if times.is_monotonic_increasing else first
    cover = f"the data cover {first} .. {last}"
    try:
        if start is not None and start > last:
            raise DataValidationError(
                f"init_times starts at {start}, after the last time of the data ({last}): {cover}"
            )
        if stop is not None and stop < first:
            raise DataValidationError(
                f"init_times ends at {stop}, before the first time of the data ({first}): {cover}"
            )
        if stop is not None and stop < earliest:
            raise DataValidationError(
                f"init_times ends at {stop}, before the first initial time with a complete "
                f"input history ({earliest}: the model needs {need} time steps of input); "
                f"{cover}"
            )
    except TypeError:  # time zones that cannot be compared: Windows says so
        return


def _check_history(frames: xr.DataArray, hist_off: list[int], last_lead: int, label: str) -> None:
    need = -min(hist_off) + 1
    if frames.sizes["time"] < need:
        raise DataValidationError(
            f"too short history: forecasting to lead {last_lead} with {label!r} needs "
            f"{need} consecutive time steps of input (offsets {hist_off[0]}..0), the data "
            f"have {frames.sizes['time']}"
        )


def _check_finite(frames: xr.DataArray, positions: np.ndarray) -> None:
    """Raise if any needed input frame holds +-inf (a lazy, chunked reduction); NaN is no data."""
    if positions.size == 0:
        return
    lo, hi = int(positions.min()), int(positions.max())
    if hi - lo + 1 <= 2 * positions.size:
        sub = frames.isel(time=slice(lo, hi + 1))
    else:
        sub = frames.isel(time=positions)
    bad = np.isinf(sub).any(dim=[d for d in sub.dims if d != "time"])
    bad = np.asarray(bad.values)
    if bad.any():
        times = pd.DatetimeIndex(sub["time"].values[bad])
        shown = ", ".join(str(t) for t in times[:3])
        raise DataValidationError(
            f"the input frames contain infinite values at {len(times)} time(s) "
            f"({shown}{', ...' if len(times) > 3 else ''}); mark missing data as NaN (no "
            "data), e.g. ds = ds.where(np.isfinite(ds)), or choose other init_times"
        )

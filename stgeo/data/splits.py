"""Time-based train/validation/test splits (never random: neighbouring frames are correlated).

Examples
--------
>>> import stgeo
>>> from stgeo.data import split_by_time
>>> ds = stgeo.testing.storm_cells(n_times=10, shape=(8, 8))
>>> parts = split_by_time(ds, train=0.6, val=0.2, test=0.2)
>>> {k: v.sizes["time"] for k, v in parts.items()}
{'train': 6, 'val': 2, 'test': 2}
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import TIME_DIM
from ..errors import DataValidationError, StgeoTypeError

__all__ = ["split_by_time"]

_ORDER = ("train", "val", "test")


def _is_fraction(v: Any) -> bool:
    return isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool)


def split_by_time(
    ds: xr.Dataset | xr.DataArray,
    *,
    train: Any = None,
    val: Any = None,
    test: Any = None,
) -> dict[str, xr.Dataset | xr.DataArray]:
    """Split ``ds`` along time into non-overlapping train/val/test parts.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        Data with a sorted ``time`` coordinate (lazy data stay lazy).
    train, val, test : (start, end) or float, optional
        Either inclusive ``(start, end)`` time pairs (either end may be None = open), or
        fractions of the time axis taken in the order train, val, test (e.g.
        ``train=0.7, val=0.1, test=0.2``; they must sum to at most 1). Do not mix the two
        forms. Only the given splits are returned.

    Returns
    -------
    dict of str -> same type as ``ds``
        ``{"train": ..., "val": ..., "test": ...}`` for the given splits.

    Raises
    ------
    DataValidationError
        Overlapping ranges, an empty split, fractions outside (0, 1] or summing above 1,
        a start after its end, or no split given.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=12, shape=(8, 8))   # 5-min steps from 12:00
    >>> p = split_by_time(ds, train=("2021-07-04T12:00", "2021-07-04T12:30"),
    ...                   test=("2021-07-04T12:35", None))
    >>> p["train"].sizes["time"], p["test"].sizes["time"]
    (7, 5)
    """
    if not isinstance(ds, (xr.Dataset, xr.DataArray)):
        raise StgeoTypeError(f"split_by_time expects an xarray object, got {type(ds).__name__}")
    if TIME_DIM not in ds.dims or TIME_DIM not in ds.coords:
        raise DataValidationError(f"split_by_time needs a {TIME_DIM!r} coordinate; dims: {ds.dims}")
    given = {k: v for k, v in zip(_ORDER, (train, val, test), strict=False) if v is not None}
    if not given:
        raise DataValidationError("give at least one of train=, val=, test=")
    kinds = {k: _is_fraction(v) for k, v in given.items()}
    t = pd.DatetimeIndex(np.asarray(ds[TIME_DIM].values))
    n = len(t)
    if len(t) > 1 and not t.is_monotonic_increasing:
        raise DataValidationError("the time coordinate is not sorted; use ds.sortby('time')")
    if all(kinds.values()):
        bounds = _fraction_bounds(given, n)
    elif not any(kinds.values()):
        bounds = _time_range_bounds(given, t)
    else:
        raise DataValidationError(
            "give every split either as fractions or as (start, end) time pairs, not a mix: "
            f"{given}"
        )
    out: dict[str, Any] = {}
    for k, (a, b) in bounds.items():
        if b <= a:
            raise DataValidationError(
                f"the {k} split is empty ({given[k]!r} selects no time of the data, which runs "
                f"from {t[0] if n else None} to {t[-1] if n else None})"
            )
        out[k] = ds.isel({TIME_DIM: slice(a, b)})
    return out


def _fraction_bounds(given: dict[str, Any], n: int) -> dict[str, tuple[int, int]]:
    """``[start, stop)`` positions of splits given as fractions, taken in ``_ORDER``."""
    fr = {k: float(v) for k, v in given.items()}
    for k, v in fr.items():
        if not 0 < v <= 1:
            raise DataValidationError(f"{k}={v} must be a fraction in (0, 1]")
    if sum(fr.values()) > 1 + 1e-9:
        raise DataValidationError(f"the split fractions sum to {sum(fr.values()):g} > 1: {fr}")
    bounds: dict[str, tuple[int, int]] = {}
    start, acc = 0, 0.0
    for k in _ORDER:
        if k in fr:
            acc += fr[k]
            stop = min(n, round(acc * n))
            bounds[k] = (start, stop)
            start = stop
    return bounds


def _time_pair(k: str, v: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The inclusive ``(start, end)`` times of split ``k`` (None = open end)."""
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise DataValidationError(
            f"{k} must be an inclusive (start, end) pair of times or a fraction, got {v!r}"
        )
    try:
        lo = pd.Timestamp(v[0]) if v[0] is not None else None
        hi = pd.Timestamp(v[1]) if v[1] is not None else None
    except (TypeError, ValueError):
        raise DataValidationError(f"{k}: cannot read {v!r} as times") from None
    if lo is not None and hi is not None and lo > hi:
        raise DataValidationError(f"{k}: start {lo} is after end {hi}")
    return lo, hi


def _time_range_bounds(given: dict[str, Any], t: pd.DatetimeIndex) -> dict[str, tuple[int, int]]:
    """``[start, stop)`` positions in ``t`` of splits given as disjoint ``(start, end)`` pairs."""
    n = len(t)
    pairs, bounds = {}, {}
    for k, v in given.items():
        lo, hi = pairs[k] = _time_pair(k, v)
        a = 0 if lo is None else int(t.searchsorted(lo, side="left"))
        b = n if hi is None else int(t.searchsorted(hi, side="right"))
        bounds[k] = (a, b)
    # overlapping ranges are checked on the requested times, not only the data
    spans = sorted(
        (
            pd.Timestamp.min if lo is None else lo,
            pd.Timestamp.max if hi is None else hi,
            k,
        )
        for k, (lo, hi) in pairs.items()
    )
    for (_lo1, hi1, k1), (lo2, _hi2, k2) in itertools.pairwise(spans):
        if lo2 <= hi1:
            raise DataValidationError(
                f"the {k1} and {k2} time ranges overlap ({k1}: {given[k1]}, {k2}: "
                f"{given[k2]}); splits must be disjoint so no test data leaks into training"
            )
    return bounds

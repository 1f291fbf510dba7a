"""Many events as training data: opening lists and collections, joining same-grid events.

Two forms of multi-event data, one rule for gaps and events:

* **One dataset with an ``event`` coordinate along time** (same-grid events joined by
  :func:`join_events`, or stored that way, e.g. SEVIR). A change of event label starts a
  new segment; so does a gap in the time axis when gaps are allowed.
* **A list of sources** (Datasets, store paths, catalog entry names) or a catalog
  **collection** name (:func:`open_events`): events may have different grids, lengths,
  projections, spatial-dim names and time steps.

**Gaps.** Within an event the time axis must be regular and complete: ``stgeo.validate``
and ``stgeo.train`` refuse a gap with the same message, and both accept it with
``allow_gaps=True`` (then the gap is a segment boundary: no window crosses it). A gap
between two events is never an error.

Examples
--------
>>> import stgeo
>>> from stgeo.data import join_events
>>> a = stgeo.testing.storm_cells(n_times=6, shape=(8, 8), seed=0)
>>> b = stgeo.testing.storm_cells(n_times=4, shape=(8, 8), seed=1)
>>> both = join_events([a, b], names=["first", "second"])
>>> both.sizes["time"], sorted(set(both.event.values.tolist()))
(10, ['first', 'second'])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import (
    EVENT_COORD,
    TIME_DIM,
    as_dataset,
    freq_string,
    spatial_dims,
    time_step,
)
from ..errors import DataValidationError, StgeoTypeError
from .collections import get_collection, is_collection
from .store import open_data

__all__ = ["EventSource", "join_events", "open_events"]


@dataclass(frozen=True)
class EventSource:
    """One event of a multi-event run: its name and lazily opened dataset.

    Attributes
    ----------
    name : str
        Catalog entry name, store folder name, ``attrs["stgeo_catalog"]`` or ``event-<i>``.
    dataset : xarray.Dataset
        The event's data (lazy when opened from a store).
    """

    name: str
    dataset: xr.Dataset


def _name_of(item: Any, ds: xr.Dataset, i: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        cat = ds.attrs.get("stgeo_catalog")
        if cat:
            return str(cat)
        return Path(str(item)).name.removesuffix(".zarr") or f"event-{i}"
    return str(ds.attrs.get("stgeo_catalog") or getattr(item, "name", None) or f"event-{i}")


def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        k, m = n, 2
        while k in out:
            k, m = f"{n}-{m}", m + 1
        out.append(k)
    return out


def open_events(
    data: Any,
) -> tuple[list[EventSource], str | None]:
    """The events of ``data`` and the time-step policy its collection declares.

    Parameters
    ----------
    data : Dataset, DataArray, str, path, or a list of them
        One source (a Dataset, a store path or a catalog entry name), a catalog collection
        name, or a list of sources (each one event).

    Returns
    -------
    (list of EventSource, str or None)
        The events in order, and the collection's ``time_step`` policy (None otherwise).

    Raises
    ------
    DataValidationError
        An empty list.
    UnknownNameError
        A name that is neither a store, a catalog entry nor a collection.

    Examples
    --------
    >>> import stgeo
    >>> a = stgeo.testing.storm_cells(n_times=4, shape=(8, 8), seed=0)
    >>> events, policy = open_events([a, a.isel(y=slice(0, 6))])
    >>> [e.name for e in events], policy
    (['event-0', 'event-1'], None)
    """
    policy = None
    if is_collection(data) and not Path(str(data)).exists():
        coll = get_collection(str(data))
        items: Sequence[Any] = list(coll.members)
        policy = coll.time_step
    elif isinstance(data, (list, tuple)):
        items = list(data)
        if not items:
            raise DataValidationError(
                "data is an empty list; give one or more Datasets, store paths or catalog names"
            )
    else:
        items = [data]
    datasets = []
    for it in items:
        if isinstance(it, (list, tuple)):
            raise StgeoTypeError(
                "a list of data must hold Datasets, store paths or catalog names, not lists"
            )
        datasets.append(open_data(it))
    names = _unique(
        [_name_of(it, ds, i) for i, (it, ds) in enumerate(zip(items, datasets, strict=True))]
    )
    return [EventSource(n, ds) for n, ds in zip(names, datasets, strict=True)], policy


def _labels(values: Any) -> np.ndarray:
    """Event labels as a fixed-width unicode array (from any string dtype)."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=str)


def _grid_signature(ds: xr.Dataset) -> tuple[Any, ...]:
    sd = spatial_dims(ds)
    return sd, tuple(int(ds.sizes[d]) for d in sd)


def _check_same_grid(dsets: list[xr.Dataset], names: list[str]) -> None:
    ref = dsets[0]
    sig = _grid_signature(ref)
    for ds, n in zip(dsets[1:], names[1:], strict=True):
        other = _grid_signature(ds)
        if other != sig:
            raise DataValidationError(
                f"join_events joins events on one grid: {names[0]!r} has dims/shape {sig}, "
                f"{n!r} has {other}. Train on events of different grids by passing them as "
                "a list: stgeo.train([ds1, ds2], ..., patch_size=(128, 128))"
            )
        for c in (*sig[0], "lat", "lon"):
            if c in ref.coords and c in ds.coords and TIME_DIM not in ref[c].dims:
                a, b = np.asarray(ref[c].values), np.asarray(ds[c].values)
                if a.shape != b.shape or not np.allclose(a, b, equal_nan=True):
                    raise DataValidationError(
                        f"join_events: coordinate {c!r} of {n!r} differs from that of "
                        f"{names[0]!r}; the events are not on the same grid"
                    )


def _check_same_step(dsets: list[xr.Dataset], names: list[str]) -> None:
    steps = [time_step(ds) if ds.sizes[TIME_DIM] >= 2 else None for ds in dsets]
    known = {s for s in steps if s is not None}
    if len(known) > 1:
        listed = ", ".join(
            f"{n}: {freq_string(s) if s is not None else '?'}"
            for n, s in zip(names, steps, strict=True)
        )
        raise DataValidationError(
            f"join_events joins events of one time step, got {listed}. Pass the events as a "
            "list to stgeo.train with a time_step policy instead"
        )


def join_events(
    datasets: Sequence[xr.Dataset | xr.DataArray], names: Sequence[str] | None = None
) -> xr.Dataset:
    """Concatenate same-grid events along time, labelled by an ``event`` coordinate.

    Windows never cross from one event into the next, even when the events' times touch
    or repeat. Attributes that disagree between events (a recipe's per-event provenance,
    ``stgeo_catalog``, ...) are dropped, those that agree (CF ``units``, ``standard_name``,
    ``grid_mapping``, conventions) are kept; coordinates without time (``y``/``x``,
    ``lat``/``lon``) and the ``crs`` variable come from the first event after checking
    that every event has the same grid. The ``event`` labels are a fixed-width unicode
    string array, which Zarr stores without a ``SerializationWarning``.

    Parameters
    ----------
    datasets : sequence of Dataset or DataArray
        The events, each with a regular time axis; same variables, grid and time step.
    names : sequence of str, optional
        One label per event (default: each dataset's ``attrs["stgeo_catalog"]`` or
        ``event-<i>``). A dataset that already has an ``event`` coordinate keeps its labels
        when ``names`` is not given.

    Returns
    -------
    xarray.Dataset
        The joined events (lazy inputs stay lazy).

    Raises
    ------
    DataValidationError
        Fewer than one dataset, names of the wrong length or repeated, different grids,
        variables or time steps.

    Examples
    --------
    >>> import stgeo
    >>> a = stgeo.testing.storm_cells(n_times=5, shape=(8, 8), seed=0)
    >>> both = join_events([a, a], names=["a", "again"])   # the same times twice is fine
    >>> both.event.dtype.kind, both.sizes["time"]
    ('U', 10)
    """
    dsets = [as_dataset(d) for d in datasets]
    if not dsets:
        raise DataValidationError("join_events needs at least one dataset")
    given = names is not None
    if names is None:
        names = [str(d.attrs.get("stgeo_catalog") or f"event-{i}") for i, d in enumerate(dsets)]
    names = [str(n) for n in names]
    if len(names) != len(dsets) or len(set(names)) != len(names):
        raise DataValidationError(
            f"names must be {len(dsets)} distinct labels, one per dataset, got {names}"
        )
    variables = [sorted(map(str, d.data_vars)) for d in dsets]
    if any(v != variables[0] for v in variables):
        raise DataValidationError(
            f"join_events needs the same variables in every event, got {variables}"
        )
    _check_same_grid(dsets, names)
    _check_same_step(dsets, names)
    labelled = []
    for d, n in zip(dsets, names, strict=True):
        keep = EVENT_COORD in d.coords and d[EVENT_COORD].dims == (TIME_DIM,)
        lab = (
            _labels(d[EVENT_COORD].values) if keep and not given else np.full(d.sizes[TIME_DIM], n)
        )
        labelled.append(d.assign_coords({EVENT_COORD: (TIME_DIM, lab)}))
    out = xr.concat(
        labelled,
        dim=TIME_DIM,
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="override",
        combine_attrs="drop_conflicts",
    )
    ev = _labels(out[EVENT_COORD].values)
    out = out.assign_coords({EVENT_COORD: (TIME_DIM, ev)})
    step = time_step(dsets[0]) if dsets[0].sizes[TIME_DIM] >= 2 else None
    out[TIME_DIM].attrs = {k: v for k, v in out[TIME_DIM].attrs.items() if k != "step"}
    if step is not None:
        out[TIME_DIM].attrs["step"] = freq_string(pd.Timedelta(step))
    return out

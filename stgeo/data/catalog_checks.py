"""Catalogs checked against the file system and their stores.

A catalog names folders to search (the ``catalog_paths`` option, ``$STGEO_CATALOG_PATH``)
and, per entry, a store with its variables and time step. :func:`check_catalog_roots`
refuses search paths that do not exist (a typo would otherwise hide every entry they hold);
:func:`check_store_matches_entry` compares an opened store with what its entry promises, so
a store rebuilt with other variables or another time step is caught on open.

Examples
--------
>>> import stgeo
>>> from stgeo.data import get_entry
>>> from stgeo.data.catalog_checks import check_store_matches_entry
>>> ds = stgeo.testing.storm_cells(n_times=4, shape=(8, 8))
>>> check_store_matches_entry(get_entry("synthetic-storms"), ds, "storms.zarr")
>>> try:
...     check_store_matches_entry(get_entry("synthetic-storms"), ds.resample(time="10min")
...                               .mean(), "storms.zarr")
... except stgeo.errors.CatalogError as err:
...     print(str(err).split(";")[0])
catalog entry 'synthetic-storms' promises a time step of 5min, the store storms.zarr has 10min
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..conventions import TIME_DIM, freq_string, time_step
from ..errors import CatalogError, DataValidationError

__all__ = ["check_catalog_roots", "check_store_matches_entry"]


def check_catalog_roots(roots: Iterable[str | os.PathLike], *, source: str) -> list[Path]:
    """The catalog search paths ``roots`` as paths; CatalogError for one that does not exist.

    Parameters
    ----------
    roots : iterable of str or path
        Catalog YAML files or folders.
    source : str
        Where they were given (e.g. ``"the catalog_paths option"``), for the message.

    Raises
    ------
    CatalogError
        A path does not exist.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> check_catalog_roots([d], source="a test") == [Path(d)]
    True
    >>> try:
    ...     check_catalog_roots([d + "/nope"], source="$STGEO_CATALOG_PATH")
    ... except CatalogError as err:
    ...     print(str(err)[:40])
    $STGEO_CATALOG_PATH names a catalog path
    """
    out = []
    for r in roots:
        p = Path(r).expanduser()
        if not p.exists():
            raise CatalogError(
                f"{source} names a catalog path that does not exist: {p}. Fix the path (a "
                "catalog YAML file or a folder of them) or remove it."
            )
        out.append(p)
    return out


def _store_step(ds: xr.Dataset) -> pd.Timedelta | None:
    """The store's time step, or None when it cannot tell (fewer than 2 times, no step)."""
    if TIME_DIM not in ds.dims or (ds.sizes[TIME_DIM] < 2 and "step" not in ds[TIME_DIM].attrs):
        return None
    return time_step(ds)


def check_store_matches_entry(entry: Any, ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Raise unless the store ``ds`` (opened from ``path``) has the entry's variables and step.

    Parameters
    ----------
    entry : CatalogEntry
        The catalog entry (``name``, ``variables``, ``time_step``).
    ds : xarray.Dataset
        The store, opened lazily (only its time coordinate is read).
    path : str or path
        Where the store is, for the message.

    Raises
    ------
    CatalogError
        Variables the entry lists are missing from the store, or the store's time step
        differs from the entry's.
    """
    missing = [v for v in entry.variables if v not in ds.data_vars]
    if missing:
        raise CatalogError(
            f"catalog entry {entry.name!r} lists variables {missing} that the store {path} "
            f"does not have (it has {sorted(map(str, ds.data_vars))}); rebuild the store "
            f"(`stgeo catalog build {entry.name}`) or fix the entry's 'variables'"
        )
    try:
        step = _store_step(ds)
    except DataValidationError as err:
        raise CatalogError(
            f"catalog entry {entry.name!r}: the time axis of the store {path} is unusable: {err}"
        ) from None
    if step is None or str(entry.time_step).strip().lower() in ("per-event", "varies"):
        return
    promised = pd.Timedelta(entry.time_step)
    if step != promised:
        raise CatalogError(
            f"catalog entry {entry.name!r} promises a time step of {entry.time_step}, the "
            f"store {path} has {freq_string(step)}; rebuild the store "
            f"(`stgeo catalog build {entry.name}`) or fix the entry's 'time_step'"
        )

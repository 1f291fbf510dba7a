"""Zarr stores: lazy opening by catalog name or path, atomic and resumable writing.

A store written by stgeo is built in a hidden staging folder next to its destination
(``.NAME.partial``) and renamed into place only when complete, after a completion flag
(``stgeo_complete``) is written into its root attributes. An interrupted write therefore
never leaves a store at the destination; re-running the same write either starts over
(default) or, with :class:`StoreBuilder`, resumes the regions not yet written.

Examples
--------
>>> import tempfile, os, stgeo
>>> ds = stgeo.testing.storm_cells(n_times=4, shape=(16, 16), seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "storms.zarr")
>>> stgeo.to_zarr(ds, path)
'...storms.zarr'
>>> stgeo.open_dataset(path).rain_rate.chunks is not None
True
"""

from __future__ import annotations

import json
import os
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..conventions import as_dataset
from ..errors import (
    CorruptStoreError,
    DataValidationError,
    IncompleteStoreError,
    PathNotFoundError,
    StgeoTypeError,
)
from .integrity import (
    INTEGRITY_ATTR,
    check_on_open,
    checked_open,
    checksum_encoding,
    metadata_problems,
)
from .integrity import integrity_record as _integrity_record
from .integrity import missing_chunks as find_missing_chunks
from .safety import acquire_writer, check_output, clear_staging, replace_path, writer_lock

__all__ = ["StoreBuilder", "open_data", "open_dataset", "to_zarr"]

COMPLETE_ATTR = "stgeo_complete"
#: encoding key recording where an opened variable lives: (store path, array name); lets the
#: window reader fetch frames straight from Zarr when the variable is used unmodified
SOURCE_KEY = "stgeo_source"


def _staging(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _progress(path: Path) -> Path:
    return path.with_name(f".{path.name}.progress.json")


def _set_complete(path: Path) -> None:
    """Record the chunks written (see :mod:`stgeo.data.integrity`), flag completion, then
    consolidate the metadata, so that a plain ``xarray.open_zarr(path)`` (or any Zarr reader)
    opens the finished store in one metadata read and without a warning."""
    import zarr

    root = zarr.open_group(str(path), mode="r+")
    root.attrs.update({INTEGRITY_ATTR: _integrity_record(path), COMPLETE_ATTR: True})
    with warnings.catch_warnings():  # zarr notes that format 3 has no consolidation spec yet
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(str(path))


def _start_staging(staging: Path) -> None:
    """Create the staging store with its marker (``stgeo_complete: false``) before anything
    else, so that a write failing at any later point leaves a folder stgeo knows as its own
    (cleared by the next write) and that never opens as a complete store."""
    import zarr

    zarr.open_group(str(staging), mode="w", zarr_format=3, attributes={COMPLETE_ATTR: False})


def _attr_storable(value: Any) -> bool:
    """Whether a Zarr store can hold the attribute ``value`` (JSON, after xarray turns
    numpy arrays and scalars into lists and numbers)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_attrs(ds: xr.Dataset) -> None:
    """Refuse attributes a Zarr store cannot hold (a Timestamp, a set, ...) before any
    work, naming the attribute and its variable."""
    owners: list[tuple[str, str, Mapping[Any, Any]]] = [("the dataset", "ds", ds.attrs)]
    for name, var in ds.variables.items():
        what = "coordinate" if name in ds.coords else "variable"
        owners.append((f"{what} {str(name)!r}", f"ds[{str(name)!r}]", var.attrs))
    for owner, ref, attrs in owners:
        for key, value in attrs.items():
            if not isinstance(key, str):
                raise DataValidationError(
                    f"the attribute name {key!r} of {owner} is not a string; Zarr stores "
                    f"need string names: rename it, e.g. {ref}.attrs[{str(key)!r}] = "
                    f"{ref}.attrs.pop({key!r})"
                )
            if not _attr_storable(value):
                raise DataValidationError(
                    f"attrs[{key!r}] of {owner} is a {type(value).__name__} ({value!r}), which a "
                    "Zarr store cannot hold: attribute values must be strings, numbers, "
                    "booleans, None, or lists and dicts of them. Convert it first, e.g. "
                    f"{ref}.attrs[{key!r}] = str({ref}.attrs[{key!r}])"
                )


def _replace(staging: Path, dest: Path) -> None:
    """Move the finished ``staging`` store to ``dest``, replacing only an old stgeo store."""
    replace_path(staging, dest, "store")


def _portable_strings(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width numpy strings have no Zarr v3 spec yet; store them as variable-length."""
    fixed = [k for k, v in ds.variables.items() if v.dtype.kind == "U"]
    if not fixed:
        return ds
    return ds.assign_coords({k: ds[k].astype(object) for k in fixed if k in ds.coords}).assign(
        {k: ds[k].astype(object) for k in fixed if k in ds.data_vars}
    )


def _checked_chunks(chunks: Any, ds: xr.Dataset) -> Mapping[str, int] | None:
    """``chunks`` as given, after checking it names dims of ``ds`` with positive sizes."""
    if chunks is None:
        return None
    if not isinstance(chunks, Mapping):
        raise StgeoTypeError(f"chunks must be a mapping such as {{'time': 8}}, got {chunks!r}")
    unknown = [d for d in chunks if d not in ds.dims]
    if unknown:
        raise DataValidationError(
            f"chunks names dims {unknown} that the data do not have; its dims are "
            f"{list(ds.dims)} (e.g. chunks={{'time': 8}})"
        )
    bad = {
        d: c
        for d, c in chunks.items()
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1
    }
    if bad:
        raise DataValidationError(f"chunk sizes must be integers >= 1, got {bad}")
    return chunks


def _make_parent(dest: Path) -> None:
    """Create the output's folder, or say why it cannot be created."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataValidationError(
            f"cannot write {dest}: its folder {dest.parent} cannot be created "
            f"({err.strerror or err}); choose a writable location"
        ) from None


def _encoding_for(ds: xr.Dataset, chunks: Mapping[str, int] | None) -> dict[str, Any]:
    enc: dict[str, Any] = {}
    for name, var in ds.variables.items():
        e: dict[str, Any] = {}
        # drop stale encodings from the source (netCDF/zarr v2 compressors, old chunks)
        for key in (
            "compressor",
            "filters",
            "chunks",
            "preferred_chunks",
            "compressors",
            "shards",
            "serializer",
            SOURCE_KEY,
            "stgeo_masked",
        ):
            var.encoding.pop(key, None)
        if chunks and name not in ds.coords:
            sizes = zip(var.dims, var.shape, strict=True)
            e["chunks"] = tuple(min(chunks.get(d, n), n) for d, n in sizes)
        e.update(checksum_encoding())  # every chunk checksummed (CRC-32C)
        enc[name] = e
    return enc


def to_zarr(
    ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    chunks: Mapping[str, int] | None = None,
    overwrite: bool = False,
    compute: bool = True,
) -> str:
    """Write ``ds`` to a Zarr store atomically.

    The store is written to a staging folder and moved to ``path`` only when complete.
    An interrupted call leaves ``path`` as it was (absent, or the previous complete store);
    calling again writes cleanly.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        Data to write; dask-backed data are written chunk by chunk, never loaded whole.
    path : str or path
        Destination store folder.
    chunks : mapping, optional
        Zarr chunk sizes per dim (e.g. ``{"time": 16}``); the data are rechunked to match.
    overwrite : bool
        Replace an existing store that stgeo wrote at ``path`` (atomically). Default False:
        an existing store raises :class:`~stgeo.errors.OutputExistsError`. Whatever this
        says, a folder or file stgeo did not write is never replaced (see
        :mod:`stgeo.data.safety`), nor the store ``ds`` was opened from.
    compute : bool
        Passed to xarray; must be True for the atomic guarantee.

    Returns
    -------
    str
        The store path.

    Raises
    ------
    DataValidationError
        An attribute a Zarr store cannot hold (a Timestamp, a set, ...): the message names
        it; nothing is written.
    OutputExistsError
        ``path`` holds something stgeo did not write, or a store and ``overwrite`` is False
        (or one holding files stgeo did not write: they are named).
    OutputOverlapsInputError
        ``path`` is (or contains, or lies inside) the store ``ds`` was opened from.

    Notes
    -----
    Every chunk is written (empty ones too) with a CRC-32C checksum, and the store records
    how many chunk files each array has: :func:`stgeo.open_dataset` refuses a store with
    missing chunks and reads name any damaged chunk; :func:`stgeo.verify` checks them all.

    Examples
    --------
    >>> import tempfile, os, stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=4, shape=(16, 16))
    >>> p = stgeo.to_zarr(ds, os.path.join(tempfile.mkdtemp(), "a.zarr"), chunks={"time": 2})
    >>> stgeo.open_dataset(p).rain_rate.data.chunksize[0]
    2
    """
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name if ds.name is not None else "data")
    if not isinstance(ds, xr.Dataset):
        raise StgeoTypeError(f"to_zarr expects an xarray Dataset or DataArray, got {type(ds)}")
    if not compute:
        raise StgeoTypeError("to_zarr(compute=False) would break atomicity; use StoreBuilder")
    _check_attrs(ds)
    dest = check_output(path, "store", inputs=[ds], overwrite=overwrite)
    chunks = _checked_chunks(chunks, ds)
    _make_parent(dest)
    with writer_lock(dest):
        # again: another process may have published here while this one waited
        check_output(dest, "store", overwrite=overwrite)
        staging = _staging(dest)
        clear_staging(staging, "store")
        ds = _portable_strings(ds.copy())
        if chunks:
            ds = ds.chunk({d: c for d, c in chunks.items() if d in ds.dims})
        ds.attrs[COMPLETE_ATTR] = False
        encoding = _encoding_for(ds, chunks)
        _start_staging(staging)
        ds.to_zarr(
            staging, mode="a", encoding=encoding, consolidated=False, write_empty_chunks=True
        )
        _set_complete(staging)
        _replace(staging, dest)
    return str(dest)


class StoreBuilder:
    """Build a large store region by region, resumably, and publish it atomically.

    Parameters
    ----------
    path : str or path
        Final store location.
    template : xarray.Dataset
        A dataset with the final shape, dtypes, coords, attrs (dask-backed; its data
        are not computed). Its metadata and the variables without ``dim`` (lat/lon, crs,
        ...) are written at construction; variables and coordinates along ``dim`` are
        written by :meth:`write_region`, so each region must carry them.
    dim : str
        The dimension along which regions are written (default ``"time"``).
    chunks : mapping, optional
        Zarr chunk sizes.
    resume : bool
        Continue an interrupted build of the same template (same dims, shape, variables,
        attributes and coordinates along ``dim``); otherwise start over.
    overwrite : bool
        Replace an existing store stgeo wrote at ``path`` on :meth:`commit`. Default
        False: an existing store raises :class:`~stgeo.errors.OutputExistsError` here,
        before any work. A folder stgeo did not write is never replaced.
    inputs : sequence, optional
        The inputs of the build (paths, stores, datasets opened from stores): ``path``
        may not equal, contain or lie inside any of them.

    Examples
    --------
    >>> import tempfile, os, stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=6, shape=(8, 8))
    >>> b = StoreBuilder(os.path.join(tempfile.mkdtemp(), "b.zarr"), ds.chunk({"time": 3}))
    >>> for i in range(0, 6, 3):
    ...     if not b.is_done(i):
    ...         b.write_region(ds.isel(time=slice(i, i + 3)), start=i)
    >>> b.commit()
    '...b.zarr'
    """

    def __init__(
        self,
        path: str | os.PathLike,
        template: xr.Dataset,
        *,
        dim: str = "time",
        chunks: Mapping[str, int] | None = None,
        resume: bool = True,
        overwrite: bool = False,
        inputs: Any = (),
    ) -> None:
        _check_attrs(template)
        self.path = check_output(path, "store", inputs=[template, *inputs], overwrite=overwrite)
        chunks = _checked_chunks(chunks, template)
        self.overwrite = overwrite
        self.dim = dim
        self.staging = _staging(self.path)
        _make_parent(self.path)
        self.progress = _progress(self.path)
        # one writer per store: held until commit (or until this builder is gone)
        self._release = acquire_writer(self.path)
        weakref.finalize(self, self._release)
        try:
            check_output(self.path, "store", overwrite=overwrite)  # as it is after any wait
            tpl = _portable_strings(template.copy())
            if chunks:
                tpl = tpl.chunk({d: c for d, c in chunks.items() if d in tpl.dims})
            tpl.attrs[COMPLETE_ATTR] = False
            signature = _signature(tpl, dim)
            prog = self.progress
            if resume and prog.exists() and self.staging.exists():
                state = json.loads(prog.read_text())
                if state.get("signature") == signature:
                    self._state = state
                    return
            clear_staging(self.staging, "store")
            _start_staging(self.staging)
            # metadata and the coordinates that do not depend on the region dim, not the data
            tpl.to_zarr(
                self.staging,
                mode="a",
                compute=False,
                encoding=_encoding_for(tpl, chunks),
                consolidated=False,
            )
            # variables without the region dim (lat/lon, crs, ...) are written now, once
            static = [v for v in tpl.variables if dim not in tpl[v].dims and v not in tpl.dims]
            if static:
                part = tpl[static]
                part.attrs = dict(tpl.attrs)
                part.to_zarr(self.staging, mode="a", consolidated=False, write_empty_chunks=True)
            self._state = {"signature": signature, "done": []}
            self._save()
        except BaseException:  # a builder that never started holds no lock
            self._release()
            raise

    def _save(self) -> None:
        tmp = self.progress.with_name(self.progress.name + ".tmp")
        tmp.write_text(json.dumps(self._state))
        os.replace(tmp, self.progress)

    def is_done(self, start: int) -> bool:
        """Whether the region starting at index ``start`` was already written."""
        return int(start) in set(self._state["done"])

    def write_region(self, part: xr.Dataset, *, start: int) -> None:
        """Write ``part`` (a slice along ``dim`` beginning at ``start``) and record it."""
        n = part.sizes[self.dim]
        keep = [v for v in part.variables if self.dim in part[v].dims]
        sub = part[[v for v in keep if v in part.data_vars]]
        sub = sub.drop_vars([c for c in sub.coords if self.dim not in sub[c].dims])
        sub.attrs = {}
        sub.to_zarr(
            self.staging,
            region={self.dim: slice(start, start + n)},
            consolidated=False,
            write_empty_chunks=True,
        )
        self.mark_done(start)

    def region_writer(self, part: xr.Dataset, *, start: int) -> Any:
        """A Dask ``Delayed`` writing the data variables of ``part`` at ``start`` when computed
        (by whichever scheduler, e.g. on the workers of a cluster); call :meth:`mark_done`
        once it ran. Regions must cover whole Zarr chunks. Coordinates are left out (so that
        concurrent writes never share a chunk): write them with :meth:`write_coordinates`."""
        n = part.sizes[self.dim]
        sub = part[[v for v in part.data_vars if self.dim in part[v].dims]]
        # coordinates come from the template (written with it): concurrent region writes
        # never share a chunk
        sub = sub.drop_vars(list(sub.coords))
        sub.attrs = {}
        return sub.to_zarr(
            self.staging,
            region={self.dim: slice(start, start + n)},
            consolidated=False,
            write_empty_chunks=True,
            compute=False,
        )

    def write_coordinates(self, ds: xr.Dataset) -> None:
        """Write the coordinates along ``dim`` of ``ds`` (which covers the whole ``dim``), e.g.
        before regions written by :meth:`region_writer`, which leaves coordinates out."""
        names = [c for c in ds.coords if self.dim in ds[c].dims and c not in ds.indexes]
        if not names:
            return
        sub = ds.reset_coords()[names].compute()
        sub = sub.drop_vars([c for c in sub.coords if self.dim not in sub[c].dims])
        sub.attrs = {}
        sub.to_zarr(
            self.staging,
            region={self.dim: slice(0, ds.sizes[self.dim])},
            consolidated=False,
            write_empty_chunks=True,
        )

    def mark_done(self, start: int) -> None:
        """Record that the region starting at ``start`` is written (a resumed build skips it)."""
        if int(start) not in self._state["done"]:
            self._state["done"].append(int(start))
        self._save()

    def commit(self) -> str:
        """Mark the store complete and move it into place; return its path."""
        check_output(self.path, "store", overwrite=self.overwrite)
        _set_complete(self.staging)
        _replace(self.staging, self.path)
        self.progress.unlink(missing_ok=True)
        self._release()
        return str(self.path)


def _signature(tpl: xr.Dataset, dim: str) -> dict[str, Any]:
    """What a resumed build must share with the interrupted one: sizes, variables,
    attributes and the coordinate values along ``dim``."""
    import dask.base

    coords = [tpl[c].values for c in tpl.coords if dim in tpl[c].dims and tpl[c].ndim == 1]
    return {
        "dims": {str(k): int(v) for k, v in tpl.sizes.items()},
        "vars": sorted(str(v) for v in tpl.data_vars),
        "attrs": dask.base.tokenize(json.dumps(tpl.attrs, sort_keys=True, default=str)),
        "coords": dask.base.tokenize(*coords),
    }


def _open_checked(path: Path, chunks: Any, missing_chunks: str, **kwargs: Any) -> xr.Dataset:
    """Open the store at ``path``: reads that fail name their chunk file; the chunk files are
    checked against the store's record (missing ones raise, or read as NaN)."""
    gone = find_missing_chunks(path)  # reads the metadata first: a damaged zarr.json is named
    edited = metadata_problems(path)
    if edited:
        raise CorruptStoreError(
            f"{path} is damaged: {edited[0]}"
            + (f" (and {len(edited) - 1} more problem(s))" if len(edited) > 1 else "")
            + ". Rebuild it with the command that wrote it, or restore it from a backup; "
            f"`stgeo verify {path}` lists every problem."
        )
    if isinstance(chunks, dict):
        ds = checked_open(path, chunks, **kwargs)
    else:
        ds = xr.open_zarr(path, chunks=chunks, consolidated=False, **kwargs)
    return check_on_open(path, ds, missing_chunks, gone)


def _open_path(path: Path, chunks: Any, missing_chunks: str = "raise", **kwargs: Any) -> xr.Dataset:
    if not path.exists():
        if _staging(path).exists():
            raise IncompleteStoreError(
                f"{path} was never completed: an interrupted write left {_staging(path)}. "
                "Re-run the command that writes it (it resumes or starts over)."
            )
        raise PathNotFoundError(
            f"no store at {path}; give an existing Zarr path or a catalog name "
            "(`stgeo catalog list` shows them)"
        )
    ds = _open_checked(path, chunks, missing_chunks, **kwargs)
    if ds.attrs.get(COMPLETE_ATTR) is False:
        raise IncompleteStoreError(
            f"{path} is an incomplete stgeo store (its build was interrupted); re-run the "
            "command that writes it"
        )
    ds.attrs.pop(COMPLETE_ATTR, None)
    ds.attrs.pop(INTEGRITY_ATTR, None)
    for name, var in ds.data_vars.items():
        if var.encoding.get("stgeo_masked") is None:
            var.encoding[SOURCE_KEY] = (str(path), str(name))
    return ds


def open_dataset(
    name_or_path: str | os.PathLike,
    *,
    chunks: Any = "auto",
    split: str | None = None,
    missing_chunks: str = "raise",
    **kwargs: Any,
) -> xr.Dataset:
    """Open a dataset lazily (dask-backed, chunk-aware) by catalog name or store path.

    Parameters
    ----------
    name_or_path : str or path
        A catalog entry name (see ``stgeo catalog list``) or a path to a Zarr store.
    chunks : "auto", dict or None
        Dask chunks; ``"auto"`` follows the store's own chunks.
    split : {"train", "val", "test"}, optional
        For catalog entries with splits: return only that time range.
    missing_chunks : {"raise", "mask"}
        What to do when chunk files recorded by the store are gone (checked by file name,
        no data read): ``"raise"`` a :class:`~stgeo.errors.CorruptStoreError` naming them
        (default), or ``"mask"``: those chunks read as NaN, with a warning listing them.
    **kwargs
        Passed to :func:`xarray.open_zarr`.

    Returns
    -------
    xarray.Dataset
        Lazy dataset; nothing is read until values are needed.

    Raises
    ------
    IncompleteStoreError
        The store's write was interrupted.
    CorruptStoreError
        Chunk files are missing (the message names them), or the metadata were edited
        (an array's ``zarr.json``, the record of the chunks written); reading a damaged
        chunk later raises it too, naming the chunk file.
    PathNotFoundError
        No store at the path (or none built yet for the catalog entry); a
        ``FileNotFoundError``.
    UnknownNameError
        ``name_or_path`` is neither a path nor a catalog name.

    Examples
    --------
    >>> import tempfile, os, stgeo
    >>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=3, shape=(8, 8)),
    ...                   os.path.join(tempfile.mkdtemp(), "s.zarr"))
    >>> ds = stgeo.open_dataset(p)
    >>> ds.rain_rate.dims
    ('time', 'y', 'x')
    """
    from .catalog import get_entry
    from .catalog_checks import check_store_matches_entry

    if chunks == "auto":
        chunks = {}
    p = Path(name_or_path)
    is_path = (
        isinstance(name_or_path, os.PathLike)
        or p.exists()
        or _staging(p).exists()
        or (os.sep in str(name_or_path) or str(name_or_path).endswith(".zarr"))
    )
    if is_path:
        if split is not None:
            raise StgeoTypeError("split= needs a catalog name, not a path")
        return _open_path(p, chunks, missing_chunks, **kwargs)
    entry = get_entry(str(name_or_path))
    path = entry.store_path()
    if not path.exists() and not _staging(path).exists():
        raise PathNotFoundError(
            f"catalog entry {entry.name!r} has no store at {path} yet; build it with "
            f"`stgeo catalog build {entry.name}` (or stgeo.datasets.build_from_catalog"
            f"({entry.name!r}) in Python)"
        )
    ds = _open_path(path, chunks, missing_chunks, **kwargs)
    check_store_matches_entry(entry, ds, path)
    ds.attrs.setdefault("stgeo_catalog", entry.name)
    if split is not None:
        ds = entry.select_split(ds, split)
    return ds


def open_data(data: xr.Dataset | xr.DataArray | str | os.PathLike) -> xr.Dataset:
    """A Dataset from what a workflow accepts as data: a Dataset, a DataArray, a catalog
    name or a Zarr store path (opened lazily with :func:`open_dataset`).

    Raises
    ------
    StgeoTypeError
        For any other type.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import open_data
    >>> ds = stgeo.testing.storm_cells(n_times=4, shape=(8, 8), seed=0)
    >>> open_data(ds.rain_rate).rain_rate.dims
    ('time', 'y', 'x')
    """
    if isinstance(data, (str, os.PathLike)):
        return open_dataset(data)
    if isinstance(data, (xr.Dataset, xr.DataArray)):
        return as_dataset(data)
    raise StgeoTypeError(
        "data must be an xarray Dataset/DataArray, a catalog name or a store path, "
        f"got {type(data).__name__}"
    )

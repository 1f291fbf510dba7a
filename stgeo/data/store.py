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
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from ..conventions import as_dataset
from ..errors import IncompleteStoreError, StgeoTypeError

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
    import zarr

    root = zarr.open_group(str(path), mode="r+")
    root.attrs[COMPLETE_ATTR] = True


def _replace(staging: Path, dest: Path) -> None:
    """Move the finished ``staging`` store to ``dest``, replacing an old store safely."""
    trash = None
    if dest.exists():
        trash = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, trash)
    os.replace(staging, dest)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _portable_strings(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width numpy strings have no Zarr v3 spec yet; store them as variable-length."""
    fixed = [k for k, v in ds.variables.items() if v.dtype.kind == "U"]
    if not fixed:
        return ds
    return ds.assign_coords({k: ds[k].astype(object) for k in fixed if k in ds.coords}).assign(
        {k: ds[k].astype(object) for k in fixed if k in ds.data_vars}
    )


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
        ):
            var.encoding.pop(key, None)
        if chunks and name not in ds.coords:
            sizes = zip(var.dims, var.shape, strict=True)
            e["chunks"] = tuple(min(chunks.get(d, n), n) for d, n in sizes)
        if e:
            enc[name] = e
    return enc


def to_zarr(
    ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    chunks: Mapping[str, int] | None = None,
    overwrite: bool = True,
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
        Replace an existing store at ``path`` (atomically). If False and ``path`` exists,
        raise ``FileExistsError``.
    compute : bool
        Passed to xarray; must be True for the atomic guarantee.

    Returns
    -------
    str
        The store path.

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
    dest = Path(path)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging(dest)
    if staging.exists():
        shutil.rmtree(staging)
    ds = _portable_strings(ds.copy())
    if chunks:
        ds = ds.chunk({d: c for d, c in chunks.items() if d in ds.dims})
    ds.attrs[COMPLETE_ATTR] = False
    ds.to_zarr(staging, mode="w", encoding=_encoding_for(ds, chunks), consolidated=False)
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
        Continue an interrupted build of the same template (same dims/shape/variables);
        otherwise start over.

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
    ) -> None:
        self.path = Path(path)
        self.dim = dim
        self.staging = _staging(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tpl = _portable_strings(template.copy())
        if chunks:
            tpl = tpl.chunk({d: c for d, c in chunks.items() if d in tpl.dims})
        tpl.attrs[COMPLETE_ATTR] = False
        signature = {
            "dims": {str(k): int(v) for k, v in tpl.sizes.items()},
            "vars": sorted(str(v) for v in tpl.data_vars),
        }
        self.progress = _progress(self.path)
        prog = self.progress
        if resume and prog.exists() and self.staging.exists():
            state = json.loads(prog.read_text())
            if state.get("signature") == signature:
                self._state = state
                return
        if self.staging.exists():
            shutil.rmtree(self.staging)
        # metadata and the coordinates that do not depend on the region dim, not the data
        tpl.to_zarr(
            self.staging,
            mode="w",
            compute=False,
            encoding=_encoding_for(tpl, chunks),
            consolidated=False,
        )
        # variables without the region dim (lat/lon, crs, ...) are written now, once
        static = [v for v in tpl.variables if dim not in tpl[v].dims and v not in tpl.dims]
        if static:
            part = tpl[static]
            part.attrs = dict(tpl.attrs)
            part.to_zarr(self.staging, mode="a", consolidated=False)
        self._state = {"signature": signature, "done": []}
        self._save()

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
        sub.to_zarr(self.staging, region={self.dim: slice(start, start + n)}, consolidated=False)
        self._state["done"].append(int(start))
        self._save()

    def commit(self) -> str:
        """Mark the store complete and move it into place; return its path."""
        _set_complete(self.staging)
        _replace(self.staging, self.path)
        self.progress.unlink(missing_ok=True)
        return str(self.path)


def _open_path(path: Path, chunks: Any, **kwargs: Any) -> xr.Dataset:
    if not path.exists():
        if _staging(path).exists():
            raise IncompleteStoreError(
                f"{path} was never completed: an interrupted write left {_staging(path)}. "
                "Re-run the command that writes it (it resumes or starts over)."
            )
        raise FileNotFoundError(
            f"no store at {path}; give an existing Zarr path or a catalog name "
            "(`stgeo catalog list` shows them)"
        )
    ds = xr.open_zarr(path, chunks=chunks, consolidated=False, **kwargs)
    if ds.attrs.get(COMPLETE_ATTR) is False:
        raise IncompleteStoreError(
            f"{path} is an incomplete stgeo store (its build was interrupted); re-run the "
            "command that writes it"
        )
    ds.attrs.pop(COMPLETE_ATTR, None)
    for name, var in ds.data_vars.items():
        var.encoding[SOURCE_KEY] = (str(path), str(name))
    return ds


def open_dataset(
    name_or_path: str | os.PathLike,
    *,
    chunks: Any = "auto",
    split: str | None = None,
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
        return _open_path(p, chunks, **kwargs)
    entry = get_entry(str(name_or_path))
    path = entry.store_path()
    if not path.exists() and not _staging(path).exists():
        raise FileNotFoundError(
            f"catalog entry {entry.name!r} has no store at {path} yet; build it with "
            f"`stgeo catalog build {entry.name}` (or stgeo.datasets.build_from_catalog"
            f"({entry.name!r}) in Python)"
        )
    ds = _open_path(path, chunks, **kwargs)
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

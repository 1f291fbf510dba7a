"""Store integrity: chunk checksums, a record of the chunks written, and :func:`verify`.

Every array of a store stgeo writes carries a CRC-32C checksum per chunk (Zarr v3's
``crc32c`` codec, after compression) and every chunk is written, empty ones included. When
the store is complete, its root attributes record how many chunk files each array has
(``stgeo_integrity``). Damage is then found at three levels:

* **on open** (:func:`stgeo.open_dataset`, cheap: file names only, no data read): a chunk
  file missing (deleted, lost in a copy) raises :class:`~stgeo.errors.CorruptStoreError`
  naming the variable, the chunk and its file; with ``missing_chunks="mask"`` those chunks
  read as NaN instead, with a warning listing them;
* **on read**: a chunk whose bytes were altered or truncated fails its checksum (or its
  decompression) and raises :class:`~stgeo.errors.CorruptStoreError` naming the chunk file
  (never a bare ``RuntimeError`` from the codec);
* **on demand**: :func:`verify` (``stgeo verify STORE``) reads every chunk and reports all
  missing and damaged ones.

Stores written by an older stgeo (no checksums, no record) still open; :func:`verify` says so.

Examples
--------
>>> import os, tempfile, stgeo
>>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=4, shape=(8, 8)),
...                   os.path.join(tempfile.mkdtemp(), "s.zarr"), chunks={"time": 2})
>>> report = stgeo.verify(p)
>>> report.ok, report.checksummed
(True, True)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    CorruptStoreError,
    DataValidationError,
    PathNotFoundError,
    StgeoError,
    StgeoWarning,
    UnknownNameError,
)

__all__ = ["ChunkProblem", "VerifyReport", "verify"]

#: root attribute recording the integrity scheme and the chunk files of each array
INTEGRITY_ATTR = "stgeo_integrity"
INTEGRITY_VERSION = 1
_DAMAGED_HINT = (
    "The store is damaged (a chunk file was deleted, truncated or altered after it was "
    "written): rebuild it with the command that wrote it, or restore it from a backup. "
    "`stgeo verify {path}` lists every damaged chunk."
)


def checksum_encoding() -> dict[str, Any]:
    """The Zarr encoding of every array stgeo writes: Zstandard, then a CRC-32C checksum."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return {"compressors": (ZstdCodec(level=0), Crc32cCodec())}


# -- reading array metadata without zarr (cheap, synchronous) --------------------------------
@dataclass(frozen=True)
class _ArrayLayout:
    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    separator: str
    v2_keys: bool
    checksummed: bool
    dims: tuple[str, ...] | None = None

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(
            math.ceil(s / c) if c else 0 for s, c in zip(self.shape, self.chunks, strict=True)
        )

    @property
    def n_chunks(self) -> int:
        return int(np.prod(self.grid, dtype=np.int64)) if self.shape else 1

    def key(self, index: Sequence[int]) -> str:
        """The store key of the chunk at grid position ``index``, relative to the array."""
        if self.v2_keys:
            return self.separator.join(str(i) for i in index) if index else "0"
        return self.separator.join(["c", *(str(i) for i in index)])

    def keys(self) -> Iterator[tuple[tuple[int, ...], str]]:
        for index in product(*(range(g) for g in self.grid)):
            yield index, self.key(index)


def _layout(root: Path, name: str, doc: dict[str, Any]) -> _ArrayLayout | None:
    try:
        shape = tuple(int(s) for s in doc["shape"])
        chunks = tuple(int(c) for c in doc["chunk_grid"]["configuration"]["chunk_shape"])
        enc = doc.get("chunk_key_encoding", {})
    except (KeyError, TypeError, ValueError):
        return None
    sep = enc.get("configuration", {}).get("separator", "/" if enc.get("name") != "v2" else ".")
    codecs = [c.get("name") if isinstance(c, dict) else c for c in doc.get("codecs", [])]
    names = doc.get("dimension_names")
    dims = tuple(str(d) for d in names) if isinstance(names, list) else None
    return _ArrayLayout(name, shape, chunks, sep, enc.get("name") == "v2", "crc32c" in codecs, dims)


def _root_doc(root: Path) -> dict[str, Any]:
    meta = root / "zarr.json"
    if not meta.is_file():
        if (root / ".zgroup").is_file():
            return {"attributes": {}, "zarr_format": 2}
        raise DataValidationError(
            f"{root} is not a Zarr store (no zarr.json); give the folder written by "
            "stgeo.to_zarr or a recipe"
        )
    try:
        doc = json.loads(meta.read_text())
    except ValueError as err:
        raise CorruptStoreError(f"{meta} is not valid JSON ({err}); the store is damaged") from None
    if not isinstance(doc, dict):
        raise CorruptStoreError(f"{meta} is not a JSON object; the store is damaged")
    return doc


def _layouts(root: Path) -> list[_ArrayLayout]:
    """Every array of the (flat) store at ``root``, from its ``zarr.json``."""
    out = []
    for child in sorted(root.iterdir()):
        meta = child / "zarr.json"
        if not meta.is_file():
            continue
        try:
            doc = json.loads(meta.read_text())
        except ValueError as err:
            raise CorruptStoreError(
                f"{meta} (metadata of variable {child.name!r}) is not valid JSON ({err}); the "
                "store is damaged"
            ) from None
        if isinstance(doc, dict) and doc.get("node_type") == "array":
            lay = _layout(root, child.name, doc)
            if lay is not None:
                out.append(lay)
    return out


def _present(root: Path, lay: _ArrayLayout) -> set[str]:
    """The chunk keys of ``lay`` that exist as files."""
    base = root / lay.name
    found = set()
    for dirpath, _, files in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        for f in files:
            if f in ("zarr.json", ".zarray", ".zattrs"):
                continue
            key = f if rel == "." else f"{rel}/{f}"
            found.add(key.replace(os.sep, "/"))
    return found


# -- the record written at completion ----------------------------------------------------------
def integrity_record(root: str | os.PathLike) -> dict[str, Any]:
    """The ``stgeo_integrity`` attribute of the finished store at ``root``: scheme, version
    and the number of chunk files of each array (counted now, when the store is complete)."""
    r = Path(root)
    lays = _layouts(r)
    return {
        "version": INTEGRITY_VERSION,
        "checksum": "crc32c" if lays and all(lay.checksummed for lay in lays) else None,
        "chunks": {lay.name: len(_present(r, lay)) for lay in lays},
    }


def missing_chunks(root: str | os.PathLike) -> dict[str, list[str]]:
    """Chunk keys missing from the store at ``root`` compared with its record (per array).

    Only names of files are listed, no data read; stores without a record (written by an
    older stgeo) report nothing.
    """
    r = Path(root)
    record = _root_doc(r).get("attributes", {}).get(INTEGRITY_ATTR)
    if not isinstance(record, dict):
        return {}
    expected = record.get("chunks", {})
    out: dict[str, list[str]] = {}
    lays = {lay.name: lay for lay in _layouts(r)}
    for name, count in expected.items():
        lay = lays.get(name)
        if lay is None:
            out[name] = ["zarr.json"]
            continue
        have = _present(r, lay)
        if len(have) >= int(count):
            continue
        gone = [k for _, k in lay.keys() if k not in have]
        out[name] = gone or [f"{int(count) - len(have)} of {count} chunk files"]
    return out


#: the fields of an array's metadata that say where its chunks are and what they hold
_LAYOUT_FIELDS = ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "codecs")


def metadata_problems(root: str | os.PathLike) -> list[ChunkProblem]:
    """Metadata of the store at ``root`` that disagree with what was written (cheap: the
    ``zarr.json`` files only, no data read).

    * an array's ``zarr.json`` that differs from the copy consolidated into the root
      ``zarr.json`` when the store was completed (its ``shape`` edited, say);
    * arrays that give one dimension different lengths;
    * a store stgeo completed, with checksummed arrays, whose record of the chunks written
      (``stgeo_integrity``) was removed: a deleted chunk would then read as fill values.
    """
    r = Path(root)
    doc = _root_doc(r)
    lays = _layouts(r)
    out: list[ChunkProblem] = []
    consolidated = doc.get("consolidated_metadata")
    written = consolidated.get("metadata", {}) if isinstance(consolidated, dict) else {}
    for lay in lays:
        meta = r / lay.name / "zarr.json"
        before = written.get(lay.name) if isinstance(written, dict) else None
        if not isinstance(before, dict):
            continue
        now = json.loads(meta.read_text())
        edited = [k for k in _LAYOUT_FIELDS if k in before and now.get(k) != before.get(k)]
        if edited:
            was = "; ".join(f"{k} {now.get(k)}, written as {before.get(k)}" for k in edited)
            out.append(ChunkProblem(lay.name, "zarr.json", str(meta), "was edited", was))
    sizes: dict[str, dict[int, list[str]]] = {}
    for lay in lays:
        for dim, n in zip(lay.dims or (), lay.shape, strict=False):
            sizes.setdefault(dim, {}).setdefault(n, []).append(lay.name)
    for dim, by_size in sizes.items():
        if len(by_size) > 1:
            seen = "; ".join(f"{n} in {', '.join(names)}" for n, names in sorted(by_size.items()))
            out.append(
                ChunkProblem(
                    dim,
                    "(dimension)",
                    str(r),
                    "has conflicting lengths",
                    f"{seen}: an array's zarr.json was edited",
                )
            )
    attrs = doc.get("attributes", {})
    if (
        isinstance(attrs, dict)
        and attrs.get("stgeo_complete") is True
        and INTEGRITY_ATTR not in attrs
        and lays
        and all(lay.checksummed for lay in lays)
    ):
        out.append(
            ChunkProblem(
                "(store)",
                "zarr.json",
                str(r / "zarr.json"),
                f"lost its record {INTEGRITY_ATTR!r}",
                "the store was written by stgeo with checksums and the record of its chunk "
                "files, which was removed since: deleted chunks can no longer be told from "
                "empty ones",
            )
        )
    return out


def _few(items: Sequence[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def check_on_open(
    path: Path, ds: Any, missing: str, gone: dict[str, list[str]] | None = None
) -> Any:
    """The cheap check of :func:`stgeo.open_dataset`: raise on missing chunks, or mask them.

    ``gone`` is :func:`missing_chunks` of ``path`` when the caller already has it.
    """
    if missing not in ("raise", "mask"):
        raise DataValidationError(f'missing_chunks must be "raise" or "mask", got {missing!r}')
    gone = missing_chunks(path) if gone is None else gone
    if not gone:
        return ds
    maskable = {k: v for k, v in gone.items() if k in ds.data_vars and v[0].startswith("c")}
    if missing == "raise" or len(maskable) < len(gone):
        name = next(k for k in gone if k not in maskable or missing == "raise")
        keys = gone[name]
        raise CorruptStoreError(
            f"{path}: variable {name!r} is missing {len(keys)} chunk file(s): "
            f"{_few([str(path / name / k) for k in keys])} (they would read as fill values). "
            + _DAMAGED_HINT.format(path=path)
            + ' To use the rest, open it with missing_chunks="mask" (command line: '
            "--mask-missing-chunks): the missing chunks then read as NaN."
        )
    for name, keys in maskable.items():
        ds[name] = _masked(path, ds[name], keys)
    listed = "; ".join(f"{k}: {_few(v)}" for k, v in maskable.items())
    warnings.warn(
        f"{path} is missing chunk files ({listed}); they read as NaN (missing_chunks='mask')",
        StgeoWarning,
        stacklevel=4,
    )
    return ds


def _masked(path: Path, da: Any, keys: list[str]) -> Any:
    """``da`` with NaN over the chunks ``keys`` (lazily, chunk by chunk)."""
    import dask.array as dsa

    from .store import SOURCE_KEY

    lay = next(lay for lay in _layouts(path) if lay.name == da.name)
    gone = np.zeros(lay.grid, dtype=bool)
    for index, key in lay.keys():
        gone[index] = key in set(keys)
    chunks = tuple(
        tuple(min(c, s - i) for i in range(0, s, c))
        for s, c in zip(lay.shape, lay.chunks, strict=True)
    )

    def block(block_info: Any = None) -> np.ndarray:
        info = block_info[None]
        return np.full(info["chunk-shape"], gone[tuple(info["chunk-location"])])

    mask = dsa.map_blocks(block, chunks=chunks, dtype=bool, meta=np.array((), dtype=bool))
    if da.chunks is not None:
        mask = mask.rechunk(da.data.chunks)
    import xarray as xr

    out = da.where(~xr.DataArray(mask, dims=da.dims))
    # no direct Zarr reads of a masked variable: they would see the fill values
    out.encoding = {k: v for k, v in da.encoding.items() if k != SOURCE_KEY}
    out.encoding["stgeo_masked"] = True
    out.attrs = dict(da.attrs)
    return out


# -- reading: damaged chunks named --------------------------------------------------------------
class ChunkReader:
    """The dask ``getitem`` of a stored variable: reads like dask's own getter and turns any
    failure (checksum mismatch, decompression error) into a :class:`CorruptStoreError`
    naming the variable, the chunk and its file."""

    def __init__(self, path: str, name: str, chunks: tuple[int, ...], layout: Any) -> None:
        self.path = path
        self.name = name
        self.chunks = chunks
        self.layout = layout

    def __call__(self, a: Any, b: Any, asarray: bool = True, lock: Any = None) -> Any:
        from dask.array.core import getter

        try:
            return getter(a, b, asarray=asarray, lock=lock)
        except StgeoError:
            raise
        except Exception as err:
            raise CorruptStoreError(self.describe(b, err)) from err

    def describe(self, region: Any, err: BaseException) -> str:
        """The message for a failed read of ``region`` (a tuple of slices)."""
        files = [str(Path(self.path) / self.name / k) for k in self._keys(region)]
        what = f"chunk file {files[0]}" if len(files) == 1 else f"chunk files {_few(files)}"
        return (
            f"reading variable {self.name!r} of {self.path} failed at {what}: "
            f"{type(err).__name__}: {str(err).rstrip('.')}. " + _DAMAGED_HINT.format(path=self.path)
        )

    def _keys(self, region: Any) -> list[str]:
        if self.layout is None or not isinstance(region, tuple):
            return ["(unknown chunk)"]
        ranges = []
        for sl, c in zip(region, self.layout.chunks, strict=False):
            start = sl.start or 0
            stop = sl.stop if sl.stop is not None else start + c
            ranges.append(range(start // c, max(start // c + 1, math.ceil(stop / c))))
        return [self.layout.key(ix) for ix in product(*ranges)]


def checked_open(path: Path, chunks: dict[str, Any], **kwargs: Any) -> Any:
    """``xarray.open_zarr(path, chunks=chunks)`` whose reads name the chunk of any failure."""
    import dask.base
    import xarray as xr

    ds = xr.open_zarr(path, chunks=None, consolidated=False, **kwargs)
    lays = {lay.name: lay for lay in _layouts(path)} if (path / "zarr.json").is_file() else {}
    stamp = os.stat(path / "zarr.json").st_mtime_ns if lays else 0
    new = {}
    for name, var in ds.variables.items():
        if name in ds.indexes:
            continue
        pref = var.encoding.get("preferred_chunks", {})
        spec = {d: chunks.get(d, pref.get(d, -1)) for d in var.dims}
        token = dask.base.tokenize(str(path), stamp, name, spec)
        reader = ChunkReader(str(path), str(name), tuple(spec.values()), lays.get(name))
        new[name] = var.chunk(
            spec, name=f"open_dataset-{name}-{token}", from_array_kwargs={"getitem": reader}
        )
    coords = {k: v for k, v in new.items() if k in ds.coords}
    return ds.assign_coords(coords).assign({k: v for k, v in new.items() if k not in coords})


# -- verify -------------------------------------------------------------------------------------
@dataclass
class ChunkProblem:
    """One damaged chunk: its variable, store key, file, what is wrong and the details."""

    variable: str
    key: str
    file: str
    problem: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.variable}: {self.key} {self.problem}{extra} [{self.file}]"


@dataclass
class VerifyReport:
    """The result of :func:`verify`: ``ok``, the chunks read and every problem found."""

    path: str
    checksummed: bool
    recorded: bool
    n_chunks: int = 0
    problems: list[ChunkProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete: bool = True

    @property
    def ok(self) -> bool:
        """A complete store, with no missing or damaged chunk or metadata."""
        return self.complete and not self.problems

    def __str__(self) -> str:
        lines = [f"{self.path}: {self.n_chunks} chunks read"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  DAMAGED {p}" for p in self.problems]
        if self.problems:
            lines.append(f"  {len(self.problems)} damaged or missing chunk(s) or metadata")
        if not self.complete:
            lines.append(
                "  INCOMPLETE: the store's write was interrupted or failed (it never became "
                "a complete store); re-run the command that writes it"
            )
        if self.ok:
            lines.append("  OK: every chunk present and intact")
        return "\n".join(lines)


def _check_array(root: Path, lay: _ArrayLayout, report: VerifyReport, counted: int) -> None:
    """Read every chunk of one array; record missing and undecodable chunks in ``report``."""
    import zarr

    arr = zarr.open_array(str(root / lay.name), mode="r")
    have = _present(root, lay)
    complete = counted == lay.n_chunks  # every chunk was written: a gap is a lost file
    for index, key in lay.keys():
        file = str(root / lay.name / key)
        if key not in have:
            if complete:
                report.problems.append(ChunkProblem(lay.name, key, file, "missing"))
            continue
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, lay.chunks, strict=True))
        try:
            arr[region]
        except Exception as err:
            what = "fails its checksum" if "checksum" in str(err).lower() else "is unreadable"
            report.problems.append(
                ChunkProblem(lay.name, key, file, what, f"{type(err).__name__}: {err}")
            )
        report.n_chunks += 1
    if counted > len(have) and not complete:
        report.problems.append(
            ChunkProblem(
                lay.name,
                "-",
                str(root / lay.name),
                "missing",
                f"{counted - len(have)} of the {counted} chunk files written are gone",
            )
        )


def verify(store: str | os.PathLike) -> VerifyReport:
    """Read every chunk of a Zarr store and report the missing and damaged ones.

    Checksums (CRC-32C, in the stores stgeo writes) detect altered and truncated chunks;
    the record of the chunks written detects deleted ones; the metadata consolidated at
    completion detect an edited ``zarr.json`` of an array. A store written by an older
    stgeo has neither: only chunks that cannot be decoded are found then (the report says
    so). A store whose write never finished is reported incomplete (not ``ok``).

    Parameters
    ----------
    store : str or path
        The store folder, or the name of a catalog entry (its store).

    Returns
    -------
    VerifyReport
        ``ok``, ``problems`` (variable, chunk key, file, what is wrong), ``n_chunks`` read,
        ``checksummed`` and ``notes``; ``str(report)`` is the text ``stgeo verify`` prints.

    Raises
    ------
    PathNotFoundError
        Nothing at ``store`` (a ``FileNotFoundError``), and no catalog entry of that name.
    DataValidationError
        ``store`` is not a Zarr store.

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=4, shape=(8, 8)),
    ...                   os.path.join(tempfile.mkdtemp(), "s.zarr"), chunks={"time": 2})
    >>> os.remove(os.path.join(p, "rain_rate", "c", "1", "0", "0"))
    >>> report = stgeo.verify(p)
    >>> report.ok, report.problems[0].variable, report.problems[0].key, report.problems[0].problem
    (False, 'rain_rate', 'c/1/0/0', 'missing')
    """
    root = _store_path(store)
    if not root.is_dir():
        raise DataValidationError(f"{root} is a file, not a Zarr store (a folder)")
    attrs = _root_doc(root).get("attributes", {})
    record = attrs.get(INTEGRITY_ATTR)
    recorded = isinstance(record, dict)
    lays = _layouts(root)
    report = VerifyReport(str(root), bool(lays) and all(x.checksummed for x in lays), recorded)
    report.complete = attrs.get("stgeo_complete") is not False
    report.problems.extend(metadata_problems(root))
    if not recorded and report.complete and not report.problems:
        report.notes.append(
            "no checksums and no record of the chunks written (written by an older stgeo "
            "or another tool): only undecodable chunks are detected; rewrite it with "
            "stgeo.to_zarr to protect it"
        )
    counts = record.get("chunks", {}) if recorded else {}
    for name in sorted(set(counts) - {lay.name for lay in lays}):
        report.problems.append(
            ChunkProblem(name, "zarr.json", str(root / name / "zarr.json"), "missing")
        )
    for lay in lays:
        _check_array(root, lay, report, int(counts.get(lay.name, -1)))
    return report


def _store_path(store: str | os.PathLike) -> Path:
    """The folder of ``store``: a path, or the store of the catalog entry of that name."""
    root = Path(store)
    if root.exists():
        return root
    text = os.fspath(store)
    if isinstance(store, str) and os.sep not in text and not text.endswith(".zarr"):
        from .catalog import get_entry

        try:
            entry = get_entry(text)
        except UnknownNameError:
            pass
        else:
            path = entry.store_path()
            if path.exists():
                return path
            raise PathNotFoundError(
                f"catalog entry {entry.name!r} has no store at {path} yet; build it with "
                f"`stgeo catalog build {entry.name}`"
            )
    raise PathNotFoundError(
        f"no store at {root}; give an existing Zarr store folder or a catalog name "
        "(`stgeo catalog list` shows them)"
    )

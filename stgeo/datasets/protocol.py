"""The recipe protocol: every recipe's fingerprint -> skip -> verify -> build -> publish.

A recipe only knows its format: :meth:`Recipe.inputs` finds the raw files and normalises
the options (cheap: no data read), :meth:`Recipe.build` turns the files into the canonical
dataset (or a template plus regions, for stores streamed region by region). The base class
owns the rest, identically for every recipe:

1. **fingerprint** the inputs (file names, sizes, modification times) and the normalised
   options;
2. **skip** the build when ``dest`` is a complete store of the same recipe and fingerprint
   (``overwrite=True`` forces it); any other store at ``dest`` (another event, other
   options, a store written by :func:`stgeo.to_zarr`) is replaced only with
   ``overwrite=True`` (:func:`check_rebuild`), and ``dest`` may not be, contain or lie
   inside ``source``;
3. **verify** the inputs against ``SHA256SUMS``/``FILE.md5`` (``verify=False`` skips it);
4. record the **provenance** (recipe, version, options, fingerprint, source) in the store's
   attributes;
5. **publish atomically**: :func:`stgeo.to_zarr` or :class:`stgeo.data.StoreBuilder` write a
   hidden staging store and move it into place only when complete (an interrupted streamed
   build resumes where it stopped).

Examples
--------
>>> import os, tempfile
>>> import numpy as np, pandas as pd, xarray as xr
>>> from stgeo.datasets.protocol import Recipe, RecipeInputs
>>> class Ramp(Recipe):
...     name = "ramp"
...     source_required = False
...     def inputs(self, source, *, n=4):
...         return RecipeInputs(files=[], options={"n": int(n)})
...     def build(self, inputs):
...         n = inputs.options["n"]
...         t = pd.date_range("2020-01-01", periods=n, freq="h")
...         return xr.Dataset({"v": ("time", np.arange(n, dtype="f4"))}, coords={"time": t})
>>> dest = os.path.join(tempfile.mkdtemp(), "ramp.zarr")
>>> Ramp()(None, dest, n=3) == dest
True
>>> xr.open_zarr(dest, consolidated=False).attrs["stgeo_recipe_options"]
'{"n": 3}'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..conventions import LEAD_TIME_DIM
from ..errors import DataValidationError, OutputExistsError
from .checksums import verify_checksums

__all__ = [
    "RECIPE_ATTR",
    "RECIPE_VERSION",
    "Recipe",
    "RecipeInputs",
    "RecipeOutput",
    "check_rebuild",
    "check_replaceable",
    "existing_store_matches",
    "fingerprint",
    "list_files",
    "recipe_attrs",
    "require_file",
    "time_chunk",
    "written_by_stgeo",
]

RECIPE_ATTR = "stgeo_recipe"
RECIPE_VERSION = 1


@dataclass(frozen=True)
class RecipeInputs:
    """What :meth:`Recipe.inputs` found: the store's identity, before any data is read.

    Parameters
    ----------
    files : sequence of path
        The input files: fingerprinted (name, size, mtime) and checksum-verified.
    options : mapping
        The normalised options that shape the output; recorded in the store and part of
        its fingerprint.
    root : path, optional
        Folder where ``SHA256SUMS`` files are looked for first (default: the first file's
        folder).
    plan : object, optional
        Anything the recipe's :meth:`Recipe.build` needs from this step (parsed catalog,
        sorted times, detected product, ...).
    """

    files: Sequence[Path] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    root: Path | None = None
    plan: Any = None


@dataclass
class RecipeOutput:
    """What :meth:`Recipe.build` produced; the protocol adds provenance and publishes it.

    Parameters
    ----------
    dataset : xarray.Dataset
        The canonical dataset (lazy is fine), or, with ``regions``, the template of the
        store (dask-backed data, final coords and attrs).
    chunks : mapping, optional
        Zarr chunk sizes per dim.
    regions : iterable of (int, callable), optional
        Streamed stores: ``(start, make)`` pairs; ``make()`` returns the slice along
        ``time`` beginning at ``start``. Regions written by an interrupted build are not
        made again.
    close : callable, optional
        Called once the store is published or the build failed (close files, pools).
    """

    dataset: xr.Dataset
    chunks: Mapping[str, int] | None = None
    regions: Iterable[tuple[int, Callable[[], xr.Dataset]]] | None = None
    close: Callable[[], None] | None = None


class Recipe:
    """A dataset recipe: raw provider files -> canonical Zarr store.

    Subclasses implement :meth:`inputs` and :meth:`build`; calling the recipe runs the
    protocol (see the module docstring). Register one with
    :func:`stgeo.datasets.register_recipe`.

    Attributes
    ----------
    name : str
        Registry name (also recorded in the store).
    options : mapping of str to type
        Declared keyword options and their types (:func:`stgeo.datasets.parse_options`);
        ``overwrite`` and ``verify`` are always accepted.
    description : str
        One line for ``stgeo recipe --list``.
    source_required : bool
        Whether a source must be given.
    events : mapping of str to str
        Named sources (event name -> path relative to a data root) that
        ``stgeo recipe NAME --all-events ROOT --dest-dir DIR`` converts in one go.
    """

    name: str = ""
    options: Mapping[str, Any] = {}
    description: str = ""
    source_required: bool = True
    events: Mapping[str, str] = {}

    def inputs(self, source: str | None, **options: Any) -> RecipeInputs:
        """Find the input files and normalise the options (read no data)."""
        raise NotImplementedError

    def build(self, inputs: RecipeInputs) -> xr.Dataset | RecipeOutput:
        """Read the inputs into the canonical dataset (or a template and its regions)."""
        raise NotImplementedError

    def write(self, inputs: RecipeInputs, output: RecipeOutput, dest: str) -> str:
        """Publish ``output`` at ``dest`` atomically (override to translate read errors)."""
        return publish(output, dest)

    def __call__(
        self,
        source: str | None,
        dest: str,
        *,
        overwrite: bool = False,
        verify: bool = True,
        **options: Any,
    ) -> str:
        """Run the protocol: fingerprint, skip, verify, build, provenance, publish.

        Under the store's writer lock (:func:`stgeo.data.safety.writer_lock`): a second
        process building the same store waits, then finds it up to date.

        Raises
        ------
        OutputOverlapsInputError
            ``dest`` is, contains or lies inside ``source``.
        OutputExistsError
            ``dest`` holds another store and ``overwrite`` is False, or an artefact that
            is no data store (see :func:`check_rebuild`).
        DataValidationError
            ``dest`` holds something stgeo did not write (:func:`check_replaceable`).
        """
        from ..data.safety import check_overlap, writer_lock

        if source is not None:
            check_overlap(dest, [Path(source)])
        with writer_lock(dest):
            inputs = self.inputs(source, **options)
            files = list(inputs.files)
            fp = fingerprint(files, recipe=self.name, **inputs.options)
            if not overwrite and existing_store_matches(dest, self.name, fp):
                return str(dest)
            check_replaceable(dest)
            check_rebuild(dest, self.name, overwrite=overwrite)
            if verify and files:
                root = inputs.root if inputs.root is not None else Path(files[0]).parent
                verify_checksums(files, root=root)
            output = self.build(inputs)
            if isinstance(output, xr.Dataset):
                output = RecipeOutput(output)
            output.dataset.attrs.update(recipe_attrs(self.name, fp, source, **inputs.options))
            return self.write(inputs, output, str(dest))


def publish(output: RecipeOutput, dest: str | os.PathLike) -> str:
    """Write ``output`` atomically at ``dest`` (whole, or region by region); return the path."""
    from ..data.store import StoreBuilder, to_zarr

    try:
        if output.regions is None:
            return to_zarr(output.dataset, dest, chunks=output.chunks, overwrite=True)
        builder = StoreBuilder(dest, output.dataset, chunks=output.chunks, overwrite=True)
        for start, make in output.regions:
            if not builder.is_done(start):
                builder.write_region(make(), start=start)
        return builder.commit()
    finally:
        if output.close is not None:
            output.close()


def fingerprint(files: Iterable[str | os.PathLike], **options: Any) -> str:
    """A short hash of input files (name, size, mtime) and options: the store's identity."""
    h = hashlib.sha256()
    for f in sorted(str(Path(p).resolve()) for p in files):
        st = os.stat(f)
        h.update(f"{os.path.basename(f)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    h.update(f"v{RECIPE_VERSION}".encode())
    return h.hexdigest()[:32]


def existing_store_matches(dest: str | os.PathLike, recipe: str, fp: str) -> bool:
    """Whether ``dest`` is a complete store built by ``recipe`` from the same inputs."""
    from ..data.store import COMPLETE_ATTR

    attrs = _root_attrs(Path(dest))
    if attrs is None:
        return False
    return (
        attrs.get(COMPLETE_ATTR) is True
        and attrs.get(RECIPE_ATTR) == recipe
        and attrs.get("stgeo_source_fingerprint") == fp
    )


def _root_attrs(p: Path) -> dict[str, Any] | None:
    """The root attributes of the Zarr store at ``p`` (None: no readable Zarr group)."""
    if not (p / "zarr.json").exists() and not (p / ".zgroup").exists():
        return None
    try:
        import zarr

        return dict(zarr.open_group(str(p), mode="r").attrs)
    except Exception:
        return None


def written_by_stgeo(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Zarr store that stgeo wrote (a recipe or :func:`stgeo.to_zarr`).

    Examples
    --------
    >>> import os, tempfile
    >>> written_by_stgeo(tempfile.mkdtemp())
    False
    """
    from ..data.safety import artefact_kind

    if artefact_kind(path) == "store":  # the one test every stgeo writer uses
        return True
    attrs = _root_attrs(Path(path))  # a recipe's store in the making
    return attrs is not None and RECIPE_ATTR in attrs


def check_replaceable(dest: str | os.PathLike) -> None:
    """Refuse to build over ``dest`` if something there was not written by stgeo.

    A missing ``dest``, an empty folder or a store stgeo wrote may be (re)built (whether it
    will be is :func:`check_rebuild`'s call); anything else (a foreign Zarr store, a file,
    a folder of other data, a model or checkpoint stgeo saved) is never overwritten.

    Raises
    ------
    DataValidationError
        ``dest`` exists and stgeo did not write it.
    OutputExistsError
        ``dest`` is an artefact stgeo wrote that is no store (a model folder, say).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); _ = open(os.path.join(d, "notes.txt"), "w").write("mine")
    >>> check_replaceable(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    stgeo.errors.DataValidationError: ... exists and stgeo did not write it ...
    >>> check_replaceable(os.path.join(d, "new.zarr"))  # absent: fine
    """
    from ..data.safety import KINDS, artefact_kind

    p = Path(dest)
    if p.is_dir() and not any(p.iterdir()):
        return
    kind = artefact_kind(p)
    if kind not in (None, "store"):
        raise OutputExistsError(
            f"{p} is a {KINDS[kind]}, not a data store; a recipe never replaces it, "
            "whatever overwrite says. Choose another destination."
        )
    if p.exists() and not written_by_stgeo(p):
        kind = "file" if p.is_file() else "folder"
        raise DataValidationError(
            f"{p} exists and stgeo did not write it (a {kind} without stgeo's store "
            "attributes); stgeo never overwrites it. Move or delete it yourself, or choose "
            "another destination."
        )


def _in_cache_dir(p: Path) -> bool:
    """Whether ``p`` lies in stgeo's cache folder (where catalog entries' stores live)."""
    from ..options import get_options

    cache = get_options()["cache_dir"]
    return bool(cache) and Path(os.path.realpath(p)).is_relative_to(os.path.realpath(cache))


def check_rebuild(dest: str | os.PathLike, recipe: str, *, overwrite: bool = False) -> None:
    """Refuse to replace the store at ``dest`` by a new build of ``recipe`` unless asked.

    Called when ``dest`` is no up-to-date store of ``recipe`` (same inputs and options) and
    after :func:`check_replaceable`. A store there (another event, other options, a store
    written by :func:`stgeo.to_zarr`) is replaced only with ``overwrite=True``; a forecast
    store never (it is no data store). One exception: a store of the same recipe in stgeo's
    cache folder (a catalog entry's store, built from sources that have changed since) is
    the cache's own and is rebuilt.

    Raises
    ------
    OutputExistsError
        ``dest`` holds a store that may not be replaced.

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)),
    ...                   os.path.join(tempfile.mkdtemp(), "mine.zarr"))
    >>> check_rebuild(p, "radar")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    stgeo.errors.OutputExistsError: ... holds a store written by stgeo.to_zarr ...
    >>> check_rebuild(p, "radar", overwrite=True)  # asked for: replaced
    """
    p = Path(dest)
    if not p.is_dir() or not any(p.iterdir()):
        return
    if any((p / LEAD_TIME_DIM / meta).is_file() for meta in ("zarr.json", ".zarray")):
        raise OutputExistsError(
            f"{p} is a forecast store written by stgeo (it has a {LEAD_TIME_DIM!r} "
            "dimension), not a data store; a recipe never replaces it, whatever overwrite "
            "says. Choose another destination."
        )
    attrs = _root_attrs(p) or {}
    if overwrite or (attrs.get(RECIPE_ATTR) == recipe and _in_cache_dir(p)):
        return
    if attrs.get(RECIPE_ATTR):
        what = f"a store built by the {attrs[RECIPE_ATTR]!r} recipe"
        if attrs.get("stgeo_source"):
            what += f" from {attrs['stgeo_source']}"
        what += f" with options {attrs.get('stgeo_recipe_options', '{}')}"
        why = "other sources or options than this build's"
    else:
        what, why = "a store written by stgeo.to_zarr", "not by this recipe"
    raise OutputExistsError(
        f"{p} holds {what} ({why}). Pass overwrite=True (stgeo recipe: --option "
        "overwrite=true; stgeo catalog build: --force) to replace it, or choose another "
        "destination."
    )


def recipe_attrs(recipe: str, fp: str, source: str | None, **options: Any) -> dict[str, Any]:
    """Provenance attributes every recipe writes into its store."""
    return {
        RECIPE_ATTR: recipe,
        "stgeo_recipe_version": RECIPE_VERSION,
        "stgeo_recipe_options": json.dumps(options, sort_keys=True, default=str),
        "stgeo_source_fingerprint": fp,
        "stgeo_source": "" if source is None else str(source),
    }


def time_chunk(frame_bytes: int, *, target: int = 16 << 20, lo: int = 8, hi: int = 256) -> int:
    """Frames per chunk so one chunk holds about ``target`` bytes, clipped to [lo, hi].

    Examples
    --------
    >>> time_chunk(4 * 721 * 1440), time_chunk(4 * 32 * 32)
    (8, 256)
    """
    return int(np.clip(target // max(int(frame_bytes), 1), lo, hi))


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path, or a clear error if it does not exist."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataValidationError(f"{what} not found: {p} does not exist")
    return p


def list_files(source: str | os.PathLike) -> list[Path]:
    """``source`` itself if it is a file, else the visible files in the folder, sorted."""
    src = Path(source)
    if src.is_file():
        return [src]
    return sorted(f for f in src.iterdir() if f.is_file() and not f.name.startswith("."))

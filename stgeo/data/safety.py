"""Output paths: what stgeo may replace, and how it replaces it.

Every writer of stgeo (:func:`stgeo.to_zarr`, :class:`~stgeo.data.StoreBuilder`,
``forecast(output=...)``, :meth:`TrainedModel.save <stgeo.models.TrainedModel.save>`,
training checkpoints, the ``--out`` of the command line) calls :func:`check_output` before
doing any work and publishes with :func:`replace_path`. The rules:

1. A path that does not exist (or an empty folder) is written.
2. An existing path is replaced only when it is an artefact **stgeo wrote**, **of the same
   kind** (a Zarr store written by stgeo, a model folder written by ``TrainedModel.save``, a
   training checkpoint, a scores file), and only when asked (``overwrite=True``, on the
   command line ``--overwrite``). A folder or file stgeo did not write is never replaced
   or deleted, whatever ``overwrite`` says; nor is a store into which files were added
   (:func:`foreign_entries`): replacing it would delete them.
3. An output equal to, inside, or containing an input of the same call (the dataset being
   forecast, the model used, the stores being scored) is refused.
4. Replacing is atomic: the new artefact is written aside and swapped in with a rename;
   only the old artefact (checked to be stgeo's again just before) is removed.
5. One writer per destination at a time (:func:`writer_lock`): a second process writing
   the same store (two benchmark runs building the same catalog entry) waits until the
   first has published, instead of clearing the first one's staging folder under it.

How stgeo recognises its artefacts (:func:`artefact_kind`): a Zarr store whose root
attributes carry ``stgeo_complete``; a folder whose ``spec.json`` says
``"format": "stgeo-model"``; a folder whose ``state.json`` says
``"format": "stgeo-checkpoint"``; a netCDF file with the global attribute
``stgeo_artefact = "scores"``.

Examples
--------
>>> import os, tempfile, stgeo
>>> from stgeo.data.safety import artefact_kind, check_output
>>> root = tempfile.mkdtemp()
>>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)),
...                   os.path.join(root, "s.zarr"))
>>> artefact_kind(p)
'store'
>>> open(os.path.join(root, "notes.txt"), "w").close()
>>> try:
...     check_output(root, "store", overwrite=True)
... except stgeo.errors.OutputExistsError as err:
...     print("stgeo did not write" in str(err))
True
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputExistsError, OutputOverlapsInputError, StgeoTypeError

__all__ = [
    "KINDS",
    "acquire_writer",
    "artefact_kind",
    "check_checkpoint_dir",
    "check_output",
    "check_overlap",
    "foreign_entries",
    "input_paths",
    "replace_path",
    "writer_lock",
]

#: the kinds of artefact stgeo writes, with how messages describe them
KINDS: dict[str, str] = {
    "store": "Zarr store written by stgeo",
    "model": "model folder written by stgeo (TrainedModel.save)",
    "checkpoint": "training checkpoint written by stgeo",
    "scores": "scores file written by stgeo (stgeo score --out)",
}
#: root attribute of every store stgeo writes (True once complete)
STORE_MARKER = "stgeo_complete"
#: ``format`` recorded in the spec of a saved model / the state of a checkpoint
MODEL_FORMAT = "stgeo-model"
CHECKPOINT_FORMAT = "stgeo-checkpoint"
#: global attribute of the scores files stgeo writes
SCORES_ATTR = "stgeo_artefact"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_store(p: Path) -> bool:
    doc = _json(p / "zarr.json") if (p / "zarr.json").is_file() else None
    if isinstance(doc, dict):
        attrs = doc.get("attributes")
        return doc.get("node_type") == "group" and isinstance(attrs, dict) and STORE_MARKER in attrs
    if (p / ".zgroup").is_file():  # Zarr v2 stores of older versions
        attrs = _json(p / ".zattrs")
        return isinstance(attrs, dict) and STORE_MARKER in attrs
    return False


def _is_model(p: Path) -> bool:
    doc = _json(p / "spec.json")
    extra = doc.get("extra") if isinstance(doc, dict) else None
    return isinstance(extra, dict) and extra.get("format") == MODEL_FORMAT


def _is_checkpoint(p: Path) -> bool:
    doc = _json(p / "state.json")
    return isinstance(doc, dict) and doc.get("format") == CHECKPOINT_FORMAT


def _is_scores(p: Path) -> bool:
    try:
        import netCDF4

        with netCDF4.Dataset(str(p)) as nc:
            return getattr(nc, SCORES_ATTR, None) == "scores"
    except (OSError, ImportError, RuntimeError, ValueError):
        return False


def artefact_kind(path: str | os.PathLike) -> str | None:
    """Which stgeo artefact is at ``path``: ``"store"``, ``"model"``, ``"checkpoint"``,
    ``"scores"``, or None (nothing there, or something stgeo did not write).

    Reads only small metadata files (never array data).

    Examples
    --------
    >>> import tempfile
    >>> from stgeo.data.safety import artefact_kind
    >>> artefact_kind(tempfile.mkdtemp()) is None
    True
    """
    p = Path(path)
    if p.is_dir():
        for kind, test in (("store", _is_store), ("model", _is_model)):
            if test(p):
                return kind
        return "checkpoint" if _is_checkpoint(p) else None
    if p.is_file() and _is_scores(p):
        return "scores"
    return None


def _source_paths(obj: Any) -> list[Path]:
    """The store paths an xarray object was opened from (``stgeo_source`` encodings)."""
    from .store import SOURCE_KEY

    variables = obj.variables.values() if hasattr(obj, "data_vars") else [obj.variable]
    out = []
    for var in variables:
        src = var.encoding.get(SOURCE_KEY)
        if isinstance(src, tuple) and len(src) == 2 and isinstance(src[0], str):
            out.append(Path(src[0]))
        elif isinstance(src, list):  # frames of several stored arrays
            out.extend(Path(s[0]) for s in src if isinstance(s, (tuple, list)) and s)
    return out


def _path_of_name(text: str) -> Path | None:
    """A path given as text, or the store of a catalog entry of that name."""
    p = Path(text)
    if p.exists() or os.sep in text or text.endswith(".zarr"):
        return p
    try:
        from .catalog import get_entry

        return get_entry(text).store_path()
    except Exception:  # not a catalog name either: a baseline name, say
        return None


def input_paths(*inputs: Any) -> list[Path]:
    """The paths behind the inputs of a call: paths and catalog names, xarray objects opened
    from stores, and objects with a ``source_path`` (a model loaded from a folder).

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> from stgeo.data.safety import input_paths
    >>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)),
    ...                   os.path.join(tempfile.mkdtemp(), "s.zarr"))
    >>> input_paths(stgeo.open_dataset(p))[0].name
    's.zarr'
    """
    out: list[Path] = []
    for obj in inputs:
        if isinstance(obj, (str, os.PathLike)):
            p = _path_of_name(os.fspath(obj)) if isinstance(obj, str) else Path(obj)
            if p is not None:
                out.append(p)
        elif hasattr(obj, "variables") or hasattr(obj, "variable"):
            out.extend(_source_paths(obj))
        elif getattr(obj, "source_path", None) is not None:
            out.append(Path(obj.source_path))
    unique: dict[str, Path] = {os.path.realpath(p): p for p in out}
    return list(unique.values())


def _relation(dest: Path, src: Path) -> str | None:
    d, s = Path(os.path.realpath(dest)), Path(os.path.realpath(src))
    if d == s:
        return "is"
    if d.is_relative_to(s):
        return "lies inside"
    if s.is_relative_to(d):
        return "contains"
    return None


def _describe(p: Path) -> str:
    kind = artefact_kind(p)
    if kind is not None:
        return f"a {KINDS[kind]}"
    if p.is_dir():
        return "a folder that stgeo did not write"
    return "a file that stgeo did not write"


def _refuse_overlap(dest: Path, inputs: Iterable[Any], message: str) -> None:
    """Raise OutputOverlapsInputError (``message`` formatted with dest, rel, src) when
    ``dest`` equals, contains or lies inside one of ``inputs``."""
    for src in input_paths(*inputs):
        rel = _relation(dest, src)
        if rel is not None:
            raise OutputOverlapsInputError(message.format(dest=dest, rel=rel, src=src))


_OVERLAP_MESSAGE = (
    "the output {dest} {rel} the input {src} of the same call; writing it could damage "
    "or mix into that input. Choose an output path outside the inputs."
)


def check_overlap(path: str | os.PathLike, inputs: Iterable[Any]) -> None:
    """Refuse an output ``path`` that equals, contains or lies inside one of ``inputs``.

    Parameters
    ----------
    path : str or path
        The output path.
    inputs : iterable
        The inputs of the same call (paths, catalog names, datasets opened from stores,
        loaded models), as for :func:`check_output`.

    Raises
    ------
    OutputOverlapsInputError
        ``path`` is, contains or lies inside an input.

    Examples
    --------
    >>> import os, tempfile
    >>> from stgeo.data.safety import check_overlap
    >>> raw = tempfile.mkdtemp()
    >>> check_overlap(os.path.join(tempfile.mkdtemp(), "out.zarr"), [raw])  # elsewhere: fine
    >>> check_overlap(os.path.join(raw, "out.zarr"), [raw])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    stgeo.errors.OutputOverlapsInputError: the output ... lies inside the input ...
    """
    _refuse_overlap(Path(path), inputs, _OVERLAP_MESSAGE)


#: files of a Zarr store's root or of one of its arrays (v3 and v2 layouts)
_ZARR_FILES = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zmetadata", ".zarray"})
#: a chunk file, or a folder of chunk files, of an array (``0``, ``0.1.2``, ``c`` of v3 keys)
_CHUNK_NAME = re.compile(r"^(c|\d+([.]\d+)*)$")


def _is_zarr_node(p: Path) -> bool:
    return any((p / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup"))


def foreign_entries(path: str | os.PathLike) -> list[str]:
    """Entries of the store folder ``path`` that are no part of a Zarr store: files a user
    put there (``notes.txt``, ``rain_rate/README``), which replacing the store would delete.

    Zarr's metadata files, the folders of its arrays (with their metadata) and their chunk
    files or folders (``c``, ``0``, ``0.1.2``) are the store's; anything else is listed,
    relative to ``path``. The chunk folders are not walked (names only, two levels deep).

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> from stgeo.data.safety import foreign_entries
    >>> p = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)),
    ...                   os.path.join(tempfile.mkdtemp(), "s.zarr"))
    >>> foreign_entries(p)
    []
    >>> _ = open(os.path.join(p, "notes.txt"), "w").write("mine")
    >>> foreign_entries(p)
    ['notes.txt']
    """
    root = Path(path)
    out: list[str] = []
    for child in sorted(root.iterdir()):
        if child.name in _ZARR_FILES and child.is_file() and not child.is_symlink():
            continue
        if child.is_dir() and not child.is_symlink() and _is_zarr_node(child):
            for entry in sorted(child.iterdir()):
                ours = entry.name in _ZARR_FILES and entry.is_file()
                if not (ours or _CHUNK_NAME.match(entry.name)) or entry.is_symlink():
                    out.append(f"{child.name}/{entry.name}")
            continue
        out.append(child.name)
    return out


def _refuse_foreign(dest: Path, kind: str) -> None:
    """Refuse to replace a store holding entries stgeo did not write (they would be lost)."""
    if kind != "store":
        return
    foreign = foreign_entries(dest)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        shown = ", ".join(foreign[:5]) + more
        raise OutputExistsError(
            f"{dest} is a {KINDS[kind]} but also holds things stgeo did not write ({shown}); "
            "replacing the store would delete them. Move them out of the store first, or "
            "choose another output path."
        )


def check_output(
    path: str | os.PathLike,
    kind: str,
    *,
    inputs: Iterable[Any] = (),
    overwrite: bool = False,
) -> Path:
    """Check that writing a ``kind`` artefact at ``path`` destroys nothing; return the path.

    Parameters
    ----------
    path : str or path
        The output path.
    kind : {"store", "model", "checkpoint", "scores"}
        What will be written there.
    inputs : iterable
        The inputs of the same call (paths, catalog names, datasets opened from stores,
        loaded models): the output may not equal, contain or lie inside any of them.
    overwrite : bool
        Replace an existing artefact of the same kind written by stgeo.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputExistsError
        ``path`` holds something stgeo did not write, an artefact of another kind, one
        of the same kind and ``overwrite`` is False, or a store that also holds files
        stgeo did not write (:func:`foreign_entries`; they are named).
    OutputOverlapsInputError
        ``path`` equals, contains or lies inside an input.

    Examples
    --------
    >>> import os, tempfile
    >>> from stgeo.data.safety import check_output
    >>> check_output(os.path.join(tempfile.mkdtemp(), "new.zarr"), "store").name
    'new.zarr'
    """
    if kind not in KINDS:
        raise StgeoTypeError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise StgeoTypeError(f"the output path must be a non-empty str or path, got {path!r}")
    dest = Path(path)
    check_overlap(dest, inputs)
    if not (dest.exists() or dest.is_symlink()):
        return dest
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        return dest
    if artefact_kind(dest) != kind:
        raise OutputExistsError(
            f"{dest} exists and is {_describe(dest)}; stgeo only replaces a {KINDS[kind]} "
            "and never deletes anything else. Choose another output path (or move it away)."
        )
    if not overwrite:
        raise OutputExistsError(
            f"{dest} exists (a {KINDS[kind]}); pass overwrite=True (command line: "
            "--overwrite) to replace it"
        )
    _refuse_foreign(dest, kind)
    return dest


def _ours_in_checkpoint_dir(p: Path) -> bool:
    """Whether ``p``, an entry of a checkpoint folder, is something training writes there."""
    name = p.name
    if name in ("latest.json", ".latest.json.tmp", "augment"):
        return True  # a saved augmentation guards its own files
    if name.startswith("epoch-"):
        return artefact_kind(p) == "checkpoint"
    if name == "model":
        return artefact_kind(p) == "model"
    return name.startswith(".") and (".tmp-" in name or ".old-" in name)  # staging leftovers


def check_checkpoint_dir(path: str | os.PathLike, *, inputs: Iterable[Any] = ()) -> Path:
    """Check a training ``checkpoint_dir``: absent, empty, or holding only what training
    writes there (``epoch-*`` checkpoints, ``latest.json``, the final ``model``, a saved
    ``augment``ation), so that replacing old checkpoints never deletes a user's file.

    Raises
    ------
    OutputExistsError
        The folder is a file or holds other things (they are named).
    OutputOverlapsInputError
        The folder is, contains or lies inside an input (e.g. the training store).

    Examples
    --------
    >>> import tempfile
    >>> from stgeo.data.safety import check_checkpoint_dir
    >>> check_checkpoint_dir(tempfile.mkdtemp()).is_dir()
    True
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise StgeoTypeError(f"checkpoint_dir must be a non-empty str or path, got {path!r}")
    p = Path(path)
    _refuse_overlap(
        p, inputs, "checkpoint_dir {dest} {rel} the input {src}; choose a folder outside the inputs"
    )
    if (p.exists() or p.is_symlink()) and not p.is_dir():
        raise OutputExistsError(f"checkpoint_dir {p} is a file; give a folder (new or empty)")
    if p.is_dir():
        foreign = sorted(c.name for c in p.iterdir() if not _ours_in_checkpoint_dir(c))
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise OutputExistsError(
                f"checkpoint_dir {p} holds things stgeo did not write ({shown}); training "
                "replaces old checkpoints there, so give a new or empty folder"
            )
    return p


def _bare_group(p: Path) -> bool:
    """Whether ``p`` holds nothing but the ``zarr.json`` of an empty group without
    attributes: what an older stgeo left when a write failed at once (no data in it)."""
    if not p.is_dir() or p.is_symlink() or [c.name for c in p.iterdir()] != ["zarr.json"]:
        return False
    doc = _json(p / "zarr.json")
    return isinstance(doc, dict) and doc.get("node_type") == "group" and not doc.get("attributes")


def clear_staging(staging: Path, kind: str) -> None:
    """Remove a leftover staging folder of a ``kind`` artefact; refuse one stgeo did not write.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from stgeo.data.safety import clear_staging
    >>> p = Path(tempfile.mkdtemp()) / ".x.zarr.partial"
    >>> p.mkdir()
    >>> clear_staging(p, "store"); p.exists()
    False
    """
    if not (staging.exists() or staging.is_symlink()):
        return
    empty = staging.is_dir() and not staging.is_symlink() and not any(staging.iterdir())
    if not (empty or _bare_group(staging)) and artefact_kind(staging) != kind:
        raise OutputExistsError(
            f"{staging} is in the way of stgeo's staging folder and is "
            f"{_describe(staging)}; move it away"
        )
    shutil.rmtree(staging)


def replace_path(staging: str | os.PathLike, dest: str | os.PathLike, kind: str) -> None:
    """Move the finished ``staging`` artefact to ``dest`` atomically.

    An existing ``dest`` must be an empty folder or a ``kind`` artefact stgeo wrote (checked
    again here, just before the swap); it is renamed aside, the new one renamed in, and only
    then the old one removed. Anything else at ``dest`` is left alone and refused.

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> from pathlib import Path
    >>> from stgeo.data.safety import replace_path
    >>> root = Path(tempfile.mkdtemp())
    >>> new = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)), root / "new")
    >>> replace_path(new, root / "final.zarr", "store")
    >>> sorted(os.listdir(root))
    ['final.zarr']
    """
    src, dst = Path(staging), Path(dest)
    trash = None
    if dst.exists() or dst.is_symlink():
        if dst.is_dir() and not dst.is_symlink() and not any(dst.iterdir()):
            dst.rmdir()  # fails (and so refuses) if something appeared meanwhile
        elif artefact_kind(dst) == kind:
            _refuse_foreign(dst, kind)  # again: something may have been added meanwhile
            trash = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(dst, trash)
        else:
            raise OutputExistsError(
                f"{dst} is {_describe(dst)}; stgeo only replaces a {KINDS[kind]}"
            )
    os.replace(src, dst)
    if trash is None:
        return
    if trash.is_symlink() or trash.is_file():
        trash.unlink()
    else:
        shutil.rmtree(trash, ignore_errors=True)


_HELD: dict[str, list[Any]] = {}  # lock path -> [open file, holders in this process]
_HELD_GUARD = threading.Lock()


def _lock_path(dest: Path) -> Path:
    """The lock file of ``dest``: in the machine's temporary folder (``stgeo-locks``), named
    by a hash of the absolute path, so nothing is left beside the user's outputs."""
    import hashlib
    import tempfile

    user = os.getuid() if hasattr(os, "getuid") else "user"  # a shared /tmp: one per user
    folder = Path(tempfile.gettempdir()) / f"stgeo-locks-{user}"
    folder.mkdir(exist_ok=True)
    digest = hashlib.sha256(str(dest).encode()).hexdigest()[:32]
    return folder / f"{digest}.lock"


def acquire_writer(dest: str | os.PathLike, *, poll: float = 0.5) -> Callable[[], None]:
    """Take the writer lock of ``dest`` (see :func:`writer_lock`); return its release.

    Waits while another process holds it (saying so once, with the lock file's path). A
    second writer of the same destination in *this* process shares the lock (a resumed
    :class:`~stgeo.data.StoreBuilder` after a failed one). The lock is an advisory
    ``flock`` on a file of the temporary folder named after ``dest``: released when the
    holder releases or exits, however it exits; processes of one machine exclude each
    other (not processes of several hosts on a shared file system, nor of several users:
    each user has their own lock folder). Without ``fcntl`` (Windows) or a writable
    temporary folder nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return lambda: None
    try:
        path = _lock_path(Path(dest).resolve())
    except OSError:  # no usable temporary folder: write unlocked, as before locks existed
        return lambda: None
    key = str(path)
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
            return _releaser(key)
    try:
        fh = open(path, "a+")  # held until released
    except OSError:
        return lambda: None
    said = False
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not said:
                warnings.warn(
                    f"another process is writing {dest} (lock {path}); waiting for it to finish",
                    stacklevel=3,
                )
                said = True
            time.sleep(poll)
    with _HELD_GUARD:
        _HELD[key] = [fh, 1]
    return _releaser(key)


def _releaser(key: str) -> Callable[[], None]:
    done = [False]

    def release() -> None:
        if done[0]:
            return
        done[0] = True
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[key]
        held[0].close()  # closing the file drops the flock; the empty lock file stays

    return release


@contextlib.contextmanager
def writer_lock(dest: str | os.PathLike) -> Iterator[None]:
    """Hold the one-writer-per-destination lock of ``dest`` for the block.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> dest = Path(tempfile.mkdtemp()) / "out.zarr"
    >>> with writer_lock(dest):
    ...     with writer_lock(dest):  # the same process may nest writers of one path
    ...         pass
    >>> list(dest.parent.iterdir())  # nothing left beside the output
    []
    """
    release = acquire_writer(dest)
    try:
        yield
    finally:
        release()

"""Catalog collections: named lists of catalog entries (events) that train together.

A collection lives in a catalog YAML file next to ``datasets:``::

    collections:
      - name: radar-train
        description: the 5 training events of the radar protocol (specs/evaluation.md)
        members: [radar-knmi-20100826, radar-bom66-20201031, radar-mch-20150515,
                  radar-mch-20160711, radar-rmi-20210704]
        time_step: per-event        # optional: the time-step policy of a run on it

``stgeo.train("radar-train", ...)`` trains on all members at once (see the "Many events"
section of the training guide); ``time_step`` is the default of ``train(time_step=...)``
for the collection (``"per-event"`` or a duration such as ``"10min"``).

Collections are read from the same places as catalog entries: the catalogs shipped with
stgeo, the files of the ``catalog_paths`` option and ``$STGEO_CATALOG_PATH`` (which take
precedence), and :func:`register_collection`.

Examples
--------
>>> from stgeo.data import get_collection, list_collections
>>> "radar-train" in list_collections()
True
>>> c = get_collection("radar-train")
>>> len(c.members), c.time_step
(5, 'per-event')
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .._registry import Registry
from ..errors import CatalogError, StgeoTypeError, UnknownNameError
from .catalog import _PACKAGED, _user_files, _yaml_files

__all__ = [
    "Collection",
    "get_collection",
    "is_collection",
    "list_collections",
    "load_collections_file",
    "register_collection",
]

_FIELDS: dict[str, type] = {
    "name": str,
    "members": list,
    "description": str,
    "time_step": str,
    "tags": list,
}


@dataclass(frozen=True)
class Collection:
    """A named list of catalog entries that train together.

    Attributes
    ----------
    name : str
        The collection's name (case-insensitive lookups).
    members : list of str
        Catalog entry names, in order.
    description : str
        One line of what it is.
    time_step : str or None
        Time-step policy of a run on the collection (``"per-event"`` or a duration);
        ``None``: the events must share one step (see ``stgeo.train(time_step=...)``).
    tags : list of str
        Free-form labels.
    source_file : str
        The YAML file it came from ("" when registered in code).

    Examples
    --------
    >>> Collection("two", members=["a", "b"]).members
    ['a', 'b']
    """

    name: str
    members: list[str]
    description: str = ""
    time_step: str | None = None
    tags: list[str] = field(default_factory=list)
    source_file: str = ""


def _fail(src: str, idx: int, name: Any, msg: str) -> CatalogError:
    where = f"{src}, collection {idx}" + (f" ({name!r})" if isinstance(name, str) else "")
    return CatalogError(f"{where}: {msg}")


def _check_step(step: str, fail: Any) -> None:
    if step == "per-event":
        return
    try:
        ok = pd.Timedelta(step) > pd.Timedelta(0)
    except ValueError:
        ok = False
    if not ok:
        raise fail(
            f"field 'time_step' must be 'per-event' or a duration such as '10min', got {step!r}"
        )


def _validate(raw: Any, src: str, idx: int) -> Collection:
    fail = functools.partial(_fail, src, idx, raw.get("name") if isinstance(raw, dict) else None)
    if not isinstance(raw, dict):
        raise fail(f"a collection must be a mapping, got {type(raw).__name__}")
    for key in ("name", "members"):
        if key not in raw:
            raise fail(f"missing required field {key!r}")
    for key, val in raw.items():
        if key not in _FIELDS:
            raise fail(f"unknown field {key!r}; allowed: {sorted(_FIELDS)}")
        if not isinstance(val, _FIELDS[key]):
            raise fail(f"field {key!r} must be a {_FIELDS[key].__name__}, got {val!r}")
    members = raw["members"]
    if not members or not all(isinstance(m, str) and m for m in members):
        raise fail("field 'members' must be a non-empty list of catalog entry names")
    if len({m.lower() for m in members}) != len(members):
        raise fail(f"field 'members' repeats a name: {members}")
    if "time_step" in raw:
        _check_step(raw["time_step"], fail)
    return Collection(**raw, source_file=src)


def load_collections_file(path: str | os.PathLike) -> list[Collection]:
    """Read and validate the ``collections:`` of one catalog YAML file (may be empty).

    Raises
    ------
    CatalogError
        Unreadable YAML, a collection violating the schema, or a collection named like a
        dataset entry of the same file.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.yaml")
    >>> _ = open(p, "w").write("collections:\\n  - {name: both, members: [a, b]}\\n")
    >>> [c.name for c in load_collections_file(p)]
    ['both']
    """
    src = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise CatalogError(f"{src}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{src}: a catalog file must be a mapping")
    raw = doc.get("collections") or []
    if not isinstance(raw, list):
        raise CatalogError(f"{src}: 'collections' must be a list")
    out = [_validate(r, src, i) for i, r in enumerate(raw)]
    names = [c.name.lower() for c in out]
    datasets = {
        str(d.get("name", "")).lower() for d in doc.get("datasets") or [] if isinstance(d, dict)
    }
    clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & datasets))
    if clash:
        raise CatalogError(f"{src}: collection names {clash} are repeated or name a dataset entry")
    return out


#: the collections shipped with stgeo, of entry points and registered in code
COLLECTIONS: Registry[Collection] = Registry("catalog collection", group=None)


def _packaged(registry: Registry[Collection]) -> None:
    for f in _yaml_files(_PACKAGED):
        for c in load_collections_file(f):
            if c.name.lower() not in registry:
                registry.add(c.name, c, description=c.description or c.name, packaged=True)


COLLECTIONS.add_source(_packaged)


def register_collection(
    source: str | os.PathLike | Collection, *, overwrite: bool = False
) -> list[str]:
    """Register collections: those of a catalog YAML file or folder, or one :class:`Collection`.

    Examples
    --------
    >>> from stgeo.data.collections import COLLECTIONS
    >>> register_collection(Collection("demo-pair", ["radar-fmi-20160928", "radar-mch-20170131"]))
    ['demo-pair']
    >>> get_collection("DEMO-PAIR").members[0]
    'radar-fmi-20160928'
    >>> COLLECTIONS.remove("demo-pair")
    """
    if isinstance(source, Collection):
        found = [source]
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).exists():
            raise CatalogError(f"no catalog file or folder at {source}")
        found = [c for f in _yaml_files(Path(source)) for c in load_collections_file(f)]
    else:
        raise StgeoTypeError(
            f"register_collection() takes a catalog file/folder path or a Collection, got "
            f"{type(source).__name__}"
        )
    for c in found:
        COLLECTIONS.add(c.name, c, description=c.description or c.name, overwrite=overwrite)
    return [c.name for c in found]


def _registry() -> Registry[Collection]:
    files = _user_files()
    if not files:
        return COLLECTIONS
    view = COLLECTIONS.copy()
    for f in files:
        for c in load_collections_file(f):
            view.add(c.name, c, description=c.description or c.name, overwrite=True)
    return view


def list_collections(pattern: str = "*") -> list[str]:
    """Names of the catalog collections matching ``pattern`` (shell wildcards).

    Examples
    --------
    >>> list_collections("radar-*")
    ['radar-test', 'radar-train', 'radar-train-large']
    """
    return _registry().list(pattern)


def get_collection(name: str) -> Collection:
    """The catalog collection ``name`` (case-insensitive), or a "did you mean" error.

    Examples
    --------
    >>> get_collection("radar-test").members
    ['radar-fmi-20160928', 'radar-bom2-20180616', 'radar-mch-20170131']
    """
    reg = _registry()
    if name in reg:
        return reg.get(name)
    close = reg.suggest(name)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise UnknownNameError(
        f"no catalog collection {name!r}.{hint} Collections: {', '.join(reg.list()) or '(none)'}."
    )


def is_collection(name: Any) -> bool:
    """Whether ``name`` is the name of a known collection (a string that is no path).

    Examples
    --------
    >>> is_collection("radar-train"), is_collection("radar-fmi-20160928")
    (True, False)
    """
    return isinstance(name, str) and name in _registry()

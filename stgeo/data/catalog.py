"""Dataset catalogs: YAML files listing Zarr stores, validated against a schema.

A catalog file holds ``datasets:``, a list of entries::

    datasets:
      - name: radar-fmi-20160928
        description: FMI radar reflectivity composite, 2016-09-28, as rain rate
        store: radar/fmi-20160928.zarr        # relative: under the cache dir
        variables: [rain_rate]
        time_step: 5min
        thresholds: [0.1, 1, 5]
        splits:                                # optional, [start, end] inclusive
          test: ["2016-09-28T14:45", "2016-09-28T18:00"]
        license: example data redistributed by pysteps; cite FMI
        citation: Pulkkinen et al. (2019), GMD
        recipe: {name: radar, source: fmi/pgm/20160928}

Crowd-flow entries may give the calendar of their city for models that take time
features (``stresnet``; see :class:`stgeo.data.TimeFeatures`), e.g.
``time_features: {holidays: US, subdiv: NY}``.

A file may also hold ``collections:``, named lists of entries that train together (see
:func:`get_collection`)::

    collections:
      - name: radar-train
        description: the 5 training events of the radar protocol
        members: [radar-knmi-20100826, radar-bom66-20201031, radar-mch-20150515]
        time_step: per-event                   # optional: the run's time-step policy

Entries are registered by name in :data:`stgeo._registry.CATALOGS`: the catalogs shipped
with stgeo (``stgeo/catalogs``, read on the first lookup), those of third-party packages
(entry-point group ``stgeo.catalogs``; an entry point loads to the path of a YAML file or
folder; its entries replace shipped ones of the same name) and those registered with
:func:`register_catalog`. The files of the ``catalog_paths`` option and of
``$STGEO_CATALOG_PATH`` (``os.pathsep`` separated) are read at every lookup and take
precedence over all of them.

Examples
--------
>>> import stgeo
>>> "synthetic-storms" in stgeo.list_catalog()
True
>>> stgeo.data.catalog.get_entry("synthetic-storms").time_step
'5min'
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from .._registry import CATALOGS, Registry
from ..errors import CatalogError, StgeoTypeError, UnknownNameError
from ..options import OPTIONS, get_options

__all__ = [
    "CatalogEntry",
    "catalog_registry",
    "get_entry",
    "list_catalog",
    "load_catalog_file",
    "register_catalog",
]

_PACKAGED = Path(__file__).resolve().parent.parent / "catalogs"
_REQUIRED = {"name": str, "store": str, "variables": list, "time_step": str}
_OPTIONAL: dict[str, Any] = {
    "description": str,
    "thresholds": list,
    "splits": dict,
    "license": str,
    "citation": str,
    "recipe": dict,
    "units": dict,
    "tags": list,
    "time_features": dict,
}
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CatalogEntry:
    """One validated catalog entry (see the module docstring for the fields)."""

    name: str
    store: str
    variables: list[str]
    time_step: str
    description: str = ""
    thresholds: list[float] = field(default_factory=list)
    splits: dict[str, list[str]] = field(default_factory=dict)
    license: str = ""
    citation: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    time_features: dict[str, Any] = field(default_factory=dict)
    source_file: str = ""

    def store_path(self) -> Path:
        """Absolute store path: ``~``/env vars expanded; relative paths under the cache dir."""
        p = Path(os.path.expandvars(os.path.expanduser(self.store)))
        if not p.is_absolute():
            p = Path(get_options()["cache_dir"]) / p
        return p

    def select_split(self, ds: xr.Dataset, split: str) -> xr.Dataset:
        """Return the time range of ``split`` (``train``/``val``/``test``) of ``ds``."""
        if split not in self.splits:
            raise UnknownNameError(
                f"catalog entry {self.name!r} has no split {split!r}; it has "
                f"{', '.join(self.splits) or 'no splits'}"
            )
        start, end = (pd.Timestamp(t) for t in self.splits[split])
        if ds.indexes["time"].is_monotonic_increasing:
            return ds.sel(time=slice(start, end))
        # concatenated events (SEVIR): times repeat across events; select by mask
        t = ds["time"].values
        return ds.isel(
            time=np.flatnonzero((t >= start.to_datetime64()) & (t <= end.to_datetime64()))
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain data (for printing or writing back to YAML)."""
        d = asdict(self)
        d.pop("source_file")
        return {k: v for k, v in d.items() if v not in ("", [], {})}


Fail = Callable[[str], CatalogError]  # message -> error naming the file and entry


def _err(src: str, idx: int, name: str | None, msg: str) -> CatalogError:
    where = f"{src}, entry {idx}" + (f" ({name!r})" if name else "")
    return CatalogError(f"{where}: {msg}")


def _check_fields(raw: dict[str, Any], fail: Fail) -> None:
    """Required fields present, no unknown field, every field of its type."""
    for key in _REQUIRED:
        if key not in raw:
            raise fail(f"missing required field {key!r}")
    allowed = set(_REQUIRED) | set(_OPTIONAL)
    for key, val in raw.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"unknown field {key!r}{hint}; allowed: {sorted(allowed)}")
        typ = _REQUIRED.get(key) or _OPTIONAL[key]
        if not isinstance(val, typ):
            raise fail(
                f"field {key!r} must be a {typ.__name__}, got {type(val).__name__} ({val!r})"
            )


def _check_variables(raw: dict[str, Any], fail: Fail) -> None:
    if not raw["variables"] or not all(isinstance(v, str) for v in raw["variables"]):
        raise fail("field 'variables' must be a non-empty list of names")


def _check_time_step(raw: dict[str, Any], fail: Fail) -> None:
    try:
        step = pd.Timedelta(raw["time_step"])
    except ValueError:
        raise fail(
            f"field 'time_step' {raw['time_step']!r} is not a duration such as '5min' or '1h'"
        ) from None
    if step <= pd.Timedelta(0):
        raise fail("field 'time_step' must be positive")


def _check_thresholds(raw: dict[str, Any], fail: Fail) -> None:
    thr = raw.get("thresholds", [])
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thr):
        raise fail(f"field 'thresholds' must be a list of numbers, got {thr!r}")


def _check_splits(raw: dict[str, Any], fail: Fail) -> None:
    for split, rng in raw.get("splits", {}).items():
        if split not in _SPLITS:
            raise fail(f"splits: unknown split {split!r}; use {_SPLITS}")
        if not (isinstance(rng, list) and len(rng) == 2):
            raise fail(f"splits.{split} must be [start, end], got {rng!r}")
        try:
            a, b = (pd.Timestamp(str(x)) for x in rng)
        except ValueError:
            raise fail(f"splits.{split} has an unreadable date: {rng!r}") from None
        if a > b:
            raise fail(f"splits.{split} starts after it ends: {rng!r}")


def _check_recipe(raw: dict[str, Any], fail: Fail) -> None:
    rec = raw.get("recipe", {})
    if rec and not isinstance(rec.get("name"), str):
        raise fail("field 'recipe' needs a 'name' (the recipe to run)")


#: the checks of one entry, in order (the first failing one raises)
_CHECKS: tuple[Callable[[dict[str, Any], Fail], None], ...] = (
    _check_fields,
    _check_variables,
    _check_time_step,
    _check_thresholds,
    _check_splits,
    _check_recipe,
)


def _validate_entry(raw: Any, src: str, idx: int) -> CatalogEntry:
    if not isinstance(raw, dict):
        raise _err(src, idx, None, f"an entry must be a mapping, got {type(raw).__name__}")
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    fail = functools.partial(_err, src, idx, name)
    for check in _CHECKS:
        check(raw, fail)
    data = dict(raw)
    data["splits"] = {k: [str(x) for x in v] for k, v in raw.get("splits", {}).items()}
    data["thresholds"] = [float(t) for t in raw.get("thresholds", [])]
    return CatalogEntry(**data, source_file=src)


def load_catalog_file(path: str | os.PathLike) -> list[CatalogEntry]:
    """Read and validate one catalog YAML file.

    Raises
    ------
    CatalogError
        Unreadable YAML, or an entry violating the schema (the message names the field).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.yaml")
    >>> _ = open(p, "w").write("datasets:\\n  - {name: x, store: x.zarr, variables: [a]}\\n")
    >>> try:
    ...     load_catalog_file(p)
    ... except CatalogError as err:
    ...     print(str(err).split(": ", 1)[1])
    missing required field 'time_step'
    """
    src = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (yaml.YAMLError, ValueError) as e:  # also invalid dates, non-UTF-8 bytes
        raise CatalogError(f"{src}: not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not ({"datasets", "collections"} & set(doc)):
        raise CatalogError(
            f"{src}: a catalog file must be a mapping with a 'datasets' list (and/or a "
            "'collections' list)"
        )
    if not isinstance(doc.get("datasets", []), list):
        raise CatalogError(f"{src}: 'datasets' must be a list of entries")
    entries = [_validate_entry(raw, src, i) for i, raw in enumerate(doc.get("datasets", []))]
    names = [e.name for e in entries]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CatalogError(f"{src}: duplicated entry names {sorted(dup)}")
    return entries


def _yaml_files(root: Path) -> list[Path]:
    """The catalog files of a file or folder (``*.yaml`` then ``*.yml``; none if missing)."""
    if root.is_dir():
        return sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
    return [root] if root.exists() else []


def _add_entries(
    registry: Registry[CatalogEntry],
    entries: list[CatalogEntry],
    *,
    overwrite: bool | Callable[[str], bool],
    **meta: Any,
) -> list[str]:
    names = []
    for e in entries:
        replace = overwrite(e.name) if callable(overwrite) else overwrite
        if callable(overwrite) and not replace and e.name.lower() in registry:
            continue  # a lazy source or plugin never replaces what it may not
        desc = e.description or e.name
        registry.add(e.name, e, description=desc, overwrite=replace, **meta)
        names.append(e.name)
    return names


def register_catalog(
    source: str | os.PathLike | CatalogEntry, *, overwrite: bool = False
) -> list[str]:
    """Register catalog entries by name: a YAML catalog file, a folder of them, or one entry.

    Registered entries are found by :func:`list_catalog`, :func:`get_entry` and
    :func:`stgeo.open_dataset` like the catalogs shipped with stgeo. Third-party packages do
    the same from an entry point in group ``stgeo.catalogs`` that loads to such a path (see
    the "Extending stgeo" guide).

    Parameters
    ----------
    source : path or CatalogEntry
        A catalog YAML file, a folder of ``*.yaml``/``*.yml`` catalog files, or an entry.
    overwrite : bool
        Replace entries of the same names (otherwise a clash raises ``ValueError``).

    Returns
    -------
    list of str
        The names registered.

    Raises
    ------
    CatalogError
        No such file or folder, or a file violating the schema.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data.catalog import CatalogEntry, register_catalog
    >>> register_catalog(CatalogEntry("example-rain", store="rain.zarr", variables=["rain"],
    ...                               time_step="10min"), overwrite=True)
    ['example-rain']
    >>> stgeo.data.get_entry("EXAMPLE-RAIN").time_step
    '10min'
    >>> from stgeo._registry import CATALOGS
    >>> CATALOGS.remove("example-rain")
    """
    if isinstance(source, CatalogEntry):
        return _add_entries(CATALOGS, [source], overwrite=overwrite)
    if not isinstance(source, (str, os.PathLike)):
        raise StgeoTypeError(
            f"register_catalog() takes a catalog file or folder path or a CatalogEntry, got "
            f"{type(source).__name__}."
        )
    root = Path(source)
    if not root.exists():
        raise CatalogError(f"no catalog file or folder at {root}")
    entries = [e for f in _yaml_files(root) for e in load_catalog_file(f)]
    return _add_entries(CATALOGS, entries, overwrite=overwrite)


def _packaged(registry: Registry[CatalogEntry]) -> None:
    """Lazy source of CATALOGS: the catalogs shipped with stgeo (read on first lookup)."""
    entries = [e for f in _yaml_files(_PACKAGED) for e in load_catalog_file(f)]
    _add_entries(registry, entries, overwrite=lambda name: False, packaged=True)


def _entry_point(registry: Registry[CatalogEntry], name: str, obj: Any) -> None:
    """An entry point of group ``stgeo.catalogs`` loads to a YAML file or folder (or entries).

    Its entries replace packaged entries of the same names, not ones registered in code.
    """
    if isinstance(obj, CatalogEntry):
        entries = [obj]
    elif isinstance(obj, (list, tuple)) and all(isinstance(e, CatalogEntry) for e in obj):
        entries = list(obj)
    else:
        entries = [e for f in _yaml_files(Path(str(obj))) for e in load_catalog_file(f)]

    def replace(entry_name: str) -> bool:
        key = entry_name.lower()
        return key not in registry or bool(registry.entry(key).meta.get("packaged"))

    _add_entries(registry, entries, overwrite=replace, entry_point=name)


CATALOGS.add_source(_packaged)
CATALOGS.on_entry_point = _entry_point


def _user_files() -> list[Path]:
    """Catalog files of the ``catalog_paths`` option and ``$STGEO_CATALOG_PATH`` (re-read on
    every lookup, so they follow option and environment changes)."""
    from .catalog_checks import check_catalog_roots

    roots = check_catalog_roots(OPTIONS["catalog_paths"], source="the catalog_paths option")
    env = os.environ.get("STGEO_CATALOG_PATH")
    if env:
        parts = [p for p in env.split(os.pathsep) if p]
        roots += check_catalog_roots(parts, source="$STGEO_CATALOG_PATH")
    return [f for r in roots for f in _yaml_files(r)]


def catalog_registry() -> Registry[CatalogEntry]:
    """The catalog entries in effect now, as a registry.

    :data:`stgeo._registry.CATALOGS` (packaged catalogs, entry points, :func:`register_catalog`)
    overlaid with the files of the ``catalog_paths`` option and ``$STGEO_CATALOG_PATH``, which
    take precedence (later files over earlier ones).

    Examples
    --------
    >>> from stgeo.data.catalog import catalog_registry
    >>> catalog_registry().get("synthetic-storms").variables
    ['rain_rate']
    """
    files = _user_files()
    if not files:
        return CATALOGS
    view = CATALOGS.copy()
    for f in files:
        _add_entries(view, load_catalog_file(f), overwrite=True)
    return view


def list_catalog(pattern: str = "*") -> list[str]:
    """Names of the catalog entries matching ``pattern`` (shell wildcards).

    Examples
    --------
    >>> import stgeo
    >>> stgeo.list_catalog("synthetic-*")
    ['synthetic-crowd', 'synthetic-storms']
    """
    return catalog_registry().list(pattern)


def get_entry(name: str) -> CatalogEntry:
    """Return the catalog entry ``name`` (case-insensitive) or raise a "did you mean" error.

    Examples
    --------
    >>> from stgeo.data.catalog import get_entry
    >>> get_entry("Synthetic-Crowd").name
    'synthetic-crowd'
    """
    registry = catalog_registry()
    try:
        return registry.get(name)
    except UnknownNameError:
        close = registry.suggest(name)
        msg = f"{name!r} is neither an existing store path nor a catalog entry."
        if close:
            msg += f" Did you mean {' or '.join(map(repr, close))}?"
        msg += f" Catalog entries: {', '.join(registry.list()) or '(none)'}."
        raise UnknownNameError(msg) from None

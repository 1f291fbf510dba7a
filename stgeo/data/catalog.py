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

Catalogs shipped with stgeo live in ``catalogs/`` (packaged as ``stgeo/catalogs``); more
are found in the ``catalog_paths`` option, in ``$STGEO_CATALOG_PATH`` (``os.pathsep``
separated) and through the ``stgeo.catalogs`` entry-point group (an entry point loads to
a path of a YAML file or folder).

Examples
--------
>>> import stgeo
>>> "synthetic-storms" in stgeo.list_catalog()
True
>>> stgeo.data.catalog.get_entry("synthetic-storms").time_step
'5min'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from ..errors import CatalogError, UnknownNameError
from ..options import OPTIONS, get_options

__all__ = ["CatalogEntry", "get_entry", "list_catalog", "load_catalog_file"]

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


def _err(src: str, idx: int, name: str | None, msg: str) -> CatalogError:
    where = f"{src}, entry {idx}" + (f" ({name!r})" if name else "")
    return CatalogError(f"{where}: {msg}")


def _validate_entry(raw: Any, src: str, idx: int) -> CatalogEntry:
    if not isinstance(raw, dict):
        raise _err(src, idx, None, f"an entry must be a mapping, got {type(raw).__name__}")
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    for key in _REQUIRED:
        if key not in raw:
            raise _err(src, idx, name, f"missing required field {key!r}")
    allowed = set(_REQUIRED) | set(_OPTIONAL)
    for key, val in raw.items():
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _err(src, idx, name, f"unknown field {key!r}{hint}; allowed: {sorted(allowed)}")
        typ = _REQUIRED.get(key) or _OPTIONAL[key]
        if not isinstance(val, typ):
            raise _err(
                src,
                idx,
                name,
                f"field {key!r} must be a {typ.__name__}, got {type(val).__name__} ({val!r})",
            )
    if not raw["variables"] or not all(isinstance(v, str) for v in raw["variables"]):
        raise _err(src, idx, name, "field 'variables' must be a non-empty list of names")
    try:
        step = pd.Timedelta(raw["time_step"])
    except ValueError:
        raise _err(
            src,
            idx,
            name,
            f"field 'time_step' {raw['time_step']!r} is not a duration such as '5min' or '1h'",
        ) from None
    if step <= pd.Timedelta(0):
        raise _err(src, idx, name, "field 'time_step' must be positive")
    thr = raw.get("thresholds", [])
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thr):
        raise _err(src, idx, name, f"field 'thresholds' must be a list of numbers, got {thr!r}")
    for split, rng in raw.get("splits", {}).items():
        if split not in _SPLITS:
            raise _err(src, idx, name, f"splits: unknown split {split!r}; use {_SPLITS}")
        if not (isinstance(rng, list) and len(rng) == 2):
            raise _err(src, idx, name, f"splits.{split} must be [start, end], got {rng!r}")
        try:
            a, b = (pd.Timestamp(str(x)) for x in rng)
        except ValueError:
            raise _err(src, idx, name, f"splits.{split} has an unreadable date: {rng!r}") from None
        if a > b:
            raise _err(src, idx, name, f"splits.{split} starts after it ends: {rng!r}")
    rec = raw.get("recipe", {})
    if rec and not isinstance(rec.get("name"), str):
        raise _err(src, idx, name, "field 'recipe' needs a 'name' (the recipe to run)")
    data = {k: v for k, v in raw.items()}
    data["splits"] = {k: [str(x) for x in v] for k, v in raw.get("splits", {}).items()}
    data["thresholds"] = [float(t) for t in thr]
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
    except yaml.YAMLError as e:
        raise CatalogError(f"{src}: not valid YAML: {e}") from None
    if not isinstance(doc, dict) or "datasets" not in doc:
        raise CatalogError(f"{src}: a catalog file must be a mapping with a 'datasets' list")
    if not isinstance(doc["datasets"], list):
        raise CatalogError(f"{src}: 'datasets' must be a list of entries")
    entries = [_validate_entry(raw, src, i) for i, raw in enumerate(doc["datasets"])]
    names = [e.name for e in entries]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CatalogError(f"{src}: duplicated entry names {sorted(dup)}")
    return entries


def _catalog_files() -> list[Path]:
    roots: list[Path] = [_PACKAGED]
    roots += [Path(p) for p in OPTIONS["catalog_paths"]]
    env = os.environ.get("STGEO_CATALOG_PATH")
    if env:
        roots += [Path(p) for p in env.split(os.pathsep) if p]
    for ep in metadata.entry_points(group="stgeo.catalogs"):
        roots.append(Path(str(ep.load())))
    files: list[Path] = []
    for r in roots:
        if r.is_dir():
            files += sorted(r.glob("*.yaml")) + sorted(r.glob("*.yml"))
        elif r.exists():
            files.append(r)
    return files


def _all_entries() -> dict[str, CatalogEntry]:
    out: dict[str, CatalogEntry] = {}
    for f in _catalog_files():
        for e in load_catalog_file(f):
            out[e.name.lower()] = e  # later paths override packaged entries
    return out


def list_catalog(pattern: str = "*") -> list[str]:
    """Names of the catalog entries matching ``pattern`` (shell wildcards).

    Examples
    --------
    >>> import stgeo
    >>> stgeo.list_catalog("synthetic-*")
    ['synthetic-crowd', 'synthetic-storms']
    """
    import fnmatch

    return sorted(n for n in _all_entries() if fnmatch.fnmatchcase(n, pattern.lower()))


def get_entry(name: str) -> CatalogEntry:
    """Return the catalog entry ``name`` (case-insensitive) or raise a "did you mean" error."""
    entries = _all_entries()
    try:
        return entries[name.lower()]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name.lower(), list(entries), n=3)
        msg = f"{name!r} is neither an existing store path nor a catalog entry."
        if close:
            msg += f" Did you mean {' or '.join(map(repr, close))}?"
        msg += f" Catalog entries: {', '.join(sorted(entries)) or '(none)'}."
        raise UnknownNameError(msg) from None

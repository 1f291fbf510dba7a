"""Build catalog entries' stores by running the recipes their ``recipe`` blocks name.

:func:`build_from_catalog` builds one entry; :func:`build_catalog` (``stgeo catalog build``)
builds many in one call: entries by name or wildcard, every entry carrying some tags
(``tags=["radar"]``), or the members of a catalog collection. Before building anything it
checks that every raw source exists and that no destination holds data stgeo did not write;
stores already built from the same inputs and options are skipped (``force=True`` rebuilds
them); inputs are verified against their ``SHA256SUMS`` before a build.

Examples
--------
>>> import tempfile, stgeo
>>> from stgeo.datasets import build_from_catalog
>>> with stgeo.set_options(cache_dir=tempfile.mkdtemp()):
...     p = build_from_catalog("synthetic-storms", n_times=4, shape="8,8")
...     stgeo.open_dataset("synthetic-storms").rain_rate.shape
(4, 8, 8)
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.safety import writer_lock
from ..errors import DataValidationError, StgeoError, UnknownNameError
from .options import parse_options
from .protocol import check_replaceable, existing_store_matches, fingerprint
from .registry import COMMON_OPTIONS, get_recipe, run_recipe

__all__ = [
    "BuildResult",
    "build_catalog",
    "build_from_catalog",
    "collection_members",
    "default_data_roots",
    "select_entries",
]

#: where relative ``source`` paths are looked for when no data root is given: the current
#: directory, then the shared data folder next to a checkout (``../shared/data``)
_FALLBACK_ROOTS = (".", os.path.join("..", "shared", "data"))


def default_data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """The folders relative recipe sources are resolved against, in order.

    ``data_root`` if given; else ``$STGEO_SHARED_DATA`` if set; else the current directory
    and ``../shared/data``.

    Examples
    --------
    >>> [str(p) for p in default_data_roots("/data")]
    ['/data']
    """
    if data_root is not None:
        return [Path(data_root)]
    env = os.environ.get("STGEO_SHARED_DATA")
    if env:
        return [Path(env)]
    return [Path(p) for p in _FALLBACK_ROOTS]


def _resolve_source(
    entry_name: str, recipe: str, source: Any, store: Any, data_root: Any
) -> str | None:
    if source is None:
        return None
    if "://" in str(source):
        raise DataValidationError(
            f"catalog entry {entry_name!r} comes from {source}; download it there first and "
            f"run `stgeo recipe {recipe} --source LOCAL_COPY --dest {store}`"
        )
    if Path(source).is_absolute():
        return str(source)
    roots = default_data_roots(data_root)
    for root in roots:
        if (root / source).exists():
            return str(root / source)
    return str(roots[0] / source)


def _missing_source(entry_name: str, source: str, data_root: Any) -> str:
    tried = ", ".join(str(r) for r in default_data_roots(data_root))
    return (
        f"{entry_name}: raw data not found: {source} (looked under {tried}); give the folder "
        "holding it with --data-root DIR (data_root=...) or $STGEO_SHARED_DATA"
    )


def build_from_catalog(
    name: str, *, data_root: str | os.PathLike | None = None, **options: Any
) -> str:
    """Build the store of catalog entry ``name`` by running its recipe.

    The entry's ``recipe`` mapping gives the recipe ``name``, its ``source`` (a path
    relative to ``data_root``, an absolute path, or a URL, which must then be downloaded
    first) and further options, parsed like any recipe options
    (:func:`~stgeo.datasets.parse_options`); the store goes to the entry's store path
    (relative paths under the cache dir, see :func:`stgeo.set_options`).

    Parameters
    ----------
    name : str
        Catalog entry name.
    data_root : path, optional
        Folder that relative ``source`` paths are resolved against (default:
        ``$STGEO_SHARED_DATA``, else the current directory, else ``../shared/data``).
    **options
        Override or add recipe options (values or text, e.g. ``n_days="2"``).

    Returns
    -------
    str
        The store path.

    Examples
    --------
    >>> import tempfile, stgeo
    >>> with stgeo.set_options(cache_dir=tempfile.mkdtemp()):
    ...     p = build_from_catalog("synthetic-crowd", n_days=2)
    ...     stgeo.open_dataset("synthetic-crowd").flow.sizes["time"]
    96
    """
    _, recipe, store, source, rec = _entry_recipe(name, data_root)
    rec.update(options)
    return run_recipe(recipe, source, str(store), **rec)


# -- many entries at once ---------------------------------------------------------------------
def collection_members(name: str) -> list[str] | None:
    """Entry names of catalog collection ``name``, or None if ``name`` is no collection.

    The hook onto the catalog collections of :mod:`stgeo.data` (``is_collection`` /
    ``get_collection``); while those do not exist, no name is a collection.

    Examples
    --------
    >>> collection_members("synthetic-storms") is None
    True
    """
    from .. import data

    is_collection = getattr(data, "is_collection", None)
    get_collection = getattr(data, "get_collection", None)
    if is_collection is None or get_collection is None or not is_collection(name):
        return None
    return [str(m) for m in get_collection(name).members]


def _expand_name(name: str) -> list[str]:
    from ..data.catalog import get_entry, list_catalog

    members = collection_members(name)
    if members is not None:
        return [get_entry(m).name for m in members]
    if any(c in name for c in "*?["):
        found = list_catalog(name)
        if not found:
            raise UnknownNameError(
                f"no catalog entry matches {name!r} (`stgeo catalog list` shows them)"
            )
        return found
    return [get_entry(name).name]


def _with_tags(tags: Sequence[str]) -> list[str]:
    from ..data.catalog import get_entry, list_catalog

    want = {t.lower() for t in tags}
    found = [n for n in list_catalog() if want <= {t.lower() for t in get_entry(n).tags}]
    if not found:
        every = sorted({t for n in list_catalog() for t in get_entry(n).tags})
        raise UnknownNameError(
            f"no catalog entry carries all of the tags {sorted(want)}; tags in use: "
            f"{', '.join(every) or '(none)'}"
        )
    return found


def select_entries(names: Iterable[str] = (), *, tags: Sequence[str] = ()) -> list[str]:
    """Catalog entry names selected by names, wildcards, collections and tags, in order.

    Parameters
    ----------
    names : iterable of str
        Entry names, shell wildcards (``"radar-mch-*"``) or collection names (expanded
        to their members).
    tags : sequence of str
        Select the entries that carry **all** these tags (e.g. ``["radar"]``: every radar
        event; ``["radar", "train-source"]``: the large-area sources).

    Returns
    -------
    list of str
        The entries, without duplicates: those of ``names`` first, then those of ``tags``.

    Raises
    ------
    UnknownNameError
        An unknown name (with the closest ones), a wildcard or tags matching nothing.
    DataValidationError
        Neither names nor tags given.

    Examples
    --------
    >>> select_entries(["synthetic-*"])
    ['synthetic-crowd', 'synthetic-storms']
    >>> select_entries("synthetic-crowd")  # one name
    ['synthetic-crowd']
    >>> "radar-opera-20241126" in select_entries(tags=["radar"])
    True
    """
    names = [names] if isinstance(names, str) else list(names)
    tags = [tags] if isinstance(tags, str) else list(tags)
    if not names and not tags:
        raise DataValidationError(
            "name the catalog entries to build (names, wildcards or a collection) or select "
            "them by tag (--tag radar); `stgeo catalog list` shows the entries"
        )
    picked = [e for n in names for e in _expand_name(n)]
    if tags:
        picked += _with_tags(tags)
    return list(dict.fromkeys(picked))


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_catalog` did for one entry.

    Attributes
    ----------
    name : str
        Catalog entry.
    store : str
        Store path.
    status : {"built", "up to date", "failed"}
        Built now, skipped (a complete store of the same recipe, inputs and options exists)
        or failed (see ``error``).
    seconds : float
        Wall time spent on the entry.
    error : str
        The failure's message ("" otherwise).
    """

    name: str
    store: str
    status: str
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class _Plan:
    name: str
    recipe: str
    source: str | None
    store: Path
    options: dict[str, Any]


def _entry_recipe(name: str, data_root: Any) -> tuple[Any, str, Path, Any, dict[str, Any]]:
    """A catalog entry's recipe: (entry, recipe name, store path, resolved source, options)."""
    from ..data.catalog import get_entry

    entry = get_entry(name)
    rec = dict(entry.recipe)
    if "name" not in rec:
        raise DataValidationError(f"{entry.name}: the catalog entry names no recipe to build it")
    recipe = rec.pop("name")
    store = entry.store_path()
    source = _resolve_source(entry.name, recipe, rec.pop("source", None), store, data_root)
    return entry, recipe, store, source, rec


def _plan_entry(name: str, data_root: Any, options: dict[str, Any]) -> _Plan:
    entry, recipe, store, source, rec = _entry_recipe(name, data_root)
    if source is not None and not Path(source).exists():
        raise DataValidationError(
            _missing_source(entry.name, str(entry.recipe["source"]), data_root)
        )
    check_replaceable(store)
    merged = {**rec, **options}
    _recipe_kwargs(recipe, merged)  # unknown options and bad values are named now
    return _Plan(entry.name, recipe, source, store, merged)


def _recipe_kwargs(recipe: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` typed by the recipe's declared options (without overwrite/verify)."""
    rec = get_recipe(recipe)
    kwargs = parse_options(options, {**COMMON_OPTIONS, **rec.options}, owner=f"recipe {recipe!r}")
    kwargs.pop("overwrite", None)
    kwargs.pop("verify", None)
    return kwargs


def _preflight(names: Sequence[str], data_root: Any, options: dict[str, Any]) -> list[_Plan]:
    """Every entry's plan, or one error listing every entry that cannot be built."""
    plans, problems = [], []
    for name in names:
        try:
            plans.append(_plan_entry(name, data_root, options))
        except StgeoError as e:
            problems.append(str(e))
    if problems:
        raise DataValidationError(
            f"nothing was built: {len(problems)} of {len(names)} entries cannot be built:\n  "
            + "\n  ".join(problems)
        )
    return plans


def _up_to_date(plan: _Plan) -> bool:
    """Whether the entry's store was built from the same inputs and options (cheap check)."""
    rec = get_recipe(plan.recipe)
    inputs = rec.inputs(plan.source, **_recipe_kwargs(plan.recipe, plan.options))
    fp = fingerprint(list(inputs.files), recipe=rec.name, **inputs.options)
    return existing_store_matches(plan.store, rec.name, fp)


def _size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _build_one(
    plan: _Plan, *, force: bool, verify: bool, say: Callable[[str], None]
) -> BuildResult:
    t0 = time.perf_counter()
    try:
        # checked under the store's writer lock: a process that waited for another one
        # building the same entry finds it up to date instead of building it again
        with writer_lock(plan.store):
            if not force and _up_to_date(plan):
                say(f"{plan.name}: up to date ({plan.store})")
                return BuildResult(plan.name, str(plan.store), "up to date")
            say(f"{plan.name}: building {plan.store} ({plan.recipe} recipe) ...")
            path = run_recipe(
                plan.recipe, plan.source, plan.store, overwrite=force, verify=verify,
                **plan.options,
            )  # fmt: skip
    except (StgeoError, OSError, ValueError) as e:
        seconds = time.perf_counter() - t0
        say(f"{plan.name}: FAILED after {seconds:.1f} s: {e}")
        return BuildResult(plan.name, str(plan.store), "failed", seconds, str(e))
    seconds = time.perf_counter() - t0
    say(f"{plan.name}: built in {seconds:.1f} s ({_size_mib(Path(path)):.1f} MiB)")
    return BuildResult(plan.name, path, "built", seconds)


def _prefixed(say: Callable[[str], None], prefix: str, line: str) -> None:
    say(prefix + line)


def _reporter(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


def build_catalog(
    names: Iterable[str] = (),
    *,
    tags: Sequence[str] = (),
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    verify: bool = True,
    progress: bool | Callable[[str], None] = False,
    **options: Any,
) -> list[BuildResult]:
    """Build the stores of many catalog entries in one call (``stgeo catalog build``).

    1. **select** the entries (:func:`select_entries`: names, wildcards, collections,
       ``tags``);
    2. **check** all of them before building any: each has a recipe, its raw source
       exists (relative sources are looked for under ``data_root``, see
       :func:`default_data_roots`), and its store path is free or holds a store stgeo
       wrote (anything else is never overwritten);
    3. **build** them in turn: an entry whose complete store was built from the same
       inputs (names, sizes, times) and options is skipped unless ``force``; a build
       verifies its inputs against their ``SHA256SUMS`` (``verify=False`` skips that) and
       publishes atomically, so an interrupted build never looks complete.

    A failing entry does not stop the others; the failures are raised together at the end.

    Parameters
    ----------
    names : iterable of str
        Entry names, shell wildcards or collection names.
    tags : sequence of str
        Also build every entry carrying all these tags (``["radar"]``: all radar events).
    data_root : path, optional
        Folder of the raw sources (default: ``$STGEO_SHARED_DATA``, else the current
        directory, else ``../shared/data``).
    cache_dir : path, optional
        Root of the entries' relative store paths for this call (default: the
        ``cache_dir`` option, see :func:`stgeo.set_options`). Open the stores later with
        the same cache dir.
    force : bool
        Rebuild stores that are up to date (never stores stgeo did not write).
    verify : bool
        Verify the raw inputs against their checksums before building.
    progress : bool or callable
        Report each entry (``True``: lines on stderr; a callable receives the lines).
    **options
        Recipe options applied to every selected entry (e.g. ``max_frames=2`` for radar).

    Returns
    -------
    list of BuildResult
        One per entry, in order.

    Raises
    ------
    UnknownNameError
        Unknown entry or collection, or nothing matching a wildcard or the tags.
    DataValidationError
        Missing raw data, a URL source not downloaded, a destination stgeo did not
        write (nothing is built then), or failed builds (after the others were built).

    Examples
    --------
    >>> import tempfile, stgeo
    >>> from stgeo.datasets import build_catalog
    >>> d = tempfile.mkdtemp()
    >>> [r.status for r in build_catalog(["synthetic-storms"], cache_dir=d, n_times="4")]
    ['built']
    >>> [r.status for r in build_catalog(["synthetic-storms"], cache_dir=d, n_times="4")]
    ['up to date']
    """
    from ..options import set_options

    say = _reporter(progress)
    # the recipes' own overwrite/verify options are this function's force/verify
    common = parse_options(
        {k: options.pop(k) for k in COMMON_OPTIONS if k in options}, COMMON_OPTIONS
    )
    force = force or common.get("overwrite", False)
    verify = verify and common.get("verify", True)
    selected = select_entries(names, tags=tags)
    scope = set_options(cache_dir=str(cache_dir)) if cache_dir else contextlib.nullcontext()
    with scope:
        plans = _preflight(selected, data_root, dict(options))
        results = []
        t0 = time.perf_counter()
        for i, plan in enumerate(plans, 1):
            prefixed = functools.partial(_prefixed, say, f"[{i}/{len(plans)}] ")
            results.append(_build_one(plan, force=force, verify=verify, say=prefixed))
    failed = [r for r in results if r.status == "failed"]
    counts = {s: sum(r.status == s for r in results) for s in ("built", "up to date", "failed")}
    say(
        f"{len(results)} entries in {time.perf_counter() - t0:.1f} s: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    )
    if failed:
        raise DataValidationError(
            f"{len(failed)} of {len(results)} catalog entries failed to build:\n  "
            + "\n  ".join(f"{r.name}: {r.error}" for r in failed)
        )
    return results

"""The recipe registry: register, list, describe and run recipes by name.

Recipes live in :data:`stgeo._registry.RECIPES` (entry-point group ``stgeo.recipes``).
:func:`run_recipe` looks one up (unknown names get a "did you mean"), parses its options
with :func:`stgeo.datasets.parse_options` against the declared types and runs the recipe
protocol (:class:`stgeo.datasets.Recipe`).

Examples
--------
>>> import os, tempfile, stgeo
>>> from stgeo.datasets import run_recipe
>>> dest = os.path.join(tempfile.mkdtemp(), "storms.zarr")
>>> run_recipe("synthetic", None, dest, kind="storms", n_times=6, shape="16,16") == dest
True
>>> stgeo.open_dataset(dest).rain_rate.shape
(6, 16, 16)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from .._registry import RECIPES
from ..errors import DataValidationError, StgeoTypeError, UnknownNameError
from .options import parse_options
from .protocol import Recipe, RecipeInputs, RecipeOutput, list_files

__all__ = [
    "COMMON_OPTIONS",
    "get_recipe",
    "list_recipes",
    "recipe_info",
    "register_recipe",
    "run_events",
    "run_recipe",
]

#: modules that register the built-in recipes when imported
_BUILTIN_MODULES = (
    "stgeo.datasets.synthetic",
    "stgeo.datasets.radar",
    "stgeo.datasets.sevir",
    "stgeo.datasets.taxibj",
    "stgeo.datasets.taxibj_plus",
    "stgeo.datasets.bikenyc",
    "stgeo.datasets.era5",
)

#: options every recipe accepts
COMMON_OPTIONS: dict[str, type] = {"overwrite": bool, "verify": bool}


class FunctionRecipe(Recipe):
    """A recipe from a function ``func(source, **options) -> Dataset``.

    The inputs are the source file, or every visible file in the source folder; the
    options given (after type coercion) are the store's recorded options.
    """

    def __init__(self, func: Callable[..., xr.Dataset | RecipeOutput]) -> None:
        self.func = func
        self.description = ((func.__doc__ or "").strip().splitlines() or [""])[0]

    def inputs(self, source: str | None, **options: Any) -> RecipeInputs:
        files = list_files(source) if source is not None and Path(source).exists() else []
        root = Path(source) if files and Path(source).is_dir() else None
        return RecipeInputs(files=files, options=options, root=root, plan=source)

    def build(self, inputs: RecipeInputs) -> xr.Dataset | RecipeOutput:
        return self.func(inputs.plan, **inputs.options)


def _as_recipe(obj: Any) -> Recipe:
    if isinstance(obj, type) and issubclass(obj, Recipe):
        return obj()
    if isinstance(obj, Recipe):
        return obj
    if callable(obj):
        return FunctionRecipe(obj)
    raise StgeoTypeError(
        f"a recipe is a Recipe subclass or a function (source, **options) -> Dataset, "
        f"got {type(obj).__name__}"
    )


def register_recipe(
    name: str,
    obj: Any = None,
    *,
    options: Mapping[str, Any] | None = None,
    aliases: Sequence[str] = (),
    description: str = "",
    source_required: bool | None = None,
    events: Mapping[str, str] | None = None,
) -> Any:
    """Register a recipe under ``name``; usable as a decorator.

    Parameters
    ----------
    name : str
        Recipe name (case-insensitive); recorded in the stores it builds.
    obj : Recipe subclass or instance, or function
        A :class:`~stgeo.datasets.Recipe` (its ``inputs``/``build`` steps), or a function
        ``func(source, **options) -> xarray.Dataset`` whose inputs are the source file or
        the files of the source folder. Either way the protocol fingerprints, skips
        identical rebuilds, verifies checksums, records provenance and publishes
        atomically. If omitted, ``register_recipe`` returns a decorator.
    options : mapping of str to type, optional
        Declared options and their types (``str``, ``int``, ``float``, ``bool``,
        ``tuple``, ``list``, :func:`~stgeo.datasets.options.date`, or a converter); text
        values are converted by :func:`~stgeo.datasets.parse_options`. ``overwrite`` and
        ``verify`` are always accepted. Default: the recipe class's ``options``.
    aliases : sequence of str
        Other names.
    description : str
        One line shown by ``stgeo recipe --list`` (default: the recipe's description or
        the first docstring line).
    source_required : bool, optional
        Whether ``source`` must be given (default: the recipe's, True for functions).
    events : mapping of str to str, optional
        Named sources (name -> path under a data root) for ``--all-events``.

    Returns
    -------
    object
        ``obj`` unchanged (so the decorator keeps the function or class usable).

    Examples
    --------
    A function recipe that turns a CSV file of hourly values into a canonical store:

    >>> import os, tempfile
    >>> import pandas as pd, stgeo
    >>> from stgeo.datasets import register_recipe, run_recipe
    >>> @register_recipe("hourly-csv", options={"scale": float})
    ... def hourly_csv(source, *, scale=1.0):
    ...     '''Hourly CSV (time, value) -> value(time).'''
    ...     df = pd.read_csv(source, parse_dates=["time"]).set_index("time")
    ...     return (df * scale).to_xarray()
    >>> d = tempfile.mkdtemp()
    >>> src = os.path.join(d, "v.csv")
    >>> _ = open(src, "w").write("time,value\\n2020-01-01T00:00,1\\n2020-01-01T01:00,2\\n")
    >>> p = run_recipe("hourly-csv", src, os.path.join(d, "v.zarr"), scale="10")
    >>> stgeo.open_dataset(p).value.values.tolist()
    [10.0, 20.0]
    >>> stgeo.open_dataset(p).attrs["stgeo_recipe"]
    'hourly-csv'
    >>> from stgeo._registry import RECIPES
    >>> RECIPES.remove("hourly-csv")
    """

    def deco(target: Any) -> Any:
        rec = _as_recipe(target)
        rec.name = name.lower()
        if options is not None:
            rec.options = dict(options)
        if source_required is not None:
            rec.source_required = source_required
        if events is not None:
            rec.events = dict(events)
        rec.description = description or rec.description
        RECIPES.add(name, rec, aliases=tuple(aliases), description=rec.description, overwrite=True)
        return target

    return deco(obj) if obj is not None else deco


def _load_builtin() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name`` (built-ins loaded; unknown names suggest the closest).

    Examples
    --------
    >>> get_recipe("Radar").name
    'radar'
    """
    _load_builtin()
    entry = RECIPES.entry(name)
    rec = _as_recipe(entry.obj)
    if not rec.name:  # plugged in through an entry point
        rec.name = entry.name
    return rec


def list_recipes(pattern: str = "*") -> list[str]:
    """Names of the available recipes matching ``pattern``.

    Examples
    --------
    >>> from stgeo.datasets import list_recipes
    >>> list_recipes("r*")
    ['radar']
    """
    _load_builtin()
    return RECIPES.list(pattern)


def _declared(rec: Recipe) -> dict[str, Any]:
    return {**COMMON_OPTIONS, **rec.options}


def recipe_info(name: str) -> dict[str, Any]:
    """Description, options (name -> type name), whether a source is needed, and events.

    Examples
    --------
    >>> from stgeo.datasets import recipe_info
    >>> recipe_info("era5")["options"]["variables"]
    'tuple'
    >>> recipe_info("sevir")["options"]["start"]
    'date'
    """
    rec = get_recipe(name)
    return {
        "name": rec.name,
        "description": rec.description,
        "options": {k: getattr(t, "__name__", str(t)) for k, t in _declared(rec).items()},
        "source_required": rec.source_required,
        "events": list(rec.events),
    }


def run_recipe(
    name: str, source: str | os.PathLike | None, dest: str | os.PathLike, **options: Any
) -> str:
    """Run recipe ``name`` on ``source`` and write the canonical Zarr store ``dest``.

    This is what ``stgeo recipe NAME --source PATH --dest STORE [--option k=v ...]`` calls.

    Parameters
    ----------
    name : str
        A registered recipe (``radar``, ``sevir``, ``taxibj``, ``taxibj-plus``, ``bikenyc``,
        ``era5``, ``synthetic``); unknown names raise an error suggesting the closest.
    source : str or path
        The raw input (a file or a folder, depending on the recipe).
    dest : str or path
        The store to write.
    **options
        Recipe options (text is converted to the declared types by
        :func:`~stgeo.datasets.parse_options`; see :func:`recipe_info`).
        ``overwrite=True`` rebuilds even if an identical complete store exists, and is
        needed to replace a store built from other sources or options (a store of another
        kind, e.g. a forecast store, or a folder stgeo did not write is never replaced);
        ``verify=False`` skips checksum verification.

    Returns
    -------
    str
        The store path.

    Raises
    ------
    UnknownNameError
        Unknown recipe or option.
    StgeoTypeError
        An option value of the wrong type.
    DataValidationError
        Missing source or destination; wrong, truncated or foreign input files.

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> p = run_recipe("synthetic", None, os.path.join(tempfile.mkdtemp(), "c.zarr"),
    ...                kind="crowd", n_days="2", shape="8,8")
    >>> stgeo.open_dataset(p).flow.dims
    ('time', 'channel', 'y', 'x')
    """
    rec = get_recipe(name)
    kwargs = parse_options(options, _declared(rec), owner=f"recipe {rec.name!r}")
    if source is None and rec.source_required:
        raise DataValidationError(
            f"recipe {rec.name!r} needs a source (--source PATH): the raw file or folder"
        )
    if dest is None or str(dest) == "":
        raise DataValidationError("a destination store path is needed (--dest STORE)")
    return rec(None if source is None else str(source), str(dest), **kwargs)


def run_events(
    name: str,
    root: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    events: Sequence[str] | None = None,
    **options: Any,
) -> dict[str, str]:
    """Run recipe ``name`` on its named events under ``root``: one store per event.

    This is what ``stgeo recipe NAME --all-events ROOT --dest-dir DIR`` calls.

    Parameters
    ----------
    name : str
        A recipe with named events (``radar``: the 8 pysteps example events).
    root : path
        Data root the events' sources are relative to (``../shared/data``).
    dest_dir : path
        Stores are written as ``dest_dir/<event>.zarr``.
    events : sequence of str, optional
        A subset of the recipe's events (default: all).
    **options
        Recipe options, as for :func:`run_recipe`.

    Returns
    -------
    dict
        Event name -> store path.

    Examples
    --------
    >>> run_events("radar", "../shared/data", "stores", events=["rmi-20210704"])  # doctest: +SKIP
    {'rmi-20210704': 'stores/rmi-20210704.zarr'}
    >>> run_events("era5", "../shared/data", "stores")
    Traceback (most recent call last):
    stgeo.errors.UnknownNameError: recipe 'era5' has no named events; give --source PATH ...
    """
    rec = get_recipe(name)
    if not rec.events:
        raise UnknownNameError(
            f"recipe {rec.name!r} has no named events; give --source PATH --dest STORE"
        )
    from ..data.safety import check_overlap

    check_overlap(dest_dir, [root])
    out = {}
    for event in events or list(rec.events):
        if event not in rec.events:
            raise UnknownNameError(
                f"unknown {rec.name} event {event!r}; known: {', '.join(rec.events)}"
            )
        source = Path(root) / rec.events[event]
        out[event] = run_recipe(name, source, Path(dest_dir) / f"{event}.zarr", **options)
    return out

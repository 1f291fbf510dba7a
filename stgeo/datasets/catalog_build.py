"""Build a catalog entry's store by running the recipe its ``recipe`` block names.

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

import os
from pathlib import Path
from typing import Any

from ..errors import DataValidationError
from .registry import run_recipe

__all__ = ["build_from_catalog"]


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
    root = data_root or os.environ.get("STGEO_SHARED_DATA") or "."
    return str(Path(root) / source)


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
        ``$STGEO_SHARED_DATA``, else the current directory).
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
    from ..data.catalog import get_entry

    entry = get_entry(name)
    rec = dict(entry.recipe)
    if "name" not in rec:
        raise DataValidationError(f"catalog entry {entry.name!r} names no recipe")
    recipe = rec.pop("name")
    store = entry.store_path()
    source = _resolve_source(entry.name, recipe, rec.pop("source", None), store, data_root)
    rec.update(options)
    return run_recipe(recipe, source, str(store), **rec)

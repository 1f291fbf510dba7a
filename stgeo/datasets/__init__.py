"""Recipes turning raw provider formats into canonical xarray stores, and synthetic data.

* :func:`register_recipe`, :func:`run_recipe`, :func:`list_recipes`, :func:`recipe_info`,
  :func:`run_events` — the recipe registry (:mod:`stgeo.datasets.registry`);
* :class:`Recipe`, :class:`RecipeInputs`, :class:`RecipeOutput` — the protocol every recipe
  follows (:mod:`stgeo.datasets.protocol`);
* :func:`parse_options` — the ``KEY=VALUE`` option parser (:mod:`stgeo.datasets.options`);
* :func:`build_catalog` (``stgeo catalog build``), :func:`build_from_catalog`,
  :func:`select_entries`, :class:`BuildResult`, :func:`verify_checksums`;
* :func:`storm_cells`, :func:`crowd_flows` — deterministic synthetic data.
"""

from .catalog_build import BuildResult, build_catalog, build_from_catalog, select_entries
from .checksums import verify_checksums
from .options import parse_options
from .protocol import Recipe, RecipeInputs, RecipeOutput
from .registry import list_recipes, recipe_info, register_recipe, run_events, run_recipe
from .synthetic import crowd_flows, storm_cells

__all__ = [
    "BuildResult",
    "Recipe",
    "RecipeInputs",
    "RecipeOutput",
    "build_catalog",
    "build_from_catalog",
    "crowd_flows",
    "list_recipes",
    "parse_options",
    "recipe_info",
    "register_recipe",
    "run_events",
    "run_recipe",
    "select_entries",
    "storm_cells",
    "verify_checksums",
]

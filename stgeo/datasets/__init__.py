"""Readers and generators producing canonical xarray datasets."""

from .recipes import build_from_catalog, list_recipes, recipe_info, register_recipe, run_recipe
from .synthetic import crowd_flows, storm_cells

__all__ = [
    "build_from_catalog",
    "crowd_flows",
    "list_recipes",
    "recipe_info",
    "register_recipe",
    "run_recipe",
    "storm_cells",
]

"""Former home of the recipe machinery, kept so old imports keep working.

The recipe machinery now lives in modules of one concern each:
:mod:`stgeo.datasets.registry` (register, list, run), :mod:`stgeo.datasets.protocol` (the
fingerprint -> skip -> verify -> provenance -> publish protocol),
:mod:`stgeo.datasets.options` (``KEY=VALUE`` parsing), :mod:`stgeo.datasets.checksums`,
:mod:`stgeo.datasets.catalog_build` and :mod:`stgeo.datasets.command` (the command line).
Import from :mod:`stgeo.datasets` instead.

Examples
--------
>>> from stgeo.datasets import recipes, run_recipe
>>> recipes.run_recipe is run_recipe
True
"""

from __future__ import annotations

from .catalog_build import build_from_catalog
from .checksums import sha256_file, verify_checksums
from .command import recipe_main
from .protocol import existing_store_matches, fingerprint, recipe_attrs
from .registry import list_recipes, recipe_info, register_recipe, run_recipe

__all__ = [
    "build_from_catalog",
    "existing_store_matches",
    "fingerprint",
    "list_recipes",
    "recipe_attrs",
    "recipe_info",
    "recipe_main",
    "register_recipe",
    "run_recipe",
    "sha256_file",
    "verify_checksums",
]

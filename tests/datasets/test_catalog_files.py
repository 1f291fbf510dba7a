"""Every catalog file shipped in catalogs/ loads, validates and names a runnable recipe."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
from dataset_helpers import shared_data

from stgeo.data.catalog import load_catalog_file
from stgeo.datasets import list_recipes, recipe_info

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "catalogs").glob("*.yaml"))


def test_catalog_files_present():
    names = {f.stem for f in FILES}
    assert {"radar", "sevir", "taxibj", "bikenyc", "era5", "synthetic"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_catalog_file_validates(path):
    entries = load_catalog_file(path)
    assert entries
    for e in entries:
        assert e.recipe["name"] in list_recipes(), e.name
        opts = recipe_info(e.recipe["name"])["options"]
        extra = set(e.recipe) - {"name", "source"}
        assert extra <= set(opts), f"{e.name}: unknown recipe options {extra - set(opts)}"
        assert not Path(e.store).is_absolute()
        assert e.license and e.citation and e.description
        for start, end in e.splits.values():
            assert pd.Timestamp(start) <= pd.Timestamp(end)
        names = list(e.splits)
        for a, b in itertools.pairwise(names):  # train < val < test, no overlap
            assert pd.Timestamp(e.splits[a][1]) < pd.Timestamp(e.splits[b][0])
        src = e.recipe.get("source")
        if src and "://" not in src and shared_data().exists():
            assert (shared_data() / src).exists(), f"{e.name}: {src} not in the shared data"

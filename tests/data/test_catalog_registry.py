"""Catalog entries resolve through the CATALOGS registry: shipped, registered, user paths."""

import pytest

import stgeo
from stgeo._registry import CATALOGS
from stgeo.data.catalog import (
    CatalogEntry,
    catalog_registry,
    get_entry,
    list_catalog,
    register_catalog,
)
from stgeo.errors import CatalogError, StgeoTypeError, UnknownNameError


@pytest.fixture
def catalogs(monkeypatch):
    """CATALOGS as a fresh session has it (nothing read yet); restored after the test."""
    monkeypatch.setattr(CATALOGS, "_entries", {})
    monkeypatch.setattr(CATALOGS, "_aliases", {})
    monkeypatch.setattr(CATALOGS, "_entry_points_loaded", False)
    monkeypatch.delenv("STGEO_CATALOG_PATH", raising=False)
    return CATALOGS


def _yaml(path, *entries):
    lines = ["datasets:"]
    for name, store in entries:
        lines.append(f"  - {{name: {name}, store: {store}, variables: [a], time_step: 1h}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_shipped_catalogs_are_read_on_first_lookup(catalogs):
    assert catalogs._entries == {}  # importing stgeo read no file
    assert get_entry("synthetic-storms").time_step == "5min"
    assert catalogs.entry("synthetic-storms").meta["packaged"] is True
    assert {"synthetic-storms", "synthetic-crowd"} <= set(catalogs.list())
    assert list_catalog() == catalogs.list()


def test_register_files_folders_and_entries(catalogs, tmp_path):
    assert register_catalog(_yaml(tmp_path / "one.yaml", ("Reg-One", "one.zarr"))) == ["Reg-One"]
    folder = tmp_path / "more"
    folder.mkdir()
    _yaml(folder / "b.yml", ("reg-three", "three.zarr"))
    _yaml(folder / "a.yaml", ("reg-two", "two.zarr"))
    assert register_catalog(folder) == ["reg-two", "reg-three"]
    entry = CatalogEntry("reg-four", store="four.zarr", variables=["a"], time_step="1h")
    assert stgeo.register_catalog(entry) == ["reg-four"]
    assert list_catalog("reg-*") == ["reg-four", "reg-one", "reg-three", "reg-two"]
    assert get_entry("REG-ONE").name == "Reg-One"
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        register_catalog(entry)
    register_catalog(
        CatalogEntry("reg-four", store="new.zarr", variables=["a"], time_step="1h"),
        overwrite=True,
    )
    assert get_entry("reg-four").store == "new.zarr"
    # a shipped entry is replaced only on request
    with pytest.raises(ValueError, match="'synthetic-storms' is already registered"):
        register_catalog(_yaml(tmp_path / "s.yaml", ("synthetic-storms", "mine.zarr")))
    with pytest.raises(CatalogError, match="no catalog file or folder"):
        register_catalog(tmp_path / "missing.yaml")
    with pytest.raises(StgeoTypeError, match="takes a catalog file or folder path"):
        register_catalog({"name": "x"})


def test_user_paths_overlay_the_registry_at_every_lookup(catalogs, tmp_path, monkeypatch):
    register_catalog(CatalogEntry("user-x", store="reg.zarr", variables=["a"], time_step="1h"))
    opt = _yaml(tmp_path / "opt.yaml", ("user-x", "option.zarr"), ("synthetic-crowd", "o.zarr"))
    env = _yaml(tmp_path / "env.yaml", ("user-x", "env.zarr"))
    with stgeo.set_options(catalog_paths=[opt]):
        assert get_entry("user-x").store == "option.zarr"
        assert get_entry("synthetic-crowd").store == "o.zarr"
        monkeypatch.setenv("STGEO_CATALOG_PATH", str(env))
        assert get_entry("user-x").store == "env.zarr"  # later files win
        assert catalog_registry() is not CATALOGS  # an overlay; the registry is untouched
    monkeypatch.delenv("STGEO_CATALOG_PATH")
    assert get_entry("user-x").store == "reg.zarr"
    assert get_entry("synthetic-crowd").store == "synthetic/crowd.zarr"
    assert catalog_registry() is CATALOGS


def test_unknown_names_suggest_the_closest(catalogs):
    message = r"'synthetic-strom' is neither .* Did you mean 'synthetic-storms'.*Catalog entries: "
    with pytest.raises(UnknownNameError, match=message):
        get_entry("synthetic-strom")
    with pytest.raises(UnknownNameError, match="Did you mean 'synthetic-storms'"):
        stgeo.open_dataset("synthetic-strom")

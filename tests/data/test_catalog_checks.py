"""Catalog search paths must exist; a catalog entry's variables and time step are checked
against its store on open; unreadable catalog files name the file."""

import pytest

import stgeo
from stgeo.data.catalog import list_catalog, load_catalog_file
from stgeo.errors import CatalogError

ENTRY = """datasets:
  - name: demo
    store: {store}
    variables: [{var}]
    time_step: {step}
"""


def _catalog(tmp_path, store, var="rain_rate", step="5min"):
    p = tmp_path / "cat.yaml"
    p.write_text(ENTRY.format(store=store, var=var, step=step))
    return p


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("catstore")
    ds = stgeo.testing.storm_cells(n_times=8, shape=(8, 8), seed=0)
    return stgeo.to_zarr(ds, root / "demo.zarr")


def test_matching_entry_opens(tmp_path, store):
    with stgeo.set_options(catalog_paths=[_catalog(tmp_path, store)]):
        assert stgeo.open_dataset("demo").sizes["time"] == 8


def test_entry_variables_checked_against_the_store(tmp_path, store):
    with stgeo.set_options(catalog_paths=[_catalog(tmp_path, store, var="precip")]):
        with pytest.raises(CatalogError, match=r"lists variables \['precip'\] that the store"):
            stgeo.open_dataset("demo")


def test_entry_time_step_checked_against_the_store(tmp_path, store):
    with stgeo.set_options(catalog_paths=[_catalog(tmp_path, store, step="10min")]):
        with pytest.raises(CatalogError, match="promises a time step of 10min.* has 5min"):
            stgeo.open_dataset("demo")


def test_missing_catalog_path_is_an_error(tmp_path, monkeypatch):
    with stgeo.set_options(catalog_paths=[tmp_path / "typo"]):
        with pytest.raises(CatalogError, match=r"catalog_paths option names .* does not exist"):
            list_catalog()
    monkeypatch.setenv("STGEO_CATALOG_PATH", str(tmp_path / "gone"))
    with pytest.raises(CatalogError, match=r"\$STGEO_CATALOG_PATH .*gone"):
        stgeo.open_dataset("synthetic-storms")


def test_invalid_date_names_the_file(tmp_path):
    p = tmp_path / "dates.yaml"
    p.write_text(ENTRY.format(store="x.zarr", var="a", step="5min")
                 + "    splits: {train: [2020-13-45, 2021-01-01]}\n")  # fmt: skip
    with pytest.raises(CatalogError, match=str(p)):
        load_catalog_file(p)


def test_non_utf8_bytes_name_the_file(tmp_path):
    p = tmp_path / "bytes.yaml"
    p.write_bytes(ENTRY.format(store="x.zarr", var="a\xff", step="5min").encode("latin-1"))
    with pytest.raises(CatalogError, match=str(p)):
        load_catalog_file(p)

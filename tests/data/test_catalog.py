"""Catalog files: schema validation with errors naming the field, lookup, splits."""

import pytest

import stgeo
from stgeo.data.catalog import get_entry, list_catalog, load_catalog_file
from stgeo.errors import CatalogError, UnknownNameError

GOOD = """
datasets:
  - name: demo
    store: demo.zarr
    variables: [rain_rate]
    time_step: 5min
    thresholds: [0, 1, 5]
    splits: {train: ["2021-07-04T12:00", "2021-07-04T12:30"], test: ["2021-07-04T12:35", "2021-07-04T13:00"]}
"""


def _write(tmp_path, text):
    p = tmp_path / "cat.yaml"
    p.write_text(text)
    return p


def test_packaged_catalogs_all_validate():
    names = list_catalog()
    assert {"synthetic-storms", "synthetic-crowd"} <= set(names)
    for n in names:
        e = get_entry(n)
        assert e.variables and e.time_step


def test_good_entry_and_threshold_zero_kept(tmp_path):
    (e,) = load_catalog_file(_write(tmp_path, GOOD))
    assert e.thresholds == [0.0, 1.0, 5.0]
    assert e.store_path().name == "demo.zarr"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("datasets: {name: x}", "'datasets' must be a list"),
        ("[1, 2]", "mapping with a 'datasets' list"),
        (
            "datasets:\n  - {store: x.zarr, variables: [a], time_step: 1h}",
            "missing required field 'name'",
        ),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: a, time_step: 1h}",
            "field 'variables' must be a list",
        ),
        ("datasets:\n  - {name: x, store: x.zarr, variables: [], time_step: 1h}", "non-empty list"),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: [a], time_step: often}",
            "'time_step' 'often'",
        ),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: [a], time_step: 1h, treshold: [1]}",
            "unknown field 'treshold'",
        ),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: [a], time_step: 1h, thresholds: [a]}",
            "'thresholds' must be a list of numbers",
        ),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: [a], time_step: 1h, splits: {training: [1, 2]}}",
            "unknown split 'training'",
        ),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: [a], time_step: 1h, splits: {train: [2021-02-01, 2021-01-01]}}",
            "starts after it ends",
        ),
        (
            "datasets:\n  - {name: x, store: x.zarr, variables: [a], time_step: 1h, recipe: {source: y}}",
            "'recipe' needs a 'name'",
        ),
        ("datasets: [\n", "not valid YAML"),
    ],
)
def test_schema_errors_name_the_field(tmp_path, bad, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog_file(_write(tmp_path, bad))


def test_duplicate_names(tmp_path):
    text = "datasets:\n" + "  - {name: x, store: x.zarr, variables: [a], time_step: 1h}\n" * 2
    with pytest.raises(CatalogError, match="duplicated entry names"):
        load_catalog_file(_write(tmp_path, text))


def test_user_catalog_and_open_by_name_with_split(tmp_path):
    storms = stgeo.testing.storm_cells(n_times=12, shape=(8, 8), start="2021-07-04T12:00")
    stgeo.to_zarr(storms, tmp_path / "demo.zarr")
    cat = _write(tmp_path, GOOD.replace("demo.zarr", str(tmp_path / "demo.zarr")))
    with stgeo.set_options(catalog_paths=[cat]):
        assert "demo" in list_catalog()
        ds = stgeo.open_dataset("DEMO")
        assert ds.attrs["stgeo_catalog"] == "demo"
        test = stgeo.open_dataset("demo", split="test")
        assert test.sizes["time"] == 5  # 12:35 .. 12:55
        with pytest.raises(UnknownNameError, match="no split 'val'"):
            stgeo.open_dataset("demo", split="val")
    assert "demo" not in list_catalog()

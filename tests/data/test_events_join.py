"""join_events, open_events and catalog collections."""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
import pytest

import stgeo
from stgeo.data import (
    Collection,
    get_collection,
    join_events,
    list_collections,
    open_events,
    to_frames,
)
from stgeo.data.collections import load_collections_file
from stgeo.errors import CatalogError, DataValidationError, UnknownNameError


def _event(seed, n=8, shape=(8, 8), **attrs):
    ds = stgeo.testing.storm_cells(n_times=n, shape=shape, seed=seed)
    ds.attrs.update(attrs)
    ds["rain_rate"].attrs["recipe_note"] = f"event {seed}"
    return ds


def test_join_events_round_trip_through_zarr_without_warnings(tmp_path):
    a, b = _event(0, source="x-a", title="same"), _event(1, n=5, source="x-b", title="same")
    joined = join_events([a, b], names=["first", "second"])
    assert joined.event.dtype.kind == "U"
    assert joined.sizes["time"] == 13
    assert "source" not in joined.attrs and joined.attrs["title"] == "same"  # conflicts dropped
    attrs = joined.rain_rate.attrs
    assert "recipe_note" not in attrs and attrs["units"] == "mm h-1" and "grid_mapping" in attrs
    assert "crs" in joined.variables and joined.lat.dims == a.lat.dims
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = stgeo.to_zarr(joined, tmp_path / "j.zarr")
        back = stgeo.open_dataset(path)
        stgeo.validate(back)  # strict: the joined events follow the canonical model
    assert [str(v) for v in back.event.values.tolist()] == ["first"] * 8 + ["second"] * 5
    np.testing.assert_array_equal(back.rain_rate.values, joined.rain_rate.values)
    # windows never cross the event boundary (the times of b repeat those of a)
    w = stgeo.data.Windows(to_frames(back), in_steps=3, out_steps=2)
    assert len(w) == (8 - 4) + (5 - 4)


def test_join_events_keeps_existing_labels_and_refuses_mismatches():
    a, b = _event(0), _event(1)
    inner = join_events([a, b], names=["a", "b"])
    outer = join_events([inner, _event(2)])
    assert sorted(set(outer.event.values.tolist())) == ["a", "b", "event-1"]
    with pytest.raises(DataValidationError, match="same grid|one grid"):
        join_events([a, _event(3, shape=(8, 10))])
    slow = a.isel(time=slice(None, None, 2))
    with pytest.raises(DataValidationError, match="time step"):
        join_events([a, slow])
    with pytest.raises(DataValidationError, match="distinct labels"):
        join_events([a, b], names=["x", "x"])
    with pytest.raises(DataValidationError, match="same variables"):
        join_events([a, b.rename(rain_rate="rr")])


def test_open_events_from_lists_paths_and_collections(tmp_path):
    a = _event(0)
    p = stgeo.to_zarr(_event(1), tmp_path / "ev-b.zarr")
    events, policy = open_events([a, p])
    assert [e.name for e in events] == ["event-0", "ev-b"] and policy is None
    events, _ = open_events([a, a])
    assert [e.name for e in events] == ["event-0", "event-1"]
    with pytest.raises(DataValidationError, match="empty list"):
        open_events([])


def test_collections_are_listed_and_validated(tmp_path):
    assert {"radar-train", "radar-test"} <= set(list_collections())
    train = get_collection("RADAR-TRAIN")
    assert isinstance(train, Collection) and train.time_step == "per-event"
    assert len(train.members) == 5 and "radar-bom66-20201031" in train.members
    for m in train.members + get_collection("radar-test").members:
        assert stgeo.data.get_entry(m).name == m  # every member is a catalog entry
    with pytest.raises(UnknownNameError, match="radar-train"):
        get_collection("radar-trian")
    cat = tmp_path / "c.yaml"
    cat.write_text(
        textwrap.dedent("""
        datasets:
          - {name: cx-a, store: a.zarr, variables: [rain_rate], time_step: 5min}
        collections:
          - name: cx-pair
            description: two events
            members: [cx-a, radar-fmi-20160928]
            time_step: 10min
        """)
    )
    with stgeo.set_options(catalog_paths=[str(cat)]):
        assert get_collection("cx-pair").members == ["cx-a", "radar-fmi-20160928"]
        assert "cx-pair" in list_collections("cx-*") and "cx-a" in stgeo.list_catalog("cx-*")
    bad = tmp_path / "bad.yaml"
    for body, match in (
        ("collections:\n  - {name: x}\n", "missing required field 'members'"),
        ("collections:\n  - {name: x, members: []}\n", "non-empty"),
        ("collections:\n  - {name: x, members: [a], time_step: often}\n", "per-event"),
        ("collections:\n  - {name: x, members: [a], step: 5min}\n", "unknown field"),
        (
            "datasets:\n  - {name: x, store: a, variables: [v], time_step: 5min}\n"
            "collections:\n  - {name: x, members: [a]}\n",
            "name a dataset",
        ),
    ):
        bad.write_text(body)
        with pytest.raises(CatalogError, match=match):
            load_collections_file(bad)

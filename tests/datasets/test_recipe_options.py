"""The one KEY=VALUE option parser (CLI --option, recipe options, catalog recipe blocks)."""

from __future__ import annotations

import datetime

import pytest

from stgeo.datasets import parse_options
from stgeo.datasets.options import date
from stgeo.errors import StgeoTypeError, UnknownNameError

TYPES = {"n": int, "x": float, "flag": bool, "names": tuple, "items": list, "start": date}


def test_typed_values_from_text():
    got = parse_options(
        ["n=3", "x=0.5", "flag=off", "names=a, b,", "items=[1, 2]", "start=2019-06-01T12:00"],
        TYPES,
    )
    assert got == {
        "n": 3,
        "x": 0.5,
        "flag": False,
        "names": ("a", "b"),
        "items": [1, 2],
        "start": "2019-06-01T12:00",
    }


def test_typed_values_from_a_mapping_keep_python_values():
    got = parse_options(
        {"n": 3, "flag": 1, "names": ["a"], "start": datetime.date(2019, 1, 1), "x": None},
        TYPES,
    )
    assert got == {"n": 3, "flag": True, "names": ("a",), "start": "2019-01-01", "x": None}


def test_dashes_in_keys_and_one_type_for_all():
    assert parse_options(["max-events=2"], {"max_events": int}) == {"max_events": 2}
    assert parse_options(["a=1", "b=x,y"], str) == {"a": "1", "b": "x,y"}


def test_untyped_values_are_json_literals_or_text():
    got = parse_options(["a=4", "b=true", "c=[16, 32]", "d=simvp", "e=32,32", "f=2019-01-01"])
    assert got == {"a": 4, "b": True, "c": [16, 32], "d": "simvp", "e": "32,32", "f": "2019-01-01"}
    assert parse_options(None) == {} and parse_options({"a": "4"}) == {"a": "4"}


@pytest.mark.parametrize(
    "item,match",
    [
        ("n=many", r"option n='many': expected int"),
        ("n=true", r"option n='true': expected int"),
        ("x=fast", r"option x='fast': expected float"),
        ("flag=maybe", r"flag='maybe': expected bool \(true/false"),
        ("start=yesterday at noon", r"start=.*expected date \(e.g. 2019-01-01"),
        ("items=[1,", r"items='\[1,': expected list"),
    ],
)
def test_bad_values_name_the_key_and_type(item, match):
    with pytest.raises(StgeoTypeError, match=match):
        parse_options([item], TYPES, owner="recipe 'x'")


def test_bad_items_and_unknown_keys():
    with pytest.raises(StgeoTypeError, match="KEY=VALUE"):
        parse_options(["n3"], TYPES)
    with pytest.raises(StgeoTypeError, match="KEY=VALUE"):
        parse_options(["=3"])
    with pytest.raises(UnknownNameError, match="recipe 'x' has no option 'nn'. Did you mean 'n'"):
        parse_options(["nn=3"], TYPES, owner="recipe 'x'")

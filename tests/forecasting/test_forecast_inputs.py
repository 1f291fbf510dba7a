"""forecast() checks its arguments' types and the data's units against the model's spec."""

import pytest

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.models import ModelSpec, TrainedModel


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)


@pytest.fixture(scope="module")
def trained(storms):
    spec = ModelSpec(
        "convlstm", 2, 2, ["rain_rate"], ["rain_rate"], "5min", (16, 16),
        hyperparameters={"hidden": 4, "num_layers": 1, "kernel_size": 3},
        units={"rain_rate": "mm h-1"},
    )  # fmt: skip
    return TrainedModel(spec.build(), spec)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lead_steps": "12"}, "lead_steps must be an int"),
        ({"lead_steps": [1, "2"]}, "lead_steps must be an int"),
        ({"lead_steps": True}, "lead_steps must be an int"),
        ({"lead_steps": [1.5]}, "lead_steps must be an int"),
        ({"variable": 3}, "variable must be a name"),
        ({"progress": "no"}, "progress must be True or False"),
        ({"lazy": 1}, "lazy must be True or False"),
        ({"precision": 16}, "precision must be a string"),
        ({"output": 3}, "output must be a path"),
        ({"step_tolerance": "0.1"}, "step_tolerance must be a number"),
        ({"tile_overlap": None}, "tile_overlap must be a number"),
    ],
)
def test_argument_types(storms, kwargs, match):
    with pytest.raises(StgeoTypeError, match=match):
        stgeo.forecast(storms, "persistence", **kwargs)


def test_string_lead_steps_are_not_leads_one_and_two(storms):
    # the reproducer: "12" used to give leads 1 and 2
    with pytest.raises(StgeoTypeError):
        stgeo.forecast(storms, "persistence", lead_steps="12", progress=False)
    fc = stgeo.forecast(storms, "persistence", lead_steps=12, init_times=storms.time[-1:],
                        progress=False)  # fmt: skip
    assert fc.sizes["lead_time"] == 12


def test_units_of_the_data_against_the_model(storms, trained):
    ok = stgeo.forecast(storms, trained, progress=False)  # mm h-1 == mm h-1
    same = stgeo.forecast(storms.assign(rain_rate=storms.rain_rate.assign_attrs(units="mm/h")),
                          trained, progress=False)  # fmt: skip
    assert (ok.values == same.values).all()
    dbz = storms.assign(rain_rate=storms.rain_rate.assign_attrs(units="dBZ"))
    with pytest.raises(DataValidationError, match=r"'dBZ'.*expects 'mm h-1'.*not convertible"):
        stgeo.forecast(dbz, trained, progress=False)
    mmmin = storms.assign(rain_rate=storms.rain_rate.assign_attrs(units="mm min-1"))
    with pytest.raises(DataValidationError, match=r"\* 60"):
        stgeo.forecast(mmmin, trained, progress=False)
    # data without units are not compared (strict=False entry point)
    bare = storms.assign(rain_rate=storms.rain_rate.assign_attrs(units=""))
    stgeo.forecast(bare, trained, progress=False)

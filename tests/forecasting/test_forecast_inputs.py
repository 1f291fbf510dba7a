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


def test_huge_lead_steps_refused_before_any_allocation(storms):
    """lead_steps=10**13 once built a list of every lead (the process was killed): now the
    size of the forecasts is checked against the memory first."""
    with pytest.raises(DataValidationError, match=r"(?s)GiB of memory.*fewer lead steps"):
        stgeo.forecast(storms, "persistence", lead_steps=10**13, progress=False)
    with pytest.raises(DataValidationError, match="GiB of memory"):
        stgeo.forecast(storms, "persistence", lead_steps=10**13, output="unused.zarr")


def test_forecasts_that_do_not_fit_in_memory_suggest_output(storms, tmp_path, monkeypatch):
    import stgeo.forecasting.core as core

    monkeypatch.setattr(core, "_available_memory", lambda: 2 * 2**20)  # 2 MiB left
    kw = dict(lead_steps=200, batch_size=1, progress=False)  # ~1.6 MiB a batch, 7 MiB in all
    with pytest.raises(DataValidationError, match=r"returned in memory.*pass output="):
        stgeo.forecast(storms, "persistence", **kw)
    fc = stgeo.forecast(storms, "persistence", output=tmp_path / "f.zarr", **kw)
    assert fc.sizes["lead_time"] == 200
    with pytest.raises(DataValidationError, match="one batch of 8 windows"):
        stgeo.forecast(storms, "persistence", lead_steps=200, progress=False)


def test_far_leads_alone_equal_the_full_rollout(storms, trained):
    """A list of far leads keeps only those (the rollout drops the others): the same values
    as the full forecast at those leads."""
    full = stgeo.forecast(storms, trained, lead_steps=9, progress=False)
    some = stgeo.forecast(storms, trained, lead_steps=[2, 7, 9], progress=False)
    assert (some.values == full.isel(lead_time=[1, 6, 8]).values).all()


@pytest.mark.parametrize(
    ("init_times", "match"),
    [
        (
            slice("2030-01-01", None),
            r"starts at 2030-01-01 00:00:00, after the last time of the data \(2021-07-04 12:55:00\)",
        ),
        (
            slice(None, "2000-01-01"),
            r"ends at 2000-01-01 00:00:00, before the first time of the data \(2021-07-04 12:00:00\)",
        ),
        (
            slice(None, "2021-07-04T12:02"),
            r"before the first initial time with a complete input history \(2021-07-04 12:05:00.*2 time steps",
        ),
    ],
)
def test_init_times_outside_the_data_say_so(storms, trained, init_times, match):
    with pytest.raises(DataValidationError, match=match) as err:
        stgeo.forecast(storms, trained, init_times=init_times, progress=False)
    assert "no valid window" not in str(err.value)


def test_unknown_option_names_the_model_not_its_builder(storms):
    with pytest.raises(
        StgeoTypeError, match=r"'persistence' takes no option 'foo'; it takes no options"
    ) as err:
        stgeo.forecast(storms, "persistence", foo=1, progress=False)
    assert "_build" not in str(err.value)
    with pytest.raises(
        StgeoTypeError, match=r"'extrapolation' takes no option 'foo'; its options are threshold"
    ):
        stgeo.forecast(storms, "extrapolation", foo=1, progress=False)


def test_missing_model_path_is_a_stgeo_error(storms, tmp_path):
    from stgeo.errors import PathNotFoundError

    with pytest.raises(PathNotFoundError, match="no model at") as err:
        stgeo.forecast(storms, str(tmp_path / "goood"), progress=False)
    assert isinstance(err.value, FileNotFoundError)

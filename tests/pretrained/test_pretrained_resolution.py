"""forecast(model=NAME): an architecture name resolves to a pretrained artefact that fits."""

import logging

import numpy as np
import pandas as pd
import pytest

import stgeo
from stgeo.errors import DataValidationError, UnknownNameError


def test_architecture_name_uses_the_fitting_artefact_and_says_so(
    storms, tiny_simvp, register, caplog
):
    register(tiny_simvp, "tiny-simvp")
    with caplog.at_level(logging.INFO, logger="stgeo.forecasting"):
        fc = stgeo.forecast(storms, "simvp", lead_steps=2, progress=False)
    assert fc.attrs["pretrained"] == "tiny-simvp"
    assert fc.attrs["model"] == "simvp"
    assert "using the pretrained model 'tiny-simvp'" in caplog.text
    # the same forecast as the artefact loaded by hand (fp16-stored weights restored)
    direct = stgeo.forecast(
        storms, stgeo.pretrained.get("tiny-simvp"), lead_steps=2, progress=False
    )
    np.testing.assert_array_equal(fc.values, direct.values)
    # the accessor, an alias of the architecture and the artefact's own name
    assert storms.st.forecast(model="simvp-gsta", lead_steps=1).attrs["pretrained"] == "tiny-simvp"
    assert (
        stgeo.forecast(storms, "tiny-simvp", lead_steps=1, progress=False).attrs["pretrained"]
        == "tiny-simvp"
    )


def test_baselines_are_unchanged(storms, tiny_simvp, register):
    register(tiny_simvp, "tiny-simvp")
    fc = stgeo.forecast(storms, "persistence", lead_steps=2, progress=False)
    assert "pretrained" not in fc.attrs


@pytest.mark.parametrize("case", ["units", "step", "variable"])
def test_nothing_fits_lists_the_artefacts_and_the_train_call(storms, tiny_simvp, register, case):
    register(tiny_simvp, "tiny-simvp")
    ds = storms.copy()
    if case == "units":
        ds["rain_rate"] = ds.rain_rate.assign_attrs(units="m s-1")
        why = "expects 'mm h-1'"
    elif case == "step":
        ds = ds.resample(time="10min").mean()
        ds.rain_rate.attrs.update(storms.rain_rate.attrs)
        why = "step is 10min"
    else:
        ds = ds.rename(rain_rate="precip")
        ds["precip"].attrs.pop("standard_name")
        why = "no variable 'rain_rate'"
    with pytest.raises(DataValidationError) as e:
        stgeo.forecast(ds, "simvp", lead_steps=2, progress=False)
    msg = str(e.value)
    assert "no pretrained 'simvp' model fits these data" in msg
    assert "tiny-simvp (simvp)" in msg and why in msg
    assert "stgeo.train(ds, model='simvp'" in msg
    # the artefact by name says why it does not fit
    with pytest.raises(DataValidationError, match="does not fit the data"):
        stgeo.forecast(ds, "tiny-simvp", lead_steps=2, progress=False)


def test_architecture_without_any_artefact(storms):
    with pytest.raises(DataValidationError, match="(?s)untrained weights.*Train one first"):
        stgeo.forecast(storms, "swin", lead_steps=2, progress=False)


def test_variable_found_by_standard_name(storms, tiny_simvp, register):
    register(tiny_simvp, "tiny-simvp")
    ds = storms.rename(rain_rate="precip")  # standard_name rainfall_rate kept
    fc = stgeo.forecast(ds, "simvp", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-simvp" and fc.name == "rain_rate"
    fc = stgeo.forecast(ds, "simvp", variable="precip", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-simvp"


def test_units_compared_by_meaning_and_step_tolerance(storms, tiny_simvp, register):
    register(tiny_simvp, "tiny-simvp")
    ds = storms.copy()
    ds["rain_rate"] = ds.rain_rate.assign_attrs(units="mm/h")
    assert stgeo.forecast(ds, "simvp", lead_steps=1, progress=False).attrs["pretrained"]
    ds = ds.assign_coords(
        time=pd.date_range(ds.time.values[0], periods=ds.sizes["time"], freq="6min")
    )
    with pytest.warns(stgeo.errors.StgeoWarning, match="step"):
        fc = stgeo.forecast(ds, "simvp", lead_steps=1, progress=False)  # 6 min: within 25%
    assert fc.attrs["pretrained"] == "tiny-simvp"


def test_several_fit_default_then_index_order(storms, tiny_simvp, register, caplog):
    register(tiny_simvp, "tiny-simvp-a")
    register(tiny_simvp, "tiny-simvp-b")
    with caplog.at_level(logging.INFO, logger="stgeo.forecasting"):
        fc = stgeo.forecast(storms, "simvp", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-simvp-a"
    assert "also fitting: ['tiny-simvp-b']" in caplog.text
    register(tiny_simvp, "tiny-simvp-c", default=True)
    assert (
        stgeo.forecast(storms, "simvp", lead_steps=1, progress=False).attrs["pretrained"]
        == "tiny-simvp-c"
    )


def test_wrapper_found_by_its_backbone(storms, tiny_simvp, register):
    register(tiny_simvp, "tiny-wrapped", backbone="earthfarseer")
    fc = stgeo.forecast(storms, "earthfarseer", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-wrapped"
    assert [m.card.name for m in stgeo.pretrained.find(storms, "earthfarseer")] == ["tiny-wrapped"]


def test_unknown_name_mentions_models_and_pretrained(storms, tiny_simvp, register):
    register(tiny_simvp, "tiny-simvp")
    with pytest.raises(UnknownNameError, match="(?s)Did you mean.*Pretrained models: .*tiny-simvp"):
        stgeo.forecast(storms, "tiny-simvq", lead_steps=1, progress=False)


def test_package_refuses_an_architecture_name(tiny_simvp, tmp_path):
    with pytest.raises(DataValidationError, match="registered model architecture"):
        stgeo.pretrained.package(tiny_simvp, name="simvp", out=tmp_path / "x")


def test_base_architecture_takes_its_named_variants(storms, register):
    """model="simvp" uses a "simvp-radar" artefact; a variant name asks for that variant
    only; an architecture with its own builder (tau) is not a variant of simvp."""
    small = stgeo.train(
        storms, model="simvp-radar", in_steps=2, out_steps=2, epochs=1, hid_S=4, hid_T=8,
        N_T=1, N_S=2, max_steps_per_epoch=1, max_val_steps=1, progress=False, seed=0,
    )  # fmt: skip
    register(small, "tiny-simvp-variant")
    assert stgeo.models.model_info("simvp-radar")["family"] == "simvp"
    assert stgeo.models.model_info("tau-radar")["family"] == "tau"
    fc = stgeo.forecast(storms, "simvp", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-simvp-variant"
    assert stgeo.pretrained.find(storms, "simvp-radar")[0].card.name == "tiny-simvp-variant"
    assert not stgeo.pretrained.find(storms, "simvp-taxibj")
    assert not stgeo.pretrained.find(storms, "tau")
    with pytest.raises(DataValidationError, match="no pretrained 'simvp-taxibj' model is"):
        stgeo.forecast(storms, "simvp-taxibj", lead_steps=1, progress=False)


def test_per_cell_artefact_fits_only_where_it_was_trained(storms, register):
    """A model with per-cell parameters: its card records the training grid's corners, and
    data of the same shape elsewhere do not fit (nor a malformed record)."""
    m = stgeo.train(
        storms, model="stresnet-stacked-small", in_steps=2, out_steps=1, epochs=1,
        max_steps_per_epoch=1, max_val_steps=1, progress=False, seed=0,
    )  # fmt: skip
    card = register(m, "tiny-per-cell")
    assert card.grid_corners == stgeo.conventions.grid_corners(storms)
    fc = stgeo.forecast(storms, "stresnet-stacked", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-per-cell"
    moved = storms.assign_coords(lon=storms.lon - 20.0)
    with pytest.raises(DataValidationError) as e:
        stgeo.forecast(moved, "stresnet-stacked", lead_steps=1, progress=False)
    assert "tiny-per-cell" in str(e.value) and "runs only on its training grid: the" in str(e.value)
    with pytest.raises(DataValidationError, match="grid_corners"):
        stgeo.pretrained.PretrainedCard.from_dict({**card.to_dict(), "grid_corners": {"lat": [1]}})


def test_same_name_of_another_quantity_does_not_fit(storms, tiny_simvp, register):
    """rain_rate in mm h-1 whose standard_name says air_temperature is not rain."""
    register(tiny_simvp, "tiny-simvp")
    ds = storms.copy()
    ds["rain_rate"] = ds.rain_rate.assign_attrs(standard_name="air_temperature")
    problems = stgeo.pretrained.misfits(stgeo.pretrained.card("tiny-simvp"), ds)[1]
    assert problems and "standard_name 'air_temperature'" in problems[0]
    with pytest.raises(DataValidationError, match="another quantity of the same name"):
        stgeo.forecast(ds, "simvp", lead_steps=1, progress=False)
    ds["rain_rate"].attrs.pop("standard_name")  # no standard name: not compared
    assert stgeo.forecast(ds, "simvp", lead_steps=1, progress=False).attrs["pretrained"]


def test_choice_is_said_once_per_process_at_warning_level(storms, tiny_simvp, register, caplog):
    register(tiny_simvp, "tiny-simvp-once")
    with caplog.at_level(logging.INFO, logger="stgeo.forecasting"):
        stgeo.forecast(storms, "simvp", lead_steps=1, progress=False)
        stgeo.forecast(storms, "simvp", lead_steps=1, progress=False)
        stgeo.forecast(storms, "tiny-simvp-once", lead_steps=1, progress=False)  # by name
    said = [
        r for r in caplog.records if "using the pretrained model 'tiny-simvp-once'" in r.message
    ]
    assert [r.levelno for r in said] == [logging.WARNING, logging.INFO, logging.INFO]
    assert "model='tiny-simvp-once' to choose it by name" in said[0].message


def test_data_without_units_warn_when_picked_by_architecture(storms, tiny_simvp, register):
    register(tiny_simvp, "tiny-simvp")
    ds = storms.copy()
    ds["rain_rate"].attrs.pop("units")
    with pytest.warns(stgeo.errors.StgeoWarning, match=r"have no units.*'mm h-1'"):
        fc = stgeo.forecast(ds, "simvp", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "tiny-simvp"
    stgeo.forecast(ds, "tiny-simvp", lead_steps=1, progress=False)  # chosen by name: no warning


def test_synthetic_training_data_warns_on_other_data():
    """storms-convlstm learnt from generated storms: picked for 'convlstm' on data that are
    not stgeo's synthetic storms, it says so; on the synthetic storms, or named, it does not."""
    ds = stgeo.testing.storm_cells(n_times=8, shape=(16, 16), seed=0)
    assert stgeo.forecast(ds, "convlstm", lead_steps=1, progress=False).attrs["pretrained"]
    real = ds.copy()
    real.attrs = {"source": "a radar composite"}
    with pytest.warns(stgeo.errors.StgeoWarning, match="synthetic data only"):
        fc = stgeo.forecast(real, "convlstm", lead_steps=1, progress=False)
    assert fc.attrs["pretrained"] == "storms-convlstm"
    stgeo.forecast(real, "storms-convlstm", lead_steps=1, progress=False)
    # the radar nowcaster learnt from radar archives
    assert not stgeo.pretrained.fit.trained_on_synthetic_data(
        stgeo.pretrained.card("radar-nowcaster")
    )

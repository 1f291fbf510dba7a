"""``stgeo.train(..., calibration="quantile")``: fitted on the training split, saved, applied."""

from __future__ import annotations

import numpy as np
import pytest

import stgeo
from stgeo.errors import DataValidationError

KW = dict(
    model="convlstm",
    in_steps=4,
    out_steps=3,
    epochs=2,
    hidden=8,
    num_layers=1,
    patch=4,
    normalization="log1p",
    loss="mae",
    progress=False,
    seed=0,
)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=72, shape=(32, 32), seed=0)


@pytest.fixture(scope="module")
def models(storms):
    return stgeo.train(storms, **KW), stgeo.train(storms, calibration="quantile", **KW)


def _bias(fc, obs, thr):
    truth = np.stack([obs.sel(time=fc.valid_time.values[:, i]).values for i in range(3)], 1)
    return (fc.values >= thr).mean(axis=(0, 2, 3)) / (truth >= thr).mean(axis=(0, 2, 3))


def test_the_same_weights_with_a_calibration_in_the_spec(models):
    raw, cal = models
    assert raw.spec.calibration is None
    assert cal.spec.calibration["method"] == "quantile"
    assert cal.spec.calibration["leads"] == [1, 2, 3]
    assert cal.spec.extra["training"]["calibration"] == "quantile"
    assert "calibration" not in raw.spec.extra["training"]
    pairs = zip(raw.module.state_dict().values(), cal.module.state_dict().values(), strict=True)
    for a, b in pairs:
        assert bool((a == b).all())


def test_calibrated_forecasts_have_the_observed_rain_area(models):
    raw, cal = models
    held_out = stgeo.testing.storm_cells(n_times=48, shape=(32, 32), seed=1)
    inits = held_out.time[3:-3]
    f_raw = stgeo.forecast(held_out, raw, lead_steps=3, init_times=inits, progress=False)
    f_cal = stgeo.forecast(held_out, cal, lead_steps=3, init_times=inits, progress=False)
    b_raw, b_cal = _bias(f_raw, held_out.rain_rate, 1.0), _bias(f_cal, held_out.rain_rate, 1.0)
    assert np.abs(b_cal - 1).max() < np.abs(b_raw - 1).max()
    assert np.abs(b_cal - 1).max() < 0.3, b_cal


def test_saved_and_loaded_calibrated_model_forecasts_the_same(models, storms, tmp_path):
    cal = models[1]
    path = cal.save(tmp_path / "m")
    a = stgeo.forecast(storms, cal, lead_steps=5, progress=False)
    b = stgeo.forecast(storms, path, lead_steps=5, progress=False)
    np.testing.assert_array_equal(a.values, b.values)
    lazy = stgeo.forecast(storms, path, lead_steps=5, progress=False, lazy=True, chunk_size=16)
    np.testing.assert_array_equal(lazy.values, a.values)


def test_unknown_calibration_is_refused_before_reading_data():
    with pytest.raises(DataValidationError, match="calibration must be None or 'quantile'"):
        stgeo.train("no-such-store.zarr", calibration="isotonic", **KW)

"""The forecast path supplies calendar features to models that take them (stresnet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError
from stgeo.forecasting import forecast_array


@pytest.fixture(scope="module")
def trained():
    # 4 July 2014 (a Friday) is a US holiday; the synthetic flows treat it like a Sunday
    ds = stgeo.testing.crowd_flows(
        n_days=12, shape=(6, 4), step="1h", start="2014-06-25", holidays=["2014-07-04"]
    )
    m = stgeo.train(
        ds,
        "stresnet-small",
        out_steps=1,
        epochs=1,
        batch_size=16,
        progress=False,
        precision="fp32",
        seed=0,
        time_features={"holidays": "US", "subdiv": "NY"},
    )
    return ds, m


def test_save_load_forecast_identical(trained, tmp_path):
    ds, m = trained
    kw = {"init_times": ds.time[-30:], "lead_steps": 3, "progress": False, "precision": "fp32"}
    fc = stgeo.forecast(ds, m, **kw)
    m.save(tmp_path / "m")
    back = stgeo.load_model(tmp_path / "m")
    assert back.spec.features == m.spec.features
    np.testing.assert_array_equal(stgeo.forecast(ds, back, **kw).values, fc.values)
    lazy = stgeo.forecast(ds, back, lazy=True, chunk_size=8, **kw)
    np.testing.assert_allclose(lazy.values, fc.values, rtol=1e-6, atol=1e-6)


def test_forecast_uses_the_holiday_flag_of_the_valid_time(trained):
    """A weight on the holiday feature changes exactly the forecasts valid on 4 July."""
    ds, m = trained
    kw = {"lead_steps": 2, "progress": False, "precision": "fp32"}
    init = ds.time.sel(time=slice("2014-07-03T20:00", "2014-07-04T03:00"))
    before = stgeo.forecast(ds, m, init_times=init, **kw)
    with torch.no_grad():
        m.module.external[0].weight[:, -1] += 5.0  # the holiday column
    try:
        after = stgeo.forecast(ds, m, init_times=init, **kw)
    finally:
        with torch.no_grad():
            m.module.external[0].weight[:, -1] -= 5.0
    on_holiday = before.valid_time.dt.strftime("%Y-%m-%d") == "2014-07-04"
    differs = np.abs(after - before).max(["channel", "y", "x"]) > 1e-6
    assert bool(on_holiday.any()) and bool((~on_holiday).any())
    np.testing.assert_array_equal(differs.values, on_holiday.values)


def test_forecast_array_needs_the_times(trained):
    ds, m = trained
    x = np.zeros((1, 5, 2, 6, 4), np.float32)
    with pytest.raises(DataValidationError, match="init_times"):
        forecast_array(m.module, m.spec, x, 1)
    out = forecast_array(m.module, m.spec, x, 1, init_times=ds.time.values[-1:], time_step="1h")
    assert out.shape == (1, 1, 2, 6, 4)


def test_short_history_names_the_trend(trained):
    ds, m = trained
    with pytest.raises(DataValidationError, match="168 consecutive time steps|history"):
        stgeo.forecast(ds.isel(time=slice(0, 100)), m, progress=False)


def test_external_variables_from_training_to_forecast(tmp_path):
    ds = stgeo.testing.crowd_flows(n_days=9, shape=(4, 4), step="1h", start="2014-06-28")
    rng = np.random.default_rng(0)
    ds["temperature"] = ("time", 20 + 5 * rng.standard_normal(ds.sizes["time"]))
    m = stgeo.train(
        ds,
        "stresnet-small",
        out_steps=1,
        epochs=1,
        progress=False,
        precision="fp32",
        time_features={"holidays": "US", "variables": ["temperature"]},
    )
    assert m.spec.hyperparameters["n_features"] == 12
    ext = m.spec.features["variables"]
    assert ext["names"] == ["temperature"] and abs(ext["mean"][0] - 20) < 1.5
    m.save(tmp_path / "m")
    back = stgeo.load_model(tmp_path / "m")
    init = ds.time.values[-6:-1]
    kw = {"init_times": init, "progress": False, "precision": "fp32"}
    fc = stgeo.forecast(ds, back, **kw)
    warm = ds.copy()
    warm["temperature"] = ds.temperature.where(ds.time != init[2] + np.timedelta64(1, "h"), 60.0)
    with torch.no_grad():
        back.module.external[0].weight[:, -1] += 5.0  # make the temperature column count
    hot, ref = stgeo.forecast(warm, back, **kw), stgeo.forecast(ds, back, **kw)
    changed = (np.abs(hot - ref).max(["lead_time", "channel", "y", "x"]) > 1e-6).values
    assert changed.tolist() == [False, False, True, False, False]
    assert fc.shape == (5, 1, 2, 4, 4)
    with pytest.raises(DataValidationError, match="no external variable 'temperature'"):
        stgeo.forecast(ds.drop_vars("temperature"), back, **kw)
    with pytest.raises(DataValidationError, match="lack"):
        stgeo.forecast(ds, back, init_times=ds.time.values[-1:], progress=False)

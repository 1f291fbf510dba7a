"""Baselines declare their own settings: forecasting resolves every baseline by one path.

A third-party baseline registered here, with its own settings hook, forecasts by name through
``stgeo.forecast`` although nothing in ``stgeo/forecasting`` knows it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.models import BaselineSettings, baseline_settings, register_model

HOOK_CALLS: list[tuple] = []


class WindowMean(torch.nn.Module):
    """The mean of the input frames, times ``scale``, for every lead."""

    def __init__(self, out_steps: int, scale: float) -> None:
        super().__init__()
        self.out_steps = out_steps
        self.scale = scale

    def forward(self, x):
        return (x.mean(1, keepdim=True) * self.scale).expand(-1, self.out_steps, -1, -1, -1)


def window_mean_settings(step, in_steps, lead_steps, window="15min", **kwargs):
    """Inputs: one ``window`` of frames (a duration); two leads by default."""
    HOOK_CALLS.append((step, in_steps, lead_steps, window, dict(kwargs)))
    n = pd.Timedelta(window) / step
    if n != int(n):
        raise DataValidationError(f"window {window} is not a multiple of the step {step}")
    return BaselineSettings(in_steps or int(n), lead_steps or 2, {"scale": 1.0, **kwargs})


def _build_window_mean(in_steps, out_steps, channels, grid_shape=None, scale=1.0):
    return WindowMean(out_steps, scale)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    """Registered when the tests run, not at import: the registry-generated contract tests
    (tests/models/test_contract.py) are collected from the registered names."""
    register_model(
        "test-window-mean",
        _build_window_mean,
        baseline=True,
        settings=window_mean_settings,
        overwrite=True,
    )


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=16, shape=(12, 10), seed=5)


def test_third_party_baseline_forecasts_by_name(storms):
    HOOK_CALLS.clear()
    fc = stgeo.forecast(storms, "test-window-mean", window="15min", progress=False)
    (step, in_steps, lead_steps, window, extra) = HOOK_CALLS[-1]
    assert (step, in_steps, lead_steps, window, extra) == (
        pd.Timedelta("5min"),
        None,
        None,
        "15min",
        {},
    )
    assert fc.sizes["lead_time"] == 2  # the hook's default leads
    assert fc.attrs["model"] == "test-window-mean" and fc.attrs["in_steps"] == 3
    rain = storms.rain_rate.values
    t0 = 5  # the third initial time: inputs are frames 3, 4, 5
    expected = rain[t0 - 2 : t0 + 1].mean(0)
    np.testing.assert_allclose(fc.isel(init_time=t0 - 2, lead_time=1).values, expected, rtol=1e-6)
    assert fc.sizes["init_time"] == storms.sizes["time"] - 2


def test_hook_gets_in_steps_lead_steps_and_options(storms):
    HOOK_CALLS.clear()
    fc = stgeo.forecast(
        storms, "TEST-WINDOW-MEAN", in_steps=2, lead_steps=[1, 4], scale=2.0, progress=False
    )
    assert HOOK_CALLS[-1] == (pd.Timedelta("5min"), 2, 4, "15min", {"scale": 2.0})
    assert list(fc.lead_time.values.astype("timedelta64[m]").astype(int)) == [5, 20]
    rain = storms.rain_rate.values
    np.testing.assert_allclose(
        fc.isel(init_time=-1, lead_time=0).values, 2.0 * rain[-2:].mean(0), rtol=1e-6
    )


def test_hook_errors_reach_the_user(storms):
    with pytest.raises(DataValidationError, match="window 7min is not a multiple"):
        stgeo.forecast(storms, "test-window-mean", window="7min", progress=False)


def test_baseline_settings_contract():
    step = pd.Timedelta("5min")
    assert baseline_settings("test-window-mean", step=step, window="1h") == BaselineSettings(
        12, 2, {"scale": 1.0}
    )
    # no hook: in_steps is required, out_steps is the furthest lead, options pass through
    register_model("test-no-hook", _build_window_mean, baseline=True, overwrite=True)
    with pytest.raises(DataValidationError, match=r"'test-no-hook' needs in_steps"):
        baseline_settings("test-no-hook", step=step)
    assert baseline_settings(
        "test-no-hook", step=step, in_steps=3, lead_steps=5, scale=0.5
    ) == BaselineSettings(3, 5, {"scale": 0.5})
    with pytest.raises(StgeoTypeError, match="not a baseline"):
        baseline_settings("simvp", step=step)


def test_bad_settings_registrations():
    with pytest.raises(StgeoTypeError, match="baseline=True"):
        register_model("test-bad-a", _build_window_mean, settings=window_mean_settings)
    with pytest.raises(StgeoTypeError, match="must be a function"):
        register_model("test-bad-b", _build_window_mean, baseline=True, settings=3)
    register_model(
        "test-bad-c",
        _build_window_mean,
        baseline=True,
        settings=lambda step, in_steps, lead_steps, **kw: (1, 1, {}),
        overwrite=True,
    )
    with pytest.raises(StgeoTypeError, match="returned tuple; it must return"):
        baseline_settings("test-bad-c", step=pd.Timedelta("1h"))


def test_climatology_settings_live_in_its_registration():
    step = pd.Timedelta("1h")
    assert baseline_settings("climatology", step=step) == BaselineSettings(
        24, 24, {"period_steps": 24}
    )
    assert baseline_settings(
        "diurnal-persistence", step=step, in_steps=30, lead_steps=6, period_steps=12
    ) == BaselineSettings(30, 6, {"period_steps": 12})
    with pytest.raises(DataValidationError, match="not a whole multiple"):
        baseline_settings("climatology", step=step, period="90min")
    assert baseline_settings("persistence", step=step) == BaselineSettings(1, 1, {})


def _code_strings(path: Path) -> set[str]:
    """String constants of a module's code (docstrings left out)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    }


def test_forecasting_names_no_baseline():
    package = Path(stgeo.__file__).parent / "forecasting"
    baselines = set(stgeo.list_models()) - set(stgeo.list_models(baselines=False))
    assert {"persistence", "climatology"} <= baselines
    for path in sorted(package.glob("*.py")):
        named = {s for s in _code_strings(path) if s.lower() in baselines}
        assert not named, f"{path.name} branches on baseline names {named}"

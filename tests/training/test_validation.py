"""Training's validation scores are stgeo.metrics' scores of the same forecasts (NaN rules too)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import stgeo
import stgeo.metrics as sm
from stgeo.data import Windows, to_frames
from stgeo.models import register_model
from stgeo.training import train
from stgeo.training.validation import ValidationSums

FAST = {"precision": "fp32", "progress": False, "batch_size": 4}


class RecordingConv(torch.nn.Module):
    """A 3x3 convolution of the last frame that keeps every forecast it makes in eval mode."""

    def __init__(self, out_steps):
        super().__init__()
        self.out_steps = out_steps
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.eval_io: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x):
        y = self.conv(x[:, -1]).unsqueeze(1).expand(-1, self.out_steps, -1, -1, -1)
        if not self.training:
            self.eval_io.append((x.detach().clone(), y.detach().clone()))
        return y


BUILT: list[RecordingConv] = []


def _build(in_steps, out_steps, channels, grid_shape=None):
    BUILT.append(RecordingConv(out_steps))
    return BUILT[-1]


register_model("test-val-recording", _build, overwrite=True)


@pytest.fixture(scope="module")
def storms_with_gaps():
    ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=4, resolution_km=12)
    rain = ds["rain_rate"].values.copy()
    rng = np.random.default_rng(0)
    # missing observations in the validation period only (training refuses NaN batches)
    for t in range(33, 40):
        ys, xs = rng.integers(0, 16, 12), rng.integers(0, 16, 12)
        rain[t, ys, xs] = np.nan
    return ds.assign(rain_rate=(ds["rain_rate"].dims, rain, ds["rain_rate"].attrs))


def _validation_forecasts(ds, m, model, in_steps, out_steps):
    """The forecasts of the (last) validation pass, its observations and persistence."""
    val = [pd.Timestamp(t) for t in m.spec.extra["training"]["splits"]["val"]]
    windows = Windows(
        to_frames(ds), time_range=val, inputs_in_range=False, in_steps=in_steps,
        out_steps=out_steps,
    )  # fmt: skip
    frames = ds["rain_rate"].values  # float32, like the training batches
    index = {t: i for i, t in enumerate(pd.DatetimeIndex(ds["time"].values))}
    xs = torch.cat([x for x, _ in model.eval_io])[:, :, 0].numpy()
    preds = torch.cat([y for _, y in model.eval_io])[:, :, 0].numpy()
    assert len(preds) == len(windows)
    obs, persistence = [], []
    for k, t0 in enumerate(windows.init_times):
        i = index[pd.Timestamp(t0)]
        # same window; no-data (NaN) inputs reach the model as physical 0 (no normalisation)
        np.testing.assert_array_equal(xs[k], np.nan_to_num(frames[i - in_steps + 1 : i + 1]))
        obs.append(frames[i + 1 : i + 1 + out_steps])
        persistence.append(np.repeat(np.nan_to_num(frames[i])[None], out_steps, axis=0))
    dims = ("window", "lead", "y", "x")
    return (
        xr.DataArray(preds, dims=dims),
        xr.DataArray(np.stack(obs), dims=dims),
        xr.DataArray(np.stack(persistence), dims=dims),
    )


@pytest.mark.parametrize("thresholds", [[0.1, 1.0, 3.0], [0.5, 1e6]])
def test_val_scores_equal_stgeo_metrics_on_the_same_forecasts(storms_with_gaps, thresholds):
    ds = storms_with_gaps
    BUILT.clear()
    m = train(
        ds,
        "test-val-recording",
        in_steps=2,
        out_steps=2,
        epochs=1,
        max_steps_per_epoch=2,
        thresholds=thresholds,
        normalization="none",  # forecasts in physical units, bit for bit
        splits={"train": 0.75, "val": 0.25},
        **FAST,
    )
    model = BUILT[-1]
    fc, ob, pers = _validation_forecasts(ds, m, model, 2, 2)
    # no-data inputs are filled (forecasts have no NaN); no-data observations are excluded
    assert int(ob.isnull().sum()) > 0 and int(fc.isnull().sum()) == 0
    h = m.history[0]
    csi = sm.csi(fc, ob, threshold=thresholds).values.tolist()
    assert h["val_csi"] == pytest.approx(csi, nan_ok=True, rel=0, abs=0)
    csi_m = float(sm.csi_m(fc, ob, threshold=thresholds))
    assert (math.isnan(h["val_csi_m"]) and math.isnan(csi_m)) or h["val_csi_m"] == csi_m
    assert h["val_mse"] == pytest.approx(float(sm.mse(fc, ob)), rel=1e-6)
    if thresholds[-1] > 1e5:  # no event in either field: CSI and CSI-M are NaN, not skipped
        assert math.isnan(h["val_csi"][-1]) and math.isnan(h["val_csi_m"])
    else:
        assert not math.isnan(h["val_csi_m"])
    # persistence comes from the registered baseline, scored the same way
    met = m.metrics
    p_csi = sm.csi(pers, ob, threshold=thresholds).values.tolist()
    assert met["persistence_val_csi"] == pytest.approx(p_csi, nan_ok=True, rel=0, abs=0)
    assert met["persistence_val_mse"] == pytest.approx(float(sm.mse(pers, ob)), rel=1e-6)


def test_validation_sums_merge_across_batches():
    rng = np.random.default_rng(1)
    f = rng.gamma(1.0, 2.0, (6, 3, 5, 5)).astype(np.float32)
    o = rng.gamma(1.0, 2.0, (6, 3, 5, 5)).astype(np.float32)
    o[0, 0, :2] = np.nan
    f[1, 1, 3] = np.nan
    whole = ValidationSums([0.5, 2.0], torch.device("cpu"))
    whole.add(torch.from_numpy(f), torch.from_numpy(o))
    parts = ValidationSums([0.5, 2.0], torch.device("cpu"))
    for i in range(0, 6, 2):
        parts.add(torch.from_numpy(f[i : i + 2]), torch.from_numpy(o[i : i + 2]))
    a, b = whole.result(), parts.result()
    assert a["csi"] == b["csi"] and a["csi_m"] == b["csi_m"]  # counts: exact
    assert a["mse"] == pytest.approx(b["mse"], rel=1e-6)  # float32 squared errors per batch
    assert a["mse"] == pytest.approx(float(sm.mse(xr.DataArray(f), xr.DataArray(o))), rel=1e-6)
    fd, od = xr.DataArray(f), xr.DataArray(o)
    assert whole.result()["csi"] == sm.csi(fd, od, threshold=[0.5, 2.0]).values.tolist()
    assert int(whole.n) == int((~np.isnan(f) & ~np.isnan(o)).sum())


@pytest.mark.parametrize(
    ("value", "match"),
    [(np.nan, "every validation target pixel is NaN"), (np.inf, "infinite values in the valid")],
)
def test_unusable_validation_periods_are_refused(value, match):
    ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0)
    ds["rain_rate"][-4:] = value  # only the validation period (last 10%)
    kw = dict(in_steps=2, out_steps=1, epochs=1, hid_S=4, hid_T=8, N_T=1, progress=False)
    with pytest.raises(stgeo.errors.DataValidationError, match=match):
        stgeo.train(ds, model="simvp", max_steps_per_epoch=1, **kw)

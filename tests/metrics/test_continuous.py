"""Continuous scores: formulas, latitude weights, both MSE conventions, attrs."""

from __future__ import annotations

import numpy as np
import xarray as xr
from metrics_helpers import make_pair

import stgeo.metrics as sm


def test_formulas_against_numpy():
    fc, obs = make_pair(channels=2)
    f, o = (a.values for a in sm.align(fc, obs))
    e = f - o
    res = sm.score(fc, obs, metrics=["mse", "mae", "rmse", "mean_error", "mse_frame", "mae_frame"])
    # per lead: axes (init, channel, y, x) reduced
    ax = (0, 2, 3, 4)
    np.testing.assert_allclose(res.mse, (e**2).mean(axis=ax), rtol=1e-12)
    np.testing.assert_allclose(res.mae, np.abs(e).mean(axis=ax), rtol=1e-12)
    np.testing.assert_allclose(res.rmse, np.sqrt((e**2).mean(axis=ax)), rtol=1e-12)
    np.testing.assert_allclose(res.mean_error, e.mean(axis=ax), rtol=1e-12)
    # OpenSTL convention: sum over C*H*W per frame, mean over samples (and frames)
    np.testing.assert_allclose(res.mse_frame, (e**2).sum(axis=(2, 3, 4)).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        res.mae_frame, np.abs(e).sum(axis=(2, 3, 4)).mean(axis=0), rtol=1e-12
    )
    assert res.mse_frame.attrs["frame_points"] == 2 * 16 * 14
    allframes = sm.mse_frame(fc, obs)
    np.testing.assert_allclose(allframes, (e**2).sum(axis=(2, 3, 4)).mean(), rtol=1e-12)


def test_latitude_weights_1d_and_2d():
    rng = np.random.default_rng(1)
    lat = np.array([-60.0, -20.0, 0.0, 45.0, 80.0])
    lon = np.arange(6.0)
    f = xr.DataArray(
        rng.normal(size=(3, 5, 6)),
        dims=("time", "lat", "lon"),
        coords={"time": np.arange(3), "lat": lat, "lon": lon},
        attrs={"units": "K"},
    )
    o = f + rng.normal(size=f.shape)
    w = np.cos(np.deg2rad(lat))[None, :, None] * np.ones(f.shape)
    e = (f - o).values
    np.testing.assert_allclose(
        float(sm.mse(f, o, weights="latitude")), (w * e**2).sum() / w.sum(), rtol=1e-12
    )
    np.testing.assert_allclose(
        float(sm.rmse(f, o, weights="latitude")), np.sqrt((w * e**2).sum() / w.sum()), rtol=1e-12
    )
    wl = sm.latitude_weights(f)
    np.testing.assert_allclose(float(wl.mean()), 1.0)
    # per time, like WeatherBench's per-init RMSE
    per_t = sm.rmse(f, o, weights="latitude", preserve_dims="time")
    np.testing.assert_allclose(
        per_t, np.sqrt((w * e**2).sum(axis=(1, 2)) / w.sum(axis=(1, 2))), rtol=1e-12
    )
    # 2-D lat on a projected grid, with a NaN pixel excluded from sums and weights
    fc, ob = make_pair()
    ob = ob.where(~((ob.y == 0) & (ob.x == 0)))
    res = sm.score(fc, ob, metrics=["mse"], weights="latitude", preserve_dims=())
    ff, oo = (a.values for a in sm.align(fc, ob))
    w2 = np.broadcast_to(np.cos(np.deg2rad(fc.lat.values)), ff.shape)
    ok = np.isfinite(oo)
    np.testing.assert_allclose(
        float(res.mse), (w2 * (ff - oo) ** 2)[ok].sum() / w2[ok].sum(), rtol=1e-12
    )
    assert res.mse.attrs["units"] == "(mm h-1)^2"

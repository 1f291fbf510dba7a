"""score(): alignment on valid_time, tidy output, streaming == eager == Dask, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from metrics_helpers import make_pair

import stgeo.metrics as sm
from stgeo._registry import METRICS
from stgeo.errors import DataValidationError, StgeoTypeError, StgeoWarning, UnknownNameError

ALL = [
    "csi",
    "pod",
    "far",
    "sr",
    "frequency_bias",
    "hss",
    "ets",
    "csi_m",
    "fss",
    "mse",
    "mse_frame",
    "mae",
    "mae_frame",
    "rmse",
    "mean_error",
    "ssim",
    "psnr",
]


def _score(fc, obs, **kw):
    kw.setdefault("metrics", ALL)
    kw.setdefault("thresholds", [0, 0.5, 2.0])
    kw.setdefault("windows", [1, 3])
    kw.setdefault("data_range", 20.0)
    return sm.score(fc, obs, **kw)


def test_alignment_on_valid_time_matches_manual_selection(pair):
    fc, obs = pair
    f, o = sm.align(fc, obs)
    assert f.dims == o.dims == fc.dims
    for i in range(fc.sizes["init_time"]):
        for j in range(fc.sizes["lead_time"]):
            vt = fc.valid_time.values[i, j]
            np.testing.assert_array_equal(o.values[i, j], obs.sel(time=vt).values)
    # without the valid_time coordinate it is derived from init_time + lead_time
    _f2, o2 = sm.align(fc.drop_vars("valid_time"), obs)
    np.testing.assert_array_equal(o2.values, o.values)
    # observations with extra channel labels are selected by label
    fcc, obc = make_pair(channels=2)
    obc2 = xr.concat([obc, obc.isel(channel=[0]).assign_coords(channel=["extra"])], "channel")
    np.testing.assert_array_equal(
        sm.align(fcc, obc2.isel(channel=[2, 1, 0]))[1].values, sm.align(fcc, obc)[1].values
    )


def test_tidy_output(pair):
    fc, obs = pair
    res = _score(fc, obs)
    assert set(res.data_vars) == set(ALL)
    assert res.csi.dims == ("threshold", "lead_time")
    assert res.fss.dims == ("threshold", "window", "lead_time")
    assert res.csi_m.dims == ("lead_time",)
    for name in ("mse", "ssim", "psnr", "rmse"):
        assert res[name].dims == ("lead_time",)
    for name, v in res.data_vars.items():
        assert v.attrs.get("units") and v.attrs.get("long_name"), name
    assert res.mse.attrs["units"] == "(mm h-1)^2" and res.rmse.attrs["units"] == "mm h-1"
    assert res.threshold.values.tolist() == [0.0, 0.5, 2.0]
    # threshold 0 is real: every non-negative value is an event
    assert float(res.csi.sel(threshold=0).isel(lead_time=0)) == 1.0
    # metric functions give the same numbers as score()
    np.testing.assert_allclose(
        sm.csi(fc, obs, threshold=[0, 0.5, 2.0], preserve_dims="lead_time"), res.csi
    )
    np.testing.assert_allclose(sm.mse(fc, obs, preserve_dims="lead_time"), res.mse)
    np.testing.assert_allclose(
        sm.fss(fc, obs, threshold=[0, 0.5, 2.0], window=[1, 3], preserve_dims="lead_time"),
        res.fss,
    )
    np.testing.assert_allclose(
        sm.ssim(fc, obs, data_range=20.0, preserve_dims="lead_time"), res.ssim
    )
    # preserve nothing / reduce_dims
    flat = _score(fc, obs, metrics=["csi", "mse"], preserve_dims=())
    assert flat.csi.dims == ("threshold",) and flat.mse.dims == ()
    by_init = _score(fc, obs, metrics=["csi"], reduce_dims=["lead_time", "y", "x"])
    assert by_init.csi.dims == ("threshold", "init_time")


def test_streaming_equals_eager_equals_dask(pair):
    fc, obs = make_pair(n_times=12, nan_fraction=0.05)
    eager = _score(fc, obs, batch_init_times=100)
    for batch in (1, 4):
        xr.testing.assert_allclose(
            _score(fc, obs, batch_init_times=batch), eager, rtol=1e-12, atol=1e-12
        )
    lazy = _score(fc.chunk(init_time=3, lead_time=1), obs.chunk(time=2))
    xr.testing.assert_allclose(lazy, eager, rtol=1e-12, atol=1e-12)
    # counts are exactly equal
    kw = {"metrics": ["hits", "misses", "false_alarms", "correct_negatives"], "thresholds": [0.5]}
    xr.testing.assert_identical(
        sm.score(fc, obs, batch_init_times=1, **kw),
        sm.score(fc.chunk(init_time=2), obs.chunk(time=5), **kw),
    )
    # preserving the streamed dim concatenates the blocks
    a = _score(fc, obs, metrics=["csi", "mse"], preserve_dims="init_time", batch_init_times=2)
    b = _score(fc, obs, metrics=["csi", "mse"], preserve_dims="init_time", batch_init_times=50)
    xr.testing.assert_allclose(a, b)
    # pooled CSI and latitude weights on Dask equal the eager results
    kw = {
        "metrics": ["csi", "mse"],
        "thresholds": [0.5, 2.0],
        "pool": [1, 2, 4],
        "weights": "latitude",
    }
    xr.testing.assert_allclose(
        sm.score(fc.chunk(init_time=4), obs.chunk(time=3), **kw),
        sm.score(fc, obs, **kw),
        rtol=1e-12,
    )
    # compute=False returns a lazy Dataset
    res = sm.score(fc.chunk(init_time=3), obs, metrics=["mse"], compute=False)
    assert res.mse.chunks is not None
    np.testing.assert_allclose(res.mse.values, eager.mse.values)


def test_lazy_zarr_inputs_stream(tmp_path):
    fc, obs = make_pair(n_times=14)
    fc.to_dataset().to_zarr(tmp_path / "fc.zarr", consolidated=False)
    obs.to_dataset().to_zarr(tmp_path / "obs.zarr", consolidated=False)
    eager = _score(fc, obs, metrics=["csi", "mse", "fss"])
    for chunks in (None, {}):
        fz = xr.open_zarr(tmp_path / "fc.zarr", chunks=chunks, consolidated=False)
        oz = xr.open_zarr(tmp_path / "obs.zarr", chunks=chunks, consolidated=False)
        if chunks is None:
            assert fz.rain_rate.chunks is None  # lazily indexed, not Dask
        res = _score(fz, oz, metrics=["csi", "mse", "fss"], batch_init_times=3 if chunks else None)
        xr.testing.assert_allclose(res, eager, rtol=1e-12, atol=1e-12)


def test_nan_policy_continuous_and_frames():
    fc, obs = make_pair(nan_fraction=0.1)
    f, o = sm.align(fc, obs)
    valid = np.isfinite(f.values) & np.isfinite(o.values)
    err = (f.values - o.values)[valid]
    res = _score(fc, obs, metrics=["mse", "mae", "rmse", "mean_error"], preserve_dims=())
    np.testing.assert_allclose(float(res.mse), np.mean(err**2), rtol=1e-12)
    np.testing.assert_allclose(float(res.mae), np.mean(np.abs(err)), rtol=1e-12)
    np.testing.assert_allclose(float(res.rmse), np.sqrt(np.mean(err**2)), rtol=1e-12)
    np.testing.assert_allclose(float(res.mean_error), np.mean(err), rtol=1e-12)
    # every frame has a NaN -> SSIM/PSNR have no frame left to score
    assert np.isnan(float(sm.ssim(fc, obs, data_range=20.0)))


def test_errors_are_clear(pair):
    fc, obs = pair
    with pytest.raises(UnknownNameError, match=r"Did you mean 'csi'.*Valid metric names"):
        sm.score(fc, obs, metrics=["csii"], thresholds=[1])
    with pytest.raises(DataValidationError, match="need thresholds"):
        sm.score(fc, obs, metrics=["csi"])
    with pytest.raises(DataValidationError, match="mean_error"):
        sm.score(fc, obs, metrics=["bias"])
    with pytest.raises(DataValidationError, match="positive"):
        sm.score(fc, obs, metrics=["fss"], thresholds=[1], windows=[3, -1])
    with pytest.raises(DataValidationError, match="positive"):
        sm.score(fc, obs, metrics=["csi"], thresholds=[1], pool=0)
    with pytest.raises(DataValidationError, match="windows"):
        sm.score(fc, obs, metrics=["fss"], thresholds=[1])
    with pytest.raises(DataValidationError, match="lack 2 of the forecast's valid times"):
        sm.score(fc, obs.isel(time=slice(0, -2)), metrics=["mse"])
    with pytest.raises(DataValidationError, match="different grids"):
        sm.score(fc, obs.isel(x=slice(0, -1)), metrics=["mse"])
    with pytest.raises(DataValidationError, match="different grids"):
        sm.score(fc, obs.assign_coords(x=obs.x + 500.0), metrics=["mse"])
    with pytest.raises(DataValidationError, match=r"other way along 'y'.*obs.sortby\('y'"):
        sm.score(fc, obs.isel(y=slice(None, None, -1)), metrics=["mse"])
    with pytest.raises(DataValidationError, match="valid range"):
        sm.score(fc.assign_attrs(valid_range=[0, 255]), obs, metrics=["csi"], thresholds=[300])
    with pytest.raises(DataValidationError, match="data_range"):
        sm.score(fc, obs, metrics=["psnr"])
    with pytest.raises(DataValidationError, match="'lat' coordinate"):
        sm.score(fc.drop_vars("lat"), obs, metrics=["mse"], weights="latitude")
    with pytest.raises(DataValidationError, match="lead_time"):
        sm.score(fc.drop_vars(["valid_time", "init_time"]), obs, metrics=["mse"])
    with pytest.warns(StgeoWarning, match="data's units"):
        sm.score(fc / 100, obs / 100, metrics=["csi"], thresholds=[16, 74])


def test_registry():
    for name in [*ALL, "bias", "me", "ts", "csi-m", "CSI"]:
        assert name in METRICS
    assert METRICS.get("bias") is sm.frequency_bias
    assert METRICS.get("me") is sm.mean_error
    assert sm.list_metrics("mse*") == ["mse", "mse_frame"]
    assert METRICS.entry("ets").meta["family"] == "contingency"


def test_time_aligned_inputs_without_lead_time():
    t = pd.date_range("2020-01-01", periods=6, freq="h")
    o = xr.DataArray(
        np.arange(6 * 4.0).reshape(6, 2, 2), dims=("time", "y", "x"), coords={"time": t}
    )
    f = (o + 1).isel(time=slice(1, 4))
    res = sm.score(f, o, metrics=["mean_error", "mse"])
    assert float(res.mean_error) == 1.0 and float(res.mse) == 1.0
    with pytest.raises(DataValidationError, match="lack 1"):
        sm.score(f.assign_coords(time=t[3:6] + pd.Timedelta("1h")), o, metrics=["mse"])


def test_slabbed_kernels_equal_whole_blocks(monkeypatch):
    import stgeo.metrics._base as base

    fc, obs = make_pair(n_times=9, channels=2, nan_fraction=0.05)
    kw = {
        "metrics": ["hits", "misses", "correct_negatives", "mse", "mae", "mean_error"],
        "thresholds": [0.0, 1.0],
        "weights": "latitude",
    }
    whole = sm.score(fc, obs, **kw)
    whole_dask = sm.score(fc.chunk(init_time=2), obs, **kw)
    monkeypatch.setattr(base, "SLAB_BYTES", 2048)  # force many slabs per block
    for f in (fc, fc.chunk(init_time=2)):
        for preserve in (("lead_time",), ("init_time", "channel"), ()):
            a = sm.score(f, obs, preserve_dims=preserve, **kw)
            monkeypatch.setattr(base, "SLAB_BYTES", 2**40)
            b = sm.score(f, obs, preserve_dims=preserve, **kw)
            monkeypatch.setattr(base, "SLAB_BYTES", 2048)
            xr.testing.assert_allclose(a, b, rtol=1e-12)
    xr.testing.assert_allclose(whole, whole_dask, rtol=1e-12)


# -- registered metric families: score() is a loop over them ------------------------------------
@pytest.fixture
def clean_metrics(monkeypatch):
    """Metrics and families registered by a test vanish after it."""
    from stgeo._registry import METRIC_FAMILIES

    for reg in (METRICS, METRIC_FAMILIES):
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))
        monkeypatch.setattr(reg, "_aliases", dict(reg._aliases))


def _exceedance_sums(fc, ob, s):
    """Forecast and observed exceedance counts per threshold: additive sums."""
    thr = xr.DataArray(s.thresholds, dims="threshold", coords={"threshold": s.thresholds})
    ok = fc.notnull() & ob.notnull()
    return xr.Dataset(
        {
            "fcst_events": ((fc >= thr) & ok).sum(s.reduce),
            "obs_events": ((ob >= thr) & ok).sum(s.reduce),
        }
    )


def test_every_builtin_metric_names_a_registered_family():
    from stgeo.metrics import evaluate

    for name in ALL:
        fam = sm.get_metric_family(METRICS.entry(name).meta["family"])
        assert set(fam.settings) <= set(sm.family.SETTINGS)
    assert tuple(evaluate._RESOLVERS) == sm.family.SETTINGS
    assert sm.get_metric_family("contingency").container is sm.ContingencyTable
    assert stgeo_register_metric() is sm.register_metric


def stgeo_register_metric():
    import stgeo

    return stgeo.register_metric


def test_register_a_metric_of_a_new_family_streams_and_runs_on_dask(clean_metrics):
    fam = sm.MetricFamily("test-exceedance", sums=_exceedance_sums, settings=("thresholds",))
    sm.register_metric(
        "test_event_ratio",
        family=fam,
        finalize=lambda s: (s.fcst_events / s.obs_events).rename("test_event_ratio"),
        aliases=["test_er"],
    )
    fc, obs = make_pair(n_times=10, nan_fraction=0.05)
    kw = {"metrics": ["test_er", "frequency_bias"], "thresholds": [0.5, 2.0]}
    eager = sm.score(fc, obs, batch_init_times=100, **kw)
    # the same numbers as the built-in frequency bias (H + F) / (H + M)
    ratio = eager.test_event_ratio.transpose(*eager.frequency_bias.dims)
    np.testing.assert_allclose(ratio, eager.frequency_bias, rtol=1e-12)
    xr.testing.assert_allclose(sm.score(fc, obs, batch_init_times=1, **kw), eager)
    xr.testing.assert_allclose(sm.score(fc.chunk(init_time=3), obs.chunk(time=4), **kw), eager)
    with pytest.raises(DataValidationError, match=r"metrics \['test_event_ratio'\] need thresh"):
        sm.score(fc, obs, metrics=["test_event_ratio"])
    # a second metric of the now registered family, by family name
    sm.register_metric(
        "test_fcst_events", family="Test-Exceedance", finalize=lambda s: s.fcst_events
    )
    res = sm.score(fc, obs, metrics=["test_fcst_events"], thresholds=[0.5], preserve_dims=())
    assert res.test_fcst_events.dims == ("threshold",) and int(res.test_fcst_events[0]) > 0


def test_register_metric_errors(clean_metrics):
    with pytest.raises(UnknownNameError, match="unknown metric family 'continous'.*'continuous'"):
        sm.register_metric("test_x", family="continous", finalize=lambda s: s.mse())
    with pytest.raises(ValueError, match="'csi' is already registered"):
        sm.register_metric("csi", family="contingency", finalize=sm.ContingencyTable.csi)
    with pytest.raises(StgeoTypeError, match="finalize must be callable"):
        sm.register_metric("test_x", family="continuous", finalize="mse")
    with pytest.raises(StgeoTypeError, match=r"unknown settings \['scales'\]"):
        sm.MetricFamily("test-bad", sums=_exceedance_sums, settings=("scales",))
    other = sm.MetricFamily("continuous", sums=_exceedance_sums)
    with pytest.raises(ValueError, match="a different metric family named 'continuous'"):
        sm.register_metric("test_x", family=other, finalize=lambda s: s)
    METRICS.add("test_plain", lambda f, o: f - o)
    with pytest.raises(DataValidationError, match="registered without a family"):
        sm.score(*make_pair(), metrics=["test_plain"])


def test_settings_only_validated_for_families_that_use_them(pair):
    fc, obs = pair
    # windows, pool and data_range are ignored by metrics that do not use them
    res = sm.score(fc, obs, metrics=["mse"], windows=[-1], pool=0, data_range=-5.0)
    assert "mse" in res
    with pytest.raises(DataValidationError, match="positive"):
        sm.score(fc, obs, metrics=["csi"], thresholds=[1], pool=0)

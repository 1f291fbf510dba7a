"""stgeo.forecasting: labels, baselines, rollout, Zarr output, and errors raised before compute."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import stgeo
from stgeo.data import Normalizer, to_frames
from stgeo.errors import DataValidationError, StgeoTypeError, UnknownNameError
from stgeo.forecasting import forecast, forecast_array, rollout_offsets
from stgeo.models import ModelSpec, TrainedModel, load_model, register_model

CALLS = {"n": 0}


class Step(torch.nn.Module):
    """Linear extrapolation in normalised units: frame k after the last input = last + k."""

    def __init__(self, out_steps: int):
        super().__init__()
        self.out_steps = out_steps
        self.scale = torch.nn.Parameter(torch.ones(()))  # makes it a "learned" model

    def forward(self, x):
        CALLS["n"] += 1
        k = torch.arange(1, self.out_steps + 1, dtype=x.dtype, device=x.device)
        return x[:, -1:] + self.scale * k.view(1, -1, 1, 1, 1)


def _build_step(in_steps, out_steps, channels, grid_shape=None):
    return Step(out_steps)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    """Registered when the tests run, not at import: the registry-generated contract tests
    (tests/models/test_contract.py) are collected from the registered names."""
    register_model("test-forecast-step", _build_step, overwrite=True)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=24, shape=(20, 24), seed=3)


def _step_model(ds, *, in_steps=2, out_steps=2, normalization="standard"):
    fr = to_frames(ds, "rain_rate")
    norm = Normalizer(normalization).fit(fr) if normalization else None
    spec = ModelSpec(
        "test-forecast-step",
        in_steps,
        out_steps,
        ["rain_rate"],
        ["rain_rate"],
        "5min",
        (fr.sizes["y"], fr.sizes["x"]),
        normalization=norm.to_dict() if norm else {},
    )
    return TrainedModel(spec.build(), spec), norm


def test_persistence_labels_and_values(storms):
    fc = forecast(storms, "persistence", lead_steps=3, progress=False)
    assert fc.name == "rain_rate"
    assert fc.dims == ("init_time", "lead_time", "y", "x")
    # every time is a valid start (1 input step), including the last: no ground truth needed
    np.testing.assert_array_equal(fc.init_time.values, storms.time.values)
    np.testing.assert_array_equal(
        fc.lead_time.values, (np.arange(1, 4) * np.timedelta64(5, "m")).astype("timedelta64[ns]")
    )
    np.testing.assert_array_equal(
        fc.valid_time.values, fc.init_time.values[:, None] + fc.lead_time.values[None, :]
    )
    assert fc.valid_time.dims == ("init_time", "lead_time")
    xr.testing.assert_equal(fc.lat.reset_coords(drop=True), storms.lat.reset_coords(drop=True))
    xr.testing.assert_equal(fc.lon.reset_coords(drop=True), storms.lon.reset_coords(drop=True))
    np.testing.assert_array_equal(fc.x.values, storms.x.values)
    assert "crs" in fc.coords and fc.crs.attrs == storms.crs.attrs
    assert fc.attrs["units"] == "mm h-1" and fc.attrs["model"] == "persistence"
    for k in range(3):  # persistence = last observed frame, exactly
        np.testing.assert_array_equal(fc.isel(lead_time=k).values, storms.rain_rate.values)


def test_climatology_same_time_yesterday_with_channels():
    ds = stgeo.testing.crowd_flows(n_days=3, shape=(6, 5), step="1h", seed=1)
    fc = forecast(ds, "climatology", lead_steps=30, progress=False)  # period default "1D"
    assert fc.dims == ("init_time", "lead_time", "channel", "y", "x")
    assert list(fc.channel.values) == list(ds.channel.values)
    assert fc.init_time.values[0] == ds.time.values[23]  # needs one day of inputs
    obs = ds.flow
    for t0 in fc.init_time.values[[0, 17]]:
        for lead in (1, 6, 24, 25, 30):
            valid = t0 + np.timedelta64(lead, "h")
            back = valid - np.timedelta64(24 * -(-lead // 24), "h")  # latest observed same hour
            got = fc.sel(init_time=t0, lead_time=np.timedelta64(lead, "h"))
            np.testing.assert_array_equal(got.values, obs.sel(time=back).values)
            if lead <= 24:  # "same time yesterday"
                assert back == valid - np.timedelta64(1, "D")
    with pytest.raises(DataValidationError, match="history"):
        forecast(ds, "climatology", period="7D", progress=False)  # 3 days < one week
    with pytest.raises(DataValidationError, match="multiple"):
        forecast(ds, "climatology", period="90min", progress=False)


def test_climatology_over_several_cycles_is_the_historical_average():
    """cycles=C: the mean of the same hour on each of the last C days, exactly."""
    ds = stgeo.testing.crowd_flows(n_days=4, shape=(4, 3), step="1h", seed=2)
    fc = forecast(ds, "climatology", period="1D", cycles=3, lead_steps=26, progress=False)
    assert fc.init_time.values[0] == ds.time.values[3 * 24 - 1]  # needs three days of inputs
    obs = ds.flow
    t0 = fc.init_time.values[5]
    for lead in (1, 7, 24, 26):
        valid = t0 + np.timedelta64(lead, "h")
        last = valid - np.timedelta64(24 * -(-lead // 24), "h")
        days = [last - np.timedelta64(24 * c, "h") for c in range(3)]
        want = np.mean([obs.sel(time=d).values for d in days], axis=0)
        got = fc.sel(init_time=t0, lead_time=np.timedelta64(lead, "h")).values
        np.testing.assert_allclose(got, want, rtol=1e-6)
    one = forecast(ds, "climatology", period="1D", cycles=1, lead_steps=3, progress=False)
    plain = forecast(ds, "climatology", period="1D", lead_steps=3, progress=False)
    np.testing.assert_array_equal(one.values, plain.values)
    with pytest.raises(DataValidationError, match="history"):
        forecast(ds, "climatology", period="1D", cycles=5, progress=False)  # 4 days < 5
    with pytest.raises(DataValidationError, match="cycles >= 1"):
        forecast(ds, "climatology", period="1D", cycles=0, progress=False)


def test_rollout_beyond_horizon_with_normalisation(storms):
    tm, norm = _step_model(storms, in_steps=2, out_steps=2)
    std = np.asarray(norm.inverse(np.ones((1, 1, 1, 1)))) - np.asarray(
        norm.inverse(np.zeros((1, 1, 1, 1)))
    )
    fc = forecast(storms, tm, lead_steps=7, progress=False, precision="fp32")
    assert fc.sizes["lead_time"] == 7
    assert fc.init_time.values[0] == storms.time.values[1]  # 2 input steps
    last = storms.rain_rate.values[1:]
    for k in range(1, 8):  # each rollout chunk continues from the previous predictions
        np.testing.assert_allclose(
            fc.isel(lead_time=k - 1).values, last + k * float(std.ravel()[0]), rtol=1e-5, atol=1e-5
        )
    # selected leads only, and the pure core gives the same numbers
    sub = forecast(storms, tm, lead_steps=[2, 7], progress=False, precision="fp32")
    np.testing.assert_allclose(sub.values, fc.isel(lead_time=[1, 6]).values, rtol=1e-6)
    x = to_frames(storms).values[np.arange(2)[None, :] + np.arange(3)[:, None]]
    arr = forecast_array(tm.module, tm.spec, x, 7, precision="fp32")
    np.testing.assert_allclose(arr[:, :, 0], fc.isel(init_time=slice(0, 3)).values, rtol=1e-6)


def test_rollout_offsets_non_contiguous():
    spec = ModelSpec("test-forecast-step", 3, 1, ["v"], ["v"], "1h", input_offsets=[-24, -1, 0])
    assert rollout_offsets(spec, 1) == [-24, -1, 0]
    assert rollout_offsets(spec, 3) == [-24, -23, -22, -1, 0]
    x = np.zeros((1, 5, 1, 2, 2), "float32")
    x[:, :, 0, 0, 0] = [10, 20, 30, 40, 50]
    out = forecast_array(
        spec.build(), spec, x, 3, input_offsets=rollout_offsets(spec, 3), precision="fp32"
    )
    np.testing.assert_allclose(out[0, :, 0, 0, 0], [51, 52, 53])


def test_init_times_and_zarr_output(tmp_path, storms):
    tm, _ = _step_model(storms)
    path = tmp_path / "m"
    tm.save(path)
    picked = storms.time.values[[5, 9, 23]]
    fc = forecast(
        storms, str(path), init_times=picked, lead_steps=3, progress=False, precision="fp32"
    )
    np.testing.assert_array_equal(fc.init_time.values, picked)
    sl = forecast(
        storms,
        tm,
        init_times=slice("2021-07-04T12:30", "2021-07-04T13:00"),
        progress=False,
        precision="fp32",
    )
    assert str(sl.init_time.values[0])[:16] == "2021-07-04T12:30"
    assert sl.sizes["init_time"] == 7
    mem = forecast(storms, tm, lead_steps=3, progress=False, precision="fp32")
    out = forecast(
        storms,
        load_model(path),
        lead_steps=3,
        progress=False,
        precision="fp32",
        batch_size=5,
        output=tmp_path / "fc.zarr",
    )
    assert out.chunks is not None  # lazily opened from the store
    assert out.chunks[0][0] == 5
    xr.testing.assert_allclose(out.load(), mem)
    assert out.attrs["model_name"] == "test-forecast-step"
    with pytest.raises(DataValidationError, match="2021-07-04 12:00"):  # no history before t0
        forecast(storms, tm, init_times=storms.time.values[:1], progress=False)


def test_unseen_data_lat_lon_grid():
    ds = stgeo.testing.storm_cells(n_times=8, shape=(10, 12), projected=False, seed=7)
    fr = to_frames(ds)
    spec = ModelSpec(
        "test-forecast-step",
        2,
        1,
        ["rain_rate"],
        ["rain_rate"],
        "5min",
        (10, 12),
        spatial_dims=("lat", "lon"),
    )
    fc = forecast(
        ds, TrainedModel(spec.build(), spec), lead_steps=2, progress=False, precision="fp32"
    )
    assert fc.dims == ("init_time", "lead_time", "lat", "lon")
    np.testing.assert_array_equal(fc.lat.values, ds.lat.values)
    np.testing.assert_allclose(fc.isel(lead_time=1).values, fr.values[1:, 0] + 2, rtol=1e-6)


def test_bare_module_and_architecture_names(storms):
    fc = forecast(storms, Step(3), in_steps=2, progress=False, precision="fp32")
    assert fc.sizes["lead_time"] == 3
    np.testing.assert_allclose(
        fc.isel(lead_time=2).values, storms.rain_rate.values[1:] + 3, rtol=1e-6
    )
    with pytest.raises(DataValidationError, match="in_steps"):
        forecast(storms, Step(3), progress=False)
    with pytest.raises(DataValidationError, match="(?s)no pretrained 'simvp'.*Train one first"):
        forecast(storms, "simvp", progress=False)
    with pytest.raises(UnknownNameError, match=r"(?i)did you mean"):
        forecast(storms, "persistance", progress=False)


@pytest.mark.parametrize(
    "case",
    ["tile", "variable", "missing_variable", "short", "inf", "time_step", "dims", "normaliser"],
)
def test_errors_before_any_compute(storms, case):
    tm, _ = _step_model(storms, in_steps=4, out_steps=2)
    ds = storms
    kw = {}
    match = None
    if case == "tile":
        kw, match = {"tiling": (8, 8), "tile_overlap": 0.8}, "tile_overlap"
    elif case == "variable":
        kw, match = {"variable": "rain"}, "trained on variables"
    elif case == "missing_variable":
        ds, match = storms.rename(rain_rate="precip"), "rain_rate"
    elif case == "short":
        ds, match = storms.isel(time=slice(0, 3)), "too short history"
    elif case == "inf":
        ds = storms.copy(deep=True)
        ds["rain_rate"][10, 3, 3] = np.inf
        match = "infinite"
    elif case == "time_step":
        ds, match = storms.isel(time=slice(None, None, 2)), "time step"
    elif case == "dims":
        ds = stgeo.testing.storm_cells(n_times=8, shape=(20, 24), projected=False)
        match = "spatial dims"
    elif case == "normaliser":
        tm.spec.normalization = {"method": "log1p", "channels": ["rain_rate"]}  # no mean/std
        match = "unusable normalisation"
    CALLS["n"] = 0
    with pytest.raises((DataValidationError, UnknownNameError), match=match):
        forecast(ds, tm, lead_steps=4, progress=False, **kw)
    assert CALLS["n"] == 0  # the model never ran


def test_bad_arguments(storms):
    with pytest.raises(DataValidationError):
        forecast(storms, "persistence", batch_size=0)
    with pytest.raises(DataValidationError):
        forecast(storms, "persistence", lead_steps=0)
    with pytest.raises(StgeoTypeError):
        forecast(storms, 42)
    tm, _ = _step_model(storms)
    with pytest.raises(StgeoTypeError, match="keyword"):
        forecast(storms, tm, period="1D")
    with pytest.raises(DataValidationError, match=r"fewer|history|time step"):
        forecast(storms.isel(time=[0]), "persistence", progress=False)


def test_valid_time_matches_pandas(storms):
    fc = forecast(
        storms, "persistence", lead_steps=2, init_times=storms.time.values[-1:], progress=False
    )
    assert pd.Timestamp(fc.valid_time.values[0, 1]) == pd.Timestamp(
        storms.time.values[-1]
    ) + pd.Timedelta("10min")


def test_zarr_output_is_atomic_and_resumes(tmp_path, storms, monkeypatch):
    # the module that holds forecast_array (the batch job calls it by its global name)
    fmod = importlib.import_module("stgeo.forecasting.core")
    tm, _ = _step_model(storms)
    real = fmod.forecast_array
    seen = {"n": 0}

    def flaky(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] == 3:
            raise KeyboardInterrupt("simulated crash in the third batch")
        return real(*args, **kwargs)

    monkeypatch.setattr(fmod, "forecast_array", flaky)
    dest = tmp_path / "fc.zarr"
    kw = dict(lead_steps=2, progress=False, precision="fp32", batch_size=4, output=dest)
    with pytest.raises(KeyboardInterrupt):
        forecast(storms, tm, **kw)
    assert not dest.exists()  # nothing half-written at the destination
    seen["n"] = -100  # no more crashes
    out = forecast(storms, tm, **kw)
    assert seen["n"] == -100 + 6 - 2  # resumed: the 2 finished batches were not recomputed
    xr.testing.assert_allclose(
        out.load(), forecast(storms, tm, lead_steps=2, progress=False, precision="fp32")
    )


# -- the lazy / Dask path ------------------------------------------------------------------
def test_lazy_forecast_is_computed_chunk_by_chunk(storms):
    model, _ = _step_model(storms, in_steps=2, out_steps=2)
    eager = forecast(storms, model, lead_steps=5, batch_size=3, progress=False)
    CALLS["n"] = 0
    lazy = forecast(storms, model, lead_steps=5, batch_size=3, chunk_size=6, lazy=True)
    assert CALLS["n"] == 0  # nothing ran yet
    assert lazy.chunks[0] == (6, 6, 6, 5)  # 23 init times in chunks of 6
    xr.testing.assert_identical(lazy.compute(), eager)
    # one chunk computes only its own windows: 2 batches of 3, each rolled out 3 times
    CALLS["n"] = 0
    part = lazy.isel(init_time=slice(0, 6)).values
    assert CALLS["n"] == 2 * 3
    np.testing.assert_array_equal(part, eager.values[:6])
    # scoring streams over the lazy forecast and gives the eager result
    scored = {"init_time": slice(None, storms.time[-6].values)}  # verified leads only
    kw = dict(metrics=["mse", "csi"], thresholds=[1.0])
    a = stgeo.score(lazy.sel(scored), storms.rain_rate, **kw)
    b = stgeo.score(eager.sel(scored), storms.rain_rate, **kw)
    xr.testing.assert_allclose(a, b)


def test_lazy_forecast_arguments(storms):
    with pytest.raises(DataValidationError, match="multiple of batch_size"):
        forecast(storms, "persistence", batch_size=4, chunk_size=6, lazy=True)
    with pytest.raises(DataValidationError, match="lazy=True"):
        forecast(storms, "persistence", chunk_size=8)


def test_dask_cluster_writes_the_same_store(tmp_path):
    distributed = pytest.importorskip("distributed")
    ds = stgeo.testing.storm_cells(n_times=48, shape=(24, 24), seed=4)
    store = stgeo.to_zarr(ds, tmp_path / "obs.zarr", chunks={"time": 8})
    obs = stgeo.open_dataset(store)
    trained = stgeo.train(
        obs, "convlstm", variable="rain_rate", in_steps=3, out_steps=2, epochs=1,
        max_steps_per_epoch=2, hidden=4, num_layers=1, precision="fp32", progress=False,
        batch_size=4,
    )  # fmt: skip
    path = trained.save(tmp_path / "model")
    eager = forecast(obs, path, lead_steps=4, batch_size=4, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GiB",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = forecast(
            obs, path, lead_steps=4, batch_size=4, chunk_size=8, lazy=True,
            output=tmp_path / "fc.zarr",
        )  # fmt: skip
        # every worker forecast some chunks, with one torch thread each
        threads = client.run(lambda: __import__("torch").get_num_threads())
        assert set(threads.values()) == {1}
    xr.testing.assert_identical(out.compute(), eager)
    assert xr.open_zarr(tmp_path / "fc.zarr", consolidated=False).attrs["stgeo_complete"] is True
    assert out.encoding["chunks"][0] == 8

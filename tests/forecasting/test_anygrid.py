"""Any-grid forecasting: tiles equal the whole grid for fully convolutional models, seams stay
invisible, memory is bounded by the tile, no-data carries through, time-step tolerance."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr

import stgeo
from stgeo.data import Normalizer, fill_nodata, to_frames
from stgeo.errors import DataValidationError, StgeoTypeError, StgeoWarning
from stgeo.forecasting import Tiling, blend_profile, forecast, forecast_array
from stgeo.models import GridRule, ModelSpec, TrainedModel, register_model


class PatchConv(torch.nn.Module):
    """Fully convolutional: space-to-depth 2, two 3x3 convolutions, depth-to-space.

    Receptive-field radius: 2 latent pixels = at most 5 pixels."""

    def __init__(self, in_steps, out_steps, channels):
        super().__init__()
        torch.manual_seed(0)
        self.out_steps, self.channels = out_steps, channels
        c = channels * 4
        self.c1 = torch.nn.Conv2d(in_steps * c, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, out_steps * c, 3, padding=1)

    def forward(self, x):
        b, t, c, h, w = x.shape
        z = F.pixel_unshuffle(x.reshape(b, t * c, h, w), 2)
        z = self.c2(torch.tanh(self.c1(z)))
        return F.pixel_shuffle(z, 2).reshape(b, self.out_steps, c, h, w)


class TileMean(torch.nn.Module):
    """Depends on the whole frame it sees (global normalisation): last frame plus its
    deviation from the frame mean."""

    def __init__(self, out_steps):
        super().__init__()
        self.out_steps = out_steps
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        last = x[:, -1:]
        y = last + self.scale * (last - last.mean(dim=(-2, -1), keepdim=True))
        return y.expand(-1, self.out_steps, -1, -1, -1)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    register_model(
        "test-anygrid-conv",
        lambda in_steps, out_steps, channels, grid_shape=None: PatchConv(
            in_steps, out_steps, channels
        ),
        grid=GridRule(multiple=2, fully_convolutional=True),
        overwrite=True,
    )
    register_model(
        "test-anygrid-tilemean",
        lambda in_steps, out_steps, channels, grid_shape=None: TileMean(out_steps),
        grid=GridRule(multiple=1, note="normalises over the whole frame"),
        overwrite=True,
    )


def _trained(name, ds, grid, *, in_steps=2, out_steps=2, step="5min", hp=None):
    norm = Normalizer("log1p").fit(to_frames(ds, "rain_rate"))
    spec = ModelSpec(
        name,
        in_steps,
        out_steps,
        ["rain_rate"],
        ["rain_rate"],
        step,
        grid,
        hyperparameters=hp or {},
        normalization=norm.to_dict(),
    )
    return TrainedModel(spec.build().eval(), spec)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=8, shape=(70, 57), seed=1)


# -- tiles equal the whole grid -------------------------------------------------------------


def test_tiled_equals_whole_grid_fully_convolutional(storms):
    tm = _trained("test-anygrid-conv", storms, (24, 24))
    kw = {"lead_steps": 4, "progress": False, "precision": "fp32", "init_times": storms.time[-3:]}
    whole = forecast(storms, tm, tiling="off", **kw)
    # zero-weight margin = overlap / 4 = 6 px >= the 5-pixel receptive field
    tiled = forecast(storms, tm, tiling=(48, 48), tile_overlap=24, batch_size=3, **kw)
    assert whole.attrs["tiling"] == "whole grid"
    assert tiled.attrs["tiling"].startswith("4 tiles of 48x48")
    np.testing.assert_allclose(tiled.values, whole.values, atol=1e-5, rtol=0)
    # the default for a fully convolutional model: the whole grid, however it was trained
    auto = forecast(storms, tm, **kw)
    assert auto.attrs["tiling"] == "whole grid"
    np.testing.assert_array_equal(auto.values, whole.values)


def test_tiled_convlstm_equals_whole_grid_with_rollout(storms):
    hp = {"hidden": 4, "num_layers": 1, "kernel_size": 3}
    torch.manual_seed(0)
    tm = _trained("convlstm", storms, (24, 24), out_steps=1, hp=hp)
    kw = {"lead_steps": 3, "progress": False, "precision": "fp32", "init_times": storms.time[-2:]}
    whole = forecast(storms, tm, **kw)
    tiled = forecast(storms, tm, tiling=(24, 24), tile_overlap=12, **kw)
    assert "tiles" in tiled.attrs["tiling"]
    np.testing.assert_allclose(tiled.values, whole.values, atol=1e-5, rtol=0)


def test_auto_tiles_a_model_that_is_not_fully_convolutional(storms):
    tm = _trained("test-anygrid-tilemean", storms, (32, 32))
    fc = forecast(storms, tm, lead_steps=1, progress=False, init_times=storms.time[-1:])
    assert fc.attrs["tiling"] == "9 tiles of 32x32, blended overlaps"
    assert fc.sizes["y"] == 70 and fc.sizes["x"] == 57
    via_accessor = storms.st.forecast(
        model=tm, tiling=None, lead_steps=1, progress=False, init_times=storms.time[-1:]
    )
    np.testing.assert_array_equal(via_accessor.values, fc.values)
    assert fc.y.equals(storms.y) and fc.x.equals(storms.x) and "lat" in fc.coords
    same_grid = forecast(storms.isel(y=slice(0, 32), x=slice(0, 32)), tm, progress=False)
    assert same_grid.attrs["tiling"] == "whole grid"


# -- blending weights -------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "tile", "overlap"), [(100, 32, 8), (57, 16, 4), (33, 32, 16)])
def test_blend_weights_sum_to_one_and_keep_borders(size, tile, overlap):
    t = Tiling(tile=(tile, tile), overlap=overlap)
    rows = t.plan((size, size)).rows
    prof = blend_profile(rows, tile, size)
    total = np.zeros(size)
    for k, o in enumerate(rows):
        total[o : o + tile] += prof[k]
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    assert prof[0, 0] == 1.0 and prof[-1, -1] == 1.0  # grid borders are not dimmed
    assert rows[0] == 0 and rows[-1] + tile == size
    if len(rows) > 1:
        ov = rows[0] + tile - rows[1]
        assert ov >= overlap
        assert np.all(prof[1, : ov // 4] == 0)  # the quarter nearest an inner edge is unused


def test_tiles_bound_the_batch(storms):
    seen = []

    def fn(x):
        seen.append(tuple(x.shape))
        return x[:, -1:]

    x = torch.randn(3, 2, 1, 70, 57)
    y = Tiling(tile=(16, 16), overlap=0.25, batch=5).apply(fn, x)
    np.testing.assert_allclose(y.numpy(), x[:, -1:].numpy(), atol=1e-6)
    assert max(s[0] for s in seen) == 5 and all(s[-2:] == (16, 16) for s in seen)


def test_seams_invisible_on_a_smooth_field():
    """A model whose output depends on the tile (it normalises over it): with the default
    blending, the largest jump between neighbouring pixels in the overlaps of tiles (where
    seams would be) is at most 1.25 times the largest jump elsewhere; with hard seams (no
    overlap) it is more than 3 times larger."""
    yy, xx = np.mgrid[0:96, 0:96].astype("float32")
    field = 5 + 2 * np.sin(yy / 17.0) + 2 * np.cos(xx / 13.0)
    ds = stgeo.testing.storm_cells(n_times=3, shape=(96, 96), seed=0)
    ds["rain_rate"].values[:] = field
    tm = _trained("test-anygrid-tilemean", ds, (32, 32), out_steps=1)

    def jumps(overlap):
        fc = forecast(ds, tm, lead_steps=1, tile_overlap=overlap, progress=False)
        out = fc.isel(init_time=-1, lead_time=0).values
        cols = Tiling(tile=(32, 32), overlap=overlap).plan((96, 96)).cols
        assert len(cols) > 2
        seam = set()
        for a, b in itertools.pairwise(cols):
            seam |= set(range(b - 1, a + 32))  # jumps k -> k+1 touching the overlap [b, a+32)
        dx = np.abs(np.diff(out, axis=1))  # dx[:, k]: jump between columns k and k + 1
        away = [k for k in range(95) if k not in seam]
        return dx[:, sorted(seam)].max(), dx[:, away].max()

    seam, elsewhere = jumps(0.25)
    assert seam <= 1.25 * elsewhere, (seam, elsewhere)
    hard_seam, hard_elsewhere = jumps(0)
    assert hard_seam > 3 * hard_elsewhere, (hard_seam, hard_elsewhere)


# -- memory bounded by the tile ----------------------------------------------------------------

MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    import stgeo
    from stgeo.models import ModelSpec, TrainedModel
    from stgeo.testing.memory import RssSampler

    ds = stgeo.testing.storm_cells(n_times=5, shape=(765, 700), seed=0).load()
    hp = {"hid_S": 16, "hid_T": 32, "N_S": 4, "N_T": 2}
    spec = ModelSpec("simvp-radar", 4, 2, ["rain_rate"], ["rain_rate"], "5min", (64, 64),
                     hyperparameters=hp)
    tm = TrainedModel(spec.build().eval(), spec)
    small = ds.isel(y=slice(0, 64), x=slice(0, 64))
    stgeo.forecast(small, tm, lead_steps=2, progress=False, precision="fp32")  # warm-up
    sampler = RssSampler([os.getpid()], every=0.01)
    base = sampler.procs[0].memory_info().rss
    sampler.start()
    fc = stgeo.forecast(ds, tm, lead_steps=2, progress=False, precision="fp32",
                        tiling=sys.argv[1] if sys.argv[1] == "auto" else "off",
                        init_times=ds.time[-1:])
    peak = sampler.stop().peak_each
    print(json.dumps({"growth": peak - base, "tiling": fc.attrs["tiling"],
                      "nan": bool(fc.isnull().any())}))
    """
)

#: peak RSS growth allowed while forecasting a 765x700 grid with a model trained on 64x64
#: (measured: about 85 MiB tiled; the same forecast on the whole grid grows by about 750 MiB)
MEMORY_BOUND = 256 * 1024**2


def test_crop_trained_model_forecasts_765x700_in_bounded_memory():
    pytest.importorskip("psutil")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, "auto"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["tiling"].endswith("tiles of 64x64, blended overlaps")
    assert not res["nan"]
    assert res["growth"] < MEMORY_BOUND, f"{res['growth'] / 1024**2:.0f} MiB"


# -- no data -----------------------------------------------------------------------------------


def test_fill_nodata_uses_normalised_physical_zero():
    n = Normalizer.from_dict({"method": "log1p", "mean": [1.0, 0.0], "std": [2.0, 1.0]})
    x = n.transform(np.array([[[np.nan]], [[np.nan]]], dtype="float32"))
    assert np.allclose(fill_nodata(x, n).ravel(), n.transform(np.zeros((2, 1, 1))).ravel())
    t = torch.full((1, 2, 1, 1), float("nan"))
    assert torch.allclose(fill_nodata(t, n).ravel(), torch.tensor([-0.5, 0.0]))
    assert float(fill_nodata(np.array([[[np.nan]]]))[0, 0, 0]) == 0.0
    with pytest.raises(StgeoTypeError):
        fill_nodata([1.0])


@pytest.mark.parametrize("model", ["learned", "persistence", "climatology", "extrapolation"])
def test_nodata_carries_through_as_nan(storms, model):
    if model == "extrapolation":
        pytest.importorskip("pysteps")
    ds = storms.copy(deep=True)
    ds["rain_rate"][5, 10:14, 20:30] = np.nan  # no data in one input frame
    ds["rain_rate"][:, 0:3, :] = np.nan  # a band without data at every time
    kw = {"lead_steps": 2, "progress": False, "init_times": ds.time[[5, 7]]}
    if model == "learned":
        tm = _trained("test-anygrid-conv", storms, (70, 57), in_steps=2)
        fc = forecast(ds, tm, **kw)
        n_in = 2
    elif model == "climatology":
        fc = forecast(ds, model, period="10min", **kw)
        n_in = 2
    else:
        fc = forecast(ds, model, in_steps=2, **kw)
        n_in = 2
    for i, t0 in enumerate([5, 7]):
        inputs = ds.rain_rate.isel(time=slice(t0 - n_in + 1, t0 + 1))
        expect = inputs.isnull().any("time").values
        got = fc.isel(init_time=i).isnull().values
        assert (got == expect[None]).all()
    assert (
        fc.isel(init_time=0).isnull().any()
        and not fc.isel(init_time=1, y=slice(3, None)).isnull().any()
    )


def test_nodata_input_changes_nothing_elsewhere_for_a_local_model(storms):
    """The filled value is what physical 0 gives: forecasting from data with a hole equals
    forecasting from the data with 0 there (then masked)."""
    tm = _trained("test-anygrid-conv", storms, (70, 57))
    holed = storms.copy(deep=True)
    holed["rain_rate"][6, 30:34, 20:24] = np.nan
    zero = holed.fillna(0.0)
    kw = {"lead_steps": 2, "progress": False, "precision": "fp32", "init_times": holed.time[[6]]}
    a = forecast(holed, tm, **kw).values
    b = forecast(zero, tm, **kw).values
    ok = ~np.isnan(a)
    assert np.isnan(a).sum() == 2 * 16
    np.testing.assert_allclose(a[ok], b[ok], atol=1e-6)


def test_forecast_array_nodata(storms):
    spec = ModelSpec("persistence", 1, 2, ["v"], ["v"], "5min")
    x = np.ones((2, 1, 1, 4, 4), "float32")
    x[1, 0, 0, 2, 2] = np.nan
    y = forecast_array(spec.build(), spec, x, 2)
    assert np.isnan(y[1, :, 0, 2, 2]).all() and np.isnan(y).sum() == 2


# -- time step tolerance -----------------------------------------------------------------------


def test_step_within_tolerance_forecasts_in_the_data_step(storms):
    tm = _trained("test-anygrid-conv", storms, (70, 57), step="5min")
    six = storms.assign_coords(time=storms.time.values[0] + np.arange(8) * np.timedelta64(6, "m"))
    with pytest.warns(StgeoWarning, match="5min.*6min"):
        fc = forecast(six, tm, lead_steps=3, progress=False, init_times=six.time[-1:])
    assert fc.attrs["time_step"] == "6min" and fc.attrs["model_time_step"] == "5min"
    assert (fc.lead_time.values == np.array([6, 12, 18], "timedelta64[m]")).all()
    ten = storms.assign_coords(time=storms.time.values[0] + np.arange(8) * np.timedelta64(10, "m"))
    with pytest.raises(DataValidationError, match=r"5min, the data have 10min.*step_tolerance"):
        forecast(ten, tm, progress=False)
    with pytest.warns(StgeoWarning, match="within step_tolerance=1"):
        fc = forecast(ten, tm, step_tolerance=1.0, lead_steps=1, progress=False)
    assert fc.attrs["model_time_step"] == "5min"
    with pytest.raises(DataValidationError, match="step_tolerance"):
        forecast(storms, tm, step_tolerance=-1)


def test_per_event_step_forecasts_any_step(storms):
    tm = _trained("test-anygrid-conv", storms, (70, 57), step=stgeo.models.PER_EVENT_STEP)
    ten = storms.assign_coords(time=storms.time.values[0] + np.arange(8) * np.timedelta64(10, "m"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc = forecast(ten, tm, lead_steps=2, progress=False)
    assert "model_time_step" not in fc.attrs
    assert fc.lead_time.values[1] == np.timedelta64(20, "m")


# -- grid rules and tile errors ----------------------------------------------------------------


def test_tile_size_must_fit_the_model(storms):
    tm = _trained("test-anygrid-conv", storms, (24, 24))
    with pytest.raises(DataValidationError, match=r"not a multiple of 2.*24 or 26"):
        forecast(storms, tm, tiling=(25, 24), progress=False)
    with pytest.raises(StgeoTypeError, match="tiling"):
        forecast(storms, tm, tiling="tiles", progress=False)
    with pytest.raises(DataValidationError, match="more than half"):
        forecast(storms, tm, tiling=(24, 24), tile_overlap=20, progress=False)


def test_lazy_forecast_tiles_inside_each_task(storms):
    tm = _trained("test-anygrid-tilemean", storms, (32, 32))
    kw = {"lead_steps": 2, "progress": False, "batch_size": 2}
    eager = forecast(storms, tm, **kw)
    lazy = forecast(storms, tm, lazy=True, chunk_size=4, **kw)
    assert lazy.chunks is not None and lazy.attrs["tiling"] == eager.attrs["tiling"]
    np.testing.assert_allclose(lazy.values, eager.values, atol=1e-6)


def test_models_with_per_cell_parameters_stay_on_their_grid():
    from stgeo.errors import DataValidationError
    from stgeo.models import grid_rule

    assert (
        grid_rule("stresnet").fixed_grid
        and grid_rule("stresnet-stacked").fixed_grid
        and not grid_rule("stresnet-stacked", local=False, embed_dim=0).fixed_grid
    )
    ds = stgeo.testing.storm_cells(n_times=30, shape=(16, 12), seed=1)
    kw = dict(in_steps=2, out_steps=1, epochs=1, max_steps_per_epoch=1, progress=False)
    with pytest.raises(DataValidationError, match="cannot train on crops"):
        stgeo.train(ds, model="stresnet-stacked-small", patch_size=(8, 8), **kw)
    m = stgeo.train(ds, model="stresnet-stacked-small", **kw)
    fc = stgeo.forecast(ds.rain_rate, m, init_times=ds.time.values[[5]], lead_steps=1)
    assert fc.sizes["y"] == 16 and fc.attrs["tiling"] == "whole grid"
    other = stgeo.testing.storm_cells(n_times=10, shape=(24, 12), seed=1)
    with pytest.raises(DataValidationError, match="tied to its training grid 16x12"):
        stgeo.forecast(other.rain_rate, m, init_times=other.time.values[[5]], lead_steps=1)
    with pytest.raises(DataValidationError, match="cannot be tiled"):
        stgeo.forecast(ds.rain_rate, m, init_times=ds.time.values[[5]], lead_steps=1, tiling=(8, 8))
    # the same shape elsewhere: the training grid's corners are recorded and compared
    assert m.spec.extra["grid_corners"] == stgeo.conventions.grid_corners(ds)
    one = dict(init_times=ds.time.values[[5]], lead_steps=1, progress=False)
    moved = ds.assign_coords(lat=ds.lat + 3.0)
    with pytest.raises(DataValidationError, match="tied to where it was trained: the training"):
        stgeo.forecast(moved.rain_rate, m, **one)
    cell = float(abs(ds.lat[1, 0] - ds.lat[0, 0]))
    nudged = ds.assign_coords(lat=ds.lat + cell / 10)  # rounding of the same grid: fine
    np.testing.assert_array_equal(
        stgeo.forecast(nudged.rain_rate, m, **one).values,
        stgeo.forecast(ds.rain_rate, m, **one).values,
    )
    bare = ds.drop_vars(["lat", "lon"])  # nothing to compare: the shape decides
    assert stgeo.forecast(bare.rain_rate, m, **one).sizes["y"] == 16
    flipped = ds.assign_coords(lat=(ds.lat.dims, ds.lat.values[::-1]))  # rows swapped
    with pytest.raises(DataValidationError, match="run the other way: sort them"):
        stgeo.forecast(flipped.rain_rate, m, **one)

    # events with their own geolocation: every event must lie on the training grid
    def events(shift: float) -> xr.Dataset:
        ev = ds.assign_coords(event=("time", np.repeat([0, 1, 2], 10))).drop_vars(["lat", "lon"])
        lats = np.stack([ds.lat.values + shift * i for i in range(3)])
        return ev.assign_coords(
            ev_lat=(("E", "y", "x"), lats, {"standard_name": "latitude"}),
            ev_lon=(("E", "y", "x"), np.stack([ds.lon.values] * 3), {"standard_name": "longitude"}),
        )  # fmt: skip

    assert stgeo.conventions.event_grid_corners(events(0.0))[2] == m.spec.extra["grid_corners"]
    stgeo.forecast(events(0.0), m, **one)
    with pytest.raises(DataValidationError, match="tied to where it was trained"):
        stgeo.forecast(events(5.0), m, **one)


def test_grid_corners_per_axis_and_without_a_place():
    from stgeo.conventions import grid_corners, grid_corners_differ

    fine_lat = {"lat": [50.0, 50.8], "lon": [-10.0, 2.0]}  # 0.1 deg rows, 1 deg columns
    two_rows_north = {"lat": [50.2, 51.0], "lon": [-10.0, 2.0]}
    assert grid_corners_differ(fine_lat, two_rows_north, (9, 13)) is not None
    assert (
        grid_corners_differ(fine_lat, {"lat": [50.02, 50.82], "lon": [-9.8, 2.2]}, (9, 13)) is None
    )
    same_place = {"lat": [50.0, 50.8], "lon": [350.0, 2.0]}  # 350E is 10W
    assert grid_corners_differ(fine_lat, same_place, (9, 13)) is None
    row = {"lat": [50.0, 50.0], "lon": [-10.0, 2.0]}  # one row: the other axis's cell size
    assert grid_corners_differ(row, row, (1, 13)) is None
    assert grid_corners_differ(row, {"lat": [51.0, 51.0], "lon": [-10.0, 2.0]}, (1, 13))
    ds = stgeo.testing.storm_cells(n_times=2, shape=(8, 8), seed=0)
    lat = ds.lat.values.copy()
    lat[0, 0] = np.nan
    assert grid_corners(ds.assign_coords(lat=(ds.lat.dims, lat))) is None

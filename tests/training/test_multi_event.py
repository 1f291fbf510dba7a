"""Training on many events: grids, splits, streaming normaliser, time steps, gaps, no-data,
patches, resume."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import stgeo
from stgeo.data import Normalizer, to_frames
from stgeo.errors import DataValidationError
from stgeo.models.losses import pointwise_loss, threshold_weights, weight_table
from stgeo.training import Callback, train
from stgeo.training.events import resolve_time_steps
from stgeo.training.validation import ValidationSums

TINY = {"hid_S": 4, "hid_T": 8, "N_S": 2, "N_T": 1}
FAST = {"precision": "fp32", "progress": False, "batch_size": 4}


def _storms(n, shape, seed, step="5min", start="2021-07-04T12:00"):
    return stgeo.testing.storm_cells(
        n_times=n, shape=shape, seed=seed, step=step, start=start, resolution_km=12
    )


@pytest.fixture(scope="module")
def two_events():
    return _storms(30, (24, 32), 0), _storms(20, (20, 20), 1, start="2021-08-01")


def test_two_grids_train_together_with_per_event_windows_and_splits(two_events):
    a, b = two_events
    m = train(
        [a, b], "simvp", in_steps=2, out_steps=2, patch_size=16, epochs=1,
        splits={"train": 0.8, "val": 0.2}, **TINY, **FAST,
    )  # fmt: skip
    ev = m.spec.extra["events"]
    assert list(ev) == ["event-0", "event-1"]
    # the last 20 % of each event validates; windows count per event, never across events
    assert ev["event-0"]["train_windows"] == 24 - 3  # 24 training frames, span 4
    assert ev["event-1"]["train_windows"] == 16 - 3
    # validation windows: targets in the last 20 %, inputs may come from before
    assert ev["event-0"]["val_windows"] == 5 and ev["event-1"]["val_windows"] == 3
    assert ev["event-1"]["splits"]["val"][0].startswith("2021-08-01 01:20")
    assert ev["event-0"]["grid"] == [24, 32] and ev["event-1"]["grid"] == [20, 20]
    assert m.spec.grid_shape == (16, 16) and m.spec.time_step == "5min"
    tr = m.spec.extra["training"]
    assert tr["patch_size"] == [16, 16] and tr["precision"] == "fp32"
    assert tr["precision_requested"] == "fp32"
    assert np.isfinite(m.history[0]["val_mse"])
    # the normaliser equals one fitted on the concatenated training parts of both events
    parts = [to_frames(a).values[:24], to_frames(b).values[:16]]
    pixels = np.concatenate([p.transpose(0, 2, 3, 1).reshape(-1, 1) for p in parts])
    ref = Normalizer().fit(
        xr.DataArray(pixels[:, :, None, None], dims=("time", "channel", "y", "x"))
    )
    got = Normalizer.from_dict(m.spec.normalization)
    np.testing.assert_allclose(got.stats["mean"], ref.stats["mean"], rtol=1e-6)
    np.testing.assert_allclose(got.stats["std"], ref.stats["std"], rtol=1e-6)


def test_different_grids_need_a_patch_size_and_patches_must_fit(two_events):
    a, b = two_events
    with pytest.raises(DataValidationError, match="different grids.*patch_size"):
        train([a, b], "simvp", in_steps=2, out_steps=1, epochs=1, **TINY, **FAST)
    with pytest.raises(DataValidationError, match="event-1"):
        train([a, b], "simvp", in_steps=2, out_steps=1, patch_size=(22, 16), **TINY, **FAST)


@pytest.mark.parametrize("method", ["standard", "log1p", "minmax"])
def test_streaming_normaliser_equals_the_fit_on_concatenated_parts(method):
    rng = np.random.default_rng(0)
    blocks = [rng.gamma(0.4, 3.0, (n, 2, 9, 7)).astype("f4") for n in (5, 1, 12)]
    blocks[1][0, 0, :3] = np.nan
    streamed = Normalizer(method)
    for blk in blocks:
        streamed.partial_fit(blk, ["a", "b"])
    whole = xr.DataArray(np.concatenate(blocks), dims=("time", "channel", "y", "x"))
    ref = Normalizer(method).fit(whole.assign_coords(channel=["a", "b"]))
    for k, v in ref.stats.items():
        np.testing.assert_allclose(streamed.stats[k], v, rtol=1e-6, atol=1e-12)
    # merging per-worker statistics gives the same
    left, right = Normalizer(method), Normalizer(method)
    left.partial_fit(blocks[0], ["a", "b"])
    for blk in blocks[1:]:
        right.partial_fit(blk, ["a", "b"])
    for k, v in left.merge(right).stats.items():
        np.testing.assert_allclose(v, ref.stats[k], rtol=1e-6, atol=1e-12)


def test_time_step_policy():
    td = pd.Timedelta
    assert resolve_time_steps(["a", "b", "c"], [td("5min"), td("6min"), td("5min")], None) == (
        td("5min"),
        [1, 1, 1],
    )
    with pytest.raises(DataValidationError, match=r"a: 5min, b: 10min.*per-event"):
        resolve_time_steps(["a", "b"], [td("5min"), td("10min")], None)
    assert resolve_time_steps(["a", "b"], [td("5min"), td("10min")], "10min")[1] == [2, 1]
    assert resolve_time_steps(["a", "b"], [td("2min"), td("10min")], "10min")[1] == [5, 1]
    with pytest.raises(DataValidationError, match=r"do not all divide.*b"):
        resolve_time_steps(["a", "b"], [td("5min"), td("6min")], "10min")
    assert resolve_time_steps(["a", "b"], [td("10min"), td("5min")], "per-event")[1] == [1, 1]
    with pytest.raises(DataValidationError, match="step_tolerance"):
        resolve_time_steps(["a", "b"], [td("5min"), td("6min")], None, tolerance=0.1)
    # per-event with a floor: finer events use every k-th frame, k*step >= the floor
    steps = [td("2min"), td("5min"), td("10min"), td("1min"), td("150s")]
    run, factors = resolve_time_steps(list("abcde"), steps, "per-event", min_event_step="5min")
    assert factors == [3, 1, 1, 5, 2] and run == td("5min")
    assert resolve_time_steps(["a"], [td("2min")], "per-event", min_event_step="4min")[1] == [2]
    for policy in (None, "10min"):
        with pytest.raises(DataValidationError, match="min_event_step.*time_step='per-event'"):
            resolve_time_steps(["a", "b"], [td("5min"), td("5min")], policy, min_event_step="5min")


def test_time_steps_in_training(two_events):
    a, _ = two_events
    six = _storms(20, (24, 32), 3, step="6min")
    ten = _storms(24, (24, 32), 4, step="10min")
    kw = {"in_steps": 2, "out_steps": 1, "epochs": 1, "max_steps_per_epoch": 1, **TINY, **FAST}
    m = train([a, six], "simvp", **kw)  # 5 and 6 min mix within the tolerance
    assert m.spec.time_step == "5min"
    with pytest.raises(DataValidationError, match="event-0: 5min, event-1: 10min"):
        train([a, ten], "simvp", **kw)
    m = train([a, ten], "simvp", time_step="10min", **kw)
    ev = m.spec.extra["events"]
    assert m.spec.time_step == "10min" and ev["event-0"]["offset_factor"] == 2
    assert ev["event-0"]["train_windows"] == 27 - 4  # offsets -2, 0 | 2 at 5 min: span 5
    m = train([a, ten], "simvp", time_step="per-event", **kw)
    assert m.spec.extra["training"]["time_step"] == "per-event"
    assert "min_event_step" not in m.spec.extra["training"]  # only recorded when set


def test_min_event_step_trains_fine_events_at_a_multiple_of_their_step(two_events):
    a, _ = two_events
    two = _storms(40, (24, 32), 6, step="2min", start="2021-09-01")
    ten = _storms(24, (24, 32), 4, step="10min")
    kw = {"in_steps": 2, "out_steps": 1, "epochs": 1, "max_steps_per_epoch": 1, **TINY, **FAST}
    m = train([a, two, ten], "simvp", time_step="per-event", min_event_step="5min", **kw)
    ev = m.spec.extra["events"]
    assert [ev[f"event-{i}"]["offset_factor"] for i in range(3)] == [1, 3, 1]
    assert ev["event-1"]["time_step"] == "2min"
    # 36 training frames (the last 10 % validate); offsets -3, 0 | 3 span 7 frames
    assert ev["event-1"]["train_windows"] == 36 - 6
    assert ev["event-0"]["train_windows"] == 27 - 2  # unchanged: 5-min offsets -1, 0 | 1
    assert m.spec.extra["training"]["min_event_step"] == "5min"
    assert m.spec.extra["training"]["time_step"] == "per-event"
    # the windows of the 2-min event read every third frame
    td, _ = stgeo.training.events.prepare_events(
        [a, two, ten],
        stgeo.training.TrainConfig(
            model="simvp", in_steps=2, out_steps=1, time_step="per-event",
            min_event_step="5min", hyperparameters=TINY,
        ),
    )  # fmt: skip
    w = td.events[1].train
    assert list(w.input_offsets) == [-3, 0] and list(w.target_offsets) == [3]
    with pytest.raises(DataValidationError, match="min_event_step must be a duration"):
        train([a, two], "simvp", time_step="per-event", min_event_step="soon", **kw)
    with pytest.raises(DataValidationError, match="min_event_step applies to.*per-event"):
        train([a, two], "simvp", time_step="10min", min_event_step="5min", **kw)
    with pytest.raises(DataValidationError, match="min_event_step.*time_step='per-event'"):
        train([a, two], "simvp", min_event_step="5min", **kw)


def test_partial_windows_train_on_short_events_without_reading_beyond_their_range():
    a = _storms(70, (20, 20), 0)  # 56 frames to train on, 14 to validate
    short = _storms(13, (20, 20), 5, start="2021-09-01")  # like the 13-frame OPERA source
    kw = {
        "in_steps": 4, "out_steps": 12, "epochs": 1, "seed": 2, "patch_size": 16,
        "splits": {"train": 0.8, "val": 0.2}, **TINY, **FAST,
    }  # fmt: skip
    with pytest.raises(DataValidationError, match="'event-1' has no training window"):
        train([a, short], "simvp", **kw)
    m = train([a, short], "simvp", min_out_steps=2, **kw)
    ev = m.spec.extra["events"]
    # 13 frames, training range the first 10 (80 %): t0 = 3..7 has 2..6 targets in range
    assert ev["event-1"]["train_windows"] == 5 and ev["event-1"]["val_windows"] == 0
    assert ev["event-0"]["train_windows"] == 56 - 3 - 2 and ev["event-0"]["val_windows"] == 3
    assert m.spec.extra["training"]["min_out_steps"] == 2
    # the short event's validation frames are never read in training: other values there
    # give the same training loss
    other = short.copy(deep=True)
    other["rain_rate"][10:] = 50.0
    m2 = train([a, other], "simvp", min_out_steps=2, **kw)
    assert m2.history[0]["train_loss"] == m.history[0]["train_loss"]
    changed = short.copy(deep=True)
    changed["rain_rate"][9] = 50.0  # the last training frame: read as a target
    m3 = train([a, changed], "simvp", min_out_steps=2, **kw)
    assert m3.history[0]["train_loss"] != m.history[0]["train_loss"]
    with pytest.raises(DataValidationError, match="min_out_steps=13 exceeds out_steps=12"):
        train([a, short], "simvp", min_out_steps=13, **kw)
    # crops in proportion to the area: every window is drawn ceil(400 / 256) = 2 times
    m4 = train([a, short], "simvp", min_out_steps=2, crops_per_window="area", **kw)
    ev4 = m4.spec.extra["events"]
    assert ev4["event-1"]["train_windows"] == 5 and ev4["event-1"]["crops_per_window"] == 2
    assert m4.spec.extra["training"]["crops_per_window"] == "area"
    assert m4.history[0]["train_loss"] != m.history[0]["train_loss"]
    with pytest.raises(DataValidationError, match="give patch_size"):
        train([a, short], "simvp", crops_per_window=2, **{**kw, "patch_size": None})


def test_validate_and_train_agree_on_gaps(two_events):
    a, _ = two_events
    gappy = a.isel(time=np.r_[0:12, 15:30])
    with pytest.raises(DataValidationError, match="gap") as v_err:
        stgeo.validate(gappy)
    with pytest.raises(DataValidationError, match="gap") as t_err:
        train(gappy, "simvp", in_steps=2, out_steps=1, **TINY, **FAST)
    assert str(v_err.value) == str(t_err.value)  # one rule, one message
    stgeo.validate(gappy, allow_gaps=True)
    kw = {"in_steps": 2, "out_steps": 1, "epochs": 1, "allow_gaps": True, **TINY, **FAST}
    m = train(gappy, "simvp", **kw)
    assert m.history
    m = train([gappy, a], "simvp", patch_size=16, **kw)  # windows never cross the gap
    assert m.spec.extra["events"]["event-0"]["train_windows"] == (11 - 2) + (13 - 2)


def test_masked_pixels_do_not_change_the_loss():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 3, 1, 8, 8, generator=g)
    valid = torch.rand(2, 3, 1, 8, 8, generator=g) > 0.3
    y_nan = torch.where(valid, y, torch.full_like(y, float("nan")))
    p1 = torch.randn(2, 3, 1, 8, 8, generator=g)
    p2 = torch.where(valid, p1, torch.randn_like(p1) * 100)  # anything under the mask
    table = weight_table([0.5, 1.0])
    for kind in ("mse", "mae", "mse+mae"):
        for w in (None, threshold_weights(y_nan, table)):
            a = pointwise_loss(p1, y_nan, kind, w, valid)
            b = pointwise_loss(p2, y_nan.clone().nan_to_num(7.0), kind, w, valid)
            assert torch.isfinite(a) and float(a) == pytest.approx(float(b), rel=1e-6)
            ref = pointwise_loss(p1[valid], y[valid], kind, None if w is None else w[valid])
            assert float(a) == pytest.approx(float(ref), rel=1e-6)  # masked mean
    p = p1.clone().requires_grad_()
    pointwise_loss(p, y_nan, "mse", None, valid).backward()
    assert torch.all(p.grad[~valid] == 0) and torch.isfinite(p.grad).all()
    # validation scores ignore whatever the forecast says where the truth is no-data
    s1, s2 = ValidationSums([0.5], "cpu"), ValidationSums([0.5], "cpu")
    s1.add(p1, y_nan)
    s2.add(p2, y_nan)
    assert s1.result() == s2.result()


def _with_nodata(ds, value=np.nan):
    """Radar-like no-data: a disc outside range, the same in every frame."""
    rr = ds["rain_rate"].values.copy()
    h, w = rr.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    outside = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (0.45 * min(h, w)) ** 2
    rr[:, outside] = value
    return ds.assign(rain_rate=(ds["rain_rate"].dims, rr, ds["rain_rate"].attrs))


def test_nodata_is_masked_in_training_and_validation(two_events):
    a, b = two_events
    kw = {"in_steps": 2, "out_steps": 1, "epochs": 1, "seed": 3, **TINY, **FAST}
    m_nan = train([_with_nodata(a), b], "simvp", patch_size=16, **kw)
    m_big = train([_with_nodata(a, 1e3), b], "simvp", patch_size=16, **kw)
    assert np.isfinite(m_nan.history[0]["train_loss"])
    assert np.isfinite(m_nan.history[0]["val_mse"])
    assert m_nan.history[0]["train_loss"] != m_big.history[0]["train_loss"]  # NaN != a value
    bad = a.copy(deep=True)
    bad["rain_rate"][:] = np.nan
    with pytest.raises(DataValidationError, match="all NaN"):
        train([bad, b], "simvp", patch_size=16, splits={"train": 0.9, "val": 0.1}, **kw)
    inf = a.copy(deep=True)
    inf["rain_rate"][3, 4, 4] = np.inf
    with pytest.raises(DataValidationError, match="infinite"):
        train(inf, "simvp", **kw)


class _Interrupt(Callback):
    def on_epoch_start(self, state):
        if state.epoch == 1:
            raise KeyboardInterrupt


def test_resume_of_a_multi_event_patch_run_is_exact(tmp_path, two_events):
    a, b = two_events
    pa = stgeo.to_zarr(a, tmp_path / "a.zarr", chunks={"time": 4, "y": 8, "x": 8})
    pb = stgeo.to_zarr(b, tmp_path / "b.zarr", chunks={"time": 4})
    kw = dict(
        in_steps=2, out_steps=2, epochs=3, patch_size=(16, 12), max_steps_per_epoch=4,
        importance={"threshold": 0.1, "floor": 0.2}, thresholds=[0.5], seed=5, lr=3e-3,
        **TINY, **FAST,
    )  # fmt: skip
    ref = train([pa, pb], "simvp", checkpoint_dir=tmp_path / "ref", **kw)
    with pytest.raises(KeyboardInterrupt):
        train([pa, pb], "simvp", checkpoint_dir=tmp_path / "ck", callbacks=[_Interrupt()], **kw)
    resumed = train([pa, pb], "simvp", checkpoint_dir=tmp_path / "ck", **kw)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for ha, hb in zip(ref.history, resumed.history, strict=True):
        for key in ("train_loss", "val_mse", "val_csi", "lr"):
            assert ha[key] == hb[key], (key, ha, hb)
    assert ref.spec.extra["events"]["a"]["train_windows"] > 0
    assert ref.spec.extra["training"]["importance"]["floor"] == 0.2
    # other data (one event replaced) refuse to resume
    pc = stgeo.to_zarr(_storms(30, (24, 32), 9), tmp_path / "c.zarr")
    with pytest.raises(DataValidationError, match="different settings"):
        train([pc, pb], "simvp", checkpoint_dir=tmp_path / "ck", **kw)


def test_collections_train_with_their_time_step_policy(tmp_path):
    five = stgeo.to_zarr(_storms(24, (24, 24), 0), tmp_path / "five.zarr")
    ten = stgeo.to_zarr(_storms(20, (20, 28), 1, step="10min"), tmp_path / "ten.zarr")
    cat = tmp_path / "cat.yaml"
    cat.write_text(
        textwrap.dedent(f"""
        datasets:
          - name: mt-five
            store: {five}
            variables: [rain_rate]
            time_step: 5min
            thresholds: [0.5, 2.0]
            splits:
              train: ["2021-07-04T12:00", "2021-07-04T13:15"]
              val: ["2021-07-04T13:20", "2021-07-04T13:55"]
          - name: mt-ten
            store: {ten}
            variables: [rain_rate]
            time_step: 10min
        collections:
          - name: mt-pair
            members: [mt-five, mt-ten]
            time_step: per-event
        """)
    )
    with stgeo.set_options(catalog_paths=[str(cat)]):
        m = train(
            "mt-pair", "simvp", in_steps=2, out_steps=1, patch_size=(16, 16), epochs=1,
            importance=True, **TINY, **FAST,
        )  # fmt: skip
    ev = m.spec.extra["events"]
    assert list(ev) == ["mt-five", "mt-ten"]
    assert ev["mt-five"]["splits"]["train"][1].startswith("2021-07-04 13:15")  # catalog split
    assert ev["mt-ten"]["val_windows"] == 2  # no catalog splits: its last 10 %
    tr = m.spec.extra["training"]
    assert tr["thresholds"] == [0.5, 2.0] and tr["importance"]["threshold"] == 0.5


def test_validation_crops_do_not_depend_on_the_training_seed(two_events):
    kw = dict(in_steps=2, out_steps=2, patch_size=16, epochs=1, **TINY, **FAST)
    runs = [train(list(two_events), "simvp", seed=s, **kw) for s in (1, 2)]
    # persistence scored on the validation crops: the same crops whatever the seed
    assert runs[0].metrics["persistence_val_mse"] == runs[1].metrics["persistence_val_mse"]
    assert runs[0].history[0]["val_mse"] != runs[1].history[0]["val_mse"]  # different models

"""Tests of Windows: exact slicing, gaps/events, offsets, ranges, init_times, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import stgeo
from stgeo.data import Windows, read_frames, to_frames
from stgeo.errors import DataValidationError, StgeoTypeError


def _ramp(n=40, c=2, ny=3, nx=4, freq="10min", times=None, event=None):
    """Frames whose value encodes (time index, channel) so any mix-up is visible."""
    times = pd.date_range("2021-01-01", periods=n, freq=freq) if times is None else times
    n = len(times)
    v = (
        np.arange(n)[:, None, None, None] * 10
        + np.arange(c)[None, :, None, None]
        + np.zeros((1, 1, ny, nx))
    )
    coords = {"time": times, "channel": [f"v:{i}" for i in range(c)]}
    if event is not None:
        coords["event"] = ("time", np.asarray(event))
    return xr.DataArray(
        v.astype("f4"), dims=("time", "channel", "y", "x"), coords=coords, name="frames"
    )


@pytest.fixture(scope="module")
def zarr_frames(tmp_path_factory):
    ds = stgeo.testing.storm_cells(n_times=30, shape=(12, 16), seed=2)
    p = stgeo.to_zarr(ds, tmp_path_factory.mktemp("w") / "s.zarr", chunks={"time": 7})
    return ds, to_frames(stgeo.open_dataset(p), "rain_rate")


def test_windows_equal_direct_slicing_from_zarr(zarr_frames):
    ds, fr = zarr_frames
    w = Windows(fr, in_steps=4, out_steps=3)
    assert len(w) == 30 - 7 + 1
    rr = ds.rain_rate.values
    idx = np.array([0, 5, 6, 13, len(w) - 1, 2])  # several chunk boundaries, unsorted
    x, y = w[idx]
    assert x.shape == (6, 4, 1, 12, 16) and y.shape == (6, 3, 1, 12, 16)
    assert x.dtype == np.float32 and y.dtype == np.float32
    for k, i in enumerate(idx):
        t0 = w.t0_index[i]
        np.testing.assert_array_equal(x[k, :, 0], rr[t0 - 3 : t0 + 1])
        np.testing.assert_array_equal(y[k, :, 0], rr[t0 + 1 : t0 + 4])
        assert w.init_times[i] == pd.Timestamp(ds.time.values[t0])
    # a single int drops the batch axis, negative indices count from the end
    np.testing.assert_array_equal(w.inputs(-1), x[4])
    assert w.targets(0).shape == (3, 1, 12, 16)
    np.testing.assert_array_equal(w.inputs(slice(0, 2)), w.inputs([0, 1]))
    with pytest.raises(IndexError):
        w.inputs(len(w))


@settings(max_examples=30, deadline=None)
@given(
    offs=st.lists(st.integers(-12, -1), max_size=4, unique=True),
    n_tgt=st.integers(0, 3),
    stride=st.integers(1, 3),
)
def test_windows_match_slicing_for_any_offsets(offs, n_tgt, stride):
    fr = _ramp(n=30, c=2)
    inp = [*sorted(offs), 0]
    w = Windows(fr, input_offsets=inp, out_steps=n_tgt, stride=stride)
    span = n_tgt - min(inp)
    expect_t0 = np.arange(-min(inp), 30 - n_tgt)[::stride]
    np.testing.assert_array_equal(w.t0_index, expect_t0)
    assert w.span == span + 1
    x, y = w[np.arange(len(w))]
    np.testing.assert_array_equal(x[..., 0, 0, 0], (expect_t0[:, None] + inp) * 10)
    np.testing.assert_array_equal(x[:, :, 1, 2, 3], (expect_t0[:, None] + inp) * 10 + 1)
    np.testing.assert_array_equal(
        y[..., 0, 0, 0], (expect_t0[:, None] + np.arange(1, n_tgt + 1)) * 10
    )


def test_no_window_crosses_a_gap_or_event_change():
    t = pd.date_range("2021-01-01", periods=30, freq="10min")
    t = t.delete([10, 11])  # a gap of 3 steps between 09 and 12
    event = np.repeat([0, 1], [20, 8])  # an event change inside the second run
    fr = _ramp(times=t, event=event)
    w = Windows(fr, in_steps=3, out_steps=2)
    seg = stgeo.conventions.segments(fr.time, pd.Timedelta("10min"), event)
    for p in w.t0_index:
        frames = p + np.array([-2, -1, 0, 1, 2])
        assert frames.min() >= 0 and frames.max() < len(t)
        assert len(set(seg[frames])) == 1
        dt = np.diff(t[frames].values).astype("timedelta64[m]").astype(int)
        assert (dt == 10).all()
    # runs of length 10, 10 and 8: 6 + 6 + 4 windows of span 5
    assert len(w) == 6 + 6 + 4
    # the step is inferred within events and gaps are allowed when windowing
    assert w.step == pd.Timedelta("10min")


def test_period_and_trend_offsets_crowd_flows():
    ds = stgeo.testing.crowd_flows(n_days=9, shape=(6, 6), seed=1)
    fr = to_frames(ds)
    day = 48
    w = Windows(fr, input_offsets=[-7 * day, -day, -2, -1, 0], target_offsets=[1])
    assert w.t0_index[0] == 7 * day
    assert len(w) == 9 * day - 7 * day - 1
    i = 17
    t0 = w.init_times[i]
    x, y = w[[i]]
    for k, off in enumerate([-7 * day, -day, -2, -1, 0]):
        ref = ds.flow.sel(time=t0 + off * pd.Timedelta("30min")).values
        np.testing.assert_array_equal(x[0, k], ref)
    np.testing.assert_array_equal(y[0, 0], ds.flow.sel(time=t0 + pd.Timedelta("30min")).values)


def test_time_range_and_inputs_in_range():
    fr = _ramp(n=40)
    t = fr.time.values
    w = Windows(fr, in_steps=4, out_steps=2, time_range=(t[20], None))
    assert w.t0_index[0] == 23 and w.t0_index[-1] == 37
    w2 = Windows(fr, in_steps=4, out_steps=2, time_range=(t[20], t[30]), inputs_in_range=False)
    # targets inside [20, 30], inputs may come from before
    assert w2.t0_index[0] == 19 and w2.t0_index[-1] == 28
    w3 = Windows(fr, in_steps=4, time_range=(t[20], t[25]), inputs_in_range=False)
    np.testing.assert_array_equal(w3.t0_index, np.arange(20, 26))
    with pytest.raises(DataValidationError, match="after its end"):
        Windows(fr, in_steps=2, time_range=(t[5], t[1]))


def test_init_times_explicit_and_invalid():
    fr = _ramp(n=20)
    t = pd.DatetimeIndex(fr.time.values)
    w = Windows(fr, in_steps=3, out_steps=2, init_times=[t[10], t[4], t[2]])
    np.testing.assert_array_equal(w.t0_index, [10, 4, 2])  # order kept
    with pytest.raises(DataValidationError, match="inputs") as err:
        Windows(fr, in_steps=3, out_steps=2, init_times=[t[1], t[5]])
    assert str(t[1]) in str(err.value)
    with pytest.raises(DataValidationError, match="targets"):
        Windows(fr, in_steps=3, out_steps=2, init_times=[t[19]])
    with pytest.raises(DataValidationError, match="not a time of the data"):
        Windows(fr, in_steps=3, init_times=["2021-01-01T00:05"])
    with pytest.raises(DataValidationError, match="time_range"):
        Windows(fr, in_steps=3, init_times=[t[5]], time_range=(t[10], None))
    # inference: targets may run past the end of the data, they read as NaN
    wi = Windows(fr, in_steps=3, out_steps=2, init_times=[t[18], t[19]], require_targets=False)
    y = wi.targets([0, 1])
    assert y[0, 0, 0, 0, 0] == 190 and np.isnan(y[0, 1]).all() and np.isnan(y[1]).all()
    assert wi.inputs(1)[-1, 0, 0, 0] == 190


def test_require_targets_false_adds_last_windows():
    fr = _ramp(n=12)
    assert len(Windows(fr, in_steps=3, out_steps=4)) == 12 - 6
    assert len(Windows(fr, in_steps=3, out_steps=4, require_targets=False)) == 12 - 2


def test_partial_windows_read_nan_past_the_data_its_range_and_gaps():
    # 20 frames with a gap after index 13; training range ends at index 9
    t = pd.date_range("2021-01-01", periods=21, freq="10min").delete([14])
    fr = _ramp(times=t)
    full = Windows(fr, in_steps=3, out_steps=4)
    part = Windows(fr, in_steps=3, out_steps=4, min_targets=2)
    assert not full.partial and part.partial and part.min_targets == 2
    # segments of 14 and 6 frames: t0 needs 2 inputs before it and 2 targets after it
    assert len(full) == (14 - 6) + (6 - 6) and len(part) == (14 - 4) + (6 - 4)
    avail = part.available(slice(None))
    assert avail.sum(axis=1).min() == 2 and avail[:, :2].all()
    y = part.targets(slice(None))
    assert np.array_equal(np.isnan(y).all(axis=(2, 3, 4)), ~avail)
    # every frame read is the frame at its position (the ramp encodes it)
    pos = part.positions(slice(None), "targets")
    assert np.array_equal(y[avail][:, 0, 0, 0], pos[avail] * 10.0)
    # a time range: no target past its end is read (and the windows' inputs stay inside)
    end = fr.time.values[9]
    rng = Windows(fr, in_steps=3, out_steps=4, min_targets=1, time_range=(None, end))
    assert rng.positions(slice(None), "targets")[rng.available(slice(None))].max() == 9
    assert np.isnan(rng.targets(slice(None))[-1, 1:]).all()
    assert rng.frame_range() == (0, 9) and full.frame_range() == (0, 13)
    # min_targets = all targets is the full window
    assert np.array_equal(Windows(fr, 3, 4, min_targets=4).t0_index, full.t0_index)


@pytest.mark.parametrize("bad", [0, 5, 1.5, True])
def test_min_targets_must_be_a_count_of_targets(bad):
    with pytest.raises(DataValidationError, match="min_targets must be an integer from 1 to"):
        Windows(_ramp(n=20), in_steps=2, out_steps=4, min_targets=bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_steps": 30, "out_steps": 12}, "too few time steps"),
        ({}, "in_steps"),
        ({"in_steps": 0}, "in_steps"),
        ({"input_offsets": [0, -1]}, "strictly increasing"),
        ({"input_offsets": [-2, -1]}, "end with 0"),
        ({"input_offsets": [-1, 0, 1]}, "end with 0"),
        ({"input_offsets": [-1.5, 0]}, "integers"),
        ({"in_steps": 3, "input_offsets": [-1, 0]}, "contradicts"),
        ({"in_steps": 2, "target_offsets": [0, 1]}, ">= 1"),
        ({"in_steps": 2, "target_offsets": [2, 1]}, "strictly increasing"),
        ({"in_steps": 2, "out_steps": 3, "target_offsets": [1, 2]}, "contradicts"),
        ({"in_steps": 2, "stride": 0}, "stride"),
        ({"in_steps": 2, "time_range": ("2021-01-01",)}, "time_range"),
    ],
)
def test_clear_errors(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        Windows(_ramp(n=20), **kwargs)


def test_too_few_steps_reports_longest_run():
    t = pd.date_range("2021-01-01", periods=12, freq="1h").delete([4])
    with pytest.raises(DataValidationError, match=r"longest contiguous run .* is 7"):
        Windows(_ramp(times=t), in_steps=5, out_steps=3)


def test_bad_frames_type_and_dataset_input():
    with pytest.raises(StgeoTypeError):
        Windows(np.zeros((4, 1, 2, 2)), in_steps=2)
    ds = stgeo.testing.storm_cells(n_times=6, shape=(8, 8))
    w = Windows(ds, in_steps=2, out_steps=1)  # a Dataset goes through to_frames
    assert w.channels == ["rain_rate"] and len(w) == 4


def test_read_frames_runs(zarr_frames):
    ds, fr = zarr_frames
    pos = np.array([0, 1, 2, 6, 7, 20, 29])
    np.testing.assert_array_equal(read_frames(fr, pos)[:, 0], ds.rain_rate.values[pos])
    mem = fr.load()
    np.testing.assert_array_equal(read_frames(mem, pos)[:, 0], ds.rain_rate.values[pos])


def test_events_reusing_times():
    t = pd.date_range("2021-01-01", periods=10, freq="10min")
    fr = _ramp(times=t.append(t[:6]), event=[0] * 10 + [1] * 6)
    w = Windows(fr, in_steps=2, out_steps=1)
    np.testing.assert_array_equal(w.t0_index, [*range(1, 9), *range(11, 15)])
    assert Windows(fr, in_steps=2, out_steps=1, init_times=[t[8]]).t0_index.tolist() == [8]
    with pytest.raises(DataValidationError, match="ambiguous"):
        Windows(fr, in_steps=2, out_steps=1, init_times=[t[3]])


def test_direct_zarr_reads_equal_the_lazy_data_and_only_when_unmodified(tmp_path):
    from stgeo.data.windows import _read_zarr_direct, _runs

    crowd = stgeo.testing.crowd_flows(n_days=2, shape=(8, 8), step="1h", seed=2)
    storms = stgeo.testing.storm_cells(n_times=40, shape=(12, 12), seed=1)
    storms["rain_rate"][5:7, :4] = np.nan
    ps = stgeo.to_zarr(storms, tmp_path / "s.zarr", chunks={"time": 8})
    pc = stgeo.to_zarr(crowd, tmp_path / "c.zarr", chunks={"time": 8})
    pos = np.array([0, 1, 2, 5, 6, 9, 10, 33, 39])
    fr = to_frames(stgeo.open_dataset(ps))
    direct = _read_zarr_direct(fr, _runs(pos), pos.size)
    assert direct is not None  # the fast path is taken for an unmodified store variable
    np.testing.assert_array_equal(direct, fr.values[pos])  # NaNs included
    w = Windows(fr, 3, 2)
    x, y = w[np.arange(len(w))]
    np.testing.assert_array_equal(x[7], storms.rain_rate.values[7:10, None])
    np.testing.assert_array_equal(y[7], storms.rain_rate.values[10:12, None])
    # modified data never take the raw path: fill, selection, subsetting, extra dims
    opened = stgeo.open_dataset(ps)
    for changed in (
        opened.fillna(0),
        opened.isel(time=slice(2, None)),
        opened.isel(y=slice(0, 6)),
        opened * 2,
    ):
        assert _read_zarr_direct(to_frames(changed), _runs(pos[:3]), 3) is None
    assert _read_zarr_direct(to_frames(stgeo.open_dataset(pc)), _runs(pos[:3]), 3) is None
    filled = Windows(to_frames(opened.fillna(0)), 3, 2)
    assert np.isfinite(filled[np.arange(len(filled))][0]).all()

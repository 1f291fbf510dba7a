"""Training batches carry the calendar features of their windows (stgeo.training.data)."""

from __future__ import annotations

import types

import numpy as np
import pytest

import stgeo
from stgeo.data import BatchLoader, TimeFeatures, Windows, to_frames
from stgeo.errors import DataValidationError
from stgeo.training import TrainConfig
from stgeo.training.data import FeatureLoader, model_window, prepare_data, window_features


@pytest.fixture(scope="module")
def flows():
    return stgeo.testing.crowd_flows(n_days=10, shape=(6, 4), step="1h", start="2014-06-28")


def test_feature_rows_follow_the_shuffled_batches(flows):
    w = Windows(to_frames(flows), in_steps=2, out_steps=1)
    ids = np.arange(len(w), dtype=np.float32)[:, None]  # feature = window index
    loader = FeatureLoader(BatchLoader(w, 7, shuffle=True, seed=3, drop_last=True), ids)
    loader.set_epoch(2)
    n = 0
    for x, _, f in loader:
        idx = f[:, 0].long().numpy()
        np.testing.assert_array_equal(x.numpy(), w[idx][0])  # the rows are these windows'
        n += 1
    assert n == len(loader) == len(w) // 7


def test_window_features_are_those_of_the_targets(flows):
    w = Windows(to_frames(flows), input_offsets=[-24, 0], target_offsets=[1, 2])
    tf = TimeFeatures(holidays="US")
    table = window_features(w, tf)
    assert table.shape == (len(w), 2 * tf.size)
    t = w.init_times[5]
    want = tf([t + np.timedelta64(1, "h"), t + np.timedelta64(2, "h")]).ravel()
    np.testing.assert_array_equal(table[5], want)


def test_prepare_data_uses_the_model_window_and_catalog_calendar(flows):
    cfg = TrainConfig(model="stresnet", out_steps=1)
    td, cfg = prepare_data(flows, cfg)
    assert td.input_offsets == [-167, -23, -2, -1, 0]
    assert td.time_features == TimeFeatures()  # no catalog, no country given
    _, val = td.loaders(cfg)
    x, _, f = next(iter(val))
    assert x.shape[1] == 5 and f.shape == (x.shape[0], 10)
    cat = types.SimpleNamespace(time_features={"holidays": "US", "subdiv": "NY"})
    cfg2 = model_window(TrainConfig(model="stresnet", out_steps=1), td.frames, cat)
    assert cfg2.time_features == {"holidays": "US", "subdiv": "NY", "timezone": None}
    given = model_window(
        TrainConfig(model="stresnet", out_steps=1, time_features={"holidays": "CN"}), td.frames, cat
    )
    assert given.time_features["holidays"] == "CN"  # the argument wins over the catalog


def test_errors(flows):
    with pytest.raises(DataValidationError, match="takes no time features"):
        stgeo.train(flows, "simvp", in_steps=2, out_steps=1, time_features={"holidays": "US"})
    with pytest.raises(DataValidationError, match="give in_steps"):
        TrainConfig(model="simvp", out_steps=1)
    short = flows.isel(time=slice(0, 24 * 6))  # six days: no window reaches a week back
    with pytest.raises(DataValidationError, match=r"offset -167 .*one-week trend"):
        stgeo.train(short, "stresnet-small", out_steps=1, epochs=1, progress=False)
    with pytest.raises(DataValidationError, match="multi-event"):
        stgeo.train([flows, flows], "stresnet-small", out_steps=1, epochs=1, progress=False)


def test_the_run_records_the_features(flows):
    m = stgeo.train(
        flows,
        "stresnet-small",
        out_steps=1,
        epochs=2,
        batch_size=16,
        progress=False,
        precision="fp32",
        seed=0,
    )
    assert m.spec.hyperparameters["n_features"] == 10
    assert m.spec.features == {"time": {"holidays": None, "subdiv": None, "timezone": None}}
    assert np.isfinite(m.metrics["val_mse"])
    assert m.spec.extra["training"]["time_features"] == m.spec.features["time"]

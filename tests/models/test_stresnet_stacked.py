"""Stacked ST-ResNet-style forecaster (stresnet-stacked): baseline initialisation, per-cell parameters, grid checks."""

from __future__ import annotations

import math

import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError
from stgeo.models.stresnet_stacked import StackedSTResNet as STResNet
from stgeo.models.stresnet_stacked import source_frames


def test_starts_as_persistence_exactly():
    m = stgeo.create_model(
        "stresnet-stacked-small", in_steps=5, out_steps=3, channels=2, grid_shape=(6, 4)
    )
    x = torch.randn(3, 5, 2, 6, 4)
    torch.testing.assert_close(m.eval()(x), x[:, -1:].expand(-1, 3, -1, -1, -1), rtol=0, atol=0)


def test_period_starts_as_the_climatology_baseline():
    """period=P reproduces the registered periodic-persistence baseline at initialisation."""
    x = torch.randn(2, 6, 1, 5, 7)
    m = STResNet(6, 8, 1, grid_shape=(5, 7), hidden=8, n_units=1, period=3).eval()
    ref = stgeo.create_model("climatology", in_steps=6, out_steps=8, period_steps=3)
    torch.testing.assert_close(m(x), ref(x), rtol=0, atol=0)


def test_decay_starts_as_damped_anomaly_persistence():
    x = torch.randn(2, 30, 1, 4, 5)
    m = STResNet(30, 6, 1, grid_shape=(4, 5), hidden=8, n_units=1, period=24, decay=3.0).eval()
    anomaly = x[:, -1] - x[:, -25]
    want = torch.stack([x[:, 5 + k] + math.exp(-k / 3.0) * anomaly for k in range(1, 7)], 1)
    torch.testing.assert_close(m(x), want, rtol=1e-5, atol=1e-5)


def test_source_frames():
    assert source_frames(4, 2) == [3, 3]
    assert source_frames(48, 12, period=24) == list(range(24, 36))
    assert source_frames(24, 30, period=24) == [*range(24), *range(6)]


def test_training_moves_away_from_the_baseline():
    torch.manual_seed(0)
    m = STResNet(3, 1, 1, grid_shape=(6, 6), hidden=8, n_units=1)
    x, y = torch.randn(8, 3, 1, 6, 6), torch.randn(8, 1, 1, 6, 6)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = (m(x) - y).square().mean()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first
    assert m.local_weight.detach().abs().sum().item() > 0  # the per-cell maps learned something
    assert m.tail.weight.detach().abs().sum().item() > 0  # and so did the convolutional correction


def test_per_cell_parameters_need_and_keep_the_grid():
    with pytest.raises(DataValidationError, match="grid_shape"):
        STResNet(3, 1, 2)
    with pytest.raises(DataValidationError, match="grid_shape"):
        STResNet(3, 1, 2, local=False, embed_dim=4)
    m = STResNet(3, 1, 2, grid_shape=(8, 8))
    with pytest.raises(DataValidationError, match=r"built for the grid \(8, 8\)"):
        m(torch.zeros(1, 3, 2, 8, 9))


def test_without_per_cell_parameters_any_grid():
    m = STResNet(3, 2, 1, local=False, embed_dim=0, hidden=8, n_units=1).eval()
    assert m.grid_shape is None
    for shape in ((5, 9), (16, 8)):
        assert m(torch.randn(1, 3, 1, *shape)).shape == (1, 2, 1, *shape)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"period": 5}, "period=5 needs at least 5 input frames"),
        ({"period": 3, "decay": 2.0}, "period=3 with decay needs at least 4 input frames"),
        ({"decay": -1.0}, "decay"),
        ({"kernel": 4}, "kernel must be odd"),
        ({"local": "yes"}, "local must be True or False"),
        ({"hidden": 0}, "hidden"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_hyperparameters(kw, match):
    with pytest.raises(DataValidationError, match=match):
        STResNet(3, 1, 1, grid_shape=(4, 4), **kw)


def test_trains_and_round_trips_through_the_artefact(tmp_path):
    ds = stgeo.testing.crowd_flows(n_days=9, shape=(6, 4), step="1h", seed=0)
    m = stgeo.train(
        ds,
        "stresnet-stacked-small",
        input_offsets=[-168, -24, -1, 0],
        out_steps=1,
        epochs=1,
        progress=False,
        precision="fp32",
        seed=0,
    )
    assert m.spec.input_offsets == [-168, -24, -1, 0]
    m.save(tmp_path / "m")
    back = stgeo.load_model(tmp_path / "m")
    x = torch.randn(2, 4, 2, 6, 4)
    torch.testing.assert_close(back.module(x), m.module(x), rtol=0, atol=0)

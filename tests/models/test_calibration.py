"""Quantile mapping of forecasts (stgeo.models.calibration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stgeo.errors import DataValidationError
from stgeo.models import QuantileMapping
from stgeo.models.calibration import PROBABILITIES, QuantileSample


def _rain(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wet = rng.random(shape) < 0.3
    return np.where(wet, rng.gamma(0.8, 3.0, shape), 0.0).astype(np.float32)


def test_frequency_bias_becomes_one_at_every_threshold_and_lead():
    obs = _rain(0, (64, 3, 1, 16, 16))
    # lead 1 right, lead 2 too weak, lead 3 too wet: the ranking of the pixels is the truth's
    fc = np.stack([obs[:, 0], 0.4 * obs[:, 1], 2.0 * obs[:, 2] + 0.2], 1)
    qm = QuantileMapping.fit(fc, obs, leads=[1, 2, 3])
    test_obs = _rain(1, (32, 3, 1, 16, 16))
    test_fc = np.stack([test_obs[:, 0], 0.4 * test_obs[:, 1], 2.0 * test_obs[:, 2] + 0.2], 1)
    out = qm.apply(torch.from_numpy(test_fc), leads=[1, 2, 3]).numpy()
    for lead in range(3):
        for thr in (0.1, 1.0, 5.0):
            bias = (out[:, lead] >= thr).mean() / (test_obs[:, lead] >= thr).mean()
            assert 0.9 < bias < 1.1, (lead, thr, bias)
        raw = (test_fc[:, lead] >= 1.0).mean() / (test_obs[:, lead] >= 1.0).mean()
        if lead:
            assert not 0.9 < raw < 1.1  # the test is not trivially met by the raw forecasts


def test_map_is_monotone_and_keeps_the_ranking():
    obs = _rain(2, (40, 1, 1, 12, 12))
    fc = np.sqrt(obs) + 0.05 * _rain(3, obs.shape)
    qm = QuantileMapping.fit(fc, obs, leads=[1])
    x = torch.linspace(-1.0, 50.0, 2001).reshape(1, 1, 1, 1, -1)
    y = qm.apply(x, leads=[1]).flatten()
    assert bool((torch.diff(y) >= -1e-6).all())
    # beyond the largest training forecast: shifted, not capped
    top = float(qm.forecast[0, 0, -1])
    z = qm.apply(torch.tensor([top + 10.0]).reshape(1, 1, 1, 1, 1), leads=[1]).item()
    assert z == pytest.approx(float(qm.observed[0, 0, -1]) + 10.0, rel=1e-5)


def test_ties_map_to_their_lowest_quantile_so_dry_stays_dry():
    obs = _rain(4, (50, 1, 1, 10, 10))
    fc = np.where(obs > 0.5, obs, 0.0)  # more exact zeros than the truth has
    qm = QuantileMapping.fit(fc, obs, leads=[1])
    out = qm.apply(torch.zeros(1, 1, 1, 2, 2), leads=[1])
    assert float(out.abs().max()) == 0.0


def test_leads_beyond_the_trained_ones_use_the_last_map_and_channels_are_separate():
    obs = _rain(5, (30, 2, 2, 8, 8))
    fc = obs * np.array([1.0, 0.5]).reshape(1, 1, 2, 1, 1).astype(np.float32)
    qm = QuantileMapping.fit(fc, obs, leads=[1, 2])
    x = torch.full((1, 3, 2, 1, 1), 2.0)
    out = qm.apply(x, leads=[1, 2, 5])
    assert torch.allclose(out[0, 2], out[0, 1])
    assert out[0, 0, 1].item() == pytest.approx(4.0, rel=0.05)  # channel 1 was halved
    assert out[0, 0, 0].item() == pytest.approx(2.0, rel=0.05)


def test_nan_pixels_are_left_out_and_stay_nan():
    obs = _rain(6, (20, 1, 1, 8, 8))
    fc = obs.copy()
    fc[:, :, :, :2] = np.nan
    obs[:, :, :, -1] = np.nan
    qm = QuantileMapping.fit(fc, obs, leads=[1])
    assert np.isfinite(qm.forecast).all() and np.isfinite(qm.observed).all()
    out = qm.apply(torch.from_numpy(fc[:2]), leads=[1])
    assert bool(torch.isnan(out[:, :, :, :2]).all())
    with pytest.raises(DataValidationError, match="all NaN"):
        QuantileMapping.fit(np.full_like(obs, np.nan), obs, leads=[1])


def test_round_trip_through_json_and_bad_inputs():
    obs = _rain(7, (10, 2, 1, 8, 8))
    qm = QuantileMapping.fit(obs, obs, leads=[1, 2])
    d = json.loads(json.dumps(qm.to_dict()))
    back = QuantileMapping.from_dict(d)
    assert back.leads == [1, 2] and len(back.probabilities) == len(PROBABILITIES)
    np.testing.assert_allclose(back.forecast, qm.forecast, rtol=1e-5)
    with pytest.raises(DataValidationError, match="unknown calibration method"):
        QuantileMapping.from_dict({**d, "method": "isotonic"})
    with pytest.raises(DataValidationError, match="differ in shape"):
        QuantileMapping.fit(obs, obs[:, :1], leads=[1, 2])
    with pytest.raises(DataValidationError, match="leads"):
        QuantileMapping.fit(obs, obs, leads=[1])
    with pytest.raises(DataValidationError, match="channel"):
        qm.apply(torch.zeros(1, 2, 3, 4, 4), leads=[1, 2])


def test_sample_keeps_at_most_per_batch_values():
    s = QuantileSample(per_batch=50, seed=0)
    s.add(torch.ones(4, 2, 1, 10, 10), torch.ones(4, 2, 1, 10, 10))
    assert s.forecast[0].shape == (2, 1, 50)

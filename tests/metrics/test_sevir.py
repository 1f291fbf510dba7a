"""SEVIR CSI / CSI-M exactly as the published tables compute them, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo.metrics as sm
from stgeo.errors import DataValidationError


def test_csi_m_of_a_hand_built_example():
    obs = np.array([0, 20, 80, 140, 170, 190, 230, 10], float).reshape(1, 2, 4)
    fc = np.array([20, 20, 80, 130, 170, 200, 210, 0], float).reshape(1, 2, 4)
    dims = ("time", "y", "x")
    res = sm.sevir_scores(xr.DataArray(fc, dims=dims), xr.DataArray(obs, dims=dims))
    # by hand: 16 -> H6 F1 M0 = 6/7; 74 -> 5/5; 133 -> H3 M1 = 3/4 (130 < 133);
    # 160 -> 3/3; 181 -> 2/2; 219 -> H0 M1 = 0 (210 < 219)
    expected = [6 / 7, 1.0, 3 / 4, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(res.csi.values, expected, rtol=0, atol=1e-15)
    assert float(res.csi_m) == pytest.approx(43 / 56, abs=1e-15)
    assert res.threshold.values.tolist() == [16, 74, 133, 160, 181, 219]
    assert res.hits.values.tolist() == [6, 5, 3, 3, 2, 0]


def _brute_csi(f, o, thr):
    h = m = fa = 0
    for a, b in zip(f.ravel().tolist(), o.ravel().tolist(), strict=True):
        h += a >= thr and b >= thr
        m += a < thr and b >= thr
        fa += a >= thr and b < thr
    return h / (h + m + fa)


def _pool(a, k):
    *lead, hh, ww = a.shape
    a = a[..., : hh // k * k, : ww // k * k]
    return a.reshape(*lead, hh // k, k, ww // k, k).max(axis=(-3, -1))


def test_pooled_per_lead_counts_over_samples_leads_pixels():
    rng = np.random.default_rng(7)
    n_init, n_lead, h, w = 3, 4, 18, 17
    t = pd.date_range("2019-06-01", periods=n_init + n_lead, freq="5min")
    obs_v = np.clip(rng.normal(90, 70, (n_init + n_lead, h, w)), 0, 255).round()
    obs = xr.DataArray(obs_v, dims=("time", "y", "x"), coords={"time": t})
    fc_v = np.clip(
        np.stack([obs_v[i + 1 : i + 1 + n_lead] for i in range(n_init)])
        + rng.normal(0, 30, (n_init, n_lead, h, w)),
        0,
        255,
    )
    lead = pd.to_timedelta(np.arange(1, n_lead + 1) * 5, unit="min")
    fc = xr.DataArray(
        fc_v,
        dims=("init_time", "lead_time", "y", "x"),
        coords={"init_time": t[:n_init], "lead_time": lead},
    )
    o_al = np.stack([obs_v[i + 1 : i + 1 + n_lead] for i in range(n_init)])

    res = sm.sevir_scores(fc, obs, pool=[1, 4, 16])
    per_lead = sm.sevir_scores(fc, obs, per_lead=True)
    for k in (1, 4, 16):
        fk, ok = _pool(fc_v, k), _pool(o_al, k)
        csis = [_brute_csi(fk, ok, t) for t in sm.SEVIR_THRESHOLDS]
        np.testing.assert_allclose(res.csi.sel(pool=k).values, csis, rtol=1e-12)
        np.testing.assert_allclose(float(res.csi_m.sel(pool=k)), sum(csis) / 6, rtol=1e-12)
    for j in range(n_lead):
        csis = [_brute_csi(fc_v[:, j], o_al[:, j], t) for t in sm.SEVIR_THRESHOLDS]
        np.testing.assert_allclose(per_lead.csi.isel(lead_time=j).values, csis, rtol=1e-12)
        np.testing.assert_allclose(float(per_lead.csi_m.isel(lead_time=j)), np.mean(csis))
    assert per_lead.csi.dims == ("threshold", "lead_time")


def test_threshold_applies_to_both_fields():
    # the known bug: comparing the second field against a 0/1 mask instead of the threshold
    o = xr.DataArray(np.array([[1.0, 1.0, 100.0, 0.0]]), dims=("y", "x"))
    f = xr.DataArray(np.array([[100.0, 0.0, 100.0, 1.0]]), dims=("y", "x"))
    t = sm.contingency_table(f, o, threshold=74)
    assert [int(t.data[v].squeeze()) for v in t.data.data_vars] == [1, 0, 1, 2]


def test_normalised_vil_is_rejected():
    o = xr.DataArray(np.random.default_rng(0).random((2, 8, 8)), dims=("time", "y", "x"))
    with pytest.raises(DataValidationError, match="0-255"):
        sm.sevir_scores(o, o)

"""Oracle tests on real radar events: stgeo scores agree with pysteps (and `scores`) to 1e-9.

Reads a few frames of two pysteps example events directly with ``pysteps.io.importers``.
pysteps counts events with ``>`` where stgeo uses ``>=``: pysteps is called at
``nextafter(thr, -inf)``, which is the same event set for every representable value.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo.metrics as sm

pytestmark = pytest.mark.realdata

SHARED = Path(
    os.environ.get(
        "STGEO_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    )
)
RADAR = SHARED / "radar" / "radar"
THRESHOLDS = [0.1, 1.0, 5.0]
CAT_SCORES = {
    "CSI": "csi",
    "POD": "pod",
    "FAR": "far",
    "HSS": "hss",
    "GSS": "ets",
    "BIAS": "frequency_bias",
}


def _need(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real radar data not found at {path} (set STGEO_SHARED_DATA)")
    return path


def _frames(event: str, n: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
    pytest.importorskip("pysteps")
    from pysteps.io import importers

    if event == "fmi":
        files = sorted(_need(RADAR / "fmi" / "pgm" / "20160928").glob("*.pgm.gz"))[:n]
        frames = []
        for f in files:
            dbz, _, _ = importers.import_fmi_pgm(str(f), gzipped=True)
            # Marshall-Palmer Z = 200 R^1.6 -> rain rate in mm/h
            rate = (10 ** (dbz / 10.0) / 200.0) ** (1 / 1.6)
            frames.append(rate[300:812, 100:612])  # a 512 x 512 crop with rain and no-data
        t0 = "2016-09-28T14:45"
    else:
        files = sorted(_need(RADAR / "mch" / "20170131").glob("*.gif"))[:n]
        frames = [
            importers.import_mch_gif(str(f), product="AQC", unit="mm", accutime=5.0)[0] * 12.0
            for f in files
        ]
        t0 = "2017-01-31T09:45"
    return np.stack(frames).astype(np.float64), pd.date_range(t0, periods=n, freq="5min")


def _persistence_pair(event: str, n_init: int = 2, n_lead: int = 2):
    """Persistence forecasts (init_time, lead_time, y, x) and observations (time, y, x)."""
    data, times = _frames(event, n_init + n_lead)
    obs = xr.DataArray(
        data, dims=("time", "y", "x"), coords={"time": times}, attrs={"units": "mm h-1"}
    )
    lead = pd.to_timedelta(np.arange(1, n_lead + 1) * 5, unit="min")
    fc = xr.DataArray(
        np.repeat(data[:n_init, None], n_lead, axis=1),
        dims=("init_time", "lead_time", "y", "x"),
        coords={"init_time": times[:n_init], "lead_time": lead},
        attrs={"units": "mm h-1"},
    )
    return fc, obs


def _pysteps_arrays(fc: xr.DataArray, obs: xr.DataArray):
    f, o = sm.align(fc, obs)
    return f.values, o.values


@pytest.fixture(scope="module")
def fmi():
    return _persistence_pair("fmi")


@pytest.fixture(scope="module")
def mch():
    return _persistence_pair("mch")


@pytest.mark.parametrize("event", ["fmi", "mch"])
def test_categorical_scores_match_pysteps(event, request):
    from pysteps.verification import det_cat_fct

    fc, obs = request.getfixturevalue(event)
    f, o = _pysteps_arrays(fc, obs)
    assert np.isnan(o).any()  # real no-data areas are present
    res = sm.score(
        fc, obs, metrics=list(CAT_SCORES.values()), thresholds=THRESHOLDS, preserve_dims="lead_time"
    )
    res_nan0 = sm.score(
        fc.fillna(0),
        obs.fillna(0),
        metrics=list(CAT_SCORES.values()),
        thresholds=THRESHOLDS,
        preserve_dims=(),
    )
    valid = ~(np.isnan(f) | np.isnan(o))
    for thr in THRESHOLDS:
        below = np.nextafter(thr, -np.inf)
        # NaN policy: stgeo excludes NaN pixels -> pysteps on the jointly valid pixels, per lead
        for j in range(f.shape[1]):
            vj = valid[:, j]
            ref = det_cat_fct(f[:, j][vj], o[:, j][vj], below)
            for key, name in CAT_SCORES.items():
                got = float(res[name].sel(threshold=thr).isel(lead_time=j))
                np.testing.assert_allclose(
                    got,
                    ref[key],
                    rtol=1e-9,
                    atol=1e-12,
                    err_msg=f"{event} {name} thr={thr} lead={j}",
                )
        # NaN -> 0 in both fields: pysteps on the full arrays, pooled over everything
        ref = det_cat_fct(np.nan_to_num(f), np.nan_to_num(o), below)
        for key, name in CAT_SCORES.items():
            got = float(res_nan0[name].sel(threshold=thr))
            np.testing.assert_allclose(
                got, ref[key], rtol=1e-9, atol=1e-12, err_msg=f"{event} {name} thr={thr} (NaN->0)"
            )


def test_fss_matches_pysteps(fmi):
    from pysteps.verification import fss as ps_fss
    from pysteps.verification.spatialscores import fss_accum, fss_compute, fss_init

    fc, obs = fmi  # FMI's no-data mask is the same in every frame
    f, o = _pysteps_arrays(fc, obs)
    windows = [1, 5, 20]
    per_lead = sm.score(
        fc,
        obs,
        metrics=["fss"],
        thresholds=THRESHOLDS,
        windows=windows,
        preserve_dims=("init_time", "lead_time"),
    ).fss
    pooled = sm.score(
        fc, obs, metrics=["fss"], thresholds=THRESHOLDS, windows=windows, preserve_dims=()
    ).fss
    for thr in THRESHOLDS:
        for w in windows:
            for i in range(f.shape[0]):
                for j in range(f.shape[1]):
                    ref = ps_fss(f[i, j], o[i, j], thr, w)
                    got = float(
                        per_lead.sel(threshold=thr, window=w).isel(init_time=i, lead_time=j)
                    )
                    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
            acc = fss_init(thr, w)
            for i in range(f.shape[0]):
                for j in range(f.shape[1]):
                    fss_accum(acc, f[i, j], o[i, j])
            np.testing.assert_allclose(
                float(pooled.sel(threshold=thr, window=w)), fss_compute(acc), rtol=1e-9, atol=1e-12
            )


def test_categorical_scores_match_scores_package(mch):
    scores = pytest.importorskip("scores")
    fc, obs = mch
    f, o = sm.align(fc, obs)
    valid = f.notnull() & o.notnull()
    res = sm.score(
        fc,
        obs,
        metrics=["csi", "pod", "far", "hss", "ets", "frequency_bias"],
        thresholds=[1.0],
        preserve_dims="lead_time",
    )
    # scores counts NaN as non-events; restrict it to the jointly valid pixels
    fe = (f >= 1.0).where(valid)
    oe = (o >= 1.0).where(valid)
    mgr = scores.categorical.BinaryContingencyManager(fe, oe).transform(preserve_dims=["lead_time"])
    pairs = {
        "csi": mgr.critical_success_index(),
        "pod": mgr.probability_of_detection(),
        "far": mgr.false_alarm_ratio(),
        "hss": mgr.heidke_skill_score(),
        "ets": mgr.equitable_threat_score(),
        "frequency_bias": mgr.frequency_bias(),
    }
    for name, ref in pairs.items():
        np.testing.assert_allclose(
            res[name].sel(threshold=1.0).values, ref.values, rtol=1e-9, err_msg=name
        )

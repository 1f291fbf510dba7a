"""Contingency table: counts, NaN policy, threshold 0, merging (property tests), ranges."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import stgeo.metrics as sm
from stgeo.errors import DataValidationError, StgeoTypeError

SCORES = ("csi", "pod", "far", "sr", "frequency_bias", "hss", "ets")
RANGES = {
    "csi": (0, 1),
    "pod": (0, 1),
    "far": (0, 1),
    "sr": (0, 1),
    "frequency_bias": (0, np.inf),
    "hss": (-1, 1),
    "ets": (-1 / 3, 1),
}


def _brute_counts(f, o, thr):
    h = m = fa = n = 0
    for a, b in zip(np.ravel(f), np.ravel(o), strict=True):
        if np.isnan(a) or np.isnan(b):
            continue
        fe, oe = a >= thr, b >= thr
        h += fe and oe
        m += (not fe) and oe
        fa += fe and not oe
        n += (not fe) and not oe
    return h, m, fa, n


def test_counts_match_brute_force_with_nan_and_threshold_zero():
    rng = np.random.default_rng(3)
    f = rng.choice([0.0, 0.5, 1.0, 2.0, np.nan, -1.0], size=(5, 7))
    o = rng.choice([0.0, 0.5, 1.0, 2.0, np.nan, -1.0], size=(5, 7))
    fa, oa = xr.DataArray(f, dims=("y", "x")), xr.DataArray(o, dims=("y", "x"))
    table = sm.contingency_table(fa, oa, threshold=[0, 1.0, 2.0])
    for i, thr in enumerate([0.0, 1.0, 2.0]):
        got = [
            int(table.data[v][i]) for v in ("hits", "misses", "false_alarms", "correct_negatives")
        ]
        assert got == list(_brute_counts(f, o, thr))
    # threshold 0 is a real threshold: zeros are events (>= 0), -1 is not
    assert int(table.hits.sel(threshold=0.0)) > 0
    z = sm.contingency_table(
        xr.DataArray([0.0, -1.0, 0.0, -1.0], dims="x"),
        xr.DataArray([0.0, 0.0, -1.0, -1.0], dims="x"),
        threshold=0,
    )
    assert [int(z.data[v].squeeze()) for v in z.data.data_vars] == [1, 1, 1, 1]
    n_valid = int((~(np.isnan(f) | np.isnan(o))).sum())
    assert (table.total == n_valid).all()


def test_event_is_greater_or_equal():
    f = xr.DataArray([1.0, 0.999], dims="x")
    o = xr.DataArray([1.0, 1.0], dims="x")
    t = sm.contingency_table(f, o, threshold=1.0)
    assert int(t.hits.squeeze()) == 1
    assert int(t.misses.squeeze()) == 1


def test_zero_over_zero_is_nan_not_zero_or_one():
    f = xr.DataArray(np.zeros(4), dims="x")
    t = sm.contingency_table(f, f, threshold=1.0)
    for s in ("csi", "pod", "far", "sr", "frequency_bias", "hss", "ets"):
        assert np.isnan(float(getattr(t, s)().squeeze())), s
    assert float(t.accuracy().squeeze()) == 1.0


def test_preserve_and_reduce_dims(pair):
    fc, obs = pair
    t = sm.contingency_table(fc, obs, threshold=[0.1, 1.0], preserve_dims="lead_time")
    assert t.dims == ("threshold", "lead_time")
    t2 = sm.contingency_table(fc, obs, threshold=[0.1, 1.0], reduce_dims=["init_time", "y", "x"])
    xr.testing.assert_equal(t.data, t2.data)
    assert int(t.total.sum()) == fc.size * 2
    with pytest.raises(DataValidationError, match="not both"):
        sm.contingency_table(fc, obs, threshold=1, reduce_dims="y", preserve_dims="x")
    with pytest.raises(DataValidationError, match="not dims"):
        sm.contingency_table(fc, obs, threshold=1, preserve_dims="member")


def test_merge_rejects_different_coordinates(pair):
    fc, obs = pair
    a = sm.contingency_table(fc, obs, threshold=[1.0])
    b = sm.contingency_table(fc, obs, threshold=[2.0])
    with pytest.raises(DataValidationError, match="cannot merge"):
        _ = a + b
    assert (sum([a, a]) == a + a) and (0 + a) == a
    with pytest.raises(TypeError):
        _ = a + sm.error_sums(fc, obs)


def test_bad_thresholds():
    f = xr.DataArray([1.0, 2.0], dims="x")
    with pytest.raises(DataValidationError, match="0 is a valid threshold"):
        sm.csi(f, f, threshold=None)
    with pytest.raises(DataValidationError, match="finite"):
        sm.csi(f, f, threshold=[np.nan])
    with pytest.raises(DataValidationError, match="duplicates"):
        sm.csi(f, f, threshold=[1, 1])
    with pytest.raises(StgeoTypeError):
        sm.csi(f, f, threshold="1 mm/h")


def test_metric_attrs_and_scalar_threshold(pair):
    fc, obs = pair
    for name in (*SCORES, "csi_m"):
        thr = [0.5, 1.0] if name == "csi_m" else 1.0
        out = getattr(sm, name)(fc, obs, threshold=thr, preserve_dims="lead_time")
        assert out.attrs["units"] == "1" and out.attrs["long_name"], name
        assert out.dims == ("lead_time",), name
        assert out.name == name


# ---------------------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------------------
values = st.one_of(
    st.sampled_from([0.0, 0.1, 1.0, 5.0, np.nan]), st.floats(-1, 10, allow_nan=False)
)
fields = st.integers(2, 9).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, (n, 3, 4), elements=values),
        arrays(np.float64, (n, 3, 4), elements=values),
    )
)
thresholds = st.lists(
    st.sampled_from([0.0, 0.1, 0.5, 1.0, 5.0]), min_size=1, max_size=3, unique=True
)


def _da(a):
    return xr.DataArray(a, dims=("time", "y", "x"), coords={"time": np.arange(a.shape[0])})


@settings(max_examples=25, deadline=None)
@given(fields, thresholds, st.data())
def test_tables_from_any_split_add_up_to_the_whole(fo, thr, data):
    f, o = fo
    n = f.shape[0]
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), max_size=3, unique=True)))
    bounds = [0, *cuts, n]
    whole = sm.contingency_table(_da(f), _da(o), threshold=thr)
    parts = [
        sm.contingency_table(_da(f[a:b]), _da(o[a:b]), threshold=thr)
        for a, b in itertools.pairwise(bounds)
    ]
    assert sum(parts) == whole
    # splitting along space too (a different axis) gives the same table
    left = sm.contingency_table(_da(f[:, :, :2]), _da(o[:, :, :2]), threshold=thr)
    right = sm.contingency_table(_da(f[:, :, 2:]), _da(o[:, :, 2:]), threshold=thr)
    assert left + right == whole
    # continuous and FSS sums merge exactly too
    es = sm.error_sums(_da(f), _da(o), preserve_dims="y")
    es_parts = [
        sm.error_sums(_da(f[a:b]), _da(o[a:b]), preserve_dims="y")
        for a, b in itertools.pairwise(bounds)
    ]
    xr.testing.assert_allclose(sum(es_parts).data, es.data, rtol=1e-12, atol=1e-12)
    fs = sm.fss_sums(_da(f), _da(o), threshold=thr, window=[1, 3])
    fs_parts = [
        sm.fss_sums(_da(f[a:b]), _da(o[a:b]), threshold=thr, window=[1, 3])
        for a, b in itertools.pairwise(bounds)
    ]
    xr.testing.assert_allclose(sum(fs_parts).data, fs.data, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(fields, thresholds)
def test_scores_stay_in_their_range(fo, thr):
    f, o = fo
    table = sm.contingency_table(_da(f), _da(o), threshold=thr)
    for name, (lo, hi) in RANGES.items():
        v = getattr(table, name)().values
        v = v[np.isfinite(v)]
        assert ((v >= lo - 1e-12) & (v <= hi + 1e-12)).all(), name
    fss = sm.fss(_da(f), _da(o), threshold=thr, window=[1, 3]).values
    fss = fss[np.isfinite(fss)]
    assert ((fss >= -1e-12) & (fss <= 1 + 1e-12)).all()
    for name in ("mse", "mae", "rmse", "mse_frame"):
        v = float(getattr(sm, name)(_da(f), _da(o)))
        assert np.isnan(v) or v >= 0


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (3, 4, 5), elements=values), thresholds)
def test_perfect_forecasts_score_perfectly(o, thr):
    obs = _da(o)
    table = sm.contingency_table(obs, obs, threshold=thr)
    has_event = (table.hits > 0).values
    for name, perfect in (("csi", 1), ("pod", 1), ("sr", 1), ("far", 0), ("frequency_bias", 1)):
        v = getattr(table, name)().values
        np.testing.assert_array_equal(v[has_event], perfect, err_msg=name)
        assert np.isnan(v[~has_event]).all()
    # HSS/ETS are 1 unless the table is degenerate (all events or no events)
    mixed = has_event & (table.correct_negatives > 0).values
    for name in ("hss", "ets"):
        np.testing.assert_allclose(getattr(table, name)().values[mixed], 1.0)
    if np.isfinite(o).any():
        assert float(sm.mse(obs, obs)) == 0.0 and float(sm.mae(obs, obs)) == 0.0
        f = sm.fss(obs, obs, threshold=thr, window=[1, 3]).values
        np.testing.assert_allclose(f[has_event], 1.0)


# -- counts from plain arrays (the entry point training validation uses) -----------------
@settings(max_examples=25, deadline=None)
@given(fields, thresholds)
def test_count_table_matches_the_xarray_table_and_brute_force(fo, thr):
    import torch

    f, o = fo
    counts = sm.contingency.count_table(f, o, thr)
    assert counts.shape == (len(thr), 4) and counts.dtype == np.int64
    for i, t in enumerate(thr):
        assert tuple(counts[i]) == _brute_counts(f, o, t)
    table = sm.contingency_table(_da(f), _da(o), threshold=thr)
    expect = np.stack([table.data[v].values for v in table.data.data_vars], axis=-1)
    np.testing.assert_array_equal(counts, expect)
    on_torch = sm.contingency.count_table(torch.from_numpy(f), torch.from_numpy(o), thr)
    assert isinstance(on_torch, torch.Tensor) and on_torch.dtype == torch.int64
    np.testing.assert_array_equal(on_torch.numpy(), counts)


def test_count_table_merges_by_addition_and_gives_the_scores():
    rng = np.random.default_rng(5)
    f = rng.choice([0.0, 0.5, 1.0, 2.0, np.nan], size=(6, 4, 4)).astype(np.float32)
    o = rng.choice([0.0, 0.5, 1.0, 2.0, np.nan], size=(6, 4, 4)).astype(np.float32)
    thr = [0.5, 2.0, 99.0]
    whole = sm.contingency.count_table(f, o, thr)
    parts = sum(sm.contingency.count_table(f[i : i + 2], o[i : i + 2], thr) for i in (0, 2, 4))
    np.testing.assert_array_equal(parts, whole)
    table = sm.ContingencyTable.from_counts(parts, thr)
    fd, od = xr.DataArray(f, dims=("t", "y", "x")), xr.DataArray(o, dims=("t", "y", "x"))
    xr.testing.assert_equal(table.csi(), sm.csi(fd, od, threshold=thr))
    assert np.isnan(table.csi().values[-1]) and np.isnan(float(table.csi_m()))
    assert int(table.total[0]) == int((~np.isnan(f) & ~np.isnan(o)).sum())


def test_count_table_errors():
    import torch

    with pytest.raises(DataValidationError, match="same shape"):
        sm.contingency.count_table(np.zeros(3), np.zeros(4), [1.0])
    with pytest.raises(StgeoTypeError, match="one kind"):
        sm.contingency.count_table(torch.zeros(3), np.zeros(3), [1.0])
    with pytest.raises(DataValidationError, match="duplicates"):
        sm.contingency.count_table(np.zeros(3), np.zeros(3), [1.0, 1.0])
    with pytest.raises(DataValidationError, match="shape"):
        sm.ContingencyTable.from_counts(np.zeros((2, 4)), [1.0])

"""Tests of Normalizer: train-only statistics, lazy fitting, transforms, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import stgeo
from stgeo.data import Normalizer, split_by_time, to_frames
from stgeo.errors import DataValidationError, UnknownNameError


def _data(n=60):
    """Two channels; the last third (test period) has a very different level."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2020-01-01", periods=n, freq="1h")
    a = rng.normal(5.0, 2.0, (n, 6, 7))
    a[2 * n // 3 :] += 1000.0
    b = rng.uniform(-3.0, 1.0, (n, 6, 7))
    b[2 * n // 3 :] *= 50.0
    return xr.Dataset(
        {
            "a": (("time", "y", "x"), a, {"units": "1"}),
            "b": (("time", "y", "x"), b, {"units": "1"}),
        },
        coords={"time": t},
    )


def test_fit_uses_only_the_training_split(tmp_path):
    ds = _data()
    p = stgeo.to_zarr(ds, tmp_path / "d.zarr", chunks={"time": 7})
    lazy = stgeo.open_dataset(p)
    parts = split_by_time(lazy, train=0.5, val=1 / 6, test=1 / 3)
    fr = to_frames(parts["train"], ["a", "b"])
    assert fr.chunks is not None  # fitted with dask reductions on the lazy store
    n = Normalizer("standard").fit(fr)
    train = ds.isel(time=slice(0, 30))
    np.testing.assert_allclose(n.stats["mean"], [train.a.mean(), train.b.mean()], rtol=1e-6)
    np.testing.assert_allclose(n.stats["std"], [train.a.std(), train.b.std()], rtol=1e-6)
    # the test period would move these a lot
    assert abs(n.stats["mean"][0] - float(ds.a.mean())) > 100
    assert n.channels == ["a", "b"]
    m = Normalizer("minmax").fit(fr)
    np.testing.assert_allclose(m.stats["max"], [train.a.max(), train.b.max()], rtol=1e-6)
    np.testing.assert_allclose(m.stats["min"], [train.a.min(), train.b.min()], rtol=1e-6)


def test_transform_inverse_numpy_torch_xarray():
    ds = _data()
    fr = to_frames(ds)
    x = fr.values[:10]
    for method in ("standard", "minmax", "none"):
        n = Normalizer(method).fit(fr)
        z = n.transform(x)
        assert isinstance(z, np.ndarray) and z.dtype == np.float32 and z.shape == x.shape
        np.testing.assert_allclose(n.inverse(z), x, rtol=1e-5, atol=1e-3)
        zt = n.transform(torch.from_numpy(x[None]))
        assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
        np.testing.assert_allclose(zt.numpy()[0], z, rtol=1e-5, atol=1e-5)
        zx = n.transform(fr.isel(time=slice(0, 10)))
        assert isinstance(zx, xr.DataArray) and zx.dims == fr.dims
        np.testing.assert_allclose(zx.values, z, rtol=1e-5, atol=1e-5)
    n = Normalizer("minmax").fit(fr)
    z = n.transform(fr.values)
    assert z.min() == pytest.approx(-1, abs=1e-5) and z.max() == pytest.approx(1, abs=1e-5)
    s = Normalizer().fit(fr).transform(fr.values.astype("f8"))
    np.testing.assert_allclose(s.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(s.std(axis=(0, 2, 3)), 1, atol=1e-9)


def test_to_dict_from_dict_roundtrip_json():
    fr = to_frames(_data())
    for method in ("standard", "minmax", "none"):
        n = Normalizer(method).fit(fr)
        d = json.loads(json.dumps(n.to_dict()))
        n2 = Normalizer.from_dict(d)
        assert n2.method == method and n2.channels == ["a", "b"]
        x = fr.values[:3]
        np.testing.assert_array_equal(n2.transform(x), n.transform(x))
    assert Normalizer.from_dict(None).method == "none"


def test_constant_channel_and_nan_handling():
    fr = to_frames(_data()).copy()
    fr[:, 1] = 4.0
    fr[0, 0, 0, 0] = np.nan
    n = Normalizer().fit(fr)
    assert np.isfinite(n.stats["mean"]).all() and n.stats["std"][1] == 1.0
    assert np.isnan(n.transform(fr.values[:1])[0, 0, 0, 0])


def test_errors():
    with pytest.raises(UnknownNameError, match="standard"):
        Normalizer("zscore")
    with pytest.raises(DataValidationError, match="not fitted"):
        Normalizer().transform(np.zeros((2, 3, 3)))
    n = Normalizer().fit(to_frames(_data()))
    with pytest.raises(DataValidationError, match="2 channel"):
        n.transform(np.zeros((3, 3, 4, 4)))
    with pytest.raises(DataValidationError, match="needs"):
        Normalizer.from_dict({"method": "standard", "mean": [1.0]})
    with pytest.raises(DataValidationError, match="std must be > 0"):
        Normalizer.from_dict({"method": "standard", "mean": [1.0], "std": [0.0]})
    fr = to_frames(_data()).copy()
    fr[:, 0] = np.nan
    with pytest.raises(DataValidationError, match="not finite"):
        Normalizer().fit(fr)


def test_log1p_roundtrip_and_small_errors_stay_small_near_zero():
    fr = to_frames(stgeo.testing.storm_cells(n_times=24, shape=(32, 32), seed=3))
    n = Normalizer("log1p").fit(fr.chunk({"time": 6}))
    x = fr.values[:4]
    np.testing.assert_allclose(n.inverse(n.transform(x)), x, atol=1e-4, rtol=1e-5)
    xt = torch.from_numpy(x)
    torch.testing.assert_close(n.inverse(n.transform(xt)), xt, atol=1e-4, rtol=1e-5)
    # a 0.05 error in normalised units on a dry pixel stays below the 0.1 mm/h rain threshold
    dry = n.transform(np.zeros((1, 1, 1), "f4"))
    assert n.inverse(dry + 0.05).item() < 0.1
    back = Normalizer.from_dict(n.to_dict())
    assert back.method == "log1p"
    np.testing.assert_allclose(back.transform(x), n.transform(x))
    assert (n.inverse(np.full((1, 1, 1), -50.0, "f4")) == 0).all()  # never negative rain


def _frames(values):
    """``(time, channel, y, x)`` frames of one channel 'rain'."""
    v = np.asarray(values, dtype="f4").reshape(-1, 1, 2, 2)
    return xr.DataArray(v, dims=("time", "channel", "y", "x"), coords={"channel": ["rain"]})


def test_log1p_refuses_to_fit_negative_values():
    bad = _frames(np.arange(8.0) - 5.0)  # an offset: down to -5
    for fit in (
        lambda n: n.fit(bad),
        lambda n: n.fit(bad.chunk({"time": 1})),
        lambda n: n.partial_fit(bad),
    ):
        with pytest.raises(
            DataValidationError, match=r"'rain' down to -5\b.*normalization='standard'"
        ):
            fit(Normalizer("log1p"))
    fill = _frames([0.0, 2.0, np.nan, -9999.0] * 2)
    with pytest.raises(DataValidationError, match="down to -9999"):
        Normalizer("log1p").fit(fill)
    Normalizer("log1p").fit(_frames(np.arange(8.0) - 1e-4))  # round-off below 0 is fine
    Normalizer("standard").fit(bad)  # only log1p needs values >= 0


def test_log1p_transform_warns_about_negative_values():
    n = Normalizer("log1p").fit(_frames(np.arange(8.0)))
    neg = np.full((2, 1, 2, 2), -23.0, "f4")
    with pytest.warns(
        stgeo.errors.StgeoWarning, match=r"'rain' below -10\).*reads every negative value as 0"
    ):
        n.transform(neg)
    with pytest.warns(stgeo.errors.StgeoWarning, match="'rain' below -1000"):
        n.transform(torch.full((1, 1, 2, 2), -9999.0))
    with pytest.warns(stgeo.errors.StgeoWarning, match="'rain' below -0.1"):
        n.transform_inplace(np.array([[[[0.5, -0.2], [np.nan, 3.0]]]], "f4"))
    n.transform(np.full((1, 1, 2, 2), -1e-5, "f4"))  # round-off: no warning
    n.inverse(neg)  # normalised values may be negative

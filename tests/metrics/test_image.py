"""SSIM and PSNR: per-frame formulas checked by independent arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import stgeo.metrics as sm
from stgeo.errors import DataValidationError


def _gauss_kernel(sigma=1.5, radius=5):
    x = np.arange(-radius, radius + 1)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _ssim_brute(a, b, data_range):
    k = _gauss_kernel()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    r = 5
    vals = []
    for i in range(r, a.shape[0] - r):
        for j in range(r, a.shape[1] - r):
            pa, pb = (
                a[i - r : i + r + 1, j - r : j + r + 1],
                b[i - r : i + r + 1, j - r : j + r + 1],
            )
            ma, mb = (k * pa).sum(), (k * pb).sum()
            va = (k * pa * pa).sum() - ma**2
            vb = (k * pb * pb).sum() - mb**2
            cov = (k * pa * pb).sum() - ma * mb
            vals.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return np.mean(vals)


def test_ssim_matches_brute_force_and_is_perfect_for_identical_frames():
    rng = np.random.default_rng(2)
    a = rng.random((3, 16, 15))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    fa = xr.DataArray(a, dims=("time", "y", "x"))
    fb = xr.DataArray(b, dims=("time", "y", "x"))
    per = sm.ssim(fa, fb, data_range=1.0, preserve_dims="time")
    for t in range(3):
        assert float(per[t]) == pytest.approx(_ssim_brute(a[t], b[t], 1.0), abs=1e-10)
    assert float(sm.ssim(fa, fb, data_range=1.0)) == pytest.approx(float(per.mean()), abs=1e-12)
    assert float(sm.ssim(fa, fa, data_range=1.0)) == pytest.approx(1.0, abs=1e-12)
    assert float(sm.ssim(fb, fa, data_range=1.0)) == pytest.approx(float(per.mean()), abs=1e-12)
    with pytest.raises(DataValidationError, match="too small"):
        sm.ssim(fa.isel(x=slice(0, 8)), fb.isel(x=slice(0, 8)), data_range=1.0)


def test_psnr_per_frame_mean_and_channels():
    rng = np.random.default_rng(4)
    a = rng.random((4, 2, 8, 8))
    b = a + rng.normal(0, 0.05, a.shape)
    dims = ("time", "channel", "y", "x")
    fa, fb = xr.DataArray(a, dims=dims), xr.DataArray(b, dims=dims)
    mse_frames = ((a - b) ** 2).mean(axis=(1, 2, 3))
    expected = np.mean(10 * np.log10(1.0 / mse_frames))
    assert float(sm.psnr(fa, fb, data_range=1.0)) == pytest.approx(expected, abs=1e-10)
    out = sm.psnr(fa, fb, data_range=1.0)
    assert out.attrs["units"] == "dB"
    assert float(sm.psnr(fa, fa, data_range=1.0)) == np.inf
    ranged = fa.assign_attrs(valid_range=[0.0, 2.0])
    assert float(sm.psnr(ranged, fb)) == pytest.approx(
        np.mean(10 * np.log10(4.0 / mse_frames)), abs=1e-10
    )

"""Helpers for the metrics tests: small forecast/observation pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def make_pair(
    n_times: int = 10,
    lead_steps: int = 3,
    shape: tuple[int, int] = (16, 14),
    channels: int | None = None,
    seed: int = 0,
    nan_fraction: float = 0.0,
) -> tuple[xr.DataArray, xr.DataArray]:
    """A forecast (init_time, lead_time, [channel], y, x) and observations (time, ...)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-05-01", periods=n_times, freq="5min")
    cshape = () if channels is None else (channels,)
    obs_vals = rng.gamma(0.6, 2.0, (n_times, *cshape, *shape))
    lat = np.linspace(40, 60, shape[0])[:, None] * np.ones(shape)
    lon = np.linspace(0, 10, shape[1])[None, :] * np.ones(shape)
    space = {
        "y": np.arange(shape[0]) * 1000.0,
        "x": np.arange(shape[1]) * 1000.0,
        "lat": (("y", "x"), lat),
        "lon": (("y", "x"), lon),
    }
    cdims = () if channels is None else ("channel",)
    ccoords = {} if channels is None else {"channel": [f"c{i}" for i in range(channels)]}
    obs = xr.DataArray(
        obs_vals,
        dims=("time", *cdims, "y", "x"),
        coords={"time": t, **ccoords, **space},
        name="rain_rate",
        attrs={"units": "mm h-1"},
    )
    n_init = n_times - lead_steps
    lead = pd.to_timedelta(np.arange(1, lead_steps + 1) * 5, unit="min")
    fc_vals = np.stack(
        [obs_vals[i + 1 : i + 1 + lead_steps] for i in range(n_init)], axis=0
    ) * rng.lognormal(0, 0.4, (n_init, lead_steps, *cshape, *shape))
    fc = xr.DataArray(
        fc_vals,
        dims=("init_time", "lead_time", *cdims, "y", "x"),
        coords={"init_time": t[:n_init], "lead_time": lead, **ccoords, **space},
        name="rain_rate",
        attrs={"units": "mm h-1"},
    )
    fc = fc.assign_coords(valid_time=fc.init_time + fc.lead_time)
    if nan_fraction:
        fc = fc.where(rng.random(fc.shape) >= nan_fraction)
        obs = obs.where(rng.random(obs.shape) >= nan_fraction)
    return fc, obs

"""Deterministic synthetic datasets on real grids: the embedded default data of stgeo.

* :func:`storm_cells` — convective rain cells (elliptic Gaussian, log-normal peak intensity)
  advected by a smooth, slowly turning wind field, growing and decaying, in mm/h, on a
  1 km-class Lambert azimuthal equal-area grid (or a regular lat/lon grid).
* :func:`crowd_flows` — inflow/outflow counts on a city grid with daily and weekly cycles,
  weekday/weekend/holiday effects and Poisson noise.

Both are pure functions of their arguments (same seed, same data).

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=12, shape=(64, 64), seed=3)
>>> ds.rain_rate.attrs["units"]
'mm h-1'
>>> float(ds.rain_rate.max()) > 1.0
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import add_latlon, set_crs
from ..errors import DataValidationError

__all__ = ["crowd_flows", "storm_cells"]


def _check_shape(shape: Sequence[int], minimum: int = 4) -> tuple[int, int]:
    if len(shape) != 2 or any(int(s) < minimum for s in shape):
        raise DataValidationError(f"shape must be (ny, nx) with both >= {minimum}, got {shape!r}")
    return int(shape[0]), int(shape[1])


def storm_cells(
    n_times: int = 144,
    shape: tuple[int, int] = (96, 96),
    *,
    step: str = "5min",
    start: str = "2021-07-04T12:00",
    resolution_km: float = 2.0,
    center: tuple[float, float] = (50.5, 4.5),
    cells_per_hour: float = 3.0,
    mean_speed_ms: float = 9.0,
    projected: bool = True,
    seed: int = 0,
) -> xr.Dataset:
    """Generate moving, growing and decaying rain cells (mm/h).

    Parameters
    ----------
    n_times : int
        Number of time steps.
    shape : (int, int)
        Grid size (ny, nx).
    step : str
        Time step (pandas duration).
    start : str
        First time.
    resolution_km : float
        Grid spacing in km.
    center : (float, float)
        (lat, lon) of the grid centre (default: Belgium).
    cells_per_hour : float
        Mean rate of new cells over the domain (Poisson).
    mean_speed_ms : float
        Mean wind speed in m/s advecting the cells.
    projected : bool
        True: Lambert azimuthal equal-area ``(y, x)`` grid in metres with 2-D lat/lon and a
        ``crs`` variable. False: a regular ``(lat, lon)`` grid of the same extent.
    seed : int
        Random seed; the output is a pure function of the arguments.

    Returns
    -------
    xarray.Dataset
        ``rain_rate(time, y, x)`` float32 in ``mm h-1`` (or on ``(lat, lon)``).

    Examples
    --------
    >>> ds = storm_cells(n_times=6, shape=(32, 48), seed=1)
    >>> ds.rain_rate.shape
    (6, 32, 48)
    >>> (ds.rain_rate >= 0).all().item()
    True
    """
    ny, nx = _check_shape(shape)
    if n_times < 1:
        raise DataValidationError(f"n_times must be >= 1, got {n_times}")
    rng = np.random.default_rng(seed)
    dt = pd.Timedelta(step)
    dt_s = dt.total_seconds()
    times = pd.date_range(start, periods=n_times, freq=dt)
    res = resolution_km * 1000.0
    x = (np.arange(nx) - (nx - 1) / 2) * res
    y = (np.arange(ny) - (ny - 1) / 2) * res
    xx, yy = np.meshgrid(x, y)
    half_x, half_y = nx * res / 2, ny * res / 2

    # large-scale wind: slowly turning direction, gently varying speed, plus a weak shear
    direction0 = rng.uniform(0, 2 * np.pi)
    turn = rng.normal(0, 0.6) / 86400.0  # rad/s
    shear = rng.normal(0, 0.3) / max(half_x, half_y)  # 1/s relative change across domain

    def wind(t_s: float, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ang = direction0 + turn * t_s + 0.25 * np.sin(2 * np.pi * t_s / 21600.0)
        spd = mean_speed_ms * (1 + 0.2 * np.sin(2 * np.pi * t_s / 10800.0 + 1.0))
        u = spd * np.cos(ang) * (1 + shear * py)
        v = spd * np.sin(ang) * (1 - shear * px)
        return u, v

    # spin up so cells are present from the first frame
    spin = int(np.ceil(3600.0 / dt_s))
    total = n_times + spin
    rate = cells_per_hour * dt_s / 3600.0
    n_new = rng.poisson(rate, size=total)
    n_cells = int(n_new.sum())
    birth = np.repeat(np.arange(total), n_new).astype(float)
    life = rng.uniform(3600.0, 10800.0, n_cells) / dt_s  # in steps
    margin = 0.3
    cx = rng.uniform(-half_x * (1 + margin), half_x * (1 + margin), n_cells)
    cy = rng.uniform(-half_y * (1 + margin), half_y * (1 + margin), n_cells)
    peak = np.exp(rng.normal(np.log(5.0), 1.0, n_cells))  # mm/h, median 5
    sig_a = rng.uniform(6e3, 16e3, n_cells) * rng.uniform(1.0, 1.8, n_cells)
    sig_b = sig_a / rng.uniform(1.0, 2.2, n_cells)
    theta = rng.uniform(0, np.pi, n_cells)
    grow = rng.uniform(0.25, 0.5, n_cells)  # fraction of life spent growing

    out = np.zeros((n_times, ny, nx), dtype=np.float32)
    for k in range(total):
        u, v = wind(k * dt_s, cx, cy)
        if k >= spin:
            age = k - birth
            alive = (age >= 0) & (age <= life)
            if alive.any():
                a = age[alive] / life[alive]
                g = grow[alive]
                env = np.where(
                    a < g,
                    np.sin(0.5 * np.pi * a / g) ** 2,
                    np.cos(0.5 * np.pi * (a - g) / (1 - g)) ** 2,
                )
                amp = peak[alive] * env
                frame = np.zeros((ny, nx))
                for i, idx in enumerate(np.flatnonzero(alive)):
                    ca, sa = np.cos(theta[idx]), np.sin(theta[idx])
                    dx, dy = xx - cx[idx], yy - cy[idx]
                    r1 = (dx * ca + dy * sa) / sig_a[idx]
                    r2 = (-dx * sa + dy * ca) / sig_b[idx]
                    q = r1 * r1 + r2 * r2
                    if q.min() > 16:
                        continue
                    frame += amp[i] * np.exp(-0.5 * q)
                frame[frame < 0.1] = 0.0
                out[k - spin] = frame
        born = birth <= k  # cells start moving at birth from where they were drawn
        cx = np.where(born, cx + u * dt_s, cx)
        cy = np.where(born, cy + v * dt_s, cy)

    attrs = {
        "units": "mm h-1",
        "standard_name": "rainfall_rate",
        "long_name": "rain rate",
    }
    if projected:
        crs = (
            f"+proj=laea +lat_0={center[0]} +lon_0={center[1]} +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m +no_defs"
        )
        ds = xr.Dataset(
            {"rain_rate": (("time", "y", "x"), out, attrs)},
            coords={
                "time": times,
                "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
                "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
            },
        )
        ds = add_latlon(set_crs(ds, crs), crs)
    else:
        dlat = resolution_km / 111.2
        dlon = dlat / np.cos(np.deg2rad(center[0]))
        lat = center[0] + (np.arange(ny) - (ny - 1) / 2) * dlat
        lon = center[1] + (np.arange(nx) - (nx - 1) / 2) * dlon
        ds = xr.Dataset(
            {"rain_rate": (("time", "lat", "lon"), out, attrs)},
            coords={
                "time": times,
                "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
            },
        )
    ds.attrs.update(
        title="stgeo synthetic storm cells",
        source=f"stgeo.testing.storm_cells(seed={seed})",
        Conventions="CF-1.8",
    )
    return ds


def crowd_flows(
    n_days: int = 28,
    shape: tuple[int, int] = (32, 32),
    *,
    step: str = "30min",
    start: str = "2015-11-02",
    bbox: tuple[float, float, float, float] = (39.82, 116.25, 40.02, 116.50),
    holidays: Sequence[str] = (),
    seed: int = 0,
) -> xr.Dataset:
    """Generate inflow/outflow counts on a city grid with daily and weekly cycles.

    Residential cells send people out in the morning and receive them in the evening;
    business cells do the opposite; weekends and holidays are flatter and later. Counts
    are Poisson draws around that rate.

    Parameters
    ----------
    n_days : int
        Number of whole days.
    shape : (int, int)
        Grid size (ny, nx).
    step : str
        Time step; must divide one day.
    start : str
        First day (midnight).
    bbox : (south, west, north, east)
        Grid extent in degrees (default: central Beijing, TaxiBJ-like).
    holidays : sequence of str
        Dates (``YYYY-MM-DD``) treated like Sundays.
    seed : int
        Random seed.

    Returns
    -------
    xarray.Dataset
        ``flow(time, channel, y, x)`` float32 counts per interval, ``channel`` in
        ``["inflow", "outflow"]``, 2-D lat/lon coordinates (cell centres).

    Examples
    --------
    >>> ds = crowd_flows(n_days=7, shape=(16, 8), step="1h", seed=0)
    >>> ds.flow.shape
    (168, 2, 16, 8)
    >>> ds.channel.values.tolist()
    ['inflow', 'outflow']
    """
    ny, nx = _check_shape(shape, minimum=2)
    dt = pd.Timedelta(step)
    per_day = pd.Timedelta("1D") / dt
    if per_day != int(per_day):
        raise DataValidationError(f"step {step!r} must divide one day evenly")
    per_day = int(per_day)
    rng = np.random.default_rng(seed)
    times = pd.date_range(pd.Timestamp(start).normalize(), periods=n_days * per_day, freq=dt)

    gy, gx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    base = np.full((ny, nx), 0.3)
    kind = np.zeros((ny, nx))  # +1 business, -1 residential
    for _ in range(6):
        py, px, w = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.05, 0.15)
        blob = np.exp(-((gy - py) ** 2 + (gx - px) ** 2) / (2 * w * w))
        sign = 1.0 if rng.uniform() < 0.5 else -1.0
        base += rng.uniform(1.0, 3.0) * blob
        kind += sign * blob
    kind = np.tanh(2 * kind)
    scale = 40.0 * (dt / pd.Timedelta("1h"))

    hour = (times.hour + times.minute / 60.0).to_numpy()
    hol = {pd.Timestamp(h).normalize() for h in holidays}
    days = times.normalize()
    offday = np.asarray(times.day_of_week >= 5) | np.asarray(days.isin(list(hol)))

    def bump(h: np.ndarray, mu: float, sd: float) -> np.ndarray:
        return np.exp(-0.5 * ((h - mu) / sd) ** 2)

    morning = np.where(offday, 0.35 * bump(hour, 10.5, 2.0), bump(hour, 8.0, 1.2))
    evening = np.where(offday, 0.5 * bump(hour, 17.0, 2.5), bump(hour, 18.0, 1.4))
    daytime = np.where(offday, 0.55, 0.4) * bump(hour, 13.0, 3.5)
    night = 0.05 + 0.1 * bump(hour, 22.0, 2.0)
    week = 1.0 + 0.05 * np.sin(2 * np.pi * np.arange(times.size) / (7 * per_day))

    k = kind[None]
    rate_in = (
        morning[:, None, None] * (0.6 + 0.6 * k)
        + evening[:, None, None] * (0.6 - 0.6 * k)
        + (daytime + night)[:, None, None]
    )
    rate_out = (
        morning[:, None, None] * (0.6 - 0.6 * k)
        + evening[:, None, None] * (0.6 + 0.6 * k)
        + (daytime + night)[:, None, None]
    )
    rates = (
        np.stack([rate_in, rate_out], axis=1)
        * (base * scale)[None, None]
        * week[:, None, None, None]
    )
    counts = rng.poisson(np.clip(rates, 0, None)).astype(np.float32)

    south, west, north, east = bbox
    dlat, dlon = (north - south) / ny, (east - west) / nx
    lat1 = south + (np.arange(ny) + 0.5) * dlat
    lon1 = west + (np.arange(nx) + 0.5) * dlon
    lon2, lat2 = np.meshgrid(lon1, lat1)
    ds = xr.Dataset(
        {
            "flow": (
                ("time", "channel", "y", "x"),
                counts,
                {"units": "1", "long_name": "number of people entering/leaving a cell per step"},
            )
        },
        coords={
            "time": times,
            "channel": ["inflow", "outflow"],
            "lat": (("y", "x"), lat2, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (("y", "x"), lon2, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            "title": "stgeo synthetic crowd flows",
            "source": f"stgeo.testing.crowd_flows(seed={seed})",
            "Conventions": "CF-1.8",
            "holidays": ",".join(sorted(str(h.date()) for h in hol)),
        },
    )
    return ds

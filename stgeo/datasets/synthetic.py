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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import add_latlon, set_crs
from ..errors import DataValidationError, UnknownNameError
from .protocol import Recipe, RecipeInputs, RecipeOutput
from .registry import register_recipe

__all__ = ["SyntheticRecipe", "crowd_flows", "storm_cells"]


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
    dt_s = pd.Timedelta(step).total_seconds()
    res = resolution_km * 1000.0
    x = (np.arange(nx) - (nx - 1) / 2) * res
    y = (np.arange(ny) - (ny - 1) / 2) * res
    wind = _Wind.draw(rng, mean_speed_ms, max(nx * res / 2, ny * res / 2))
    # spin up so cells are present from the first frame
    spin = int(np.ceil(3600.0 / dt_s))
    cells = _Cells.draw(
        rng, n_times + spin, cells_per_hour * dt_s / 3600.0, dt_s, nx * res / 2, ny * res / 2
    )
    out = _render(cells, wind, np.meshgrid(x, y), n_times, spin, dt_s)
    times = pd.date_range(start, periods=n_times, freq=pd.Timedelta(step))
    ds = _storm_dataset(out, times, x, y, projected=projected, center=center, res_km=resolution_km)
    ds.attrs.update(
        title="stgeo synthetic storm cells",
        source=f"stgeo.testing.storm_cells(seed={seed})",
        Conventions="CF-1.8",
    )
    return ds


@dataclass(frozen=True)
class _Wind:
    """Large-scale wind: slowly turning direction, gently varying speed, a weak shear."""

    mean_speed: float
    direction0: float
    turn: float  # rad/s
    shear: float  # 1/s relative change across the domain

    @classmethod
    def draw(cls, rng: np.random.Generator, mean_speed: float, half_extent: float) -> _Wind:
        direction0 = rng.uniform(0, 2 * np.pi)
        turn = rng.normal(0, 0.6) / 86400.0
        shear = rng.normal(0, 0.3) / half_extent
        return cls(mean_speed, direction0, turn, shear)

    def __call__(self, t_s: float, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ang = self.direction0 + self.turn * t_s + 0.25 * np.sin(2 * np.pi * t_s / 21600.0)
        spd = self.mean_speed * (1 + 0.2 * np.sin(2 * np.pi * t_s / 10800.0 + 1.0))
        u = spd * np.cos(ang) * (1 + self.shear * py)
        v = spd * np.sin(ang) * (1 - self.shear * px)
        return u, v


@dataclass
class _Cells:
    """Rain cells: birth step, life (steps), centre, peak (mm/h), ellipse, growth fraction."""

    birth: np.ndarray
    life: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    peak: np.ndarray
    sig_a: np.ndarray
    sig_b: np.ndarray
    theta: np.ndarray
    grow: np.ndarray

    @classmethod
    def draw(
        cls, rng: np.random.Generator, total: int, rate: float, dt_s: float, hx: float, hy: float
    ) -> _Cells:
        n_new = rng.poisson(rate, size=total)
        n = int(n_new.sum())
        birth = np.repeat(np.arange(total), n_new).astype(float)
        life = rng.uniform(3600.0, 10800.0, n) / dt_s  # in steps
        margin = 0.3
        cx = rng.uniform(-hx * (1 + margin), hx * (1 + margin), n)
        cy = rng.uniform(-hy * (1 + margin), hy * (1 + margin), n)
        peak = np.exp(rng.normal(np.log(5.0), 1.0, n))  # mm/h, median 5
        sig_a = rng.uniform(6e3, 16e3, n) * rng.uniform(1.0, 1.8, n)
        sig_b = sig_a / rng.uniform(1.0, 2.2, n)
        theta = rng.uniform(0, np.pi, n)
        grow = rng.uniform(0.25, 0.5, n)  # fraction of life spent growing
        return cls(birth, life, cx, cy, peak, sig_a, sig_b, theta, grow)

    def frame(self, k: int, grid: list[np.ndarray]) -> np.ndarray | None:
        """Rain rate at step ``k`` (None when no cell is alive)."""
        xx, yy = grid
        age = k - self.birth
        alive = (age >= 0) & (age <= self.life)
        if not alive.any():
            return None
        a = age[alive] / self.life[alive]
        g = self.grow[alive]
        env = np.where(
            a < g,
            np.sin(0.5 * np.pi * a / g) ** 2,
            np.cos(0.5 * np.pi * (a - g) / (1 - g)) ** 2,
        )
        amp = self.peak[alive] * env
        frame = np.zeros(xx.shape)
        for i, idx in enumerate(np.flatnonzero(alive)):
            ca, sa = np.cos(self.theta[idx]), np.sin(self.theta[idx])
            dx, dy = xx - self.cx[idx], yy - self.cy[idx]
            r1 = (dx * ca + dy * sa) / self.sig_a[idx]
            r2 = (-dx * sa + dy * ca) / self.sig_b[idx]
            q = r1 * r1 + r2 * r2
            if q.min() > 16:
                continue
            frame += amp[i] * np.exp(-0.5 * q)
        frame[frame < 0.1] = 0.0
        return frame


def _render(
    cells: _Cells, wind: _Wind, grid: list[np.ndarray], n_times: int, spin: int, dt_s: float
) -> np.ndarray:
    out = np.zeros((n_times, *grid[0].shape), dtype=np.float32)
    for k in range(n_times + spin):
        u, v = wind(k * dt_s, cells.cx, cells.cy)
        if k >= spin:
            frame = cells.frame(k, grid)
            if frame is not None:
                out[k - spin] = frame
        born = cells.birth <= k  # cells start moving at birth from where they were drawn
        cells.cx = np.where(born, cells.cx + u * dt_s, cells.cx)
        cells.cy = np.where(born, cells.cy + v * dt_s, cells.cy)
    return out


def _storm_dataset(
    out: np.ndarray,
    times: pd.DatetimeIndex,
    x: np.ndarray,
    y: np.ndarray,
    *,
    projected: bool,
    center: tuple[float, float],
    res_km: float,
) -> xr.Dataset:
    attrs = {"units": "mm h-1", "standard_name": "rainfall_rate", "long_name": "rain rate"}
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
        return add_latlon(set_crs(ds, crs), crs)
    ny, nx = out.shape[1:]
    dlat = res_km / 111.2
    dlon = dlat / np.cos(np.deg2rad(center[0]))
    lat = center[0] + (np.arange(ny) - (ny - 1) / 2) * dlat
    lon = center[1] + (np.arange(nx) - (nx - 1) / 2) * dlon
    return xr.Dataset(
        {"rain_rate": (("time", "lat", "lon"), out, attrs)},
        coords={
            "time": times,
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )


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


def _parse_shape(value: Any) -> tuple[int, int]:
    """``"32,32"``, ``"32x32"``, ``(32, 32)`` or ``["32", "32"]`` -> ``(32, 32)``."""
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()]
    try:
        ny, nx = (int(v) for v in value)
    except (TypeError, ValueError):
        raise DataValidationError(f"shape must be two integers 'NY,NX', got {value!r}") from None
    return ny, nx


#: kind -> (size option, its default, default shape, chunk frames)
_SYNTHETIC_KINDS = {
    "storms": ("n_times", 288, (96, 96), 16),
    "crowd": ("n_days", 56, (32, 32), 256),
}


class SyntheticRecipe(Recipe):
    """Write a synthetic dataset (``kind="storms"`` or ``"crowd"``) as a canonical store.

    There is no source. Storms: :func:`stgeo.testing.storm_cells` (default 288 frames at
    5 min on 96x96, as the ``synthetic-storms`` catalog entry); crowd:
    :func:`stgeo.testing.crowd_flows` (default 56 days at 30 min on 32x32). Options:
    ``kind``, ``n_times`` (storms), ``n_days`` (crowd), ``shape`` (``NY,NX``), ``seed``.

    Examples
    --------
    >>> import os, tempfile
    >>> from stgeo.datasets import run_recipe
    >>> p = run_recipe("synthetic", None, os.path.join(tempfile.mkdtemp(), "s.zarr"),
    ...                n_times=4, shape="8,8")
    >>> os.path.isdir(p)
    True
    """

    source_required = False

    def inputs(
        self,
        source: str | None,
        *,
        kind: str = "storms",
        n_times: int | None = None,
        n_days: int | None = None,
        shape: Any = None,
        seed: int = 0,
    ) -> RecipeInputs:
        kind = str(kind).lower()
        if kind not in _SYNTHETIC_KINDS:
            raise UnknownNameError(f"synthetic kind must be 'storms' or 'crowd', got {kind!r}")
        size_key, size_default, shape_default, _ = _SYNTHETIC_KINDS[kind]
        size = n_times if kind == "storms" else n_days
        opts: dict[str, Any] = {"kind": kind, "seed": int(seed)}
        opts[size_key] = int(size) if size is not None else size_default
        opts["shape"] = _parse_shape(shape) if shape is not None else shape_default
        return RecipeInputs(files=[], options=opts)

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        o = inputs.options
        if o["kind"] == "storms":
            ds = storm_cells(n_times=o["n_times"], shape=o["shape"], seed=o["seed"])
        else:
            ds = crowd_flows(n_days=o["n_days"], shape=o["shape"], seed=o["seed"])
            # variable-length strings: zarr v3 has no stable spec for fixed-width ones
            ds = ds.assign_coords(channel=ds["channel"].values.astype(object))
        return RecipeOutput(ds, chunks={"time": _SYNTHETIC_KINDS[o["kind"]][3]})


register_recipe(
    "synthetic",
    SyntheticRecipe,
    options={"kind": str, "n_times": int, "n_days": int, "shape": tuple, "seed": int},
    description="synthetic storm cells (kind=storms) or crowd flows (kind=crowd)",
    source_required=False,
)

"""TaxiBJ crowd flows (ST-ResNet / DeepST layout) -> canonical ``flow`` store (recipe ``taxibj``).

Input layout (Zhang et al., AAAI 2017; files as published with DeepST):

* ``BJ{13,14,15,16}_M32x32_T30_InOut.h5``: ``date`` (N,) bytes ``YYYYMMDDSS`` where ``SS``
  is the half-hour slot 01..48 of the day (slot 1 starts at 00:00), and ``data``
  (N, 2, 32, 32) with channel 0 = inflow, 1 = outflow;
* ``BJ_Meteorology.h5`` (optional): ``date``, ``Temperature`` (N,), ``WindSpeed`` (N,),
  ``Weather`` (N, 17) one-hot;
* ``BJ_Holiday.txt`` (optional): one ``YYYYMMDD`` per line.

Output: ``flow(time, channel=[inflow, outflow], y, x)`` float32, units ``"1"`` (people per
30 min), with

* incomplete days dropped as in the paper (a day is kept only if all 48 slots are present);
* an ``event`` coordinate along time labelling each contiguous run of complete days (the
  four collection periods and any run split by a dropped day), so no training window
  crosses a gap;
* ``holiday(time)`` (int8, from BJ_Holiday.txt), and ``temperature(time)`` (degC),
  ``wind_speed(time)`` (m s-1), ``weather(time, weather_class)`` from the meteorology file
  when present (NaN where a time is missing there);
* 2-D ``lat``/``lon`` of cell centres on an **assumed** bounding box of central Beijing
  (the paper gives none): south 39.82, west 116.25, north 40.02, east 116.50 (about
  22 x 21 km, 0.7 km cells), row 0 = north (image order, as published), column 0 = west.

Chunking: 256 frames x 2 x 32 x 32 (2 MiB float32); windows of a few to ~20 frames touch
one or two chunks. Test split (paper): the last 4 weeks.

Examples
--------
>>> from stgeo.datasets.taxibj import parse_slots
>>> parse_slots([b"2016041001", b"2016041048"], per_day=48).strftime("%H:%M").tolist()
['00:00', '23:30']
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataValidationError
from .protocol import Recipe, RecipeInputs, RecipeOutput, require_file
from .registry import register_recipe

__all__ = [
    "BEIJING_BBOX",
    "TaxiBJRecipe",
    "complete_days",
    "grid_latlon",
    "parse_slots",
    "read_holidays",
]

#: (south, west, north, east) in degrees of the assumed TaxiBJ 32x32 grid
BEIJING_BBOX = (39.82, 116.25, 40.02, 116.50)
TAXIBJ_FILES = tuple(f"BJ{y}_M32x32_T30_InOut.h5" for y in (13, 14, 15, 16))


def parse_slots(dates: Sequence[bytes | str], per_day: int) -> pd.DatetimeIndex:
    """Decode ``YYYYMMDDSS`` slot stamps (``SS`` = 1..per_day) into interval start times.

    Raises
    ------
    DataValidationError
        A stamp is not 10 digits or its slot is outside 1..per_day.

    Examples
    --------
    >>> parse_slots(["2014040101", "2014040124"], per_day=24).hour.tolist()
    [0, 23]
    """
    s = np.asarray(
        [d.decode("ascii", "replace") if isinstance(d, bytes) else str(d) for d in dates]
    )
    s = np.char.strip(s.astype(str))
    bad = ~np.char.isdigit(s) | (np.char.str_len(s) != 10)
    if bad.any():
        raise DataValidationError(
            f"date stamp {s[bad][0]!r} is not 'YYYYMMDDSS' (10 digits, SS = slot 1..{per_day})"
        )
    slot = np.char.ljust(s, 10).astype("U10")
    day = pd.to_datetime(np.asarray([x[:8] for x in slot]), format="%Y%m%d", errors="coerce")
    num = np.asarray([int(x[8:]) for x in slot])
    if day.isna().any() or (num < 1).any() or (num > per_day).any():
        i = int(np.flatnonzero(day.isna() | (num < 1) | (num > per_day))[0])
        raise DataValidationError(
            f"date stamp {slot[i]!r}: invalid day or slot (slots run 1..{per_day})"
        )
    step = pd.Timedelta("1D") / per_day
    return pd.DatetimeIndex(day + (num - 1) * step)


def complete_days(times: pd.DatetimeIndex, per_day: int) -> np.ndarray:
    """Boolean mask of the frames whose calendar day has all ``per_day`` distinct slots.

    Examples
    --------
    >>> t = pd.date_range("2016-01-01", periods=50, freq="30min")
    >>> int(complete_days(t, 48).sum())
    48
    """
    days = times.normalize()
    frame = pd.DataFrame({"day": days, "t": times})
    n = frame.drop_duplicates("t").groupby("day")["t"].count()
    full = set(n.index[n == per_day])
    dup = pd.Index(times).duplicated(keep=False)
    return np.asarray([d in full for d in days]) & ~dup


def grid_latlon(
    bbox: tuple[float, float, float, float], ny: int, nx: int
) -> tuple[np.ndarray, np.ndarray]:
    """2-D cell-centre lat/lon of a regular grid on ``bbox``; row 0 north, column 0 west.

    Examples
    --------
    >>> lat, lon = grid_latlon((0.0, 0.0, 2.0, 1.0), 2, 1)
    >>> lat[:, 0].tolist(), lon[0].tolist()
    ([1.5, 0.5], [0.5])
    """
    south, west, north, east = bbox
    lat1 = north - (np.arange(ny) + 0.5) * (north - south) / ny
    lon1 = west + (np.arange(nx) + 0.5) * (east - west) / nx
    lon2, lat2 = np.meshgrid(lon1, lat1)
    return lat2, lon2


def read_holidays(path: str | os.PathLike) -> pd.DatetimeIndex:
    """Read a DeepST holiday file (one ``YYYYMMDD`` per line).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "h.txt")
    >>> _ = open(p, "w").write("20160101\\n20160102\\n")
    >>> read_holidays(p).strftime("%m-%d").tolist()
    ['01-01', '01-02']
    """
    lines = [x.strip() for x in Path(path).read_text(errors="replace").splitlines() if x.strip()]
    try:
        return pd.DatetimeIndex(pd.to_datetime(lines, format="%Y%m%d"))
    except ValueError:
        raise DataValidationError(
            f"{path} is not a holiday file: expected one YYYYMMDD date per line"
        ) from None


def _corrupt(path: Path, what: str, e: Exception) -> DataValidationError:
    return DataValidationError(
        f"cannot read {path} as HDF5 ({type(e).__name__}: {e}); the file is truncated, "
        f"corrupted or not a {what} file"
    )


def open_h5(path: Path, need: Sequence[str], what: str):
    """Open an HDF5 file and check it has datasets ``need``; clear errors otherwise."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _corrupt(path, what, e) from None
    try:
        have = sorted(f.keys())
        missing = [n for n in need if n not in have]
        for n in need:
            if n not in missing:
                _ = f[n].shape  # touches the object header: fails on truncated files
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        f.close()
        raise _corrupt(path, what, e) from None
    if missing:
        f.close()
        raise DataValidationError(
            f"{path} is not a {what} file: datasets {missing} are missing (it has {have}); "
            f"expected {list(need)}"
        )
    return f


def read_flow_file(path: Path, per_day: int, what: str):
    """Open a DeepST flow file; return ``(h5file, times)`` after checking the layout."""
    f = open_h5(path, ("date", "data"), what)
    try:
        d = f["data"]
        if d.ndim != 4 or d.shape[1] != 2:
            raise DataValidationError(
                f"{path}: 'data' has shape {d.shape}, expected (N, 2, H, W) with channels "
                "(inflow, outflow)"
            )
        if f["date"].shape[0] != d.shape[0]:
            raise DataValidationError(
                f"{path}: {f['date'].shape[0]} dates for {d.shape[0]} frames (truncated file?)"
            )
        try:
            times = parse_slots(f["date"][:], per_day)
        except DataValidationError as e:
            raise DataValidationError(f"{path}: {e}") from None
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            raise _corrupt(path, what, e) from None
    except BaseException:
        f.close()
        raise
    return f, times


def segment_labels(times: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Number each contiguous run of ``times`` (0, 0, ..., 1, 1, ...) as int32."""
    t = times.values
    brk = np.concatenate([[False], np.diff(t) != np.timedelta64(step.value, "ns")])
    return np.cumsum(brk).astype(np.int32)


class _FlowBlocks:
    """Reads blocks of kept rows from the flow sources (contiguous reads per file)."""

    def __init__(self, sources: list[tuple[Any, np.ndarray]], swap_channels: bool) -> None:
        self.sources = sources
        self.rows = [(k, int(r)) for k, (_, idx) in enumerate(sources) for r in idx]
        self.swap = swap_channels

    def read(self, start: int, stop: int) -> np.ndarray:
        block = self.rows[start:stop]
        _, _, ny, nx = self.sources[0][0].shape
        out = np.empty((len(block), 2, ny, nx), dtype=np.float32)
        k0 = 0
        while k0 < len(block):
            fi, r0 = block[k0]
            k1 = k0
            while k1 + 1 < len(block) and block[k1 + 1] == (fi, block[k1][1] + 1):
                k1 += 1
            try:
                vals = self.sources[fi][0][r0 : block[k1][1] + 1]
                out[k0 : k1 + 1] = vals[:, ::-1] if self.swap else vals
            except (OSError, KeyError, RuntimeError) as e:
                raise DataValidationError(
                    f"cannot read frames {r0}..{block[k1][1]} of "
                    f"{self.sources[fi][0].file.filename} ({e}); the file is truncated or "
                    "corrupted"
                ) from None
            k0 = k1 + 1
        return out


def _flow_region(
    blocks: _FlowBlocks,
    times: pd.DatetimeIndex,
    labels: np.ndarray | None,
    extra: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]],
    start: int,
    stop: int,
) -> xr.Dataset:
    part = xr.Dataset(
        {"flow": (("time", "channel", "y", "x"), blocks.read(start, stop))},
        coords={"time": times.values[start:stop]},
    )
    if labels is not None:  # time-dependent coords travel with each region
        part = part.assign_coords(event=("time", labels[start:stop]))
    for k, (dims, arr, _) in extra.items():  # time-dependent side variables too
        part[k] = (dims, np.asarray(arr)[start:stop])
    return part


def flows_output(
    sources: list[tuple[Any, np.ndarray]],
    times: pd.DatetimeIndex,
    *,
    step: pd.Timedelta,
    lat: np.ndarray,
    lon: np.ndarray,
    extra: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]],
    attrs: dict[str, Any],
    chunk_time: int = 256,
    events: bool = True,
    swap_channels: bool = False,
) -> RecipeOutput:
    """The flow store (template + regions) gathered from ``sources`` ((h5 dataset, rows))."""
    import dask.array as da

    blocks = _FlowBlocks(sources, swap_channels)
    n = len(blocks.rows)
    if n != len(times):  # pragma: no cover - internal consistency
        raise DataValidationError("internal error: rows and times differ")
    _, _, ny, nx = sources[0][0].shape
    coords: dict[str, Any] = {
        "time": ("time", times.values, {"long_name": "start of the interval", "step": str(step)}),
        # object dtype: zarr's variable-length UTF-8 strings (fixed-width ones are unstable in v3)
        "channel": ("channel", np.array(["inflow", "outflow"], dtype=object)),
        "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    labels = segment_labels(times, step)
    if events and len(set(labels)) > 1:
        coords["event"] = (
            "time",
            labels,
            {
                "long_name": "number of the contiguous run of complete days (windows never "
                "cross a change)"
            },
        )
    tpl = xr.Dataset(
        {
            "flow": (
                ("time", "channel", "y", "x"),
                da.zeros((n, 2, ny, nx), dtype=np.float32, chunks=(chunk_time, 2, ny, nx)),
                {
                    "units": "1",
                    "long_name": "number of people entering (inflow) or leaving "
                    "(outflow) a cell per interval",
                },
            ),
            **{k: (dims, arr, a) for k, (dims, arr, a) in extra.items()},
        },
        coords=coords,
        attrs=attrs,
    )
    region_labels = labels if "event" in coords else None
    regions = [
        (
            start,
            functools.partial(
                _flow_region, blocks, times, region_labels, extra, start, min(start + chunk_time, n)
            ),
        )
        for start in range(0, n, chunk_time)
    ]
    return RecipeOutput(tpl, chunks={"time": chunk_time}, regions=regions)


@dataclass(frozen=True)
class _TaxiBJPlan:
    source: str
    flow_files: list[Path]
    holidays: Path
    meteorology: Path
    drop_incomplete_days: bool


def _flow_files(src: Path, years: Sequence[Any]) -> list[Path]:
    if src.is_file():
        return [src]
    want = {f"BJ{str(y).strip()[-2:]}_M32x32_T30_InOut.h5" for y in years}
    found = [src / n for n in TAXIBJ_FILES if n in want and (src / n).exists()]
    if not found:
        raise DataValidationError(
            f"no TaxiBJ flow files in {src}: expected some of {list(TAXIBJ_FILES)}"
        )
    return found


def _side_file(given: str | None, default: Path, what: str) -> Path:
    path = Path(given) if given else default
    if given and not path.exists():
        raise DataValidationError(f"{what} file not found: {path}")
    return path


def _read_flows(plan: _TaxiBJPlan, handles: list[Any], per_day: int):
    """Open the flow files (into ``handles``); kept (dataset, rows) per file and their times."""
    sources, all_t = [], []
    for p in plan.flow_files:
        f, t = read_flow_file(p, per_day, "TaxiBJ flow (BJxx_M32x32_T30_InOut.h5)")
        handles.append(f)
        keep = complete_days(t, per_day) if plan.drop_incomplete_days else ~t.duplicated()
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(t.values[idx], kind="stable")]
        sources.append((f["data"], idx))
        all_t.append(t[idx])
    times = pd.DatetimeIndex(np.concatenate([t.values for t in all_t]))
    if len(times) == 0:
        raise DataValidationError(f"{plan.source}: no complete day of 48 slots in the input")
    order = np.argsort(times.values, kind="stable")
    if (order != np.arange(len(order))).any() or times.duplicated().any():
        raise DataValidationError(
            "the flow files overlap in time or are out of order; give each period once"
        )
    shapes = {s[0].shape[1:] for s in sources}
    if len(shapes) != 1:
        raise DataValidationError(f"the flow files have different grids: {sorted(shapes)}")
    return sources, times


def _side_variables(plan: _TaxiBJPlan, times: pd.DatetimeIndex, per_day: int) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if plan.holidays.exists():
        hol = read_holidays(plan.holidays)
        flag = times.normalize().isin(hol).astype(np.int8)
        extra["holiday"] = (
            ("time",),
            flag,
            {"units": "1", "long_name": "holiday flag (BJ_Holiday.txt)", "flag_values": "0 1"},
        )
    if plan.meteorology.exists():
        extra.update(_meteorology(plan.meteorology, times, per_day))
    return extra


class TaxiBJRecipe(Recipe):
    """Convert the TaxiBJ files in ``source`` into a canonical ``flow`` store.

    Source: the folder with ``BJ{13..16}_M32x32_T30_InOut.h5`` (and optionally
    ``BJ_Meteorology.h5`` and ``BJ_Holiday.txt``), or a single flow file. Options:
    ``years`` (which of ``13, 14, 15, 16`` to include, those present; at least one is
    needed), ``holidays``/``meteorology`` (paths of ``BJ_Holiday.txt`` /
    ``BJ_Meteorology.h5`` if not in the source folder), ``drop_incomplete_days`` (keep only
    days with all 48 slots, the paper's protocol; default true).

    Examples
    --------
    >>> from stgeo.datasets import run_recipe  # doctest: +SKIP
    >>> run_recipe("taxibj", "TaxiBJ/", "taxibj.zarr", years="15,16")  # doctest: +SKIP
    'taxibj.zarr'
    """

    def inputs(
        self,
        source: str | None,
        *,
        years: Sequence[Any] = ("13", "14", "15", "16"),
        holidays: str | None = None,
        meteorology: str | None = None,
        drop_incomplete_days: bool = True,
    ) -> RecipeInputs:
        src = require_file(str(source), "TaxiBJ source")
        folder = src if src.is_dir() else src.parent
        flow_files = _flow_files(src, years)
        hol_path = _side_file(holidays, folder / "BJ_Holiday.txt", "holiday")
        met_path = _side_file(meteorology, folder / "BJ_Meteorology.h5", "meteorology")
        files = flow_files + [p for p in (hol_path, met_path) if p.exists()]
        opts = {
            "years": sorted(str(y) for y in years),
            "drop_incomplete_days": drop_incomplete_days,
        }
        plan = _TaxiBJPlan(str(source), flow_files, hol_path, met_path, drop_incomplete_days)
        return RecipeInputs(files=files, options=opts, root=folder, plan=plan)

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        plan: _TaxiBJPlan = inputs.plan
        per_day, step = 48, pd.Timedelta("30min")
        handles: list[Any] = []

        def close() -> None:
            for f in handles:
                f.close()

        try:
            sources, times = _read_flows(plan, handles, per_day)
            ny, nx = sources[0][0].shape[2:]
            lat, lon = grid_latlon(BEIJING_BBOX, ny, nx)
            attrs = {
                "title": "TaxiBJ crowd flows (Beijing taxi GPS, 30 min, 32x32)",
                "source": ", ".join(p.name for p in plan.flow_files),
                "Conventions": "CF-1.8",
                "grid_bbox_south_west_north_east": list(BEIJING_BBOX),
                "grid_note": "bounding box assumed (not published); row 0 = north",
                "dropped_incomplete_days": str(plan.drop_incomplete_days),
                "citation": "Zhang, Zheng, Qi (2017) Deep spatio-temporal residual networks "
                "for citywide crowd flows prediction, AAAI",
            }
            extra = _side_variables(plan, times, per_day)
            out = flows_output(
                sources, times, step=step, lat=lat, lon=lon, extra=extra, attrs=attrs
            )
        except BaseException:
            close()
            raise
        out.close = close
        return out


def _meteorology(path: Path, times: pd.DatetimeIndex, per_day: int) -> dict[str, Any]:
    need = ("date", "Temperature", "WindSpeed", "Weather")
    f = open_h5(path, need, "TaxiBJ meteorology (BJ_Meteorology.h5)")
    try:
        mt = parse_slots(f["date"][:], per_day)
        n = len(mt)
        if any(f[k].shape[0] != n for k in need[1:]):
            raise DataValidationError(f"{path}: datasets have different lengths (truncated?)")
        pos = pd.Index(mt).get_indexer(times)
        ok = pos >= 0

        def take(a: np.ndarray) -> np.ndarray:
            out = np.full((len(times), *a.shape[1:]), np.nan, dtype=np.float32)
            out[ok] = a[pos[ok]]
            return out

        w = np.asarray(f["Weather"][:])
        return {
            "temperature": (
                ("time",),
                take(np.asarray(f["Temperature"][:])),
                {"units": "degC", "long_name": "air temperature"},
            ),
            "wind_speed": (
                ("time",),
                take(np.asarray(f["WindSpeed"][:])),
                {"units": "m s-1", "long_name": "wind speed"},
            ),
            "weather": (
                ("time", "weather_class"),
                take(w),
                {"units": "1", "long_name": f"weather type, one-hot ({w.shape[1]} classes)"},
            ),
        }
    finally:
        f.close()


register_recipe(
    "taxibj",
    TaxiBJRecipe,
    options={"years": tuple, "holidays": str, "meteorology": str, "drop_incomplete_days": bool},
    description="TaxiBJ BJ{13..16}_M32x32_T30_InOut.h5 (+ meteorology, holidays) -> flow",
)

"""TaxiBJ+ fine-grained crowd flows (UrbanFM layout) -> canonical ``flow`` stores (``taxibj-plus``).

Input layout, as published with UrbanFM (Liang et al., KDD 2019) for the four TaxiBJ
periods::

    TaxiBJ+/
      P1/                       # 2013-07-01 .. 2013-10-31; P2, P3, P4 likewise
        train/  X.npy  Y.npy  ext.npy
        valid/  X.npy  Y.npy  ext.npy
        test/   X.npy  Y.npy  ext.npy

* ``X.npy``: coarse flows, (N, 32, 32) (a channel axis of 1, or of 2 for inflow/outflow,
  is accepted too);
* ``Y.npy``: the same N frames on the fine 128 x 128 grid (each coarse cell covers 4 x 4
  fine cells);
* ``ext.npy``: (N, K) external factors per frame (meteorology, time and holiday features
  in UrbanFM's column order), kept as they are.

**Two stores, one per grid** (option ``grid="fine"``, the default, or ``"coarse"``): each
is a canonical forecastable dataset (``flow(time, y, x)`` on its own ``y``/``x`` with 2-D
``lat``/``lon``), so either trains and forecasts like any store. Both hold the same time
axis, ``event`` coordinate and external factors, so a super-resolution model reads the
coarse and the fine store side by side (``xr.merge`` after renaming ``y``/``x``).

Time axis: the ``.npy`` files carry **no timestamps**. The recipe numbers the frames as
consecutive 30-minute slots from the period's first day (``start=`` overrides it), in
the order train, valid, test — the published, chronological order. The ``event``
coordinate (0 = train, 1 = valid, 2 = test; CF ``flag_meanings``) keeps windows from
crossing a split and reproduces the published split. If a copy was shuffled or filtered,
the times are only an index (recorded in the ``time_note`` attribute); more frames than
the period has slots is refused.

Lat/lon: cell centres on the same **assumed** bounding box of central Beijing as the
``taxibj`` recipe (:data:`stgeo.datasets.taxibj.BEIJING_BBOX`: 39.82–40.02 N,
116.25–116.50 E; UrbanFM publishes none), row 0 = north (image order), column 0 = west:
about 0.7 km coarse and 0.17 km fine cells.

Chunking: as many frames as fit ~16 MiB (256 frames of 128 x 128 float32), the full grid.

The TaxiBJ+ tensors are not available offline: the recipe is tested on files generated in
exactly this layout.

Examples
--------
>>> from stgeo.datasets.taxibj_plus import PERIODS
>>> PERIODS["P1"]
('2013-07-01', '2013-10-31')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataValidationError
from .options import date
from .protocol import Recipe, RecipeInputs, RecipeOutput, require_file, time_chunk
from .registry import register_recipe
from .taxibj import BEIJING_BBOX, grid_latlon

__all__ = ["PERIODS", "SPLITS", "TaxiBJPlusRecipe"]

#: first and last day of each TaxiBJ+ period (UrbanFM's P1..P4)
PERIODS: dict[str, tuple[str, str]] = {
    "P1": ("2013-07-01", "2013-10-31"),
    "P2": ("2014-02-01", "2014-06-30"),
    "P3": ("2015-03-01", "2015-06-30"),
    "P4": ("2015-11-01", "2016-03-31"),
}
#: the split folders, in time order
SPLITS = ("train", "valid", "test")
STEP = pd.Timedelta("30min")
_FILES = {"coarse": "X.npy", "fine": "Y.npy"}


def _load(path: Path) -> np.ndarray:
    """Memory-map an ``.npy`` file (no pickles); clear errors for foreign/truncated files."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataValidationError(
            f"cannot read {path} as a numpy .npy array ({type(e).__name__}: {e}); the file "
            "is truncated, corrupted or not a TaxiBJ+ file"
        ) from None


def _flow_layout(a: np.ndarray, path: Path) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) with C in (1, 2); a single channel is squeezed."""
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 3 or (a.ndim == 4 and a.shape[1] == 2):
        return a
    raise DataValidationError(
        f"{path}: flows of shape {a.shape}; expected (N, H, W), or (N, C, H, W) with C = 1 "
        "(total flow) or 2 (inflow, outflow)"
    )


@dataclass(frozen=True)
class _Plan:
    folder: Path
    period: str
    grid: str
    start: pd.Timestamp
    flows: list[np.ndarray]  # per split, memory-mapped
    ext: list[np.ndarray]


def _period_folder(src: Path, period: str | None) -> tuple[Path, str]:
    """The ``Pn`` folder and its name: ``src`` itself, or ``src/period``."""
    if src.name.upper() in PERIODS and (period is None or period.upper() == src.name.upper()):
        return src, src.name.upper()
    key = (period or "P1").upper()
    if key not in PERIODS:
        raise DataValidationError(f"unknown TaxiBJ+ period {period!r}; use one of {list(PERIODS)}")
    folder = src / key
    if not folder.is_dir():
        found = sorted(p.name for p in src.iterdir() if p.is_dir()) if src.is_dir() else []
        raise DataValidationError(
            f"no TaxiBJ+ period folder {folder}: the source must be the TaxiBJ+ folder holding "
            f"P1..P4 (or one of them); found {found or 'nothing'}"
        )
    return folder, key


def _split_files(folder: Path, grid: str) -> list[tuple[Path, Path]]:
    out, missing = [], []
    for split in SPLITS:
        flow, ext = folder / split / _FILES[grid], folder / split / "ext.npy"
        missing += [str(p.relative_to(folder)) for p in (flow, ext) if not p.is_file()]
        out.append((flow, ext))
    if missing:
        raise DataValidationError(
            f"{folder} is not a TaxiBJ+ period folder: {missing} missing; expected "
            "train/, valid/ and test/ each holding X.npy (coarse), Y.npy (fine) and ext.npy"
        )
    return out


def _read_split(flow_path: Path, ext_path: Path) -> tuple[np.ndarray, np.ndarray]:
    flow = _flow_layout(_load(flow_path), flow_path)
    ext = _load(ext_path)
    if ext.ndim == 1:
        ext = ext[:, None]
    if ext.ndim != 2 or ext.shape[0] != flow.shape[0]:
        raise DataValidationError(
            f"{ext_path}: external factors of shape {ext.shape} for {flow.shape[0]} frames in "
            f"{flow_path.name}; expected ({flow.shape[0]}, K)"
        )
    return flow, ext


def _check_consistent(plan_flows: list[np.ndarray], ext: list[np.ndarray], folder: Path) -> None:
    grids = {f.shape[1:] for f in plan_flows}
    factors = {e.shape[1] for e in ext}
    if len(grids) != 1 or len(factors) != 1:
        raise DataValidationError(
            f"{folder}: the splits differ in grid {sorted(grids)} or in the number of external "
            f"factors {sorted(factors)}"
        )


def _split_labels(sizes: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)


def _time_axis(plan: _Plan, n: int) -> pd.DatetimeIndex:
    times = pd.date_range(plan.start, periods=n, freq=STEP)
    first, last = PERIODS[plan.period]
    slots = (pd.Timestamp(last) + pd.Timedelta("1D") - pd.Timestamp(first)) // STEP
    if plan.start == pd.Timestamp(first) and n > slots:
        raise DataValidationError(
            f"{plan.folder}: {n} frames but period {plan.period} ({first} .. {last}) has only "
            f"{slots} half-hour slots; is this the {plan.period} folder?"
        )
    return times


def _region(plan: _Plan, offsets: np.ndarray, times, labels, start: int, stop: int) -> xr.Dataset:
    """Frames ``start:stop`` of the concatenated splits (read from the memory maps)."""
    parts, ext = [], []
    for k, (flow, e) in enumerate(zip(plan.flows, plan.ext, strict=True)):
        lo, hi = max(start, offsets[k]), min(stop, offsets[k + 1])
        if lo < hi:
            parts.append(np.asarray(flow[lo - offsets[k] : hi - offsets[k]], dtype=np.float32))
            ext.append(np.asarray(e[lo - offsets[k] : hi - offsets[k]], dtype=np.float32))
    data = np.concatenate(parts)
    dims = ("time", "channel", "y", "x") if data.ndim == 4 else ("time", "y", "x")
    return xr.Dataset(
        {"flow": (dims, data), "external": (("time", "external_factor"), np.concatenate(ext))},
        coords={"time": times[start:stop], "event": ("time", labels[start:stop])},
    )


def _template(plan: _Plan, times: pd.DatetimeIndex, labels: np.ndarray, chunk: int) -> xr.Dataset:
    import dask.array as da

    shape = plan.flows[0].shape[1:]
    ny, nx = shape[-2:]
    dims = ("time", "channel", "y", "x") if len(shape) == 3 else ("time", "y", "x")
    n, k = len(times), plan.ext[0].shape[1]
    lat, lon = grid_latlon(BEIJING_BBOX, ny, nx)
    coords: dict[str, Any] = {
        "time": ("time", times.values, {"long_name": "start of the interval", "step": "30min"}),
        "event": (
            "time",
            labels,
            {
                "long_name": "UrbanFM split of the frame (windows never cross a change)",
                "flag_values": [0, 1, 2],
                "flag_meanings": "train valid test",
            },
        ),
        "external_factor": ("external_factor", np.arange(k, dtype=np.int32)),
        "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    if len(dims) == 4:
        coords["channel"] = ("channel", np.array(["inflow", "outflow"], dtype=object))
    flow_attrs = {
        "units": "1",
        "long_name": f"crowd flow per {plan.grid} cell per 30 min",
    }
    ext_attrs = {
        "units": "1",
        "long_name": "external factors as published with UrbanFM (ext.npy columns, in order)",
    }
    return xr.Dataset(
        {
            "flow": (
                dims,
                da.zeros((n, *shape), dtype=np.float32, chunks=(chunk, *shape)),
                flow_attrs,
            ),
            "external": (
                ("time", "external_factor"),
                da.zeros((n, k), dtype=np.float32, chunks=(chunk, k)),
                ext_attrs,
            ),
        },
        coords=coords,
    )


def _attrs(plan: _Plan, times: pd.DatetimeIndex, sizes: list[int]) -> dict[str, Any]:
    first, last = PERIODS[plan.period]
    counts = ", ".join(f"{s}: {n}" for s, n in zip(SPLITS, sizes, strict=True))
    return {
        "title": f"TaxiBJ+ {plan.period} crowd flows, {plan.grid} grid (UrbanFM layout)",
        "source": f"{plan.folder} ({counts} frames)",
        "Conventions": "CF-1.8",
        "period": f"{plan.period}: {first} .. {last}",
        "grid": plan.grid,
        "grid_bbox_south_west_north_east": list(BEIJING_BBOX),
        "grid_note": "bounding box assumed (not published); row 0 = north",
        "time_note": (
            "the UrbanFM files carry no timestamps: frames numbered as consecutive 30-min "
            f"slots from {times[0]} in the order train, valid, test (the event coordinate); "
            "if the files were shuffled or filtered the times are only an index"
        ),
        "citation": "Liang, Ouyang, Jiang, Li, Zheng, Rosenblum (2019) UrbanFM: Inferring "
        "Fine-Grained Urban Flows, KDD; data: Zhang, Zheng, Qi (2017) AAAI (TaxiBJ)",
    }


class TaxiBJPlusRecipe(Recipe):
    """Convert one TaxiBJ+ period (UrbanFM layout) into a ``flow`` store on one grid.

    Source: the ``TaxiBJ+`` folder holding ``P1``..``P4`` (or one ``Pn`` folder). Options:
    ``period`` (``P1``..``P4``; default: the source folder's name, else ``P1``), ``grid``
    (``fine``: ``Y.npy``, 128 x 128, the default; ``coarse``: ``X.npy``, 32 x 32), ``start``
    (first frame's time; default: the period's first day at 00:00).

    Examples
    --------
    >>> from stgeo.datasets import run_recipe  # doctest: +SKIP
    >>> run_recipe("taxibj-plus", "TaxiBJ+/", "p1-fine.zarr", period="P1")  # doctest: +SKIP
    'p1-fine.zarr'
    """

    def inputs(
        self,
        source: str | None,
        *,
        period: str | None = None,
        grid: str = "fine",
        start: Any = None,
    ) -> RecipeInputs:
        src = require_file(str(source), "TaxiBJ+ source folder")
        grid = str(grid).lower()
        if grid not in _FILES:
            raise DataValidationError(
                f"grid must be 'fine' (Y.npy) or 'coarse' (X.npy), got {grid!r}"
            )
        folder, key = _period_folder(src, period)
        first = pd.Timestamp(PERIODS[key][0]) if start is None else pd.Timestamp(start)
        files = _split_files(folder, grid)
        opts = {"period": key, "grid": grid, "start": str(first)}
        return RecipeInputs(
            files=[p for pair in files for p in pair],
            options=opts,
            root=folder,
            plan=(folder, key, grid, first, files),
        )

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        folder, key, grid, first, files = inputs.plan
        read = [_read_split(f, e) for f, e in files]
        flows, ext = [r[0] for r in read], [r[1] for r in read]
        _check_consistent(flows, ext, folder)
        plan = _Plan(folder, key, grid, first, flows, ext)
        sizes = [f.shape[0] for f in flows]
        n = sum(sizes)
        if n == 0:
            raise DataValidationError(f"{folder}: the splits hold no frames")
        times = _time_axis(plan, n)
        labels = _split_labels(sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        chunk = time_chunk(4 * int(np.prod(flows[0].shape[1:])))
        tpl = _template(plan, times, labels, chunk).assign_attrs(_attrs(plan, times, sizes))
        regions = [
            (
                s,
                functools.partial(
                    _region, plan, offsets, times.values, labels, s, min(s + chunk, n)
                ),
            )
            for s in range(0, n, chunk)
        ]
        return RecipeOutput(tpl, chunks={"time": chunk}, regions=regions)


register_recipe(
    "taxibj-plus",
    TaxiBJPlusRecipe,
    options={"period": str, "grid": str, "start": date},
    aliases=("taxibjplus",),
    description="TaxiBJ+ (UrbanFM layout P1..P4/{train,valid,test}/{X,Y,ext}.npy) -> flow on "
    "the fine or coarse grid",
)

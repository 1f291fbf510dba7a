"""SEVIR storm events -> canonical store with an ``event`` axis (recipe ``sevir``).

Source layout (Veillette et al., 2020, NeurIPS; public AWS S3 bucket ``sevir``, anonymous
access, ``aws s3 sync --no-sign-request s3://sevir/ SEVIR/``; about 1 TB in all)::

    SEVIR/CATALOG.csv
    SEVIR/data/vil/2019/SEVIR_VIL_STORMEVENTS_2019_0701_1231.h5    # id (N,), vil (N, 384, 384, 49)
    SEVIR/data/ir069/..., ir107/..., vis/..., lght/...

``CATALOG.csv`` has one row per event and image type: ``id, file_name, file_index,
img_type, time_utc, minute_offsets (colon-separated, e.g. -119:-114:...:121), episode_id,
event_id, event_type, llcrnrlat, llcrnrlon, urcrnrlat, urcrnrlon, proj, size_x, size_y,
height_m, width_m, data_min, data_max, pct_missing``. ``file_name`` is relative to the
folder holding the data (``source/file_name`` or ``source/data/file_name``);
``file_index`` is the row in the file. Events are 384 km x 384 km patches on the LAEA
projection ``+proj=laea +lat_0=38 +lon_0=-98 +units=m +a=6370997.0 +ellps=sphere``.

Canonical layout written here (one img_type per store, e.g. ``vil``):

* ``vil(time, y, x)`` **uint8 0–255 as published** (``units`` "1",
  ``scale_note`` describing the VIL digital-level transform); frames of all events are
  concatenated along ``time``; the ``event`` coordinate along ``time`` holds the event's
  index along ``event_id`` (``ds.event_id[ds.event]`` is the SEVIR ``id``) — window
  samplers never cross an event change (times may repeat across events);
* ``minute_offset(time)``: the published offset of each frame from ``time_utc``; frame
  times are ``time_utc + offset`` (snapped to the regular step if offsets jitter);
* per event (dim ``event_id``): ``time_utc``, ``event_type`` (CF flags: an integer code
  with ``flag_meanings``), ``llcrnrlat/lon``,
  ``urcrnrlat/lon``, ``x_origin``/``y_origin`` (LAEA metres of the lower-left corner), and
  2-D ``event_lat(event_id, y, x)`` / ``event_lon(...)`` (float32, pixel centres, computed
  with pyproj from the projection and the catalog corners);
* ``y``/``x``: pixel-centre offsets in metres from the patch's lower-left corner, y
  ascending (row 0 is the southern edge; files are stored north-up and flipped here).

Because each event has its own geolocation there are no dataset-wide 2-D ``lat``/``lon``,
and ``stgeo.validate(ds)`` (strict) reads the per-event ``event_lat``/``event_lon``
(``standard_name`` latitude/longitude on ``(event_id, y, x)``, indexed by ``event``); use
``ds.event_lat.sel(event_id=...)`` for maps.

Chunking: one event per chunk (49 x 384 x 384 uint8 = 7 MiB), so any window of an event is
one chunk read. Streaming: events are read one at a time with h5py (one
``vil[file_index]`` slab), never a whole file.

Standard split (Earthformer / SEVIR benchmark), by event ``time_utc``:
train < 2019-01-01 <= val < 2019-06-01 <= test; ``split="train"`` etc. builds a store of
one split (recommended for training because frame times of different events overlap).

Examples
--------
>>> from stgeo.datasets.sevir import split_of
>>> split_of("2018-12-31T23:00"), split_of("2019-03-01"), split_of("2019-06-01")
('train', 'val', 'test')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataValidationError, UnknownNameError
from .options import date
from .protocol import Recipe, RecipeInputs, RecipeOutput, require_file
from .registry import register_recipe
from .taxibj import open_h5

__all__ = ["CATALOG_COLUMNS", "SEVIR_PROJ", "SEVIR_S3", "SevirRecipe", "split_of"]

SEVIR_S3 = "s3://sevir/"  # anonymous; https://sevir.s3.amazonaws.com/CATALOG.csv
SEVIR_PROJ = "+proj=laea +lat_0=38 +lon_0=-98 +units=m +a=6370997.0 +ellps=sphere"
CATALOG_COLUMNS = (
    "id",
    "file_name",
    "file_index",
    "img_type",
    "time_utc",
    "minute_offsets",
    "episode_id",
    "event_id",
    "event_type",
    "llcrnrlat",
    "llcrnrlon",
    "urcrnrlat",
    "urcrnrlon",
    "proj",
    "size_x",
    "size_y",
    "height_m",
    "width_m",
    "data_min",
    "data_max",
    "pct_missing",
)
SPLIT_DATES = (pd.Timestamp("2019-01-01"), pd.Timestamp("2019-06-01"))
_NEEDED = (
    "id",
    "file_name",
    "file_index",
    "img_type",
    "time_utc",
    "minute_offsets",
    "llcrnrlat",
    "llcrnrlon",
    "urcrnrlat",
    "urcrnrlon",
    "size_x",
    "size_y",
)
_UNITS = {
    "vil": (
        "1",
        "vertically integrated liquid, digital level 0-255 (VIP-like transform of "
        "kg m-2; see the SEVIR paper)",
    ),
    "ir069": ("1", "GOES-16 channel 9 (6.9 um) brightness temperature, scaled integer"),
    "ir107": ("1", "GOES-16 channel 13 (10.7 um) brightness temperature, scaled integer"),
    "vis": ("1", "GOES-16 channel 2 (0.64 um) reflectance, scaled integer"),
}


def split_of(time_utc: Any) -> str:
    """The standard split (``train``/``val``/``test``) of an event by its ``time_utc``."""
    t = pd.Timestamp(time_utc)
    if t < SPLIT_DATES[0]:
        return "train"
    return "val" if t < SPLIT_DATES[1] else "test"


def read_catalog(path: Path) -> pd.DataFrame:
    """Read and check a SEVIR ``CATALOG.csv``."""
    try:
        cat = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataValidationError(f"cannot read {path} as a CSV file ({e})") from None
    missing = [c for c in _NEEDED if c not in cat.columns]
    if missing:
        raise DataValidationError(
            f"{path} is not a SEVIR CATALOG.csv: columns {missing} are missing; expected "
            f"{', '.join(CATALOG_COLUMNS)}"
        )
    cat["time_utc"] = pd.to_datetime(cat["time_utc"], errors="coerce")
    if cat["time_utc"].isna().any():
        bad = cat.loc[cat["time_utc"].isna(), "id"].iloc[0]
        raise DataValidationError(f"{path}: unreadable time_utc for event {bad!r}")
    return cat


def _offsets(s: Any, eid: str) -> np.ndarray:
    try:
        off = np.asarray([float(v) for v in str(s).split(":") if v.strip()])
    except ValueError:
        raise DataValidationError(
            f"event {eid}: minute_offsets {str(s)[:40]!r} is not colon-separated minutes"
        ) from None
    if off.size < 2 or np.any(np.diff(off) <= 0):
        raise DataValidationError(f"event {eid}: minute_offsets must increase, got {s!r}")
    return off


def _find_data_root(source: Path, names: list[str]) -> Path:
    for root in (source, source / "data"):
        if (root / names[0]).exists():
            return root
    raise DataValidationError(
        f"data file {names[0]} listed in CATALOG.csv not found under {source} or "
        f"{source / 'data'}; download it from {SEVIR_S3} (anonymous) or filter the catalog"
    )


def _lazy_geo(rows: pd.DataFrame, ny: int, nx: int, proj: str, which: int):
    """Dask array (n_events, ny, nx) of per-event lat (which=4) or lon (5), one event a chunk."""
    import dask.array as da

    def block(block_info=None):
        lo, hi = block_info[None]["array-location"][0]
        return np.stack([_event_geo(rows.iloc[k], ny, nx, proj)[which] for k in range(lo, hi)])

    return da.map_blocks(
        block,
        chunks=((1,) * len(rows), (ny,), (nx,)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
    )


def _event_geo(row: pd.Series, ny: int, nx: int, proj: str, grid: bool = True):
    from pyproj import CRS, Transformer

    crs = CRS.from_user_input(proj)
    fwd = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)
    inv = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    x0, y0 = fwd.transform(float(row["llcrnrlon"]), float(row["llcrnrlat"]))
    x1, y1 = fwd.transform(float(row["urcrnrlon"]), float(row["urcrnrlat"]))
    if not (x1 > x0 and y1 > y0):
        raise DataValidationError(f"event {row['id']}: catalog corners are not ll < ur")
    dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
    if not grid:
        return x0, y0, dx, dy, None, None
    xx, yy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * dx, y0 + (np.arange(ny) + 0.5) * dy)
    lon, lat = inv.transform(xx, yy)
    return x0, y0, dx, dy, lat.astype(np.float32), lon.astype(np.float32)


def _select_events(
    cat: pd.DataFrame, cat_path: Path, kind: str, split: str, start, end, max_events
) -> pd.DataFrame:
    """The catalog rows of ``kind`` kept by the split/start/end/max_events filters, by time."""
    rows = cat[cat["img_type"].astype(str).str.lower() == kind]
    if rows.empty:
        raise DataValidationError(
            f"no {kind!r} events in {cat_path}; img_types present: "
            f"{sorted(cat['img_type'].astype(str).unique())}"
        )
    if split != "all":
        rows = rows[rows["time_utc"].map(split_of) == split]
    if start is not None:
        rows = rows[rows["time_utc"] >= pd.Timestamp(start)]
    if end is not None:
        rows = rows[rows["time_utc"] < pd.Timestamp(end)]
    rows = rows.sort_values(["time_utc", "id"], kind="stable").drop_duplicates("id")
    if max_events is not None:
        rows = rows.head(int(max_events))
    if rows.empty:
        raise DataValidationError("no event left after the split/start/end filters")
    return rows.reset_index(drop=True)


@dataclass(frozen=True)
class _SevirPlan:
    kind: str
    split: str
    rows: pd.DataFrame
    root: Path  # folder the catalog's file_name paths are relative to
    offsets: list[np.ndarray]
    shape: tuple[int, int, int]  # (frames per event, ny, nx)


def _event_shape(rows: pd.DataFrame, kind: str) -> tuple[tuple[int, int, int], list[np.ndarray]]:
    sizes = set(zip(rows["size_y"].astype(int), rows["size_x"].astype(int), strict=True))
    if len(sizes) != 1:
        raise DataValidationError(f"{kind} events have different sizes {sorted(sizes)}")
    ny, nx = sizes.pop()
    offs = [_offsets(s, str(i)) for s, i in zip(rows["minute_offsets"], rows["id"], strict=True)]
    nt = {o.size for o in offs}
    if len(nt) != 1:
        raise DataValidationError(f"events have different frame counts {sorted(nt)}")
    return (nt.pop(), ny, nx), offs


def _frame_times(plan: _SevirPlan) -> tuple[np.ndarray, float]:
    """Frame times of all events (offsets snapped to the regular step) and the step (min)."""
    nt = plan.shape[0]
    step_min = float(np.median(np.concatenate([np.diff(o) for o in plan.offsets])))
    times = []
    for o, t in zip(plan.offsets, plan.rows["time_utc"], strict=True):
        regular = o[0] + step_min * np.arange(nt)
        if np.abs(o - regular).max() > step_min / 2:
            raise DataValidationError(
                f"minute_offsets of event at {t} are not close to a {step_min:g} min grid"
            )
        times.append(pd.Timestamp(t) + pd.to_timedelta(regular, unit="min"))
    return np.concatenate([np.asarray(t, dtype="datetime64[ns]") for t in times]), step_min


def _event_coords(rows: pd.DataFrame, ny: int, nx: int, proj: str) -> dict[str, Any]:
    """Coordinates along ``event_id``: ids, times, types (CF flags), corners, geolocation."""
    n_ev = len(rows)
    ids = np.asarray([str(i) for i in rows["id"]], dtype=str)
    origins = np.asarray([_event_geo(r, ny, nx, proj, grid=False)[:2] for _, r in rows.iterrows()])
    types = [str(v) for v in rows.get("event_type", pd.Series([""] * n_ev)).fillna("")]
    type_names = sorted(set(types))
    type_codes = np.asarray([type_names.index(t) for t in types], dtype=np.int16)
    corners = (
        ("llcrnrlat", "degrees_north"),
        ("llcrnrlon", "degrees_east"),
        ("urcrnrlat", "degrees_north"),
        ("urcrnrlon", "degrees_east"),
    )
    return {
        "event_id": ("event_id", ids.astype(object)),  # zarr variable-length strings
        "time_utc": ("event_id", rows["time_utc"].to_numpy(dtype="datetime64[ns]")),
        # CF flags (integers + flag_meanings) rather than a string array
        "event_type": (
            "event_id",
            type_codes,
            {
                "flag_values": list(range(len(type_names))),
                "flag_meanings": " ".join(t.replace(" ", "_") or "none" for t in type_names),
                "long_name": "NOAA storm event type",
            },
        ),
        **{c: ("event_id", rows[c].astype(float).to_numpy(), {"units": u}) for c, u in corners},
        "x_origin": ("event_id", origins[:, 0], {"units": "m"}),
        "y_origin": ("event_id", origins[:, 1], {"units": "m"}),
        # computed lazily, one event per chunk, when the builder writes static variables
        "event_lat": (
            ("event_id", "y", "x"),
            _lazy_geo(rows, ny, nx, proj, 4),
            {"units": "degrees_north", "standard_name": "latitude"},
        ),
        "event_lon": (
            ("event_id", "y", "x"),
            _lazy_geo(rows, ny, nx, proj, 5),
            {"units": "degrees_east", "standard_name": "longitude"},
        ),
    }


def _template(plan: _SevirPlan, time: np.ndarray, step_min: float) -> xr.Dataset:
    import dask.array as da

    kind, rows = plan.kind, plan.rows
    nt, ny, nx = plan.shape
    n_ev = len(rows)
    proj = (
        str(rows["proj"].iloc[0])
        if "proj" in rows and pd.notna(rows["proj"].iloc[0])
        else (SEVIR_PROJ)
    )
    units, long_name = _UNITS.get(kind, ("1", f"SEVIR {kind}"))
    height_m = float(rows["height_m"].iloc[0]) if "height_m" in rows else 384000.0
    width_m = float(rows["width_m"].iloc[0]) if "width_m" in rows else 384000.0
    data_attrs = {
        "units": units,
        "long_name": long_name,
        "valid_range": [0, 255],
        "scale_note": "stored as published (uint8 digital levels)",
    }
    data = da.zeros((n_ev * nt, ny, nx), dtype=np.uint8, chunks=(nt, ny, nx))
    return xr.Dataset(
        {kind: (("time", "y", "x"), data, data_attrs)},
        coords={
            "time": ("time", time, {"step": str(pd.Timedelta(minutes=step_min))}),
            "event": (
                "time",
                np.repeat(np.arange(n_ev, dtype=np.int32), nt),
                {"long_name": "index of the event along event_id (windows never cross a change)"},
            ),
            "minute_offset": (
                "time",
                np.concatenate(plan.offsets).astype(np.float32),
                {"units": "min", "long_name": "offset from time_utc"},
            ),
            "y": (
                "y",
                (np.arange(ny) + 0.5) * height_m / ny,
                {"units": "m", "long_name": "offset from the patch's southern edge"},
            ),
            "x": (
                "x",
                (np.arange(nx) + 0.5) * width_m / nx,
                {"units": "m", "long_name": "offset from the patch's western edge"},
            ),
            **_event_coords(rows, ny, nx, proj),
        },
        attrs={
            "title": f"SEVIR {kind} storm events",
            "source": f"SEVIR (Veillette et al. 2020), {SEVIR_S3}",
            "projection": proj,
            "Conventions": "CF-1.8",
            "layout": "events concatenated along time; 'event' marks boundaries; per-event "
            "geolocation in event_lat/event_lon(event_id, y, x)",
            "split": plan.split,
        },
    )


class _EventReader:
    """Reads one event's frames from its HDF5 file (files opened once, checked on opening)."""

    def __init__(self, plan: _SevirPlan, time: np.ndarray) -> None:
        self.plan, self.time = plan, time
        self.handles: dict[Path, Any] = {}

    def _handle(self, f: Path) -> Any:
        if f not in self.handles:
            nt, ny, nx = self.plan.shape
            kind = self.plan.kind
            self.handles[f] = h = open_h5(f, ("id", kind), f"SEVIR {kind}")
            arr = h[kind]
            if arr.ndim != 4 or arr.shape[1:] != (ny, nx, nt) or arr.dtype != np.uint8:
                raise DataValidationError(
                    f"{f}: {kind!r} is {arr.dtype}{arr.shape}, expected uint8 (N, {ny}, {nx}, {nt})"
                )
        return self.handles[f]

    def _slab(self, k: int) -> np.ndarray:
        """The event's frames as (nt, ny, nx), south row first."""
        row, kind = self.plan.rows.iloc[k], self.plan.kind
        f = self.plan.root / str(row["file_name"])
        h = self._handle(f)
        idx = int(row["file_index"])
        if not 0 <= idx < h[kind].shape[0]:
            raise DataValidationError(
                f"{f}: file_index {idx} of event {row['id']} is outside 0..{h[kind].shape[0] - 1}"
            )
        fid = h["id"][idx]
        fid = fid.decode() if isinstance(fid, bytes) else str(fid)
        if fid != str(row["id"]):
            raise DataValidationError(
                f"{f}: row {idx} holds event {fid!r} but CATALOG.csv says {row['id']!r}; "
                "the catalog does not belong to this file"
            )
        try:
            slab = np.asarray(h[kind][idx])  # (ny, nx, nt): one event
        except (OSError, KeyError, RuntimeError) as e:
            raise DataValidationError(
                f"cannot read event {fid} from {f} ({e}); the file is truncated"
            ) from None
        return np.ascontiguousarray(np.moveaxis(slab, -1, 0)[:, ::-1, :])

    def event(self, k: int) -> xr.Dataset:
        nt, start = self.plan.shape[0], k * self.plan.shape[0]
        return xr.Dataset(
            {self.plan.kind: (("time", "y", "x"), self._slab(k))},
            coords={  # time-dependent coords travel with each region
                "time": self.time[start : start + nt],
                "event": ("time", np.full(nt, k, dtype=np.int32)),
                "minute_offset": ("time", self.plan.offsets[k].astype(np.float32)),
            },
        )

    def close(self) -> None:
        for h in self.handles.values():
            h.close()


class SevirRecipe(Recipe):
    """Convert SEVIR events of one image type into a canonical store (streamed by event).

    Source: the folder with ``CATALOG.csv`` and the data files (``file_name`` paths
    relative to it or to its ``data/`` subfolder). Options: ``img_type`` (``vil``
    (default), ``ir069``, ``ir107`` or ``vis``), ``split`` (``all``, ``train``, ``val``,
    ``test``: events of that standard split, by ``time_utc``), ``start``/``end`` (keep
    events with ``start <= time_utc < end``), ``max_events`` (the first N events after
    sorting by time), ``catalog`` (path of ``CATALOG.csv`` if not ``source/CATALOG.csv``).

    Raises :class:`~stgeo.errors.DataValidationError` on missing columns or files, ids in
    a file not matching the catalog, wrong array shapes or dtypes, truncated files.

    Examples
    --------
    >>> from stgeo.datasets import run_recipe  # doctest: +SKIP
    >>> run_recipe("sevir", "SEVIR", "vil-test.zarr", split="test")  # doctest: +SKIP
    'vil-test.zarr'
    """

    def inputs(
        self,
        source: str | None,
        *,
        img_type: str = "vil",
        split: str = "all",
        start: str | None = None,
        end: str | None = None,
        max_events: int | None = None,
        catalog: str | None = None,
    ) -> RecipeInputs:
        src = require_file(str(source), "SEVIR source folder")
        cat_path = require_file(catalog, "SEVIR catalog") if catalog else src / "CATALOG.csv"
        if not cat_path.exists():
            raise DataValidationError(
                f"no CATALOG.csv in {src}; download it from {SEVIR_S3}CATALOG.csv or pass catalog="
            )
        split = str(split).lower()
        if split not in ("all", "train", "val", "test"):
            raise UnknownNameError(f"split must be all, train, val or test, got {split!r}")
        kind = str(img_type).lower()
        rows = _select_events(read_catalog(cat_path), cat_path, kind, split, start, end, max_events)
        shape, offs = _event_shape(rows, kind)
        root = _find_data_root(src, list(rows["file_name"].astype(str)))
        files = sorted({root / f for f in rows["file_name"].astype(str)})
        for f in files:
            if not f.exists():
                raise DataValidationError(f"data file {f} listed in CATALOG.csv does not exist")
        opts = {
            "img_type": kind,
            "split": split,
            "start": start,
            "end": end,
            "max_events": max_events,
        }
        plan = _SevirPlan(kind, split, rows, root, offs, shape)
        return RecipeInputs(files=[cat_path, *files], options=opts, root=src, plan=plan)

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        plan: _SevirPlan = inputs.plan
        time, step_min = _frame_times(plan)
        reader = _EventReader(plan, time)
        nt = plan.shape[0]
        regions = [(k * nt, functools.partial(reader.event, k)) for k in range(len(plan.rows))]
        return RecipeOutput(
            _template(plan, time, step_min),
            chunks={"time": nt},
            regions=regions,
            close=reader.close,
        )


register_recipe(
    "sevir",
    SevirRecipe,
    options={
        "img_type": str,
        "split": str,
        "start": date,
        "end": date,
        "max_events": int,
        "catalog": str,
    },
    description="SEVIR CATALOG.csv + HDF5 (vil, ir069, ir107, vis) -> events along time",
)

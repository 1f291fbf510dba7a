"""BikeNYC crowd flows (ST-ResNet) -> canonical ``flow`` store (recipe ``bikenyc``).

Two input layouts are read:

* the original ``NYC14_M16x8_T60_NewEnd.h5`` (DeepST): ``date`` (N,) bytes ``YYYYMMDDSS``
  with hourly slots ``SS`` = 01..24 (slot 1 starts at 00:00) and ``data`` (N, 2, 16, 8),
  channel 0 = "new" flow (trips starting in the cell), 1 = "end" flow (trips ending there);
* the netCDF tail in ``../shared/data/bikenyc`` (``flow(time, flow_type, row, col)`` int16,
  ``flow_type = [new_flow, end_flow]``, 2014-08-04 23:00 .. 2014-09-30 23:00).

Output: ``flow(time, channel=[inflow, outflow], y, x)`` float32, units ``"1"`` (trips per
hour), with the canonical meaning: ``inflow`` = bikes arriving = ``end_flow`` (source
channel 1), ``outflow`` = bikes leaving = ``new_flow`` (source channel 0); the mapping is in
the ``channel_source`` attribute. ``lat``/``lon`` (2-D, cell centres) assume a north-aligned
bounding box over lower/mid Manhattan covering the 2014 Citi Bike stations (the paper gives
none): south 40.68, west -74.02, north 40.78, east -73.95 (0.1 x 0.07 deg, ~0.7 km cells),
row 0 = north. All frames are kept (the series is contiguous); ``drop_incomplete_days=True``
applies the TaxiBJ rule.

Chunking: 256 hourly frames x 2 x 16 x 8 (256 KiB). Splits (evaluation.md): test = last
240 h (2014-09-21 00:00 .. 09-30 23:00), validation = the 168 h before.

Examples
--------
>>> from stgeo.datasets.bikenyc import MANHATTAN_BBOX
>>> MANHATTAN_BBOX
(40.68, -74.02, 40.78, -73.95)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataValidationError
from .protocol import Recipe, RecipeInputs, RecipeOutput, require_file
from .registry import register_recipe
from .taxibj import complete_days, flows_output, grid_latlon, read_flow_file

__all__ = ["MANHATTAN_BBOX", "BikeNYCRecipe"]

#: (south, west, north, east) of the assumed BikeNYC 16x8 grid
MANHATTAN_BBOX = (40.68, -74.02, 40.78, -73.95)


class _ArraySource:
    """Minimal stand-in for an h5py dataset (shape + slicing) over a numpy array."""

    def __init__(self, arr: np.ndarray, name: str) -> None:
        self._a = arr
        self.shape = arr.shape

        class _F:
            filename = name

        self.file = _F()

    def __getitem__(self, key):
        return self._a[key]


def _read_netcdf(path: Path):
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
    except Exception as e:
        raise DataValidationError(
            f"cannot open {path} as netCDF ({type(e).__name__}: {e}); the file is truncated, "
            "corrupted or not a BikeNYC file"
        ) from None
    with ds:
        if "flow" not in ds.data_vars or ds["flow"].ndim != 4 or "time" not in ds["flow"].dims:
            raise DataValidationError(
                f"{path} is not a BikeNYC netCDF file: expected a variable "
                f"flow(time, flow_type, row, col); found {dict(ds.sizes)} and variables "
                f"{list(ds.data_vars)}"
            )
        da = ds["flow"]
        other = [d for d in da.dims if d != "time"]
        da = da.transpose("time", *other)
        if da.shape[1] != 2:
            raise DataValidationError(f"{path}: flow has {da.shape[1]} channels, expected 2")
        try:
            arr = np.asarray(da.values, dtype=np.float32)
        except Exception as e:
            raise DataValidationError(f"cannot read {path} ({e}); truncated file?") from None
        times = pd.DatetimeIndex(ds["time"].values)
        names = [str(v) for v in ds[other[0]].values] if other[0] in ds.coords else []
    return arr, times, names


def _find_source(src: Path) -> Path:
    if not src.is_dir():
        return src
    cands = sorted(src.glob("NYC14_M16x8_T60_NewEnd.h5")) + sorted(src.glob("*.nc"))
    cands += sorted(p for p in src.glob("*.h5") if p not in cands)
    if not cands:
        raise DataValidationError(
            f"no BikeNYC file in {src}: expected NYC14_M16x8_T60_NewEnd.h5 or a .nc file"
        )
    return cands[0]


def _open_flows(src: Path, per_day: int):
    """``(handle or None, flow data (N, 2, H, W), times)`` from the HDF5 or netCDF file."""
    with open(src, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"\x89HDF") and src.suffix in (".h5", ".hdf5", ".hdf"):
        handle, times = read_flow_file(src, per_day, "BikeNYC (NYC14_M16x8_T60_NewEnd.h5)")
        return handle, handle["data"], times
    if magic.startswith((b"\x89HDF", b"CDF")):
        arr, times, names = _read_netcdf(src)
        if names and names != ["new_flow", "end_flow"]:
            raise DataValidationError(
                f"{src}: flow_type is {names}, expected ['new_flow', 'end_flow']"
            )
        return None, _ArraySource(arr, str(src)), times
    raise DataValidationError(
        f"{src} is neither HDF5 nor netCDF (first bytes {magic!r}); expected "
        "NYC14_M16x8_T60_NewEnd.h5 or the BikeNYC netCDF"
    )


_ATTRS = {
    "title": "BikeNYC crowd flows (Citi Bike trips, hourly, Manhattan)",
    "Conventions": "CF-1.8",
    "channel_source": "inflow=end_flow (source channel 1), outflow=new_flow (source channel 0)",
    "grid_bbox_south_west_north_east": list(MANHATTAN_BBOX),
    "grid_note": "bounding box assumed (not published); row 0 = north",
    "citation": "Zhang, Zheng, Qi (2017) Deep spatio-temporal residual networks for "
    "citywide crowd flows prediction, AAAI; trips: Citi Bike System Data",
}


class BikeNYCRecipe(Recipe):
    """Convert BikeNYC (original HDF5 or the netCDF tail) into a canonical ``flow`` store.

    Source: ``NYC14_M16x8_T60_NewEnd.h5`` or ``bikenyc_tail_*.nc`` (or a folder holding
    one). Option: ``drop_incomplete_days`` (keep only days with all 24 hours).

    Examples
    --------
    >>> from stgeo.datasets import run_recipe  # doctest: +SKIP
    >>> run_recipe("bikenyc", "../shared/data/bikenyc", "bikenyc.zarr")  # doctest: +SKIP
    'bikenyc.zarr'
    """

    def inputs(self, source: str | None, *, drop_incomplete_days: bool = False) -> RecipeInputs:
        src = _find_source(require_file(str(source), "BikeNYC source"))
        opts = {"drop_incomplete_days": drop_incomplete_days}
        return RecipeInputs(files=[src], options=opts, root=src.parent, plan=src)

    def build(self, inputs: RecipeInputs) -> RecipeOutput:
        src: Path = inputs.plan
        per_day, step = 24, pd.Timedelta("1h")
        handle = None
        try:
            handle, data, times = _open_flows(src, per_day)
            drop = inputs.options["drop_incomplete_days"]
            keep = complete_days(times, per_day) if drop else ~times.duplicated()
            idx = np.flatnonzero(keep)
            idx = idx[np.argsort(times.values[idx], kind="stable")]
            if idx.size == 0:
                raise DataValidationError(f"{src}: no frames left (no complete day)")
            ny, nx = data.shape[2:]
            lat, lon = grid_latlon(MANHATTAN_BBOX, ny, nx)
            attrs = {**_ATTRS, "source": src.name}
            out = flows_output(
                [(data, idx)],
                times[idx],
                step=step,
                lat=lat,
                lon=lon,
                extra={},
                attrs=attrs,
                swap_channels=True,
            )
        except BaseException:
            if handle is not None:
                handle.close()
            raise
        out.close = handle.close if handle is not None else None
        return out


register_recipe(
    "bikenyc",
    BikeNYCRecipe,
    options={"drop_incomplete_days": bool},
    description="BikeNYC NYC14_M16x8_T60_NewEnd.h5 or netCDF tail -> flow",
)

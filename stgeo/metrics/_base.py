"""Shared machinery of :mod:`stgeo.metrics`: alignment, dimension handling, mergeable sums.

Every score in stgeo is computed in two steps: first *sums* (counts, sums of squared
errors, sums of fractions, ...) are accumulated over the dimensions being reduced, then the
score is a cheap function of those sums. Sums add up exactly, so tables from batches,
Dask chunks or workers merge into the table of the whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..conventions import (
    INIT_TIME_DIM,
    LEAD_TIME_DIM,
    TIME_DIM,
    VALID_TIME_COORD,
    check_same_grid,
    find_spatial_dims,
)
from ..errors import DataValidationError, StgeoTypeError

__all__ = [
    "MergeableSums",
    "align",
    "resolve_reduce_dims",
]

THRESHOLD_DIM = "threshold"


# ----------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------
def as_dataarray(obj: Any, name: str, variable: str | None = None) -> xr.DataArray:
    """Return ``obj`` as a DataArray (a one-variable Dataset is unwrapped)."""
    if isinstance(obj, xr.DataArray):
        return obj
    if isinstance(obj, xr.Dataset):
        names = [str(v) for v in obj.data_vars]
        if variable is not None:
            if variable not in obj.data_vars:
                raise DataValidationError(
                    f"{name} has no variable {variable!r}; its variables are {names}."
                )
            return obj[variable]
        if len(names) == 1:
            return obj[names[0]]
        raise DataValidationError(
            f"{name} is a Dataset with {len(names)} variables {names}; pass a DataArray "
            "(e.g. ds['rain_rate']) or variable='...'."
        )
    raise StgeoTypeError(
        f"{name} must be an xarray DataArray or Dataset, got {type(obj).__name__}."
    )


def require_spatial_dims(obj: xr.DataArray, what: str) -> tuple[str, str]:
    sd = find_spatial_dims(obj)
    if sd is None:
        raise DataValidationError(
            f"{what} needs two spatial dims ('y', 'x') or ('lat', 'lon'); the data have dims "
            f"{tuple(obj.dims)}. Rename the grid dims, e.g. da.rename(rows='y', cols='x')."
        )
    return sd


def is_dask(obj: xr.DataArray) -> bool:
    """True when ``obj`` is backed by a Dask array."""
    return obj.chunks is not None


def _fmt_times(values: np.ndarray, n: int = 3) -> str:
    shown = ", ".join(
        str(np.datetime_as_string(v, unit="s"))
        if np.issubdtype(np.asarray(v).dtype, np.datetime64)
        else str(v)
        for v in values[:n]
    )
    return shown + (", ..." if len(values) > n else "")


def _select_labels(obs: xr.DataArray, dim: str, labels: xr.DataArray, what: str) -> xr.DataArray:
    index = obs.indexes.get(dim)
    if index is None:
        if obs.sizes[dim] != labels.size:
            raise DataValidationError(
                f"{what}: dim {dim!r} has {labels.size} entries in the forecast and "
                f"{obs.sizes[dim]} in the observations."
            )
        return obs.assign_coords({dim: labels.values})
    pos = index.get_indexer(labels.values)
    if (pos < 0).any():
        missing = np.asarray(labels.values)[pos < 0]
        raise DataValidationError(
            f"{what}: the observations lack {missing.size} of the forecast's {dim!r} values "
            f"({_fmt_times(missing)}). Provide observations covering them or drop them "
            "from the forecast."
        )
    return obs.isel({dim: pos})


def align(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    load: bool = False,
    order_with_forecast: bool = False,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Align observations onto a forecast, lazily.

    A forecast with ``lead_time`` (and usually ``init_time``) dims is matched to
    observations with a ``time`` dim through its ``valid_time`` coordinate
    (``init_time + lead_time`` when the coordinate is absent): the result holds, for every
    forecast cell, the observation valid at the same time. Otherwise dims shared by both
    are matched by label (observations may cover more than the forecast). Grids must match.
    With ``load=True`` both results are loaded into memory (the observations needed are read
    once, in one sorted selection). ``order_with_forecast=True`` (for Dask inputs that are
    computed together, as :func:`~stgeo.metrics.score` does) makes each observation block wait
    for its forecast block, which keeps distributed schedulers from running ahead.

    Returns
    -------
    fcst, obs : DataArray
        Same dims, order and coordinates (the forecast's); Dask arrays stay lazy.

    Raises
    ------
    DataValidationError
        Valid times missing from the observations, different grids, or dims that do not match.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2024-01-01", periods=6, freq="5min")
    >>> obs = xr.DataArray(np.arange(6.0)[:, None, None] * np.ones((6, 2, 2)),
    ...                    dims=("time", "y", "x"), coords={"time": t})
    >>> lead = pd.to_timedelta([5, 10], unit="min")
    >>> fc = xr.DataArray(np.zeros((2, 2, 2, 2)), dims=("init_time", "lead_time", "y", "x"),
    ...                   coords={"init_time": t[:2], "lead_time": lead})
    >>> f, o = align(fc, obs)
    >>> o.isel(y=0, x=0).values.tolist()
    [[1.0, 2.0], [2.0, 3.0]]
    """
    fcst = as_dataarray(fcst, "fcst")
    obs = as_dataarray(obs, "obs")
    check_same_grid(fcst, obs)
    handled = set(find_spatial_dims(fcst) or ())
    if LEAD_TIME_DIM in fcst.dims and TIME_DIM in obs.dims and TIME_DIM not in fcst.dims:
        if fcst.chunks is not None and obs.chunks is None and not load:
            # never expand in-memory observations to the (lazy) forecast's full size
            obs = obs.chunk({TIME_DIM: 16})
        obs = _align_valid_time(fcst, obs, load, order_with_forecast)
        handled |= {INIT_TIME_DIM, LEAD_TIME_DIM}
    for d in fcst.dims:
        if d in handled or d not in obs.dims or d not in fcst.indexes:
            continue
        if d in obs.indexes and obs.indexes[d].equals(fcst.indexes[d]):
            continue
        obs = _select_labels(obs, str(d), fcst[d], "cannot align")
    obs = _same_dims_as(fcst, obs)
    # the forecast's coordinates for both (grids were checked above)
    dim_coords = {k: v for k, v in fcst.coords.items() if set(v.dims) <= set(fcst.dims)}
    obs = xr.DataArray(obs.data, dims=fcst.dims, coords=dim_coords, attrs=obs.attrs, name=obs.name)
    if load:
        fcst, obs = fcst.compute(), obs.compute()
    elif obs.chunks is not None and fcst.chunks is not None and obs.chunks != fcst.chunks:
        # give the observations the forecast's chunks so elementwise work lines up
        obs = obs.chunk(dict(zip(fcst.dims, fcst.chunks, strict=True)))
    return fcst, obs


def _same_dims_as(fcst: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """``obs`` transposed to the forecast's dims, which must be the same names and sizes."""
    extra = [d for d in obs.dims if d not in fcst.dims]
    missing = [d for d in fcst.dims if d not in obs.dims]
    if extra or missing:
        raise DataValidationError(
            f"forecast dims {tuple(fcst.dims)} and observation dims {tuple(obs.dims)} do not "
            "match after aligning on valid time"
            + (f"; observations have extra dims {extra}" if extra else "")
            + (f"; observations lack dims {missing}" if missing else "")
            + ". Expected forecasts (init_time, lead_time, [channel], y, x) and observations "
            "(time, [channel], y, x)."
        )
    obs = obs.transpose(*fcst.dims)
    for d in fcst.dims:
        if obs.sizes[d] != fcst.sizes[d]:
            raise DataValidationError(
                f"dim {d!r} has {fcst.sizes[d]} entries in the forecast and {obs.sizes[d]} in "
                "the observations; give both the same labels (coordinates) so they can align."
            )
    return obs


def _align_valid_time(
    fcst: xr.DataArray, obs: xr.DataArray, load: bool, order: bool = False
) -> xr.DataArray:
    vt = _valid_times(fcst)
    pos = _valid_time_positions(obs, vt)
    if vt.ndim == 2 and pos.size and obs.chunks is not None and not load:
        return _align_dask_blocks(fcst, obs, vt, pos, order_with_forecast=order)
    if vt.ndim == 2 and pos.size:
        # read every needed observation once (one sorted selection), then index into it
        uniq, inverse = np.unique(pos, return_inverse=True)
        obs = obs.isel({TIME_DIM: uniq})
        if load:
            obs = obs.load()
        pos = inverse.reshape(vt.shape)
    return _select_times(obs, vt, pos)


def _valid_times(fcst: xr.DataArray) -> xr.DataArray:
    """The forecast's valid times, dims ordered (init_time, lead_time, others)."""
    if VALID_TIME_COORD in fcst.coords:
        vt = fcst.coords[VALID_TIME_COORD]
    elif INIT_TIME_DIM in fcst.coords:
        vt = fcst[INIT_TIME_DIM] + fcst[LEAD_TIME_DIM]
    else:
        raise DataValidationError(
            "the forecast has a 'lead_time' dim but neither a 'valid_time' coordinate nor an "
            "'init_time' coordinate, so its valid times are unknown. Add one, e.g. "
            "fc.assign_coords(valid_time=fc.init_time + fc.lead_time)."
        )
    vdims = [d for d in (INIT_TIME_DIM, LEAD_TIME_DIM) if d in vt.dims] + [
        d for d in vt.dims if d not in (INIT_TIME_DIM, LEAD_TIME_DIM)
    ]
    return vt.transpose(*vdims)


def _valid_time_positions(obs: xr.DataArray, vt: xr.DataArray) -> np.ndarray:
    """Positions along the observations' time of the valid times ``vt`` (shape of ``vt``)."""
    if TIME_DIM not in obs.indexes:
        raise DataValidationError("the observations need a 'time' coordinate to be aligned.")
    index = obs.indexes[TIME_DIM]
    if not index.is_unique:
        raise DataValidationError("the observations' 'time' coordinate has duplicate values.")
    flat = np.asarray(vt.values).ravel()
    try:
        pos = index.get_indexer(flat)
    except (TypeError, ValueError) as err:  # pragma: no cover - exotic index types
        raise DataValidationError(f"cannot match valid times to observation times: {err}") from None
    if (pos < 0).any():
        missing = np.unique(flat[pos < 0])
        raise DataValidationError(
            f"the observations lack {missing.size} of the forecast's valid times "
            f"({_fmt_times(missing)}); observations cover {_fmt_times(index.values[:1])} to "
            f"{_fmt_times(index.values[-1:])}. Trim the forecast (e.g. fc.sel(init_time=...)) "
            "or provide observations covering every init_time + lead_time."
        )
    return pos.reshape(vt.shape)


def _select_times(obs: xr.DataArray, vt: xr.DataArray, pos: np.ndarray) -> xr.DataArray:
    """The observations at time positions ``pos``, laid out on the dims of ``vt``."""
    if vt.ndim == 0:
        out = obs.isel({TIME_DIM: int(pos)})
    elif vt.ndim == 1:
        out = obs.isel({TIME_DIM: pos}).rename({TIME_DIM: vt.dims[0]})
        out = out.drop_vars([c for c in out.coords if c == vt.dims[0]])
    elif vt.ndim == 2:
        # one orthogonal (1-D, sorted) selection per lead: cheap and chunk-friendly with Dask
        parts = []
        d0, d1 = vt.dims
        for j in range(vt.shape[1]):
            p = obs.isel({TIME_DIM: pos[:, j]}).rename({TIME_DIM: d0})
            parts.append(p.drop_vars([c for c in p.coords if c == d0]))
        out = xr.concat(parts, dim=d1, coords="minimal", compat="override", join="override")
    else:
        raise DataValidationError(
            f"valid_time must have at most 2 dims (init_time, lead_time), got {vt.dims}."
        )
    return out


def _gather_chunks(chunks: list[np.ndarray], local: np.ndarray, *anchor: Any) -> np.ndarray:
    # ``anchor`` (a forecast block, unused) only orders this task after that block
    return np.concatenate(chunks, axis=0)[local]


def _block_sizes(n: int, per: int) -> tuple[int, ...]:
    return tuple(min(per, n - i) for i in range(0, n, per))


def _align_dask_blocks(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    vt: xr.DataArray,
    pos: np.ndarray,
    order_with_forecast: bool = False,
) -> xr.DataArray:
    """Observations at the forecast's valid times, as a Dask array blocked like the forecast.

    Each output block (a block of init times x a block of lead times x one spatial chunk) is
    one task whose inputs are exactly the observation chunks holding its valid times; it picks
    the frames it needs. The graph is as local as the forecast's own, so only a few blocks
    are ever in memory. With ``order_with_forecast`` each block also waits for the matching
    forecast block, so a distributed scheduler cannot run far ahead of the forecast (which
    it throttles as root tasks) and pile up observation blocks.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    d0, d1 = vt.dims
    obs_t = obs.transpose(TIME_DIM, ...)
    data = obs_t.data
    if fcst.chunks is not None:
        init_sizes, lead_sizes = fcst.chunksizes[d0], fcst.chunksizes[d1]
    else:  # blocks of about 64 MiB of observations
        frame = max(1, data.dtype.itemsize * int(np.prod(data.shape[1:])))
        per = max(1, int(64 * 2**20 // (frame * vt.shape[1])))
        init_sizes, lead_sizes = _block_sizes(vt.shape[0], per), (vt.shape[1],)
    bounds = np.cumsum((0, *data.chunks[0]))
    order_with_forecast = order_with_forecast and fcst.chunks is not None
    name = "stgeo-align-obs-" + tokenize(
        data.name, pos, init_sizes, lead_sizes, order_with_forecast and fcst.data.name
    )
    other_counts = [len(c) for c in data.chunks[1:]]
    dsk: dict = {}
    i0 = 0
    for bi, n in enumerate(init_sizes):
        j0 = 0
        for bj, m in enumerate(lead_sizes):
            p = pos[i0 : i0 + n, j0 : j0 + m]
            which = np.searchsorted(bounds, p, side="right") - 1  # obs chunk of each frame
            ks = np.unique(which)
            sizes = np.diff(bounds)
            offsets = np.zeros(len(sizes), dtype=np.intp)  # start of chunk k once concatenated
            offsets[ks] = np.cumsum(np.concatenate(([0], sizes[ks][:-1])))
            local = (offsets[which] + (p - bounds[which])).astype(np.intp)
            anchor = []
            if order_with_forecast:
                anchor = [
                    (fcst.data.name, *[bi if d == d0 else bj if d == d1 else 0 for d in fcst.dims])
                ]
            for idx in np.ndindex(*other_counts):
                dsk[(name, bi, bj, *idx)] = (
                    _gather_chunks,
                    [(data.name, int(k), *idx) for k in ks],
                    local,
                    *anchor,
                )
            j0 += m
        i0 += n
    deps = [data, fcst.data] if order_with_forecast else [data]
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    arr = da.Array(
        graph, name, (tuple(init_sizes), tuple(lead_sizes), *data.chunks[1:]), dtype=data.dtype
    )
    other = [d for d in obs_t.dims if d != TIME_DIM]
    coords = {k: v for k, v in obs_t.coords.items() if v.dims and set(v.dims) <= set(other)}
    return xr.DataArray(arr, dims=(d0, d1, *other), coords=coords, attrs=obs.attrs, name=obs.name)


# ----------------------------------------------------------------------------------------
# dims
# ----------------------------------------------------------------------------------------
def _as_dim_list(value: str | Iterable[Hashable] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def resolve_reduce_dims(
    dims: Sequence[Hashable],
    reduce_dims: str | Iterable[Hashable] | None,
    preserve_dims: str | Iterable[Hashable] | None,
    *,
    ignore_missing_preserve: bool = False,
) -> list[str]:
    """The dims to sum over, from ``reduce_dims`` or ``preserve_dims`` (not both).

    Neither given: every dim is reduced.
    """
    dims = [str(d) for d in dims]
    red, pres = _as_dim_list(reduce_dims), _as_dim_list(preserve_dims)
    if red is not None and pres is not None:
        raise DataValidationError(
            "pass either reduce_dims or preserve_dims, not both (they are complementary)."
        )
    if red is not None:
        bad = [d for d in red if d not in dims]
        if bad:
            raise DataValidationError(
                f"reduce_dims {bad} are not dims of the data; dims are {dims}."
            )
        return [d for d in dims if d in red]
    if pres is not None:
        bad = [d for d in pres if d not in dims]
        if bad and not ignore_missing_preserve:
            raise DataValidationError(
                f"preserve_dims {bad} are not dims of the data; dims are {dims}."
            )
        return [d for d in dims if d not in pres]
    return list(dims)


# ----------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------
def as_thresholds(threshold: Any, name: str = "threshold") -> tuple[list[float], bool]:
    """Thresholds as a list of floats and whether a scalar was given.

    ``0`` is a real threshold (``value >= 0``), never "unset".
    """
    if threshold is None:
        raise DataValidationError(
            f"{name} is required for categorical scores (event: value >= {name}); e.g. "
            f"{name}=1.0 or {name}s=[0.1, 1, 5]. Note 0 is a valid threshold."
        )
    scalar = np.ndim(threshold) == 0
    values = np.atleast_1d(np.asarray(threshold))
    if values.size == 0:
        raise DataValidationError(f"{name}s must not be empty.")
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise StgeoTypeError(f"{name}s must be real numbers, got {threshold!r}.")
    values = values.astype(float)
    if not np.isfinite(values).all():
        raise DataValidationError(f"{name}s must be finite numbers, got {threshold!r}.")
    if len(np.unique(values)) != values.size:
        raise DataValidationError(f"{name}s contain duplicates: {values.tolist()}.")
    return values.tolist(), bool(scalar)


def check_threshold_range(thresholds: Sequence[float], *arrays: xr.DataArray) -> None:
    """Raise if thresholds fall outside the valid range the data declare in their attrs."""
    for da in arrays:
        lo, hi = None, None
        if "valid_range" in da.attrs:
            vr = np.asarray(da.attrs["valid_range"], dtype=float).ravel()
            if vr.size == 2:
                lo, hi = float(vr[0]), float(vr[1])
        lo = float(da.attrs["valid_min"]) if "valid_min" in da.attrs else lo
        hi = float(da.attrs["valid_max"]) if "valid_max" in da.attrs else hi
        units = da.attrs.get("units", "unknown")
        bad = [t for t in thresholds if (lo is not None and t < lo) or (hi is not None and t > hi)]
        if bad:
            raise DataValidationError(
                f"thresholds {bad} lie outside the data's valid range [{lo}, {hi}] "
                f"(units {units!r}). Give thresholds in the data's units."
            )


def as_positive_ints(values: Any, name: str) -> list[int]:
    """A list of positive integers (window sizes, pooling kernels)."""
    arr = np.atleast_1d(np.asarray(values))
    if arr.size == 0:
        raise DataValidationError(f"{name} must not be empty.")
    if not np.issubdtype(arr.dtype, np.number):
        raise StgeoTypeError(f"{name} must be positive integers, got {values!r}.")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise DataValidationError(f"{name} must be whole numbers of pixels, got {values!r}.")
    if np.any(arr < 1):
        raise DataValidationError(
            f"{name} must be positive (>= 1 pixel), got {arr.tolist()}; negative or zero "
            "sizes are not meaningful."
        )
    out = [int(v) for v in arr]
    if len(set(out)) != len(out):
        raise DataValidationError(f"{name} contain duplicates: {out}.")
    return out


def data_units(*arrays: xr.DataArray) -> str:
    """The units of the (first) input that declares them, else ``"unknown"``."""
    for a in arrays:
        u = a.attrs.get("units")
        if u not in (None, ""):
            return str(u)
    return "unknown"


def finish(da: xr.DataArray, name: str, units: str, long_name: str, **attrs: Any) -> xr.DataArray:
    """Name a score and set its ``units``/``long_name`` attrs."""
    da = da.rename(name)
    da.attrs = {"units": units, "long_name": long_name, **attrs}
    return da


def bare(da: xr.DataArray) -> xr.DataArray:
    """``da`` without coordinates (fast arithmetic: no index alignment)."""
    return xr.DataArray(da.data, dims=da.dims)


def restore_coords(ds: xr.Dataset, like: xr.DataArray) -> xr.Dataset:
    """Attach the coordinates of ``like`` whose dims all survive in ``ds``."""
    keep = {
        k: (v.dims, v.values)
        for k, v in like.coords.items()
        if k not in ds.coords and set(v.dims) <= set(ds.dims)
    }
    return ds.assign_coords(keep)


SLAB_BYTES = 2 * 2**20


def _slabbed(*blocks: Any, kernel: Any, axes: tuple[int, ...], **kwargs: Any) -> np.ndarray:
    """Run ``kernel`` on slabs of about SLAB_BYTES so its temporaries stay small."""
    first = blocks[0]
    split = next((i for i, n in enumerate(first.shape) if n > 1), None)
    if split is None or first.nbytes <= SLAB_BYTES:
        return kernel(*blocks, axes=axes, **kwargs)
    n = first.shape[split]
    per = max(1, int(SLAB_BYTES // max(1, first.nbytes // n)))
    if per >= n:
        return kernel(*blocks, axes=axes, **kwargs)
    parts = []
    for i in range(0, n, per):
        sl = (slice(None),) * split + (slice(i, i + per),)
        parts.append(kernel(*(np.asarray(b)[sl] for b in blocks), axes=axes, **kwargs))
    if split in axes:
        return np.sum(parts, axis=0)
    return np.concatenate(parts, axis=split)


def blockwise_sums(
    kernel: Any,
    arrays: Sequence[Any],
    dims: Sequence[str],
    reduce: Sequence[str],
    extra_shape: tuple[int, ...],
    dtype: Any,
    **kwargs: Any,
) -> tuple[Any, list[str]]:
    """Sum per-block statistics: ``kernel`` runs on each (NumPy) block, Dask adds the results.

    ``kernel(*blocks, axes=..., **kwargs)`` must return an array shaped like the block with the
    reduced ``axes`` kept as size 1, followed by ``extra_shape`` (e.g. thresholds x stats).
    With Dask inputs this is ``map_blocks`` + a tree sum of small arrays, so only a few blocks
    are ever in memory; with NumPy inputs the kernel runs once.

    Returns the summed array (dims: kept dims + extra) and the kept dim names.
    """
    axes = tuple(i for i, d in enumerate(dims) if d in reduce)
    kept = [d for d in dims if d not in reduce]
    lazy = [a for a in arrays if hasattr(a, "dask")]
    if not lazy:
        return _slabbed(*arrays, kernel=kernel, axes=axes, **kwargs).sum(axis=axes), kept
    import dask.array as da

    chunks = lazy[0].chunks
    blocks = [
        a.rechunk(chunks) if hasattr(a, "dask") else da.from_array(np.asarray(a), chunks=chunks)
        for a in arrays
    ]
    ndim = len(dims)
    out_chunks = tuple((1,) * len(c) if i in axes else c for i, c in enumerate(chunks))
    out_chunks += tuple((n,) for n in extra_shape)
    res = da.map_blocks(
        _slabbed,
        *blocks,
        kernel=kernel,
        axes=axes,
        chunks=out_chunks,
        new_axis=list(range(ndim, ndim + len(extra_shape))) or None,
        dtype=dtype,
        meta=np.empty((0,) * (ndim + len(extra_shape)), dtype=dtype),
        **kwargs,
    )
    return res.sum(axis=axes), kept


def safe_divide(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    """``num / den`` with 0/0 (and x/0) defined as NaN, without numpy warnings."""
    return num / den.where(den != 0)


# ----------------------------------------------------------------------------------------
# mergeable sums
# ----------------------------------------------------------------------------------------
class MergeableSums:
    """Base of the sum containers: a Dataset of additive statistics.

    ``a + b`` adds the statistics cell by cell (coordinates must match exactly), and
    ``sum([...])`` works (``0 + table`` is the table), so results from batches, chunks or
    workers merge into the statistics of the whole.
    """

    _fields: tuple[str, ...] = ()

    def __init__(self, data: xr.Dataset) -> None:
        if not isinstance(data, xr.Dataset):
            raise StgeoTypeError(f"{type(self).__name__} wraps an xarray Dataset of sums.")
        missing = [f for f in self._fields if f not in data.data_vars]
        if missing:
            raise DataValidationError(
                f"{type(self).__name__} needs variables {list(self._fields)}; missing {missing}."
            )
        self.data = data

    # -- arithmetic --------------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        if isinstance(other, (int, float)) and other == 0:
            return self
        if not isinstance(other, type(self)):
            return NotImplemented
        try:
            a, b = xr.align(self.data, other.data, join="exact")
        except ValueError as err:
            raise DataValidationError(
                f"cannot merge {type(self).__name__}s with different coordinates ({err}). "
                "Tables merge cell by cell: they must keep the same dims and labels "
                "(e.g. the same thresholds and lead times). To join tables over different "
                "labels use xr.concat on .data."
            ) from None
        out = a + b
        out.attrs = dict(self.data.attrs)
        return type(self)(out)

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.data.identical(other.data)

    __hash__ = None  # type: ignore[assignment]

    # -- dims -------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(str(d) for d in self.data.dims)

    def sum(self, dim: str | Iterable[str] | None = None) -> Any:
        """Sum the statistics further over ``dim`` (all dims when None)."""
        return type(self)(self.data.sum(dim, keep_attrs=True))

    def isel(self, **indexers: Any) -> Any:
        return type(self)(self.data.isel(**indexers))

    def sel(self, **indexers: Any) -> Any:
        return type(self)(self.data.sel(**indexers))

    def compute(self, **kwargs: Any) -> Any:
        """Compute lazy (Dask) statistics."""
        return type(self)(self.data.compute(**kwargs))

    def __repr__(self) -> str:
        return f"<stgeo.metrics.{type(self).__name__}>\n{self.data!r}"

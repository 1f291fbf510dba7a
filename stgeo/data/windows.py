"""(input, target) windows over a lazy ``(time, channel, y, x)`` frame stack.

A window is anchored at ``t0``, the time of its last input frame. Its inputs are the frames
at ``t0 + input_offsets`` (``in_steps=N`` means ``-N+1, ..., -1, 0``) and its targets the
frames at ``t0 + target_offsets`` (default ``1, ..., out_steps``), offsets counted in time
steps. Period/trend inputs for crowd flows are just more offsets, e.g.
``input_offsets=[-336, -48, -2, -1, 0]`` (one week and one day back at 30 min, plus
closeness). A window never crosses a gap of the time axis or a change of the ``event``
coordinate: every one of its frames lies in the same contiguous segment as ``t0``.

Nothing is loaded when windows are defined; :meth:`Windows.inputs` and
:meth:`Windows.targets` read only the frames the requested windows need, as few contiguous
slices. :class:`stgeo.data.BatchLoader` iterates them chunk-aware for training.

Examples
--------
>>> import stgeo
>>> from stgeo.data import Windows, to_frames
>>> ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16))
>>> w = Windows(to_frames(ds), in_steps=4, out_steps=2)
>>> len(w), w.init_times[0] == ds.time[3].values
(7, True)
>>> x, y = w[[0, 1]]
>>> x.shape, y.shape
((2, 4, 1, 16, 16), (2, 2, 1, 16, 16))
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import CHANNEL_DIM, EVENT_COORD, TIME_DIM, segments, spatial_dims, time_step
from ..errors import DataValidationError, StgeoTypeError

__all__ = ["Windows", "read_frames", "zarr_sources"]


# local threads: reading a few chunks into this process is faster than shipping them
# through a distributed cluster, even when a dask.distributed Client is active
_SCHEDULER = "threads"


def _is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def _runs(positions: np.ndarray, max_gap: int = 1) -> list[tuple[int, int]]:
    """Split sorted unique positions into ``[start, stop)`` runs (joining gaps < max_gap)."""
    if positions.size == 0:
        return []
    brk = np.flatnonzero(np.diff(positions) > max_gap) + 1
    starts = np.concatenate([[0], brk])
    stops = np.concatenate([brk, [positions.size]])
    return [
        (int(positions[a]), int(positions[b - 1]) + 1) for a, b in zip(starts, stops, strict=False)
    ]


def _region(frames: xr.DataArray, region: Any) -> tuple[slice, slice]:
    """``region`` as two slices with explicit, in-grid bounds (None: the whole grid)."""
    h, w = frames.shape[2:]
    if region is None:
        return slice(0, h), slice(0, w)
    try:
        ys, xs = region
        y0, y1, x0, x1 = (int(v) for v in (ys.start, ys.stop, xs.start, xs.stop))
        ok = ys.step in (None, 1) and xs.step in (None, 1)
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok or not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise DataValidationError(
            f"region must be two slices (rows, columns) with explicit bounds inside the "
            f"{h}x{w} grid, e.g. (slice(0, 64), slice(32, 96)); got {region!r}"
        )
    return slice(y0, y1), slice(x0, x1)


def read_frames(
    frames: xr.DataArray, positions: np.ndarray, region: tuple[slice, slice] | None = None
) -> np.ndarray:
    """Read the frames at sorted, unique integer ``positions`` along time, as float32.

    Consecutive positions are read as one slice; all slices of a dask-backed array are
    computed together, so a chunk needed by several slices is read once. With ``region``
    only that rectangle of each frame is read: from a Zarr store (directly or through
    dask), only the chunks that intersect it.

    Parameters
    ----------
    frames : xarray.DataArray
        ``(time, channel, y, x)`` (numpy- or dask-backed).
    positions : numpy.ndarray of int
        Sorted unique positions in ``[0, frames.sizes['time'])``.
    region : (slice, slice), optional
        Rows and columns to read, e.g. ``(slice(128, 256), slice(0, 128))`` (a patch).

    Returns
    -------
    numpy.ndarray
        ``(len(positions), channel, rows, columns)`` float32.

    Raises
    ------
    DataValidationError
        ``region`` is not two slices with bounds inside the grid.

    Examples
    --------
    >>> import numpy as np, stgeo
    >>> from stgeo.data import to_frames
    >>> fr = to_frames(stgeo.testing.storm_cells(n_times=6, shape=(8, 8)))
    >>> read_frames(fr, np.array([0, 1, 4])).shape
    (3, 1, 8, 8)
    >>> read_frames(fr, np.array([2]), region=(slice(2, 6), slice(0, 3))).shape
    (1, 1, 4, 3)
    """
    positions = np.asarray(positions, dtype=np.int64)
    runs = _runs(positions)
    ys, xs = _region(frames, region)
    direct = _read_zarr_direct(frames, runs, positions.size, ys, xs)
    if direct is not None:
        return direct
    data = frames.variable.data
    if _is_dask(data):
        import dask

        # split runs at chunk edges: each piece is a view of one chunk, copied once into out
        edges = np.cumsum((0, *data.chunks[0]))
        pieces = []
        for a, b in runs:
            cuts = edges[(edges > a) & (edges < b)]
            bounds = [a, *cuts.tolist(), b]
            pieces.extend(itertools.pairwise(bounds))
        parts = dask.compute(*[data[a:b, :, ys, xs] for a, b in pieces], scheduler=_SCHEDULER)
    elif isinstance(data, np.ndarray):
        parts = [data[a:b, :, ys, xs] for a, b in runs]
    else:  # lazily indexed backend arrays and friends
        parts = [np.asarray(frames.variable[a:b, :, ys, xs].values) for a, b in runs]
    if len(parts) == 1:
        one = np.ascontiguousarray(parts[0], dtype=np.float32)
        return one if one.flags.writeable else one.copy()
    out = np.empty((positions.size, frames.shape[1], *parts[0].shape[2:]), dtype=np.float32)
    i = 0
    for p in parts:
        out[i : i + len(p)] = p
        i += len(p)
    return out


def _read_zarr_direct(
    frames: xr.DataArray, runs: list, n: int, ys: slice | None = None, xs: slice | None = None
) -> np.ndarray | None:
    """Read straight from the Zarr arrays behind ``frames`` (see ``to_frames``), or None.

    Skips dask's per-chunk task overhead (about 1.5x faster on 4 MiB chunks); used only
    when every channel is an unmodified stored array of the same shape. Zarr decodes only
    the chunks that intersect the requested slices.
    """
    arrays = zarr_sources(frames)
    if arrays is None:
        return None
    ys = slice(0, frames.shape[2]) if ys is None else ys
    xs = slice(0, frames.shape[3]) if xs is None else xs
    out = np.empty((n, frames.shape[1], ys.stop - ys.start, xs.stop - xs.start), np.float32)
    i = 0
    try:
        for a, b in runs:
            for c, arr in enumerate(arrays):
                out[i : i + b - a, c] = arr[a:b, ys, xs]
            i += b - a
    except Exception:  # a damaged chunk: the general path reads it again and names its file
        return None
    return out


def zarr_sources(frames: xr.DataArray) -> list[Any] | None:
    """The Zarr arrays (one per channel) behind unmodified stored frames, else None.

    Opened arrays are cached per (store, array, modification time), so repeated reads
    (one per patch) do not reopen the store while a rewritten store is reopened.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import to_frames
    >>> zarr_sources(to_frames(stgeo.testing.storm_cells(n_times=3, shape=(8, 8)))) is None
    True
    """
    from .store import SOURCE_KEY

    sources = frames.encoding.get(SOURCE_KEY)
    if not sources or len(sources) != frames.shape[1]:
        return None
    try:
        arrays = [
            _open_zarr_array(str(store), str(name), _mtime(store, name)) for store, name in sources
        ]
    except Exception:  # moved, rewritten or not a plain array: use the general path
        return None
    want = (frames.shape[0], *frames.shape[2:])
    if any(tuple(a.shape) != want for a in arrays):
        return None
    return arrays


def _mtime(store: str, name: str) -> int:
    import os

    for meta in ("zarr.json", ".zarray"):
        try:
            return os.stat(os.path.join(store, name, meta)).st_mtime_ns
        except OSError:
            continue
    return 0


@functools.lru_cache(maxsize=64)
def _open_zarr_array(store: str, name: str, mtime: int) -> Any:
    import zarr

    return zarr.open_array(f"{store}/{name}", mode="r")


def _parse_offsets(name: str, offsets: Any) -> np.ndarray:
    try:
        arr = np.asarray(list(offsets))
    except TypeError:
        raise StgeoTypeError(
            f"{name} must be a sequence of integers (time steps), got {offsets!r}"
        ) from None
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise DataValidationError(
                f"{name} must be integers (time steps), got {list(offsets)!r}"
            )
    arr = arr.astype(np.int64)
    if arr.ndim != 1:
        raise DataValidationError(f"{name} must be a flat sequence of integers, got {offsets!r}")
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise DataValidationError(
            f"{name} must be strictly increasing without duplicates, got {arr.tolist()}; "
            f"sort them, e.g. {sorted(set(arr.tolist()))}"
        )
    return arr


def _positions_of(req: pd.DatetimeIndex, time: pd.DatetimeIndex) -> np.ndarray:
    """Positions of the times ``req`` in ``time`` (-1 where absent).

    Events may reuse times (e.g. SEVIR): then only times that occur once can be named.
    """
    if time.is_unique:
        return time.get_indexer(req)
    first = pd.Series(np.arange(len(time))).groupby(time.values).agg(["first", "size"])
    hit = first.reindex(req.values)
    amb = req[(hit["size"] > 1).to_numpy()]
    if len(amb):
        raise DataValidationError(
            f"init_times {list(amb[:3].astype(str))} occur in several events of the "
            "data and are ambiguous; select one event first, e.g. "
            "frames.where(frames.event == e, drop=True)"
        )
    return hit["first"].fillna(-1).to_numpy().astype(np.int64)


def _input_offsets(in_steps, input_offsets) -> np.ndarray:
    """Input offsets from ``in_steps`` or explicit ``input_offsets`` (<= 0, ending with 0)."""
    if input_offsets is None:
        if in_steps is None or in_steps < 1:
            raise DataValidationError(
                "give in_steps >= 1 (number of input frames) or input_offsets "
                f"(e.g. [-2, -1, 0]); got in_steps={in_steps!r}"
            )
        inp = np.arange(-int(in_steps) + 1, 1, dtype=np.int64)
    else:
        inp = _parse_offsets("input_offsets", input_offsets)
        if in_steps is not None and in_steps != inp.size:
            raise DataValidationError(
                f"in_steps={in_steps} contradicts input_offsets={inp.tolist()} "
                f"({inp.size} inputs); give only one of them"
            )
    if inp.size == 0:
        raise DataValidationError("input_offsets is empty; a window needs at least one input")
    if inp[-1] != 0 or inp[0] > 0:
        raise DataValidationError(
            f"input_offsets are relative to t0, the last input time: they must be <= 0 and "
            f"end with 0, got {inp.tolist()}. Shift them, e.g. "
            f"{(inp - inp[-1]).tolist()}"
        )
    return inp


def _target_offsets(out_steps, target_offsets) -> np.ndarray:
    """Target offsets from ``out_steps`` or explicit ``target_offsets`` (>= 1)."""
    if target_offsets is None:
        tgt = np.arange(1, int(out_steps) + 1, dtype=np.int64)
    else:
        tgt = _parse_offsets("target_offsets", target_offsets)
        if out_steps and out_steps != tgt.size:
            raise DataValidationError(
                f"out_steps={out_steps} contradicts target_offsets={tgt.tolist()} "
                f"({tgt.size} targets); give only one of them"
            )
    if tgt.size and tgt[0] < 1:
        raise DataValidationError(
            f"target_offsets must be >= 1 (after t0, the last input time), got {tgt.tolist()}"
        )
    return tgt


def _as_frames(frames: Any) -> xr.DataArray:
    from .adapter import to_frames

    if isinstance(frames, xr.Dataset):
        return to_frames(frames)
    if not isinstance(frames, xr.DataArray):
        raise StgeoTypeError(
            f"Windows needs frames from stgeo.data.to_frames (an xarray DataArray), got "
            f"{type(frames).__name__}"
        )
    if frames.ndim == 4 and frames.dims[:2] == (TIME_DIM, CHANNEL_DIM):
        spatial_dims(frames)
        return frames
    return to_frames(frames)


def _to_timestamp(t: Any, what: str) -> pd.Timestamp | None:
    if t is None:
        return None
    try:
        return pd.Timestamp(t)
    except (TypeError, ValueError):
        raise DataValidationError(f"{what}: cannot read {t!r} as a time") from None


class Windows:
    """Index of valid (input, target) windows over a lazy frame stack.

    Parameters
    ----------
    frames : xarray.DataArray
        ``(time, channel, y, x)`` from :func:`stgeo.data.to_frames` (a Dataset is converted).
    in_steps : int, optional
        Number of consecutive input frames ending at ``t0``; shorthand for
        ``input_offsets=range(-in_steps + 1, 1)``.
    out_steps : int
        Number of target frames after ``t0`` (shorthand for ``target_offsets=1..out_steps``).
    input_offsets : sequence of int, optional
        Input frame offsets relative to ``t0`` in time steps, strictly increasing, ``<= 0``,
        the last one 0 (``t0`` is the last input time), e.g. ``[-336, -48, -2, -1, 0]``.
    target_offsets : sequence of int, optional
        Target frame offsets, strictly increasing, ``>= 1``.
    stride : int
        Keep every ``stride``-th valid ``t0`` of each contiguous segment.
    time_range : (start, end), optional
        Inclusive time bounds (either may be None) the windows must lie in.
    inputs_in_range : bool
        True: every frame of a window lies in ``time_range``. False: only the targets
        (or ``t0`` when there are none or they are not required) must, so inputs may come
        from before the range (e.g. the first test windows use the end of validation).
    init_times : sequence of times, optional
        Explicit ``t0`` times (kept in the given order; ``stride`` is ignored). Each must
        be a time of ``frames`` with a valid window, otherwise a DataValidationError
        names the offending times and why.
    require_targets : bool
        False (inference): a window needs only its inputs; target frames outside the data
        or across a gap read as NaN.
    min_targets : int, optional
        Partial windows (training on short events): a window needs only its first
        ``min_targets`` targets; the later ones read as NaN (no-data, masked out of a
        training loss) where they fall outside the data, across a gap or outside
        ``time_range``, so a window near the end of a training range never reads a frame
        beyond it. Default: every target (``len(target_offsets)``).

    Attributes
    ----------
    init_times : pandas.DatetimeIndex
        ``t0`` of each window.
    t0_index : numpy.ndarray
        Integer position of each ``t0`` along ``frames.time``.
    input_offsets, target_offsets : numpy.ndarray
        The offsets in time steps.
    frames : xarray.DataArray
        The frame stack.

    Raises
    ------
    DataValidationError
        Too few time steps for one window, invalid ``init_times``, bad offsets or stride.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import to_frames
    >>> fr = to_frames(stgeo.testing.crowd_flows(n_days=8, shape=(8, 8)))
    >>> w = Windows(fr, input_offsets=[-336, -48, -1, 0], out_steps=1)   # trend, period, closeness
    >>> len(w), w.inputs([0]).shape
    (47, (1, 4, 2, 8, 8))
    """

    def __init__(
        self,
        frames: xr.DataArray,
        in_steps: int | None = None,
        out_steps: int = 0,
        *,
        input_offsets: Sequence[int] | None = None,
        target_offsets: Sequence[int] | None = None,
        stride: int = 1,
        time_range: tuple[Any, Any] | None = None,
        inputs_in_range: bool = True,
        init_times: Sequence[Any] | None = None,
        require_targets: bool = True,
        min_targets: int | None = None,
    ) -> None:
        self.frames = _as_frames(frames)
        self.input_offsets, self.target_offsets = self._offsets(
            in_steps, out_steps, input_offsets, target_offsets
        )
        self.min_targets = self._min_targets(min_targets, self.target_offsets.size)
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise DataValidationError(f"stride must be an integer >= 1, got {stride!r}")
        self.stride = int(stride)
        self.require_targets = bool(require_targets)
        self.inputs_in_range = bool(inputs_in_range)

        time = pd.DatetimeIndex(np.asarray(self.frames[TIME_DIM].values))
        self.time = time
        n = len(time)
        self.step = time_step(self.frames) if n >= 2 else pd.Timedelta(0)
        event = None
        if EVENT_COORD in self.frames.coords and self.frames[EVENT_COORD].dims == (TIME_DIM,):
            event = np.asarray(self.frames[EVENT_COORD].values)
        self.segment = segments(time, self.step, event) if n else np.zeros(0, np.int64)

        lo, hi = self._range_bounds(time_range, time)
        valid, why = self._validity(n, lo, hi)
        self.time_range = time_range
        if init_times is None:
            cand = np.flatnonzero(valid)
            if self.stride > 1 and cand.size:
                seg = self.segment[cand]
                first = np.searchsorted(seg, seg, side="left")  # first valid t0 of each segment
                rank = np.arange(cand.size) - first
                cand = cand[rank % self.stride == 0]
            if cand.size == 0:
                raise DataValidationError(self._too_few_message(n, lo, hi))
            self.t0_index = cand.astype(np.int64)
        else:
            self.t0_index = self._from_init_times(init_times, time, valid, why)
        self.init_times = time[self.t0_index]

    # -- construction helpers -----------------------------------------------------------
    @staticmethod
    def _offsets(in_steps, out_steps, input_offsets, target_offsets):
        for nm, v in (("in_steps", in_steps), ("out_steps", out_steps)):
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0
            ):
                raise DataValidationError(f"{nm} must be a non-negative integer, got {v!r}")
        inp = _input_offsets(in_steps, input_offsets)
        tgt = _target_offsets(out_steps, target_offsets)
        return inp, tgt

    @staticmethod
    def _min_targets(value: Any, n_targets: int) -> int:
        if value is None:
            return n_targets
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or not 1 <= value <= max(n_targets, 1)
        ):
            raise DataValidationError(
                f"min_targets must be an integer from 1 to the number of targets "
                f"({n_targets}), got {value!r}"
            )
        return int(min(value, n_targets))

    @property
    def partial(self) -> bool:
        """Whether windows may lack their last targets (``min_targets`` below their number)."""
        return self.min_targets < self.target_offsets.size

    @staticmethod
    def _range_bounds(time_range, time):
        if time_range is None:
            return None, None
        if not isinstance(time_range, (tuple, list)) or len(time_range) != 2:
            raise DataValidationError(
                f"time_range must be a (start, end) pair (either may be None), got {time_range!r}"
            )
        lo = _to_timestamp(time_range[0], "time_range start")
        hi = _to_timestamp(time_range[1], "time_range end")
        if lo is not None and hi is not None and lo > hi:
            raise DataValidationError(f"time_range start {lo} is after its end {hi}")
        return lo, hi

    def _ok_offsets(self, n: int, offsets: np.ndarray) -> np.ndarray:
        """Boolean (n,) : all frames ``p + offsets`` exist and share p's segment."""
        p = np.arange(n)
        ok = np.ones(n, dtype=bool)
        for o in offsets:
            q = p + o
            inside = (q >= 0) & (q < n)
            same = np.zeros(n, dtype=bool)
            same[inside] = self.segment[q[inside]] == self.segment[inside]
            ok &= same
        return ok

    def _validity(self, n, lo, hi):
        needed = self.target_offsets[: self.min_targets]
        need_inputs = self._ok_offsets(n, self.input_offsets)
        need_targets = (
            self._ok_offsets(n, needed) if self.require_targets else np.ones(n, dtype=bool)
        )
        in_range = np.ones(n, dtype=bool)
        inr = np.ones(n, dtype=bool)
        if lo is not None or hi is not None:
            t = self.time.values
            if lo is not None:
                inr &= t >= np.datetime64(lo.as_unit("ns").to_datetime64())
            if hi is not None:
                inr &= t <= np.datetime64(hi.as_unit("ns").to_datetime64())
            if self.inputs_in_range:
                offs = self.input_offsets
                if self.require_targets:
                    offs = np.concatenate([offs, needed])
            elif self.require_targets and needed.size:
                offs = needed
            else:
                offs = np.zeros(1, dtype=np.int64)
            p = np.arange(n)
            for o in offs:
                q = p + o
                inside = (q >= 0) & (q < n)
                r = np.zeros(n, dtype=bool)
                r[inside] = inr[q[inside]]
                in_range &= r
        self._time_in_range = inr
        valid = need_inputs & need_targets & in_range
        why = {"inputs": need_inputs, "targets": need_targets, "range": in_range}
        return valid, why

    @property
    def span(self) -> int:
        """Number of consecutive time steps a window covers."""
        offs = np.concatenate([self.input_offsets, self.target_offsets])
        return int(offs.max() - offs.min() + 1)

    def _too_few_message(self, n, lo, hi) -> str:
        seg_len = np.bincount(self.segment).max() if n else 0
        rng = "" if lo is None and hi is None else f" within time_range ({lo}, {hi})"
        return (
            f"too few time steps: no valid window{rng}. A window spans {self.span} consecutive "
            f"steps (input_offsets {self.input_offsets.tolist()}, target_offsets "
            f"{self.target_offsets.tolist()}), but the data have {n} steps and the longest "
            f"contiguous run without a gap or event change is {seg_len}. Use fewer "
            "in_steps/out_steps, a wider time_range, or more data."
        )

    def _invalid_reason(self, p: int, why: dict[str, np.ndarray]) -> str:
        """Why position ``p`` is not a valid window origin (``why`` as made by ``_validity``)."""
        if not why["inputs"][p]:
            return (
                f"its inputs (offsets {self.input_offsets.tolist()}) fall outside the "
                "data or across a gap/event change"
            )
        if not why["targets"][p]:
            return (
                f"its targets (offsets {self.target_offsets.tolist()}) fall outside the "
                "data or across a gap/event change (pass require_targets=False for "
                "inference)"
            )
        return f"the window is not inside time_range {self.time_range}"

    def _from_init_times(self, init_times, time, valid, why) -> np.ndarray:
        try:
            req = pd.DatetimeIndex(pd.to_datetime(list(np.atleast_1d(np.asarray(init_times)))))
        except (TypeError, ValueError) as err:
            raise DataValidationError(f"init_times must be times: {err}") from None
        if len(req) == 0:
            raise DataValidationError("init_times is empty; pass at least one t0 time")
        pos = _positions_of(req, time)
        problems = []
        for t, p in zip(req, pos, strict=False):
            if p < 0:
                problems.append(f"{t} is not a time of the data")
            elif not valid[p]:
                problems.append(f"{t}: {self._invalid_reason(p, why)}")
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise DataValidationError(
                f"{len(problems)} of {len(req)} init_times are not valid window origins: "
                f"{shown}{more}. Valid t0 times have a full window in the data."
            )
        return pos.astype(np.int64)

    # -- access ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.t0_index.size)

    def __repr__(self) -> str:
        return (
            f"<stgeo.Windows {len(self)} windows, input_offsets={self.input_offsets.tolist()}, "
            f"target_offsets={self.target_offsets.tolist()}, frames={dict(self.frames.sizes)}>"
        )

    @property
    def channels(self) -> list[str]:
        """Channel names of the frames."""
        return [str(c) for c in self.frames[CHANNEL_DIM].values]

    def _norm_idx(self, idx: Any) -> tuple[np.ndarray, bool]:
        scalar = isinstance(idx, (int, np.integer)) and not isinstance(idx, bool)
        if isinstance(idx, slice):
            arr = np.arange(len(self))[idx]
        else:
            arr = np.asarray(idx)
            if arr.dtype == bool:
                if arr.shape != (len(self),):
                    raise IndexError(f"boolean index of shape {arr.shape} for {len(self)} windows")
                arr = np.flatnonzero(arr)
            if arr.size == 0:
                arr = arr.astype(np.int64)
            if not np.issubdtype(arr.dtype, np.integer):
                raise StgeoTypeError(f"window indices must be integers, got {idx!r}")
            arr = np.atleast_1d(arr).astype(np.int64).ravel()
        n = len(self)
        if arr.size and (arr.min() < -n or arr.max() >= n):
            raise IndexError(f"window index out of range for {n} windows: {idx!r}")
        return np.where(arr < 0, arr + n, arr), scalar

    def positions(self, idx: Any, which: str = "inputs") -> np.ndarray:
        """Time positions ``(B, T)`` of the input or target frames of windows ``idx``."""
        arr, _ = self._norm_idx(idx)
        offs = self.input_offsets if which == "inputs" else self.target_offsets
        return self.t0_index[arr][:, None] + offs[None, :]

    def available(self, idx: Any) -> np.ndarray:
        """Which target frames of windows ``idx`` hold data, boolean ``(B, T_out)``.

        All True for full windows; with ``min_targets`` (or ``require_targets=False``) a
        target outside the data, across a gap, or (partial windows) outside ``time_range``
        is not available and reads as NaN.

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import to_frames
        >>> fr = to_frames(stgeo.testing.storm_cells(n_times=6, shape=(8, 8)))
        >>> w = Windows(fr, 2, 3, min_targets=1)
        >>> len(w), w.available([0, 3]).astype(int).tolist()
        (4, [[1, 1, 1], [1, 0, 0]])
        """
        arr, _ = self._norm_idx(idx)
        n = self.frames.sizes[TIME_DIM]
        t0 = self.t0_index[arr]
        pos = t0[:, None] + self.target_offsets[None, :]
        inside = (pos >= 0) & (pos < n)
        ok = inside.copy()
        ok[inside] = (
            self.segment[pos[inside]]
            == np.broadcast_to(self.segment[t0][:, None], pos.shape)[inside]
        )
        if self.partial:
            ok[ok] = self._time_in_range[pos[ok]]
        return ok

    def frame_range(self) -> tuple[int, int]:
        """First and last time position any window reads (inputs and available targets).

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import to_frames
        >>> fr = to_frames(stgeo.testing.storm_cells(n_times=6, shape=(8, 8)))
        >>> Windows(fr, 2, 3, time_range=(None, fr.time[3].values), min_targets=1).frame_range()
        (0, 3)
        """
        first = int(self.t0_index.min() + self.input_offsets[0])  # the last input is t0
        pos = self.positions(slice(None), "targets")[self.available(slice(None))]
        return first, int(max(self.t0_index.max(), pos.max(initial=0)))

    def _gather(self, idx: Any, offsets: np.ndarray, optional: bool) -> np.ndarray:
        arr, scalar = self._norm_idx(idx)
        c, h, w = self.frames.shape[1:]
        out_shape = (arr.size, offsets.size, c, h, w)
        if arr.size == 0 or offsets.size == 0:
            out = np.zeros(out_shape, dtype=np.float32)
            return out[0] if scalar else out
        t0 = self.t0_index[arr]
        pos = t0[:, None] + offsets[None, :]
        ok = self.available(arr) if optional else np.ones(pos.shape, dtype=bool)
        uniq = np.unique(pos[ok])
        buf = read_frames(self.frames, uniq)
        if ok.all():
            out = buf[np.searchsorted(uniq, pos)]
        else:
            out = np.full(out_shape, np.nan, dtype=np.float32)
            out[ok] = buf[np.searchsorted(uniq, pos[ok])]
        return out[0] if scalar else out

    def inputs(self, idx: int | Sequence[int] | np.ndarray | slice) -> np.ndarray:
        """Input frames of windows ``idx``.

        Returns
        -------
        numpy.ndarray
            ``(B, T_in, C, H, W)`` float32 for a sequence/array/slice of indices, or
            ``(T_in, C, H, W)`` for a single integer index (numpy indexing rules).

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import to_frames
        >>> w = Windows(to_frames(stgeo.testing.storm_cells(n_times=8, shape=(8, 8))), 3, 1)
        >>> w.inputs([0, 2]).shape, w.inputs(0).shape
        ((2, 3, 1, 8, 8), (3, 1, 8, 8))
        """
        return self._gather(idx, self.input_offsets, optional=False)

    def targets(self, idx: int | Sequence[int] | np.ndarray | slice) -> np.ndarray:
        """Target frames of windows ``idx``: ``(B, T_out, C, H, W)`` float32.

        With ``require_targets=False`` or ``min_targets``, the frames that are not
        :meth:`available` are NaN.

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import to_frames
        >>> w = Windows(to_frames(stgeo.testing.storm_cells(n_times=8, shape=(8, 8))), 3, 2)
        >>> w.targets([1]).shape
        (1, 2, 1, 8, 8)
        """
        optional = self.partial or not self.require_targets
        return self._gather(idx, self.target_offsets, optional=optional)

    def __getitem__(self, idx: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.inputs(idx), self.targets(idx)

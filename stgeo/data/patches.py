"""Windows of many events, random patches (crops) and importance sampling, batched lazily.

:class:`EventWindows` holds the windows of several events (each a :class:`Windows` over its
own frames: windows never cross an event). :class:`EventLoader` batches them, optionally
cropping every window to ``patch_size`` at a random position, reading only the frames and
the rectangle each window needs (from Zarr: only the chunks the crop intersects).

**Crop positions.** Window ``g`` (its global index over all events) is cropped at a
position drawn from a generator seeded with ``(seed, epoch, g)`` in training, and with
``(seed, g)`` for validation loaders (``shuffle=False``), whose crops are therefore the same
every epoch. Positions are uniform over the grid (top-left corner in ``[0, H - h]`` x
``[0, W - w]``), so an epoch, and a resumed epoch, is a pure function of the seed.

**Importance sampling** (:class:`Importance`). A candidate crop is accepted with probability

    p(f) = floor + (1 - floor) * min(1, f / saturation)

where ``f`` is the crop's wet fraction: the fraction of its pixels with a value
``>= threshold`` (physical units, any channel, NaN counted dry) over the window's target
frames, estimated from a coarse map of wet fractions per ``cell x cell`` block of every
frame (the cells the crop overlaps), computed in the same streaming pass as the
normalisation statistics. A rejected candidate is redrawn (same window); after
``max_tries`` rejections the last candidate is kept. So crops with signal are favoured,
while a dry crop is still accepted with probability ``floor``: the share of dry crops is
at least ``floor`` times their share under uniform sampling.

Examples
--------
>>> import stgeo
>>> from stgeo.data import EventLoader, EventWindows, Windows, to_frames
>>> a = to_frames(stgeo.testing.storm_cells(n_times=12, shape=(24, 32), seed=0))
>>> b = to_frames(stgeo.testing.storm_cells(n_times=9, shape=(20, 20), seed=1))
>>> ew = EventWindows([Windows(a, 3, 2), Windows(b, 3, 2)], names=["a", "b"])
>>> len(ew), ew.counts()
(13, {'a': 8, 'b': 5})
>>> x, y = next(iter(EventLoader(ew, batch_size=4, patch_size=(16, 16))))
>>> tuple(x.shape), tuple(y.shape)
((4, 3, 1, 16, 16), (4, 2, 1, 16, 16))
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataValidationError, StgeoTypeError
from .loader import _Background
from .normalize import Normalizer
from .windows import Windows, read_frames

__all__ = [
    "EventLoader",
    "EventWindows",
    "Importance",
    "as_patch_size",
    "crops_per_window",
    "stream_statistics",
    "wet_fraction_map",
]


def as_patch_size(patch_size: Any) -> tuple[int, int] | None:
    """``patch_size`` as ``(h, w)`` (an int means a square), or None.

    Examples
    --------
    >>> as_patch_size(64), as_patch_size([32, 48]), as_patch_size(None)
    ((64, 64), (32, 48), None)
    """
    if patch_size is None:
        return None
    if isinstance(patch_size, (int, np.integer)) and not isinstance(patch_size, bool):
        patch_size = (patch_size, patch_size)
    try:
        h, w = patch_size
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise DataValidationError(
            f"patch_size must be a positive int or a (height, width) pair of them, e.g. "
            f"(128, 128); got {patch_size!r}"
        )
    return int(h), int(w)


@dataclass(frozen=True)
class Importance:
    """Importance sampling of crop positions (see the module docstring for the rule).

    Parameters
    ----------
    threshold : float
        A pixel is wet when its value is ``>= threshold`` (physical units, before
        normalisation), e.g. 0.1 mm/h.
    floor : float
        Acceptance probability of a dry crop, in (0, 1]: dry crops still appear.
    saturation : float
        Wet fraction from which a crop is always accepted, in (0, 1].
    cell : int
        Pixels per side of the coarse cells of the wet-fraction map.
    max_tries : int
        Candidates per window before the last one is kept.

    Examples
    --------
    >>> imp = Importance(threshold=0.1, floor=0.1, saturation=0.2)
    >>> [round(float(imp.acceptance(f)), 3) for f in (0.0, 0.1, 0.5)]
    [0.1, 0.55, 1.0]
    """

    threshold: float
    floor: float = 0.1
    saturation: float = 0.2
    cell: int = 16
    max_tries: int = 20

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t):
            raise DataValidationError(f"importance threshold must be a finite number, got {t!r}")
        for name in ("floor", "saturation"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise DataValidationError(f"importance {name} must be in (0, 1], got {v!r}")
        for name in ("cell", "max_tries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise DataValidationError(f"importance {name} must be an integer >= 1, got {v!r}")

    def acceptance(self, wet: float | np.ndarray) -> float | np.ndarray:
        """Acceptance probability of a crop of wet fraction ``wet``."""
        return self.floor + (1.0 - self.floor) * np.minimum(1.0, np.asarray(wet) / self.saturation)

    @classmethod
    def coerce(cls, value: Any, thresholds: Sequence[float] = ()) -> Importance | None:
        """An :class:`Importance` from ``None``/``False``, ``True`` (the first of
        ``thresholds``, e.g. the catalog's), a mapping of its fields, or an instance.

        Examples
        --------
        >>> Importance.coerce(True, [0.1, 1.0]).threshold
        0.1
        >>> Importance.coerce({"threshold": 1, "floor": 0.2}).floor
        0.2
        """
        if value is None or value is False:
            return None
        if isinstance(value, cls):
            return value
        if value is True:
            if not thresholds:
                raise DataValidationError(
                    "importance=True takes its threshold from the data's catalog thresholds, "
                    "but there are none; give importance={'threshold': 0.1, 'floor': 0.1}"
                )
            return cls(threshold=float(thresholds[0]))
        if isinstance(value, Mapping):
            unknown = set(value) - {"threshold", "floor", "saturation", "cell", "max_tries"}
            if unknown or "threshold" not in value:
                raise DataValidationError(
                    "importance must have a 'threshold' and optionally 'floor', 'saturation', "
                    f"'cell', 'max_tries'; got {dict(value)}"
                )
            return cls(**dict(value))
        raise StgeoTypeError(
            "importance must be True, None, a stgeo.data.Importance or a mapping such as "
            f"{{'threshold': 0.1, 'floor': 0.1}}, got {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a run's recorded settings."""
        return {
            "threshold": float(self.threshold),
            "floor": float(self.floor),
            "saturation": float(self.saturation),
            "cell": int(self.cell),
            "max_tries": int(self.max_tries),
        }


def wet_fraction_map(block: np.ndarray, threshold: float, cell: int) -> np.ndarray:
    """Fraction of wet pixels (``>= threshold`` in any channel) per ``cell x cell`` block.

    Parameters
    ----------
    block : numpy.ndarray
        ``(time, channel, H, W)`` frames in physical units.
    threshold : float
        Wet threshold.
    cell : int
        Cell size; edge cells are partial (their fraction is over their own pixels).

    Returns
    -------
    numpy.ndarray
        ``(time, ceil(H / cell), ceil(W / cell))`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 1, 4, 6), "f4"); x[0, 0, :2, :2] = 5
    >>> wet_fraction_map(x, 1.0, 2)[0].tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    wet = (block >= threshold).any(axis=1).astype(np.float32)  # NaN >= t is False: dry
    t, h, w = wet.shape
    ny, nx = -(-h // cell), -(-w // cell)
    pad = np.zeros((t, ny * cell, nx * cell), np.float32)
    pad[:, :h, :w] = wet
    cnt = np.zeros((ny * cell, nx * cell), np.float32)
    cnt[:h, :w] = 1
    s = pad.reshape(t, ny, cell, nx, cell).sum(axis=(2, 4))
    n = cnt.reshape(ny, cell, nx, cell).sum(axis=(1, 3))
    return (s / n).astype(np.float32)


def crops_per_window(
    grids: Sequence[tuple[int, int]], patch_size: tuple[int, int], policy: int | str
) -> list[int]:
    """How many crops of every window of each event an epoch draws.

    ``policy`` an integer: that many for every event. ``"area"``: as many as the event's
    grid holds patches, ``ceil(H * W / (h * w))``, so that crops are drawn uniformly over
    space and time: a continental composite of few frames weighs by its area, not by its
    handful of windows.

    Examples
    --------
    >>> crops_per_window([(4400, 3800), (640, 710), (256, 256)], (256, 256), "area")
    [256, 7, 1]
    >>> crops_per_window([(64, 64)], (16, 16), 2)
    [2]
    """
    if policy == "area":
        ph, pw = patch_size
        return [max(1, -(-int(h) * int(w) // (ph * pw))) for h, w in grids]
    if isinstance(policy, bool) or not isinstance(policy, (int, np.integer)) or policy < 1:
        raise DataValidationError(
            f"crops_per_window must be an integer >= 1 or 'area', got {policy!r}"
        )
    return [int(policy)] * len(grids)


def stream_statistics(
    frames: Any,
    start: int,
    stop: int,
    normalizer: Normalizer | None,
    importance: Importance | None = None,
    block_bytes: int = 32 * 2**20,
) -> tuple[int, np.ndarray] | None:
    """One streaming pass over frames ``[start, stop)``: normaliser statistics and wet maps.

    Frames are read a few at a time (about ``block_bytes``), added to ``normalizer`` with
    :meth:`Normalizer.partial_fit` (unless it is None: a normaliser fixed in advance) and,
    with ``importance``, reduced to the coarse wet-fraction maps of
    :func:`wet_fraction_map`. Memory stays at one block; with neither nothing is read.

    Returns
    -------
    (int, numpy.ndarray) or None
        ``(start, maps)`` with maps ``(stop - start, ny, nx)``, or None without importance.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import Normalizer, to_frames
    >>> fr = to_frames(stgeo.testing.storm_cells(n_times=8, shape=(16, 16)))
    >>> n = Normalizer()
    >>> first, maps = stream_statistics(fr, 0, 6, n, Importance(threshold=0.1, cell=8))
    >>> first, maps.shape, n.fitted
    (0, (6, 2, 2), True)
    """
    frame_bytes = max(1, int(np.prod(frames.shape[1:])) * 4)
    step = max(1, block_bytes // frame_bytes)
    channels = [str(c) for c in frames["channel"].values]
    maps = []
    if normalizer is None and importance is None:
        return None
    for a in range(start, stop, step):
        block = read_frames(frames, np.arange(a, min(a + step, stop)))
        if normalizer is not None:
            normalizer.partial_fit(block, channels)
        if importance is not None:
            maps.append(wet_fraction_map(block, importance.threshold, importance.cell))
    if importance is None:
        return None
    return start, np.concatenate(maps)


class EventWindows:
    """The windows of several events, indexed globally (event 0's first, then event 1's...).

    Parameters
    ----------
    windows : sequence of Windows
        One per event, each over its own frames.
    names : sequence of str
        Event names (same length).
    select : numpy.ndarray of int, optional
        Keep only these global indices (e.g. a rank's shard).
    repeats : sequence of int, optional
        Per event, how many times each of its windows is drawn per epoch (each time with
        its own crop: a repeat has its own global index), e.g. from
        :func:`crops_per_window`. Default 1.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import Windows, to_frames
    >>> fr = to_frames(stgeo.testing.storm_cells(n_times=8, shape=(8, 8)))
    >>> ew = EventWindows([Windows(fr, 2, 1), Windows(fr.isel(time=slice(4)), 2, 1)], ["a", "b"])
    >>> ew.locate(np.array([0, 6, 7]))
    (array([0, 1, 1]), array([0, 0, 1]))
    """

    def __init__(
        self,
        windows: Sequence[Windows],
        names: Sequence[str],
        select: np.ndarray | None = None,
        repeats: Sequence[int] | None = None,
    ) -> None:
        self.windows = list(windows)
        self.names = [str(n) for n in names]
        if not self.windows or len(self.names) != len(self.windows):
            raise DataValidationError("EventWindows needs one name per Windows (at least one)")
        reps = [1] * len(self.windows) if repeats is None else [int(r) for r in repeats]
        if len(reps) != len(self.windows) or min(reps) < 1:
            raise DataValidationError(
                f"repeats needs one integer >= 1 per event ({len(self.windows)}), got {repeats!r}"
            )
        self.repeats = reps
        self._lengths = np.array([len(w) for w in self.windows], dtype=np.int64)
        sizes = self._lengths * np.array(reps, dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)])
        total = int(self._starts[-1])
        self.index = np.arange(total, dtype=np.int64) if select is None else np.asarray(select)
        t_in = {w.input_offsets.size for w in self.windows}
        t_out = {w.target_offsets.size for w in self.windows}
        chans = {w.frames.shape[1] for w in self.windows}
        if len(t_in) != 1 or len(t_out) != 1 or len(chans) != 1:
            raise DataValidationError(
                "every event needs the same number of input/target frames and channels; got "
                + ", ".join(
                    f"{n}: {w.input_offsets.size} in, {w.target_offsets.size} out, "
                    f"{w.frames.shape[1]} channels"
                    for n, w in zip(self.names, self.windows, strict=True)
                )
            )

    def __len__(self) -> int:
        return int(self.index.size)

    def __repr__(self) -> str:
        return f"<stgeo.EventWindows {len(self)} windows over {len(self.windows)} events>"

    def locate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Event number and window number within the event of positions ``idx``."""
        g = self.index[np.asarray(idx, dtype=np.int64)]
        ev = np.searchsorted(self._starts, g, side="right") - 1
        return ev, (g - self._starts[ev]) % self._lengths[ev]

    def global_ids(self) -> np.ndarray:
        """The global window ids (over all events) of the positions ``0..len-1``."""
        return self.index

    def counts(self) -> dict[str, int]:
        """Windows per event (after ``select``; a window repeated ``r`` times counts ``r``)."""
        ev, _ = self.locate(np.arange(len(self)))
        return {n: int((ev == i).sum()) for i, n in enumerate(self.names)}

    def grids(self) -> dict[str, tuple[int, int]]:
        """``(H, W)`` of every event."""
        return {n: tuple(w.frames.shape[2:]) for n, w in zip(self.names, self.windows, strict=True)}

    def subset(self, positions: np.ndarray) -> EventWindows:
        """The windows at ``positions`` (e.g. one rank's shard)."""
        return EventWindows(
            self.windows, self.names, self.index[np.asarray(positions)], self.repeats
        )


class EventLoader:
    """Batches of (cropped) windows of many events as float32 torch tensors.

    Parameters
    ----------
    windows : EventWindows
        The windows (each exactly once per epoch).
    batch_size : int
        Windows per batch.
    shuffle : bool
        Random window order and crops per ``(seed, epoch)`` (training). False: windows in
        order and crops fixed per ``seed`` (validation).
    seed : int
        Seed of the order and the crops.
    drop_last : bool
        Drop the last incomplete batch.
    normalizer : Normalizer, optional
        Applied to inputs and targets (NaN stays NaN: no-data).
    prefetch : int
        Batches prepared ahead by a background thread; 0 reads in the calling thread.
    patch_size : int or (int, int), optional
        Crop every window to this size at a random position (module docstring). None: whole
        frames, which then must have one grid.
    importance : Importance, optional
        Favour crops with signal (training only; needs ``wet_maps``).
    wet_maps : sequence of (int, numpy.ndarray), optional
        Per event, the first time position and the ``(time, ny, nx)`` map of
        :func:`wet_fraction_map` covering the targets of its windows.
    workers : int
        Threads reading the windows of a batch (1: the prefetch thread reads them; more
        may help on machines with idle cores, Zarr decompression releases the GIL).

    Raises
    ------
    DataValidationError
        Different grids without ``patch_size``; a patch larger than an event's grid.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import Windows, to_frames
    >>> fr = to_frames(stgeo.testing.storm_cells(n_times=10, shape=(16, 16)))
    >>> ew = EventWindows([Windows(fr, 2, 1)], ["a"])
    >>> ld = EventLoader(ew, batch_size=3, patch_size=8, seed=1)
    >>> ld.set_epoch(1)
    >>> [b.tolist() for b in ld.batch_indices()][0], ld.crop_origins([0, 1]).shape
    ([5, 2, 6], (2, 2))
    """

    def __init__(
        self,
        windows: EventWindows,
        batch_size: int = 16,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        normalizer: Normalizer | None = None,
        prefetch: int = 2,
        patch_size: int | tuple[int, int] | None = None,
        importance: Importance | None = None,
        wet_maps: Sequence[tuple[int, np.ndarray]] | None = None,
        workers: int = 1,
    ) -> None:
        if not isinstance(windows, EventWindows):
            raise StgeoTypeError(
                f"EventLoader needs stgeo.data.EventWindows, got {type(windows).__name__}"
            )
        self.windows = windows
        for name, v, lo in (("batch_size", batch_size, 1), ("prefetch", prefetch, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise DataValidationError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.batch_size, self.prefetch = int(batch_size), int(prefetch)
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise DataValidationError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = int(workers)
        self._executor = None
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.normalizer = normalizer
        self.patch_size = as_patch_size(patch_size)
        self.importance = importance if shuffle else None
        self.wet_maps = list(wet_maps) if wet_maps is not None else None
        if self.importance is not None and self.wet_maps is None:
            raise DataValidationError("importance sampling needs the wet-fraction maps")
        self.epoch = 0
        self._check_grids()
        if self.drop_last and len(windows) < self.batch_size:
            raise DataValidationError(
                f"only {len(windows)} windows, fewer than batch_size={self.batch_size} with "
                "drop_last=True: an epoch would have no batch"
            )

    def _check_grids(self) -> None:
        grids = self.windows.grids()
        if self.patch_size is None:
            if len(set(grids.values())) > 1:
                listed = ", ".join(f"{n}: {h}x{w}" for n, (h, w) in grids.items())
                raise DataValidationError(
                    f"the events have different grids ({listed}); give patch_size=(h, w) to "
                    "train on crops of that size"
                )
            return
        ph, pw = self.patch_size
        small = [f"{n} ({h}x{w})" for n, (h, w) in grids.items() if h < ph or w < pw]
        if small:
            raise DataValidationError(
                f"patch_size {ph}x{pw} is larger than the grid of event(s) {', '.join(small)}; "
                "use a smaller patch_size or leave those events out"
            )

    def __len__(self) -> int:
        n = len(self.windows)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __repr__(self) -> str:
        return (
            f"<stgeo.EventLoader {len(self)} batches of {self.batch_size}, patch_size="
            f"{self.patch_size}, shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}>"
        )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: order and crops are a pure function of ``(seed, epoch)``."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise DataValidationError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def batch_indices(self) -> list[np.ndarray]:
        """Positions (into the windows) of every batch of the current epoch (no data read)."""
        n = len(self.windows)
        order = np.arange(n)
        if self.shuffle:
            ss = np.random.SeedSequence([abs(self.seed), self.seed < 0, self.epoch])
            order = np.random.default_rng(ss).permutation(n)
        out = [order[a : a + self.batch_size] for a in range(0, n, self.batch_size)]
        if self.drop_last and out and out[-1].size < self.batch_size:
            out.pop()
        return out

    # -- crops --------------------------------------------------------------------------
    def _rng(self, gid: int) -> np.random.Generator:
        key = [abs(self.seed), self.seed < 0, int(gid)]
        key = [*key, self.epoch] if self.shuffle else [*key, 2**32 - 1]  # fixed for validation
        return np.random.default_rng(np.random.SeedSequence(key))

    def _wet_of_window(self, ev: int, k: int) -> np.ndarray:
        w = self.windows.windows[ev]
        first, maps = self.wet_maps[ev]
        pos = w.t0_index[k] + w.target_offsets - first
        if w.partial:
            pos = pos[w.available([k])[0]]
        return maps[pos].mean(axis=0)

    def _crop_of(self, ev: int, k: int, gid: int) -> tuple[int, int]:
        h, w = self.windows.windows[ev].frames.shape[2:]
        ph, pw = self.patch_size  # type: ignore[misc]
        rng = self._rng(gid)
        imp = self.importance
        if imp is None:
            return int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        wet = self._wet_of_window(ev, k)
        c = imp.cell
        for _ in range(imp.max_tries):
            y0, x0 = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
            cells = wet[y0 // c : -(-(y0 + ph) // c), x0 // c : -(-(x0 + pw) // c)]
            if rng.random() < float(imp.acceptance(float(cells.mean()))):
                break
        return y0, x0

    def crop_origins(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Top-left ``(y0, x0)`` of the crops of windows ``positions`` this epoch, ``(n, 2)``.

        ``(0, 0)`` for every window without ``patch_size``.
        """
        positions = np.asarray(positions, dtype=np.int64)
        if self.patch_size is None:
            return np.zeros((positions.size, 2), dtype=np.int64)
        ev, k = self.windows.locate(positions)
        gid = self.windows.index[positions]
        return np.array(
            [self._crop_of(int(e), int(i), int(g)) for e, i, g in zip(ev, k, gid, strict=True)],
            dtype=np.int64,
        ).reshape(-1, 2)

    # -- reading ------------------------------------------------------------------------
    def _read_window(self, ev: int, k: int, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self.windows.windows[ev]
        t0 = w.t0_index[k]
        n_in = w.input_offsets.size
        have = np.ones(n_in + w.target_offsets.size, dtype=bool)
        if w.partial:  # targets past the end of the event or its range: NaN (no-data)
            have[n_in:] = w.available([k])[0]
        pos = t0 + np.concatenate([w.input_offsets, w.target_offsets])
        region = None
        if self.patch_size is not None:
            (ph, pw), (y0, x0) = self.patch_size, origin
            region = (slice(int(y0), int(y0) + ph), slice(int(x0), int(x0) + pw))
        buf = read_frames(w.frames, pos[have], region=region)  # sorted and unique
        if not have.all():
            full = np.full((have.size, *buf.shape[1:]), np.nan, dtype=buf.dtype)
            full[have] = buf
            buf = full
        return buf[:n_in], buf[n_in:]

    def read_batch(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets ``(B, T, C, h, w)`` float32 of windows ``positions`` (raw units).

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import Windows, to_frames
        >>> fr = to_frames(stgeo.testing.storm_cells(n_times=6, shape=(8, 8)))
        >>> ld = EventLoader(EventWindows([Windows(fr, 2, 1)], ["a"]), 2, patch_size=4)
        >>> [a.shape for a in ld.read_batch(np.array([0, 1]))]
        [(2, 2, 1, 4, 4), (2, 1, 1, 4, 4)]
        """
        positions = np.asarray(positions, dtype=np.int64)
        ev, k = self.windows.locate(positions)
        origins = self.crop_origins(positions)
        jobs = [(int(e), int(i), o) for e, i, o in zip(ev, k, origins, strict=True)]
        if self.workers > 1 and len(jobs) > 1:
            parts = list(self._pool().map(lambda j: self._read_window(*j), jobs))
        else:
            parts = [self._read_window(*j) for j in jobs]
        return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])

    def _pool(self) -> Any:
        if getattr(self, "_executor", None) is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="stgeo-crop")
        return self._executor

    def _batches(self) -> Iterator[tuple[Any, Any]]:
        import torch

        norm = self.normalizer
        for b in self.batch_indices():
            x, y = self.read_batch(b)
            if norm is not None:
                norm.transform_inplace(x)
                norm.transform_inplace(y)
            yield torch.from_numpy(x), torch.from_numpy(y)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """Yield ``(inputs, targets)`` float32 tensors ``(B, T, C, h, w)``, prefetched."""
        if self.prefetch == 0:
            yield from self._batches()
            return
        stop = threading.Event()
        bg = _Background(self._batches, self.prefetch, stop, "stgeo-patches")
        try:
            yield from bg
        finally:
            stop.set()
            bg.close()

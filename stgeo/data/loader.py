"""Shuffled, chunk-aware batching of windows into torch tensors with background prefetch.

How an epoch is read (memory stays bounded by a few blocks, never the store):

1. Windows are grouped into *blocks* by the position of their ``t0`` along time; a block
   covers ``block_size`` time steps, a whole number of the store's time chunks.
2. The block order is shuffled (per ``(seed, epoch)``), and consecutive ``shuffle_blocks``
   blocks of that order form a *group*.
3. A background thread reads the frames a group needs (its blocks plus the few frames
   after them that windows at block edges reach, or further back for period/trend
   offsets) with one read of a few contiguous slices; a second one shuffles the group's
   windows and cuts batches from that buffer into a queue of ``prefetch`` batches while
   the next group is read. At most two groups are in memory.

Every valid window appears exactly once per epoch and the order is a pure function of
``(seed, epoch)``; :meth:`BatchLoader.batch_indices` gives it without reading data.

Examples
--------
>>> import stgeo
>>> from stgeo.data import BatchLoader, Windows, to_frames
>>> ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16))
>>> loader = BatchLoader(Windows(to_frames(ds), in_steps=4, out_steps=2), batch_size=8)
>>> x, y = next(iter(loader))
>>> tuple(x.shape), tuple(y.shape), len(loader)
((8, 4, 1, 16, 16), (8, 2, 1, 16, 16), 5)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..conventions import TIME_DIM
from ..errors import DataValidationError, StgeoTypeError
from .normalize import Normalizer
from .windows import Windows, read_frames

__all__ = ["BatchLoader"]

_TARGET_BLOCK_BYTES = 4 * 2**20
_TARGET_GROUP_BYTES = 16 * 2**20
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _positive_int(name: str, v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise DataValidationError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


class BatchLoader:
    """Iterate shuffled batches of windows as float32 torch tensors.

    Parameters
    ----------
    windows : Windows
        The windows to serve (each exactly once per epoch).
    batch_size : int
        Windows per batch.
    shuffle : bool
        Shuffle blocks and the windows within each group of blocks (training). False:
        windows in index order (evaluation).
    seed : int
        Seed of the shuffle; the order is a function of ``(seed, epoch)``.
    drop_last : bool
        Drop the last incomplete batch.
    normalizer : Normalizer, optional
        Applied to inputs and targets (fit it on the training split).
    prefetch : int
        Batches prepared ahead by a background thread; 0 reads in the calling thread.
    block_size : int, optional
        Time steps per block (default: whole time chunks of the store, about 4 MiB and at least 8
        window spans).
    shuffle_blocks : int, optional
        Blocks per shuffle group: larger shuffles better and holds more frames in memory
        (default: as many as fit in about 16 MiB, at least 2).

    Notes
    -----
    Memory is bounded by about two groups of frames (``2 * shuffle_blocks * (block_size +
    span - 1)`` frames) plus ``prefetch + 2`` batches, whatever the size of the store.
    Reads use dask's local threaded scheduler even when a distributed Client is active.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import Windows, to_frames
    >>> w = Windows(to_frames(stgeo.testing.storm_cells(n_times=20, shape=(8, 8))), 3, 1)
    >>> loader = BatchLoader(w, batch_size=4, seed=1)
    >>> loader.set_epoch(2)
    >>> sum(len(b) for b in loader.batch_indices()) == len(w)
    True
    """

    def __init__(
        self,
        windows: Windows,
        batch_size: int = 16,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        normalizer: Normalizer | None = None,
        prefetch: int = 2,
        block_size: int | None = None,
        shuffle_blocks: int | None = None,
    ) -> None:
        if not isinstance(windows, Windows):
            raise StgeoTypeError(
                f"BatchLoader needs a stgeo.data.Windows, got {type(windows).__name__}"
            )
        if normalizer is not None and not isinstance(normalizer, Normalizer):
            raise StgeoTypeError(
                f"normalizer must be a stgeo.data.Normalizer, got {type(normalizer).__name__}"
            )
        if normalizer is not None and normalizer.method != "none" and not normalizer.fitted:
            raise DataValidationError("the normalizer is not fitted; call .fit(train_frames)")
        self.windows = windows
        self.batch_size = _positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise DataValidationError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.normalizer = normalizer
        self.prefetch = _positive_int("prefetch", prefetch, minimum=0)
        self.block_size = (
            self._default_block_size()
            if block_size is None
            else _positive_int("block_size", block_size)
        )
        if shuffle_blocks is None:
            block_bytes = self.block_size * self._frame_bytes()
            shuffle_blocks = max(2, _TARGET_GROUP_BYTES // max(1, block_bytes))
        self.shuffle_blocks = _positive_int("shuffle_blocks", shuffle_blocks)
        self.epoch = 0
        if self.drop_last and len(windows) < self.batch_size:
            raise DataValidationError(
                f"only {len(windows)} windows, fewer than batch_size={self.batch_size} with "
                "drop_last=True: an epoch would have no batch"
            )

    def _frame_bytes(self) -> int:
        return max(1, int(np.prod(self.windows.frames.shape[1:])) * 4)

    def _default_block_size(self) -> int:
        fr = self.windows.frames
        data = fr.variable.data
        chunk_t = fr.sizes[TIME_DIM]
        chunks = getattr(data, "chunks", None)
        if chunks is not None and len(chunks) and len(chunks[0]):
            chunk_t = int(max(chunks[0]))
        frame_bytes = self._frame_bytes()
        n_chunks = max(1, _TARGET_BLOCK_BYTES // max(1, chunk_t * frame_bytes))
        # a block reads the span - 1 frames after it, i.e. decodes one more chunk than it
        # covers: make blocks many windows long so that this costs little (16 spans rather
        # than 8: +12% windows/s on the radar pipeline benchmark for ~60 MiB more buffer)
        n_chunks = max(n_chunks, -(-16 * self.windows.span // chunk_t))
        size = n_chunks * chunk_t
        if chunks is None:  # in memory: no chunk structure to follow
            size = max(1, _TARGET_BLOCK_BYTES // frame_bytes)
        return int(max(size, 1))

    def __len__(self) -> int:
        n = len(self.windows)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __repr__(self) -> str:
        return (
            f"<stgeo.BatchLoader {len(self)} batches of {self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, epoch={self.epoch}, block_size={self.block_size}, "
            f"shuffle_blocks={self.shuffle_blocks}>"
        )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: the shuffle order is a pure function of ``(seed, epoch)``.

        Iterating does not advance the epoch; call this at the start of each epoch.
        """
        self.epoch = _positive_int("epoch", epoch, minimum=0)

    # -- the plan ------------------------------------------------------------------------
    def _groups(self) -> list[np.ndarray]:
        """Window indices of each read group, in emission order."""
        n = len(self.windows)
        if n == 0:
            return []
        if not self.shuffle:
            step = max(self.batch_size, self.block_size * self.shuffle_blocks)
            return [np.arange(a, min(a + step, n)) for a in range(0, n, step)]
        rng = np.random.default_rng(
            np.random.SeedSequence([abs(self.seed), self.seed < 0, self.epoch])
        )
        bid = self.windows.t0_index // self.block_size
        order = np.argsort(bid, kind="stable")
        ubid, starts = np.unique(bid[order], return_index=True)
        members = np.split(order, starts[1:])
        perm = rng.permutation(len(ubid))
        groups = []
        for a in range(0, len(perm), self.shuffle_blocks):
            g = np.concatenate([members[i] for i in perm[a : a + self.shuffle_blocks]])
            groups.append(g[rng.permutation(g.size)])
        return groups

    def batch_indices(self) -> list[np.ndarray]:
        """Window indices of every batch of the current epoch (no data read).

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import Windows, to_frames
        >>> w = Windows(to_frames(stgeo.testing.storm_cells(n_times=10, shape=(8, 8))), 2, 1)
        >>> [b.tolist() for b in BatchLoader(w, 3, shuffle=False).batch_indices()]
        [[0, 1, 2], [3, 4, 5], [6, 7]]
        """
        groups = self._groups()
        if not groups:
            return []
        flat = np.concatenate(groups)
        out = [flat[a : a + self.batch_size] for a in range(0, flat.size, self.batch_size)]
        if self.drop_last and out and out[-1].size < self.batch_size:
            out.pop()
        return out

    # -- reading -------------------------------------------------------------------------
    def _read_group(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frames needed by windows ``idx`` and where each window's frames sit in them."""
        w = self.windows
        t0 = w.t0_index[idx]
        n = w.frames.sizes[TIME_DIM]
        pin = t0[:, None] + w.input_offsets[None, :]
        ptg = t0[:, None] + w.target_offsets[None, :]
        ok_t = np.ones(ptg.shape, dtype=bool)
        if not w.require_targets and ptg.size:
            inside = (ptg >= 0) & (ptg < n)
            ok_t = inside.copy()
            ok_t[inside] = (
                w.segment[ptg[inside]] == np.broadcast_to(w.segment[t0][:, None], ptg.shape)[inside]
            )
        uniq = np.unique(np.concatenate([pin.ravel(), ptg[ok_t]]))
        buf = read_frames(w.frames, uniq)
        if not ok_t.all():  # one extra NaN frame stands for target frames that do not exist
            buf = np.concatenate([buf, np.full((1, *buf.shape[1:]), np.nan, np.float32)])
        loc_in = np.searchsorted(uniq, pin)
        loc_tg = np.full(ptg.shape, uniq.size, dtype=np.int64)
        loc_tg[ok_t] = np.searchsorted(uniq, ptg[ok_t])
        return buf, loc_in, loc_tg

    def _read_groups(self, release: threading.Semaphore | None = None) -> Iterator[tuple]:
        for g in self._groups():
            if release is not None:
                release.acquire()
            yield (g, *self._read_group(g))

    def _check_normalizer_channels(self, c: int) -> None:
        norm = self.normalizer
        if norm is not None and norm.method != "none" and len(norm._scale_shift()[0]) != c:
            raise DataValidationError(
                f"the normalizer was fitted on {len(norm._scale_shift()[0])} channel(s) "
                f"{norm.channels} but the windows have {c}: {self.windows.channels}"
            )

    def _batches(
        self, groups: Iterator[tuple], done: threading.Semaphore | None = None
    ) -> Iterator[tuple[Any, Any]]:
        import torch

        bs = self.batch_size
        c, h, wd = self.windows.frames.shape[1:]
        t_in, t_out = self.windows.input_offsets.size, self.windows.target_offsets.size
        norm = self.normalizer
        self._check_normalizer_channels(c)

        def finish(x: np.ndarray, y: np.ndarray):
            # numpy (single-threaded, in place) rather than torch ops: torch's intra-op
            # threads compete with the training step and degrade badly on busy machines
            if norm is not None:
                norm.transform_inplace(x)
                norm.transform_inplace(y)
            return torch.from_numpy(x), torch.from_numpy(y)

        carry_x: list[np.ndarray] = []
        carry_y: list[np.ndarray] = []
        carried = 0
        emitted, total = 0, len(self)
        for g, buf, loc_in, loc_tg in groups:
            a = 0
            if carried:
                take = min(bs - carried, g.size)
                carry_x.append(np.take(buf, loc_in[:take], axis=0))
                carry_y.append(np.take(buf, loc_tg[:take], axis=0))
                carried += take
                a = take
                if carried == bs:
                    yield finish(np.concatenate(carry_x), np.concatenate(carry_y))
                    emitted += 1
                    carry_x, carry_y, carried = [], [], 0
            while g.size - a >= bs:
                yield finish(
                    np.take(buf, loc_in[a : a + bs], axis=0),
                    np.take(buf, loc_tg[a : a + bs], axis=0),
                )
                emitted += 1
                a += bs
            if a < g.size:
                carry_x.append(np.take(buf, loc_in[a:], axis=0))
                carry_y.append(np.take(buf, loc_tg[a:], axis=0))
                carried += g.size - a
            del buf
            if done is not None:
                done.release()
        if carried and emitted < total:
            x = np.concatenate(carry_x) if carry_x else np.empty((0, t_in, c, h, wd), np.float32)
            y = np.concatenate(carry_y) if carry_y else np.empty((0, t_out, c, h, wd), np.float32)
            yield finish(x, y)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """Yield ``(inputs, targets)``: float32 tensors ``(B, T_in, C, H, W)``, ``(B, T_out, ...)``.

        With ``prefetch > 0`` two background threads run ahead of the caller: one reads the
        next group of blocks while the other cuts batches from the current one (at most
        two groups in memory), into a queue of ``prefetch`` batches.
        """
        if self.prefetch == 0:
            yield from self._batches(self._read_groups())
            return
        stop = threading.Event()
        slots = _StoppableSemaphore(2, stop)  # groups alive: one being cut, one being read
        groups = _Background(lambda: self._read_groups(slots), 1, stop, "stgeo-read")
        batches = _Background(
            lambda: self._batches(iter(groups), slots), self.prefetch, stop, "stgeo-batch"
        )
        try:
            yield from batches
        finally:
            stop.set()
            batches.close()
            groups.close()


class _StoppableSemaphore:
    """A semaphore whose ``acquire`` gives up (raising _Stopped) once ``stop`` is set."""

    def __init__(self, n: int, stop: threading.Event) -> None:
        self._sem = threading.Semaphore(n)
        self._stop = stop

    def acquire(self) -> None:
        while not self._sem.acquire(timeout=0.05):
            if self._stop.is_set():
                raise _Stopped

    def release(self) -> None:
        self._sem.release()


class _Stopped(Exception):
    pass


class _Background:
    """Run a generator in a daemon thread, handing its items over through a bounded queue."""

    def __init__(self, make, maxsize: int, stop: threading.Event, name: str) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = stop
        self._th = threading.Thread(target=self._work, args=(make,), name=name, daemon=True)
        self._th.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, make) -> None:
        try:
            for item in make():
                if not self._put(item):
                    return
            self._put(_DONE)
        except _Stopped:
            return
        except BaseException as exc:  # forwarded to the consumer
            self._put(_Failure(exc))

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._q.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._th.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._q.get_nowait()
            except queue.Empty:
                pass
            self._th.join(timeout=0.05)

"""Peak resident memory of processes (e.g. Dask workers), sampled from a background thread."""

from __future__ import annotations

import threading
import time

__all__ = ["RssSampler"]


class RssSampler(threading.Thread):
    """Sample the resident set size of the processes ``pids`` until :meth:`stop`.

    Needs ``psutil`` (installed with the ``distributed`` extra).

    Parameters
    ----------
    pids : list of int
        Process ids, e.g. ``list(client.run(os.getpid).values())`` for Dask workers.
    every : float
        Seconds between samples.

    Attributes
    ----------
    peak_total : int
        Largest sum of the processes' RSS seen (bytes).
    peak_each : int
        Largest RSS any single process reached (bytes).

    Examples
    --------
    >>> import os
    >>> s = RssSampler([os.getpid()], every=0.01)
    >>> s.start()
    >>> s.stop().peak_each > 0
    True
    """

    def __init__(self, pids: list[int], every: float = 0.05) -> None:
        super().__init__(daemon=True)
        from .._optional import import_optional

        psutil = import_optional("psutil")
        self.procs = [psutil.Process(p) for p in pids]
        self.every = every
        self.peak_total = 0
        self.peak_each = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        """Take one sample now."""
        total = 0
        for p in self.procs:
            try:
                rss = p.memory_info().rss
            except Exception:  # the process went away
                continue
            total += rss
            self.peak_each = max(self.peak_each, rss)
        self.peak_total = max(self.peak_total, total)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            time.sleep(self.every)

    def stop(self) -> RssSampler:
        """Stop sampling (after a last sample) and return ``self``."""
        self._halt.set()
        self.join()
        self.sample()
        return self

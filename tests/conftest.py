"""Fixtures shared by several test packages."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def writer_elsewhere(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[None]]:
    """``with writer_elsewhere(dest, code):`` another process holds ``dest``'s writer lock
    (:func:`stgeo.data.safety.writer_lock`) for 1.5 s, then runs ``code`` (Python, with
    ``dest`` a :class:`~pathlib.Path`) still holding it; the block starts once the lock is
    held, and the process must have succeeded when the block ends."""

    @contextlib.contextmanager
    def hold(dest: Path, code: str) -> Iterator[None]:
        held = tmp_path / f"held-{time.monotonic_ns()}"
        script = (
            "import sys, time, pathlib\n"
            "from stgeo.data.safety import writer_lock\n"
            "dest = pathlib.Path(sys.argv[1])\n"
            "with writer_lock(dest):\n"
            "    pathlib.Path(sys.argv[2]).touch()\n"
            "    time.sleep(1.5)\n"
            f"    exec({code!r})\n"
        )
        other = subprocess.Popen([sys.executable, "-c", script, str(dest), str(held)])
        try:
            deadline = time.monotonic() + 60
            while not held.exists():
                assert other.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            yield
        finally:
            assert other.wait(timeout=60) == 0

    return hold

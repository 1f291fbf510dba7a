"""Weights fetched by URL into the cache, verified against their sha256 checksum.

A remote artefact is one safetensors file (its spec rides in the file's metadata). It is
downloaded once to ``<cache_dir>/pretrained/<name>/<sha256>/model.safetensors`` (the cache
dir is the ``cache_dir`` option, ``$STGEO_CACHE_DIR`` or ``~/.cache/stgeo``): streamed to a
hidden temporary file next to it, hashed while it arrives, and renamed into place only when
the checksum matches, so an interrupted or damaged download never looks complete. A cached
file is verified again before every use.

Examples
--------
>>> import hashlib, os, tempfile, stgeo
>>> from pathlib import Path
>>> from stgeo.pretrained.fetch import fetch
>>> src = Path(tempfile.mkdtemp()) / "w.bin"
>>> _ = src.write_bytes(b"weights")
>>> sha = hashlib.sha256(b"weights").hexdigest()
>>> with stgeo.set_options(cache_dir=tempfile.mkdtemp()):
...     p = fetch(src.as_uri(), sha, name="demo")
>>> p.read_bytes()
b'weights'
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from ..errors import DownloadError, ModelFileError
from ..options import get_options

__all__ = ["cached_path", "fetch", "sha256_of"]

WEIGHTS_NAME = "model.safetensors"
_BLOCK = 1 << 20


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in blocks.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"")
    >>> sha256_of(p)[:12]
    'e3b0c44298fc'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def cached_path(name: str, sha256: str) -> Path:
    """Where the weights of artefact ``name`` with checksum ``sha256`` are cached."""
    return Path(get_options()["cache_dir"]) / "pretrained" / name / sha256 / WEIGHTS_NAME


def _manual_hint(url: str, dest: Path, sha256: str) -> str:
    return (
        f"download {url} yourself (e.g. `curl -L -o model.safetensors {url}`), check that its "
        f"sha256 is {sha256} (`sha256sum model.safetensors`) and place it at {dest}"
    )


def _download(url: str, tmp: Path, timeout: float) -> str:
    """Stream ``url`` into ``tmp``; return the sha256 of what arrived."""
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "stgeo"})
    with urllib.request.urlopen(req, timeout=timeout) as r, open(tmp, "wb") as f:
        while block := r.read(_BLOCK):
            h.update(block)
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def fetch(url: str, sha256: str, *, name: str, timeout: float = 60.0) -> Path:
    """The local path of the weights at ``url``: downloaded into the cache if needed.

    Parameters
    ----------
    url : str
        ``https://``, ``http://`` or ``file://`` URL of the safetensors file.
    sha256 : str
        Its expected sha256 hex digest; anything else is refused and not kept.
    name : str
        The artefact's name (the cache sub-folder).
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    pathlib.Path
        The verified cached file.

    Raises
    ------
    DownloadError
        The URL cannot be reached (offline, moved): the message names the URL and where to
        place a manually downloaded copy.
    ModelFileError
        The downloaded (or cached) file does not match the checksum.
    """
    dest = cached_path(name, sha256)
    if dest.is_file():
        found = sha256_of(dest)
        if found == sha256:
            return dest
        raise ModelFileError(
            f"the cached weights {dest} of pretrained model {name!r} are damaged (sha256 "
            f"{found}, expected {sha256}); delete the file and try again (it is downloaded anew)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        try:
            got = _download(url, tmp, timeout)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise DownloadError(
                f"cannot download the weights of pretrained model {name!r} from {url} "
                f"({reason}). Offline? Then " + _manual_hint(url, dest, sha256)
            ) from None
        if got != sha256:
            raise ModelFileError(
                f"the file downloaded from {url} for pretrained model {name!r} has sha256 "
                f"{got}, expected {sha256}: refused (not kept). The file at the URL changed or "
                "the download was corrupted; try again, or " + _manual_hint(url, dest, sha256)
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest

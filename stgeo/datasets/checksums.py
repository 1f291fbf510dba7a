"""Input verification: SHA-256 lists (``SHA256SUMS``) and MD5 side files (``FILE.md5``).

Examples
--------
>>> import hashlib, os, tempfile
>>> from stgeo.datasets.checksums import sha256_file
>>> p = os.path.join(tempfile.mkdtemp(), "a.bin")
>>> _ = open(p, "wb").write(b"abc")
>>> sha256_file(p) == hashlib.sha256(b"abc").hexdigest()
True
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataValidationError

__all__ = ["sha256_file", "verify_checksums"]


def _digest(path: str | os.PathLike, algorithm: str, block: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (read in 1 MiB blocks)."""
    return _digest(path, "sha256", block)


def _find_sums(start: Path, levels: int = 6) -> list[Path]:
    out = []
    d = start if start.is_dir() else start.parent
    for _ in range(levels):
        f = d / "SHA256SUMS"
        if f.is_file():
            out.append(f)
        if d.parent == d:
            break
        d = d.parent
    return out


def _listed(files: Sequence[Path], root: Path) -> dict[Path, str]:
    """Absolute path -> expected SHA-256 from the SHA256SUMS files near ``root`` and ``files``."""
    sums_files = _find_sums(root)
    for parent in dict.fromkeys(f.parent for f in files):
        sums_files += [s for s in _find_sums(parent) if s not in sums_files]
    known: dict[Path, str] = {}
    for sums in sums_files:
        for line in sums.read_text(errors="replace").splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                continue
            rel = parts[1].lstrip("*").strip()
            known.setdefault((sums.parent / rel).resolve(), parts[0].lower())
    return known


def _check_sha256(f: Path, expected: str | None) -> int:
    if expected is None:
        return 0
    got = sha256_file(f)
    if got != expected:
        raise DataValidationError(
            f"checksum mismatch for {f}: SHA-256 {got} but SHA256SUMS lists {expected}. "
            "The file is corrupted, truncated or not the published one; fetch it again "
            "(or pass verify=False to convert it anyway)."
        )
    return 1


def _check_md5(f: Path) -> int:
    side = f.with_name(f.name + ".md5")
    if not side.is_file():
        return 0
    text = side.read_text()
    expected = text.split()[0].strip().lower() if text.split() else ""
    if len(expected) != 32:
        return 0
    got = _digest(f, "md5")
    if got != expected:
        raise DataValidationError(
            f"checksum mismatch for {f}: MD5 {got} but {side.name} says {expected}; "
            "the file is corrupted or truncated (verify=False skips this check)."
        )
    return 1


def verify_checksums(files: Sequence[str | os.PathLike], *, root: str | os.PathLike) -> int:
    """Verify ``files`` against ``SHA256SUMS`` files found near them.

    ``SHA256SUMS`` files are looked for in ``root``, in each file's folder, and in their
    parents (up to 6 levels).

    A ``SHA256SUMS`` file lists ``<sha256>  <path relative to its folder>`` per line (the
    ``sha256sum`` format). A ``FILE.md5`` side file holding an MD5 is also checked. Files
    not listed anywhere are not checked.

    Returns
    -------
    int
        Number of checks passed.

    Raises
    ------
    DataValidationError
        A listed file's checksum differs (corrupted, truncated or replaced file).

    Examples
    --------
    >>> import os, tempfile, hashlib
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.bin")
    >>> _ = open(p, "wb").write(b"abc")
    >>> line = hashlib.sha256(b"abc").hexdigest() + "  ./a.bin\\n"
    >>> _ = open(os.path.join(d, "SHA256SUMS"), "w").write(line)
    >>> verify_checksums([p], root=d)
    1
    """
    paths = [Path(f).resolve() for f in files]
    known = _listed(paths, Path(root).resolve())
    return sum(_check_sha256(f, known.get(f)) + _check_md5(f) for f in paths)

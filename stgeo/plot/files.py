"""Figure files: the checks every ``path=`` of :mod:`stgeo.plot` makes before drawing.

A figure (PNG, PDF, GIF, ...) carries no mark of who wrote it, so an existing file is
replaced only when asked (``overwrite=True``), and a folder is never taken for a figure
path. The suffix picks the format; an unknown suffix or a non-positive ``dpi`` is refused
before anything is drawn.

Examples
--------
>>> import os, tempfile, stgeo
>>> from stgeo.plot.files import check_figure_path
>>> folder = tempfile.mkdtemp()
>>> check_figure_path(os.path.join(folder, "map.png")).name
'map.png'
>>> try:
...     check_figure_path(folder)
... except stgeo.errors.OutputExistsError as err:
...     print("give a file name" in str(err))
True
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..conventions import check_bool
from ..errors import DataValidationError, OutputExistsError, StgeoTypeError

__all__ = ["check_figure_path", "figure_formats", "save_figure"]

logger = logging.getLogger("stgeo.plot")


def figure_formats() -> list[str]:
    """The file suffixes (without the dot) matplotlib can write a figure as.

    Examples
    --------
    >>> "png" in figure_formats() and "pdf" in figure_formats()
    True
    """
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def _check_dpi(dpi: Any) -> None:
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real):
        raise StgeoTypeError(f"dpi must be a positive number, got {dpi!r}")
    if not dpi > 0:
        raise DataValidationError(f"dpi must be a positive number (e.g. 100), got {dpi!r}")


def check_figure_path(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    dpi: Any = None,
    formats: Sequence[str] | None = None,
) -> Path:
    """Check that a figure can be written at ``path`` without destroying anything.

    Parameters
    ----------
    path : str or path
        The figure file; its suffix picks the format.
    overwrite : bool
        Replace an existing file (a figure carries no mark of who wrote it, so any file
        there is replaced).
    dpi : number, optional
        Resolution to check (must be > 0).
    formats : sequence of str, optional
        Accepted suffixes without the dot (default: :func:`figure_formats`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputExistsError
        ``path`` is an existing folder, or an existing file and ``overwrite`` is False.
    DataValidationError
        ``path`` ends with a path separator, has no suffix or one that is not a supported
        format, lies in a "folder" that is a file, or ``dpi`` is not positive.
    StgeoTypeError
        ``path`` is not a str or path, ``overwrite`` not a bool or ``dpi`` not a number.

    Examples
    --------
    >>> import os, tempfile, stgeo
    >>> from stgeo.plot.files import check_figure_path
    >>> p = os.path.join(tempfile.mkdtemp(), "map.xyz")
    >>> try:
    ...     check_figure_path(p)
    ... except stgeo.errors.DataValidationError as err:
    ...     print(str(err).split(";")[0])
    cannot write a figure as '.xyz'
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise StgeoTypeError(f"path must be a non-empty str or path (a file name), got {path!r}")
    check_bool(overwrite, "overwrite")
    if dpi is not None:
        _check_dpi(dpi)
    text = os.fspath(path)
    p = Path(text)
    allowed = list(formats) if formats is not None else figure_formats()
    default = "png" if "png" in allowed else allowed[0]
    if p.is_dir():
        raise OutputExistsError(
            f"{p} is a folder; give a file name, e.g. {p / f'figure.{default}'}"
        )
    if text.endswith(tuple(s for s in (os.sep, os.altsep) if s)):
        raise DataValidationError(
            f"path {text!r} ends with a path separator (a folder); give a file name, "
            f"e.g. {p / f'figure.{default}'}"
        )
    suffix = p.suffix[1:].lower()
    if suffix not in allowed:
        what = f"as '.{suffix}'" if suffix else f"without a suffix ({p.name!r})"
        raise DataValidationError(
            f"cannot write a figure {what}; the file suffix picks the format, supported: "
            f"{', '.join('.' + f for f in allowed)} (e.g. {p.with_suffix('.' + default).name})"
        )
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise DataValidationError(f"cannot write {p}: {parent} is a file, not a folder")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise OutputExistsError(f"{p} exists; pass overwrite=True to replace it")
    return p


def save_figure(
    fig: Any, path: str | os.PathLike, *, dpi: Any = 100, overwrite: bool = False
) -> Path:
    """Write ``fig`` to ``path`` (checked with :func:`check_figure_path`; missing folders
    are created). Without ``overwrite`` the file is created exclusively, so a file that
    appeared while the figure was drawn is not replaced either.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import os, tempfile, matplotlib.pyplot as plt
    >>> from stgeo.plot.files import save_figure
    >>> fig = plt.figure()
    >>> save_figure(fig, os.path.join(tempfile.mkdtemp(), "f.png")).suffix
    '.png'
    >>> plt.close(fig)
    """
    p = check_figure_path(path, overwrite=overwrite, dpi=dpi)
    p.parent.mkdir(parents=True, exist_ok=True)
    fmt = p.suffix[1:].lower()
    if overwrite:
        fig.savefig(p, dpi=dpi, format=fmt)
    else:
        try:
            fh = open(p, "xb")  # closed below; removed if drawing fails
        except FileExistsError:
            raise OutputExistsError(f"{p} exists; pass overwrite=True to replace it") from None
        try:
            with fh:
                fig.savefig(fh, dpi=dpi, format=fmt)
        except BaseException:
            p.unlink(missing_ok=True)  # the half-written file is ours
            raise
    logger.info("figure written to %s", p)
    return p

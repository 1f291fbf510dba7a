"""Lazy imports of optional dependencies with errors naming the extra to install."""

from __future__ import annotations

import contextlib
import importlib
import io
from types import ModuleType

from .errors import DependencyError

_EXTRAS = {
    "pysteps": "radar",
    "cv2": "radar",
    "distributed": "distributed",
    "psutil": "distributed",
    "cartopy": "(core dependency) cartopy",
}


def import_optional(name: str) -> ModuleType:
    """Import ``name`` or raise :class:`DependencyError` naming the stgeo extra that provides it.

    pysteps prints its configuration path on import; that output is swallowed here.

    Examples
    --------
    >>> import_optional("math").sqrt(4.0)
    2.0
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return importlib.import_module(name)
    except ImportError as err:
        top = name.split(".")[0]
        extra = _EXTRAS.get(top, top)
        raise DependencyError(
            f"{top} is needed for this feature but could not be imported ({err}); install it with "
            f"`pip install 'stgeo[{extra}]'`"
        ) from err

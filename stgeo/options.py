"""Global options: ``stgeo.set_options`` (also a context manager) and ``get_options``.

This is the only global state in stgeo.

Examples
--------
>>> import stgeo
>>> with stgeo.set_options(device="cpu", progress=False):
...     stgeo.get_options()["device"]
'cpu'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .errors import DataValidationError, StgeoTypeError

__all__ = ["get_options", "resolve_device", "set_options", "show_progress"]

_DEVICES = ("auto", "cpu", "cuda", "mps")
_UNSET: Any = object()


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "stgeo")


OPTIONS: dict[str, Any] = {
    "device": "auto",
    "progress": None,  # None: show bars only on a TTY
    "cache_dir": None,  # None: $STGEO_CACHE_DIR or ~/.cache/stgeo
    "catalog_paths": (),  # extra catalog files or folders
    "autocast": "auto",  # "auto" | "bf16" | "off"
    "map_download": True,  # maps may fetch Natural Earth through cartopy when none is on disk
}


def _device(value: Any) -> str:
    if not isinstance(value, str):
        raise StgeoTypeError(f"device must be a string such as 'auto' or 'cuda:0', got {value!r}")
    if value.split(":")[0] not in _DEVICES:
        raise DataValidationError(
            f"device {value!r} is not supported; use one of {', '.join(_DEVICES)} "
            "(optionally with an index, e.g. 'cuda:1')"
        )
    return value


def _progress(value: Any) -> bool | None:
    if value not in (None, True, False):
        raise StgeoTypeError("progress must be True, False or None (auto: only on a terminal)")
    return value


def _catalog_paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        value = (value,)
    return tuple(str(v) for v in value)


def _autocast(value: Any) -> str:
    if value not in ("auto", "bf16", "off"):
        raise DataValidationError("autocast must be 'auto', 'bf16' or 'off'")
    return value


def _map_download(value: Any) -> bool:
    if not isinstance(value, bool):
        raise StgeoTypeError(f"map_download must be True or False, got {value!r}")
    return value


_CHECKS = {
    "device": _device,
    "progress": _progress,
    "cache_dir": lambda v: None if v is None else str(v),
    "catalog_paths": _catalog_paths,
    "autocast": _autocast,
    "map_download": _map_download,
}


def _validate(key: str, value: Any) -> Any:
    if key not in OPTIONS:
        raise DataValidationError(
            f"unknown option {key!r}; valid options are {', '.join(sorted(OPTIONS))}"
        )
    return _CHECKS[key](value)


class set_options:
    """Set stgeo options globally or, used with ``with``, for a block.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    progress : bool or None
        Show tqdm progress bars. ``None`` (default) shows them only on a terminal.
    cache_dir : str or path
        Where downloaded or generated data go (default ``$STGEO_CACHE_DIR`` or
        ``~/.cache/stgeo``).
    catalog_paths : sequence of str
        Extra catalog YAML files or folders searched by :func:`stgeo.open_dataset`.
    autocast : {"auto", "bf16", "off"}
        Mixed precision for models: ``"auto"`` uses bf16 where the device supports it.
    map_download : bool
        When no coastline/border data are on disk, let maps download Natural Earth once
        through cartopy's own downloader into its cache (``cartopy.config["data_dir"]``);
        False never touches the network.

    Examples
    --------
    >>> import stgeo
    >>> stgeo.set_options(progress=False)  # doctest: +ELLIPSIS
    <stgeo.options.set_options object at ...>
    >>> with stgeo.set_options(device="cpu"):
    ...     pass
    """

    def __init__(
        self,
        *,
        device: Any = _UNSET,
        progress: Any = _UNSET,
        cache_dir: Any = _UNSET,
        catalog_paths: Any = _UNSET,
        autocast: Any = _UNSET,
        map_download: Any = _UNSET,
        **unknown: Any,
    ) -> None:
        given = {
            "device": device,
            "progress": progress,
            "cache_dir": cache_dir,
            "catalog_paths": catalog_paths,
            "autocast": autocast,
            "map_download": map_download,
            **unknown,
        }
        self.old: dict[str, Any] = {}
        new = {k: _validate(k, v) for k, v in given.items() if v is not _UNSET}
        for k, v in new.items():
            self.old[k] = OPTIONS[k]
            OPTIONS[k] = v

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: object) -> None:
        OPTIONS.update(self.old)


def get_options() -> dict[str, Any]:
    """Return a copy of the current options, with defaults resolved.

    Examples
    --------
    >>> import stgeo
    >>> sorted(stgeo.get_options())
    ['autocast', 'cache_dir', 'catalog_paths', 'device', 'map_download', 'progress']
    """
    out = dict(OPTIONS)
    if out["cache_dir"] is None:
        out["cache_dir"] = os.environ.get("STGEO_CACHE_DIR") or _default_cache_dir()
    return out


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: the argument, else the option, else "stderr is a TTY"."""
    if progress is not None:
        return bool(progress)
    if OPTIONS["progress"] is not None:
        return bool(OPTIONS["progress"])
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def resolve_device(device: str | None = None):  # -> torch.device
    """Return a ``torch.device`` for ``device`` (default: the ``device`` option).

    ``"auto"`` picks CUDA, then MPS, then CPU.

    Examples
    --------
    >>> from stgeo.options import resolve_device
    >>> resolve_device("cpu").type
    'cpu'
    """
    import torch

    dev = _validate("device", device if device is not None else OPTIONS["device"])
    if dev == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise DataValidationError(
            f"device {dev!r} was requested but CUDA is not available; use device='auto' or 'cpu'"
        )
    return torch.device(dev)

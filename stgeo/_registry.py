"""One generic registry for models, metrics, catalogs and augmentations.

Names are case-insensitive, entries may have aliases, listing accepts shell-style
wildcards, unknown names raise :class:`~stgeo.errors.UnknownNameError` with a
"did you mean" suggestion, and third-party packages plug in through entry points
(group ``stgeo.<kind>``, e.g. ``stgeo.models``).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from .errors import StgeoTypeError, UnknownNameError

T = TypeVar("T")

__all__ = ["Entry", "Registry"]


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its canonical name, aliases and free-form metadata."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A case-insensitive name -> object registry.

    Parameters
    ----------
    kind : str
        What is registered ("model", "metric", ...), used in messages and as the
        entry-point group suffix (``stgeo.<kind>s``).

    Examples
    --------
    >>> reg = Registry("widget")
    >>> @reg.register("blue-widget", aliases=["bw"])
    ... def make_blue():
    ...     return "blue"
    >>> reg.get("BW")()
    'blue'
    >>> reg.list("blue*")
    ['blue-widget']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = False

    # -- registration -------------------------------------------------------------------
    def add(
        self,
        name: str,
        obj: T,
        *,
        aliases: list[str] | tuple[str, ...] = (),
        description: str = "",
        overwrite: bool = False,
        **meta: Any,
    ) -> T:
        """Register ``obj`` under ``name`` (and ``aliases``); return ``obj``."""
        if not isinstance(name, str) or not name:
            raise StgeoTypeError(f"{self.kind} names must be non-empty strings, got {name!r}")
        key = name.lower()
        keys = [key, *(a.lower() for a in aliases)]
        if not overwrite:
            for k in keys:
                if k in self._entries or k in self._aliases:
                    raise ValueError(
                        f"a {self.kind} named {k!r} is already registered; "
                        "pass overwrite=True to replace it"
                    )
        if not description and getattr(obj, "__doc__", None):
            description = (obj.__doc__ or "").strip().splitlines()[0]
        self._entries[key] = Entry(key, obj, tuple(a.lower() for a in aliases), description, meta)
        for a in aliases:
            self._aliases[a.lower()] = key
        return obj

    def register(
        self, name: str, *, aliases: list[str] | tuple[str, ...] = (), **meta: Any
    ) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(obj: T) -> T:
            return self.add(name, obj, aliases=aliases, **meta)

        return deco

    # -- lookup ---------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=f"stgeo.{self.kind}s"):
            if ep.name.lower() in self._entries:
                continue
            self.add(ep.name, ep.load())

    def entry(self, name: str) -> Entry[T]:
        """Return the :class:`Entry` for ``name`` (case-insensitive, aliases allowed)."""
        if not isinstance(name, str):
            raise StgeoTypeError(f"{self.kind} name must be a string, got {type(name).__name__}")
        key = name.lower()
        if key not in self._entries and key not in self._aliases:
            self._load_entry_points()
        key = self._aliases.get(key, key)
        try:
            return self._entries[key]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def get(self, name: str) -> T:
        """Return the object registered as ``name``."""
        return self.entry(name).obj

    def unknown_message(self, name: str) -> str:
        """The "unknown name" message: valid names and the closest matches."""
        self._load_entry_points()
        names = sorted(self._entries)
        pool = names + sorted(self._aliases)
        close = difflib.get_close_matches(name.lower(), pool, n=3, cutoff=0.5)
        close = list(dict.fromkeys(self._aliases.get(c, c) for c in close))
        msg = f"unknown {self.kind} {name!r}."
        if close:
            msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
        msg += f" Valid {self.kind} names: {', '.join(names) or '(none registered)'}."
        return msg

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted canonical names matching the shell-style ``pattern`` (case-insensitive)."""
        self._load_entry_points()
        pat = pattern.lower()
        return sorted(
            n
            for n, e in self._entries.items()
            if fnmatch.fnmatchcase(n, pat) or any(fnmatch.fnmatchcase(a, pat) for a in e.aliases)
        )

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._load_entry_points()
        key = name.lower()
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def remove(self, name: str) -> None:
        """Unregister ``name`` and its aliases."""
        e = self.entry(name)
        del self._entries[e.name]
        for a in e.aliases:
            self._aliases.pop(a, None)


MODELS: Registry[Any] = Registry("model")
METRICS: Registry[Any] = Registry("metric")
CATALOGS: Registry[Any] = Registry("catalog")
AUGMENTATIONS: Registry[Any] = Registry("augmentation")
RECIPES: Registry[Any] = Registry("recipe")

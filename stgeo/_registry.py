"""One generic registry for models, metrics, catalogs, augmentations and recipes.

Names are case-insensitive, entries may have aliases, listing accepts shell-style
wildcards, unknown names raise :class:`~stgeo.errors.UnknownNameError` with a
"did you mean" suggestion, and third-party packages plug in through entry points
(group ``stgeo.<kind>s``, e.g. ``stgeo.models``), loaded lazily on the first lookup that
needs them (a name not registered yet, a listing).

An entry point names an object (``"mypkg.models:build"``). Loading it imports its module;
when that import registers the object itself (with ``stgeo.register_model``,
``stgeo.register_metric``, ...), nothing more happens, otherwise the loaded object is
registered under the entry point's name. A registry may handle what its entry points load
differently (catalogs: a path to YAML files) with ``on_entry_point``.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from .errors import StgeoTypeError, StgeoWarning, UnknownNameError

T = TypeVar("T")

__all__ = [
    "AUGMENTATIONS",
    "CATALOGS",
    "METRICS",
    "METRIC_FAMILIES",
    "MODELS",
    "RECIPES",
    "Entry",
    "Registry",
]

_DEFAULT_GROUP = object()


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
        What is registered ("model", "metric", ...), used in messages and, by default, for
        the entry-point group ``stgeo.<kind>s``.
    group : str or None, optional
        The entry-point group to load lazily (default ``stgeo.<kind>s``; None: none).
    on_entry_point : callable, optional
        ``on_entry_point(registry, name, obj)`` registers what an entry point loaded
        (default: :meth:`add` it under the entry point's name unless loading registered it).

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

    def __init__(
        self,
        kind: str,
        *,
        group: Any = _DEFAULT_GROUP,
        on_entry_point: Callable[[Registry[T], str, Any], None] | None = None,
    ) -> None:
        self.kind = kind
        self.group: str | None = f"stgeo.{kind}s" if group is _DEFAULT_GROUP else group
        self.on_entry_point = on_entry_point
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._sources: list[Callable[[Registry[T]], None]] = []
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
    def add_source(self, source: Callable[[Registry[T]], None]) -> None:
        """Add a lazy source: ``source(registry)`` registers entries on the first lookup.

        Sources run once, in the order added, before the entry points are loaded (e.g. the
        catalogs shipped with stgeo, read only when a catalog is first looked up).
        """
        if self._entry_points_loaded:
            source(self)
        else:
            self._sources.append(source)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for source in self._sources:
            source(self)
        if self.group is None:
            return
        for ep in metadata.entry_points(group=self.group):
            if self.on_entry_point is None and ep.name.lower() in self._entries:
                continue  # registered already (stgeo's own name wins); do not import it
            try:
                obj = ep.load()
            except Exception as err:  # a broken plugin must not break every lookup
                warnings.warn(
                    f"entry point {ep.name!r} of group {self.group!r} could not be loaded "
                    f"({type(err).__name__}: {err}); it is skipped. Fix or uninstall the "
                    "package that provides it.",
                    StgeoWarning,
                    stacklevel=4,
                )
                continue
            handler = self.on_entry_point or _add_loaded
            handler(self, ep.name, obj)

    def registered(self, obj: object) -> bool:
        """Whether ``obj`` itself is registered (under any name)."""
        return any(e.obj is obj for e in self._entries.values())

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

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Canonical names closest to ``name`` (aliases count), best first."""
        self._load_entry_points()
        pool = sorted(self._entries) + sorted(self._aliases)
        close = difflib.get_close_matches(name.lower(), pool, n=n, cutoff=0.5)
        return list(dict.fromkeys(self._aliases.get(c, c) for c in close))

    def unknown_message(self, name: str) -> str:
        """The "unknown name" message: valid names and the closest matches."""
        close = self.suggest(name)
        names = sorted(self._entries)
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

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (sources and entry points loaded)."""
        self._load_entry_points()
        new: Registry[T] = Registry(self.kind, group=self.group, on_entry_point=self.on_entry_point)
        new._entries = dict(self._entries)
        new._aliases = dict(self._aliases)
        new._entry_points_loaded = True
        return new


def _add_loaded(registry: Registry[Any], name: str, obj: Any) -> None:
    """Default entry-point handler: register ``obj`` unless importing it already did."""
    if name.lower() in registry._entries or registry.registered(obj):
        return
    registry.add(name, obj)


MODELS: Registry[Any] = Registry("model")
METRICS: Registry[Any] = Registry("metric")
CATALOGS: Registry[Any] = Registry("catalog")
AUGMENTATIONS: Registry[Any] = Registry("augmentation")
RECIPES: Registry[Any] = Registry("recipe")
#: metric families (how a family's mergeable sums are computed); no entry-point group of
#: their own: a plugin's family is registered when its ``stgeo.metrics`` entry point loads
METRIC_FAMILIES: Registry[Any] = Registry("metric family", group=None)

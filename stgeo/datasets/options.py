"""``KEY=VALUE`` options: the one parser of the command line, the recipes and catalog builds.

:func:`parse_options` turns ``["n_times=60", "shape=32,32"]`` (``--option`` arguments) or a
mapping (keyword arguments, a catalog entry's ``recipe`` block) into a dict of typed values.
With declared types it coerces each value and rejects unknown keys with a "did you mean";
without, it reads JSON literals (``4``, ``0.5``, ``true``, ``[16, 32]``) and keeps anything
else as text.

Option types: ``str``, ``int``, ``float``, ``bool`` (``true/false``, ``yes/no``, ``on/off``,
``1/0``), ``tuple`` or ``list`` (comma-separated, or a JSON list), :func:`date` (any
date/time pandas reads, kept as the text given) or any callable taking the value.

Examples
--------
>>> from stgeo.datasets.options import date, parse_options
>>> parse_options(["n=3", "names=a, b", "fast=yes", "start=2019-06-01"],
...               {"n": int, "names": tuple, "fast": bool, "start": date})
{'n': 3, 'names': ('a', 'b'), 'fast': True, 'start': '2019-06-01'}
>>> parse_options(["hidden=[16, 32]", "progress=false", "name=simvp"])
{'hidden': [16, 32], 'progress': False, 'name': 'simvp'}
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import date as _date
from typing import Any

import numpy as np

from ..errors import StgeoTypeError, UnknownNameError

__all__ = ["OptionTypes", "date", "parse_options"]

#: declared option types: key -> type (or converter); one type for every key; or None (infer)
OptionTypes = Mapping[str, Any] | type | Callable[[Any], Any] | None

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def date(value: Any) -> str:
    """A date/time option: checked to be readable by pandas, passed on as the text given.

    Date and datetime objects become ISO text. Keeping the user's text keeps a store's
    recorded options (and so its identity) exactly as typed.

    Examples
    --------
    >>> date(" 2019-01-01 "), date("2019-03-05T02:00")
    ('2019-01-01', '2019-03-05T02:00')
    >>> import datetime
    >>> date(datetime.date(2019, 1, 1))
    '2019-01-01'
    """
    import pandas as pd

    if isinstance(value, _date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip()
    pd.Timestamp(text)  # raises ValueError on text that is not a date
    return text


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def _to_number(typ: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)) or value is None:
            raise ValueError(value)
        return typ(value)

    return convert


def _to_str(value: Any) -> str:
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    raise ValueError(value)


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return parsed
        return [v.strip() for v in text.split(",") if v.strip()]
    if isinstance(value, Iterable):
        return list(value)
    raise ValueError(value)


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_number(int),
    float: _to_number(float),
    str: _to_str,
    tuple: lambda v: tuple(_items(v)),
    list: _items,
}

_HINTS = {
    bool: " (true/false, yes/no, on/off or 1/0)",
    tuple: " (comma-separated list)",
    list: " (comma-separated list)",
    date: " (e.g. 2019-01-01 or 2019-01-01T12:00)",
}


def _type_name(typ: Any) -> str:
    return getattr(typ, "__name__", str(typ))


def coerce(key: str, value: Any, typ: Any, *, owner: str = "") -> Any:
    """Convert ``value`` of option ``key`` to ``typ``; ``None`` stays ``None``.

    Raises
    ------
    StgeoTypeError
        The value cannot be read as ``typ``; the message names the key and the type.
    """
    if value is None:
        return None
    convert = _CONVERTERS.get(typ, typ)
    try:
        return convert(value)
    except (TypeError, ValueError, json.JSONDecodeError):
        where = f"{owner}: " if owner else ""
        raise StgeoTypeError(
            f"{where}option {key}={value!r}: expected {_type_name(typ)}{_HINTS.get(typ, '')}"
        ) from None


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k).strip().replace("-", "_"): v for k, v in items.items()}
    if isinstance(items, str):
        items = [items]
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise StgeoTypeError(
                f"an option must be written KEY=VALUE (e.g. n_times=60), got {item!r}"
            )
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _unknown(key: str, declared: Mapping[str, Any], owner: str) -> UnknownNameError:
    close = difflib.get_close_matches(key, list(declared), n=2)
    msg = f"{owner or 'this command'} has no option {key!r}."
    if close:
        msg += f" Did you mean {' or '.join(map(repr, close))}?"
    msg += f" Its options: {', '.join(sorted(declared)) or '(none)'}."
    return UnknownNameError(msg)


def parse_options(
    items: Iterable[str] | Mapping[str, Any] | None,
    types: OptionTypes = None,
    *,
    owner: str = "",
) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` options into a dict of typed values.

    Parameters
    ----------
    items : iterable of str, or mapping
        ``"KEY=VALUE"`` strings (the command line's ``--option``) or a mapping of keys to
        values (keyword arguments, a catalog entry's recipe options). Keys may use ``-``
        for ``_``; ``None`` means no options.
    types : mapping, type or None
        Declared types (key -> ``str``, ``int``, ``float``, ``bool``, ``tuple``, ``list``,
        :func:`date` or a converter): values are coerced and unknown keys are refused. A
        single type applies to every key (``str`` keeps the text for a later, typed
        parse). ``None`` infers: JSON literals (numbers, ``true``/``false``, ``null``,
        lists) are read as such, anything else stays text; mapping values are kept.
    owner : str
        What the options belong to, e.g. ``"recipe 'sevir'"``, used in error messages.

    Returns
    -------
    dict
        Key (``-`` replaced by ``_``) -> value.

    Raises
    ------
    StgeoTypeError
        An item is not ``KEY=VALUE``, or a value cannot be read as its declared type.
    UnknownNameError
        A key is not declared (the message suggests the closest and lists the valid keys).

    Examples
    --------
    >>> parse_options(["n_times=60", "shape=32,32"], {"n_times": int, "shape": tuple})
    {'n_times': 60, 'shape': ('32', '32')}
    >>> parse_options({"max-events": "2"}, {"max_events": int})
    {'max_events': 2}
    >>> parse_options(["n_time=60"], {"n_times": int}, owner="recipe 'synthetic'")
    Traceback (most recent call last):
    stgeo.errors.UnknownNameError: recipe 'synthetic' has no option 'n_time'. Did you mean ...
    >>> parse_options(["n_times=many"], {"n_times": int})
    Traceback (most recent call last):
    stgeo.errors.StgeoTypeError: option n_times='many': expected int
    """
    raw = _split(items)
    from_text = items is not None and not isinstance(items, Mapping)
    if types is None:
        return {k: _literal(v) if from_text else v for k, v in raw.items()}
    if not isinstance(types, Mapping):
        return {k: coerce(k, v, types, owner=owner) for k, v in raw.items()}
    out = {}
    for key, value in raw.items():
        if key not in types:
            raise _unknown(key, types, owner)
        out[key] = coerce(key, value, types[key], owner=owner)
    return out

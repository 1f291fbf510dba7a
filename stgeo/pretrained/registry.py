"""The registry of named pretrained artefacts: the shipped index, user indexes, loading.

The artefacts shipped with stgeo are listed in ``stgeo/pretrained/index.json`` (their
weights in ``stgeo/pretrained/artefacts/<name>/``); more come from index files named by
:func:`register_pretrained` (or ``$STGEO_PRETRAINED_PATH``, a ``os.pathsep``-separated
list of index files). Entries keep the order of their index; user indexes come first.

Examples
--------
>>> import stgeo.pretrained as pt
>>> "storms-convlstm" in pt.list()
True
>>> pt.card("storms-convlstm").architecture
'convlstm'
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import models as _models  # noqa: F401  (registers the architectures checked below)
from .._registry import MODELS, Registry
from ..errors import DataValidationError, ModelFileError, StgeoTypeError, UnknownNameError
from .card import PretrainedCard
from .fetch import fetch, sha256_of

__all__ = [
    "PRETRAINED",
    "card",
    "cards",
    "get",
    "list_pretrained",
    "load_index",
    "register_pretrained",
    "weights_path",
]

INDEX_FILE = "index.json"
ARTEFACTS_DIR = "artefacts"
CARD_FILE = "card.json"
_HERE = Path(__file__).parent


def _load_shipped(reg: Registry[Any]) -> None:
    env = os.environ.get("STGEO_PRETRAINED_PATH", "")
    for part in [p for p in env.split(os.pathsep) if p]:
        _add_index(reg, Path(part))
    _add_index(reg, _HERE / INDEX_FILE)


_ORDER = itertools.count()
#: name -> (PretrainedCard, folder the card's relative ``files.path`` is resolved in)
PRETRAINED: Registry[Any] = Registry("pretrained model", group=None)
PRETRAINED.add_source(_load_shipped)


def load_index(path: str | os.PathLike) -> list[PretrainedCard]:
    """The cards of a pretrained index file (JSON: ``{"pretrained": [card, ...]}``).

    Examples
    --------
    >>> from stgeo.pretrained.registry import load_index, _HERE
    >>> [c.name for c in load_index(_HERE / "index.json")][:1]
    ['storms-convlstm']
    """
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(f"no pretrained index file at {p}")
    try:
        raw = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise DataValidationError(f"the pretrained index {p} is not valid JSON: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("pretrained"), list):
        raise DataValidationError(
            f'the pretrained index {p} must be a JSON object {{"pretrained": [entry, ...]}}'
        )
    return [PretrainedCard.from_dict(d, source=str(p)) for d in raw["pretrained"]]


def _add_index(reg: Registry[Any], path: Path, *, overwrite: bool = False) -> list[str]:
    names = []
    for c in load_index(path):
        _add_card(reg, c, path.parent, overwrite=overwrite)
        names.append(c.name)
    return names


def _add_card(reg: Registry[Any], c: PretrainedCard, root: Path, *, overwrite: bool) -> None:
    if c.name in MODELS:
        raise DataValidationError(
            f"pretrained model name {c.name!r} is also a registered model architecture; "
            "give the artefact another name (e.g. with the data it was trained on)"
        )
    if not overwrite and c.name in reg:  # the first index wins (user indexes before shipped)
        return
    reg.add(c.name, (c, root), overwrite=True, order=next(_ORDER))


def register_pretrained(
    source: str | os.PathLike | PretrainedCard, *, root: str | os.PathLike | None = None
) -> list[str]:
    """Register pretrained artefacts: an index file, an artefact folder, or a card.

    Parameters
    ----------
    source : path or PretrainedCard
        An index JSON file (every entry is added), an artefact folder written by
        :func:`stgeo.pretrained.package` (its ``card.json``), or a card.
    root : path, optional
        With a card: the folder its relative ``files.path`` is resolved in.

    Returns
    -------
    list of str
        The names registered. A name registered again replaces the earlier entry.

    Examples
    --------
    >>> import tempfile, stgeo
    >>> try:
    ...     stgeo.pretrained.register_pretrained(tempfile.mkdtemp())
    ... except stgeo.errors.DataValidationError as err:
    ...     print(str(err)[-50:])
    give a folder written by stgeo.pretrained.package
    """
    PRETRAINED.list()  # the shipped index first, so that a registration replaces it
    if isinstance(source, PretrainedCard):
        if root is None and not source.remote:
            raise DataValidationError(
                f"the card {source.name!r} names local weights ({source.files['path']!r}); "
                "give root=, the folder that path is relative to"
            )
        _add_card(PRETRAINED, source, Path(root or "."), overwrite=True)
        return [source.name]
    if not isinstance(source, (str, os.PathLike)):
        raise StgeoTypeError(
            f"source must be an index file, an artefact folder or a PretrainedCard, got "
            f"{type(source).__name__}"
        )
    p = Path(source)
    if p.is_dir():
        if not (p / CARD_FILE).is_file():
            raise DataValidationError(
                f"{p} holds no {CARD_FILE}; give a folder written by stgeo.pretrained.package"
            )
        c = PretrainedCard.from_dict(json.loads((p / CARD_FILE).read_text()), source=str(p))
        c = PretrainedCard.from_dict({**c.to_dict(), "files": {**c.files, "path": "."}})
        _add_card(PRETRAINED, c, p, overwrite=True)
        return [c.name]
    return _add_index(PRETRAINED, p, overwrite=True)


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the pretrained artefacts matching ``pattern``, in index order.

    Examples
    --------
    >>> import stgeo
    >>> stgeo.pretrained.list("storms-*")
    ['storms-convlstm']
    """
    names = PRETRAINED.list(pattern)
    return sorted(names, key=lambda n: PRETRAINED.entry(n).meta["order"])


def card(name: str) -> PretrainedCard:
    """The card of pretrained artefact ``name`` (unknown names raise with suggestions).

    Examples
    --------
    >>> import stgeo
    >>> c = stgeo.pretrained.card("storms-convlstm")
    >>> c.variables, c.units, c.time_step
    (['rain_rate'], {'rain_rate': 'mm h-1'}, '5min')
    """
    if not isinstance(name, str):
        raise StgeoTypeError(f"a pretrained model name is a string, got {type(name).__name__}")
    return PRETRAINED.get(name)[0]


def cards(names: Iterable[str] | None = None) -> list[PretrainedCard]:
    """The cards of ``names`` (default: all, in index order)."""
    return [card(n) for n in (list_pretrained() if names is None else names)]


def weights_path(name: str) -> Path:
    """The verified local weights file of ``name``: shipped, or fetched into the cache.

    Raises
    ------
    ModelFileError
        The file does not match the checksum its card records (damaged install or download).
    DownloadError
        A remote artefact cannot be downloaded.
    """
    c, root = PRETRAINED.get(name)
    sha = c.files["sha256"]
    if c.remote:
        return fetch(c.files["url"], sha, name=c.name)
    folder = (root / c.files["path"]).resolve()
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFileError(
            f"the weights of pretrained model {c.name!r} are missing: no {weights}. "
            "Reinstall stgeo, or rebuild them: stgeo pretrained build " + c.name
        )
    found = sha256_of(weights)
    if found != sha:
        raise ModelFileError(
            f"the weights {weights} of pretrained model {c.name!r} have sha256 {found}, the "
            f"index records {sha}: the file is damaged or was replaced. Reinstall stgeo, or "
            f"rebuild it (stgeo pretrained build {c.name}) and update the index"
        )
    return weights


def get(name: str, *, device: Any = None) -> Any:
    """Load pretrained artefact ``name`` as a :class:`~stgeo.models.TrainedModel`.

    The weights may be stored in half precision; they are restored to the model's own
    (float32) parameters. The spec records the card's name in ``spec.extra["pretrained"]``.

    Examples
    --------
    >>> import stgeo
    >>> m = stgeo.pretrained.get("storms-convlstm")
    >>> m.spec.model, m.in_steps, m.spec.extra["pretrained"]
    ('convlstm', 4, 'storms-convlstm')
    >>> next(m.module.parameters()).dtype
    torch.float32
    """
    from ..models import load_model

    c = card(name)
    tm = load_model(weights_path(c.name), device=device)
    if tm.spec.model != c.architecture:
        raise ModelFileError(
            f"pretrained model {c.name!r}: the index says architecture {c.architecture!r}, "
            f"the weights are a {tm.spec.model!r}; the index entry is wrong"
        )
    tm.spec.extra["pretrained"] = c.name
    return tm


def is_pretrained(name: Any) -> bool:
    """Whether ``name`` names a registered pretrained artefact."""
    return isinstance(name, str) and name in PRETRAINED


def unknown_name_message(name: str) -> str:
    """The message for a name that is neither a model nor a pretrained artefact."""
    try:
        MODELS.entry(name)
    except UnknownNameError as err:
        msg = str(err.args[0] if err.args else err)
    else:  # pragma: no cover - only called for unknown names
        return ""
    close = PRETRAINED.suggest(name)
    extra = f" Did you mean the pretrained model {close[0]!r}?" if close else ""
    return f"{msg}{extra} Pretrained models: {', '.join(list_pretrained()) or '(none)'}."

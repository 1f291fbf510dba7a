"""Package a trained model as a named pretrained artefact (weights, spec, card, index entry).

Examples
--------
>>> import os, tempfile, stgeo
>>> from stgeo.pretrained import package
>>> ds = stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=0)
>>> tm = stgeo.train(ds, model="convlstm", in_steps=2, out_steps=2, epochs=1, hidden=4,
...                  num_layers=1, progress=False)
>>> d = tempfile.mkdtemp()
>>> c = package(tm, name="tiny-storms", out=os.path.join(d, "tiny-storms"),
...             index=os.path.join(d, "index.json"))
>>> c.architecture, c.dtype, sorted(os.listdir(os.path.join(d, "tiny-storms")))
('convlstm', 'float16', ['card.json', 'model.safetensors', 'spec.json'])
>>> stgeo.pretrained.register_pretrained(os.path.join(d, "index.json"))
['tiny-storms']
>>> stgeo.pretrained.get("tiny-storms").spec.extra["pretrained"]
'tiny-storms'
>>> stgeo.pretrained.registry.PRETRAINED.remove("tiny-storms")  # unregister it again
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._registry import MODELS
from ..data.safety import check_output
from ..errors import DataValidationError, StgeoTypeError
from ..models import grid_rule
from ..models.artifact import (
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    TrainedModel,
    atomic_directory,
    check_model_folder,
    save_state,
    write_spec,
)
from .card import PretrainedCard
from .fetch import sha256_of
from .recipe import Recipe
from .registry import CARD_FILE

__all__ = ["add_to_index", "package", "tensors_digest"]

_DTYPES = ("float16", "bfloat16", "float32")
_FP16_MAX = 65504.0


def _cast_state(module: Any, dtype: str) -> dict[str, Any]:
    """The module's state dict with floating tensors stored as ``dtype`` (checked first)."""
    import torch

    target = getattr(torch, dtype)
    state = {}
    for k, t in module.state_dict().items():
        t = t.detach().to("cpu")
        if t.dtype.is_floating_point and t.dtype != target:
            if dtype == "float16" and t.numel() and float(t.abs().max()) > _FP16_MAX:
                raise DataValidationError(
                    f"tensor {k!r} has values beyond float16's range (|x| > 65504); package "
                    "with dtype='bfloat16' or 'float32'"
                )
            t = t.to(target)
        state[k] = t
    return state


def tensors_digest(state: Mapping[str, Any]) -> str:
    """sha256 over the tensors of a state dict: sorted names, dtypes, shapes and bytes.

    Examples
    --------
    >>> import torch
    >>> a = tensors_digest({"w": torch.ones(2), "b": torch.zeros(1)})
    >>> a == tensors_digest({"b": torch.zeros(1), "w": torch.ones(2)}), len(a)
    (True, 64)
    """
    import hashlib

    import torch

    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        stgeo_version = version("stgeo")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        stgeo_version = "unknown"
    return {
        "stgeo": stgeo_version,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "torch_threads": torch.get_num_threads(),
    }


def _card_dict(tm: TrainedModel, name: str, dtype: str, **fields: Any) -> dict[str, Any]:
    s = tm.spec
    grid = None if s.grid_shape is None else [int(n) for n in s.grid_shape]
    return {
        "name": name,
        "architecture": s.model,
        "variables": list(s.variables),
        "units": dict(s.units),
        "time_step": s.time_step,
        "in_steps": s.in_steps,
        "out_steps": s.out_steps,
        "input_offsets": None if s.input_offsets is None else [int(o) for o in s.input_offsets],
        "normalization": (s.normalization or {}).get("method"),
        "hyperparameters": dict(s.hyperparameters),
        "grid_shape": grid,
        "grid_corners": s.extra.get("grid_corners") if grid_rule(s).fixed_grid else None,
        "data_fingerprint": s.extra.get("data_fingerprint"),
        "dtype": dtype,
        "environment": _environment(),
        **fields,
    }


def _check_args(
    trained: Any, name: Any, dtype: str, recipe: Any, tables: Mapping[str, Any]
) -> None:
    if not isinstance(trained, TrainedModel):
        raise StgeoTypeError(
            f"package() needs a TrainedModel (stgeo.train's result or stgeo.load_model's), got "
            f"{type(trained).__name__}"
        )
    if dtype not in _DTYPES:
        raise DataValidationError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if isinstance(name, str) and name.lower() in MODELS:
        raise DataValidationError(
            f"{name!r} is a registered model architecture; name the artefact after its data "
            f"too (e.g. {name + '-radar'!r})"
        )
    if recipe is not None and not isinstance(recipe, (Mapping, Recipe)):
        raise StgeoTypeError("recipe must be a Recipe or its mapping form")
    for what, rows in tables.items():
        if rows is not None and (
            isinstance(rows, (str, Mapping)) or not all(isinstance(r, Mapping) for r in rows)
        ):
            raise StgeoTypeError(f"{what} must be a list of table rows (mappings)")


def package(
    trained: TrainedModel,
    *,
    name: str,
    out: str | os.PathLike,
    recipe: Recipe | Mapping[str, Any] | None = None,
    scores: Sequence[Mapping[str, Any]] | None = None,
    validation: Sequence[Mapping[str, Any]] | None = None,
    description: str = "",
    licence: str = "",
    provenance: str = "",
    standard_names: Mapping[str, str] | None = None,
    backbone: str | None = None,
    default: bool = False,
    dtype: str = "float16",
    url: str | None = None,
    index: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> PretrainedCard:
    """Write ``trained`` as a pretrained artefact folder and (optionally) list it in an index.

    The folder holds ``model.safetensors`` (weights stored as ``dtype``; the spec also rides
    in its metadata, so the file alone is a complete model), ``spec.json`` and
    ``card.json``. It is written atomically and replaces only an earlier model folder
    stgeo wrote (with ``overwrite=True``) that holds nothing else.

    Parameters
    ----------
    trained : TrainedModel
        The model (e.g. from :func:`stgeo.train`).
    name : str
        The artefact's name (not a model architecture's name).
    out : str or path
        The artefact folder to write.
    recipe : Recipe or mapping, optional
        How it was trained (see :class:`stgeo.pretrained.Recipe`); needed to rebuild it.
    scores : list of mapping, optional
        Benchmark table rows (``{"method": "storms-convlstm", "CSI 1 mm/h +30 min": 0.41}``).
    validation : list of mapping, optional
        The same table on the validation split of the training data (the card's
        ``validation``).
    description, licence, provenance : str
        One line; the weights' licence; where the training data came from.
    standard_names : mapping, optional
        CF standard name per variable, so data naming the variable otherwise still fit.
    backbone : str, optional
        The wrapped architecture of a wrapper model (resolution by its name finds this).
    default : bool
        Prefer this artefact when several fit the same data.
    dtype : {"float16", "bfloat16", "float32"}
        Storage type of floating weights (loading restores the model's float32).
        float16 halves the size; values beyond its range are refused (use bfloat16).
    url : str, optional
        Where the weights file will be published: the card then says ``{"url": url,
        "sha256": ...}`` and the file is fetched from there (upload
        ``out/model.safetensors`` to that URL).
    index : str or path, optional
        An index JSON file to add the entry to (created if missing; an entry of the same
        name is replaced); a local entry's path is made relative to the index's folder.
    overwrite : bool
        Replace an existing artefact folder written by stgeo.

    Returns
    -------
    PretrainedCard
        The card written to ``card.json`` (and to the index).
    """
    _check_args(trained, name, dtype, recipe, {"scores": scores, "validation": validation})
    dest = check_output(out, "model", overwrite=overwrite)
    check_model_folder(dest)
    rec = recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe or {})
    if rec:
        Recipe.from_dict(rec)  # refuse a malformed recipe now, not when rebuilding
    state = _cast_state(trained.module, dtype)
    spec_d = trained.spec_dict()
    spec_text = json.dumps(spec_d, indent=2, sort_keys=True, allow_nan=True)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "spec": spec_text}
    fields = dict(
        recipe=rec,
        scores=[dict(r) for r in (scores or [])],
        validation=[dict(r) for r in (validation or [])],
        description=description,
        licence=licence,
        provenance=provenance,
        standard_names=dict(standard_names or {}),
        backbone=backbone,
        default=default,
    )
    body = _card_dict(trained, name, dtype, weights_sha256=tensors_digest(state), **fields)
    holder: dict[str, PretrainedCard] = {}

    def write(tmp: Path) -> None:
        save_state(state, tmp / WEIGHTS_FILE, meta)
        write_spec(tmp, spec_d)
        sha = sha256_of(tmp / WEIGHTS_FILE)
        files = {"url": url, "sha256": sha} if url else {"path": ".", "sha256": sha}
        holder["card"] = PretrainedCard.from_dict({**body, "files": files})
        (tmp / CARD_FILE).write_text(json.dumps(holder["card"].to_dict(), indent=2) + "\n")

    atomic_directory(dest, write)
    card = holder["card"]
    if index is not None:
        card = add_to_index(card, index, folder=dest)
    return card


def add_to_index(
    card: PretrainedCard, index: str | os.PathLike, *, folder: str | os.PathLike | None = None
) -> PretrainedCard:
    """Add ``card`` to the index file ``index`` (replacing an entry of the same name).

    A local artefact's ``files.path`` becomes ``folder`` relative to the index's folder.
    The index is rewritten atomically; a file that is not a pretrained index is refused.

    Returns
    -------
    PretrainedCard
        The entry as written.
    """
    p = Path(index)
    entries: list[dict[str, Any]] = []
    if p.exists():
        from .registry import load_index

        entries = [c.to_dict() for c in load_index(p)]  # refuses a file that is not an index
    if not card.remote and folder is not None:
        rel = os.path.relpath(Path(folder).resolve(), p.parent.resolve())
        card = PretrainedCard.from_dict({**card.to_dict(), "files": {**card.files, "path": rel}})
    names = [e["name"] for e in entries]
    if card.name in names:
        entries[names.index(card.name)] = card.to_dict()
    else:
        entries.append(card.to_dict())
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"pretrained": entries}, indent=2) + "\n")
    os.replace(tmp, p)
    return card

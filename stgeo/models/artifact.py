"""Trained-model artefacts: safetensors weights plus a JSON :class:`~stgeo.models.ModelSpec`.

A saved model is a directory::

    my-model/
      model.safetensors  # the module's state dict (tensors only; the spec rides in its metadata)
      spec.json          # ModelSpec.to_dict(): architecture, sizes, variables, channels, time
                         # step, grid, normalisation, training-data fingerprint, metrics, history,
                         # and the sha256 of model.safetensors (extra["weights_file_sha256"])

Loading rebuilds the network from the spec (``spec.build()``) and loads the weights strictly.
Nothing is ever unpickled: a ``torch.save`` checkpoint is recognised by its magic bytes and
refused with a :class:`~stgeo.errors.ModelFileError`. Loading also refuses weights whose
sha256 is not the one ``spec.json`` records (a damaged or replaced file; models saved before
the checksum was recorded are loaded unchecked), a ``spec.json`` that disagrees with the copy
of the spec inside the weights file, and spec fields that cannot be right (sizes, grid,
time step, normalisation). Saving is atomic: the artefact is written to a hidden staging
directory next to the destination and renamed into place, so a crash never leaves a
half-written or half-overwritten model.

Examples
--------
>>> import os, tempfile, torch, stgeo
>>> from stgeo.models import ModelSpec, TrainedModel, load_model
>>> spec = ModelSpec("persistence", 1, 3, ["rain_rate"], ["rain_rate"], "5min", (8, 8))
>>> path = TrainedModel(spec.build(), spec).save(os.path.join(tempfile.mkdtemp(), "m"))
>>> sorted(os.listdir(path))
['model.safetensors', 'spec.json']
>>> load_model(path).spec.out_steps
3
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.safety import MODEL_FORMAT, artefact_kind, check_output, replace_path
from ..datasets.checksums import sha256_file
from ..errors import (
    ModelFileError,
    OutputExistsError,
    PathNotFoundError,
    StgeoError,
    StgeoTypeError,
    UnknownNameError,
)
from .base import ModelSpec

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TrainedModel",
    "check_model_folder",
    "load_model",
    "load_state",
    "save_state",
    "write_spec",
]

FORMAT = MODEL_FORMAT  # "stgeo-model", how stgeo.data.safety recognises a saved model
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "spec.json"
#: the key of ``spec.json``'s ``extra`` holding the sha256 of the weights file. It lives in
#: spec.json only: the weights file embeds the spec without it (a file cannot hold its own hash)
WEIGHTS_SHA256 = "weights_file_sha256"
#: the files stgeo writes into a model folder (``card.json``: a pretrained artefact's card,
#: written by :func:`stgeo.pretrained.package`); anything else in it is the user's
MODEL_FOLDER_FILES = frozenset({WEIGHTS_FILE, SPEC_FILE, "card.json"})
#: architectures renamed since models were saved under the old name; the models guide
#: (docs/models/stresnet.md) tells users to rename ``model`` in such a model's spec.json, so
#: that edit (only that one) may make spec.json differ from the spec inside the weights
_RENAMED_ARCHITECTURES = {
    "stresnet": "stresnet-stacked",
    "stresnet-small": "stresnet-stacked-small",
}

# magic bytes of formats we refuse (never parse them)
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save (zip container holding a pickle)
_PICKLE_MAGIC = b"\x80"  # legacy torch.save / plain pickle (protocol 2+)
_PICKLE_HINT = (
    "stgeo never unpickles files (a pickle can run arbitrary code). If you trust the file, "
    "load it yourself with torch.load(path, weights_only=True), put the weights into the "
    "matching stgeo model and save it with TrainedModel(module, spec).save(dir)."
)


# -- low-level tensor files -----------------------------------------------------------------
def _sniff(path: Path) -> None:
    """Raise ModelFileError unless ``path`` looks like safetensors; name pickles/zips as such.

    A safetensors file starts with the length N of its JSON header (8 bytes, little
    endian) followed by ``{``. Only the first bytes are read; nothing is parsed further.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return
    if head.startswith(_ZIP_MAGIC):
        raise ModelFileError(
            f"{path} is a zip archive, most likely a pickled PyTorch checkpoint (torch.save); "
            + _PICKLE_HINT
        )
    if head.startswith(_PICKLE_MAGIC):
        raise ModelFileError(
            f"{path} is a Python pickle (e.g. a legacy torch.save file); " + _PICKLE_HINT
        )
    raise ModelFileError(f"{path} is not a valid safetensors file (unrecognised header)")


def save_state(
    tensors: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a flat ``name -> tensor`` mapping to a safetensors file (tensors only, no pickle).

    Tensors sharing memory (tied weights) are stored once; the aliases are recorded in the
    metadata and restored by :func:`load_state`.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> p = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> save_state({"w": torch.ones(2)}, p, {"note": "hi"})
    >>> load_state(p)[0]["w"].tolist(), load_state(p)[1]["note"]
    ([1.0, 1.0], 'hi')
    """
    from safetensors.torch import save

    out: dict[str, Any] = {}
    seen: dict[tuple[int, int, tuple[int, ...], str], str] = {}
    aliases: dict[str, str] = {}
    for name, t in tensors.items():
        t = t.detach()
        key = (t.data_ptr(), t.storage_offset(), tuple(t.shape), str(t.dtype))
        if t.numel() > 0 and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        out[name] = t.to("cpu").contiguous().clone()
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    if aliases:
        meta["stgeo_aliases"] = json.dumps(aliases)
    with open(path, "wb") as f:
        f.write(save(out, metadata=meta))
        f.flush()
        os.fsync(f.fileno())


def load_state(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a safetensors file written by :func:`save_state`: ``(tensors, metadata)``.

    Raises
    ------
    ModelFileError
        The file is a pickle/zip checkpoint (refused, never unpickled) or not valid safetensors.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"no weights file at {p}")
    _sniff(p)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ModelFileError(f"{p} is not a valid safetensors file: {err}") from None
    aliases = json.loads(meta.pop("stgeo_aliases", "{}"))
    for name, target in aliases.items():
        if target in tensors:
            tensors[name] = tensors[target]
    return tensors, meta


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_directory(dest: Path, write: Any) -> None:
    """Call ``write(tmpdir)`` then move ``tmpdir`` to ``dest`` (replacing it) atomically.

    An interrupted ``write`` leaves ``dest`` untouched; the staging folder is removed. An
    existing ``dest`` is replaced only if it is an empty folder or a stgeo artefact of the
    kind just written (a model, a checkpoint; :func:`stgeo.data.safety.artefact_kind`);
    anything else raises :class:`~stgeo.errors.OutputExistsError` and is left alone.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_dir(tmp)
        kind = artefact_kind(tmp)
        if kind is None and (dest.exists() or dest.is_symlink()):
            raise OutputExistsError(f"{dest} exists; stgeo does not replace it")
        if kind == "model":
            check_model_folder(dest)  # again: something may have been added meanwhile
        replace_path(tmp, dest, kind or "model")
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_model_folder(path: str | os.PathLike) -> None:
    """Refuse to replace the model folder ``path`` when it holds files stgeo did not write.

    A saved model folder holds ``model.safetensors`` and ``spec.json`` (and a pretrained
    artefact's ``card.json``); replacing it swaps out the whole folder, so anything else a
    user put there (``README.md``, plots) would be lost.

    Raises
    ------
    OutputExistsError
        The folder holds other entries; the message names them.

    Examples
    --------
    >>> import os, tempfile
    >>> from stgeo.models import ModelSpec, TrainedModel
    >>> from stgeo.models.artifact import check_model_folder
    >>> spec = ModelSpec("persistence", 1, 1, ["v"], ["v"], "1h")
    >>> p = TrainedModel(spec.build(), spec).save(os.path.join(tempfile.mkdtemp(), "m"))
    >>> check_model_folder(p)  # only stgeo's files: may be replaced
    >>> _ = open(os.path.join(p, "README.md"), "w").write("my notes")
    >>> check_model_folder(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    stgeo.errors.OutputExistsError: ... also holds files stgeo did not write (README.md); ...
    """
    p = Path(path)
    if not p.is_dir() or p.is_symlink():
        return
    foreign = sorted(c.name for c in p.iterdir() if c.name not in MODEL_FOLDER_FILES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise OutputExistsError(
            f"{p} is a saved stgeo model but also holds files stgeo did not write ({shown}); "
            "replacing the model would delete them. Move them out of the folder first, or "
            "save the model elsewhere."
        )


def shape_mismatches(
    expected: Mapping[str, Any], tensors: Mapping[str, Any]
) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """``(name, shape in tensors, shape expected)`` of every tensor present in both whose
    shapes differ.

    Examples
    --------
    >>> import torch
    >>> shape_mismatches({"w": torch.zeros(2, 3)}, {"w": torch.zeros(2, 4)})
    [('w', (2, 4), (2, 3))]
    """
    return [
        (k, tuple(tensors[k].shape), tuple(v.shape))
        for k, v in expected.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)
    ]


def load_strict(module: Any, tensors: Mapping[str, Any], *, source: str = "the file") -> None:
    """Load ``tensors`` into ``module``; ModelFileError on missing/extra/mis-shaped entries."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    shapes = [
        f"{k}: file {got} vs model {want}" for k, got, want in shape_mismatches(expected, tensors)
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {_few(missing)}")
    if extra:
        problems.append(f"unexpected tensors {_few(extra)}")
    if shapes:
        problems.append(f"shape mismatches {_few(shapes)}")
    if not problems and (bad := _value_problems(tensors, expected)):
        raise ModelFileError(f"the weights in {source} are unusable: " + "; ".join(bad) + ".")
    if problems:
        raise ModelFileError(
            f"the weights in {source} do not match the model its spec describes: "
            + "; ".join(problems)
            + ". The spec and weights come from different models (or the model code changed)."
        )
    module.load_state_dict({k: tensors[k].to(expected[k].dtype) for k in expected}, strict=True)


def _value_problems(tensors: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Tensors of the wrong kind (integer weights for float parameters) or not finite."""
    import torch

    kinds, finite = [], []
    for k, v in expected.items():
        t = tensors.get(k)
        if t is None:
            continue
        if t.dtype.is_floating_point != v.dtype.is_floating_point or t.dtype.is_complex:
            kinds.append(f"{k}: file {t.dtype} vs model {v.dtype}")
        elif t.dtype.is_floating_point and t.numel() and not bool(torch.isfinite(t).all()):
            finite.append(f"{k} ({int((~torch.isfinite(t)).sum())} of {t.numel()})")
    problems = []
    if kinds:
        problems.append(f"wrongly typed tensors {_few(kinds)} (never cast silently)")
    if finite:
        problems.append(
            f"non-finite values (NaN/inf) in {_few(finite)}: the model would forecast NaN; "
            "the run that wrote them diverged, or the file is damaged"
        )
    return problems


def _few(items: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:n])
    return f"[{shown}{', ...' if len(items) > n else ''}] ({len(items)} in total)"


# -- the artefact ----------------------------------------------------------------------------
class TrainedModel:
    """A network together with the :class:`~stgeo.models.ModelSpec` needed to apply it.

    Parameters
    ----------
    module : torch.nn.Module
        The network, mapping normalised ``(B, T_in, C, H, W)`` to ``(B, T_out, C, H, W)``.
    spec : ModelSpec
        Architecture, sizes, variables, time step, grid, normalisation and metadata.
    history : list of dict, optional
        Per-epoch training records (``epoch``, ``train_loss``, ``val_metric``, ``lr``, ...);
        default: ``spec.extra["history"]``.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.models import ModelSpec, TrainedModel
    >>> spec = ModelSpec("persistence", 1, 2, ["rain_rate"], ["rain_rate"], "5min", (8, 8))
    >>> TrainedModel(spec.build(), spec)
    TrainedModel('persistence', in_steps=1, out_steps=2, channels=['rain_rate'], time_step='5min')
    """

    def __init__(self, module: Any, spec: ModelSpec, history: list[dict[str, Any]] | None = None):
        import torch

        if not isinstance(module, torch.nn.Module):
            raise StgeoTypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if not isinstance(spec, ModelSpec):
            raise StgeoTypeError(f"spec must be a stgeo ModelSpec, got {type(spec).__name__}")
        self.module = module
        self.spec = spec
        #: the folder the model was loaded from (:func:`load_model`), else None; writers
        #: refuse to write over it (see :mod:`stgeo.data.safety`)
        self.source_path: str | None = None
        self.history: list[dict[str, Any]] = list(
            history if history is not None else spec.extra.get("history", [])
        )

    # convenient read-only views of the spec
    @property
    def in_steps(self) -> int:
        """Input frames of one forward pass."""
        return self.spec.in_steps

    @property
    def out_steps(self) -> int:
        """Output frames of one forward pass (the trained horizon)."""
        return self.spec.out_steps

    @property
    def metrics(self) -> dict[str, Any]:
        """Metrics recorded at training time (e.g. best validation score)."""
        return dict(self.spec.extra.get("metrics", {}))

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"TrainedModel({s.model!r}, in_steps={s.in_steps}, out_steps={s.out_steps}, "
            f"channels={s.channels!r}, time_step={s.time_step!r}"
            + (f", members={s.members})" if s.members else ")")
        )

    @property
    def members(self) -> list[TrainedModel]:
        """The members of a seed ensemble (:func:`stgeo.models.ensemble`) as models of
        their own, each with its seed, metrics and history (their modules are the
        ensemble's, not copies); empty for a single network."""
        if not self.spec.members:
            return []
        records = self.spec.extra.get("members", [])
        out = []
        for i, module in enumerate(self.module.members):
            rec = records[i] if i < len(records) else {}
            extra = {k: v for k, v in self.spec.extra.items() if k != "members"}
            extra["metrics"] = rec.get("metrics", {})
            if isinstance(extra.get("training"), dict):
                training = {k: v for k, v in extra["training"].items() if k != "seeds"}
                extra["training"] = {**training, "seed": rec.get("seed")}
            spec = dataclasses.replace(self.spec, members=None, extra=extra)
            out.append(TrainedModel(module, spec, history=rec.get("history", [])))
        return out

    def to(self, device: Any) -> TrainedModel:
        """Move the module to ``device`` (in place); return self."""
        self.module.to(device)
        return self

    def spec_dict(self) -> dict[str, Any]:
        """The spec as saved: ``ModelSpec.to_dict()`` with the history in ``extra``."""
        d = self.spec.to_dict()
        extra = {k: v for k, v in d.get("extra", {}).items() if k != WEIGHTS_SHA256}
        d["extra"] = {
            **extra,
            "history": self.history,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
        }
        return d

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> str:
        """Write the artefact directory (``model.safetensors`` + ``spec.json``) atomically.

        Parameters
        ----------
        path : str or path
            Destination directory.
        overwrite : bool
            Replace an existing model folder that stgeo wrote (atomically). Default False:
            an existing model raises :class:`~stgeo.errors.OutputExistsError`. A folder or
            file stgeo did not write is never replaced, nor a model folder into which other
            files were put (they would be lost), nor the folder this model was loaded from.

        Returns
        -------
        str
            The artefact path.

        Examples
        --------
        >>> import os, tempfile
        >>> from stgeo.models import ModelSpec, TrainedModel
        >>> spec = ModelSpec("persistence", 1, 2, ["v"], ["v"], "1h")
        >>> p = TrainedModel(spec.build(), spec).save(os.path.join(tempfile.mkdtemp(), "m"))
        >>> os.path.basename(p)
        'm'
        """
        dest = check_output(path, "model", overwrite=overwrite)
        check_model_folder(dest)
        spec_d = self.spec_dict()
        try:
            text = json.dumps(spec_d, indent=2, sort_keys=True, allow_nan=True)
        except TypeError as err:
            raise StgeoTypeError(
                f"the model spec is not JSON-serialisable ({err}); hyperparameters and extra "
                "metadata must be plain numbers, strings, lists and dicts"
            ) from None
        state = self.module.state_dict()
        meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "spec": text}

        def write(tmp: Path) -> None:
            save_state(state, tmp / WEIGHTS_FILE, meta)
            write_spec(tmp, spec_d)

        atomic_directory(dest, write)
        return str(dest)


def write_spec(folder: str | os.PathLike, spec: Mapping[str, Any]) -> None:
    """Write ``folder/spec.json``: ``spec`` (a :meth:`TrainedModel.spec_dict`) plus the sha256
    of ``folder/model.safetensors``, which :func:`load_model` verifies.

    Call it after the weights file is written (the spec inside the weights file is the same
    dict without the checksum).

    Examples
    --------
    >>> import json, os, tempfile, torch
    >>> d = tempfile.mkdtemp()
    >>> save_state({"w": torch.ones(2)}, os.path.join(d, "model.safetensors"))
    >>> write_spec(d, {"model": "persistence", "extra": {}})
    >>> doc = json.load(open(os.path.join(d, "spec.json")))
    >>> len(doc["extra"]["weights_file_sha256"])
    64
    """
    p = Path(folder)
    doc = dict(spec)
    doc["extra"] = {**doc.get("extra", {}), WEIGHTS_SHA256: sha256_file(p / WEIGHTS_FILE)}
    text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=True)
    with open(p / SPEC_FILE, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


def _spec_path(p: Path) -> Path | None:
    """Where the ``spec.json`` of the artefact at ``p`` (its folder or weights file) is: in
    the folder, next to a ``model.safetensors``; another weights file (``alone.safetensors``)
    has none there (it loads with the spec it carries)."""
    if p.is_dir():
        return p / SPEC_FILE
    return p.parent / SPEC_FILE if p.name == WEIGHTS_FILE else None


def _read_spec_file(spec_path: Path | None) -> Any:
    """The parsed ``spec.json`` (None when there is none)."""
    if spec_path is None or not spec_path.is_file():
        return None
    try:
        return json.loads(spec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{spec_path} is not valid JSON: {err}") from None


def _embedded_spec(weights: Path, meta: Mapping[str, str]) -> Any:
    """The spec the weights file carries in its metadata (None when it carries none)."""
    if "spec" not in meta:
        return None
    try:
        return json.loads(meta["spec"])
    except json.JSONDecodeError as err:
        raise ModelFileError(
            f"the spec embedded in {weights} is not valid JSON ({err}): the file is damaged"
        ) from None


def _recorded_sha256(doc: Any) -> Any:
    extra = doc.get("extra") if isinstance(doc, dict) else None
    return extra.get(WEIGHTS_SHA256) if isinstance(extra, dict) else None


def _verify_weights(weights: Path, doc: Any, spec_path: Path | None) -> None:
    """Refuse weights whose sha256 is not the one spec.json records (no record: no check,
    as for models saved by an stgeo that did not record it)."""
    want = _recorded_sha256(doc)
    if want is None:
        return
    if not isinstance(want, str) or not re.fullmatch("[0-9a-f]{64}", want):
        raise ModelFileError(
            f"{spec_path}: extra.{WEIGHTS_SHA256}={want!r} is not a sha256 checksum (64 "
            "lower-case hex digits). Was spec.json edited by hand? Restore it from the run "
            "that wrote the model."
        )
    found = sha256_file(weights)
    if found != want:
        raise ModelFileError(
            f"{weights} is damaged or was replaced: its sha256 is {found}, but {spec_path} "
            f"records {want} (the file as saved). Its weights would give wrong forecasts "
            "without any error. Restore the model folder from a copy, or train and save the "
            f"model again. (Replaced the weights on purpose? Delete extra.{WEIGHTS_SHA256} "
            "from spec.json.)"
        )


def _weights_path(p: Path) -> Path:
    """The weights file of the artefact at ``p`` (its directory or the file itself)."""
    if not p.exists():
        raise PathNotFoundError(f"no model at {p}; give the directory written by TrainedModel.save")
    if not p.is_dir():
        return p
    weights = p / WEIGHTS_FILE
    if not weights.is_file():
        found = sorted(x.name for x in p.iterdir())[:10]
        for name in found:  # a folder of torch.save checkpoints: say why it is refused
            if name.endswith((".pt", ".pth", ".bin", ".ckpt")) and (p / name).is_file():
                _sniff(p / name)
        raise ModelFileError(
            f"{p} is not a stgeo model directory: it has no {WEIGHTS_FILE} (found {found})"
        )
    return weights


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _bad_shape_fields(raw: Mapping[str, Any]) -> list[str]:
    """Grid and spatial dims as written in the file (before ModelSpec casts them)."""
    bad = []
    grid = raw.get("grid_shape")
    if grid is not None and not (
        isinstance(grid, list) and len(grid) == 2 and all(_is_count(n) for n in grid)
    ):
        bad.append(f"grid_shape={grid!r} (two positive integers [ny, nx], or null)")
    dims = raw.get("spatial_dims", ["y", "x"])
    if not (
        isinstance(dims, list)
        and len(dims) == 2
        and all(isinstance(d, str) and d for d in dims)
        and dims[0] != dims[1]
    ):
        bad.append(f"spatial_dims={dims!r} (two different dimension names)")
    return bad


def _bad_time_step(spec: ModelSpec) -> list[str]:
    import pandas as pd

    from .base import PER_EVENT_STEP

    if spec.time_step == PER_EVENT_STEP:
        return []
    try:
        ok = isinstance(spec.time_step, str) and pd.Timedelta(spec.time_step).value > 0
    except (TypeError, ValueError):
        ok = False
    if ok:
        return []
    return [
        f"time_step={spec.time_step!r} (a positive pandas duration such as '5min', "
        f"or {PER_EVENT_STEP!r})"
    ]


def _bad_fields(spec: ModelSpec) -> list[str]:
    """Sizes, names, time step and units that cannot be what a model was made of."""
    bad = []
    for name in ("in_steps", "out_steps"):
        v = getattr(spec, name)
        if not _is_count(v):
            bad.append(f"{name}={v!r} (a positive integer)")
    for name in ("variables", "channels"):
        v = getattr(spec, name)
        if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
            bad.append(f"{name}={v!r} (a list of names)")
    bad += _bad_time_step(spec)
    if not isinstance(spec.units, dict) or not all(isinstance(u, str) for u in spec.units.values()):
        bad.append(f"units={spec.units!r} (a mapping of variable -> units string)")
    for name in ("hyperparameters", "normalization", "extra"):
        if not isinstance(getattr(spec, name), dict):
            bad.append(f"{name}={getattr(spec, name)!r} (a mapping)")
    return bad


def _bad_format(spec: ModelSpec) -> list[str]:
    fmt = spec.extra.get("format", FORMAT)
    version = spec.extra.get("format_version", FORMAT_VERSION)
    bad = []
    if fmt != FORMAT:
        bad.append(f"extra.format={fmt!r} ({FORMAT!r})")
    if not _is_count(version):
        bad.append(f"extra.format_version={version!r} (a positive integer)")
    return bad


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bad_normalization(spec: ModelSpec) -> list[str]:
    """What is wrong with the spec's normalisation (checked as forecasting will use it)."""
    import numpy as np

    from ..data.normalize import Normalizer

    norm = spec.normalization
    if not isinstance(norm, dict) or not norm:
        return []
    for key in ("mean", "std", "min", "max"):
        v = norm.get(key)
        if key in norm and not (isinstance(v, list) and all(_is_number(x) for x in v)):
            return [f"normalization.{key}={v!r} (a list of numbers, one per channel)"]
    try:
        n = Normalizer.from_dict(norm)
    except (StgeoError, ValueError, TypeError) as err:
        return [f"a normalization that stgeo.data.Normalizer accepts (it says: {err})"]
    for key, values in n.stats.items():
        if not np.isfinite(values).all():
            return [f"normalization.{key}={values.tolist()} (finite numbers)"]
        if spec.channels and values.size != len(spec.channels):
            return [
                f"normalization.{key} with {values.size} values (one per channel: "
                f"{len(spec.channels)}, {spec.channels})"
            ]
    return []


def _check_spec_fields(spec: ModelSpec, p: Path, raw: Mapping[str, Any] | None = None) -> None:
    """Refuse a spec whose fields cannot be what a model was made of."""
    bad = _bad_shape_fields(raw or {}) + _bad_fields(spec)
    if not bad:  # the rest assumes well-typed fields
        bad = _bad_format(spec) + _bad_normalization(spec)
    if bad:
        raise ModelFileError(
            f"the spec of {p} is not a valid ModelSpec: " + "; ".join(bad) + " expected. Was "
            "spec.json edited by hand? Restore it from the run that wrote the model."
        )


def _differing_fields(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The keys whose values differ between ``a`` and ``b`` (``extra`` compared key by key)."""

    def text(d: Mapping[str, Any], k: str) -> str:
        return json.dumps(d[k], sort_keys=True, allow_nan=True) if k in d else "<missing>"

    out = []
    for k in sorted(set(a) | set(b)):
        if (
            not prefix
            and k == "extra"
            and isinstance(a.get(k), dict)
            and isinstance(b.get(k), dict)
        ):
            out += _differing_fields(a[k], b[k], prefix="extra.")
        elif text(a, k) != text(b, k):
            out.append(prefix + k)
    return out


def _check_embedded(doc: Mapping[str, Any], embedded: Any, spec_path: Path, weights: Path) -> None:
    """Refuse a spec.json that disagrees with the spec saved inside the weights file."""
    if not isinstance(embedded, dict):
        return
    diff = _differing_fields(doc, embedded)
    renamed = _RENAMED_ARCHITECTURES.get(str(embedded.get("model")))
    if not diff or (diff == ["model"] and doc.get("model") == renamed):
        return
    raise ModelFileError(
        f"{spec_path} disagrees with the spec saved inside {weights} in the fields "
        f"{diff}: spec.json was edited, or belongs to another model. The weights were saved "
        "with the embedded spec; restore spec.json from the run that wrote the model (or move "
        "spec.json away: the weights file alone loads with its embedded spec)."
    )


def _load_spec(
    p: Path, meta: Mapping[str, str], doc: Any, weights: Path, spec_path: Path | None
) -> ModelSpec:
    """The artefact's :class:`ModelSpec` (from spec.json, else from the weights' metadata),
    refused when malformed, from a newer format or not the one saved with the weights."""
    embedded = _embedded_spec(weights, meta)
    raw = doc if doc is not None else embedded
    if raw is None:
        raise ModelFileError(
            f"no {SPEC_FILE} found for {p} and the weights carry no spec; a stgeo model is a "
            f"directory with {WEIGHTS_FILE} and {SPEC_FILE} (written by TrainedModel.save)"
        )
    if not isinstance(raw, dict):
        raise ModelFileError(f"the spec of {p} must be a JSON object, got {type(raw).__name__}")
    raw = dict(raw)
    if isinstance(raw.get("extra"), dict):
        raw["extra"] = {k: v for k, v in raw["extra"].items() if k != WEIGHTS_SHA256}
    try:
        spec = ModelSpec.from_dict(raw)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"the spec of {p} is not a valid ModelSpec: {err}") from None
    version = (
        spec.extra.get("format_version", FORMAT_VERSION) if isinstance(spec.extra, dict) else 0
    )
    if _is_count(version) and version > FORMAT_VERSION:
        raise ModelFileError(
            f"{p} was written by a newer stgeo (format version {version}, this stgeo reads "
            f"<= {FORMAT_VERSION}); upgrade stgeo"
        )
    _check_spec_fields(spec, p, raw)
    if doc is not None and spec_path is not None:
        _check_embedded(raw, embedded, spec_path, weights)
    return spec


def _build_module(p: Path, spec: ModelSpec) -> Any:
    """The untrained architecture ``spec`` names; a clear error when it is not registered."""
    try:
        return spec.build()
    except UnknownNameError as err:
        raise ModelFileError(
            f"{p} needs the model architecture {spec.model!r}, which is not registered here "
            f"({err}); install or import the package that provides it"
        ) from None


def load_model(path: str | os.PathLike, *, device: Any = None) -> TrainedModel:
    """Load a model saved with :meth:`TrainedModel.save`.

    Parameters
    ----------
    path : str or path
        The artefact directory, or its ``model.safetensors`` file.
    device : str or torch.device, optional
        Move the module there (default: stay on the CPU).

    Returns
    -------
    TrainedModel

    Raises
    ------
    ModelFileError
        Not a stgeo artefact: a pickled/zip ``torch.save`` checkpoint (refused, never
        unpickled), a missing or malformed ``spec.json`` (fields that cannot be right, e.g.
        a negative grid size or a normalisation with ``std`` 0, are named), a ``spec.json``
        that disagrees with the spec saved inside the weights file, weights whose sha256 is
        not the one ``spec.json`` records (damaged or replaced), or weights that do not
        match the architecture (missing, unexpected or mis-shaped tensors).
    PathNotFoundError
        Nothing at ``path`` (also a ``FileNotFoundError``).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from stgeo.errors import ModelFileError
    >>> from stgeo.models import load_model
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> torch.save({"w": torch.zeros(1)}, p)
    >>> try:
    ...     load_model(p)
    ... except ModelFileError as err:
    ...     print(str(err).split(" is ", 1)[1][:40])
    a zip archive, most likely a pickled PyT
    """
    p = Path(path)
    weights = _weights_path(p)
    spec_path = _spec_path(p)
    doc = _read_spec_file(spec_path)
    _verify_weights(weights, doc, spec_path)  # first: a damaged file is named as damaged
    tensors, meta = load_state(weights)
    if meta.get("format") not in (None, FORMAT):
        raise ModelFileError(f"{weights} is a {meta['format']!r} file, not a {FORMAT!r} artefact")
    spec = _load_spec(p, meta, doc, weights, spec_path)
    module = _build_module(p, spec)
    load_strict(module, tensors, source=str(weights))
    module.eval()
    if device is not None:
        from ..options import resolve_device

        module.to(resolve_device(device) if isinstance(device, str) else device)
    tm = TrainedModel(module, spec)
    tm.source_path = str(p if p.is_dir() else p.parent)
    return tm

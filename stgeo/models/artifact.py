"""Trained-model artefacts: safetensors weights plus a JSON :class:`~stgeo.models.ModelSpec`.

A saved model is a directory::

    my-model/
      model.safetensors  # the module's state dict (tensors only; the spec rides in its metadata)
      spec.json          # ModelSpec.to_dict(): architecture, sizes, variables, channels, time
                         # step, grid, normalisation, training-data fingerprint, metrics, history

Loading rebuilds the network from the spec (``spec.build()``) and loads the weights strictly.
Nothing is ever unpickled: a ``torch.save`` checkpoint is recognised by its magic bytes and
refused with a :class:`~stgeo.errors.ModelFileError`. Saving is atomic: the artefact is written
to a hidden staging directory next to the destination and renamed into place, so a crash
never leaves a half-written or half-overwritten model.

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
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.safety import MODEL_FORMAT, artefact_kind, check_output, replace_path
from ..errors import ModelFileError, OutputExistsError, StgeoTypeError, UnknownNameError
from .base import ModelSpec

__all__ = ["FORMAT", "FORMAT_VERSION", "TrainedModel", "load_model", "load_state", "save_state"]

FORMAT = MODEL_FORMAT  # "stgeo-model", how stgeo.data.safety recognises a saved model
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
SPEC_FILE = "spec.json"

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
        replace_path(tmp, dest, kind or "model")
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
        d["extra"] = {
            **d.get("extra", {}),
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
            file stgeo did not write is never replaced, nor the folder this model was
            loaded from.

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
            with open(tmp / SPEC_FILE, "w") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())

        atomic_directory(dest, write)
        return str(dest)


def _read_spec(path: Path, meta: Mapping[str, str]) -> dict[str, Any]:
    spec_path = path / SPEC_FILE if path.is_dir() else path.parent / SPEC_FILE
    if spec_path.is_file():
        try:
            return json.loads(spec_path.read_text())
        except json.JSONDecodeError as err:
            raise ModelFileError(f"{spec_path} is not valid JSON: {err}") from None
    if "spec" in meta:
        return json.loads(meta["spec"])
    raise ModelFileError(
        f"no {SPEC_FILE} found for {path} and the weights carry no spec; a stgeo model is a "
        f"directory with {WEIGHTS_FILE} and {SPEC_FILE} (written by TrainedModel.save)"
    )


def _weights_path(p: Path) -> Path:
    """The weights file of the artefact at ``p`` (its directory or the file itself)."""
    if not p.exists():
        raise FileNotFoundError(f"no model at {p}; give the directory written by TrainedModel.save")
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


def _check_spec_fields(spec: ModelSpec, p: Path) -> None:
    """Refuse a spec whose sizes, names, time step or units cannot be what a model was made of."""
    import pandas as pd

    from .base import PER_EVENT_STEP

    bad = []
    for name in ("in_steps", "out_steps"):
        v = getattr(spec, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            bad.append(f"{name}={v!r} (a positive integer)")
    for name in ("variables", "channels"):
        v = getattr(spec, name)
        if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
            bad.append(f"{name}={v!r} (a list of names)")
    if spec.time_step != PER_EVENT_STEP:
        try:
            ok = isinstance(spec.time_step, str) and pd.Timedelta(spec.time_step).value > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            bad.append(
                f"time_step={spec.time_step!r} (a positive pandas duration such as '5min', "
                f"or {PER_EVENT_STEP!r})"
            )
    if not isinstance(spec.units, dict) or not all(isinstance(u, str) for u in spec.units.values()):
        bad.append(f"units={spec.units!r} (a mapping of variable -> units string)")
    if bad:
        raise ModelFileError(
            f"the spec of {p} is not a valid ModelSpec: " + "; ".join(bad) + " expected. Was "
            "spec.json edited by hand? Restore it from the run that wrote the model."
        )


def _load_spec(p: Path, meta: Mapping[str, str]) -> ModelSpec:
    """The artefact's :class:`ModelSpec`, refused when malformed or from a newer format."""
    raw = _read_spec(p, meta)
    if not isinstance(raw, dict):
        raise ModelFileError(f"the spec of {p} must be a JSON object, got {type(raw).__name__}")
    try:
        spec = ModelSpec.from_dict(raw)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"the spec of {p} is not a valid ModelSpec: {err}") from None
    _check_spec_fields(spec, p)
    version = spec.extra.get("format_version", FORMAT_VERSION)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelFileError(
            f"{p} was written by a newer stgeo (format version {version}, this stgeo reads "
            f"<= {FORMAT_VERSION}); upgrade stgeo"
        )
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
        unpickled), a missing or malformed ``spec.json``, or weights that do not match the
        architecture (missing, unexpected or mis-shaped tensors).
    FileNotFoundError
        Nothing at ``path``.

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
    tensors, meta = load_state(weights)
    if meta.get("format") not in (None, FORMAT):
        raise ModelFileError(f"{weights} is a {meta['format']!r} file, not a {FORMAT!r} artefact")
    spec = _load_spec(p, meta)
    module = _build_module(p, spec)
    load_strict(module, tensors, source=str(weights))
    module.eval()
    if device is not None:
        from ..options import resolve_device

        module.to(resolve_device(device) if isinstance(device, str) else device)
    tm = TrainedModel(module, spec)
    tm.source_path = str(p if p.is_dir() else p.parent)
    return tm

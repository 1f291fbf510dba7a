"""Training checkpoints: safetensors + JSON, written atomically, never pickled.

After every epoch rank 0 writes ``checkpoint_dir/epoch-NNNNN/`` (model weights, the best
weights so far, AdamW moments and step counts, the scheduler's step, the torch / CUDA /
NumPy / Python RNG states, the loop's progress and the run's settings) and then points
``latest.json`` at it, so a run killed at any moment resumes from the last whole epoch with
the same numbers as an uninterrupted run.

Examples
--------
>>> import torch
>>> tensors, doc = rng_state()
>>> set_rng_state(tensors, doc)
>>> a = torch.rand(1)
>>> set_rng_state(tensors, doc)
>>> bool(torch.rand(1) == a)
True
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataValidationError, OutputExistsError
from ..models.artifact import atomic_directory, load_state, load_strict, save_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "LATEST",
    "check_latest",
    "config_diff",
    "forget",
    "load_optimizer_state",
    "optimizer_state",
    "read_checkpoint",
    "restore",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "stgeo-checkpoint"
LATEST = "latest.json"


# -- RNG -------------------------------------------------------------------------------------
def rng_state() -> tuple[dict[str, Any], dict[str, Any]]:
    """The torch, CUDA, NumPy (global) and Python RNG states as tensors + JSON."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 - the global RNG
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py = random.getstate()
    js = {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [py[0], list(py[1]), py[2]],
    }
    return tensors, js


def set_rng_state(tensors: Mapping[str, Any], js: Mapping[str, Any]) -> None:
    """Restore the states of :func:`rng_state`."""
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng/cuda/"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    if "rng/numpy" in tensors and "numpy" in js:
        kind, pos, has_gauss, gauss = js["numpy"]
        keys = tensors["rng/numpy"].numpy().astype(np.uint32)
        np.random.set_state((kind, keys, int(pos), int(has_gauss), float(gauss)))  # noqa: NPY002
    if "python" in js:
        v, st, g = js["python"]
        random.setstate((v, tuple(st), g))


# -- optimiser -------------------------------------------------------------------------------
def optimizer_state(opt: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimiser's state dict split into tensors (``optim/IDX/NAME``) and JSON."""
    sd = opt.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{idx}/{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(opt: Any, tensors: Mapping[str, Any], js: Mapping[str, Any]) -> None:
    """Load the state of :func:`optimizer_state` into ``opt``."""
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if name.startswith("optim/"):
            _, idx, k = name.split("/", 2)
            state.setdefault(int(idx), {})[k] = t
    for idx, d in js.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    groups = []
    for g in js["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})
    _match_layouts(opt)


def _match_layouts(opt: Any) -> None:
    """Give each moment its parameter's memory layout again (channels-last weights):
    safetensors stores dense tensors, and the fused optimiser kernels need the layouts equal."""
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


# -- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(
    ckdir: Path,
    epoch: int,
    module: Any,
    opt: Any,
    sched: Any,
    best: Mapping[str, Any] | None,
    loop: Mapping[str, Any],
    config: Mapping[str, Any],
) -> None:
    """Write the checkpoint of ``epoch`` atomically, point ``latest.json`` at it, drop older."""
    tensors = {f"model/{k}": v for k, v in module.state_dict().items()}
    if best is not None:
        tensors.update({f"best/{k}": v for k, v in best.items()})
    ot, oj = optimizer_state(opt)
    tensors.update(ot)
    rt, rj = rng_state()
    tensors.update(rt)
    doc = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "loop": dict(loop),
        "optimizer": oj,
        "scheduler": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"},
        "rng": rj,
        "has_best": best is not None,
        "config": dict(config),
    }
    name = f"epoch-{epoch:05d}"

    def write(tmp: Path) -> None:
        save_state(tensors, tmp / "state.safetensors", {"format": CHECKPOINT_FORMAT})
        with open(tmp / "state.json", "w") as f:
            json.dump(doc, f, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())

    atomic_directory(ckdir / name, write)
    tmp = ckdir / f".{LATEST}.tmp"
    tmp.write_text(json.dumps({"format": CHECKPOINT_FORMAT, "checkpoint": name, "epoch": epoch}))
    os.replace(tmp, ckdir / LATEST)
    for old in ckdir.glob("epoch-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _latest_problem(doc: Any) -> str | None:
    """What keeps ``doc`` (the parsed ``latest.json``) from being stgeo's pointer, or None.

    stgeo writes ``{"format": "stgeo-checkpoint", "checkpoint": "epoch-NNNNN", "epoch": N}``
    (older versions: the same without ``format``) and nothing else.
    """
    if not isinstance(doc, dict):
        return f"it holds a JSON {type(doc).__name__}, not an object"
    extra = sorted(set(doc) - {"format", "checkpoint", "epoch"})
    if extra:
        return f"it has entries stgeo does not write: {', '.join(map(repr, extra[:5]))}"
    if "format" in doc and doc["format"] != CHECKPOINT_FORMAT:
        return f"its format is {doc['format']!r}, not {CHECKPOINT_FORMAT!r}"
    name, epoch = doc.get("checkpoint"), doc.get("epoch")
    if name is None:
        return "it has no 'checkpoint' entry"
    if not isinstance(name, str) or not re.fullmatch(r"epoch-\d{5,}", name):
        return f"its 'checkpoint' entry {name!r} is not an epoch-NNNNN folder"
    if isinstance(epoch, bool) or not isinstance(epoch, int) or name != f"epoch-{epoch:05d}":
        return f"its 'epoch' entry {epoch!r} does not match its checkpoint {name!r}"
    return None


def check_latest(ckdir: Path) -> str | None:
    """The checkpoint folder ``ckdir/latest.json`` points at (None without the file).

    ``latest.json`` is trusted, and later replaced or removed, only when its content is
    the pointer stgeo writes; a file of the same name with any other content is the user's.

    Raises
    ------
    OutputExistsError
        ``latest.json`` is not stgeo's (not JSON, or other entries); the reason is named.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> check_latest(d) is None
    True
    >>> _ = (d / "latest.json").write_text('{"mine": 1}')
    >>> check_latest(d)
    Traceback (most recent call last):
    ...
    stgeo.errors.OutputExistsError: checkpoint_dir ... holds a latest.json that stgeo did not ...
    """
    latest = ckdir / LATEST
    if not (latest.exists() or latest.is_symlink()):
        return None
    try:
        doc = json.loads(latest.read_bytes()) if latest.is_file() else None
        problem = "it is not a file" if doc is None else _latest_problem(doc)
    except ValueError:  # not UTF-8, not JSON
        problem = "it is not JSON"
    except OSError as err:
        problem = f"it cannot be read: {err.strerror or err}"
    if problem is not None:
        raise OutputExistsError(
            f"checkpoint_dir {ckdir} holds a latest.json that stgeo did not write ({problem}); "
            "training would replace it: choose another checkpoint_dir"
        )
    return doc["checkpoint"]


def read_checkpoint(ckdir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The JSON document and tensors of the latest checkpoint, or ``None`` if there is none.

    Raises
    ------
    OutputExistsError
        ``latest.json`` is not stgeo's (see :func:`check_latest`).
    DataValidationError
        The checkpoint it points at is missing or damaged (what is wrong is named).
    """
    name = check_latest(ckdir)
    if name is None:
        return None
    state = ckdir / name / "state.json"
    try:
        doc = json.loads(state.read_text())
        problem = None if isinstance(doc, dict) else "does not hold a JSON object"
        if problem is None and doc.get("format") != CHECKPOINT_FORMAT:
            problem = f"has format {doc.get('format')!r}, not {CHECKPOINT_FORMAT!r}"
        if problem is None and not {"optimizer", "scheduler", "rng", "loop"} <= set(doc):
            problem = "lacks the optimizer, scheduler, RNG or loop state"
    except FileNotFoundError:
        problem = "is missing"
    except (OSError, ValueError) as err:
        problem = f"is not valid JSON ({err})"
    if problem is not None:
        raise DataValidationError(
            f"the checkpoint in {ckdir} is unreadable: latest.json points at {name}, whose "
            f"state.json {problem}; delete the folder or pass resume=False to start over"
        )
    tensors, _ = load_state(ckdir / name / "state.safetensors")
    return doc, tensors


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The keys whose (JSON) values differ between two recorded configurations.

    The initial weights of a fine-tuning run (``init``) are compared by their hash only:
    the same weights given as a loaded model, a folder or a pretrained name are the same
    start.
    """

    def value(cfg: Mapping[str, Any], key: str) -> str:
        v = cfg.get(key)
        if key == "init" and isinstance(v, Mapping):
            v = v.get("weights_sha256")
        return json.dumps(v, sort_keys=True)

    return [k for k in sorted(set(a) | set(b)) if value(a, k) != value(b, k)]


def _what_differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``config_diff`` in words: other data (by their fingerprint, or by the normalisation
    statistics fitted on them when the metadata agree) and the other settings by name.

    Examples
    --------
    >>> norm = {"method": "standard", "mean": [1.0]}
    >>> _what_differs({"lr": 1, "normalization": norm}, {"lr": 2, "normalization": norm})
    "with different settings (['lr'])"
    >>> _what_differs({"normalization": norm}, {"normalization": {**norm, "mean": [2.0]}})
    'for different data (the same variables, grid and times, other values: ...)'
    """
    diff = config_diff(old, new)
    same_method = (old.get("normalization") or {}).get("method") == (
        new.get("normalization") or {}
    ).get("method")
    parts = []
    if "data_fingerprint" in diff:
        parts.append("for different data (their fingerprint differs: variables, grid or times)")
    elif "normalization" in diff and same_method:
        parts.append(
            "for different data (the same variables, grid and times, other values: the "
            "normalisation statistics fitted on the training split differ)"
        )
    settings = [
        k for k in diff if k != "data_fingerprint" and not (k == "normalization" and same_method)
    ]
    if settings:
        parts.append(f"with different settings ({settings})")
    return " and ".join(parts)


def restore(
    ckdir: Path, config: Mapping[str, Any], module: Any, opt: Any, sched: Any, device: Any
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """Load the latest checkpoint into ``module``, ``opt``, ``sched`` and the RNGs.

    Returns the loop's progress and the best weights so far (on ``device``), or ``None``
    when ``ckdir`` holds no checkpoint.

    Raises
    ------
    DataValidationError
        The checkpoint was written with other settings or data (``config`` differs).
    """
    found = read_checkpoint(ckdir)
    if found is None:
        return None
    doc, tensors = found
    diff = config_diff(doc.get("config", {}), config)
    if diff:
        raise DataValidationError(
            f"the checkpoint in {ckdir} was written {_what_differs(doc.get('config', {}), config)}"
            "; pass resume=False to start over or use another checkpoint_dir"
        )
    load_strict(
        module, {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, source=str(ckdir)
    )
    load_optimizer_state(opt, tensors, doc["optimizer"])
    sched.load_state_dict({**doc["scheduler"], "lr_lambdas": [None]})
    best = None
    if doc.get("has_best"):
        best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best/")}
    set_rng_state(tensors, doc["rng"])
    return dict(doc["loop"]), best


def forget(ckdir: Path) -> None:
    """Start over: unlink ``latest.json`` so the old checkpoint is not resumed (only stgeo's
    own: see :func:`check_latest`)."""
    if check_latest(ckdir) is not None:
        (ckdir / LATEST).unlink()

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
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataValidationError
from ..models.artifact import atomic_directory, load_state, load_strict, save_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "LATEST",
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
    tmp.write_text(json.dumps({"checkpoint": name, "epoch": epoch}))
    os.replace(tmp, ckdir / LATEST)
    for old in ckdir.glob("epoch-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def read_checkpoint(ckdir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The JSON document and tensors of the latest checkpoint, or ``None`` if there is none."""
    latest = ckdir / LATEST
    if not latest.is_file():
        return None
    try:
        name = json.loads(latest.read_text())["checkpoint"]
        doc = json.loads((ckdir / name / "state.json").read_text())
    except (json.JSONDecodeError, KeyError, FileNotFoundError) as err:
        raise DataValidationError(
            f"the checkpoint in {ckdir} is unreadable ({err}); delete the folder or pass "
            "resume=False to start over"
        ) from None
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
            f"the checkpoint in {ckdir} was written with different settings ({diff}); "
            "pass resume=False to start over or use another checkpoint_dir"
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
    """Start over: unlink ``latest.json`` so the old checkpoint is not resumed."""
    latest = ckdir / LATEST
    if latest.exists():
        latest.unlink()

"""TrainConfig: every setting checked on creation, frozen, recorded as JSON."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.training import TrainConfig
from stgeo.training.config import augment_name

BASE = {"model": "simvp", "in_steps": 2, "out_steps": 1}


@pytest.mark.parametrize(
    ("kw", "err", "match"),
    [
        ({"out_steps": None}, DataValidationError, "out_steps"),
        ({"in_steps": None}, DataValidationError, "in_steps"),
        ({"schedule": "linear"}, DataValidationError, "'cosine' or 'onecycle'"),
        ({"val_metric": "mae"}, DataValidationError, "'mse' or 'csi'"),
        ({"val_metric": "csi", "thresholds": []}, DataValidationError, "needs thresholds"),
        ({"loss": "huber"}, DataValidationError, "mse, mae, mse\\+mae"),
        ({"epochs": 0}, DataValidationError, "epochs must be a positive integer"),
        ({"batch_size": True}, DataValidationError, "batch_size"),
        ({"patience": 1.5}, DataValidationError, "patience must be a positive integer or None"),
        ({"lr": 0}, DataValidationError, "lr must be a positive number"),
        ({"warmup": -1}, DataValidationError, "warmup"),
        ({"model": 3}, StgeoTypeError, "registered model name"),
        ({"augment": 3}, StgeoTypeError, "augment must be"),
        ({"loss_weights": "heavy"}, StgeoTypeError, "list of thresholds"),
        # a string is never read character by character ("10" was [1.0, 0.0])
        ({"thresholds": "10"}, StgeoTypeError, "thresholds must be a list of numbers, got '10'"),
        ({"thresholds": "1"}, StgeoTypeError, "thresholds must be a list of numbers, got '1'"),
        ({"thresholds": "a,b"}, StgeoTypeError, "list of numbers, got 'a,b'"),
        ({"thresholds": [None]}, StgeoTypeError, r"list of numbers, got \[None\]"),
        ({"thresholds": [True]}, StgeoTypeError, "list of numbers"),
        ({"thresholds": {"a": 1}}, StgeoTypeError, "list of numbers"),
        ({"thresholds": [1, float("inf")]}, DataValidationError, "finite"),
        ({"thresholds": [1, 1.0]}, DataValidationError, "duplicates"),
        ({"seed": "x"}, StgeoTypeError, "seed must be an integer, got 'x'"),
        ({"seed": 1.5}, StgeoTypeError, "seed must be an integer"),
        ({"seed": True}, StgeoTypeError, "seed must be an integer"),
        ({"seed": None}, StgeoTypeError, "seed must be an integer"),
        ({"seed": 2**64}, DataValidationError, "64 bits"),
        ({"weight_decay": "x"}, StgeoTypeError, "weight_decay must be a number"),
        ({"weight_decay": -1}, DataValidationError, "weight_decay must be a number >= 0"),
        ({"clip_grad": "x"}, StgeoTypeError, "clip_grad must be a number or None"),
        ({"clip_grad": 0}, DataValidationError, "clip_grad must be a positive number"),
        ({"clip_grad": -1}, DataValidationError, "clip_grad must be a positive number"),
        ({"input_offsets": ["a"], "in_steps": None}, StgeoTypeError, "list of integers"),
        ({"input_offsets": [-0.5, 0], "in_steps": None}, StgeoTypeError, "list of integers"),
    ],
)
def test_bad_settings_are_refused(kw, err, match):
    with pytest.raises(err, match=match):
        TrainConfig(**{**BASE, **kw})


def test_frozen_canonical_and_recorded():
    cfg = TrainConfig(**BASE, thresholds=[1, 5], loss_weights={"5": 3, 2: 2}, input_offsets=[-1, 0])
    assert cfg.thresholds == (1.0, 5.0) and cfg.input_offsets == (-1, 0)
    assert cfg.loss_weights == ((2.0, 2.0), (5.0, 3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    again = cfg.resolved(world_size=2)  # a resolved copy is checked and canonical again
    assert again.loss_weights == cfg.loss_weights and again.world_size == 2 and cfg.world_size == 1
    doc = cfg.to_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["loss_weights"] == [[2.0, 2.0], [5.0, 3.0]] and doc["thresholds"] == [1.0, 5.0]
    assert "model" not in doc and "hyperparameters" not in doc  # the spec has its own fields
    assert cfg.warmup_steps(100) == 5 and TrainConfig(**BASE, warmup=7).warmup_steps(100) == 7


def test_augment_names_are_stable():
    def hook(x, y):
        return x, y

    assert augment_name(hook) == f"{__name__}.test_augment_names_are_stable.<locals>.hook"
    assert augment_name("nuwa") == "nuwa" and augment_name(None) is None


def test_sampling_settings_are_checked_and_recorded():
    from stgeo.data import Importance
    from stgeo.errors import DataValidationError as DVE

    cfg = TrainConfig(model="simvp", in_steps=2, out_steps=1, patch_size=64, importance=True)
    d = cfg.to_dict()
    assert d["patch_size"] == [64, 64] and d["importance"] is True and d["time_step"] is None
    imp = TrainConfig(
        model="simvp", in_steps=2, out_steps=1, patch_size=(32, 48),
        importance={"threshold": 1.0, "floor": 0.3},
    ).importance  # fmt: skip
    assert isinstance(imp, Importance) and imp.floor == 0.3
    cfg = TrainConfig(model="simvp", in_steps=2, out_steps=1, precision="auto")
    assert cfg.resolved(precision_used="bf16").to_dict()["precision"] == "bf16"
    assert cfg.resolved(precision_used="bf16").to_dict()["precision_requested"] == "auto"
    for kw, match in (
        ({"importance": True}, "patch_size"),
        ({"patch_size": (0, 8)}, "patch_size"),
        ({"time_step": "often"}, "per-event"),
        ({"step_tolerance": 1.5}, "step_tolerance"),
        ({"patch_size": 8, "importance": {"floor": 0.1}}, "threshold"),
    ):
        with pytest.raises(DVE, match=match):
            TrainConfig(model="simvp", in_steps=2, out_steps=1, **kw)


def test_numbers_are_canonical():
    # one number is a list of one, as in stgeo.score (the CLI's --option thresholds=10)
    cfg = TrainConfig(**BASE, thresholds=10, val_metric="csi")
    assert cfg.thresholds == (10.0,) and cfg.to_dict()["thresholds"] == [10.0]
    assert TrainConfig(**BASE, thresholds=np.array([1, 5])).thresholds == (1.0, 5.0)
    cfg = TrainConfig(**BASE, seed=np.int64(3), clip_grad=None, weight_decay=0)
    assert type(cfg.seed) is int and cfg.seed == 3 and cfg.clip_grad is None
    offsets = TrainConfig(**{**BASE, "in_steps": None}, input_offsets=[-2.0, 0]).input_offsets
    assert offsets == (-2, 0) and all(type(o) is int for o in offsets)

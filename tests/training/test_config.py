"""TrainConfig: every setting checked on creation, frozen, recorded as JSON."""

from __future__ import annotations

import dataclasses
import json

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

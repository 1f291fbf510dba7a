"""Loading refuses weights that would forecast garbage (NaN/inf, wrong kind) and specs whose
fields cannot be right (time_step "soon")."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from stgeo.errors import ModelFileError
from stgeo.models import ModelSpec, TrainedModel, load_model


@pytest.fixture()
def saved(tmp_path):
    spec = ModelSpec(
        "convlstm", 2, 2, ["rain_rate"], ["rain_rate"], "5min", (16, 16),
        hyperparameters={"hidden": 4, "num_layers": 1, "kernel_size": 3},
        units={"rain_rate": "mm h-1"},
    )  # fmt: skip
    path = tmp_path / "model"
    TrainedModel(spec.build(), spec).save(path)
    return path


def _rewrite(path, change):
    weights = path / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(weights))
    change(tensors)
    save_file(tensors, str(weights), metadata=meta)


def test_clean_model_loads(saved):
    assert load_model(saved).spec.time_step == "5min"


def test_nan_weights_refused(saved):
    def poison(t):
        k = next(k for k, v in t.items() if v.is_floating_point())
        t[k] = t[k].clone()
        t[k].view(-1)[0] = float("nan")

    _rewrite(saved, poison)
    with pytest.raises(ModelFileError, match=r"non-finite values .*\(1 of"):
        load_model(saved)


def test_inf_weights_refused(saved):
    _rewrite(saved, lambda t: t.update({k: v * float("inf") for k, v in list(t.items())[:1]}))
    with pytest.raises(ModelFileError, match="non-finite"):
        load_model(saved)


def test_integer_weights_refused_not_cast(saved):
    _rewrite(saved, lambda t: t.update({k: v.to(torch.int64) for k, v in t.items()}))
    with pytest.raises(
        ModelFileError, match=r"wrongly typed tensors .*torch.int64 vs model torch.float32"
    ):
        load_model(saved)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("time_step", "soon", "time_step='soon'"),
        ("time_step", "-5min", "time_step='-5min'"),
        ("in_steps", True, "in_steps=True"),
        ("out_steps", 0, "out_steps=0"),
        ("channels", "rain_rate", "channels='rain_rate'"),
        ("units", {"rain_rate": 1}, "units="),
    ],
)
def test_malformed_spec_fields(saved, field, value, match):
    p = saved / "spec.json"
    spec = json.loads(p.read_text())
    spec[field] = value
    p.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match=match):
        load_model(saved)

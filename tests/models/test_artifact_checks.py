"""Loading refuses weights that would forecast garbage (NaN/inf, wrong kind, damaged), specs
whose fields cannot be right (time_step "soon", std 0) and a spec.json that is not the spec
saved with the weights."""

import hashlib
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
    # as saved by a run that wrote these weights: the checksum in spec.json is theirs
    spec = json.loads((path / "spec.json").read_text())
    spec["extra"]["weights_file_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (path / "spec.json").write_text(json.dumps(spec))


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
        ("grid_shape", [-1, 16], r"grid_shape=\[-1, 16\]"),
        ("grid_shape", [16], r"grid_shape=\[16\]"),
        ("spatial_dims", ["x", "x"], "spatial_dims="),
        (
            "normalization",
            {"method": "standard", "mean": ["x"], "std": [1.0]},
            "normalization.mean",
        ),
        ("normalization", {"method": "standard", "mean": [0.0], "std": [0.0]}, "std must be > 0"),
        ("normalization", {"method": "log1p", "mean": [0.0], "std": [-5.0]}, "std must be > 0"),
        ("normalization", {"method": "foo", "mean": [0.0], "std": [1.0]}, "'foo'"),
        ("normalization", {"method": "minmax", "min": [0.0]}, "needs"),
        ("normalization", {"method": "standard", "mean": [0, 1], "std": [1, 1]}, "one per channel"),
    ],
)
def test_malformed_spec_fields(saved, field, value, match):
    p = saved / "spec.json"
    spec = json.loads(p.read_text())
    spec[field] = value
    p.write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match=match):
        load_model(saved)


def _edit(path, change):
    p = path / "spec.json"
    spec = json.loads(p.read_text())
    change(spec)
    p.write_text(json.dumps(spec))


@pytest.mark.parametrize(
    ("key", "value"), [("format", "other"), ("format_version", "1"), ("format_version", 0)]
)
def test_foreign_format_refused(saved, key, value):
    _edit(saved, lambda s: s["extra"].update({key: value}))
    with pytest.raises(ModelFileError, match=f"extra.{key}="):
        load_model(saved)


def test_bad_normalization_names_the_file(saved):
    _edit(saved, lambda s: s.update(normalization={"method": "standard", "mean": [0], "std": [0]}))
    with pytest.raises(ModelFileError, match="normalization") as err:
        load_model(saved)
    assert str(saved) in str(err.value)


def test_flipped_bit_in_the_weights_is_detected(saved):
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # inside the last tensor: still a valid safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged or was replaced") as err:
        load_model(saved)
    assert str(weights) in str(err.value)
    # so is the weights file loaded by its own path (its folder's spec.json applies)
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(weights)


def test_model_saved_without_checksum_still_loads(saved):
    """Models saved before the checksum was recorded: no record, no check."""
    _edit(saved, lambda s: s["extra"].pop("weights_file_sha256"))
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert load_model(saved).spec.in_steps == 2


def test_malformed_checksum_refused(saved):
    _edit(saved, lambda s: s["extra"].update(weights_file_sha256="abc"))
    with pytest.raises(ModelFileError, match="not a sha256"):
        load_model(saved)


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (lambda s: s.update(in_steps=5), "['in_steps']"),
        (lambda s: s.update(spatial_dims=["x", "y"]), "['spatial_dims']"),
        (lambda s: s["hyperparameters"].update(hidden=8), "['hyperparameters']"),
        (lambda s: s["extra"].update(note="mine"), "['extra.note']"),
    ],
)
def test_spec_json_must_match_the_spec_saved_with_the_weights(saved, change, fields):
    _edit(saved, change)
    with pytest.raises(ModelFileError, match="disagrees with the spec saved inside") as err:
        load_model(saved)
    assert fields in str(err.value) and "spec.json" in str(err.value)


def test_documented_architecture_rename_is_accepted(tmp_path):
    """docs/models/stresnet.md: a model saved as 'stresnet-small' before the rename loads
    after its spec.json says 'stresnet-stacked-small'."""
    spec = ModelSpec("stresnet-stacked-small", 2, 1, ["flow"], ["flow"], "1h", (8, 8))
    old = ModelSpec("stresnet-small", 2, 1, ["flow"], ["flow"], "1h", (8, 8))
    path = tmp_path / "old"
    TrainedModel(spec.build(), old).save(path)  # what the old name's weights look like
    _edit(path, lambda s: s.update(model="stresnet-stacked-small"))
    assert load_model(path).spec.model == "stresnet-stacked-small"
    _edit(path, lambda s: s.update(model="convlstm"))  # any other rename is refused
    with pytest.raises(ModelFileError, match=r"\['model'\]"):
        load_model(path)

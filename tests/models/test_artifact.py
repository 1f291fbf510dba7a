"""Trained-model artefacts: safetensors + JSON, strict loading, pickle refusal, atomic saving."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle

import pytest
import torch

import stgeo
from stgeo.errors import ModelFileError, OutputExistsError, PathNotFoundError
from stgeo.models import ModelSpec, TrainedModel, load_model
from stgeo.models import artifact as art

TINY = {"hid_S": 4, "hid_T": 8, "N_S": 2, "N_T": 2}


def _tiny(seed: int = 0, **hp) -> TrainedModel:
    torch.manual_seed(seed)
    spec = ModelSpec(
        "simvp",
        3,
        2,
        ["rain_rate"],
        ["rain_rate"],
        "5min",
        (12, 12),
        hyperparameters={**TINY, **hp},
        normalization={"method": "standard", "mean": [0.5], "std": [2.0]},
        units={"rain_rate": "mm h-1"},
        extra={"data_fingerprint": "abc", "metrics": {"val_mse": 0.5}},
    )
    module = spec.build()
    with torch.no_grad():  # make every parameter (also zero-initialised ones) distinctive
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return TrainedModel(module, spec, history=[{"epoch": 1, "train_loss": 1.0}])


def test_round_trip_identical_predictions(tmp_path):
    tm = _tiny()
    path = tm.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.safetensors", "spec.json"]
    spec_json = json.loads((tmp_path / "m" / "spec.json").read_text())
    assert spec_json["model"] == "simvp"
    assert spec_json["hyperparameters"] == TINY
    assert spec_json["extra"]["history"] == [{"epoch": 1, "train_loss": 1.0}]
    back = load_model(path)
    assert back.spec.grid_shape == (12, 12)
    assert back.spec.normalization == tm.spec.normalization
    assert back.history == tm.history
    assert back.metrics == {"val_mse": 0.5}
    x = torch.randn(2, 3, 1, 12, 12)
    tm.module.eval()
    with torch.no_grad():
        assert torch.equal(tm.module(x), back.module(x))
    # the weights file alone is loadable too (the spec rides in its metadata)
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes((tmp_path / "m" / "model.safetensors").read_bytes())
    with torch.no_grad():
        assert torch.equal(load_model(alone).module(x), back.module(x))


def _rehash(folder):
    """Record the sha256 of the folder's (rewritten) weights in its spec.json, as a save of
    those weights would: the tests below need files that are wrong, not damaged."""
    spec = json.loads((folder / "spec.json").read_text())
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    spec["extra"]["weights_file_sha256"] = digest
    (folder / "spec.json").write_text(json.dumps(spec))


def test_tied_weights_round_trip(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 3, bias=False)
            self.b = torch.nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

    t = Tied()
    art.save_state(t.state_dict(), tmp_path / "t.safetensors")
    tensors, _ = art.load_state(tmp_path / "t.safetensors")
    fresh = Tied()
    art.load_strict(fresh, tensors)
    assert torch.equal(fresh.b.weight, t.a.weight)


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything tries to unpickle."""

    def boom(*a, **k):
        raise AssertionError("something tried to unpickle a file")

    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)


@pytest.mark.parametrize("legacy", [False, True])
def test_pickled_checkpoint_is_refused_never_unpickled(tmp_path, legacy, no_unpickling):
    tm = _tiny()
    f = tmp_path / "ckpt.pt"
    with open(f, "wb") as fh:
        torch.save(tm.module.state_dict(), fh, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(ModelFileError, match="never unpickles"):
        load_model(f)
    # a pickle disguised as the weights file of an artefact directory
    d = tmp_path / "disguised"
    tm.save(d)
    (d / "model.safetensors").write_bytes(f.read_bytes())
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(d)
    # a folder of torch checkpoints
    d2 = tmp_path / "hf-style"
    d2.mkdir()
    (d2 / "pytorch_model.bin").write_bytes(f.read_bytes())
    with pytest.raises(ModelFileError, match="never unpickles"):
        load_model(d2)


def test_not_a_model(tmp_path):
    with pytest.raises(PathNotFoundError, match="no model at"):  # also a FileNotFoundError
        load_model(tmp_path / "nothing")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load_model(junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match=r"no model\.safetensors"):
        load_model(empty)
    d = tmp_path / "m"
    _tiny().save(d)
    (d / "spec.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(d)
    (d / "spec.json").write_text(json.dumps({**_tiny().spec.to_dict(), "bogus": 1}))
    with pytest.raises(ModelFileError, match="bogus"):
        load_model(d)
    unknown = dataclasses.replace(_tiny().spec, model="no-such-net")
    TrainedModel(_tiny().module, unknown).save(tmp_path / "u")  # saved as such
    with pytest.raises(ModelFileError, match="not registered"):
        load_model(tmp_path / "u")


def test_mismatched_tensors(tmp_path):
    tm = _tiny()
    d = tmp_path / "m"
    # mis-shaped: the spec (as saved) describes a wider network than the weights
    wider = dataclasses.replace(tm.spec, hyperparameters={**TINY, "hid_S": 6})
    TrainedModel(tm.module, wider).save(d)
    with pytest.raises(ModelFileError, match="shape mismatches"):
        load_model(d)
    # missing and unexpected tensors
    state = dict(tm.module.state_dict())
    gone = next(iter(state))
    state.pop(gone)
    state["surplus.weight"] = torch.zeros(2)
    d2 = tmp_path / "m2"
    tm.save(d2)
    art.save_state(state, d2 / "model.safetensors")
    _rehash(d2)
    with pytest.raises(ModelFileError, match="missing tensors") as err:
        load_model(d2)
    assert gone in str(err.value)
    assert "unexpected tensors ['surplus.weight']" in str(err.value)


def test_save_is_atomic(tmp_path, monkeypatch):
    old = _tiny(seed=1)
    d = tmp_path / "m"
    old.save(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    def crash(tensors, path, metadata=None):
        path.write_bytes(b"half-written")
        raise KeyboardInterrupt("simulated crash while saving")

    monkeypatch.setattr(art, "save_state", crash)
    with pytest.raises(KeyboardInterrupt):
        _tiny(seed=2).save(d, overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging leftovers
    load_model(d)
    with pytest.raises(FileExistsError):
        old.save(d, overwrite=False)
    # a successful overwrite replaces the artefact
    new = _tiny(seed=2)
    new.save(d, overwrite=True)
    x = torch.randn(1, 3, 1, 12, 12)
    new.module.eval()
    with torch.no_grad():
        assert torch.equal(load_model(d).module(x), new.module(x))


def test_type_errors():
    spec = ModelSpec("persistence", 1, 1, ["v"], ["v"], "1h")
    with pytest.raises(stgeo.errors.StgeoTypeError):
        TrainedModel("not a module", spec)
    with pytest.raises(stgeo.errors.StgeoTypeError):
        TrainedModel(spec.build(), spec.to_dict())
    bad = TrainedModel(
        spec.build(), ModelSpec("persistence", 1, 1, ["v"], ["v"], "1h", extra={"x": object()})
    )
    with pytest.raises(stgeo.errors.StgeoTypeError, match="JSON"):
        bad.save("/tmp/never-written-stgeo-model")


def test_overwrite_refuses_a_model_folder_holding_the_users_files(tmp_path):
    d = tmp_path / "m"
    _tiny(seed=1).save(d)
    (d / "README.md").write_text("my notes")
    before = (d / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match=r"README\.md"):
        _tiny(seed=2).save(d, overwrite=True)
    assert (d / "README.md").read_text() == "my notes"
    assert (d / "model.safetensors").read_bytes() == before
    (d / "README.md").unlink()
    _tiny(seed=2).save(d, overwrite=True)  # only stgeo's files: replaced


def test_checksum_recorded_in_spec_json_only(tmp_path):
    """spec.json records the weights' sha256; the spec inside the weights file cannot (a file
    cannot hold its own checksum) and a loaded model's spec does not carry it."""
    d = tmp_path / "m"
    _tiny().save(d)
    doc = json.loads((d / "spec.json").read_text())
    sha = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    assert doc["extra"]["weights_file_sha256"] == sha
    _, meta = art.load_state(d / "model.safetensors")
    assert "weights_file_sha256" not in json.loads(meta["spec"])["extra"]
    back = load_model(d)
    assert "weights_file_sha256" not in back.spec.extra
    back.save(tmp_path / "again")  # re-saved: a fresh checksum of the new file
    load_model(tmp_path / "again")

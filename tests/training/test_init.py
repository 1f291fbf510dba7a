"""Fine-tuning: ``stgeo.train(data, init=...)`` starts from a trained model's weights."""

import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.models import ensemble
from stgeo.training import Callback

KW = dict(epochs=1, batch_size=4, max_steps_per_epoch=2, progress=False)
SMALL = dict(hid_S=8, hid_T=16, N_S=2, N_T=2)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0)


@pytest.fixture(scope="module")
def other():
    """Other data, ten times heavier rain: a re-fitted normaliser would differ."""
    ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=1)
    return ds.assign(rain_rate=ds.rain_rate * 10.0)


@pytest.fixture(scope="module")
def base(storms):
    return stgeo.train(
        storms, model="simvp", in_steps=2, out_steps=2, normalization="log1p", **SMALL, **KW
    )


class _FirstWeights(Callback):
    """Records the network's weights when the fit starts."""

    def on_fit_start(self, state):
        self.weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)


def test_training_starts_from_the_initial_weights_and_keeps_its_normaliser(base, other):
    seen = _FirstWeights()
    tuned = stgeo.train(other, init=base, lr=1e-4, callbacks=[seen], **KW)
    assert _same(seen.weights, base.module.state_dict())
    assert not _same(tuned.module.state_dict(), base.module.state_dict())  # it trained
    assert tuned.spec.model == "simvp" and tuned.spec.hyperparameters == base.spec.hyperparameters
    assert (tuned.in_steps, tuned.out_steps) == (2, 2)
    assert tuned.spec.normalization == base.spec.normalization  # not re-fitted on `other`
    scratch = stgeo.train(
        other, model="simvp", in_steps=2, out_steps=2, normalization="log1p", **SMALL, **KW
    )
    assert scratch.spec.normalization != base.spec.normalization
    rec = tuned.spec.extra["training"]["init"]
    assert rec["source"] == "a TrainedModel (simvp)" and len(rec["weights_sha256"]) == 64
    assert "init" not in scratch.spec.extra["training"]


def test_fine_tuning_fits_no_normaliser(base, other, monkeypatch):
    """The initial model's normaliser is used as is: no pass over the data for statistics,
    on one dataset and on the patch (multi-event) path."""
    from stgeo.data import Normalizer

    def refuse(*args, **kwargs):
        raise AssertionError("a normaliser was fitted while fine-tuning")

    monkeypatch.setattr(Normalizer, "fit", refuse)
    monkeypatch.setattr(Normalizer, "partial_fit", refuse)
    for extra in (
        {},
        {"patch_size": (8, 8)},
        {"patch_size": (8, 8), "importance": {"threshold": 0.1}},
    ):
        tuned = stgeo.train(other, init=base, **extra, **KW)
        assert tuned.spec.normalization == base.spec.normalization
    with pytest.raises(AssertionError, match="normaliser was fitted"):  # the check bites
        stgeo.train(other, model="simvp", in_steps=2, out_steps=2, **SMALL, **KW)


def test_a_saved_folder_and_a_pretrained_name_start_a_run(base, other, tmp_path):
    path = base.save(tmp_path / "base")
    seen = _FirstWeights()
    tuned = stgeo.train(other, init=path, callbacks=[seen], **KW)
    assert _same(seen.weights, base.module.state_dict())
    assert str(tmp_path / "base") in tuned.spec.extra["training"]["init"]["source"]
    pre = stgeo.pretrained.get("storms-convlstm")
    seen = _FirstWeights()
    tuned = stgeo.train(other, init="storms-convlstm", patch_size=(16, 16), callbacks=[seen], **KW)
    assert _same(seen.weights, pre.module.state_dict())
    assert tuned.spec.model == "convlstm" and tuned.out_steps == pre.out_steps
    assert tuned.spec.extra["training"]["init"]["source"] == "pretrained 'storms-convlstm'"


def test_arguments_that_change_the_initial_model_are_refused(base, other):
    for bad, word in (
        ({"model": "convlstm"}, "model='convlstm'"),
        ({"out_steps": 3}, "out_steps=3"),
        ({"in_steps": 4}, "in_steps=4"),
        ({"normalization": "standard"}, "normalization='standard'"),
        ({"hid_S": 16}, "hid_S=16"),
        ({"dropout_rate": 0.5}, "built without it"),
    ):
        with pytest.raises(DataValidationError, match="fixes its architecture") as err:
            stgeo.train(other, init=base, **bad, **KW)
        assert word in str(err.value)
    # the same values are fine (they agree with the initial model)
    stgeo.train(
        other,
        init=base,
        model="simvp",
        in_steps=2,
        out_steps=2,
        normalization="log1p",
        hid_S=8,
        **KW,
    )


def test_data_and_inits_that_do_not_fit_are_clear_errors(base, other, storms):
    with pytest.raises(DataValidationError, match="rename"):
        stgeo.train(other.rename(rain_rate="precip"), init=base, **KW)
    with pytest.raises(DataValidationError, match="neither a pretrained model"):
        stgeo.train(other, init="no-such-model", **KW)
    with pytest.raises(StgeoTypeError, match="init must be"):
        stgeo.train(other, init=3, **KW)
    twin = stgeo.train(
        storms, model="simvp", in_steps=2, out_steps=2, seed=1, normalization="log1p", **SMALL, **KW
    )
    with pytest.raises(DataValidationError, match="seed ensemble"):
        stgeo.train(other, init=ensemble([base, twin]), **KW)


def test_a_checkpoint_resumes_only_from_the_same_start(base, other, storms, tmp_path):
    ck = tmp_path / "ck"
    stgeo.train(other, init=base, checkpoint_dir=ck, **KW)
    again = stgeo.train(other, init=base, checkpoint_dir=ck, **KW)  # resumes: same start
    assert again.spec.extra["training"]["init"]["source"] == "a TrainedModel (simvp)"
    # the same weights named another way (a saved folder) are the same start
    saved = stgeo.train(other, init=base.save(tmp_path / "base"), checkpoint_dir=ck, **KW)
    assert saved.spec.extra["training"]["init"]["source"].endswith("base")
    twin = stgeo.train(
        storms, model="simvp", in_steps=2, out_steps=2, seed=1, normalization="log1p", **SMALL, **KW
    )
    with pytest.raises(DataValidationError, match="different settings"):
        stgeo.train(other, init=twin, checkpoint_dir=ck, **KW)


def test_seeds_fine_tune_each_member_from_the_same_start(base, other):
    ens = stgeo.train(other, init=base, seeds=[0, 1], **KW)
    assert ens.spec.members == 2
    for m in ens.members:
        assert (
            m.spec.extra["training"]["init"]["weights_sha256"]
            == (ens.members[0].spec.extra["training"]["init"]["weights_sha256"])
        )


def test_the_accessor_fine_tunes_too(base, other):
    tuned = other.st.train(init=base, **KW)
    assert tuned.spec.model == "simvp"
    assert tuned.spec.extra["training"]["init"]["source"] == "a TrainedModel (simvp)"


def test_a_per_cell_model_fine_tunes_only_on_its_grid_shape():
    a = stgeo.datasets.crowd_flows(n_days=16, shape=(8, 8), seed=0)
    b = stgeo.datasets.crowd_flows(n_days=16, shape=(8, 12), seed=1)
    kw = dict(epochs=1, batch_size=4, max_steps_per_epoch=1, progress=False)
    m = stgeo.train(a, model="stresnet", out_steps=1, **kw)
    with pytest.raises(DataValidationError, match=r"per-cell parameters of its \(8, 8\)") as e:
        stgeo.train(b, init=m, **kw)
    assert "fusion: (3, 2, 8, 8) vs (3, 2, 8, 12)" in str(e.value)

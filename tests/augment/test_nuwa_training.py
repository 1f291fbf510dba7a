"""NuwaDynamics in training: ``train(augment="nuwa" | {...} | NuwaAugment(...))`` for any
backbone, fitted on the training split, saved with the checkpoints and reused on resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stgeo
import stgeo.augment.nuwa as nuwa
from stgeo.augment.nuwa import NuwaAugment, patch_importance
from stgeo.errors import DataValidationError, StgeoTypeError, UnknownNameError
from stgeo.training import Callback, train

TINY = {
    "simvp": {"hid_S": 4, "hid_T": 8, "N_S": 2, "N_T": 1},
    "convlstm": {"hidden": 4, "num_layers": 1, "patch": 2},
}
NUWA = {"fit_steps": 3, "embed_dim": 16, "k": 0.25, "share": 0.5}
RUN = {
    "variable": "rain_rate", "in_steps": 3, "out_steps": 2, "batch_size": 4,
    "max_steps_per_epoch": 3, "max_val_steps": 1, "precision": "fp32", "progress": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def storms():
    """H != W (16 x 24): patch size ceil(24 / 16) = 2, an 8 x 12 patch grid."""
    return stgeo.testing.storm_cells(n_times=40, shape=(16, 24), seed=1, resolution_km=12)


@pytest.fixture
def fits(monkeypatch):
    """Counts the discovery fits (the real fit runs)."""
    calls = []
    real = nuwa.fit_discovery

    def counting(*args, **kwargs):
        calls.append(kwargs.get("steps"))
        return real(*args, **kwargs)

    monkeypatch.setattr(nuwa, "fit_discovery", counting)
    return calls


class BatchSizes(Callback):
    """Runs after the augmentation: sees the batches the backbone trains on."""

    def __init__(self):
        self.seen = []

    def on_batch_start(self, state, x, y):
        assert x.shape[0] == y.shape[0] and x.shape[-2:] == y.shape[-2:]
        self.seen.append(int(x.shape[0]))


class Crash(Callback):
    """Dies in the second batch of epoch 2 (after the checkpoint of epoch 1)."""

    def on_batch_start(self, state, x, y):
        if state.epoch == 1 and state.batch == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("model", ["simvp", "convlstm"])
def test_augment_nuwa_trains_any_backbone(storms, model, fits, tmp_path):
    sizes = BatchSizes()
    m = train(
        storms, model, epochs=1, augment={"name": "nuwa", **NUWA, "share": 1.0}, seed=3,
        checkpoint_dir=tmp_path / "ck", callbacks=[sizes], **RUN, **TINY[model],
    )  # fmt: skip
    assert fits == [3]  # fitted once, before the first batch, with fit_steps
    assert sizes.seen == [8, 8, 8]  # share=1.0: every sample plus its intervened copy
    assert np.isfinite(m.history[-1]["train_loss"])
    saved = NuwaAugment.load(tmp_path / "ck" / "augment")
    assert saved.fitted and saved.patch_size == 2 and saved.settings()["k"] == 0.25
    assert saved.model.in_steps == 3 and saved.model.token_grid == (8, 12)
    recorded = json.loads(m.spec.extra["training"]["augment"])
    assert recorded == {"name": "nuwa", **NUWA, "share": 1.0}


def test_augment_by_name_uses_a_fresh_copy_of_the_registered_template(storms, fits):
    template = stgeo.augment.get_augmentation("NuwaDynamics")
    assert isinstance(template, NuwaAugment) and not template.fitted
    sizes = BatchSizes()
    train(storms, "simvp", epochs=1, augment="nuwa", seed=0, callbacks=[sizes], **RUN,
          **TINY["simvp"])  # fmt: skip
    assert fits == [200]  # the default settings
    assert sizes.seen == [6, 6, 6]  # share 0.5 of 4
    assert not template.fitted  # the registry's template is untouched


def test_resume_reuses_the_discovery_model_and_is_exact(storms, fits, tmp_path):
    x = torch.randn(2, 3, 1, 16, 24)

    def run(ckdir, callbacks=(), epochs=2, aug=None):
        aug = aug or NuwaAugment(**NUWA, mode="mix")
        m = train(storms, "simvp", epochs=epochs, augment=aug, seed=5, checkpoint_dir=ckdir,
                  callbacks=list(callbacks), **RUN, **TINY["simvp"])  # fmt: skip
        return m, aug

    ref, ref_aug = run(tmp_path / "ref")
    assert len(fits) == 1
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck", [Crash()])
    assert len(fits) == 2
    before = patch_importance(NuwaAugment.load(tmp_path / "ck" / "augment").model, x)
    assert torch.equal(before, patch_importance(ref_aug.model, x))  # deterministic fit
    resumed, aug = run(tmp_path / "ck")
    assert len(fits) == 2  # reused, not refitted
    assert torch.equal(patch_importance(aug.model, x), before)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    for ha, hb in zip(ref.history, resumed.history, strict=True):
        assert hb["train_loss"] == ha["train_loss"] and hb["val_mse"] == ha["val_mse"]
    # other augmentation settings refuse the saved discovery model
    with pytest.raises(DataValidationError, match="other settings"):
        run(tmp_path / "ck", aug=NuwaAugment(**{**NUWA, "k": 3}, mode="mix"), epochs=2)


def test_a_fitted_augmentation_is_used_as_given(storms, fits, tmp_path):
    aug = NuwaAugment(**NUWA).fit([torch.randn(4, 3, 1, 16, 24)], seed=0)
    assert len(fits) == 1
    weights = {k: v.clone() for k, v in aug.model.state_dict().items()}
    train(storms, "simvp", epochs=1, augment=aug, checkpoint_dir=tmp_path / "ck", **RUN,
          **TINY["simvp"])  # fmt: skip
    assert len(fits) == 1
    for k, v in NuwaAugment.load(tmp_path / "ck" / "augment").model.state_dict().items():
        assert torch.equal(v, weights[k])


def test_batches_on_other_grids_than_the_discovery_fit():
    """Crops / other events: the patch size stays, the patch grid follows the batch."""
    aug = NuwaAugment(**{**NUWA, "share": 1.0}).fit([torch.randn(4, 3, 1, 32, 48)], seed=0)
    assert aug.patch_size == 3
    for hw in ((16, 24), (20, 13), (5, 7)):
        x, y = torch.randn(3, 3, 1, *hw), torch.randn(3, 2, 1, *hw)
        aug.reseed(1, 2)
        xa, ya = aug(x, y)
        assert xa.shape == (6, 3, 1, *hw) and torch.equal(ya[3:], y)
        changed = (xa[3:] != x).any(dim=(1, 2))  # (B, H, W): whole patches, all frames
        assert changed.any()


def test_reseed_makes_draws_a_function_of_the_keys():
    aug = NuwaAugment(nuwa.DiscoveryViT(3, 1, patch_size=2, embed_dim=8), share=0.5, mode="mix")
    x, y = torch.randn(5, 3, 1, 8, 10), torch.randn(5, 1, 1, 8, 10)
    aug.reseed(0, 1, 2)
    a = aug(x, y)[0]
    aug(x, y)  # advances the generator
    aug.reseed(0, 1, 2)
    assert torch.equal(aug(x, y)[0], a)
    aug.reseed(0, 1, 3)
    assert not torch.equal(aug(x, y)[0], a)


def test_fit_ignores_no_data():
    x = torch.randn(4, 2, 1, 12, 12)
    x[:, :, :, :4] = float("nan")
    vit = nuwa.fit_discovery([x], steps=3, embed_dim=8, seed=0)
    assert all(np.isfinite(vit.train_losses))
    assert torch.isfinite(patch_importance(vit, torch.nan_to_num(x))).all()


def test_settings_and_errors(tmp_path):
    with pytest.raises(DataValidationError, match="no discovery model yet"):
        NuwaAugment()(torch.randn(2, 3, 1, 8, 8), torch.randn(2, 1, 1, 8, 8))
    with pytest.raises(DataValidationError, match="no discovery model yet"):
        NuwaAugment().save(tmp_path / "n")
    with pytest.raises(StgeoTypeError, match="unknown NuwaDynamics setting"):
        NuwaAugment().replace(kk=1)
    for bad in ({"share": 1.5}, {"fit_steps": 0}, {"fit_batches": 0}):
        with pytest.raises(DataValidationError):
            NuwaAugment(**bad)
    fitted = NuwaAugment(**NUWA).fit([torch.randn(2, 3, 1, 8, 8)])
    assert fitted.replace(k=2, p=1.0).model is fitted.model  # intervention settings only
    refit = fitted.replace(embed_dim=8)
    assert not refit.fitted and refit.patch_size is None
    # never overwrite what stgeo did not write
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "nuwa.json").write_text("{}")
    with pytest.raises(DataValidationError, match="did not write"):
        fitted.save(tmp_path / "x")
    assert (tmp_path / "x" / "nuwa.json").read_text() == "{}"


def test_augment_mapping_errors(storms):
    from stgeo.training.callbacks import augmentation

    with pytest.raises(StgeoTypeError, match="needs the registered name"):
        augmentation({"k": 0.1})
    with pytest.raises(StgeoTypeError, match="unknown NuwaDynamics setting"):
        augmentation({"name": "nuwa", "kay": 0.1})
    with pytest.raises(UnknownNameError):
        augmentation({"name": "nuwaa"})
    stgeo.augment.register_augmentation("test-nuwa-flip", lambda x, y: (x, y), overwrite=True)
    try:
        with pytest.raises(StgeoTypeError, match="takes no settings"):
            augmentation({"name": "test-nuwa-flip", "p": 0.5})
        assert augmentation({"name": "test-nuwa-flip"}).fn(1, 2) == (1, 2)
    finally:
        stgeo._registry.AUGMENTATIONS.remove("test-nuwa-flip")

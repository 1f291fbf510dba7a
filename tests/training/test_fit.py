"""stgeo.training: the one training loop (splits, normaliser, schedule, early stopping, resume)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import stgeo
from stgeo._registry import AUGMENTATIONS
from stgeo.data import Normalizer, to_frames
from stgeo.errors import DataValidationError, OutputExistsError, UnknownNameError
from stgeo.models import load_model, register_model
from stgeo.training import train
from stgeo.training.schedules import lr_factor

REPO = Path(__file__).resolve().parents[1]
TINY = {"hid_S": 4, "hid_T": 8, "N_S": 2, "N_T": 1}
FAST = {"precision": "fp32", "progress": False, "batch_size": 4}


class LastFrameConv(torch.nn.Module):
    """A tiny forecaster without batch norm: a 3x3 convolution of the last frame."""

    def __init__(self, out_steps):
        super().__init__()
        self.out_steps = out_steps
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        y = self.conv(x[:, -1])
        return y.unsqueeze(1).expand(-1, self.out_steps, -1, -1, -1)


register_model(
    "test-train-conv",
    lambda in_steps, out_steps, channels, grid_shape=None: LastFrameConv(out_steps),
    overwrite=True,
)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0, resolution_km=12)


def _weights(m):
    return {k: v.detach().clone() for k, v in m.module.state_dict().items()}


def test_train_tiny_simvp(tmp_path, storms):
    m = train(
        storms,
        "simvp",
        variable="rain_rate",
        in_steps=3,
        out_steps=2,
        epochs=2,
        max_steps_per_epoch=3,
        thresholds=[0.1, 1.0],
        checkpoint_dir=tmp_path / "ck",
        **TINY,
        **FAST,
    )
    assert [h["epoch"] for h in m.history] == [1, 2]
    for h in m.history:
        assert np.isfinite(h["train_loss"]) and np.isfinite(h["val_mse"])
        assert len(h["val_csi"]) == 2 and 0 <= h["val_csi_m"] <= 1
        assert h["samples_per_s"] > 0 and 0 <= h["data_wait_fraction"] <= 1
    s = m.spec
    assert (s.model, s.in_steps, s.out_steps, s.grid_shape) == ("simvp", 3, 2, (16, 16))
    assert s.channels == ["rain_rate"] and s.time_step == "5min"
    assert s.units == {"rain_rate": "mm h-1"}
    assert s.hyperparameters == TINY
    assert len(s.extra["data_fingerprint"]) == 16
    # default split: the last 10% of time is validation; the normaliser saw the train part only
    tr_end = storms.time.values[35]
    assert s.extra["training"]["splits"]["train"][1].startswith(str(tr_end)[:16].replace("T", " "))
    expect = Normalizer("standard").fit(to_frames(storms).sel(time=slice(None, tr_end)))
    assert s.normalization == expect.to_dict()
    met = m.metrics
    assert met["best_epoch"] in (1, 2) and met["val_mse"] == min(h["val_mse"] for h in m.history)
    assert met["persistence_val_mse"] > 0
    # the final artefact is written next to the checkpoints and predicts the same
    back = load_model(tmp_path / "ck" / "model")
    x = torch.randn(2, 3, 1, 16, 16)
    m.module.eval()
    with torch.no_grad():
        assert torch.equal(back.module(x), m.module(x))
    assert back.history == m.history


def test_seed_reproducible(storms):
    kw = dict(
        variable="rain_rate",
        in_steps=2,
        out_steps=2,
        epochs=1,
        max_steps_per_epoch=2,
        drop_path=0.2,
        **TINY,
        **FAST,
    )
    a, b = train(storms, "simvp", seed=3, **kw), train(storms, "simvp", seed=3, **kw)
    c = train(storms, "simvp", seed=4, **kw)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a.history[0]["val_mse"] == b.history[0]["val_mse"]


def test_early_stopping_and_schedules(storms):
    m = train(
        storms,
        "test-train-conv",
        in_steps=2,
        out_steps=1,
        epochs=6,
        patience=1,
        lr=1e-12,
        max_steps_per_epoch=1,
        **FAST,
    )
    # no improvement after the first epoch (lr ~ 0): stop after patience more epochs
    assert len(m.history) == 2 and m.metrics["early_stopped"] and m.metrics["best_epoch"] == 1
    cos = [lr_factor("cosine", 100, 10)(s) for s in range(100)]
    assert cos[0] < cos[5] < cos[10] == pytest.approx(1.0) and cos[99] < 0.01
    one = [lr_factor("onecycle", 100, 30)(s) for s in range(101)]
    assert one[0] == pytest.approx(1 / 25) and one[30] == pytest.approx(1.0)
    assert one[100] == pytest.approx(1e-4) and max(one) == pytest.approx(1.0)
    m = train(
        storms,
        "simvp",
        in_steps=2,
        out_steps=1,
        epochs=1,
        schedule="onecycle",
        max_steps_per_epoch=2,
        **TINY,
        **FAST,
    )
    assert m.history[0]["lr"] == pytest.approx(1e-3 * 1e-4, rel=1e-3)  # annealed at the end


def test_splits_from_catalog_and_explicit(tmp_path, storms):
    times = storms.time.values
    cat = tmp_path / "cat.yaml"
    cat.write_text(
        textwrap.dedent(f"""
        datasets:
          - name: test-train-storms
            store: {tmp_path / "none.zarr"}
            variables: [rain_rate]
            time_step: 5min
            thresholds: [0.5]
            splits:
              train: ["{str(times[0])[:16]}", "{str(times[27])[:16]}"]
              val: ["{str(times[28])[:16]}", "{str(times[39])[:16]}"]
    """)
    )
    ds = storms.assign_attrs(stgeo_catalog="test-train-storms")
    with stgeo.set_options(catalog_paths=[str(cat)]):
        m = train(
            ds, "simvp", in_steps=2, out_steps=1, epochs=1, max_steps_per_epoch=1, **TINY, **FAST
        )
    tr = m.spec.extra["training"]
    assert tr["split_source"] == "catalog 'test-train-storms'"
    assert tr["thresholds"] == [0.5]  # the catalog's default thresholds
    assert "val_csi_m" in m.metrics
    expect = Normalizer().fit(to_frames(storms).isel(time=slice(0, 28)))
    assert m.spec.normalization == expect.to_dict()
    m = train(
        storms,
        "simvp",
        in_steps=2,
        out_steps=1,
        epochs=1,
        max_steps_per_epoch=1,
        splits={"train": 0.5, "val": 0.5},
        **TINY,
        **FAST,
    )
    assert m.spec.extra["training"]["splits"]["val"][0].startswith(str(times[20])[:10])
    m = train(
        storms,
        "simvp",
        in_steps=2,
        out_steps=1,
        epochs=1,
        max_steps_per_epoch=1,
        splits={"train": (str(times[0]), str(times[30]))},
        **TINY,
        **FAST,
    )
    assert "val_mse" not in m.history[0] and m.metrics["best_epoch"] is None
    with pytest.raises(DataValidationError, match="overlap"):
        train(
            storms,
            "simvp",
            in_steps=2,
            out_steps=1,
            **TINY,
            **FAST,
            splits={"train": (str(times[0]), str(times[30])), "val": (str(times[20]), None)},
        )


def test_aux_loss_and_augmentation_are_used(storms):
    calls = {"aux": 0, "aug": 0}

    def aux(pred, target):
        calls["aux"] += 1
        return (pred - target).abs().mean()

    class Tiny(torch.nn.Module):
        def __init__(self, out_steps):
            super().__init__()
            self.out_steps = out_steps
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            y = self.conv(x[:, -1])
            return y.unsqueeze(1).expand(-1, self.out_steps, -1, -1, -1)

    register_model(
        "test-train-tiny",
        lambda in_steps, out_steps, channels, grid_shape=None: Tiny(out_steps),
        overwrite=True,
        auxiliary_loss=(aux, 0.5),
    )

    def flip(x, y):
        calls["aug"] += 1
        return x.flip(-1), y.flip(-1)

    AUGMENTATIONS.add("test-train-flip", flip, overwrite=True)
    try:
        train(
            storms,
            "test-train-tiny",
            in_steps=1,
            out_steps=2,
            epochs=2,
            max_steps_per_epoch=2,
            augment="test-train-flip",
            **FAST,
        )
    finally:
        AUGMENTATIONS.remove("test-train-flip")
    assert calls == {"aux": 4, "aug": 4}
    # TAU declares its differential-divergence regulariser; training runs with it
    m = train(
        storms, "tau", in_steps=2, out_steps=2, epochs=1, max_steps_per_epoch=1, **TINY, **FAST
    )
    assert np.isfinite(m.history[0]["train_loss"])
    with pytest.raises(UnknownNameError):
        train(storms, "test-train-tiny", in_steps=1, out_steps=1, augment="no-such-aug", **FAST)


def test_baseline_is_scored_not_trained(storms):
    m = train(storms, "persistence", in_steps=1, out_steps=3, **FAST)
    assert m.history == []
    assert m.metrics["val_mse"] == pytest.approx(m.metrics["persistence_val_mse"])


def test_errors(storms):
    base = dict(in_steps=2, out_steps=1, **TINY, **FAST)
    with pytest.raises(DataValidationError, match="out_steps"):
        train(storms, "simvp", in_steps=2, **FAST)
    with pytest.raises(DataValidationError, match="thresholds"):
        train(storms, "simvp", val_metric="csi", **base)
    with pytest.raises(DataValidationError, match="schedule"):
        train(storms, "simvp", schedule="linear", **base)
    with pytest.raises(UnknownNameError):
        train(storms, "simvpp", **base)
    with pytest.raises(UnknownNameError):
        train(storms, "simvp", variable="rain", **base)
    with pytest.raises(DataValidationError):
        train(storms.isel(time=slice(0, 3)), "simvp", in_steps=4, out_steps=2, **FAST)
    bad = storms.copy(deep=True)
    bad["rain_rate"][5, 2, 2] = np.inf  # NaN is no-data (accepted), inf is refused
    with pytest.raises(DataValidationError, match=r"infinite"):
        train(bad, "simvp", epochs=1, **base)


def test_input_offsets_errors_are_the_windows_own(storms):
    # the window's own message, not ST-ResNet's advice (len_t, len_p) for its declared window
    with pytest.raises(DataValidationError, match=r"must be <= 0 and end with 0") as err:
        train(storms, "test-train-conv", input_offsets=[-1, 0, 1], out_steps=1, **FAST)
    assert "len_t" not in str(err.value) and "trend" not in str(err.value)


def test_log1p_refuses_training_data_below_zero(storms):
    shifted = storms.copy(deep=True)
    shifted["rain_rate"] = storms.rain_rate - 5.0  # an offset; the standard name is dropped so
    shifted.rain_rate.attrs = {"units": "mm h-1"}  # that only the normaliser looks at the sign
    with pytest.raises(DataValidationError, match=r"log1p.*'rain_rate' down to -5"):
        train(shifted, "test-train-conv", in_steps=1, out_steps=1, normalization="log1p", **FAST)


def test_a_latest_json_stgeo_did_not_write_is_kept(tmp_path, storms):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "latest.json").write_text('{"mine": 1}')
    for resume in (True, False):
        with pytest.raises(OutputExistsError, match="latest.json that stgeo did not write"):
            train(
                storms, "test-train-conv", in_steps=1, out_steps=1, epochs=1, resume=resume,
                checkpoint_dir=ck, **FAST,
            )  # fmt: skip
    assert os.listdir(ck) == ["latest.json"]
    assert (ck / "latest.json").read_text() == '{"mine": 1}'


# -- resume after a hard kill ------------------------------------------------------------
SCRIPT = """
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from stgeo.training import train

store, ckdir, kill_at, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
calls = {"n": 0}


def hook(x, y):  # the augmentation slot doubles as a "crash here" switch
    calls["n"] += 1
    if calls["n"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return x, y


m = train(store, "simvp", variable="rain_rate", in_steps=3, out_steps=2, epochs=3, batch_size=4,
          max_steps_per_epoch=3, lr=3e-3, precision="fp32", seed=7, checkpoint_dir=ckdir,
          progress=False, augment=hook, hid_S=4, hid_T=8, N_S=2, N_T=1, drop_path=0.2)
with open(out, "w") as f:
    json.dump({"history": m.history, "metrics": m.metrics}, f)
"""


def _run(script, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=2, resolution_km=12)
    store = stgeo.to_zarr(ds, tmp_path / "storms.zarr", chunks={"time": 8})
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    # reference run and the run that dies mid-way through epoch 2 (its 5th of 9 batches)
    ref = _run(script, store, tmp_path / "ck-ref", 0, tmp_path / "ref.json")
    killed = _run(script, store, tmp_path / "ck", 5, tmp_path / "killed.json")
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err
    assert not (tmp_path / "killed.json").exists()
    latest = json.loads((tmp_path / "ck" / "latest.json").read_text())
    assert latest["epoch"] == 1  # the checkpoint of epoch 1 survived the kill
    assert not (tmp_path / "ck" / "model").exists()
    resumed = _run(script, store, tmp_path / "ck", 0, tmp_path / "resumed.json")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    a = json.loads((tmp_path / "ref.json").read_text())
    b = json.loads((tmp_path / "resumed.json").read_text())
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3]
    for ha, hb in zip(a["history"], b["history"], strict=True):
        for key in ("train_loss", "val_mse", "lr"):  # identical on CPU with the same seed
            assert hb[key] == ha[key], (key, ha, hb)
    assert b["metrics"] == a["metrics"]
    assert load_model(tmp_path / "ck" / "model").spec.extra["history"] == b["history"]
    # a finished run resumes to the same result without training again
    # the settings of SCRIPT
    same = dict(
        variable="rain_rate", in_steps=3, out_steps=2, epochs=3, batch_size=4,
        max_steps_per_epoch=3, lr=3e-3, precision="fp32", seed=7,
        checkpoint_dir=tmp_path / "ck", progress=False, augment=_main_hook,
        hid_S=4, hid_T=8, N_S=2, N_T=1, drop_path=0.2,
    )  # fmt: skip
    again = train(store, "simvp", **same)
    assert again.metrics == a["metrics"]
    # different settings refuse to resume from the checkpoint
    with pytest.raises(DataValidationError, match="different settings"):
        train(store, "simvp", **{**same, "epochs": 4})


def _main_hook(x, y):
    """An identity augmentation named like the script's ``__main__.hook``."""
    return x, y


_main_hook.__module__ = "__main__"
_main_hook.__qualname__ = "hook"


def test_optimizer_state_round_trip_keeps_channels_last_layout(tmp_path):
    """Moments come back from safetensors dense; the fused AdamW kernel needs them laid
    out like their (channels-last) parameters, or the resumed steps silently diverge."""
    import copy

    import torch

    from stgeo.models.artifact import load_state, save_state
    from stgeo.training import make_optimizer
    from stgeo.training.checkpoint import load_optimizer_state, optimizer_state

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Conv2d(8, 2, 1))
    m.to(memory_format=torch.channels_last)
    x = torch.randn(2, 4, 6, 6)

    def step(net, opt):
        opt.zero_grad()
        net(x).square().sum().backward()
        opt.step()

    opt = make_optimizer(list(m.parameters()), 1e-2, 0.01)
    for _ in range(3):
        step(m, opt)
    tensors, doc = optimizer_state(opt)
    save_state(tensors, tmp_path / "s.safetensors", {})
    loaded, _ = load_state(tmp_path / "s.safetensors")
    m2 = copy.deepcopy(m)
    opt2 = make_optimizer(list(m2.parameters()), 1e-2, 0.01)
    load_optimizer_state(opt2, loaded, json.loads(json.dumps(doc)))
    for p in m2.parameters():
        for v in opt2.state[p].values():
            if v.shape == p.shape:
                assert v.stride() == p.stride()
    step(m, opt)
    step(m2, opt2)
    for a, b in zip(m.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_loss_choice_and_pixel_weights(storms):
    kw = dict(variable="rain_rate", in_steps=2, out_steps=2, epochs=1, max_steps_per_epoch=3)
    kw.update(FAST, lr=1e-12, seed=1)  # weights barely move: the same batches, same model
    base = train(storms, "test-train-conv", **kw)
    everywhere = train(storms, "test-train-conv", loss_weights={-1e9: 3.0}, **kw)
    nowhere = train(storms, "test-train-conv", loss_weights=[1e9], **kw)
    mae = train(storms, "test-train-conv", loss="mae", **kw)
    both = train(storms, "test-train-conv", loss="mse+mae", loss_weights=[2, 5], **kw)
    loss = base.history[0]["train_loss"]
    assert everywhere.history[0]["train_loss"] == pytest.approx(3 * loss, rel=1e-6)
    assert nowhere.history[0]["train_loss"] == pytest.approx(loss, rel=1e-12)
    assert mae.history[0]["train_loss"] != pytest.approx(loss, rel=1e-3)
    assert both.history[0]["train_loss"] > mae.history[0]["train_loss"]
    training = both.spec.extra["training"]
    assert training["loss"] == "mse+mae"
    assert training["loss_weights"] == [[2.0, 2.0], [5.0, 5.0]]


@pytest.mark.parametrize(
    ("kw", "err", "match"),
    [
        ({"loss": "huber"}, DataValidationError, "mse, mae, mse\\+mae"),
        ({"loss_weights": []}, DataValidationError, "empty"),
        ({"loss_weights": {1.0: -2.0}}, DataValidationError, "positive weights"),
        ({"loss_weights": [1.0, 1.0]}, DataValidationError, "repeated"),
        ({"loss_weights": "heavy"}, stgeo.errors.StgeoTypeError, "list of thresholds"),
    ],
)
def test_loss_errors(storms, kw, err, match):
    with pytest.raises(err, match=match):
        train(storms, "test-train-conv", variable="rain_rate", out_steps=2, **FAST, **kw)

"""Training hooks: order and state of the callbacks, batch transforms, stopping, progress."""

from __future__ import annotations

import pytest
import torch

import stgeo
from stgeo._registry import AUGMENTATIONS
from stgeo.errors import StgeoTypeError
from stgeo.models import register_model
from stgeo.training import Callback, TimeLimit, TrainState, train
from stgeo.training.callbacks import CallbackList

FAST = {"precision": "fp32", "progress": False, "batch_size": 4}


class SeeingConv(torch.nn.Module):
    """A 3x3 convolution of the last frame that remembers the training inputs it saw."""

    def __init__(self, out_steps):
        super().__init__()
        self.out_steps = out_steps
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.train_inputs: list[torch.Tensor] = []

    def forward(self, x):
        if self.training:
            self.train_inputs.append(x.detach().clone())
        return self.conv(x[:, -1]).unsqueeze(1).expand(-1, self.out_steps, -1, -1, -1)


register_model(
    "test-cb-seeing",
    lambda in_steps, out_steps, channels, grid_shape=None: SeeingConv(out_steps),
    overwrite=True,
)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0, resolution_km=12)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def _log(self, name, state):
        self.events.append((name, state.epoch, state.step))

    def on_fit_start(self, state):
        assert isinstance(state, TrainState) and state.history == []
        self.model = state.model
        self._log("fit_start", state)

    def on_epoch_start(self, state):
        self._log("epoch_start", state)

    def on_batch_start(self, state, x, y):
        assert x.shape[0] == 4 and state.batch in (0, 1)
        self._log("batch_start", state)

    def on_batch_end(self, state):
        assert torch.isfinite(state.loss) and state.optimizer is not None
        self._log("batch_end", state)

    def on_validation_end(self, state):
        assert set(state.metrics) == {"val_mse", "val_csi", "val_csi_m"}
        self._log("validation_end", state)

    def on_epoch_end(self, state):
        assert state.record is state.history[-1] and state.record["epoch"] == state.epoch + 1
        assert state.record["val_mse"] == state.metrics["val_mse"]
        self._log("epoch_end", state)

    def on_fit_end(self, state):
        assert len(state.history) == 2
        self._log("fit_end", state)


def test_hooks_fire_in_order_with_the_state(storms):
    rec = Recorder()
    m = train(
        storms,
        "test-cb-seeing",
        in_steps=2,
        out_steps=1,
        epochs=2,
        max_steps_per_epoch=2,
        thresholds=[0.5],
        callbacks=[rec],
        **FAST,
    )
    epoch = [
        ("epoch_start", 0, 0),
        ("batch_start", 0, 0),
        ("batch_end", 0, 1),
        ("batch_start", 0, 1),
        ("batch_end", 0, 2),
        ("validation_end", 0, 2),
        ("epoch_end", 0, 2),
    ]
    second = [(name, 1, step + 2) for name, _, step in epoch]
    assert rec.events == [("fit_start", 0, 0), *epoch, *second, ("fit_end", 1, 4)]
    assert rec.model is m.module
    assert [h["epoch"] for h in m.history] == [1, 2]


def test_batch_transforms_change_what_the_model_sees(storms):
    class Double(Callback):
        def on_batch_start(self, state, x, y):
            return x * 2, y

    class Count(Callback):  # returns None: the batch is left as it is
        n = 0

        def on_batch_start(self, state, x, y):
            Count.n += 1

    def plus_one(x, y):
        return x + 1, y

    kw = dict(in_steps=2, out_steps=1, epochs=1, max_steps_per_epoch=2, **FAST)
    plain = train(storms, "test-cb-seeing", **kw).module.train_inputs
    AUGMENTATIONS.add("test-cb-plus-one", plus_one, overwrite=True)
    try:
        seen = train(
            storms,
            "test-cb-seeing",
            augment="test-cb-plus-one",
            callbacks=[Double(), Count()],
            **kw,
        ).module.train_inputs
    finally:
        AUGMENTATIONS.remove("test-cb-plus-one")
    assert len(seen) == len(plain) == 2 and Count.n == 2
    # the augmentation runs first, then the callbacks in the order given
    for a, b in zip(plain, seen, strict=True):
        assert torch.equal(b, (a + 1) * 2)


def test_a_callback_can_stop_training(storms):
    class StopAfterFirst(Callback):
        def on_epoch_end(self, state):
            state.stop = True

    m = train(
        storms,
        "test-cb-seeing",
        in_steps=2,
        out_steps=1,
        epochs=5,
        max_steps_per_epoch=1,
        callbacks=[StopAfterFirst()],
        **FAST,
    )
    assert len(m.history) == 1 and m.metrics["early_stopped"] is True


def test_time_limit_stops_within_the_budget(storms):
    ticks = iter(range(0, 1000, 10))  # every reading of the clock advances 10 s
    kw = dict(in_steps=2, out_steps=1, epochs=6, max_steps_per_epoch=1, **FAST)
    # fit start at 0 s; epoch ends read 10, 20, 30 s: 30 + 10 > 35 stops after epoch 3
    m = train(storms, "test-cb-seeing", callbacks=[TimeLimit(35, lambda: next(ticks))], **kw)
    assert len(m.history) == 3 and m.metrics["early_stopped"] is True
    m = train(storms, "test-cb-seeing", callbacks=[TimeLimit(1e6)], **kw)
    assert len(m.history) == 6
    with pytest.raises(StgeoTypeError, match="positive number of seconds"):
        TimeLimit(0)


def test_progress_bar_is_a_callback(storms, capsys):
    train(
        storms,
        "test-cb-seeing",
        in_steps=2,
        out_steps=1,
        epochs=1,
        max_steps_per_epoch=1,
        **{**FAST, "progress": True},
    )
    out = capsys.readouterr()
    text = out.out + out.err
    assert "epoch 1/1: train loss" in text and "val mse" in text


def test_callback_errors_and_no_op_hooks(storms):
    with pytest.raises(StgeoTypeError, match="Callback"):
        train(storms, "test-cb-seeing", in_steps=2, out_steps=1, callbacks=[print], **FAST)
    cbs = CallbackList([Callback()])
    assert all(not hooks for hooks in cbs._hooks.values())  # base hooks are never called
    x, y = torch.zeros(1), torch.ones(1)
    assert cbs.on_batch_start(None, x, y) == (x, y)


class FakeTrainable:
    """A minimal TrainableAugmentation: 'fits' the mean of the training inputs."""

    def __init__(self):
        self.mean, self.fit_batches, self.keys, self.saved, self.restored = None, 0, [], [], []

    @property
    def fitted(self):
        return self.mean is not None

    def fit(self, batches, *, seed=0, device=None):
        xs = [x for x, _ in batches]
        self.fit_batches, self.mean = len(xs), float(torch.cat(xs).mean())
        return self

    def save(self, path):
        path.mkdir(parents=True, exist_ok=True)
        (path / "mean.txt").write_text(repr(self.mean))
        self.saved.append(path)
        return path

    def restore(self, path):
        self.mean = float((path / "mean.txt").read_text())
        self.restored.append(path)
        return self

    def reseed(self, *keys):
        self.keys.append(keys)

    def replace(self, **settings):
        return FakeTrainable()

    def to(self, device):
        return self

    def __call__(self, x, y):
        return x - self.mean, y


def test_trainable_augmentations_are_fitted_saved_and_restored(storms, tmp_path):
    from stgeo.augment import TrainableAugmentation

    aug = FakeTrainable()
    assert isinstance(aug, TrainableAugmentation)
    kw = dict(in_steps=2, out_steps=1, batch_size=4, max_steps_per_epoch=2, precision="fp32",
              progress=False, seed=4, checkpoint_dir=tmp_path, augment=aug)  # fmt: skip
    train(storms, "test-cb-seeing", epochs=1, **kw)
    assert aug.fit_batches > 2  # the whole training loader, not just the capped steps
    assert aug.saved == [tmp_path / "augment"] and aug.restored == []
    assert aug.keys == [(4, 0, 0, 0), (4, 0, 1, 0)]  # (seed, epoch, batch, rank)
    again = FakeTrainable()
    with pytest.raises(Exception, match="different settings"):  # epochs differ: no resume
        train(storms, "test-cb-seeing", epochs=2, **{**kw, "augment": again})
    train(storms, "test-cb-seeing", epochs=1, **{**kw, "augment": again})  # finished: resumed
    assert again.restored == [tmp_path / "augment"] and again.fit_batches == 0
    assert again.mean == aug.mean

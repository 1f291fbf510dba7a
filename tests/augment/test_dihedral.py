"""stgeo.augment.dihedral: flips and quarter turns, the same for inputs and targets, seeded
per batch in training so that a resumed run is exact."""

from __future__ import annotations

import pytest
import torch

import stgeo
from stgeo.augment import get_augmentation
from stgeo.augment.dihedral import Dihedral, dihedral
from stgeo.errors import DataValidationError
from stgeo.training import Callback, train

RUN = {
    "variable": "rain_rate", "in_steps": 3, "out_steps": 2, "batch_size": 4,
    "max_steps_per_epoch": 3, "max_val_steps": 1, "precision": "fp32", "progress": False,
    "hidden": 4, "num_layers": 1, "patch": 2,
}  # fmt: skip


def test_the_eight_codes_are_the_symmetries_of_the_square():
    t = torch.arange(9.0).view(3, 3)
    images = {tuple(dihedral(t, c).flatten().tolist()) for c in range(8)}
    assert len(images) == 8  # all different
    for img in images:
        assert sorted(img) == list(range(9))  # values moved, not changed
    assert torch.equal(dihedral(t, 2), t.flip(-1).flip(-2))  # the half turn
    assert torch.equal(dihedral(t, 6), t.flip(-2))  # flip then half turn: up-down flip
    with pytest.raises(DataValidationError, match="0..7"):
        dihedral(t, 8)


def test_every_symmetry_is_drawn_and_inputs_and_targets_move_together():
    aug = Dihedral(seed=3)
    x = torch.arange(16.0).view(1, 1, 1, 4, 4).repeat(400, 2, 1, 1, 1)
    y = x[:, -1:] * 10 + 1
    xa, ya = aug(x, y)
    assert torch.equal(ya, xa[:, -1:] * 10 + 1)
    assert torch.equal(xa[:, 0], xa[:, 1])  # the frames of a sample move together
    assert len({tuple(s.flatten().tolist()) for s in xa[:, 0]}) == 8
    # H != W: only the four symmetries that keep the shape
    x = torch.arange(12.0).view(1, 1, 1, 3, 4).repeat(200, 1, 1, 1, 1)
    xa, ya = aug(x, x.clone())
    assert xa.shape == x.shape and torch.equal(xa, ya)
    assert len({tuple(s.flatten().tolist()) for s in xa[:, 0]}) == 4


def test_reseed_makes_draws_a_function_of_the_keys():
    x = torch.rand(16, 2, 1, 5, 5)
    a, b = Dihedral(seed=1), Dihedral(seed=1)
    a.reseed(1, 0, 2, 0)
    b(x, x)  # b's generator moved on
    b.reseed(1, 0, 2, 0)
    assert torch.equal(a(x, x)[0], b(x, x)[0])
    b.reseed(1, 0, 3, 0)
    assert not torch.equal(a(x, x)[0], b(x, x)[0])


def test_shapes_are_checked():
    with pytest.raises(DataValidationError, match="same grid"):
        Dihedral()(torch.rand(2, 3, 1, 4, 4), torch.rand(2, 1, 1, 4, 5))
    with pytest.raises(DataValidationError, match=r"\(B, T_in, C, H, W\)"):
        Dihedral()(torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4))


class Seen(Callback):
    """Records the (augmented) batches the model trains on."""

    def __init__(self):
        self.batches = []

    def on_batch_start(self, state, x, y):
        self.batches.append(x.clone())


def test_train_by_name_is_seeded_per_batch():
    storms = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=1, resolution_km=12)
    runs = []
    for _ in range(2):
        seen = Seen()
        m = train(storms, "convlstm", epochs=2, augment="dihedral", seed=5, callbacks=[seen],
                  **RUN)  # fmt: skip
        runs.append((m, seen.batches))
    (m1, b1), (m2, b2) = runs
    assert len(b1) == 6 and all(torch.equal(p, q) for p, q in zip(b1, b2, strict=True))
    for (k, v), w in zip(
        m1.module.state_dict().items(), m2.module.state_dict().values(), strict=True
    ):
        assert torch.equal(v, w), k
    assert m1.spec.extra["training"]["augment"] == "dihedral"
    # the batches were transformed: not what the same run without augmentation trains on
    seen = Seen()
    train(storms, "convlstm", epochs=1, seed=5, callbacks=[seen], **RUN)
    assert not all(torch.equal(p, q) for p, q in zip(seen.batches, b1[:3], strict=True))
    assert get_augmentation("dihedral") is get_augmentation("DIHEDRAL")

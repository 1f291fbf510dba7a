"""Grid rules of the registry: declared for every model, and true (checked on the networks)."""

from __future__ import annotations

import pytest
import torch
from test_contract import LEARNED, MODELS, build, call, small

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.models import GridRule, ModelSpec, TrainedModel, check_grid, grid_rule
from stgeo.models.base import MODELS as REGISTRY


@pytest.mark.parametrize("name", MODELS)
def test_every_model_declares_its_grid_rule(name):
    assert REGISTRY.entry(name).meta.get("grid") is not None, f"{name} declares no grid rule"
    rule = grid_rule(name)
    assert isinstance(rule, GridRule)
    assert rule.fully_convolutional or rule.note, "say why a model is not fully convolutional"


@pytest.mark.parametrize("name", [*LEARNED, "persistence", "climatology"])
def test_declared_rule_is_true(name):
    """Fully convolutional = a change in one corner leaves the far corner's forecast unchanged
    (the receptive field of the small configurations is well below the 48-pixel distance);
    any other model's forecast there changes. The grid is a multiple of the declared
    ``multiple``, which the model must accept as is."""
    rule = grid_rule(name, **small(name))
    n = 64
    assert n % rule.multiple == 0
    model = build(name, grid_shape=(n, n)).eval()
    with torch.no_grad():  # no zero-initialised branch may hide a global path
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        x = torch.rand(1, 3, 2, n, n)
        y0 = call(model, x)
        x[..., :8, :8] += 5.0
        y1 = call(model, x)
    assert y0.shape[-2:] == (n, n)
    far = (y1 - y0)[..., -8:, -8:].abs().max().item()
    if rule.fully_convolutional:
        assert far == 0.0, f"{name} is declared fully convolutional, far change {far}"
    else:
        assert far > 1e-6, f"{name} is declared not fully convolutional but looks local"


def test_grid_rule_follows_hyperparameters_and_specs():
    assert grid_rule("simvp").multiple == 2
    assert grid_rule("simvp", N_S=6).multiple == 8
    assert grid_rule("convlstm", patch=3) == GridRule(3, True)
    assert grid_rule("earthfarseer-base").multiple == 4
    spec = ModelSpec("convlstm-radar", 4, 2, ["r"], ["r"], "5min", (64, 64), hyperparameters={})
    assert grid_rule(spec).multiple == 4
    tm = TrainedModel(spec.build(), spec)
    assert grid_rule(tm).multiple == 4
    spec.hyperparameters = {"patch": 2}
    assert grid_rule(spec).multiple == 2
    assert stgeo.models.model_info("tau-radar")["grid"].multiple == 4
    with pytest.raises(StgeoTypeError):
        grid_rule(42)


def test_check_grid_names_the_nearest_sizes():
    check_grid("simvp-radar", (128, 96))
    with pytest.raises(DataValidationError, match=r"multiples of 4; 130x128 is not: use 128x128"):
        check_grid("simvp-radar", (130, 128))
    with pytest.raises(DataValidationError, match=r"patch_size 3x5 is not: use 8x8"):
        check_grid("earthfarseer", (3, 5), what="patch_size")
    with pytest.raises(DataValidationError, match="use 64x64 or 64x68 or 68x64 or 68x68"):
        check_grid("predformer", (66, 66))
    with pytest.raises(StgeoTypeError):
        check_grid("simvp", (1, 2, 3))
    check_grid("simvp", (66, 66))
    with pytest.raises(DataValidationError, match="multiples of 8"):
        check_grid("simvp", (66, 66), what="patch_size", N_S=6)


def test_grid_rule_declarations_are_checked():
    with pytest.raises(StgeoTypeError, match="multiple"):
        GridRule(multiple=0)
    with pytest.raises(StgeoTypeError, match="fully_convolutional"):
        GridRule(fully_convolutional="yes")
    with pytest.raises(StgeoTypeError, match="grid must be"):
        stgeo.register_model("test-grids-bad", lambda **kw: None, grid=4)
    stgeo.register_model(
        "test-grids-fn",
        lambda in_steps, out_steps, channels, grid_shape=None: None,
        grid=lambda hp: "not a rule",
        overwrite=True,
    )
    try:
        with pytest.raises(StgeoTypeError, match="returned str"):
            grid_rule("test-grids-fn")
    finally:
        REGISTRY.remove("test-grids-fn")
    assert grid_rule("persistence").fits((765, 700))
    assert GridRule(4).nearest(2) == (4,)

"""Contract tests generated from the model registry: every registered model must satisfy them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError, StgeoError
from stgeo.models import BaselineSettings, baseline_settings, model_info
from stgeo.models.base import MODELS as REGISTRY

# small hyperparameters per family so that the whole contract suite runs in seconds;
# models without an entry run with their registered defaults
SMALL = {
    "simvp": {"hid_S": 8, "hid_T": 16, "N_T": 2},
    "tau": {"hid_S": 8, "hid_T": 16, "N_T": 2},
    "convlstm": {"hidden": 8, "num_layers": 2, "kernel_size": 3},
    "earthfarseer": {"hid_S": 8, "fotf_dim": 16, "hid_T": 16, "N_T": 2, "tedev_depth": 1},
    "swin": {"hid_S": 8, "hid_T": 16, "N_T": 2, "heads": 2, "window": 4},
    "predformer": {"dim": 16, "heads": 2, "depth": 1},
    "lagrangian": {"hidden": 8, "bottleneck": 1},
    "stresnet": {"hidden": 8, "n_units": 1, "n_features": 5},
    "stresnet-stacked": {"hidden": 8, "n_units": 1, "embed_dim": 2},
}
#: length of the feature vector given to models that take calendar features
N_FEATURES = 5


def small(name: str) -> dict:
    """The small hyperparameters of ``name``: its longest registered prefix in SMALL."""
    parts = name.split("-")
    for k in range(len(parts), 0, -1):
        if "-".join(parts[:k]) in SMALL:
            return dict(SMALL["-".join(parts[:k])])
    return {}


def call(m, x):
    """``m(x)``, with features (seeded) for a model that takes calendar features."""
    if getattr(m, "n_features", 0):
        g = torch.Generator().manual_seed(int(x.shape[0]))
        return m(x, torch.randn(x.shape[0], m.n_features, generator=g))
    return m(x)


def _not_from_tests(names: list[str]) -> list[str]:
    # test modules collected before this one may register stand-in models (e.g.
    # tests/forecasting registers "test-forecast-step"); the contract is for real models
    return [n for n in names if not REGISTRY.entry(n).obj.__module__.startswith("test_")]


MODELS = _not_from_tests(stgeo.list_models())
LEARNED = _not_from_tests(stgeo.list_models(baselines=False))
BASELINES = sorted(set(MODELS) - set(LEARNED))


def build(
    name: str,
    in_steps: int = 3,
    out_steps: int = 2,
    channels: int = 2,
    seed: int = 0,
    grid_shape=(16, 24),
):
    hp = small(name)
    if model_info(name)["time_features"]:  # closeness/period/trend: in_steps = c + p + t
        hp["len_c"] = in_steps - hp.get("len_p", 1) - hp.get("len_t", 1)
    torch.manual_seed(seed)
    return stgeo.create_model(
        name,
        in_steps=in_steps,
        out_steps=out_steps,
        channels=channels,
        grid_shape=grid_shape,
        **hp,
    )


def test_learned_models_are_registered():
    for name in (
        "convlstm",
        "convlstm-taxibj",
        "convlstm-radar",
        "simvp",
        "simvp-taxibj",
        "simvp-radar",
        "tau",
        "tau-taxibj",
    ):
        assert name in LEARNED
    assert not model_info("simvp")["baseline"]
    assert model_info("simvp-taxibj")["defaults"]["drop_path"] == 0.1


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("t_in", "t_out", "shape"), [(3, 2, (16, 24)), (4, 4, (36, 52)), (3, 5, (9, 13))]
)
def test_forward_shape_and_finite(name, t_in, t_out, shape):
    m = build(name, t_in, t_out, grid_shape=shape).eval()
    x = torch.randn(2, t_in, 2, *shape)
    y = call(m, x)
    assert y.shape == (2, t_out, 2, *shape)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", LEARNED)
def test_backward_reaches_every_parameter(name):
    m = build(name, grid_shape=(12, 20)).train()  # the grid it runs on (per-cell parameters)
    x = torch.randn(3, 3, 2, 12, 20)
    call(m, x).square().mean().backward()
    params = dict(m.named_parameters())
    assert params, "a learned model must have parameters"
    for pname, p in params.items():
        assert p.grad is not None, f"{name}: parameter {pname} is unused (no gradient)"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
    assert any(float(p.grad.abs().sum()) > 0 for p in params.values())


@pytest.mark.parametrize("name", MODELS)
def test_seeded_determinism(name):
    a, b, c = build(name, seed=3), build(name, seed=3), build(name, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    x = torch.randn(2, 3, 2, 16, 24)
    torch.testing.assert_close(call(a.eval(), x), call(b.eval(), x), rtol=0, atol=0)
    if name in LEARNED:
        assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("name", LEARNED)
def test_batch_independence_in_eval(name):
    """A sample's forecast does not depend on the other samples of its batch."""
    m = build(name).eval()
    x = torch.randn(3, 3, 2, 16, 24)
    f = torch.randn(3, getattr(m, "n_features", 0))
    args = (f,) if f.shape[1] else ()
    torch.testing.assert_close(
        m(x, *args)[1:2], m(x[1:2], *(a[1:2] for a in args)), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(2, 4, 2, 16, 24),  # wrong number of input frames
        torch.zeros(2, 3, 1, 16, 24),  # wrong channels
        torch.zeros(3, 2, 16, 24),  # missing batch axis
        torch.zeros(2, 3, 2, 16, 24, dtype=torch.int64),  # not floating point
        np.zeros((2, 3, 2, 16, 24), dtype=np.float32),  # not a tensor
        torch.zeros(0, 3, 2, 16, 24),  # empty batch
    ],
    ids=["steps", "channels", "rank", "dtype", "numpy", "empty"],
)
def test_wrong_input_raises_stgeo_error(name, bad):
    m = build(name).eval()
    with pytest.raises(StgeoError, match=r"\w"):
        m(bad)


@pytest.mark.parametrize("name", LEARNED)
def test_bad_sizes_raise_stgeo_error(name):
    with pytest.raises(StgeoError):
        stgeo.create_model(name, in_steps=0, **small(name))
    with pytest.raises(StgeoError):
        stgeo.create_model(name, not_a_hyperparameter=1, **small(name))


def test_baselines_are_registered():
    assert {"persistence", "climatology", "extrapolation"} <= set(BASELINES)
    assert model_info("persistence")["baseline"]


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("step", ["5min", "1h"])
def test_baseline_settings_build_a_forecaster(name, step):
    """Every baseline declares settings for given data, and they build a working model."""
    step = pd.Timedelta(step)
    try:
        s = baseline_settings(name, step=step, lead_steps=3)
    except DataValidationError as err:  # a baseline may insist on in_steps=, and must say so
        assert "in_steps" in str(err)
        s = baseline_settings(name, step=step, in_steps=4, lead_steps=3)
    assert isinstance(s, BaselineSettings)
    assert s.in_steps >= 1 and s.out_steps >= 1
    m = stgeo.create_model(
        name, in_steps=s.in_steps, out_steps=s.out_steps, channels=2, **s.hyperparameters
    ).eval()
    y = m(torch.rand(2, s.in_steps, 2, 9, 13))
    assert y.shape == (2, s.out_steps, 2, 9, 13)
    assert torch.isfinite(y).all()

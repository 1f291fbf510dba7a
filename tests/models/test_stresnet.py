"""ST-ResNet: branches, per-cell parametric fusion, external branch, default window, checks."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError
from stgeo.models import default_input_offsets, model_info, wants_time_features
from stgeo.models.stresnet import STResNet, cpt_offsets


def _model(**kw):
    torch.manual_seed(0)
    hp = dict(grid_shape=(6, 5), len_c=2, len_p=1, len_t=1, hidden=8, n_units=1, n_features=4)
    hp.update(kw)
    return STResNet(4, 1, 2, **hp).eval()


def test_fusion_weights_are_per_cell():
    m = _model()
    x, f = torch.randn(2, 4, 2, 6, 5), torch.randn(2, 4)
    with torch.no_grad():
        y0 = m(x, f)
        m.fusion[1, 0, 3, 2] += 1.0  # period branch, output channel 0, cell (3, 2)
        y1 = m(x, f)
    changed = (y1 - y0).abs() > 0
    assert changed[:, 0, 0, 3, 2].all()
    changed[:, 0, 0, 3, 2] = False
    assert not changed.any()


def test_each_branch_reads_its_own_frames():
    """Inputs are trend, period, closeness (oldest first); a zero fusion weight silences a
    branch, so changing its frames no longer changes the forecast."""
    m = _model()
    x, f = torch.randn(1, 4, 2, 6, 5), torch.randn(1, 4)
    with torch.no_grad():
        m.fusion[0].zero_()  # trend branch off
        y0 = m(x, f)
        x2 = x.clone()
        x2[:, 0] += 3.0  # the trend frame
        assert torch.equal(m(x2, f), y0)
        x2[:, 1] += 3.0  # the period frame
        assert not torch.equal(m(x2, f), y0)


def test_external_branch_uses_the_features():
    m = _model()
    x = torch.randn(2, 4, 2, 6, 5)
    with torch.no_grad():
        a = m(x, torch.zeros(2, 4))
        b = m(x, torch.ones(2, 4))
    assert not torch.allclose(a, b)
    with pytest.raises(DataValidationError, match="n_features=4"):
        m(x)
    with pytest.raises(DataValidationError, match=r"\(2, 4\)"):
        m(x, torch.zeros(2, 3))


def test_without_features_or_branches():
    m = _model(n_features=0, len_t=0, len_c=3)
    assert m.external is None and len(m.branches) == 2
    assert m(torch.randn(1, 4, 2, 6, 5)).shape == (1, 1, 2, 6, 5)


def test_tanh_output_is_bounded():
    m = _model(output="tanh")
    y = m(100 * torch.randn(2, 4, 2, 6, 5), torch.randn(2, 4))
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"len_c": 3}, "len_t \\+ len_p \\+ len_c = 1 \\+ 1 \\+ 3 = 5 input frames"),
        ({"grid_shape": None}, "grid_shape"),
        ({"output": "relu"}, "output must be"),
        ({"len_p": -1}, "len_p"),
        ({"period": "one day"}, "period must be a duration"),
    ],
)
def test_bad_hyperparameters(kw, match):
    with pytest.raises(DataValidationError, match=match):
        _model(**kw)


def test_grid_is_fixed():
    m = _model()
    with pytest.raises(DataValidationError, match=r"built for the grid \(6, 5\)"):
        m(torch.zeros(1, 4, 2, 6, 6), torch.zeros(1, 4))


def test_cpt_offsets_follow_the_time_step():
    assert cpt_offsets("1h") == [-167, -23, -2, -1, 0]  # the predicted hour a day/week back
    assert cpt_offsets("30min", len_c=3, len_p=2, len_t=2) == [
        -671,
        -335,
        -95,
        -47,
        -2,
        -1,
        0,
    ]
    assert cpt_offsets("1D", len_c=1, len_p=0) == [-6, 0]
    with pytest.raises(DataValidationError, match="not a whole number"):
        cpt_offsets("7h")
    with pytest.raises(DataValidationError, match="overlap"):
        cpt_offsets("6h", len_c=5)


def test_registry_declares_window_and_features():
    assert wants_time_features("stresnet-small") and not wants_time_features("stresnet-stacked")
    assert model_info("stresnet-taxibj")["time_features"]
    assert default_input_offsets("stresnet-taxibj", pd.Timedelta("30min")) == [-335, -47, -2, -1, 0]
    assert default_input_offsets("stresnet", pd.Timedelta("1h"), len_t=0) == [-23, -2, -1, 0]
    m = stgeo.create_model("stresnet-small", in_steps=5, out_steps=1, channels=2, grid_shape=(4, 4))
    assert m.external is None  # n_features=0 unless training sets it


def test_old_stacked_settings_point_to_the_new_name():
    from stgeo.errors import StgeoTypeError

    with pytest.raises(StgeoTypeError, match="stresnet-stacked"):
        stgeo.create_model("stresnet", in_steps=5, channels=2, grid_shape=(4, 4), embed_dim=8)
    with pytest.raises(DataValidationError, match="stresnet-stacked"):
        stgeo.create_model("stresnet", in_steps=12, channels=2, grid_shape=(4, 4))

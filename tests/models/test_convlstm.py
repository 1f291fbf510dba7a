"""ConvLSTM: cell equations, parameter count, patching and the autoregressive roll-out."""

from __future__ import annotations

import pytest
import torch

import stgeo
from stgeo.errors import StgeoError
from stgeo.models.convlstm import ConvLSTMCell


def test_cell_equations():
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4, kernel_size=3)
    x, h, c = torch.randn(2, 3, 5, 6), torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    gates = torch.nn.functional.conv2d(
        torch.cat([x, h], 1), cell.conv.weight, cell.conv.bias, padding=1
    )
    i, f, o, g = gates.split(4, dim=1)
    c_ref = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_ref = torch.sigmoid(o) * torch.tanh(c_ref)
    h2, c2 = cell(x, h, c)
    torch.testing.assert_close(c2, c_ref)
    torch.testing.assert_close(h2, h_ref)


def test_taxibj_config_has_no_dead_weights():
    m = stgeo.create_model("convlstm-taxibj", in_steps=4, out_steps=4, channels=2)
    k, hid, frame = 5, 128, 2 * 2 * 2
    expected = (frame + hid) * 4 * hid * k * k + 4 * hid  # first cell
    expected += 3 * ((hid + hid) * 4 * hid * k * k + 4 * hid)  # three more cells
    expected += hid * frame + frame  # 1x1 read-out
    assert sum(p.numel() for p in m.parameters()) == expected
    assert [type(c).__name__ for c in m.children()] == ["ModuleList", "Conv2d"]


def test_rollout_feeds_back_its_own_prediction():
    """Weights do not depend on in/out steps: a 2->3 model equals a 3->2 model fed with
    the first prediction appended to its input."""
    torch.manual_seed(0)
    hp = {"hidden": [6, 5], "kernel_size": 3, "patch": 2}
    a = stgeo.create_model("convlstm", in_steps=2, out_steps=3, channels=1, **hp).eval()
    b = stgeo.create_model("convlstm", in_steps=3, out_steps=2, channels=1, **hp).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 2, 1, 10, 8)  # a multiple of the patch: no padding in between
    ya = a(x)
    yb = b(torch.cat([x, ya[:, :1]], dim=1))
    torch.testing.assert_close(ya[:, 1:], yb, rtol=1e-4, atol=1e-5)


def test_future_inputs_do_not_leak():
    """Changing the last input frame changes no earlier computation: outputs depend on it."""
    torch.manual_seed(0)
    m = stgeo.create_model(
        "convlstm", in_steps=3, out_steps=2, hidden=4, num_layers=1, kernel_size=3
    ).eval()
    x = torch.randn(1, 3, 1, 6, 6)
    x2 = x.clone()
    x2[:, -1] += 1
    assert not torch.allclose(m(x), m(x2))


def _small(in_steps, out_steps, channels, **hp):
    """A small ConvLSTM (kernel 3); ``hp`` sets the rest."""
    kw = {"hidden": 4, "num_layers": 2, "kernel_size": 3, **hp}
    return stgeo.create_model(
        "convlstm", in_steps=in_steps, out_steps=out_steps, channels=channels, **kw
    )


@pytest.mark.parametrize("patch", [1, 3, 4])
def test_patch_sizes_not_dividing_the_grid(patch):
    m = _small(2, 2, 2, patch=patch).eval()
    assert m(torch.randn(1, 2, 2, 13, 7)).shape == (1, 2, 2, 13, 7)


def test_hidden_as_list():
    m = stgeo.create_model("convlstm", hidden=[8, 4, 2], kernel_size=3)
    assert [c.hidden for c in m.cells] == [8, 4, 2]
    assert m.readout.in_channels == 2


@pytest.mark.parametrize(
    "hp",
    [
        {"hidden": 0},
        {"hidden": []},
        {"hidden": "64"},
        {"kernel_size": 4},
        {"patch": 0},
        {"num_layers": 0},
        {"padding_mode": "circular"},
        {"readout": "shuffle"},
    ],
)
def test_bad_hyperparameters(hp):
    with pytest.raises(StgeoError):
        stgeo.create_model("convlstm", **hp)


def _uniform_forecast(**hp):
    torch.manual_seed(0)
    m = _small(3, 3, 1, hidden=6, patch=4, **hp).eval()
    with torch.no_grad():
        return m(torch.full((1, 3, 1, 16, 24), 0.7))


def test_replicate_padding_grows_no_rim_along_the_edges():
    """A uniform field has no edge: with edge padding every 4x4 block forecasts the same
    values (every pixel the same with the full-resolution read-out); zero padding makes the
    border blocks differ (the rim seen on quickstart maps)."""

    def blocks_alike(y):
        return torch.allclose(y, y[..., :4, :4].repeat(1, 1, 1, 4, 6), atol=1e-6)

    assert blocks_alike(_uniform_forecast(padding_mode="replicate"))
    y = _uniform_forecast(padding_mode="replicate", readout="upsample")
    assert torch.allclose(y, y[..., :1, :1].expand_as(y), atol=1e-6)
    assert not blocks_alike(_uniform_forecast())


def test_upsample_readout_predicts_at_full_resolution():
    m = _small(2, 3, 2, hidden=5, num_layers=1, patch=4, readout="upsample")
    assert (m.readout.in_channels, m.readout.out_channels, m.readout.kernel_size) == (5, 2, (3, 3))
    x = torch.randn(2, 2, 2, 13, 7, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 3, 2, 13, 7)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

"""SimVP v2 (gSTA) and TAU: sizes, parameter counts, fused inference blocks, TAU's regulariser."""

from __future__ import annotations

import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError, StgeoError
from stgeo.models.layers import TranslatorBlock
from stgeo.models.layers.attention import FusedTranslatorBlock
from stgeo.models.losses import AUX_LOSSES, aux_loss_of, differential_divergence
from stgeo.models.simvp import SimVP


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_taxibj_config_parameter_count():
    m = stgeo.create_model("simvp-taxibj", in_steps=4, out_steps=4, channels=2)
    assert abs(n_params(m) - 9.96e6) / 9.96e6 < 0.02
    # the same config reached through the base name and explicit hyperparameters
    same = stgeo.create_model(
        "simvp", in_steps=4, out_steps=4, channels=2, hid_S=32, hid_T=256, N_S=2, N_T=8
    )
    assert n_params(same) == n_params(m)
    tau = stgeo.create_model("tau-taxibj", in_steps=4, out_steps=4, channels=2)
    assert 9.0e6 < n_params(tau) < n_params(m)  # 1x1 to dim instead of 2*dim, plus a small SE


def test_translator_structure_and_latent_grid():
    m = stgeo.create_model(
        "simvp", in_steps=4, out_steps=2, channels=1, hid_S=8, hid_T=24, N_S=4, N_T=3
    )
    blocks = list(m.translator)
    assert len(blocks) == 3
    assert blocks[0].proj1.in_channels == 4 * 8 and blocks[0].reduce.out_channels == 24
    assert blocks[-1].proj1.in_channels == 24 and blocks[-1].reduce.out_channels == 2 * 8
    assert m.factor == 4
    seen = {}
    m.translator.register_forward_hook(lambda mod, i, o: seen.update(z=o.shape))
    m.eval()(torch.randn(2, 4, 1, 30, 17))  # padded to 32 x 20 -> latent 8 x 5
    assert seen["z"] == (2, 2 * 8, 8, 5)


def test_layer_scale_init_and_drop_path_schedule():
    m = stgeo.create_model("simvp-taxibj", in_steps=4, out_steps=4, channels=2)
    blk = m.translator[3]
    assert torch.allclose(blk.ls1, torch.full_like(blk.ls1, 1e-2))
    rates = [b.drop_path.p for b in m.translator]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.1) and rates == sorted(rates)


def test_drop_path_is_stochastic_only_in_training():
    torch.manual_seed(0)
    m = stgeo.create_model("simvp", in_steps=2, out_steps=2, hid_S=4, hid_T=8, N_T=2, drop_path=0.9)
    x = torch.randn(8, 2, 1, 8, 8)
    m.train()
    assert not torch.equal(m(x), m(x))
    m.eval()
    assert torch.equal(m(x), m(x))


@pytest.mark.parametrize("kind", ["gsta", "tau"])
def test_fused_translator_block_matches_eval_block(kind):
    torch.manual_seed(1)
    blk = TranslatorBlock(16, 24, kind=kind, mlp_ratio=4)
    with torch.no_grad():  # non-trivial batch-norm statistics and layer scales
        for bn in (blk.norm1, blk.norm2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        blk.ls1.uniform_(0.1, 1)
        blk.ls2.uniform_(0.1, 1)
    blk.eval()
    fused = blk.fuse_for_inference()
    assert isinstance(fused, FusedTranslatorBlock)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(3, 16, 7, 9)
    torch.testing.assert_close(fused(x), blk(x), rtol=1e-4, atol=1e-5)


def test_odd_and_tiny_grids():
    m = stgeo.create_model(
        "simvp-radar", in_steps=2, out_steps=2, channels=1, hid_S=4, hid_T=8, N_T=2
    ).eval()
    for shape in ((1, 1), (5, 3), (33, 70)):
        assert m(torch.randn(1, 2, 1, *shape)).shape == (1, 2, 1, *shape)


def test_skip_projection_only_when_steps_differ():
    same = stgeo.create_model("simvp", in_steps=4, out_steps=4, hid_S=4, hid_T=8, N_T=2)
    diff = stgeo.create_model("simvp", in_steps=4, out_steps=6, hid_S=4, hid_T=8, N_T=2)
    assert same.skip_proj is None
    assert diff.skip_proj.in_channels == 16 and diff.skip_proj.out_channels == 24


@pytest.mark.parametrize(
    "hp",
    [
        {"hid_S": 7},
        {"N_S": 1},
        {"N_T": 0},
        {"drop_path": 1.5},
        {"spatio_kernel": 4},
        {"translator": "swin"},
        {"hid_T": 2.5},
        {"mlp_ratio": "8"},
    ],
)
def test_bad_hyperparameters(hp):
    with pytest.raises(StgeoError):
        stgeo.create_model("simvp", **hp)


def test_tau_rejects_other_translator():
    with pytest.raises(DataValidationError):
        stgeo.create_model("tau", translator="gsta")


def test_tau_carries_its_regulariser():
    tau = stgeo.create_model("tau", hid_S=4, hid_T=8, N_T=2)
    assert aux_loss_of(tau) == (differential_divergence, 0.1) == AUX_LOSSES["tau"]
    assert aux_loss_of(stgeo.create_model("simvp", hid_S=4, hid_T=8, N_T=2)) is None
    assert isinstance(tau, SimVP) and tau.name == "tau"


def test_differential_divergence_properties():
    torch.manual_seed(0)
    y = torch.randn(2, 4, 2, 6, 5)
    assert float(differential_divergence(y, y)) == pytest.approx(0.0, abs=1e-6)
    # invariant to adding a constant field... per frame (softmax over space of differences)
    shifted = y + torch.randn(2, 4, 2, 1, 1)
    assert float(differential_divergence(shifted, y)) == pytest.approx(0.0, abs=1e-5)
    other = torch.randn_like(y)
    d = differential_divergence(other, y)
    assert float(d) > 0
    # lower temperature sharpens the distributions and increases the divergence here
    assert float(differential_divergence(other, y, temperature=0.05)) > float(d)
    # a single frame has no differences
    assert float(differential_divergence(y[:, :1], other[:, :1])) == 0.0
    p = other.clone().requires_grad_(True)
    differential_divergence(p, y).backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    with pytest.raises(DataValidationError):
        differential_divergence(y, y[:, :3])
    with pytest.raises(DataValidationError):
        differential_divergence(y, y, temperature=0)


def test_differential_divergence_matches_definition():
    torch.manual_seed(2)
    p, t = torch.randn(1, 3, 1, 2, 2), torch.randn(1, 3, 1, 2, 2)
    total = 0.0
    for k in range(2):
        dp = (p[0, k + 1, 0] - p[0, k, 0]).flatten() / 0.1
        dt = (t[0, k + 1, 0] - t[0, k, 0]).flatten() / 0.1
        q, r = torch.softmax(dp, 0), torch.softmax(dt, 0)
        total += float((r * (r.log() - q.log())).sum())
    assert float(differential_divergence(p, t)) == pytest.approx(total / 2, rel=1e-5)


@pytest.mark.parametrize(
    ("shape", "k", "d"),
    [((7, 5), 3, 1), ((8, 9), 5, 1), ((10, 7), 7, 3), ((6, 6), 1, 1), ((4, 4), 3, 2)],
)
def test_depthwise_conv_matches_torch_and_gradcheck(shape, k, d):
    from stgeo.models.layers.depthwise import DepthwiseConv2d, depthwise_conv2d

    torch.manual_seed(0)
    x = torch.randn(2, 3, *shape, dtype=torch.double, requires_grad=True)
    w = torch.randn(3, 1, k, k, dtype=torch.double, requires_grad=True)
    b = torch.randn(3, dtype=torch.double, requires_grad=True)
    ref = torch.nn.functional.conv2d(x, w, b, padding=d * (k // 2), dilation=d, groups=3)
    torch.testing.assert_close(depthwise_conv2d(x, w, b, d), ref)
    assert torch.autograd.gradcheck(lambda *a: depthwise_conv2d(*a, d), (x, w, b))
    # channels-last input stays channels-last; the fused (pre-expanded) form is identical
    conv = DepthwiseConv2d(3, k, d).eval()
    xc = torch.randn(2, 3, *shape).to(memory_format=torch.channels_last)
    y = conv(xc)
    assert y.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(conv.fuse_for_inference()(xc), y)


def test_depthwise_conv_under_autocast():
    from stgeo.models.layers.depthwise import DepthwiseConv2d

    conv = DepthwiseConv2d(4, 7, 3)
    x = torch.randn(2, 4, 11, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    assert conv.weight.grad.dtype == torch.float32 and torch.isfinite(conv.weight.grad).all()
    assert x.grad.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("groups", "k"), [(1, 1), (6, 3)])
def test_conv_gelu_fused_path_matches_unfused(dtype, groups, k):
    from stgeo.models.layers.attention import _onednn_conv_gelu_available, conv_gelu

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 6, k, padding=k // 2, groups=groups).to(dtype)
    x = torch.randn(2, 6, 5, 7, dtype=dtype).to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = torch.nn.functional.gelu(conv(x))
        out = conv_gelu(conv, x)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    if not _onednn_conv_gelu_available():
        pytest.skip("oneDNN conv+GELU fusion not available in this torch build (fallback tested)")
    # with autograd on, the unfused path is taken and gradients flow
    xg = x.float().requires_grad_(True)
    conv_gelu(conv.float(), xg).sum().backward()
    assert xg.grad is not None

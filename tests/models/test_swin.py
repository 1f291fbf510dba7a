"""Swin translator: shifted-window attention against brute force, the mask, windows, sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import stgeo
from stgeo.errors import StgeoError
from stgeo.models.layers.swin import (
    SwinBlock,
    WindowAttention,
    balanced_window,
    window_geometry,
)
from stgeo.models.swin import SwinVP

TINY = {"hid_S": 4, "hid_T": 16, "N_T": 2, "heads": 2, "window": 4}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _axis_rule(n: int, window: int, shifted: bool):
    """Per real position of one axis: window id, position in the window, wrapped flag.

    The rule written out from its definition: windows of ``size`` tokens tile the padded
    axis after a cyclic roll by ``-shift``; the strip the roll wrapped around (the last
    ``shift`` slots) is a region of its own.
    """
    size = balanced_window(n, window)
    padded = -(-n // size) * size
    shift = size // 2 if shifted and padded > size else 0
    rolled = (torch.arange(n) - shift) % padded
    wrapped = rolled >= padded - shift if shift else torch.zeros(n, dtype=torch.bool)
    return rolled // size, rolled % size, wrapped


def brute_force_window_attention(att: WindowAttention, x: torch.Tensor, h: int, w: int, shifted):
    """Full (HW x HW) attention with -inf between tokens outside a common window region."""
    b, hw, dim = x.shape
    heads, d = att.heads, dim // att.heads
    wy, py, fy = _axis_rule(h, att.window, shifted)
    wx, px, fx = _axis_rule(w, att.window, shifted)
    # flatten row-major over the real grid
    win = (wy[:, None] * 1000 + wx[None, :]).flatten()
    reg = (fy[:, None].long() * 2 + fx[None, :].long()).flatten()
    iy = py[:, None].expand(h, w).flatten()
    ix = px[None, :].expand(h, w).flatten()
    same = (win[:, None] == win[None, :]) & (reg[:, None] == reg[None, :])
    k = 2 * att.window - 1
    rel = (
        (iy[:, None] - iy[None, :] + att.window - 1) * k
        + (ix[:, None] - ix[None, :])
        + (att.window - 1)
    )
    bias = att.bias_table[rel].permute(2, 0, 1)  # (heads, HW, HW)
    q, kk, v = att.qkv(x).view(b, hw, 3, heads, d).permute(2, 0, 3, 1, 4)
    logits = q @ kk.transpose(-1, -2) / d**0.5 + bias
    logits = logits.masked_fill(~same, float("-inf"))
    y = torch.softmax(logits, -1) @ v
    return att.proj(y.transpose(1, 2).reshape(b, hw, dim))


@pytest.mark.parametrize(
    ("h", "w", "window"),
    [(8, 8, 4), (9, 6, 4), (7, 10, 4), (5, 13, 3), (11, 11, 7), (3, 9, 5)],
)
@pytest.mark.parametrize("shifted", [False, True])
def test_window_attention_matches_brute_force(h, w, window, shifted):
    torch.manual_seed(0)
    att = WindowAttention(16, heads=4, window=window).eval()
    x = torch.randn(2, h * w, 16)
    geo = window_geometry(h, w, window, shifted)
    with torch.no_grad():
        torch.testing.assert_close(
            att(x, geo), brute_force_window_attention(att, x, h, w, shifted), rtol=1e-5, atol=1e-5
        )


def test_shifted_window_mask_matters():
    """Without the mask, tokens the roll brought together across the border attend to each
    other: the result differs, and exactly at the tokens of the border windows."""
    torch.manual_seed(0)
    att = WindowAttention(16, heads=2, window=4).eval()
    h = w = 8
    x = torch.randn(1, h * w, 16)
    geo = window_geometry(h, w, 4, shifted=True)
    assert geo.shift == (2, 2) and geo.mask is not None
    unmasked = dataclasses.replace(geo, mask=None)
    with torch.no_grad():
        masked_y, unmasked_y = att(x, geo), att(x, unmasked)
        ref = brute_force_window_attention(att, x, h, w, True)
    torch.testing.assert_close(masked_y, ref, rtol=1e-5, atol=1e-5)
    differs = (masked_y - unmasked_y).abs().amax(-1)[0].view(h, w) > 1e-4
    assert differs.any()
    # the interior windows (rolled rows/cols 0..5) hold no wrapped tokens: identical there
    assert not differs[2:6, 2:6].any()
    # every token of the last window row/column (wrapped strip and its neighbours) changes
    assert differs[:2].all() and differs[:, :2].all()


def test_padding_is_masked_not_attended():
    """Output at real tokens does not depend on what the padded slots point at."""
    torch.manual_seed(1)
    att = WindowAttention(8, heads=2, window=4).eval()
    geo = window_geometry(7, 10, 4, shifted=True)
    assert geo.padded == (8, 12)
    x = torch.randn(1, 70, 8)
    pad_slots = torch.ones_like(geo.gather, dtype=torch.bool)
    pad_slots[geo.scatter] = False
    other = dataclasses.replace(geo, gather=torch.where(pad_slots, 37, geo.gather))
    with torch.no_grad():
        torch.testing.assert_close(att(x, geo), att(x, other), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("n", "window", "size"), [(16, 7, 6), (14, 7, 7), (8, 7, 4), (3, 7, 3), (64, 8, 8), (9, 7, 5)]
)
def test_balanced_windows(n, window, size):
    assert balanced_window(n, window) == size
    geo = window_geometry(n, 5, window, shifted=True)
    assert geo.window[0] == size
    assert geo.padded[0] - n < -(-n // size)  # less padding than windows
    assert geo.shift[0] == (size // 2 if geo.padded[0] > size else 0)
    # every real token appears in exactly one window slot
    assert sorted(geo.gather[geo.scatter].tolist()) == list(range(n * 5))


def test_rectangular_windows_and_no_shift_on_short_axes():
    geo = window_geometry(3, 20, 7, shifted=True)
    assert geo.window == (3, 7) and geo.shift == (0, 3)
    assert window_geometry(3, 5, 7, shifted=True).mask is None  # one window: nothing to mask


def test_blocks_alternate_shifted_windows():
    m = stgeo.create_model("swin", in_steps=2, out_steps=2, N_T=4, hid_S=4, hid_T=8, heads=2)
    assert [blk.shifted for blk in m.translator.blocks] == [False, True, False, True]
    rates = [blk.drop_path.p for blk in stgeo.create_model("swin-taxibj").translator.blocks]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.1) and rates == sorted(rates)


def test_latent_grid_comes_from_the_tensors():
    m = stgeo.create_model("swin", in_steps=3, out_steps=2, channels=1, N_S=4, **TINY).eval()
    seen = {}
    m.translator.register_forward_hook(lambda mod, i, o: seen.update(z=tuple(i[0].shape)))
    m(torch.randn(2, 3, 1, 30, 17))  # padded to 32 x 20 -> latent 8 x 5
    assert seen["z"] == (2, 8, 5, 3 * 4)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (9, 13), (32, 64), (37, 20)])
def test_any_grid(shape):
    torch.manual_seed(0)
    m = stgeo.create_model("swin", in_steps=3, out_steps=4, channels=2, **TINY).eval()
    y = m(torch.randn(2, 3, 2, *shape))
    assert y.shape == (2, 4, 2, *shape) and torch.isfinite(y).all()


def test_large_grid_384():
    torch.manual_seed(0)
    m = stgeo.create_model(
        "swin", in_steps=2, out_steps=1, channels=1, N_S=4, hid_S=4, hid_T=8, N_T=2, heads=2
    ).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 2, 1, 384, 384))
    assert y.shape == (1, 1, 1, 384, 384) and torch.isfinite(y).all()


def test_backward_bf16_autocast_and_determinism():
    torch.manual_seed(3)
    a = stgeo.create_model("swin", in_steps=3, out_steps=2, channels=1, **TINY)
    torch.manual_seed(3)
    b = stgeo.create_model("swin", in_steps=3, out_steps=2, channels=1, **TINY)
    x = torch.randn(2, 3, 1, 11, 14)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)
    a.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = a(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()
    y.float().square().mean().backward()
    grads = [p.grad for p in a.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    bias_grad = a.translator.blocks[1].attn.bias_table.grad
    assert bias_grad.abs().sum() > 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        yb = b.eval()(x)
    torch.testing.assert_close(yb.float(), b(x), rtol=0.1, atol=0.1)


def test_taxibj_parameter_count():
    m = stgeo.create_model("swin-taxibj", in_steps=4, out_steps=4, channels=2)
    assert isinstance(m, SwinVP)
    assert n_params(m) == 6_451_746  # the figure in docs/models/swin.md
    assert stgeo.models.model_info("swin-taxibj")["defaults"]["drop_path"] == 0.1
    assert n_params(stgeo.create_model("swin", in_steps=4, out_steps=12, channels=1)) == 6_566_753


def test_skip_projection_only_when_steps_differ():
    assert stgeo.create_model("swin", in_steps=4, out_steps=4, **TINY).skip_proj is None
    assert stgeo.create_model("swin", in_steps=4, out_steps=6, **TINY).skip_proj is not None


@pytest.mark.parametrize(
    "hp",
    [
        {"hid_S": 7},
        {"N_S": 1},
        {"N_T": 0},
        {"heads": 3},
        {"heads": 0},
        {"window": 0},
        {"window": 2.5},
        {"drop_path": 1.5},
        {"spatio_kernel": 4},
        {"mlp_ratio": "4"},
    ],
)
def test_bad_hyperparameters(hp):
    with pytest.raises(StgeoError):
        stgeo.create_model("swin", **hp)


def test_swin_block_residual_shape():
    blk = SwinBlock(8, heads=2, window=3, shifted=True)
    geo = window_geometry(4, 7, 3, shifted=True)
    assert blk(torch.randn(3, 28, 8), geo).shape == (3, 28, 8)


@pytest.mark.slow
def test_swin_learns_storms_better_than_persistence():
    storms = stgeo.testing.storm_cells(n_times=160, shape=(32, 32), seed=0, resolution_km=4)
    m = stgeo.train(
        storms,
        "swin",
        variable="rain_rate",
        in_steps=4,
        out_steps=2,
        epochs=5,
        batch_size=8,
        lr=3e-3,
        hid_S=8,
        hid_T=32,
        N_T=2,
        heads=4,
        window=4,
        precision="fp32",
        progress=False,
        seed=0,
        splits={"train": 0.8, "val": 0.2},
    )
    assert m.metrics["val_mse"] < m.metrics["persistence_val_mse"]


@pytest.mark.parametrize("length", [4, 36, 100])
def test_attend_matches_fused_attention_with_bias_in_bf16(length):
    """``attend`` (explicit matmuls for short bf16 sequences, the fused kernel otherwise)
    agrees with float32 scaled-dot-product attention, with an additive bias and a -inf-like
    mask, within bf16 rounding."""
    import torch.nn.functional as F

    from stgeo.models.layers.transformer import attend

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 6, 2, length, 16).unbind(0)
    bias = torch.randn(2, length, length)
    bias[:, :, : length // 3] = -100.0  # masked keys, as the shifted-window mask
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert torch.allclose(attend(q, k, v, bias), ref, atol=1e-5)
    low = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias.bfloat16())
    assert low.dtype == torch.bfloat16
    assert float((low.float() - ref).abs().max()) < 0.05

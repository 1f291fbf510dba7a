"""PredFormer: layer order, gated feed-forward, embeddings, output map over time, sizes."""

from __future__ import annotations

import pytest
import torch

import stgeo
from stgeo.errors import StgeoError
from stgeo.models.layers.transformer import GatedTransformerLayer, MultiHeadSelfAttention, SwiGLU
from stgeo.models.predformer import PredFormer

TINY = {"patch": 4, "dim": 16, "heads": 2, "depth": 1}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_swiglu_matches_definition():
    torch.manual_seed(0)
    ff = SwiGLU(12, ratio=4.0).eval()
    assert ff.hidden == 32  # 2/3 * 4 * 12 = 32
    x = torch.randn(3, 12)
    w, b = ff.gate_value.weight, ff.gate_value.bias
    gate, value = x @ w[:32].T + b[:32], x @ w[32:].T + b[32:]
    ref = (torch.nn.functional.silu(gate) * value) @ ff.out.weight.T + ff.out.bias
    torch.testing.assert_close(ff(x), ref)


def test_attention_matches_definition():
    torch.manual_seed(0)
    att = MultiHeadSelfAttention(8, heads=2).eval()
    x = torch.randn(2, 3, 5, 8)  # attention over the 5 tokens, two leading axes
    q, k, v = att.qkv(x).view(2, 3, 5, 3, 2, 4).permute(3, 0, 1, 4, 2, 5)
    y = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1) @ v
    ref = att.proj(y.transpose(2, 3).reshape(2, 3, 5, 8))
    torch.testing.assert_close(att(x), ref, rtol=1e-5, atol=1e-6)


def test_triplet_sts_order_and_axes():
    m = stgeo.create_model("predformer", in_steps=3, out_steps=2, **{**TINY, "depth": 2})
    assert m.axes == "stssts" and len(m.layers) == 6
    assert all(isinstance(layer, GatedTransformerLayer) for layer in m.layers)
    assert isinstance(m.layers[0].ff, SwiGLU)
    tst = stgeo.create_model("predformer", order="tsst", **TINY)
    assert tst.axes == "tsst"


def test_spatial_and_temporal_layers_mix_the_right_axes():
    """A temporal layer never mixes patch locations; a spatial one never mixes frames."""
    torch.manual_seed(0)
    layer = GatedTransformerLayer(8, heads=2).eval()
    m = PredFormer(3, 3, 1, dim=8, heads=2, depth=1, order="t", patch=1)
    m.layers[0] = layer
    z = torch.randn(1, 3, 6, 8)  # (B, T, L, dim)
    z2 = z.clone()
    z2[:, :, 0] += 1  # change patch location 0 in every frame
    with torch.no_grad():
        out, out2 = m._mix(z), m._mix(z2)
    assert torch.equal(out[:, :, 1:], out2[:, :, 1:])  # other locations untouched
    m.axes = "s"
    z3 = z.clone()
    z3[:, 0] += 1  # change frame 0 only
    with torch.no_grad():
        assert torch.equal(m._mix(z)[:, 1:], m._mix(z3)[:, 1:])


def test_time_map_starts_as_last_frame_repeat_and_maps_steps():
    m = stgeo.create_model("predformer", in_steps=4, out_steps=6, **TINY)
    w = m.time_map.weight
    assert w.shape == (6, 4)
    assert torch.equal(w[:, -1], torch.ones(6)) and torch.equal(w[:, :-1], torch.zeros(6, 3))


def test_position_embedding_sized_from_grid_and_interpolated():
    m = stgeo.create_model("predformer", in_steps=2, out_steps=2, grid_shape=(30, 17), **TINY)
    assert tuple(m.pos.shape[-2:]) == (8, 5)
    assert torch.equal(m.position_embedding(8, 5), m.pos[0].flatten(1).T)
    assert m.position_embedding(3, 11).shape == (33, 16)
    # spec round trip: the same hyperparameters and grid rebuild the same parameter shapes
    again = stgeo.create_model("predformer", in_steps=2, out_steps=2, grid_shape=(30, 17), **TINY)
    assert {k: v.shape for k, v in m.state_dict().items()} == {
        k: v.shape for k, v in again.state_dict().items()
    }


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (9, 13), (32, 64), (37, 20)])
def test_any_grid(shape):
    torch.manual_seed(0)
    m = stgeo.create_model("predformer", in_steps=3, out_steps=4, channels=2, **TINY).eval()
    y = m(torch.randn(2, 3, 2, *shape))
    assert y.shape == (2, 4, 2, *shape) and torch.isfinite(y).all()


def test_large_grid_384():
    m = stgeo.create_model("predformer", in_steps=2, out_steps=1, **{**TINY, "patch": 16}).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 2, 1, 384, 384))
    assert y.shape == (1, 1, 1, 384, 384) and torch.isfinite(y).all()


def test_backward_bf16_autocast_and_determinism():
    torch.manual_seed(5)
    a = stgeo.create_model("predformer", in_steps=3, out_steps=2, **TINY)
    torch.manual_seed(5)
    b = stgeo.create_model("predformer", in_steps=3, out_steps=2, **TINY)
    x = torch.randn(2, 3, 1, 11, 14)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)
    a.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = a(x)
    assert torch.isfinite(y.float()).all()
    y.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in a.parameters())
    assert a.pos.grad.abs().sum() > 0 and a.time.grad.abs().sum() > 0


def test_taxibj_config():
    m = stgeo.create_model("predformer-taxibj", in_steps=4, out_steps=4, channels=2)
    assert (m.patch, m.dim, m.layers[0].attn.heads) == (4, 256, 8)
    assert m.layers[0].ff.drop.p == 0.1
    assert m.layers[-1].drop_path.p == pytest.approx(0.1)
    assert n_params(m) == 9_614_260  # default 16 x 16 position grid
    taxibj = stgeo.create_model(
        "predformer-taxibj", in_steps=4, out_steps=4, channels=2, grid_shape=(32, 32)
    )
    assert tuple(taxibj.pos.shape[-2:]) == (8, 8)
    assert n_params(taxibj) == 9_614_260 - 256 * (16 * 16 - 8 * 8) == 9_565_108  # docs figure


@pytest.mark.parametrize(
    "hp",
    [
        {"patch": 0},
        {"dim": 30, "heads": 4},
        {"depth": 0},
        {"order": ""},
        {"order": "sxs"},
        {"order": 3},
        {"drop_path": 1.5},
        {"pos_grid": (4,)},
        {"pos_grid": (4, 0)},
    ],
)
def test_bad_hyperparameters(hp):
    with pytest.raises(StgeoError):
        stgeo.create_model("predformer", **hp)


@pytest.mark.slow
def test_predformer_learns_storms_better_than_persistence():
    storms = stgeo.testing.storm_cells(n_times=160, shape=(32, 32), seed=0, resolution_km=4)
    m = stgeo.train(
        storms,
        "predformer",
        variable="rain_rate",
        in_steps=4,
        out_steps=2,
        epochs=7,
        batch_size=8,
        lr=3e-3,
        patch=4,
        dim=32,
        heads=4,
        depth=1,
        precision="fp32",
        progress=False,
        seed=0,
        splits={"train": 0.8, "val": 0.2},
    )
    assert m.metrics["val_mse"] < m.metrics["persistence_val_mse"]

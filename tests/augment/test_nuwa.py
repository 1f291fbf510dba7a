"""NuwaDynamics core: discovery ViT, patch importance, intervention, the batch transform.

The intervention and the importance are checked against independent reference
implementations written with plain loops (numpy / float64), on grids with H != W and sizes
that are not multiples of the patch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stgeo
from stgeo.augment.nuwa import (
    NEIGHBOURS,
    DiscoveryViT,
    NuwaAugment,
    discovery_patch_size,
    fit_discovery,
    intervene,
    patch_importance,
)
from stgeo.errors import DataValidationError, ModelFileError, StgeoTypeError


def _vit(t=3, c=2, p=4, **kw) -> DiscoveryViT:
    torch.manual_seed(0)
    kw.setdefault("embed_dim", 16)
    return DiscoveryViT(t, c, patch_size=p, **kw).eval()


# -- references (loops, float64) -----------------------------------------------------------
def ref_selection(importance: np.ndarray, k: int) -> np.ndarray:
    b, gh, gw = importance.shape
    sel = np.zeros((b, gh * gw), dtype=bool)
    for i in range(b):
        sel[i, np.argsort(importance[i].ravel(), kind="stable")[:k]] = True
    return sel.reshape(b, gh, gw)


def ref_mean(window: np.ndarray, sel: np.ndarray, p: int) -> np.ndarray:
    """``window`` (T*C, H, W); every pixel of a selected patch -> mean over the 8 neighbour
    patches of the pixel at the same in-patch position, where that pixel lies in the grid."""
    _, h, w = window.shape
    out = window.copy()
    for i, j in zip(*np.nonzero(sel), strict=True):
        for r in range(i * p, min((i + 1) * p, h)):
            for c in range(j * p, min((j + 1) * p, w)):
                vals = [
                    window[:, r + di * p, c + dj * p]
                    for di, dj in NEIGHBOURS
                    if 0 <= r + di * p < h and 0 <= c + dj * p < w
                ]
                if vals:
                    out[:, r, c] = np.mean(vals, axis=0)
    return out


@torch.no_grad()
def ref_importance(model: DiscoveryViT, x: torch.Tensor) -> np.ndarray:
    """Attention rebuilt from the weights with explicit per-head loops, then column sums."""
    b, t, c, h, w = x.shape
    p = model.patch_size
    gh, gw = -(-h // p), -(-w // p)
    z = x.double().reshape(b, t * c, h, w)
    z = F.pad(z, (0, gw * p - w, 0, gh * p - h))
    # patch embedding as unfold + matmul (not the model's conv)
    cols = F.unfold(z, p, stride=p).transpose(1, 2)  # (B, N, C*p*p)
    tok = cols @ model.embed.weight.double().reshape(model.embed_dim, -1).T
    tok = tok + model.embed.bias.double()
    pos = F.interpolate(model.pos.double(), size=(gh, gw), mode="bilinear", align_corners=False)
    tok = tok + pos.flatten(2).transpose(1, 2)
    total = np.zeros((b, gh * gw))
    for blk in model.blocks:
        d, nh = model.embed_dim, model.heads
        dh = d // nh
        u = F.layer_norm(tok, (d,), blk.norm1.weight.double(), blk.norm1.bias.double())
        qkv = u @ blk.qkv.weight.double().T + blk.qkv.bias.double()
        heads_out = []
        block_imp = np.zeros((b, gh * gw))
        for hd in range(nh):
            q = qkv[..., hd * dh : (hd + 1) * dh]
            k = qkv[..., d + hd * dh : d + (hd + 1) * dh]
            v = qkv[..., 2 * d + hd * dh : 2 * d + (hd + 1) * dh]
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1)
            for j in range(gh * gw):  # attention received by key j, summed over queries
                block_imp[:, j] += a[:, :, j].sum(dim=1).numpy() / nh
            heads_out.append(a @ v)
        total += block_imp / len(model.blocks)
        tok = tok + torch.cat(heads_out, -1) @ blk.proj.weight.double().T + blk.proj.bias.double()
        m = blk.mlp
        u = F.layer_norm(tok, (d,), blk.norm2.weight.double(), blk.norm2.bias.double())
        u = F.gelu(u @ m[0].weight.double().T + m[0].bias.double())
        tok = tok + u @ m[2].weight.double().T + m[2].bias.double()
    return total.reshape(b, gh, gw)


# -- patch size rule and discovery model ----------------------------------------------------
def test_patch_size_rule():
    assert discovery_patch_size((384, 384)) == 24
    assert discovery_patch_size((32, 64)) == 4
    assert discovery_patch_size((96, 96)) == 6
    assert discovery_patch_size((16, 8)) == 1
    assert discovery_patch_size((13, 200)) == 13
    with pytest.raises(DataValidationError):
        discovery_patch_size((0, 5))


@pytest.mark.parametrize("hw", [(16, 16), (18, 30), (31, 9), (32, 64), (7, 5)])
def test_vit_shapes_any_grid(hw):
    vit = _vit(p=4, heads=2, depth=2)
    x = torch.randn(2, 3, 2, *hw)
    recon, maps = vit.forward_with_attention(x)
    n = math.ceil(hw[0] / 4) * math.ceil(hw[1] / 4)
    assert recon.shape == x.shape
    assert len(maps) == 2 and maps[0].shape == (2, 2, n, n)
    assert torch.allclose(maps[1].sum(-1), torch.ones(2, 2, n), atol=1e-5)
    assert torch.isfinite(recon).all()


def test_vit_384_grid_importance():
    vit = _vit(t=2, c=1, p=discovery_patch_size((384, 384)), token_grid=(16, 16))
    imp = patch_importance(vit, torch.randn(1, 2, 1, 384, 384))
    assert imp.shape == (1, 16, 16)
    assert imp.sum().item() == pytest.approx(256.0, rel=1e-5)


def test_vit_backward_bf16_and_checks():
    vit = _vit().train()
    x = torch.randn(2, 3, 2, 11, 13)
    F.mse_loss(vit(x), x).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vit.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vit(x)
    assert out.shape == x.shape and torch.isfinite(out.float()).all()
    # importance runs in float32 whatever the surrounding autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        imp = patch_importance(vit, x)
    assert imp.dtype == torch.float32
    assert torch.allclose(imp, patch_importance(vit, x))
    with pytest.raises(DataValidationError, match="3 steps x 2 channels"):
        vit(torch.randn(1, 4, 2, 8, 8))
    with pytest.raises(DataValidationError, match="multiple of heads"):
        DiscoveryViT(2, 1, patch_size=4, embed_dim=10, heads=3)
    with pytest.raises(StgeoTypeError):
        DiscoveryViT(2, 1, patch_size=2.5)
    with pytest.raises(DataValidationError, match=r"\(B, T, C, H, W\)"):
        vit(torch.randn(3, 2, 8, 8))


# -- importance ------------------------------------------------------------------------------
@pytest.mark.parametrize("heads, depth", [(1, 1), (2, 2)])
def test_importance_matches_attention_computed_independently(heads, depth):
    vit = _vit(p=4, heads=heads, depth=depth, token_grid=(3, 3))
    x = torch.randn(3, 3, 2, 11, 17)  # 3 x 5 patches: not the token grid, not multiples
    imp = patch_importance(vit, x)
    assert imp.shape == (3, 3, 5)
    np.testing.assert_allclose(imp.numpy(), ref_importance(vit, x), rtol=1e-4, atol=1e-5)
    # each attention row sums to one: importances of a sample sum to the number of patches
    np.testing.assert_allclose(imp.sum(dim=(1, 2)).numpy(), 15.0, rtol=1e-5)


def test_importance_is_column_sums_of_exposed_attention():
    vit = _vit(heads=2)
    x = torch.randn(2, 3, 2, 12, 20)
    with torch.no_grad():
        (attn,) = vit.forward_with_attention(x)[1]
    expected = attn.sum(dim=2).mean(dim=1).reshape(2, 3, 5)
    assert torch.allclose(patch_importance(vit, x), expected, atol=1e-6)


# -- intervention ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hw, p, k",
    [((11, 14), 4, 5), ((12, 12), 3, 7), ((32, 64), 4, 40), ((9, 10), 4, 2), ((5, 23), 4, 3)],
)
def test_mean_intervention_matches_reference(hw, p, k):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 2, *hw, generator=g)
    gh, gw = math.ceil(hw[0] / p), math.ceil(hw[1] / p)
    imp = torch.rand(3, gh, gw, generator=g)
    out = intervene(x, imp, patch_size=p, k=k, mode="mean")
    sel = ref_selection(imp.numpy(), k)
    for i in range(3):
        ref = ref_mean(x[i].reshape(4, *hw).double().numpy(), sel[i], p)
        got = out[i].reshape(4, *hw)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-6)
        # pixels outside the selected patches are bit-identical
        keep = ~np.kron(sel[i], np.ones((p, p), dtype=bool))[: hw[0], : hw[1]]
        assert torch.equal(got[:, torch.from_numpy(keep)], x[i].reshape(4, *hw)[:, keep])
    assert out.dtype == x.dtype and not torch.equal(out, x)


def test_same_patches_in_every_frame_and_channel():
    x = torch.randn(2, 4, 3, 13, 18)
    imp = torch.rand(2, 4, 5)
    out = intervene(x, imp, patch_size=4, k=6, mode="mix", generator=torch.Generator())
    changed = out != x
    assert changed.any()
    # per sample, the changed pixels are those of whole patches; equal across T and C (random
    # data: a neighbour never has exactly the same value)
    assert torch.equal(changed.all(dim=(1, 2)), changed.any(dim=(1, 2)))


def test_mix_is_alpha_blend_with_one_in_grid_neighbour():
    p, hw, alpha = 4, (10, 13), 0.3
    x = torch.randn(2, 2, 1, *hw, dtype=torch.float64)
    gh, gw = 3, 4
    imp = torch.rand(2, gh, gw)
    out = intervene(x, imp, patch_size=p, k=4, mode="mix", alpha=alpha, generator=torch.Generator())
    sel = ref_selection(imp.numpy(), 4)
    xs, os_ = x.numpy()[:, :, 0], out.numpy()[:, :, 0]
    for b, i, j in zip(*np.nonzero(sel), strict=True):
        rows = slice(i * p, min((i + 1) * p, hw[0]))
        cols = slice(j * p, min((j + 1) * p, hw[1]))
        matches = []
        for di, dj in NEIGHBOURS:
            ni, nj = i + di, j + dj
            if not (0 <= ni < gh and 0 <= nj < gw):
                continue
            expect = xs[b, :, rows, cols].copy()
            for r in range(rows.start, rows.stop):
                for c in range(cols.start, cols.stop):
                    rr, cc = r + di * p, c + dj * p
                    if rr < hw[0] and cc < hw[1]:  # else: no neighbour pixel, kept
                        expect[:, r - rows.start, c - cols.start] = (
                            alpha * xs[b, :, r, c] + (1 - alpha) * xs[b, :, rr, cc]
                        )
            if np.allclose(os_[b, :, rows, cols], expect, atol=1e-6):
                matches.append((di, dj))
        assert len(matches) == 1, (b, i, j, matches)
    keep = ~np.kron(sel, np.ones((1, p, p), dtype=bool))[:, : hw[0], : hw[1]]
    assert np.array_equal(os_.transpose(1, 0, 2, 3)[:, keep], xs.transpose(1, 0, 2, 3)[:, keep])


def test_mix_deterministic_under_generator_seed():
    x, imp = torch.randn(4, 2, 1, 16, 20), torch.rand(4, 4, 5)
    a = intervene(x, imp, patch_size=4, k=8, mode="mix", generator=torch.Generator().manual_seed(3))
    b = intervene(x, imp, patch_size=4, k=8, mode="mix", generator=torch.Generator().manual_seed(3))
    c = intervene(x, imp, patch_size=4, k=8, mode="mix", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_intervention_edge_cases_and_checks():
    x = torch.randn(2, 2, 1, 9, 10)
    imp = torch.rand(2, 3, 3)
    assert torch.equal(intervene(x, imp, patch_size=4, k=0), x)
    assert intervene(x, imp, patch_size=4, k=0) is not x  # a copy
    one = torch.randn(1, 2, 1, 3, 3)  # a single patch has no neighbour: unchanged
    assert torch.equal(intervene(one, torch.ones(1, 1, 1), patch_size=4, k=1), one)
    # a float k is a share of the patches: 0.5 of 9 -> 4 (rounded half to even)
    changed = intervene(x, imp, patch_size=4, k=0.5) != x
    assert int(changed[:, 0, 0].reshape(2, -1).any(0).sum()) > 0
    k4 = intervene(x, imp, patch_size=4, k=4)
    assert torch.equal(intervene(x, imp, patch_size=4, k=0.5), k4)
    # k beyond the number of patches: all patches, each from the original neighbours
    assert torch.isfinite(intervene(x, imp, patch_size=4, k=99)).all()
    bf = x.to(torch.bfloat16)
    assert intervene(bf, imp, patch_size=4, k=2).dtype == torch.bfloat16
    with pytest.raises(DataValidationError, match=r"\(2, 3, 3\)"):
        intervene(x, torch.rand(2, 3, 4), patch_size=4, k=1)
    with pytest.raises(DataValidationError, match="share"):
        intervene(x, imp, patch_size=4, k=1.0)
    with pytest.raises(DataValidationError, match="mode"):
        intervene(x, imp, patch_size=4, k=1, mode="swap")
    with pytest.raises(DataValidationError, match="alpha"):
        intervene(x, imp, patch_size=4, k=1, mode="mix", alpha=1.5)
    with pytest.raises(StgeoTypeError):
        intervene(x, imp, patch_size=4, k="3")


# -- the batch transform ---------------------------------------------------------------------
def test_augment_returns_original_plus_intervened_and_untouched_targets():
    vit = _vit(t=3, c=1, p=4)
    aug = NuwaAugment(vit, k=3, share=0.5, seed=0)
    x, y = torch.randn(8, 3, 1, 14, 19), torch.randn(8, 2, 1, 14, 19)
    x0, y0 = x.clone(), y.clone()
    xa, ya = aug(x, y)
    assert xa.shape == (12, 3, 1, 14, 19) and ya.shape == (12, 2, 1, 14, 19)
    assert torch.equal(x, x0) and torch.equal(y, y0)  # inputs not modified in place
    assert torch.equal(xa[:8], x) and torch.equal(ya[:8], y)
    # find which samples were copied: the targets are bit-identical duplicates
    idx = [next(i for i in range(8) if torch.equal(ya[8 + j], y[i])) for j in range(4)]
    imp = patch_importance(vit, x[idx])
    assert torch.equal(xa[8:], intervene(x[idx], imp, patch_size=4, k=3))


def test_augment_share_and_no_op():
    vit = _vit(t=3, c=1, p=4)
    x, y = torch.randn(5, 3, 1, 8, 8), torch.randn(5, 1, 1, 8, 8)
    xa, ya = NuwaAugment(vit, share=0.0)(x, y)
    assert xa is x and ya is y
    assert NuwaAugment(vit, share=1.0)(x, y)[0].shape[0] == 10
    aug = NuwaAugment(vit, share=0.3, seed=2)  # 1.5 per batch on average (stochastic rounding)
    sizes = [aug(x, y)[0].shape[0] - 5 for _ in range(200)]
    assert set(sizes) == {1, 2}
    assert np.mean(sizes) == pytest.approx(1.5, abs=0.15)
    with pytest.raises(DataValidationError, match="patch size is fixed"):
        NuwaAugment(vit, patch_size=8)
    with pytest.raises(DataValidationError):
        NuwaAugment(vit, share=1.5)
    with pytest.raises(DataValidationError, match="same batch size"):
        NuwaAugment(vit)(x, y[:2])


@pytest.mark.parametrize("mode", ["mean", "mix"])
def test_augment_deterministic_and_resumable(mode):
    vit = _vit(t=3, c=1, p=4)
    batches = [(torch.randn(6, 3, 1, 12, 16), torch.randn(6, 1, 1, 12, 16)) for _ in range(4)]

    def run(aug, items):
        return [aug(x, y) for x, y in items]

    a = run(NuwaAugment(vit, mode=mode, share=0.5, k=4, seed=7), batches)
    b = run(NuwaAugment(vit, mode=mode, share=0.5, k=4, seed=7), batches)
    c = run(NuwaAugment(vit, mode=mode, share=0.5, k=4, seed=8), batches)
    assert all(
        torch.equal(u[0], v[0]) and torch.equal(u[1], v[1]) for u, v in zip(a, b, strict=True)
    )
    assert not all(torch.equal(u[0], v[0]) for u, v in zip(a, c, strict=True))
    # resume after two batches from the state dict: the continuation is identical
    first = NuwaAugment(vit, mode=mode, share=0.5, k=4, seed=7)
    run(first, batches[:2])
    state = first.state_dict()
    resumed = NuwaAugment(vit, mode=mode, share=0.5, k=4, seed=7)
    resumed.load_state_dict(state)
    assert resumed.calls == 2
    rest = run(resumed, batches[2:])
    assert all(torch.equal(u[0], v[0]) for u, v in zip(a[2:], rest, strict=True))


def test_save_load_round_trip(tmp_path):
    vit = fit_discovery([torch.randn(4, 3, 1, 12, 20)], steps=3, embed_dim=16, heads=2, seed=0)
    aug = NuwaAugment(vit, k=0.2, mode="mix", alpha=0.25, share=0.5, seed=3, cache=True)
    x = torch.randn(4, 3, 1, 12, 20)
    aug.importance(x, keys=[10, 11, "a", 13])
    path = aug.save(tmp_path / "nuwa")
    assert sorted(p.name for p in path.iterdir()) == [
        "discovery.safetensors",
        "importance.safetensors",
        "nuwa.json",
    ]
    back = NuwaAugment.load(path)
    assert back.settings() == aug.settings()
    assert back.model.config() == vit.config()
    assert torch.equal(patch_importance(back.model, x), patch_importance(vit, x))
    assert set(back.cache) == {10, 11, "a", 13}
    assert torch.equal(back.cache["a"], aug.cache["a"])
    y = torch.randn(4, 1, 1, 12, 20)
    assert torch.equal(back(x, y)[0], NuwaAugment.load(path)(x, y)[0])


def test_load_refuses_pickles_and_mismatches(tmp_path):
    aug = NuwaAugment(_vit(t=2, c=1, p=4))
    path = aug.save(tmp_path / "n")
    torch.save(aug.model.state_dict(), path / "discovery.safetensors")  # a pickled checkpoint
    with pytest.raises(ModelFileError, match="never unpickles"):
        NuwaAugment.load(path)
    with pytest.raises(ModelFileError, match="no NuwaDynamics settings"):
        NuwaAugment.load(tmp_path / "missing")
    other = NuwaAugment(_vit(t=2, c=1, p=4, embed_dim=8)).save(tmp_path / "o")
    (path / "discovery.safetensors").write_bytes((other / "discovery.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="does not fit"):
        NuwaAugment.load(path)


def test_importance_cache_reuses_maps():
    vit = _vit(t=2, c=1, p=4)
    aug = NuwaAugment(vit, cache=True)
    x = torch.randn(3, 2, 1, 8, 12)
    first = aug.importance(x, keys=[0, 1, 2])
    aug.cache[1] = torch.zeros(2, 3)  # a cached map is used, not recomputed
    again = aug.importance(x, keys=[0, 1, 2])
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], torch.zeros(2, 3))
    with pytest.raises(StgeoTypeError, match="ints or strings"):
        aug.importance(x, keys=[(0, 1), 1, 2])
    with pytest.raises(DataValidationError, match="2 keys for 3"):
        aug.importance(x, keys=[0, 1])


# -- fitting ---------------------------------------------------------------------------------
def _storm_windows(n_times=40, shape=(24, 40), steps=4) -> torch.Tensor:
    ds = stgeo.testing.storm_cells(n_times=n_times, shape=shape, seed=2)
    r = np.log1p(ds.rain_rate.values.astype("float32"))
    r = (r - r.mean()) / r.std()
    return torch.from_numpy(np.stack([r[i : i + steps] for i in range(n_times - steps)]))[
        :, :, None
    ]


def test_fit_discovery_reduces_reconstruction_loss_and_is_deterministic():
    x = _storm_windows()
    train, held = [x[i : i + 6] for i in range(0, 30, 6)], x[30:]
    state = torch.random.get_rng_state()
    a = fit_discovery(train, steps=60, lr=3e-3, embed_dim=32, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    b = fit_discovery(train, steps=60, lr=3e-3, embed_dim=32, seed=0)
    assert all(
        torch.equal(u, v)
        for u, v in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert a.patch_size == discovery_patch_size((24, 40)) == 3
    assert a.token_grid == (8, 14)
    fresh = fit_discovery(train, steps=1, lr=0.0, embed_dim=32, seed=0)
    with torch.no_grad():
        before = F.mse_loss(fresh(held), held).item()
        after = F.mse_loss(a(held), held).item()
    assert after < 0.5 * before, (before, after)
    assert len(a.train_losses) == 60 and not a.training


def test_fit_discovery_inputs():
    x = torch.randn(2, 2, 1, 8, 8)
    one_shot = fit_discovery(iter([x, (x, x)]), steps=5, embed_dim=8)
    assert len(one_shot.train_losses) == 2  # a generator ends the fit when exhausted
    more = fit_discovery([x], steps=2, model=one_shot)
    assert more is one_shot and len(more.train_losses) == 2
    with pytest.raises(DataValidationError, match="no batches"):
        fit_discovery([], steps=3)
    with pytest.raises(DataValidationError):
        fit_discovery([torch.randn(2, 8, 8)], steps=1)


def test_fused_and_explicit_attention_agree():
    vit = _vit(heads=2, depth=2)
    x = torch.randn(2, 3, 2, 13, 21)
    with torch.no_grad():
        fused, none = vit.forward_with_attention(x, need_weights=False)
        explicit, maps = vit.forward_with_attention(x)
    assert none == [] and len(maps) == 2
    assert torch.allclose(fused, explicit, atol=1e-5)
    assert torch.equal(vit(x), fused)


def test_train_accepts_the_augmentation_as_a_callable():
    """The current loop's ``augment=`` slot takes the transform as it is (batches grow)."""
    ds = stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=0, resolution_km=12)
    vit = DiscoveryViT(3, 1, patch_size=2, embed_dim=8)
    calls = []

    class Counting(NuwaAugment):
        def __call__(self, x, y, keys=None):
            xa, ya = super().__call__(x, y, keys)
            calls.append((x.shape[0], xa.shape[0], ya.shape[0]))
            return xa, ya

    m = stgeo.train(
        ds, "simvp", variable="rain_rate", in_steps=3, out_steps=2, epochs=1,
        max_steps_per_epoch=2, max_val_steps=1, batch_size=4, precision="fp32",
        progress=False, augment=Counting(vit, k=4, share=0.5, seed=0),
        hid_S=4, hid_T=8, N_S=2, N_T=1,
    )  # fmt: skip
    assert calls == [(4, 6, 6), (4, 6, 6)]
    assert np.isfinite(m.history[-1]["train_loss"])

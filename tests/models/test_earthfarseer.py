"""EarthFarseer: variants, any grid (SEVIR 384x384, lat/lon 32x64, odd), bf16, AFNO, grid transfer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stgeo
from stgeo.errors import StgeoError
from stgeo.models import model_info, runtime
from stgeo.models.earthfarseer import EarthFarseer, FoTF
from stgeo.models.layers.afno import FourierMixer, interpolate_pos_embed

TINY = {"hid_S": 8, "fotf_dim": 16, "hid_T": 16, "N_T": 2, "tedev_depth": 1}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def tiny(in_steps=4, out_steps=3, channels=1, seed=0, **hp) -> EarthFarseer:
    """A small model whose decoder read-out is not zero (an untrained model is persistence)."""
    torch.manual_seed(seed)
    m = stgeo.create_model(
        "earthfarseer", in_steps=in_steps, out_steps=out_steps, channels=channels, **{**TINY, **hp}
    )
    with torch.no_grad():
        m.decoder.readout.weight.normal_(0, 0.3)
    return m


def grids_seen(m: EarthFarseer, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Shapes of FoTF's token grid and TeDev's latent grid during a forward pass."""
    seen = {}
    h1 = m.fotf.embed.register_forward_hook(lambda mod, i, o: seen.update(tokens=o.shape[-2:]))
    h2 = m.tedev.register_forward_hook(lambda mod, i, o: seen.update(latent=o.shape[-2:]))
    with torch.no_grad():
        seen["out"] = tuple(m(x).shape)
    h1.remove()
    h2.remove()
    return seen


def test_variants_and_parameter_counts():
    small = stgeo.create_model("earthfarseer", in_steps=4, out_steps=12, channels=1)
    alias = stgeo.create_model("earthfarseer-small", in_steps=4, out_steps=12, channels=1)
    base = stgeo.create_model("earthfarseer-base", in_steps=4, out_steps=12, channels=1)
    # the figures of docs/models/earthfarseer.md (4 -> 12 frames, 1 channel)
    assert n_params(small) == n_params(alias) == 282_952
    assert n_params(base) == 3_065_288
    assert model_info("earthfarseer-base")["defaults"]["patch"] == 4
    assert not model_info("earthfarseer")["baseline"]
    # the untrained model is persistence: a learned skip from the inputs plus a zero read-out
    x = torch.randn(2, 4, 1, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(x), x[:, -1:].expand(2, 12, 1, 20, 28))


@pytest.mark.parametrize(
    ("shape", "tokens", "latent"),
    [((384, 384), (48, 48), (96, 96)), ((32, 64), (4, 8), (8, 16))],
    ids=["sevir-384", "latlon-32x64"],
)
def test_small_variant_on_sevir_and_latlon_grids(shape, tokens, latent):
    torch.manual_seed(0)
    m = stgeo.create_model("earthfarseer", in_steps=4, out_steps=12, channels=1).eval()
    x = torch.randn(1, 4, 1, *shape)
    seen = grids_seen(m, x)
    assert seen["out"] == (1, 12, 1, *shape)
    assert tuple(seen["tokens"]) == tokens and tuple(seen["latent"]) == latent
    with torch.no_grad():
        assert torch.isfinite(tiny(out_steps=12)(x)).all()


@pytest.mark.parametrize(
    ("shape", "padded"),
    [
        ((1, 1), (8, 8)),
        ((5, 3), (8, 8)),
        ((27, 45), (32, 48)),
        ((33, 70), (40, 72)),
        ((48, 36), (48, 40)),
        ((81, 9), (88, 16)),
    ],
)
def test_any_grid_latent_from_the_tensors(shape, padded):
    """Odd sizes, sizes divisible by 3, not multiples of the patch, H != W, a single pixel."""
    m = tiny().eval()
    seen = grids_seen(m, torch.randn(2, 4, 1, *shape))
    assert seen["out"] == (2, 3, 1, *shape)
    assert tuple(seen["tokens"]) == (padded[0] // 8, padded[1] // 8)
    assert tuple(seen["latent"]) == (padded[0] // 4, padded[1] // 4)


def test_bf16_autocast_bf16_weights_and_backward():
    m = tiny(channels=2).eval()
    x = torch.randn(2, 4, 2, 30, 44)
    with torch.no_grad():
        ref = m(x)
        with runtime.autocast("cpu", "bf16"):
            y = m(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    scale = float(ref.std())
    assert float((y.float() - ref).abs().max()) < 0.1 * scale
    fast = runtime.prepare_for_inference(m, "cpu", "bf16")
    assert next(fast.parameters()).dtype == torch.bfloat16
    y2 = runtime.predict(fast, x)
    assert float((y2 - ref).abs().max()) < 0.1 * scale
    m.train()
    with runtime.autocast("cpu", "bf16"):
        loss = m(x).float().square().mean()
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all(), name


def test_fft_runs_in_float32_under_autocast(monkeypatch):
    seen = []
    rfft2 = torch.fft.rfft2

    def spy(x, *a, **k):
        seen.append(x.dtype)
        return rfft2(x, *a, **k)

    monkeypatch.setattr(torch.fft, "rfft2", spy)
    mix = FourierMixer(8, num_blocks=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mix(torch.randn(1, 5, 6, 8, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and seen == [torch.float32]
    out = mix.to(torch.bfloat16)(torch.randn(1, 5, 6, 8, dtype=torch.bfloat16))  # bf16 weights
    assert out.dtype == torch.bfloat16 and seen[-1] == torch.float32


def test_determinism_of_the_forward_pass():
    a, b = tiny(seed=5).eval(), tiny(seed=5).eval()
    x = torch.randn(2, 4, 1, 37, 50)
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and torch.equal(a(x), a(x))


def _reference_afno(mix: FourierMixer, x: torch.Tensor) -> torch.Tensor:
    """AFNO written with complex tensors, block by block (the definition)."""
    b, h, w, d = x.shape
    nb = mix.num_blocks
    spec = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(b, h, w // 2 + 1, nb, -1)
    w1 = torch.complex(mix.w1[0], mix.w1[1])
    w2 = torch.complex(mix.w2[0], mix.w2[1])
    hid = torch.einsum("...bi,bio->...bo", spec, w1)
    if mix.activation == "split":
        b1 = torch.complex(mix.b1[:, 0::2], mix.b1[:, 1::2])
        hid = hid + b1
        hid = torch.complex(hid.real.relu(), hid.imag.relu())
        out = torch.einsum("...bi,bio->...bo", hid, w2) + torch.complex(
            mix.b2[:, 0::2], mix.b2[:, 1::2]
        )
        shrink = torch.nn.functional.softshrink
        out = torch.complex(shrink(out.real, mix.sparsity), shrink(out.imag, mix.sparsity))
    else:
        hid = hid * (hid.abs() + mix.b1).relu() / hid.abs()
        out = torch.einsum("...bi,bio->...bo", hid, w2)
        out = out * (out.abs() - mix.sparsity).relu() / out.abs()
    return torch.fft.irfft2(out.reshape(b, h, w // 2 + 1, d), s=(h, w), dim=(1, 2), norm="ortho")


@pytest.mark.parametrize("activation", ["phase", "split"])
def test_fourier_mixer_matches_the_complex_definition(activation):
    torch.manual_seed(0)
    mix = FourierMixer(12, num_blocks=3, hidden_factor=2, sparsity=0.05, activation=activation)
    with torch.no_grad():
        mix.b1.uniform_(-0.3, 0.3)
        if mix.b2 is not None:
            mix.b2.uniform_(-0.3, 0.3)
    x = torch.randn(2, 7, 10, 12, dtype=torch.float64)
    mix = mix.double()
    with torch.no_grad():
        torch.testing.assert_close(mix(x), _reference_afno(mix, x), rtol=1e-7, atol=1e-9)


def test_phase_mixer_is_shift_equivariant_and_split_is_not():
    """Phase-preserving activations commute with the phase factor of a circular shift."""
    torch.manual_seed(1)
    x = torch.randn(2, 9, 14, 16)
    phase = FourierMixer(16, num_blocks=4, sparsity=0.05)
    split = FourierMixer(16, num_blocks=4, sparsity=0.05, activation="split")
    with torch.no_grad():
        phase.b1.uniform_(-0.5, 0.2)
        worst_split = 0.0
        for shift in ((1, 0), (3, 5), (-2, 7)):
            xs = x.roll(shift, dims=(1, 2))
            torch.testing.assert_close(
                phase(xs), phase(x).roll(shift, dims=(1, 2)), atol=1e-5, rtol=1e-5
            )
            d = (split(xs) - split(x).roll(shift, dims=(1, 2))).abs().max()
            worst_split = max(worst_split, float(d))
    assert worst_split > 1e-2


def test_soft_shrink_sparsifies_modes():
    mix = FourierMixer(8, num_blocks=2, sparsity=1e6)
    x = torch.randn(1, 6, 6, 8)
    with torch.no_grad():
        assert torch.equal(mix(x), torch.zeros_like(x))
        mix.sparsity = 0.0
        assert float(mix(x).abs().max()) > 0


def _stationary_field(n: int, h: int, w: int, d: int, seed: int) -> torch.Tensor:
    """White noise smoothed by a fixed Gaussian (correlation length 1 token), unit variance."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, d, h, w, generator=g)
    k = torch.arange(-6, 7, dtype=torch.float32)
    k = torch.exp(-0.5 * (k / 1.0) ** 2)
    kernel = (k[:, None] * k[None, :] / k.sum() ** 2).expand(d, 1, 13, 13)
    field = torch.nn.functional.conv2d(
        torch.nn.functional.pad(noise, (6, 6, 6, 6), mode="circular"), kernel, groups=d
    )
    return (field / field.std()).permute(0, 2, 3, 1)


def test_fourier_mixing_behaves_the_same_on_crops_and_large_grids():
    """Ortho-normalised modes of a stationary field have the variance of its spectral
    density whatever the grid size, so the shared mode MLP (soft-shrink threshold, modReLU
    biases) acts alike on a training crop and on a full grid: the mixer's gain is the same.
    With an unnormalised FFT (thresholds calibrated on the crop) the mode amplitudes of the
    large grid are sqrt(N_large / N_crop) times larger, the thresholds stop mattering and
    the gain changes by far more."""
    torch.manual_seed(2)
    mix = FourierMixer(16, num_blocks=4, sparsity=0.8)
    crop, full = (64, 16, 16), (2, 96, 120)
    with torch.no_grad():
        mix.b1.uniform_(-1.0, -0.5)
        xc = _stationary_field(*crop, 16, seed=0)
        xf = _stationary_field(*full, 16, seed=1)
        gain_crop = float(mix(xc).square().mean().sqrt())
        gain_full = float(mix(xf).square().mean().sqrt())
        r = (96 * 120 / (16 * 16)) ** 0.5
        gain_full_unnormalised = float((mix(xf * r) / r).square().mean().sqrt())
    assert 0.2 < gain_crop < 0.9  # the thresholds matter on the crop
    assert abs(gain_full - gain_crop) / gain_crop < 0.1
    assert abs(gain_full_unnormalised - gain_crop) / gain_crop > 0.5


def test_positional_embedding_interpolates():
    pos = torch.randn(1, 4, 8, 8)
    assert interpolate_pos_embed(pos, (8, 8)) is pos
    big = interpolate_pos_embed(pos, (96, 88))
    assert big.shape == (1, 4, 96, 88)
    flat = torch.full((1, 4, 8, 8), 0.7)
    torch.testing.assert_close(interpolate_pos_embed(flat, (13, 5)), torch.full((1, 4, 13, 5), 0.7))
    # one parameter set serves every grid: no grid-dependent parameter in the model
    a = tiny()
    b = tiny()
    assert {k: v.shape for k, v in a.state_dict().items()} == {
        k: v.shape for k, v in b.state_dict().items()
    }
    with torch.no_grad():
        for shape in ((32, 48), (96, 88)):
            assert torch.isfinite(a.eval()(torch.randn(1, 4, 1, *shape))).all()


@pytest.mark.parametrize(
    "hp",
    [
        {"hid_S": 7},
        {"N_S": 1},
        {"patch": 0},
        {"fotf_dim": 30, "num_blocks": 4},
        {"hid_T": 18, "num_blocks": 4},
        {"fourier_act": "gelu"},
        {"incep_ker": (3, 4)},
        {"incep_ker": "357"},
        {"drop_path": 1.5},
        {"spatio_kernel": 2},
        {"sparsity": -1.0},
        {"fotf_rounds": 0},
    ],
)
def test_bad_hyperparameters(hp):
    with pytest.raises(StgeoError):
        stgeo.create_model("earthfarseer", **hp)


def test_split_activation_model_trains_and_runs_in_bf16():
    m = tiny(fourier_act="split", fotf_rounds=2)
    x = torch.randn(2, 4, 1, 19, 26)
    m(x).square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
    with torch.no_grad(), runtime.autocast("cpu", "bf16"):
        assert torch.isfinite(m.eval()(x)).all()


def test_interaction_rounds_reuse_the_same_weights():
    one, two = tiny(fotf_rounds=1), tiny(fotf_rounds=2)
    assert n_params(one) == n_params(two)
    x = torch.randn(1, 4, 1, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(one.eval()(x), two.eval()(x))


# ---------------------------------------------------------------------------------------------
# learning on synthetic storms, and forecasting a larger grid than the training crops

LEARN = {**TINY, "fotf_dim": 32, "hid_T": 32, "patch": 4}


@pytest.fixture(scope="module")
def trained():
    ds = stgeo.testing.storm_cells(n_times=48, shape=(32, 32), seed=0)
    return stgeo.train(
        ds,
        model="earthfarseer",
        variable="rain_rate",
        in_steps=4,
        out_steps=4,
        epochs=3,
        max_steps_per_epoch=6,
        batch_size=8,
        lr=3e-3,
        precision="fp32",
        progress=False,
        seed=0,
        **LEARN,
    )


def _windows(model, shape, seed):
    from stgeo.data import Normalizer

    ds = stgeo.testing.storm_cells(n_times=24, shape=shape, seed=seed)
    frames = torch.as_tensor(ds.rain_rate.values, dtype=torch.float32)[:, None]
    frames = Normalizer.from_dict(model.spec.normalization).transform(frames)
    idx = range(0, frames.shape[0] - 8 + 1, 2)
    x = torch.stack([frames[i : i + 4] for i in idx])
    y = torch.stack([frames[i + 4 : i + 8] for i in idx])
    return x, y


@pytest.mark.slow
def test_learns_storms_beats_persistence(trained):
    met = trained.metrics
    assert np.isfinite(met["val_mse"])
    assert met["val_mse"] < met["persistence_val_mse"]


@pytest.mark.slow
def test_trained_on_small_grid_forecasts_a_larger_grid(trained):
    """Weights trained on 32x32 grids, applied to unseen storms on a 64x96 grid (3x the
    token grid on one side, interpolated positional embedding): still better than
    persistence, and crop-consistent: the forecasts of two overlapping crops, the second
    shifted by one token (4 px, a whole number of latent pixels too), agree in the interior
    of their overlap far better than either agrees with persistence."""
    m = trained.module.eval()
    x, y = _windows(trained, (64, 96), seed=11)
    with torch.no_grad():
        pred = m(x)
    persistence = x[:, -1:].expand_as(y)
    assert float((pred - y).square().mean()) < float((persistence - y).square().mean())
    with torch.no_grad():
        a = m(x[..., 0:48, 0:80])
        b = m(x[..., 4:52, 4:84])
    margin = 8  # away from both crops' borders (zero padding, wrap-around of the FFT)
    a_in = a[..., 4 + margin : 48 - margin, 4 + margin : 80 - margin]
    b_in = b[..., margin : 44 - margin, margin : 76 - margin]
    gap = float((a_in - b_in).square().mean().sqrt())
    change = float(
        (a_in - x[:, -1:, :, 4 + margin : 48 - margin, 4 + margin : 80 - margin])
        .square()
        .mean()
        .sqrt()
    )
    assert gap < 0.25 * change


def test_unpatch_as_matrix_product_equals_the_transposed_convolution():
    """FoTF un-patches tokens with a matrix product and a pixel shuffle; the result is the
    stored ``ConvTranspose2d``'s (kernel = stride = patch), so the weights keep their layout."""
    torch.manual_seed(0)
    blk = FoTF(3, dim=16, patch=4, depth=1)
    t = torch.randn(2, 5, 7, 16)
    want = blk.unpatch(t.permute(0, 3, 1, 2))
    assert torch.allclose(blk._unpatch(t), want, atol=1e-5)


def test_bf16_fourier_mixing_close_to_fp32():
    """In bf16 the mode MLP runs in bf16 (FFTs in float32): close to the float32 mixer."""
    torch.manual_seed(0)
    mix = FourierMixer(32, num_blocks=4)
    x = torch.randn(2, 9, 12, 32)
    ref = mix(x)
    low = mix.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    with torch.no_grad():
        rel = float((low.float() - ref).square().mean() / ref.square().mean())
    assert rel < 1e-3

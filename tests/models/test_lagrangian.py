"""The Lagrangian nowcaster: advection, probability matching and the start at extrapolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError
from stgeo.models.lagrangian import (
    advect,
    cascade_weights,
    displacements,
    match_distribution,
    spectral_evolution,
)

pytest.importorskip("pysteps")


def moving_cell(steps: int, speed: tuple[int, int] = (0, 2), shape=(40, 48)) -> torch.Tensor:
    """A smooth rain cell moving ``speed`` (rows, cols) pixels per step: ``(1, steps, 1, H, W)``."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(steps):
        cy, cx = 16 + speed[0] * t, 12 + speed[1] * t
        frames.append(5.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0))
    return torch.tensor(np.stack(frames), dtype=torch.float32)[None, :, None]


def test_uniform_motion_displacements_are_exact():
    v = torch.zeros(2, 2, 10, 12)
    v[:, 0], v[:, 1] = 1.5, -0.5
    d = displacements(v, 3)
    assert torch.allclose(d[2][:, 0], torch.full((2, 10, 12), -4.5))
    assert torch.allclose(d[2][:, 1], torch.full((2, 10, 12), 1.5))


def test_advect_fills_inflow_and_moves_values():
    f = torch.arange(12.0).view(1, 1, 3, 4)
    d = torch.zeros(1, 2, 3, 4)
    d[:, 0] = -1.0  # everything moves one column east
    out = advect(f, d, torch.full((1, 1, 1, 1), -7.0))
    assert out[0, 0, :, 0].tolist() == [-7.0, -7.0, -7.0]
    assert torch.equal(out[0, 0, :, 1:], f[0, 0, :, :-1])


def test_match_distribution_keeps_ranks_and_takes_reference_values():
    g = torch.Generator().manual_seed(0)
    vals, ref = torch.rand(3, 50, generator=g), torch.rand(3, 50, generator=g) * 10
    out = match_distribution(vals, ref)
    assert torch.equal(out.sort(dim=1).values, ref.sort(dim=1).values)
    assert torch.equal(out.argsort(dim=1), vals.argsort(dim=1))


def test_starts_as_extrapolation_of_the_last_frame():
    x = moving_cell(4 + 3)
    m = stgeo.create_model("lagrangian", in_steps=4, out_steps=3, hidden=8).eval()
    with torch.no_grad():
        y = m(x[:, :4])
    truth = x[:, 4:]
    err = (y - truth).abs().mean() / truth.mean()
    persistence = (x[:, 3:4] - truth).abs().mean() / truth.mean()
    assert err < 0.2 * persistence, (float(err), float(persistence))
    peak = y[0, 2, 0].argmax()
    assert divmod(int(peak), 48) == (16, 12 + 2 * 6)  # 3 steps after the 4th frame


def test_correction_trains_and_prob_matching_only_in_eval():
    torch.manual_seed(0)
    x = moving_cell(7)
    m = stgeo.create_model("lagrangian", in_steps=4, out_steps=3, hidden=8, prob_matching=True)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    target = 0.5 * x[:, 4:]  # the rain decays: extrapolation alone cannot do this
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((m(x[:, :4]) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    m.eval()
    with torch.no_grad():
        y = m(x[:, :4])
    # evaluation mode: every lead has exactly the last frame's values
    ref = x[0, 3, 0].flatten().sort().values
    for k in range(3):
        assert torch.allclose(y[0, k, 0].flatten().sort().values, ref)


def test_odd_grids_bf16_and_dry_input():
    m = stgeo.create_model("lagrangian", in_steps=3, out_steps=2, channels=2, hidden=8).eval()
    x = torch.rand(2, 3, 2, 21, 35)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.shape == (2, 2, 2, 21, 35)
    assert torch.isfinite(y.float()).all()
    dry = torch.zeros(1, 3, 1, 16, 16)
    with torch.no_grad():
        y = stgeo.create_model("lagrangian", in_steps=3, out_steps=2, hidden=8).eval()(dry)
    assert torch.equal(y, torch.zeros(1, 2, 1, 16, 16))


def test_needs_two_input_frames():
    with pytest.raises(DataValidationError, match="in_steps"):
        stgeo.create_model("lagrangian", in_steps=1, out_steps=2)


def test_grid_rule_runs_whole_grids():
    rule = stgeo.models.grid_rule("lagrangian")
    assert rule.whole_grid and not rule.fully_convolutional and rule.multiple == 4


def test_inflow_border_or_dry():
    x = torch.roll(moving_cell(4), -12, dims=-1)  # a cell at the western edge, moving east
    border = stgeo.create_model("lagrangian", in_steps=4, out_steps=3, hidden=8).eval()
    dry = stgeo.create_model("lagrangian", in_steps=4, out_steps=3, hidden=8, inflow="dry")
    with torch.no_grad():
        yb, yd = border(x), dry.eval()(x)
    edge = x[0, -1, 0, :, 0]
    assert torch.allclose(yb[0, 2, 0, :, :6], edge[:, None].expand(-1, 6), atol=0.05)
    assert float(yd[0, 2, 0, :, :6].abs().max()) < 1e-6  # no rain (the driest input) flows in
    with pytest.raises(DataValidationError, match="inflow"):
        stgeo.create_model("lagrangian", in_steps=4, out_steps=2, inflow="zero")


def test_cascade_weights_partition_every_wavenumber_and_order_the_scales():
    w = cascade_weights(32, 48, 6, torch.device("cpu"))
    assert torch.allclose(w.sum(0), torch.ones(32, 25))
    assert float(w[0, 0, 0]) == 1.0  # the mean is the largest scale's
    assert int(w[:, 0, 1].argmax()) < int(w[:, 0, 24].argmax())  # 1 cycle vs the Nyquist


def test_spectral_evolution_keeps_what_persists_and_fades_noise():
    still = moving_cell(1).expand(1, 4, 1, 40, 48).contiguous()  # a cell standing still
    kept = spectral_evolution(still, 6)
    assert torch.allclose(kept[0, -1], still[0, -1], atol=0.02)  # correlations clip at 0.999
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 4, 1, 40, 48, generator=g)  # every frame independent
    faded = spectral_evolution(noise, 6)
    assert torch.allclose(faded.mean(dim=(-2, -1)), noise[:, -1:].mean(dim=(-2, -1)), atol=1e-5)
    assert float(faded[:, 0].std()) < 0.5 * float(noise[:, -1].std())
    # a mixture: the persistent large cell stays, the independent small-scale noise fades
    mixed = still + 0.5 * torch.rand(1, 4, 1, 40, 48, generator=g)
    out = spectral_evolution(mixed, 3)[0, -1, 0]
    assert float((out - still[0, -1, 0]).abs().mean()) < float(
        (mixed[0, -1, 0] - still[0, -1, 0]).abs().mean()
    )
    with pytest.raises(DataValidationError, match="at least 3 input frames"):
        spectral_evolution(still[:, :2], 2)


def test_spectral_evolution_fits_its_decay_on_the_wet_pixels():
    # independent noise inside a rain area: the area's edges persist, its inside does not;
    # correlations over the wet pixels only (as S-PROG) let the inside fade
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(1, 4, 1, 64, 64)
    x[0, :, 0, 8:32, 8:32] = 1.0 + 2.0 * torch.rand(4, 24, 24, generator=g)
    inside = (slice(12, 28), slice(12, 28))
    out = spectral_evolution(x, 1)[0, 0, 0]
    assert float(out[inside].std()) < 0.35 * float(x[0, -1, 0][inside].std())
    # fewer than 16 wet pixels: the correlations use every pixel, and nothing breaks
    speck = torch.zeros(1, 4, 1, 32, 32)
    speck[0, :, 0, 5:8, 5:8] = 3.0
    assert bool(torch.isfinite(spectral_evolution(speck, 2)).all())


def test_ar_pairs_all_averages_the_correlations_of_every_input_pair():
    g = torch.Generator().manual_seed(0)
    # the last three frames are one field (perfect persistence), the oldest is unrelated noise
    field = torch.rand(1, 1, 1, 40, 48, generator=g)
    x = torch.cat((torch.rand(1, 1, 1, 40, 48, generator=g), field.expand(1, 3, 1, 40, 48)), 1)
    last = spectral_evolution(x, 4)  # S-PROG's pairs: the last frame with the two before
    assert torch.equal(last, spectral_evolution(x, 4, ar_pairs="last"))
    assert torch.allclose(last[0, -1], field[0, 0], atol=0.03)  # correlations 1: kept
    # every pair: the oldest frame's lag-1 and lag-2 correlations (about 0) enter the means,
    # so the small scales decay
    every = spectral_evolution(x, 4, ar_pairs="all")
    assert float(every[0, -1].std()) < 0.9 * float(last[0, -1].std())
    assert torch.allclose(every.mean(dim=(-2, -1)), field.mean(dim=(-2, -1)), atol=1e-5)
    # with three inputs "all" differs from S-PROG only by the lag-1 pair of the two oldest
    three = x[:, :3]
    assert not torch.allclose(
        spectral_evolution(three, 2, ar_pairs="all"), spectral_evolution(three, 2)
    )
    assert torch.equal(
        spectral_evolution(x[:, 1:], 2, ar_pairs="all"), spectral_evolution(x[:, 1:], 2)
    )
    with pytest.raises(DataValidationError, match="ar_pairs"):
        spectral_evolution(x, 2, ar_pairs="every")
    m = stgeo.create_model(
        "lagrangian", in_steps=4, out_steps=2, hidden=8, evolution="spectral", ar_pairs="all"
    ).eval()
    with torch.no_grad():
        assert torch.allclose(m(x), every[:, :2], atol=1e-5)  # the untrained model: its base
    with pytest.raises(DataValidationError, match="ar_pairs must be"):
        stgeo.create_model("lagrangian", in_steps=4, out_steps=2, ar_pairs="every")


def test_scale_gains_start_neutral_and_learn():
    torch.manual_seed(0)
    plain = stgeo.create_model(
        "lagrangian", in_steps=4, out_steps=3, hidden=8, evolution="spectral"
    )
    torch.manual_seed(0)
    gained = stgeo.create_model(
        "lagrangian", in_steps=4, out_steps=3, hidden=8, evolution="spectral", scale_gains=True
    )
    assert tuple(gained.scale_gains.shape) == (3, 6)
    x = moving_cell(4)
    assert torch.equal(plain(x), gained(x))  # gains of 1: the plain spectral evolution
    loss = (gained(x) - x[:, -1:]).square().mean()
    loss.backward()
    assert float(gained.scale_gains.grad.abs().sum()) > 0
    flat = spectral_evolution(x, 3, gains=torch.zeros(3, 6))  # no scale kept: the mean is left
    mean = x[:, -1:].mean(dim=(-2, -1), keepdim=True).expand_as(flat)
    assert torch.allclose(flat, mean, atol=1e-5)
    with pytest.raises(DataValidationError, match="scale_gains"):
        stgeo.create_model("lagrangian", in_steps=4, out_steps=3, scale_gains=True)


def test_spectral_evolution_model_starts_as_its_base_and_checks_settings():
    x = moving_cell(4 + 3)
    m = stgeo.create_model(
        "lagrangian", in_steps=4, out_steps=3, hidden=8, evolution="spectral"
    ).eval()
    with torch.no_grad():
        y = m(x[:, :4])
    peak = y[0, 2, 0].argmax()
    assert divmod(int(peak), 48) == (16, 12 + 2 * 6)  # moved like extrapolation
    assert float(y[0, 2].max()) < float(x[0, 3].max())  # the small scales of the cell fade
    with pytest.raises(DataValidationError, match="evolution must be"):
        stgeo.create_model("lagrangian", in_steps=4, out_steps=3, evolution="ar")
    with pytest.raises(DataValidationError, match="in_steps"):
        stgeo.create_model("lagrangian", in_steps=2, out_steps=3, evolution="spectral")


def test_motion_from_dbr_takes_inputs_back_to_rain_rates():
    from stgeo.data.normalize import Normalizer
    from stgeo.models.motion import lucas_kanade, to_db

    rain = moving_cell(4, speed=(1, 2))  # mm/h
    rain[..., 30:, :] = 0.3  # a band of light rain: an edge that dBR makes as sharp as a core
    norm = {"method": "log1p", "channels": ["rain"], "mean": [0.2], "std": [0.5]}
    x = Normalizer.from_dict(norm).transform(rain)
    m = stgeo.create_model(
        "lagrangian", in_steps=4, out_steps=2, hidden=8, motion_from="dbr", normalization=norm
    )
    expected = lucas_kanade(to_db(rain[0, :, 0].numpy()))
    assert np.allclose(m.motion(x)[0].numpy(), expected, atol=1e-5)
    plain = stgeo.create_model("lagrangian", in_steps=4, out_steps=2, hidden=8)
    assert not torch.allclose(plain.motion(x), m.motion(x), atol=1e-3)  # not the input's
    direct = stgeo.create_model(  # no normalisation: the inputs are mm/h
        "lagrangian", in_steps=4, out_steps=2, hidden=8, motion_from="dbr"
    )
    assert np.allclose(direct.motion(rain)[0].numpy(), expected, atol=1e-5)
    with pytest.raises(DataValidationError, match="motion_from must be"):
        stgeo.create_model("lagrangian", in_steps=4, out_steps=2, motion_from="db")


def test_spec_build_hands_the_normalization_to_models_that_take_it():
    from stgeo.models import ModelSpec

    norm = {"method": "log1p", "channels": ["rain_rate"], "mean": [0.2], "std": [0.5]}
    spec = ModelSpec(
        "lagrangian",
        4,
        2,
        ["rain_rate"],
        ["rain_rate"],
        "5min",
        None,
        hyperparameters={"hidden": 8, "motion_from": "dbr"},
        normalization=norm,
    )
    m = spec.build()
    assert m.normalizer.method == "log1p" and m.normalizer.to_dict()["mean"] == [0.2]
    # builders without the argument ignore it (no "unexpected keyword" error)
    stgeo.create_model("convlstm", hidden=4, num_layers=1, normalization=norm)


def test_training_hands_the_data_normalization_to_the_model(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=1, resolution_km=12)
    tm = stgeo.train(
        ds,
        model="lagrangian",
        variable="rain_rate",
        in_steps=4,
        out_steps=2,
        hidden=4,
        motion_from="dbr",
        normalization="log1p",
        epochs=1,
        batch_size=2,
        max_steps_per_epoch=1,
        progress=False,
    )
    assert tm.module.normalizer.to_dict() == tm.spec.normalization
    tm.save(tmp_path / "m")
    back = stgeo.load_model(tmp_path / "m")
    assert back.module.normalizer.to_dict() == tm.spec.normalization

"""Seed ensembles: training, combining, forecasting, saving and refusing bad members."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.models import MeanEnsemble, ModelSpec, ensemble

TINY = {"hid_S": 4, "hid_T": 8, "N_S": 2, "N_T": 1}
KW = dict(
    variable="rain_rate", in_steps=2, out_steps=2, epochs=1, max_steps_per_epoch=3,
    precision="fp32", progress=False, batch_size=4, **TINY,
)  # fmt: skip


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0, resolution_km=12)


@pytest.fixture(scope="module")
def members(storms):
    return [stgeo.train(storms, "simvp", seed=s, **KW) for s in (0, 1, 2)]


def _forecast(storms, model):
    inits = storms.time.values[[5, 20, 30]]
    return stgeo.forecast(
        storms.rain_rate, model, init_times=inits, progress=False, precision="fp32"
    )


def test_the_ensemble_forecasts_the_mean_of_its_members(storms, members):
    ens = ensemble(members)
    assert ens.spec.members == 3 and isinstance(ens.module, MeanEnsemble)
    fcs = [_forecast(storms, m) for m in members]
    assert not np.allclose(fcs[0].values, fcs[1].values)  # the seeds differ
    # "standard" normalisation is affine: the mean in normalised space is the mean forecast
    mean = sum(f.values for f in fcs) / 3
    np.testing.assert_allclose(_forecast(storms, ens).values, mean, rtol=1e-5, atol=1e-5)
    # each member comes back with its seed, metrics and history
    back = ens.members
    assert [m.spec.extra["training"]["seed"] for m in back] == [0, 1, 2]
    assert [m.metrics for m in back] == [m.metrics for m in members]
    assert back[1].history == members[1].history and back[1].spec.members is None
    assert ens.spec.extra["training"]["seeds"] == [0, 1, 2]
    assert "seed" not in ens.spec.extra["training"]
    np.testing.assert_array_equal(_forecast(storms, back[2]).values, fcs[2].values)
    assert members[0].members == []


def test_saved_and_loaded_the_same(tmp_path, storms, members):
    ens = ensemble(members[:2])
    path = ens.save(tmp_path / "ens")
    spec = json.loads((tmp_path / "ens" / "spec.json").read_text())
    assert spec["members"] == 2
    back = stgeo.load_model(path)
    assert back.spec.members == 2 and "members=2" in repr(back)
    assert back.spec.extra["members"] == ens.spec.extra["members"]
    assert [m.spec.extra["training"]["seed"] for m in back.members] == [0, 1]
    np.testing.assert_array_equal(_forecast(storms, back).values, _forecast(storms, ens).values)
    # a single network's spec keeps the layout it always had (no "members" key)
    members[0].save(tmp_path / "one")
    assert "members" not in json.loads((tmp_path / "one" / "spec.json").read_text())


def test_lazy_forecast_on_a_cluster_equals_the_eager_one(tmp_path, storms, members):
    """A saved ensemble (as the pretrained ones are) forecast chunk by chunk on worker
    processes of a real Dask cluster gives the eager forecast (to float32 rounding: the workers
    run one torch thread each, the eager forecast as many as the machine gives it, and the
    order of a convolution's sums follows the thread count)."""
    distributed = pytest.importorskip("distributed")
    path = ensemble(members[:2]).save(tmp_path / "ens")
    kw = dict(init_times=storms.time.values[2:34], batch_size=4, precision="fp32")
    eager = stgeo.forecast(storms.rain_rate, path, progress=False, **kw)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        lazy = stgeo.forecast(storms.rain_rate, path, lazy=True, chunk_size=8, **kw)
        assert lazy.chunks is not None
        np.testing.assert_allclose(lazy.compute().values, eager.values, rtol=1e-5, atol=1e-6)


def test_train_with_seeds_is_the_ensemble_of_the_seeded_runs(tmp_path, storms, members):
    ens = stgeo.train(storms, "simvp", seeds=[0, 1], checkpoint_dir=tmp_path / "ck", **KW)
    assert ens.spec.members == 2
    for got, ref in zip(ens.members, members[:2], strict=True):
        a, b = got.module.state_dict(), ref.module.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in b)  # exactly the run seed=s
    assert (tmp_path / "ck" / "seed-0").is_dir() and (tmp_path / "ck" / "seed-1").is_dir()
    # the same call again resumes every member from its finished checkpoint: the same model
    again = stgeo.train(storms, "simvp", seeds=[0, 1], checkpoint_dir=tmp_path / "ck", **KW)
    a, b = again.module.state_dict(), ens.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    with pytest.raises(DataValidationError, match="two or more integers"):
        stgeo.train(storms, "simvp", seeds=[0], **KW)
    with pytest.raises(DataValidationError, match="must differ"):
        stgeo.train(storms, "simvp", seeds=[1, 1], **KW)
    with pytest.raises(DataValidationError, match="not both"):
        stgeo.train(storms, "simvp", seed=3, seeds=[0, 1], **KW)
    with pytest.raises(DataValidationError, match="calibration"):
        stgeo.train(storms, "simvp", seeds=[0, 1], calibration="quantile", **KW)


def test_bad_members_are_refused_with_the_reason(storms, members):
    with pytest.raises(DataValidationError, match="at least 2 members"):
        ensemble(members[:1])
    with pytest.raises(StgeoTypeError, match="TrainedModels"):
        ensemble([members[0], "simvp"])
    with pytest.raises(DataValidationError, match="itself an ensemble"):
        ensemble([ensemble(members[:2]), members[2]])
    other = stgeo.train(storms, "simvp", seed=0, **{**KW, "hid_T": 16})
    with pytest.raises(DataValidationError, match="differ in hyperparameters"):
        ensemble([members[0], other])
    calibrated = stgeo.train(storms, "simvp", seed=0, calibration="quantile", **KW)
    with pytest.raises(DataValidationError, match="calibrated"):
        ensemble([members[0], calibrated])
    with pytest.raises(DataValidationError, match="members"):
        ModelSpec("simvp", 2, 2, ["r"], ["r"], "5min", members=1)
    with pytest.raises(DataValidationError, match="at least 2 members"):
        MeanEnsemble([torch.nn.Identity()])


def test_the_mean_is_accumulated_in_float32_under_bf16():
    torch.manual_seed(0)
    nets = [stgeo.create_model("convlstm", in_steps=2, out_steps=1, hidden=4) for _ in range(3)]
    x = torch.rand(2, 2, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = MeanEnsemble(nets)(x)
        outs = [n(x) for n in nets]
    assert outs[0].dtype == torch.bfloat16 and y.dtype == torch.float32
    assert torch.equal(y, sum(o.float() for o in outs) / 3)

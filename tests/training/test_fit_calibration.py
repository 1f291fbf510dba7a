"""``stgeo.train(..., calibration="quantile")``: fitted on the training split, saved, applied."""

from __future__ import annotations

import numpy as np
import pytest

import stgeo
from stgeo.errors import DataValidationError

KW = dict(
    model="convlstm",
    in_steps=4,
    out_steps=3,
    epochs=2,
    hidden=8,
    num_layers=1,
    patch=4,
    normalization="log1p",
    loss="mae",
    progress=False,
    seed=0,
)


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=72, shape=(32, 32), seed=0)


@pytest.fixture(scope="module")
def models(storms):
    return stgeo.train(storms, **KW), stgeo.train(storms, calibration="quantile", **KW)


def _bias(fc, obs, thr):
    truth = np.stack([obs.sel(time=fc.valid_time.values[:, i]).values for i in range(3)], 1)
    return (fc.values >= thr).mean(axis=(0, 2, 3)) / (truth >= thr).mean(axis=(0, 2, 3))


def test_the_same_weights_with_a_calibration_in_the_spec(models):
    raw, cal = models
    assert raw.spec.calibration is None
    assert cal.spec.calibration["method"] == "quantile"
    assert cal.spec.calibration["leads"] == [1, 2, 3]
    assert cal.spec.extra["training"]["calibration"] == "quantile"
    assert "calibration" not in raw.spec.extra["training"]
    pairs = zip(raw.module.state_dict().values(), cal.module.state_dict().values(), strict=True)
    for a, b in pairs:
        assert bool((a == b).all())


def test_calibrated_forecasts_have_the_observed_rain_area(models):
    raw, cal = models
    held_out = stgeo.testing.storm_cells(n_times=48, shape=(32, 32), seed=1)
    inits = held_out.time[3:-3]
    f_raw = stgeo.forecast(held_out, raw, lead_steps=3, init_times=inits, progress=False)
    f_cal = stgeo.forecast(held_out, cal, lead_steps=3, init_times=inits, progress=False)
    assert "calibration" in f_cal.attrs and "calibration" not in f_raw.attrs
    b_raw, b_cal = _bias(f_raw, held_out.rain_rate, 1.0), _bias(f_cal, held_out.rain_rate, 1.0)
    assert np.abs(b_cal - 1).max() < np.abs(b_raw - 1).max()
    assert np.abs(b_cal - 1).max() < 0.3, b_cal


def test_saved_and_loaded_calibrated_model_forecasts_the_same(models, storms, tmp_path):
    cal = models[1]
    path = cal.save(tmp_path / "m")
    a = stgeo.forecast(storms, cal, lead_steps=5, progress=False)
    b = stgeo.forecast(storms, path, lead_steps=5, progress=False)
    np.testing.assert_array_equal(a.values, b.values)
    lazy = stgeo.forecast(storms, path, lead_steps=5, progress=False, lazy=True, chunk_size=16)
    np.testing.assert_array_equal(lazy.values, a.values)


def test_unknown_calibration_is_refused_before_reading_data():
    with pytest.raises(DataValidationError, match="calibration must be None or 'quantile'"):
        stgeo.train("no-such-store.zarr", calibration="isotonic", **KW)


TORCHRUN_SCRIPT = """
import sys
import stgeo

store, out = sys.argv[1], sys.argv[2]
m = stgeo.train(store, model="convlstm", in_steps=4, out_steps=3, epochs=1, hidden=8,
                num_layers=1, patch=4, normalization="log1p", loss="mae", progress=False,
                seed=0, batch_size=4, max_steps_per_epoch=3, calibration="quantile",
                checkpoint_dir=out)
"""


def test_two_ranks_average_their_quantile_maps(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    ds = stgeo.testing.storm_cells(n_times=48, shape=(16, 16), seed=0)
    store = stgeo.to_zarr(ds, tmp_path / "storms.zarr")
    script = tmp_path / "run.py"
    script.write_text(TORCHRUN_SCRIPT)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", str(script), str(store), str(tmp_path / "ck")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    m = stgeo.load_model(tmp_path / "ck" / "model")
    cal = m.spec.calibration
    assert cal["method"] == "quantile" and m.spec.extra["training"]["world_size"] == 2
    fq = np.asarray(cal["forecast"])
    assert np.isfinite(fq).all() and (np.diff(fq, axis=-1) >= -1e-6).all()
    fc = stgeo.forecast(ds, m, lead_steps=3, init_times=ds.time[4:8], progress=False)
    assert np.isfinite(fc.values).all()

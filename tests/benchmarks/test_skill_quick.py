"""Smoke tests of the skill benchmarks' ``--quick`` runs on the real data (../shared/data).

Each runs the script as a user would (a subprocess from the repository root, a fresh store
cache), then checks the contract: a table, one JSON line last with the spec's keys per method,
``train_seconds`` for the learned model, and baselines that reproduce the reference values of
specs/evaluation.md (the same protocol and scoring code, so they must agree to the rounding).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stgeo

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("STGEO_SHARED_DATA") or ROOT.parent / "shared" / "data")

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def run_quick(script: str, cache: Path, *extra: str) -> tuple[dict, str]:
    need = {"skill_bikenyc.py": "bikenyc", "skill_era5.py": "era5"}[script]
    if not (SHARED / need).is_dir():
        pytest.skip(f"needs the real data in {SHARED / need}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            "--quick",
            "--cache",
            str(cache),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]), proc.stdout


def test_skill_bikenyc_quick(tmp_path):
    out, text = run_quick("skill_bikenyc.py", tmp_path)
    assert out["quick"] is True and out["test_hours"] == 240
    learned = ("stresnet-small", "stresnet-stacked-small")
    for method in ("persistence", "historical_average", *learned):
        assert {"rmse", "mae"} <= set(out[method]), method
        assert math.isfinite(out[method]["rmse"]) and out[method]["rmse"] > 0
        assert 0 < out[method]["mae"] <= out[method]["rmse"]
    assert all(out[m]["train_seconds"] > 0 for m in learned)
    # the protocol's reference values (specs/evaluation.md), recomputed in the run
    assert out["persistence"]["rmse"] == pytest.approx(9.36, abs=0.005)
    assert out["persistence"]["mae"] == pytest.approx(4.11, abs=0.005)
    assert out["historical_average"]["rmse"] == pytest.approx(6.94, abs=0.005)
    assert out["historical_average"]["mae"] == pytest.approx(2.94, abs=0.005)
    assert all(c["ok"] for m in out["reference_check"].values() for c in m.values())
    assert "historical_average" in text and "smoke test" in text
    # the shipped pretrained model, resolved by its architecture's name, keeps its card's skill
    shipped = out["bikenyc-stresnet (pretrained)"]
    card = stgeo.pretrained.card("bikenyc-stresnet").scores[0]
    assert shipped["rmse"] == pytest.approx(card["RMSE"], abs=0.002) and shipped["rmse"] <= 5.9
    assert shipped["mae"] == pytest.approx(card["MAE"], abs=0.002)


def test_skill_era5_quick(tmp_path):
    out, text = run_quick("skill_era5.py", tmp_path, "--seeds", "2")
    assert out["quick"] is True and out["origins"] == 26
    # a seed ensemble of the library: each seed scored, the mean forecast no worse than the
    # seeds on average (RMSE is convex)
    ens = out["stresnet-stacked-small"]
    assert [r["seed"] for r in ens["seeds"]] == [0, 1]
    assert ens["rmse_mean"] <= sum(r["rmse_mean"] for r in ens["seeds"]) / 2 + 1e-6
    keys = {"rmse_mean", "rmse_lead1", "rmse_lead6", "rmse_lead12"}
    for method in ("persistence", "diurnal_persistence", "stresnet-stacked-small"):
        assert keys <= set(out[method]), method
        assert all(math.isfinite(out[method][k]) and out[method][k] > 0 for k in keys)
    assert out["stresnet-stacked-small"]["train_seconds"] > 0
    pers, diurnal = out["persistence"], out["diurnal_persistence"]
    assert pers["rmse_mean"] == pytest.approx(2.71, abs=0.005)
    assert (pers["rmse_lead1"], pers["rmse_lead6"], pers["rmse_lead12"]) == pytest.approx(
        (0.60, 2.82, 3.83), abs=0.005
    )
    assert diurnal["rmse_mean"] == pytest.approx(1.48, abs=0.005)
    assert (diurnal["rmse_lead1"], diurnal["rmse_lead6"], diurnal["rmse_lead12"]) == pytest.approx(
        (1.47, 1.52, 1.54), abs=0.005
    )
    assert all(c["ok"] for m in out["reference_check"].values() for c in m.values())
    assert "latitude-weighted" in text
    # the shipped pretrained model, resolved by its architecture's name, keeps its card's skill
    shipped = out["era5-t2m-uk (pretrained)"]
    card = stgeo.pretrained.card("era5-t2m-uk").scores[0]
    assert shipped["rmse_mean"] == pytest.approx(card["RMSE"], abs=0.001)
    assert shipped["rmse_mean"] <= 1.18 and shipped["rmse_lead12"] < diurnal["rmse_lead12"]

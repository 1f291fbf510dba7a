"""Smoke test of ``benchmarks/zoo_synthetic.py --quick``: every learned model of the zoo trains
through ``stgeo.train`` on the synthetic storms and is scored beside persistence and optical-flow
extrapolation recomputed in the same run (the contract: a table, then one JSON line)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

LEARNED = ("convlstm", "simvp", "tau", "swin", "earthfarseer", "predformer", "stresnet")


def test_zoo_synthetic_quick():
    pytest.importorskip("pysteps")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "zoo_synthetic.py"), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    assert out["quick"] is True
    assert out["settings"]["models"] == list(LEARNED)
    for method in ("persistence", "extrapolation", *LEARNED):
        row = out[method]
        assert math.isfinite(row["mse"]) and row["mse"] > 0, method
        for key in ("csi1", "csi1_30min", "csi1_60min"):
            assert 0 <= row[key] <= 1, (method, key)
    # optical flow on advected cells is far better than persistence (recomputed in the run)
    assert out["extrapolation"]["mse"] < 0.5 * out["persistence"]["mse"]
    for name in LEARNED:
        row = out[name]
        assert row["train_seconds"] > 0 and row["params"] > 0, name
        assert row["beats_persistence"] == (row["mse"] < out["persistence"]["mse"])
        assert row["beats_extrapolation"] == (row["mse"] < out["extrapolation"]["mse"])
    text = "\n".join(lines[:-1])
    assert "smoke test" in text and all(name in text for name in LEARNED)


def test_zoo_synthetic_rejects_unknown_models():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "zoo_synthetic.py"), "--models", "simvpp"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown model(s) ['simvpp']" in proc.stderr

"""The nowcast case of ``benchmarks/inference.py``: EarthFarseer small and the pysteps
baselines timed on the same frames (here on a small grid, as a contract check)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_inference():
    spec = importlib.util.spec_from_file_location(
        "bench_inference", ROOT / "benchmarks" / "inference.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_nowcast_case_times_every_method(capsys):
    pytest.importorskip("pysteps")
    bench = load_inference()
    r = bench.nowcast_case(size=64, repeats=1, baseline_repeats=1)
    assert (r["size"], r["in_steps"], r["out_steps"]) == (64, 4, 12)
    assert 0 < r["wet_fraction"] < 1
    for key in ("earthfarseer_bf16", "earthfarseer_fp32", "extrapolation", "sprog"):
        assert math.isfinite(r[f"{key}_s"]) and r[f"{key}_s"] > 0, key
        assert r[f"{key}_cpu_s"] > 0, key
    bench.print_nowcast(r)
    text = capsys.readouterr().out
    assert "64x64 frame, 4 -> 12 steps" in text and "S-PROG" in text

"""The recipe command line: `stgeo recipe` and the recipes/*.py scripts share one runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo._registry import RECIPES
from stgeo.cli import main
from stgeo.datasets import register_recipe, run_events
from stgeo.datasets.command import recipe_main
from stgeo.errors import UnknownNameError

REPO = Path(__file__).resolve().parents[2]


def _series(source, *, scale=1.0):
    vals = np.loadtxt(Path(source) / "v.txt", dtype="f4") * scale
    t = pd.date_range("2020-01-01", periods=len(vals), freq="h")
    return xr.Dataset({"v": ("time", vals)}, coords={"time": t})


@pytest.fixture
def events_root(tmp_path):
    register_recipe(
        "test-events", _series, options={"scale": float}, events={"a": "ev/a", "b": "ev/b"}
    )
    root = tmp_path / "raw"
    for name, text in (("a", "1 2 3"), ("b", "4 5")):
        (root / "ev" / name).mkdir(parents=True)
        (root / "ev" / name / "v.txt").write_text(text)
    yield root
    RECIPES.remove("test-events")


def test_all_events_on_the_cli(events_root, tmp_path, capsys):
    out = tmp_path / "stores"
    run = ["recipe", "test-events", "--all-events", str(events_root), "--dest-dir", str(out)]
    assert main([*run, "--option", "scale=10"]) == 0
    printed = capsys.readouterr().out
    assert "2 events in" in printed and "MiB" in printed
    assert stgeo.open_dataset(out / "a.zarr").v.values.tolist() == [10, 20, 30]
    assert stgeo.open_dataset(out / "b.zarr").v.values.tolist() == [40, 50]
    assert main([*run, "--event", "b", "--option", "scale=2"]) == 1  # other options
    assert "overwrite=true" in capsys.readouterr().err
    assert main([*run, "--event", "b", "--option", "scale=2", "--option", "overwrite=true"]) == 0
    assert "1 events in" in capsys.readouterr().out
    assert stgeo.open_dataset(out / "b.zarr").v.values.tolist() == [8, 10]
    assert main([*run, "--event", "c"]) == 1
    assert "unknown test-events event 'c'; known: a, b" in capsys.readouterr().err
    inside = ["recipe", "test-events", "--all-events", str(events_root), "--dest-dir"]
    assert main([*inside, str(events_root / "stores")]) == 1  # inside the raw data
    assert "inside the input" in capsys.readouterr().err
    assert not (events_root / "stores").exists()


def test_recipe_argument_errors(events_root, tmp_path, capsys):
    assert main(["recipe", "test-events", "--all-events", str(events_root)]) == 1
    assert "--dest-dir" in capsys.readouterr().err
    assert main(["recipe", "test-events", "--dest-dir", str(tmp_path)]) == 1
    assert "go with --all-events" in capsys.readouterr().err
    assert main(["recipe", "synthetic"]) == 1
    assert "--dest STORE" in capsys.readouterr().err
    assert main(["recipe"]) == 1
    assert "stgeo recipe --list" in capsys.readouterr().err
    d = str(tmp_path / "s.zarr")
    assert main(["recipe", "synthetic", "--dest", d, "--option", "n_time=4"]) == 1
    assert "Did you mean 'n_times'" in capsys.readouterr().err
    assert main(["recipe", "synthetic", "--dest", d, "--option", "n_times"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(UnknownNameError, match="no named events"):
        run_events("synthetic", tmp_path, tmp_path)


def test_list_shows_options_and_events(capsys):
    assert main(["recipe", "--list"]) == 0
    out = capsys.readouterr().out
    assert "start (date)" in out and "max_events (int)" in out
    assert "events (--all-events): fmi-20160928" in out


def test_script_is_the_same_command(events_root, tmp_path, capsys):
    out = tmp_path / "stores"
    argv = ["--all-events", str(events_root), "--dest-dir", str(out), "--event", "a"]
    assert recipe_main("test-events", argv) == 0
    assert "1 events in" in capsys.readouterr().out
    assert recipe_main("test-events", ["--dest", str(out / "x.zarr")]) == 2
    assert "needs a source" in capsys.readouterr().err


def test_recipe_script_runs(tmp_path):
    dest = tmp_path / "s.zarr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "recipes" / "synthetic.py"), "--dest", str(dest)]
    cmd += ["--option", "n_times=3", "--option", "shape=8,8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {dest}" in proc.stdout
    assert stgeo.open_dataset(dest).rain_rate.shape == (3, 8, 8)
    help_ = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "radar.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "--all-events DATA_ROOT" in help_.stdout
    assert "python recipes/radar.py --all-events" in help_.stdout


def test_an_up_to_date_store_says_nothing_was_written(events_root, tmp_path, capsys):
    dest = str(tmp_path / "a.zarr")
    run = ["recipe", "test-events", "--source", str(events_root / "ev" / "a"), "--dest", dest]
    assert main(run) == 0
    assert capsys.readouterr().out == f"wrote {dest}\n"
    assert main(run) == 0
    assert capsys.readouterr().out == (
        f"{dest} is up to date (same sources and options); nothing written\n"
    )
    assert main([*run, "--option", "overwrite=true"]) == 0  # rebuilt: said so
    assert capsys.readouterr().out == f"wrote {dest}\n"

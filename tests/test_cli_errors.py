"""The CLI never shows a raw traceback: one line ``stgeo CMD: error: ...``, exit 1; unexpected
errors say so and ask for a report; ``--debug`` shows the traceback."""

import subprocess
import sys

import pytest

import stgeo
from stgeo.cli import _SUBCOMMANDS, main


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
    obs = stgeo.to_zarr(ds, root / "s.zarr")
    fc = stgeo.forecast(ds, "persistence", lead_steps=2, progress=False, output=root / "fc.zarr")
    assert fc.sizes["lead_time"] == 2
    return root, str(obs), str(root / "fc.zarr")


def _one_line_error(capsys, command):
    err = capsys.readouterr().err
    assert err.startswith(f"stgeo {command}: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_score_forecast_against_itself(stores, capsys):
    _, _, fc = stores
    assert main(["score", fc, fc]) == 1
    assert "is a forecast store" in _one_line_error(capsys, "score")


def test_score_observations_as_forecast(stores, capsys):
    _, obs, _ = stores
    assert main(["score", obs, obs]) == 1
    assert "is not a forecast store" in _one_line_error(capsys, "score")


def test_score_out_into_a_missing_folder_or_onto_a_folder(stores, capsys, tmp_path):
    _, obs, fc = stores
    out = tmp_path / "missing" / "scores.nc"
    run = ["score", fc, obs, "--metrics", "mse", "--out", str(out)]
    assert main(run) == 0  # missing folders are made, like mkdir -p
    assert out.is_file()
    capsys.readouterr()
    assert main(["score", fc, obs, "--out", str(tmp_path)]) == 1
    assert "is a folder" in _one_line_error(capsys, "score")


@pytest.mark.parametrize("command", ["forecast", "train"])
def test_out_is_the_current_folder(stores, capsys, monkeypatch, command):
    root, obs, _ = stores
    monkeypatch.chdir(root)
    before = sorted(p.name for p in root.iterdir())
    args = [command, obs, "--out", "."] + (
        ["--model", "persistence"] if command == "forecast" else []
    )
    assert main(args) == 1
    assert "is the current folder" in _one_line_error(capsys, command)
    assert sorted(p.name for p in root.iterdir()) == before


def test_folder_that_is_not_a_store_is_one_line(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("user data")
    assert main(["forecast", str(tmp_path), "--model", "persistence", "--out",
                 str(tmp_path / "fc.zarr")]) == 1  # fmt: skip
    _one_line_error(capsys, "forecast")
    assert (tmp_path / "notes.txt").read_text() == "user data"


def test_unexpected_error_asks_for_a_report(capsys, monkeypatch):
    def boom(a):
        raise ZeroDivisionError("division by zero\nsecond line")

    help_, add, _ = _SUBCOMMANDS["catalog"]
    monkeypatch.setitem(_SUBCOMMANDS, "catalog", (help_, add, boom))
    assert main(["catalog", "list"]) == 1
    err = _one_line_error(capsys, "catalog")
    assert "unexpected ZeroDivisionError: division by zero second line" in err
    assert "please report" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "catalog", "list"])


def test_os_errors_name_the_file(capsys, monkeypatch, tmp_path):
    def denied(a):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    help_, add, _ = _SUBCOMMANDS["catalog"]
    monkeypatch.setitem(_SUBCOMMANDS, "catalog", (help_, add, denied))
    assert main(["catalog", "list"]) == 1
    err = _one_line_error(capsys, "catalog")
    assert f"Permission denied: {tmp_path / 'x'}" in err and "please report" not in err


def test_usage_errors_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "stgeo.cli", "forecast", "--lead-steps", "x"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_score_unknown_variable_lists_the_variables(stores, capsys):
    _, obs, fc = stores
    assert main(["score", fc, obs, "--variable", "rain"]) == 1
    err = _one_line_error(capsys, "score")
    assert "has no variable 'rain'; it has: rain_rate" in err

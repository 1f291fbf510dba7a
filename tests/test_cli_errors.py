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
    err = capsys.readouterr().err
    assert err.startswith("stgeo catalog: error: unexpected ZeroDivisionError: division by zero\n")
    assert "second line" in err and "please report" in err
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


def test_multi_line_errors_keep_their_line_breaks(capsys, monkeypatch):
    def fail(a):
        raise stgeo.errors.DataValidationError("nothing fits. Models:\n  - a  \n  - b\n")

    help_, add, _ = _SUBCOMMANDS["catalog"]
    monkeypatch.setitem(_SUBCOMMANDS, "catalog", (help_, add, fail))
    assert main(["catalog", "list"]) == 1
    assert capsys.readouterr().err == "stgeo catalog: error: nothing fits. Models:\n  - a\n  - b\n"


def test_forecast_with_an_untrained_architecture_shows_commands(stores, capsys, tmp_path):
    _, obs, _ = stores
    out = str(tmp_path / "ef.zarr")
    run = ["forecast", obs, "--model", "earthfarseer", "--lead-steps", "2", "--out", out]
    assert main(run) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("stgeo forecast: error: ") and "earthfarseer" in lines[0]
    assert any(line.startswith("  - storms-convlstm") for line in lines)  # one per line
    train = f"  stgeo train {obs} --model earthfarseer --variable rain_rate --in-steps 4"
    assert any(line.startswith(train) and line.endswith("--out model/") for line in lines)
    assert "--model storms-convlstm" in lines[-1]
    assert "stgeo.train(" not in err  # the Python advice is replaced by commands


def test_on_real_data_the_suggested_model_was_trained_on_real_data(stores, capsys, tmp_path):
    _, obs, _ = stores
    ds = stgeo.open_dataset(obs).load()
    ds.attrs.pop("source", None)  # no longer marked as stgeo's generated data
    real = str(stgeo.to_zarr(ds, tmp_path / "real.zarr"))
    out = str(tmp_path / "ef.zarr")
    assert main(["forecast", real, "--model", "earthfarseer", "--out", out]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert "--model radar-nowcaster" in last  # not the model learnt from synthetic storms


def test_forecast_help_lists_what_model_accepts(capsys):
    with pytest.raises(SystemExit):
        main(["forecast", "--help"])
    out = capsys.readouterr().out
    assert "--model accepts:" in out
    for name in ("radar-nowcaster", "lagrangian", "persistence", "sprog", "saved model folder"):
        assert name in out


@pytest.mark.parametrize(
    ("command", "option", "flag"),
    [
        ("train", "seed=1", "--seed"),
        ("train", "batch-size=2", "--batch-size"),
        ("forecast", "lead_steps=3", "--lead-steps"),
        ("forecast", "output=x.zarr", "--out"),
    ],
)
def test_options_that_have_a_flag_are_refused(stores, capsys, tmp_path, command, option, flag):
    _, obs, _ = stores
    args = [command, obs, "--out", str(tmp_path / "out"), "--option", option]
    args += ["--model", "persistence"] if command == "forecast" else []
    assert main(args) == 1
    assert f"use {flag} instead" in _one_line_error(capsys, command)
    assert not (tmp_path / "out").exists()


def test_train_list_options_are_numbers(stores, capsys, tmp_path, monkeypatch):
    _, obs, _ = stores
    args = ["train", obs, "--out", str(tmp_path / "m"), "--option"]
    assert main([*args, "thresholds=a,b"]) == 1
    err = _one_line_error(capsys, "train")
    assert "--option thresholds='a,b': 'a' is not a number" in err
    seen = {}

    class Saved:
        def save(self, path, overwrite=False):
            return path

    def fake_train(ds, **kw):
        seen.update(kw)
        return Saved()

    monkeypatch.setattr("stgeo.training.train", fake_train)
    assert main([*args, "thresholds=0.1,1"]) == 0
    assert seen["thresholds"] == [0.1, 1.0]
    assert main([*args, "thresholds=5"]) == 0
    assert seen["thresholds"] == [5.0]


@pytest.mark.parametrize("flag", ["--thresholds", "--windows"])
@pytest.mark.parametrize("value", ["1,,2", "1,x"])
def test_number_lists_refuse_empty_or_bad_items(stores, capsys, flag, value):
    _, obs, fc = stores
    assert main(["score", fc, obs, "--metrics", "csi,fss", flag, value]) == 1
    err = _one_line_error(capsys, "score")
    assert f"{flag}='{value}'" in err
    assert ("empty item" if ",," in value else "'x' is not") in err


def test_plot_arguments_checked_before_drawing(stores, capsys, tmp_path, monkeypatch):
    _, _, fc = stores

    def never(*args, **kwargs):
        raise AssertionError("drawn before the arguments were checked")

    monkeypatch.setattr("stgeo.plot.plot_forecast", never)
    png = str(tmp_path / "p.png")
    cases = [
        (["--out", png, "--lead-time", "99"], "--lead-time 99: a bare number"),
        (["--out", png, "--lead-time", "soon"], "--lead-time soon: not a duration"),
        (["--out", png, "--init-time", "notadate"], "--init-time notadate: not a date"),
        (["--out", str(tmp_path / "p.txt")], "'.txt'"),
        (["--out", str(tmp_path / "p")], "without a suffix"),
        (["--out", png, "--animate"], ".gif"),
    ]
    for args, message in cases:
        assert main(["plot", fc, *args]) == 1
        assert message in _one_line_error(capsys, "plot")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--metrics", "csi"], "need --thresholds"),
        (["--metrics", "fss", "--thresholds", "1"], "needs --windows"),
        (["--metrics", "ssim"], "pass --data-range"),
    ],
)
def test_score_hints_name_the_flags(stores, capsys, extra, flag):
    _, obs, fc = stores
    assert main(["score", fc, obs, *extra]) == 1
    err = _one_line_error(capsys, "score")
    assert flag in err and "=[...]" not in err and "data_range" not in err

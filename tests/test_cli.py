"""The stgeo command line: help with examples, exit codes, one-line errors."""

import subprocess
import sys

import pytest

from stgeo.cli import main

COMMANDS = ["quickstart", "catalog", "recipe", "train", "forecast", "score"]


def test_console_script_lists_subcommands():
    out = subprocess.run(["stgeo", "--help"], capture_output=True, text=True, check=True).stdout
    for c in COMMANDS:
        assert c in out


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_subcommand_help_shows_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"stgeo {cmd}" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_catalog_list_and_show(capsys):
    assert main(["catalog", "list"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-storms" in out and "synthetic-crowd" in out
    assert main(["catalog", "list", "*crowd"]) == 0
    assert capsys.readouterr().out.startswith("synthetic-crowd")
    assert main(["catalog", "show", "synthetic-storms"]) == 0
    out = capsys.readouterr().out
    assert "time_step: 5min" in out and "store path:" in out


def test_errors_are_one_line_with_exit_code_1(capsys):
    assert main(["catalog", "show", "synthetic-storm"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stgeo catalog: error:") and "Did you mean 'synthetic-storms'" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "stgeo.cli", "--debug", "catalog", "show", "nope"],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr

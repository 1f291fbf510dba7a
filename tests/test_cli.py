"""The stgeo command line: help with examples, exit codes, one-line errors."""

import subprocess
import sys

import pytest

import stgeo
from stgeo.cli import main

COMMANDS = ["quickstart", "catalog", "recipe", "train", "forecast", "score", "plot", "pretrained"]


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
    assert "examples:" in out and f"stgeo {cmd}" in out


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
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_recipe_train_forecast_score_chain(tmp_path, capsys):
    store = tmp_path / "storms.zarr"
    assert (
        main(
            [
                "recipe",
                "synthetic",
                "--dest",
                str(store),
                "--option",
                "kind=storms",
                "--option",
                "n_times=60",
                "--option",
                "shape=32,32",
                "--option",
                "seed=1",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                str(store),
                "--model",
                "convlstm",
                "--variable",
                "rain_rate",
                "--in-steps",
                "3",
                "--out-steps",
                "2",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--out",
                str(model),
                "--option",
                "hidden=4",
                "--option",
                "num_layers=1",
                "--option",
                "patch=2",
                "--option",
                "progress=false",
            ]
        )
        == 0
    )
    assert (model / "model.safetensors").exists() and (model / "spec.json").exists()
    fc = tmp_path / "fc.zarr"
    assert (
        main(
            [
                "forecast",
                str(store),
                "--model",
                str(model),
                "--lead-steps",
                "4",
                "--start",
                "2021-07-04T15:00",
                "--out",
                str(fc),
            ]
        )
        == 0
    )
    assert "lead_time" in capsys.readouterr().out
    import stgeo

    out = stgeo.open_dataset(fc)
    assert out.rain_rate.sizes["lead_time"] == 4
    assert str(out.init_time.values[0])[:16] == "2021-07-04T15:00"
    pfc = tmp_path / "persistence.zarr"
    assert (
        main(
            [
                "forecast",
                str(store),
                "--model",
                "persistence",
                "--lead-steps",
                "2",
                "--out",
                str(pfc),
            ]
        )
        == 0
    )
    nc = tmp_path / "scores.nc"
    assert (
        main(
            [
                "score",
                str(fc),
                str(store),
                "--metrics",
                "csi,mse",
                "--thresholds",
                "0.1,1",
                "--out",
                str(nc),
            ]
        )
        == 0
    )
    import xarray as xr

    with xr.open_dataset(nc) as s:
        assert set(s.data_vars) == {"csi", "mse"}
        assert s.csi.sizes == {"threshold": 2, "lead_time": 4}


def test_chain_errors_are_clear(tmp_path, capsys):
    assert (
        main(
            [
                "forecast",
                str(tmp_path / "missing.zarr"),
                "--model",
                "persistence",
                "--out",
                str(tmp_path / "x.zarr"),
            ]
        )
        == 1
    )
    assert "no store at" in capsys.readouterr().err
    assert main(["recipe", "radr", "--dest", str(tmp_path / "r.zarr")]) == 1
    assert "Did you mean 'radar'" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "a.zarr"), "b", "--thresholds", "1,x"]) == 1


def test_quickstart_main_job(tmp_path, capsys):
    """The README's main job, as users run it: trains, forecasts, scores and reports."""
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed
    for name in (
        "report.md",
        "scores.nc",
        "summary.json",
        "storms.zarr",
        "model",
        "forecasts/persistence.zarr",
        "forecasts/convlstm.zarr",
        "csi_vs_lead.png",
        "performance_diagram.png",
        "map_convlstm.png",  # the map shows the learned model, whatever scores best
    ):
        assert (out / name).exists(), name
    import json

    rows = {r["model"]: r for r in json.loads((out / "summary.json").read_text())["table"]}
    assert set(rows) == {"persistence", "extrapolation", "convlstm"}
    learned, pers = rows["convlstm"], rows["persistence"]
    assert learned["MSE (mean over leads)"] < pers["MSE (mean over leads)"]
    assert learned["CSI 1 mm/h +30 min"] > pers["CSI 1 mm/h +30 min"]
    report = (out / "report.md").read_text()
    assert "| convlstm" in report
    assert "convlstm beats extrapolation in CSI at:" in report
    assert report.count("- frequency bias at ") == 3


def test_catalog_build_then_open_by_name(tmp_path, capsys):
    import stgeo

    with stgeo.set_options(cache_dir=tmp_path):
        with pytest.raises(FileNotFoundError, match="stgeo catalog build synthetic-crowd"):
            stgeo.open_dataset("synthetic-crowd")
        assert main(["catalog", "build", "synthetic-crowd", "--option", "n_days=2"]) == 0
        assert "built synthetic-crowd" in capsys.readouterr().out
        ds = stgeo.open_dataset("synthetic-crowd")
        assert ds.flow.sizes["time"] == 96
        assert main(["verify", "synthetic-crowd"]) == 0  # a catalog name, like everywhere
        assert "every chunk present and intact" in capsys.readouterr().out
        # the entry's recipe types the options: a typo or a bad value is named
        assert main(["catalog", "build", "synthetic-crowd", "--option", "n_day=2"]) == 1
        assert "Did you mean 'n_days'" in capsys.readouterr().err
        assert main(["catalog", "build", "synthetic-crowd", "--option", "n_days=two"]) == 1
        assert "n_days='two': expected int" in capsys.readouterr().err


def test_forecast_and_score_fillna_for_no_data(tmp_path):
    import numpy as np

    import stgeo

    ds = stgeo.testing.storm_cells(n_times=20, shape=(16, 16), seed=2)
    ds["rain_rate"][:, :3, :] = np.nan  # outside radar coverage
    store = stgeo.to_zarr(ds, tmp_path / "r.zarr")
    fc = tmp_path / "fc.zarr"
    run = ["forecast", store, "--model", "persistence", "--lead-steps", "2", "--out", str(fc)]
    assert main(run) == 0  # no data carried through: NaN where an input frame has none
    assert bool(stgeo.open_dataset(fc).rain_rate.isel(y=slice(0, 3)).isnull().all())
    filled = tmp_path / "filled.zarr"
    assert main([*run[:-1], str(filled), "--fillna", "0"]) == 0
    assert float(stgeo.open_dataset(filled).rain_rate.isel(y=slice(0, 3)).max()) == 0.0
    scoring = ["score", str(filled), store, "--metrics", "csi", "--thresholds", "1"]
    assert main([*scoring, "--fillna", "0"]) == 0


def test_plot_maps_and_animation(tmp_path, capsys):
    import stgeo

    ds = stgeo.testing.storm_cells(n_times=16, shape=(24, 24), seed=3)
    store = stgeo.to_zarr(ds, tmp_path / "s.zarr")
    fc = tmp_path / "fc.zarr"
    run = ["forecast", store, "--model", "persistence", "--lead-steps", "3", "--out", str(fc)]
    assert main(run) == 0
    png = tmp_path / "map.png"
    leads = ["--lead-time", "5min", "--lead-time", "15min"]
    plot = ["plot", str(fc), "--obs", store, "--init-time", "2021-07-04T12:20", *leads]
    assert main([*plot, "--out", str(png)]) == 0
    from PIL import Image

    with Image.open(png) as im:
        import numpy as np

        assert im.size[0] > 400 and len(np.unique(np.asarray(im.convert("L")))) > 20
    gif = tmp_path / "fc.gif"
    assert main(["plot", str(fc), "--animate", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 3
    capsys.readouterr()
    assert main(["plot", str(fc), "--out", str(png)]) == 1  # an existing file is kept
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["plot", str(fc), "--out", str(tmp_path)]) == 1  # a folder, never
    assert main(["plot", str(fc), "--out", str(png), "--overwrite"]) == 0
    assert main(["plot", str(fc), "--variable", "rain", "--out", str(png), "--overwrite"]) == 1


def test_forecast_on_a_local_dask_cluster(tmp_path, capsys):
    import xarray as xr

    import stgeo

    pytest.importorskip("distributed")
    ds = stgeo.testing.storm_cells(n_times=20, shape=(16, 16), seed=5)
    store = stgeo.to_zarr(ds, tmp_path / "s.zarr")
    run = ["forecast", store, "--model", "persistence", "--lead-steps", "2"]
    assert main([*run, "--out", str(tmp_path / "a.zarr")]) == 0
    assert main([*run, "--out", str(tmp_path / "b.zarr"), "--dask", "local"]) == 0
    assert "forecasting on the Dask cluster at tcp://" in capsys.readouterr().out
    a, b = stgeo.open_dataset(tmp_path / "a.zarr"), stgeo.open_dataset(tmp_path / "b.zarr")
    xr.testing.assert_identical(a.load(), b.load())


def test_train_seeds_saves_one_ensemble(tmp_path, capsys):
    store = tmp_path / "storms.zarr"
    stgeo.to_zarr(stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=0), store)
    out = tmp_path / "ens"
    args = ["train", str(store), "--model", "convlstm", "--in-steps", "2", "--out-steps", "2"]
    args += ["--epochs", "1", "--batch-size", "4", "--seeds", "0", "1", "--out", str(out)]
    args += ["--option", "hidden=4", "--option", "precision=fp32"]
    assert main(args) == 0
    assert "saved trained model" in capsys.readouterr().out
    tm = stgeo.load_model(out)
    assert tm.spec.members == 2
    assert [m.spec.extra["training"]["seed"] for m in tm.members] == [0, 1]


def test_train_init_fine_tunes_a_saved_model(tmp_path, capsys):
    store = tmp_path / "storms.zarr"
    stgeo.to_zarr(stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=0), store)
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["train", str(store), "--model", "convlstm", "--in-steps", "2", "--out-steps", "3"]
    args += ["--epochs", "1", "--batch-size", "4", "--option", "hidden=4", "--out", str(first)]
    assert main(args) == 0
    # no --model / --in-steps / --out-steps: the initial model's
    args = ["train", str(store), "--init", str(first), "--epochs", "1", "--batch-size", "4"]
    assert main([*args, "--out", str(second)]) == 0
    assert "saved trained model" in capsys.readouterr().out
    tm = stgeo.load_model(second)
    assert (tm.spec.model, tm.in_steps, tm.out_steps) == ("convlstm", 2, 3)
    assert str(first) in tm.spec.extra["training"]["init"]["source"]
    assert main([*args, "--out-steps", "4", "--out", str(tmp_path / "third")]) == 1
    assert "out_steps=4 (it has 3)" in capsys.readouterr().err
    # the fine-tuned model never replaces the one it starts from, even with --overwrite
    before = (first / "model.safetensors").read_bytes()
    assert main([*args, "--out", str(first), "--overwrite"]) == 1
    assert "could damage or mix into that input" in capsys.readouterr().err
    assert (first / "model.safetensors").read_bytes() == before


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
    obs = stgeo.to_zarr(ds, root / "s.zarr")
    stgeo.forecast(ds, "persistence", lead_steps=3, progress=False, output=root / "fc.zarr")
    return root, ds, str(obs), str(root / "fc.zarr")


def test_score_prints_a_table_per_lead_time(scored, capsys):
    import xarray as xr

    root, _, obs, fc = scored
    nc = root / "table.nc"
    args = ["score", fc, obs, "--metrics", "csi,mse,fss,ssim", "--thresholds", "0.1,1"]
    args += ["--windows", "3,5", "--data-range", "50", "--out", str(nc)]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if "csi@0.1" in line)
    for col in ("csi@1", "mse", "fss@0.1 w3", "fss@1 w5", "ssim"):
        assert col in out
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("+")}
    assert set(rows) == {"+5min", "+10min", "+15min"}
    with xr.open_dataset(nc) as s:
        want = s.csi.sel(threshold=1.0).values
        assert s.attrs["forecast_store"] == fc and s.attrs["model"] == "persistence"
        assert "crs" not in s.coords  # a leftover of the forecast's grid
    got = [float(rows[k][header.split().index("csi@1") + 1]) for k in ("+5min", "+10min")]
    assert got == pytest.approx(want[:2], abs=5e-5)  # 4 decimals, every lead time
    assert "..." not in out and "(@T: events value >= T mm h-1; wN: FSS window" in out


def test_score_defaults_to_mse_or_the_catalogs_thresholds(scored, capsys, tmp_path):
    _, ds, obs, fc = scored
    assert main(["score", fc, obs]) == 0  # no thresholds known: mse only, said so
    out = capsys.readouterr().out
    assert "scoring mse (no --metrics given)" in out and "csi@" not in out
    with stgeo.set_options(cache_dir=tmp_path):  # the catalog entry's store, by path
        store = stgeo.data.get_entry("synthetic-storms").store_path()
        stgeo.to_zarr(ds, store)
        assert main(["score", fc, str(store)]) == 0
    out = capsys.readouterr().out
    assert "using the thresholds of the catalog entry 'synthetic-storms': 0.1,1,5" in out
    assert "csi@0.1" in out and "csi@5" in out and "mse" in out

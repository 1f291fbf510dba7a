"""Never destroy what stgeo did not write: the output-path guard of every writer.

Each "Data loss" reproducer of issue 15 is a test here: the path keeps its contents and the
call fails with a stgeo error (exit status 1 on the command line).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xarray as xr

import stgeo
from stgeo.cli import main
from stgeo.data import StoreBuilder
from stgeo.data.safety import artefact_kind, check_output, foreign_entries, replace_path
from stgeo.errors import OutputExistsError, OutputOverlapsInputError
from stgeo.models import ModelSpec, TrainedModel
from stgeo.models.artifact import atomic_directory


@pytest.fixture(scope="module")
def storms():
    return stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)


def _user_folder(path):
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    (path / "sub").mkdir()
    (path / "sub" / "data.csv").write_text("1,2,3")
    return path


def _snapshot(path):
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(path.rglob("*"))
    }


def _model(tmp_path, name="model"):
    spec = ModelSpec("persistence", 1, 2, ["rain_rate"], ["rain_rate"], "5min", (16, 16))
    return TrainedModel(spec.build(), spec).save(tmp_path / name)


# -- to_zarr ----------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [False, True])
def test_to_zarr_never_replaces_a_user_folder(storms, tmp_path, overwrite):
    res = _user_folder(tmp_path / "res")
    before = _snapshot(res)
    with pytest.raises(OutputExistsError, match="a folder that stgeo did not write"):
        stgeo.to_zarr(storms, res, overwrite=overwrite)
    assert _snapshot(res) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no staging left over


@pytest.mark.parametrize("overwrite", [False, True])
def test_to_zarr_never_replaces_a_regular_file(storms, tmp_path, overwrite):
    f = tmp_path / "res.zarr"
    f.write_text("not a store")
    with pytest.raises(OutputExistsError, match="a file that stgeo did not write"):
        stgeo.to_zarr(storms, f, overwrite=overwrite)
    assert f.read_text() == "not a store"


def test_to_zarr_replaces_its_own_store_only_when_asked(storms, tmp_path):
    p = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        stgeo.to_zarr(storms.isel(time=slice(0, 4)), p)  # the default is now False
    assert stgeo.open_dataset(p).sizes["time"] == 12
    stgeo.to_zarr(storms.isel(time=slice(0, 4)), p, overwrite=True)
    assert stgeo.open_dataset(p).sizes["time"] == 4
    assert sorted(x.name for x in tmp_path.iterdir()) == ["s.zarr"]


def test_overwrite_keeps_a_store_holding_user_files(storms, tmp_path):
    p = Path(stgeo.to_zarr(storms, tmp_path / "s.zarr"))
    (p / "my_notes.txt").write_text("mine")
    (p / "rain_rate" / "README").write_text("mine too")
    with pytest.raises(OutputExistsError, match=r"my_notes.txt, rain_rate/README") as err:
        stgeo.to_zarr(storms, p, overwrite=True)
    assert "delete them" in str(err.value)
    assert (p / "my_notes.txt").read_text() == "mine" and (p / "rain_rate" / "README").exists()
    assert foreign_entries(p) == ["my_notes.txt", "rain_rate/README"]
    (p / "my_notes.txt").unlink()
    (p / "rain_rate" / "README").unlink()
    assert stgeo.to_zarr(storms, p, overwrite=True) == str(p)


def test_stores_in_either_zarr_format_hold_nothing_foreign(storms, tmp_path):
    v2 = tmp_path / "v2.zarr"
    storms.assign_attrs(stgeo_complete=True).chunk({"time": 4}).to_zarr(v2, zarr_format=2)
    v3 = stgeo.to_zarr(storms, tmp_path / "v3.zarr", chunks={"time": 4})
    assert foreign_entries(v2) == [] and foreign_entries(v3) == []


def test_to_zarr_into_an_empty_folder(storms, tmp_path):
    (tmp_path / "e.zarr").mkdir()
    stgeo.to_zarr(storms, tmp_path / "e.zarr")
    assert artefact_kind(tmp_path / "e.zarr") == "store"


def test_to_zarr_refuses_its_own_input_and_a_model(storms, tmp_path):
    p = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    with pytest.raises(OutputOverlapsInputError, match="is the input"):
        stgeo.to_zarr(stgeo.open_dataset(p), p, overwrite=True)
    m = _model(tmp_path)
    with pytest.raises(OutputExistsError, match="model folder written by stgeo"):
        stgeo.to_zarr(storms, m, overwrite=True)
    stgeo.models.load_model(m)


def test_a_foreign_staging_folder_is_not_deleted(storms, tmp_path):
    staging = _user_folder(tmp_path / ".s.zarr.partial")
    with pytest.raises(OutputExistsError, match="in the way"):
        stgeo.to_zarr(storms, tmp_path / "s.zarr")
    assert (staging / "thesis.tex").read_text() == "years of work"


def test_store_builder_checks_before_any_work(storms, tmp_path):
    res = _user_folder(tmp_path / "res")
    with pytest.raises(OutputExistsError):
        StoreBuilder(res, storms.chunk({"time": 4}), overwrite=True)
    assert not (tmp_path / ".res.partial").exists()


# -- models and checkpoints -------------------------------------------------------------------
def test_model_save_refuses_user_folders_files_and_stores(storms, tmp_path):
    spec = ModelSpec("persistence", 1, 2, ["rain_rate"], ["rain_rate"], "5min", (16, 16))
    tm = TrainedModel(spec.build(), spec)
    res = _user_folder(tmp_path / "res")
    with pytest.raises(OutputExistsError, match="did not write"):
        tm.save(res, overwrite=True)
    assert (res / "thesis.tex").exists()
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputExistsError, match="a file"):
        tm.save(f, overwrite=True)
    store = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    with pytest.raises(OutputExistsError, match="Zarr store written by stgeo"):
        tm.save(store, overwrite=True)
    stgeo.open_dataset(store)
    p = tm.save(tmp_path / "m")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        tm.save(p)
    tm.save(p, overwrite=True)


def test_atomic_directory_replaces_only_the_same_kind(tmp_path):
    """The helper behind model saving and training checkpoints."""

    def checkpoint(tmp):
        (tmp / "state.json").write_text('{"format": "stgeo-checkpoint"}')

    dest = tmp_path / "epoch-00001"
    atomic_directory(dest, checkpoint)
    atomic_directory(dest, checkpoint)  # a re-saved checkpoint replaces the old one
    assert artefact_kind(dest) == "checkpoint"
    user = _user_folder(tmp_path / "epoch-00002")
    with pytest.raises(OutputExistsError):
        atomic_directory(user, checkpoint)
    assert (user / "thesis.tex").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-00001", "epoch-00002"]


def test_forecast_output_cannot_be_the_model_or_the_data(storms, tmp_path):
    model = _model(tmp_path)
    before = _snapshot(Path(model))
    with pytest.raises(OutputOverlapsInputError, match="is the input"):
        stgeo.forecast(storms, model, output=model, overwrite=True, progress=False)
    with pytest.raises(OutputOverlapsInputError, match="lies inside the input"):
        stgeo.forecast(storms, model, output=os.path.join(model, "fc.zarr"), progress=False)
    assert _snapshot(Path(model)) == before
    stgeo.models.load_model(model)
    data = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    for src in (data, stgeo.open_dataset(data)):
        with pytest.raises(OutputOverlapsInputError):
            stgeo.forecast(src, "persistence", output=data, overwrite=True, progress=False)
    with pytest.raises(OutputOverlapsInputError, match="contains the input"):
        stgeo.forecast(data, "persistence", output=tmp_path, overwrite=True, progress=False)
    xr.testing.assert_identical(stgeo.open_dataset(data).load(), storms.load())


def test_forecast_output_needs_overwrite_to_replace(storms, tmp_path):
    out = tmp_path / "fc.zarr"
    stgeo.forecast(storms, "persistence", output=out, progress=False)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        stgeo.forecast(storms, "persistence", output=out, progress=False)
    stgeo.forecast(storms, "persistence", output=out, overwrite=True, progress=False)
    with pytest.raises(OutputExistsError):
        stgeo.forecast(storms, "persistence", output=out, lazy=True, chunk_size=8)
    res = _user_folder(tmp_path / "res")
    with pytest.raises(OutputExistsError, match="did not write"):
        stgeo.forecast(storms, "persistence", output=res, lazy=True, overwrite=True)
    assert (res / "thesis.tex").exists()


# -- the command line -------------------------------------------------------------------------
def test_cli_train_out_onto_its_data_keeps_the_data(storms, tmp_path, capsys):
    data = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    before = _snapshot(Path(data))
    assert main(["train", data, "--model", "convlstm", "--epochs", "1", "--out", data]) == 1
    assert "is the input" in capsys.readouterr().err
    assert _snapshot(Path(data)) == before
    res = _user_folder(tmp_path / "res")
    assert main(["train", data, "--out", str(res), "--overwrite"]) == 1
    assert "did not write" in capsys.readouterr().err
    assert (res / "thesis.tex").exists()


def test_cli_forecast_out_onto_its_data_or_model(storms, tmp_path, capsys):
    data = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    model = _model(tmp_path)
    before = _snapshot(Path(data)), _snapshot(Path(model))
    run = ["forecast", data, "--lead-steps", "2"]
    assert main([*run, "--model", "persistence", "--out", data, "--overwrite"]) == 1
    assert "is the input" in capsys.readouterr().err
    assert main([*run, "--model", model, "--out", model, "--overwrite"]) == 1
    assert "is the input" in capsys.readouterr().err
    assert (_snapshot(Path(data)), _snapshot(Path(model))) == before
    out = str(tmp_path / "fc.zarr")
    assert main([*run, "--model", "persistence", "--out", out]) == 0
    assert main([*run, "--model", "persistence", "--out", out]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main([*run, "--model", "persistence", "--out", out, "--overwrite"]) == 0
    assert main([*run, "--model", "persistence", "--out", "."]) == 1  # cwd: not ours


def test_cli_recipe_dest_user_folder_is_kept(tmp_path, capsys):
    res = _user_folder(tmp_path / "res")
    before = _snapshot(res)
    opts = ["--option", "n_times=4", "--option", "shape=8,8", "--option", "overwrite=true"]
    assert main(["recipe", "synthetic", "--dest", str(res), *opts]) == 1
    assert "did not write" in capsys.readouterr().err
    assert _snapshot(res) == before
    # a store the recipe wrote before is rebuilt
    dest = str(tmp_path / "syn.zarr")
    assert main(["recipe", "synthetic", "--dest", dest, *opts]) == 0
    assert main(["recipe", "synthetic", "--dest", dest, *opts]) == 0


def test_cli_score_out(storms, tmp_path, capsys):
    data = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    fc = str(tmp_path / "fc.zarr")
    assert main(["forecast", data, "--model", "persistence", "--out", fc]) == 0
    run = ["score", fc, data, "--metrics", "mse"]
    out = tmp_path / "new" / "dir" / "scores.nc"  # missing folders are created
    assert main([*run, "--out", str(out)]) == 0
    assert artefact_kind(out) == "scores"
    assert main([*run, "--out", str(out)]) == 1
    assert main([*run, "--out", str(out), "--overwrite"]) == 0
    notes = tmp_path / "notes.nc"
    notes.write_text("mine")
    assert main([*run, "--out", str(notes), "--overwrite"]) == 1
    assert notes.read_text() == "mine"
    assert main([*run, "--out", fc, "--overwrite"]) == 1  # the forecast being scored
    assert "is the input" in capsys.readouterr().err
    assert artefact_kind(fc) == "store"


# -- the helpers ------------------------------------------------------------------------------
def test_check_output_arguments(tmp_path):
    with pytest.raises(stgeo.errors.StgeoTypeError, match="kind must be"):
        check_output(tmp_path / "x", "stuff")
    with pytest.raises(stgeo.errors.StgeoTypeError, match="non-empty"):
        check_output("", "store")
    with pytest.raises(stgeo.errors.StgeoTypeError):
        check_output(3, "store")


def test_replace_path_rechecks_just_before_the_swap(storms, tmp_path):
    new = stgeo.to_zarr(storms, tmp_path / "new.zarr")
    dest = _user_folder(tmp_path / "dest")
    with pytest.raises(OutputExistsError):
        replace_path(new, dest, "store")
    assert (dest / "thesis.tex").exists() and artefact_kind(new) == "store"


def test_checkpoint_dir_must_hold_only_training_files(storms, tmp_path):
    kw = dict(
        model="convlstm", variable="rain_rate", in_steps=2, out_steps=1, epochs=1,
        max_steps_per_epoch=1, hidden=4, num_layers=1, precision="fp32", progress=False,
        batch_size=4,
    )  # fmt: skip
    res = _user_folder(tmp_path / "res")
    with pytest.raises(OutputExistsError, match=r"did not write \(sub, thesis.tex\)"):
        stgeo.train(storms, checkpoint_dir=res, **kw)
    assert (res / "thesis.tex").read_text() == "years of work"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        stgeo.train(storms, checkpoint_dir=f, **kw)
    data = stgeo.to_zarr(storms, tmp_path / "s.zarr")
    with pytest.raises(OutputOverlapsInputError, match="lies inside the input"):
        stgeo.train(data, checkpoint_dir=Path(data) / "run", **kw)
    run = tmp_path / "run"
    stgeo.train(storms, checkpoint_dir=run, **kw)
    assert artefact_kind(run / "model") == "model"
    stgeo.train(storms, checkpoint_dir=run, resume=False, **kw)  # all ours: run again


def test_writes_go_on_unlocked_when_the_lock_folder_is_unusable(tmp_path, monkeypatch):
    """A temporary folder where the lock file cannot be made (another user's lock folder
    on a shared machine, a read-only /tmp) does not stop a write."""
    import tempfile

    blocked = tmp_path / "tmp"
    blocked.write_text("a file where the lock folder's parent should be")
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(blocked))
    ds = stgeo.testing.storm_cells(n_times=2, shape=(8, 8))
    assert stgeo.open_dataset(stgeo.to_zarr(ds, tmp_path / "s.zarr")).sizes["time"] == 2

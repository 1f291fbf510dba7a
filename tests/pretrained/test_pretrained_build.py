"""Rebuilding from a recipe: the same weights bit for bit, and the build command."""

import json

import pandas as pd
import pytest
import torch

import stgeo
from stgeo.cli import main
from stgeo.errors import DataValidationError, UnknownNameError
from stgeo.models.artifact import load_state
from stgeo.pretrained import Recipe, register_pretrained
from stgeo.pretrained.registry import PRETRAINED
from stgeo.pretrained_build import build_pretrained

TINY = {
    "data": "synthetic-storms",
    "catalog_options": {"n_times": 288, "shape": "16,16"},
    "train": {
        "model": "convlstm",
        "variable": "rain_rate",
        "in_steps": 2,
        "out_steps": 2,
        "epochs": 2,
        "batch_size": 4,
        "hidden": 4,
        "num_layers": 1,
        "patch_size": 8,
        "importance": True,
        "seed": 3,
        "max_steps_per_epoch": 4,
        "max_val_steps": 2,
    },
    "evaluate": {
        "lead_steps": 2,
        "thresholds": [1.0],
        "baselines": ["persistence"],
        "leads": ["5min", "10min"],
        "split": "val",
        "every": 6,
    },
}


@pytest.fixture
def stores(tmp_path):
    return tmp_path / "stores"


def test_build_twice_gives_identical_weights(tmp_path, stores):
    a = build_pretrained("tiny-rebuilt", recipe=TINY, out=tmp_path / "a", cache_dir=stores)
    assert a.identical is None and a.card.recipe["train"]["seed"] == 3
    assert [r["method"] for r in a.card.scores] == ["tiny-rebuilt", "persistence"]
    assert {"MSE", "CSI 1 +5min", "bias 1 +10min"} <= set(a.card.scores[0])
    assert a.card.standard_names == {"rain_rate": "rainfall_rate"}
    register_pretrained(tmp_path / "a")
    try:
        # the recorded recipe, rebuilt by name (the store is up to date: not rebuilt)
        b = build_pretrained("tiny-rebuilt", out=tmp_path / "b", cache_dir=stores)
        assert b.identical is True and b.same_data is True
        ta, _ = load_state(tmp_path / "a" / "model.safetensors")
        tb, _ = load_state(tmp_path / "b" / "model.safetensors")
        assert sorted(ta) == sorted(tb)
        for k in ta:  # bit for bit (the files differ only in the history's timings)
            assert ta[k].dtype == tb[k].dtype and torch.equal(ta[k].view(-1), tb[k].view(-1))
        assert b.card.scores == a.card.scores
        # another seed: other weights, and the build says so
        c = build_pretrained(
            "tiny-rebuilt",
            out=tmp_path / "c",
            cache_dir=stores,
            recipe={**TINY, "train": {**TINY["train"], "seed": 4}},
            evaluate=False,
        )
        assert c.identical is False and c.card.scores == []
    finally:
        PRETRAINED.remove("tiny-rebuilt")


def test_cli_build_list_show(tmp_path, stores, capsys):
    build_pretrained("tiny-cli", recipe=TINY, out=tmp_path / "a", cache_dir=stores, evaluate=False)
    register_pretrained(tmp_path / "a")
    build = ["pretrained", "build", "tiny-cli", "--out", str(tmp_path / "b")]
    build += ["--cache-dir", str(stores), "--no-evaluate"]
    try:
        assert main(["pretrained", "list"]) == 0
        out = capsys.readouterr().out
        assert "storms-convlstm (convlstm" in out and "tiny-cli (convlstm)" in out
        assert main(["pretrained", "show", "tiny-cli"]) == 0
        out = capsys.readouterr().out
        assert "recipe: stgeo.train('synthetic-storms', model='convlstm'" in out
        assert "seed=3" in out
        assert main(build) == 0
        out = capsys.readouterr().out
        assert "bit for bit identical to the registered 'tiny-cli'" in out
        assert main(build) == 1  # the folder exists now
        assert "exists" in capsys.readouterr().err
    finally:
        PRETRAINED.remove("tiny-cli")
    assert main(["pretrained", "show", "nope"]) == 1
    assert "unknown pretrained model 'nope'" in capsys.readouterr().err


def test_cli_builds_a_new_artefact_from_a_recipe_file(tmp_path, stores, capsys):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(TINY))
    index = tmp_path / "index.json"
    build = ["pretrained", "build", "tiny-new", "--recipe", str(recipe), "--out",
             str(tmp_path / "art"), "--cache-dir", str(stores), "--index", str(index),
             "--description", "a tiny test model", "--licence", "CC0", "--default"]  # fmt: skip
    assert main(build) == 0
    assert "wrote" in capsys.readouterr().out
    entry = json.loads(index.read_text())["pretrained"][0]
    assert entry["name"] == "tiny-new" and entry["default"] is True
    assert entry["description"] == "a tiny test model" and entry["licence"] == "CC0"
    assert entry["recipe"]["train"] == TINY["train"]
    assert [r["method"] for r in entry["scores"]] == ["tiny-new", "persistence"]
    # a missing, a malformed and an invalid recipe file: clear errors, nothing written
    for text, why in [(None, "no such file"), ("{", "not valid JSON"), ("{}", "'data' and")]:
        bad = tmp_path / "bad.json"
        bad.unlink(missing_ok=True)
        if text is not None:
            bad.write_text(text)
        argv = ["pretrained", "build", "tiny-bad", "--recipe", str(bad), "--out",
                str(tmp_path / "never")]  # fmt: skip
        assert main(argv) == 1
        assert why in capsys.readouterr().err
        assert not (tmp_path / "never").exists()


def test_cli_forecast_says_which_pretrained_model(tmp_path, capsys):
    store = stgeo.to_zarr(
        stgeo.testing.storm_cells(n_times=8, shape=(16, 16), seed=1), tmp_path / "s.zarr"
    )
    assert (
        main(
            [
                "forecast",
                store,
                "--model",
                "convlstm",
                "--lead-steps",
                "2",
                "--out",
                str(tmp_path / "fc.zarr"),
            ]
        )
        == 0
    )
    assert "used the pretrained model storms-convlstm" in capsys.readouterr().out


def test_regression_scores_with_options(tmp_path):
    """metrics / weights / anchor / baselines with options: the card's row equals stgeo.score
    on the same forecasts, and the initial times are those the keys say."""
    from stgeo.pretrained_build import evaluate_recipe

    with stgeo.set_options(cache_dir=str(tmp_path)):
        stgeo.datasets.build_from_catalog("synthetic-storms", n_times=288, shape="16,16")
        ds = stgeo.open_dataset("synthetic-storms")
        tm = stgeo.train(ds, model="persistence", in_steps=1, out_steps=3, progress=False)
        ev = {
            "split": "test", "lead_steps": 3, "every": 4, "anchor": "valid",
            "metrics": ["rmse", "mae"], "weights": "latitude", "leads": ["10min"],
            "baselines": [{"model": "climatology", "period": "30min", "label": "half-hourly"}],
        }  # fmt: skip
        recipe = Recipe.from_dict(
            {"data": "synthetic-storms", "train": {"model": "x"}, "evaluate": ev}
        )
        rows = {r["method"]: r for r in evaluate_recipe(tm, recipe, label="p")}
        assert sorted(rows) == ["half-hourly", "p"]
        assert sorted(rows["p"]) == ["MAE", "MAE +10min", "RMSE", "RMSE +10min", "method"]
        start, end = (
            pd.Timestamp(t) for t in stgeo.data.get_entry("synthetic-storms").splits["test"]
        )
        times = pd.DatetimeIndex(ds.time.values)
        step = times[1] - times[0]
        inits = times[(times + step >= start) & (times + step <= end)][::4]
        inits = inits[inits <= times[-1] - 3 * step]
        assert inits[0] == start - step  # anchored on the first lead's valid time
        for label, model, kw in [
            ("p", tm, {}),
            ("half-hourly", "climatology", {"period": "30min"}),
        ]:
            fc = stgeo.forecast(ds, model, init_times=inits, lead_steps=3, progress=False, **kw)
            s = stgeo.score(fc, ds.rain_rate, metrics=["rmse", "mae"], weights="latitude")
            assert rows[label]["RMSE"] == round(float(s.rmse.mean()), 4)
            assert rows[label]["MAE +10min"] == round(float(s.mae.sel(lead_time="10min")), 4)
        unweighted = stgeo.score(fc, ds.rain_rate, metrics=["rmse"])
        assert rows["half-hourly"]["RMSE"] != round(float(unweighted.rmse.mean()), 4)


def test_evaluation_starts_where_the_model_has_its_inputs(tmp_path):
    """A split that starts at the data's first time (a radar test event): the first initial
    time is the first with the model's input history (t0 = 3, 7, ... for 4 inputs)."""
    from stgeo.pretrained_build import evaluate_recipe

    with stgeo.set_options(cache_dir=str(tmp_path)):
        stgeo.datasets.build_from_catalog("synthetic-storms", n_times=288, shape="16,16")
        ds = stgeo.open_dataset("synthetic-storms")
        start = pd.Timestamp(stgeo.data.get_entry("synthetic-storms").splits["train"][0])
        assert start == pd.Timestamp(ds.time.values[0])
        tm = stgeo.train(ds, model="persistence", in_steps=4, out_steps=2, progress=False)
        ev = {"split": "train", "lead_steps": 2, "every": 40, "metrics": ["rmse"]}
        recipe = Recipe.from_dict(
            {"data": "synthetic-storms", "train": {"model": "x", "in_steps": 4}, "evaluate": ev}
        )
        rows = evaluate_recipe(tm, recipe, label="p")
        end = pd.Timestamp(stgeo.data.get_entry("synthetic-storms").splits["train"][1])
        times = pd.DatetimeIndex(ds.time.values)
        inits = times[3:][times[3:] <= end][::40]
        fc = stgeo.forecast(ds, tm, init_times=inits, lead_steps=2, progress=False)
        s = stgeo.score(fc, ds.rain_rate, metrics=["rmse"])
        assert rows[0]["RMSE"] == round(float(s.rmse.mean()), 4)


@pytest.mark.parametrize(
    "ev, match",
    [
        ({"metrics": ["csi"]}, "evaluate.metrics"),
        ({"metrics": []}, "evaluate.metrics"),
        ({"weights": "area"}, "evaluate.weights"),
        ({"anchor": "end"}, "evaluate.anchor"),
        ({"baselines": [{"period": "1D"}]}, "evaluate.baselines"),
        ({"lead_time": 3}, "keys among"),
        ({"metrics": [["mse"]]}, "evaluate.metrics"),
        ({"every": 0}, "evaluate.every"),
        ({"every": 1.5}, "evaluate.every"),
        ({"lead_steps": True}, "evaluate.lead_steps"),
        ({"thresholds": "10"}, "evaluate.thresholds"),
        ({"leads": "30min"}, "evaluate.leads"),
        ({"leads": [30]}, "evaluate.leads"),
        ({"leads": ["soon"]}, "evaluate.leads"),
        ({"leads": ["1h", "60min"]}, "evaluate.leads"),
        ({"baselines": "persistence"}, r"evaluate.baselines \(a list"),
        ({"baselines": None}, r"evaluate.baselines \(a list"),
        ({"baselines": [{"model": "persistence", "label": None}]}, "label"),
        ({"baselines": [{"model": "persistence", "lead_steps": 3}]}, "the evaluation sets"),
        (
            {"baselines": ["persistence", {"model": "extrapolation", "label": "persistence"}]},
            "repeat",
        ),
    ],
)
def test_bad_evaluate_settings(ev, match):
    with pytest.raises(DataValidationError, match=match):
        Recipe.from_dict({"data": "x", "train": {"model": "simvp"}, "evaluate": ev})


def test_evaluation_mistakes_are_caught_before_training(tmp_path, stores):
    """A baseline labelled as the model or a split without initial times fails before the
    training run, not after it; leads asked for that the forecasts lack are an error."""
    from stgeo.pretrained_build import evaluate_recipe

    ev = {**TINY["evaluate"], "baselines": [{"model": "persistence", "label": "tiny-x"}]}
    with pytest.raises(DataValidationError, match="the model's own label"):
        build_pretrained("tiny-x", recipe={**TINY, "evaluate": ev}, out=tmp_path / "a",
                         cache_dir=stores)  # fmt: skip
    assert not (tmp_path / "a").exists()
    ev = {**TINY["evaluate"], "lead_steps": 200}
    with pytest.raises(DataValidationError, match="has no initial time .* lower lead_steps"):
        build_pretrained("tiny-y", recipe={**TINY, "evaluate": ev}, out=tmp_path / "b",
                         cache_dir=stores)  # fmt: skip
    with stgeo.set_options(cache_dir=str(stores)):
        tm = stgeo.train("synthetic-storms", model="persistence", in_steps=1, out_steps=2,
                         progress=False)  # fmt: skip
        ev = {**TINY["evaluate"], "leads": ["5min", "1h"]}
        recipe = Recipe.from_dict({**TINY, "evaluate": ev})
        with pytest.raises(DataValidationError, match=r"asks for leads \['1h'\]"):
            evaluate_recipe(tm, recipe, label="p")


def test_outputs_are_checked_before_any_work(tmp_path, monkeypatch):
    """A foreign --out folder, an existing model without overwrite or an index file that is
    not an index: refused at once, not after building the stores and training."""
    import stgeo.pretrained_build as pb

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the outputs were checked")

    monkeypatch.setattr(pb, "_build_stores", no_work)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    with pytest.raises(stgeo.errors.OutputExistsError, match="did not write"):
        build_pretrained("tiny-z", recipe=TINY, out=mine)
    model = tmp_path / "model"
    spec = stgeo.models.ModelSpec("persistence", 1, 1, ["rain_rate"], ["rain_rate"], "5min")
    stgeo.TrainedModel(spec.build(), spec).save(model)
    with pytest.raises(stgeo.errors.OutputExistsError, match="overwrite"):
        build_pretrained("tiny-z", recipe=TINY, out=model)
    (model / "README.md").write_text("notes")
    with pytest.raises(stgeo.errors.OutputExistsError, match="README.md"):
        build_pretrained("tiny-z", recipe=TINY, out=model, overwrite=True)
    (tmp_path / "index.json").write_text("[]")
    with pytest.raises(DataValidationError, match="pretrained"):
        build_pretrained("tiny-z", recipe=TINY, out=tmp_path / "new", index=tmp_path / "index.json")


def test_bad_recipes():
    with pytest.raises(DataValidationError, match="train without"):
        Recipe.from_dict({"data": "x", "train": {"model": "simvp", "device": "cuda"}})
    with pytest.raises(DataValidationError, match="'data' and 'train'"):
        Recipe.from_dict({"train": {"model": "simvp"}})
    with pytest.raises(DataValidationError, match="time_budget"):
        Recipe.from_dict({"data": "x", "train": {"model": "simvp"}, "time_budget": -1})
    with pytest.raises(UnknownNameError, match="give a recipe"):
        build_pretrained("never-registered", out="unused")
    assert json.loads(json.dumps(Recipe.from_dict(TINY).to_dict())) == {**TINY, "time_budget": None}


def test_validation_table_scores_the_validation_split_of_the_events_that_have_one(tmp_path, capsys):
    """``validate``: every initial time whose first lead is in an event's ``val`` split; an
    event whose validation part is too short for a forecast is left out; the card keeps the
    table beside the test scores and ``pretrained show`` prints it."""
    from stgeo.pretrained_build import evaluate_recipe

    def storms(seed, n):
        return stgeo.testing.storm_cells(n_times=n, shape=(16, 16), seed=seed, resolution_km=8)

    long, short = storms(0, 40), storms(1, 30)
    for name, ds in (("long", long), ("short", short)):
        stgeo.to_zarr(ds, tmp_path / f"{name}.zarr")
    t_long, t_short = pd.DatetimeIndex(long.time.values), pd.DatetimeIndex(short.time.values)
    cat = tmp_path / "cat.yaml"
    cat.write_text(
        f"""
datasets:
  - name: vt-long
    store: {tmp_path / "long.zarr"}
    variables: [rain_rate]
    time_step: 5min
    splits: {{train: ["{t_long[0]}", "{t_long[29]}"], val: ["{t_long[30]}", "{t_long[39]}"]}}
  - name: vt-short
    store: {tmp_path / "short.zarr"}
    variables: [rain_rate]
    time_step: 5min
    splits: {{train: ["{t_short[0]}", "{t_short[27]}"], val: ["{t_short[28]}", "{t_short[29]}"]}}
collections:
  - name: vt-both
    members: [vt-long, vt-short]
"""
    )
    recipe = {
        "data": "vt-both",
        "train": {"model": "persistence", "in_steps": 2, "out_steps": 3},
        "evaluate": {"data": "vt-long", "split": "train", "lead_steps": 3, "every": 5,
                     "thresholds": [1.0]},
        "validate": {"lead_steps": 3, "thresholds": [1.0], "baselines": ["extrapolation"],
                     "leads": ["5min", "15min"]},
    }  # fmt: skip
    with stgeo.set_options(catalog_paths=[str(cat)]):
        res = build_pretrained("vt-model", recipe=recipe, out=tmp_path / "art")
        val = res.card.validation
        assert [r["method"] for r in val] == ["vt-model", "extrapolation"]
        assert [r["method"] for r in res.card.scores] == ["vt-model"]
        assert val != res.card.scores
        # the same numbers as scoring vt-long alone at t0 = 29 .. 36 (first lead in val,
        # all 3 leads in the data); vt-short's 2-frame validation part holds no forecast
        inits = t_long[29:37]
        ds = stgeo.open_dataset("vt-long")
        fc = stgeo.forecast(ds, "persistence", init_times=inits, lead_steps=3, progress=False)
        s = stgeo.score(fc, ds.rain_rate, metrics=["mse", "csi"], thresholds=[1.0])
        assert val[0]["MSE"] == round(float(s.mse.mean()), 4)
        lead = pd.Timedelta("15min")
        assert val[0]["CSI 1 +15min"] == round(float(s.csi.sel(lead_time=lead).item()), 4)
        # the table is in card.json, read back, and shown
        register_pretrained(tmp_path / "art")
        try:
            assert main(["pretrained", "show", "vt-model"]) == 0
            out = capsys.readouterr().out
            assert "validation (training data):" in out and "| extrapolation |" in out
        finally:
            PRETRAINED.remove("vt-model")
        tm = stgeo.load_model(tmp_path / "art")
        rec = Recipe.from_dict(recipe)
        assert evaluate_recipe(tm, rec, label="vt-model", section="validate") == val
        # no event with a validation forecast: an error before training, naming the events
        bad = {**recipe, "validate": {**recipe["validate"], "lead_steps": 20}}
        with pytest.raises(DataValidationError, match="validate has no initial time.*vt-short"):
            build_pretrained("vt-bad", recipe=bad, out=tmp_path / "bad")
        assert not (tmp_path / "bad").exists()
        with pytest.raises(DataValidationError, match="section must be one of"):
            evaluate_recipe(tm, rec, label="vt-model", section="test")
    with pytest.raises(DataValidationError, match=r"validate.metrics"):
        Recipe.from_dict({**recipe, "validate": {"metrics": ["csi"]}})
    assert "validate" not in Recipe.from_dict(TINY).to_dict()

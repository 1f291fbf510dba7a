"""The pretrained registry: shipped artefacts, cards, loading, package data, the index."""

import fnmatch
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import stgeo
from stgeo.errors import DataValidationError, ModelFileError, UnknownNameError
from stgeo.models import load_model
from stgeo.pretrained import PretrainedCard, Recipe, card, load_index, sha256_of
from stgeo.pretrained.registry import PRETRAINED

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "stgeo" / "pretrained"


def test_shipped_artefacts_are_listed_with_complete_cards():
    names = stgeo.pretrained.list()
    assert "storms-convlstm" in names and stgeo.list_pretrained() == names
    for c in stgeo.pretrained.cards():
        assert c.variables and c.units and c.licence and c.provenance and c.description
        assert c.data_fingerprint and c.scores and c.environment
        r = Recipe.from_dict(c.recipe)
        assert r.train["model"] in stgeo.list_models() and {"seed", "seeds"} & set(r.train)
        # the card says what the model needs: its input frames, as its spec has them
        spec = stgeo.pretrained.get(c.name).spec
        offsets = None if spec.input_offsets is None else list(spec.input_offsets)
        assert c.input_offsets == offsets and c.in_steps == spec.in_steps
    summary = card("bikenyc-stresnet").summary()
    assert "5 frames in (at steps -167, -23, -2, -1, 0), 1 out" in summary
    assert "4 frames in, 12 out" in card("storms-convlstm").summary()


def test_get_restores_float32_from_half_precision_storage():
    c = card("storms-convlstm")
    assert c.dtype == "float16"
    path = stgeo.pretrained.weights_path("storms-convlstm")
    with safe_open(str(path), framework="pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16}
    tm = stgeo.load_pretrained("storms-convlstm")
    assert {p.dtype for p in tm.module.parameters()} == {torch.float32}
    assert tm.spec.model == c.architecture and tm.in_steps == c.in_steps
    assert tm.spec.extra["data_fingerprint"] == c.data_fingerprint


def test_half_precision_nan_is_still_refused(tiny_simvp, tmp_path):
    from stgeo.models.artifact import load_state, save_state

    c = stgeo.pretrained.package(tiny_simvp, name="tiny-nan", out=tmp_path / "m")
    assert c.dtype == "float16"
    tensors, meta = load_state(tmp_path / "m" / "model.safetensors")
    k = next(k for k, t in tensors.items() if t.dtype == torch.float16)
    tensors[k] = tensors[k].clone()
    tensors[k].view(-1)[0] = float("nan")
    save_state(tensors, tmp_path / "m" / "model.safetensors", meta)
    spec = json.loads((tmp_path / "m" / "spec.json").read_text())  # as saved: a valid checksum
    spec["extra"]["weights_file_sha256"] = sha256_of(tmp_path / "m" / "model.safetensors")
    (tmp_path / "m" / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(ModelFileError, match="non-finite"):
        load_model(tmp_path / "m")


def test_float16_overflow_refused_bfloat16_accepted(tiny_simvp, tmp_path):
    big = stgeo.TrainedModel(tiny_simvp.module, tiny_simvp.spec)
    p = next(big.module.parameters())
    old = p.data.clone()
    try:
        with torch.no_grad():
            p.view(-1)[0] = 1e6
        with pytest.raises(DataValidationError, match="bfloat16"):
            stgeo.pretrained.package(big, name="tiny-big", out=tmp_path / "a")
        c = stgeo.pretrained.package(big, name="tiny-big", out=tmp_path / "b", dtype="bfloat16")
        assert c.dtype == "bfloat16"
        assert float(
            next(load_model(tmp_path / "b").module.parameters()).detach().view(-1)[0]
        ) == pytest.approx(1e6, rel=1e-2)
    finally:
        p.data.copy_(old)


def test_damaged_weights_are_refused(tiny_simvp, register, tmp_path):
    register(tiny_simvp, "tiny-damaged")
    w = tmp_path / "tiny-damaged" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged or was replaced"):
        stgeo.pretrained.get("tiny-damaged")


def test_package_writes_folder_card_and_index(tiny_simvp, tmp_path):
    index = tmp_path / "idx" / "index.json"
    c = stgeo.pretrained.package(
        tiny_simvp,
        name="tiny-x",
        out=tmp_path / "art" / "tiny-x",
        index=index,
        scores=[{"method": "tiny-x", "MSE": 1.0}],
        licence="CC0",
        recipe={"data": "synthetic-storms", "train": {"model": "simvp", "seed": 0}},
    )
    assert c.files["path"] == "../art/tiny-x"
    on_disk = json.loads((tmp_path / "art" / "tiny-x" / "card.json").read_text())
    assert on_disk["files"]["path"] == "." and on_disk["scores"] == [
        {"method": "tiny-x", "MSE": 1.0}
    ]
    assert [x.name for x in load_index(index)] == ["tiny-x"]
    # again, replacing the entry (and the folder, with overwrite)
    stgeo.pretrained.package(
        tiny_simvp, name="tiny-x", out=tmp_path / "art" / "tiny-x", index=index, overwrite=True
    )
    assert [x.name for x in load_index(index)] == ["tiny-x"]
    with pytest.raises(stgeo.errors.OutputExistsError):
        stgeo.pretrained.package(tiny_simvp, name="tiny-x", out=tmp_path / "art" / "tiny-x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(stgeo.errors.OutputExistsError):
        stgeo.pretrained.package(tiny_simvp, name="tiny-x", out=tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"name": "Bad Name"}, "name="),
        ({"in_steps": 0}, "in_steps"),
        ({"files": {"path": "x"}}, "sha256"),
        ({"files": {"path": "x", "url": "y", "sha256": 64 * "0"}}, "either 'path' or 'url'"),
        ({"variables": []}, "variables"),
        ({"colour": "red"}, "unknown fields"),
        ({"input_offsets": [-2, -1, 0]}, "input_offsets"),  # 3 offsets for 4 inputs
        ({"input_offsets": [-3, -2, -1, 1]}, "input_offsets"),  # an input after t0
        ({"input_offsets": "-3..0"}, "input_offsets"),
    ],
)
def test_malformed_cards_are_refused(change, match):
    good = card("storms-convlstm").to_dict()
    with pytest.raises(DataValidationError, match=match):
        PretrainedCard.from_dict({**good, **change})


def test_bad_index_files(tmp_path):
    p = tmp_path / "index.json"
    p.write_text("{not json")
    with pytest.raises(DataValidationError, match="not valid JSON"):
        load_index(p)
    p.write_text("[]")
    with pytest.raises(DataValidationError, match='"pretrained"'):
        load_index(p)
    with pytest.raises(UnknownNameError, match="Did you mean 'storms-convlstm'"):
        card("storms-convlstn")


def test_package_data_config_covers_every_shipped_file():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["stgeo"]
    shipped = [
        p
        for p in PKG.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    ]
    assert shipped
    for p in shipped:
        rel = p.relative_to(ROOT / "stgeo").as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
    for c in stgeo.pretrained.cards():
        if not c.remote:
            assert stgeo.pretrained.weights_path(c.name).is_file()


def test_shipped_spec_files_record_the_weights_checksum():
    """Each shipped spec.json is the spec inside its weights file plus the weights' sha256
    (the one the card records): what `stgeo pretrained build` writes, so a damaged file is
    caught by load_model(folder) too."""
    for c in stgeo.pretrained.cards():
        if c.remote:
            continue
        folder = stgeo.pretrained.weights_path(c.name).parent
        text = (folder / "spec.json").read_text()
        doc = json.loads(text)
        assert doc["extra"].pop("weights_file_sha256") == c.files["sha256"]
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            assert json.loads(f.metadata()["spec"]) == doc
        load_model(folder)


def test_package_refuses_to_overwrite_the_users_files(tiny_simvp, tmp_path):
    stgeo.pretrained.package(tiny_simvp, name="tiny-a", out=tmp_path / "a")
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(stgeo.errors.OutputExistsError, match="notes.txt"):
        stgeo.pretrained.package(tiny_simvp, name="tiny-a", out=tmp_path / "a", overwrite=True)
    assert (tmp_path / "a" / "notes.txt").read_text() == "mine"


def test_shipped_artefacts_stay_small():
    size = sum(p.stat().st_size for p in (PKG / "artefacts").rglob("*") if p.is_file())
    assert size < 10 * 2**20


def test_registered_names_are_not_architectures():
    assert not set(stgeo.pretrained.list()) & set(stgeo.list_models())
    assert "storms-convlstm" in PRETRAINED


@pytest.mark.slow
def test_built_wheel_contains_the_shipped_artefacts(tmp_path):
    """A (non-editable) wheel built from a copy of the source tree ships the artefacts."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "stgeo", src / "stgeo", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(tmp_path / "dist"),
        str(src),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("stgeo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "stgeo/pretrained/index.json" in names
    for c in stgeo.pretrained.cards():
        if not c.remote:
            folder = f"stgeo/pretrained/{c.files['path']}"
            for f in ("model.safetensors", "spec.json", "card.json"):
                assert f"{folder}/{f}" in names


def test_package_records_where_the_inputs_are(tmp_path):
    """A model trained on non-consecutive inputs: its card lists them, and says so."""
    ds = stgeo.testing.storm_cells(n_times=30, shape=(8, 8), seed=0)
    m = stgeo.train(ds, model="simvp", input_offsets=[-3, -1, 0], out_steps=1, epochs=1,
                    progress=False, precision="fp32", hid_S=4, hid_T=8, N_S=2, N_T=1)  # fmt: skip
    c = stgeo.pretrained.package(m, name="tiny-offsets", out=tmp_path / "a")
    assert c.input_offsets == [-3, -1, 0] and c.in_steps == 3
    assert "3 frames in (at steps -3, -1, 0), 1 out" in c.summary()
    on_disk = json.loads((tmp_path / "a" / "card.json").read_text())
    assert on_disk["input_offsets"] == [-3, -1, 0]

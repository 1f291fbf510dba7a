"""Training checkpoints: the latest.json pointer is trusted only when stgeo wrote it, and a
refused resume says what differs."""

from __future__ import annotations

import json

import pytest
import torch

from stgeo.errors import DataValidationError, OutputExistsError
from stgeo.training.checkpoint import check_latest, read_checkpoint, restore, save_checkpoint


def _save(ckdir, config, epoch=2):
    """A real checkpoint of a one-weight module."""
    module = torch.nn.Linear(1, 1)
    opt = torch.optim.AdamW(module.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    save_checkpoint(ckdir, epoch, module, opt, sched, None, {"epoch": epoch}, config)
    return module, opt, sched


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"mine": 1}', "entries stgeo does not write: 'mine'"),
        ("notes", "not JSON"),
        ("[1, 2]", "JSON list"),
        ('{"epoch": 2}', "no 'checkpoint' entry"),
        ('{"checkpoint": "../data", "epoch": 2}', "not an epoch-NNNNN folder"),
        ('{"checkpoint": "epoch-00002", "epoch": 3}', "does not match"),
        ('{"format": "mine", "checkpoint": "epoch-00002", "epoch": 2}', "format is 'mine'"),
    ],
)
def test_a_latest_json_of_another_content_is_not_stgeos(tmp_path, content, why):
    (tmp_path / "latest.json").write_text(content)
    for look in (check_latest, read_checkpoint):
        with pytest.raises(OutputExistsError, match=f"latest.json that stgeo did not write.*{why}"):
            look(tmp_path)
    assert (tmp_path / "latest.json").read_text() == content


def test_stgeos_pointer_is_recognised_in_both_forms(tmp_path):
    assert check_latest(tmp_path) is None and read_checkpoint(tmp_path) is None
    _save(tmp_path, {"lr": 1.0})
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc == {"format": "stgeo-checkpoint", "checkpoint": "epoch-00002", "epoch": 2}
    assert check_latest(tmp_path) == "epoch-00002"
    (tmp_path / "latest.json").write_text('{"checkpoint": "epoch-00002", "epoch": 2}')  # older
    assert read_checkpoint(tmp_path)[0]["epoch"] == 2


def test_an_unreadable_checkpoint_says_what_is_wrong(tmp_path):
    _save(tmp_path, {"lr": 1.0})
    state = tmp_path / "epoch-00002" / "state.json"
    state.write_text("{broken")
    with pytest.raises(
        DataValidationError, match="points at epoch-00002, whose state.json is not valid JSON"
    ):
        read_checkpoint(tmp_path)
    state.unlink()
    with pytest.raises(DataValidationError, match="whose state.json is missing; delete the folder"):
        read_checkpoint(tmp_path)


def test_a_refused_resume_names_other_data_or_settings(tmp_path):
    norm = {"method": "standard", "channels": ["rain"], "mean": [1.0], "std": [2.0]}
    config = {"lr": 1.0, "normalization": norm, "data_fingerprint": "abc"}
    module, opt, sched = _save(tmp_path, config)

    def resume(**changes):
        with pytest.raises(DataValidationError) as err:
            restore(tmp_path, {**config, **changes}, module, opt, sched, "cpu")
        return str(err.value)

    # the same metadata, other values: only the fitted statistics tell them apart
    msg = resume(normalization={**norm, "mean": [3.0]})
    assert "for different data (the same variables, grid and times, other values" in msg
    assert "normalization" not in msg.replace("normalisation", "")
    assert "for different data (their fingerprint differs" in resume(
        data_fingerprint="xyz", normalization={**norm, "mean": [3.0]}
    )
    assert resume(lr=2.0).endswith(
        "with different settings (['lr']); pass resume=False to start over or use another "
        "checkpoint_dir"
    )
    msg = resume(lr=2.0, normalization={**norm, "method": "log1p"})
    assert "with different settings (['lr', 'normalization'])" in msg and "data" not in msg

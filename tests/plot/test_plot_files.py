"""Figure paths: what every ``path=`` of stgeo.plot refuses before drawing, and what it keeps."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from stgeo.errors import DataValidationError, OutputExistsError, StgeoTypeError
from stgeo.plot import check_figure_path
from stgeo.plot.files import figure_formats, save_figure


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_new_file_is_accepted_and_folders_are_created(tmp_path):
    assert check_figure_path(tmp_path / "new" / "a.PNG") == tmp_path / "new" / "a.PNG"
    fig = plt.figure()
    out = save_figure(fig, tmp_path / "new" / "a.pdf", dpi=50)
    assert out.read_bytes().startswith(b"%PDF")


def test_existing_file_is_kept_unless_overwrite(tmp_path):
    mine = tmp_path / "precious.png"
    mine.write_text("my figure")
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True to replace it"):
        check_figure_path(mine)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        save_figure(plt.figure(), mine)
    assert mine.read_text() == "my figure"
    save_figure(plt.figure(), mine, overwrite=True)
    assert mine.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("given", ["folder", "slash"])
def test_a_folder_is_never_a_figure_path(tmp_path, given):
    (tmp_path / "plots").mkdir()
    path = tmp_path / "plots" if given == "folder" else f"{tmp_path / 'plots2'}/"
    err = OutputExistsError if given == "folder" else DataValidationError
    with pytest.raises(err, match="give a file name, e.g. .*figure.png"):
        check_figure_path(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]  # no plots2.png beside it


def test_format_and_dpi_are_checked(tmp_path):
    with pytest.raises(
        DataValidationError, match=r"'\.xyz'.*supported: .*\.png.*\(e\.g\. x\.png\)"
    ):
        check_figure_path(tmp_path / "x.xyz")
    with pytest.raises(DataValidationError, match="without a suffix"):
        check_figure_path(tmp_path / "figure")
    with pytest.raises(DataValidationError, match="supported: .gif, .mp4"):
        check_figure_path(tmp_path / "a.png", formats=("gif", "mp4"))
    for dpi in (0, -5, float("nan")):
        with pytest.raises(DataValidationError, match="dpi must be a positive number"):
            check_figure_path(tmp_path / "a.png", dpi=dpi)
    for dpi in ("100", True):
        with pytest.raises(StgeoTypeError, match="dpi"):
            check_figure_path(tmp_path / "a.png", dpi=dpi)
    check_figure_path(tmp_path / "a.png", dpi=np.float32(72.5))
    with pytest.raises(StgeoTypeError, match="overwrite must be True or False"):
        check_figure_path(tmp_path / "a.png", overwrite="yes")
    with pytest.raises(StgeoTypeError, match="non-empty"):
        check_figure_path("")
    (tmp_path / "notes.txt").write_text("notes")
    with pytest.raises(DataValidationError, match="notes.txt is a file, not a folder"):
        check_figure_path(tmp_path / "notes.txt" / "a.png")
    assert {"png", "pdf", "svg"} <= set(figure_formats())


def test_a_failed_save_leaves_no_file(tmp_path):
    class Broken:
        def savefig(self, fh, **kw):
            fh.write(b"half")
            raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError):
        save_figure(Broken(), tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()

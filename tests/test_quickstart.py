"""The quickstart's output folder: a user's files are never replaced, its own are.

(The whole job runs in tests/test_cli.py::test_quickstart_main_job; these tests stop it
right after the folder check, so they take milliseconds.)
"""

from __future__ import annotations

import json

import pytest

import stgeo
import stgeo.quickstart as qs
from stgeo.errors import OutputExistsError, StgeoTypeError


class Stop(Exception):
    """Raised in place of the first piece of work, after the folder check."""


@pytest.fixture
def stop_after_check(monkeypatch):
    def no_work(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(qs, "storm_cells", no_work)


def test_a_users_folder_is_refused_before_any_work(tmp_path, stop_after_check):
    out = tmp_path / "qs"
    (out / "model").mkdir(parents=True)
    (out / "report.md").write_text("MY REPORT")
    (out / "summary.json").write_text('{"mine": 1}')
    with pytest.raises(OutputExistsError, match=r"did not write.*report.md.*new or empty folder"):
        qs.quickstart(out, verbose=False)
    assert (out / "report.md").read_text() == "MY REPORT"
    assert sorted(p.name for p in out.iterdir()) == ["model", "report.md", "summary.json"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        qs.quickstart(tmp_path / "file", verbose=False)
    with pytest.raises(StgeoTypeError, match="folder path"):
        qs.quickstart(None, verbose=False)


def test_marker_is_written_first_and_its_folder_is_reused(tmp_path, stop_after_check):
    out = tmp_path / "new" / "qs"
    with pytest.raises(Stop):  # a new folder: created, marked, then the work starts
        qs.quickstart(out, verbose=False)
    assert json.loads((out / qs.MARKER).read_text()) == {"format": qs.MARKER_FORMAT}
    (out / "report.md").write_text("# stgeo quickstart report (an earlier run)")
    with pytest.raises(Stop):  # a re-run into its own folder passes the check
        qs.quickstart(out, verbose=False)
    (out / qs.MARKER).write_text('{"format": "something else"}')  # a name is not enough
    with pytest.raises(OutputExistsError):
        qs.quickstart(out, verbose=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Stop):
        qs.quickstart(empty, verbose=False)


def test_output_of_a_quickstart_from_before_the_marker_is_reused(tmp_path, stop_after_check):
    out = tmp_path / "old"
    store = stgeo.to_zarr(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)), out / "storms.zarr")
    summary = {"store": str(store), "forecasts": {}, "table": [], "report": "report.md"}
    (out / "summary.json").write_text(json.dumps(summary))
    (out / "report.md").write_text("# stgeo quickstart report")
    with pytest.raises(Stop):
        qs.quickstart(out, verbose=False)
    assert (out / qs.MARKER).is_file()
    # a summary.json alone (no stgeo store beside it) is not taken for the quickstart's
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(OutputExistsError, match="summary.json"):
        qs.quickstart(other, verbose=False)

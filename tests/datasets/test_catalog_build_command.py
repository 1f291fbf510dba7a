"""``stgeo catalog build``: many entries in one call, skip/force, preflight errors, failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dataset_helpers import need_shared, shared_data

import stgeo
from stgeo.cli import main
from stgeo.datasets import build_catalog, run_recipe, select_entries
from stgeo.datasets.radar import PYSTEPS_EVENTS
from stgeo.errors import DataValidationError, UnknownNameError

RMI = "radar-rmi-20210704"


# -- selection ------------------------------------------------------------------------------
def test_select_by_tag_wildcard_and_name():
    radar = select_entries(tags=["radar"])
    assert len(radar) == 10  # the 8 pysteps events and the 2 large-area sources
    assert {"radar-opera-20241126", "radar-mrms-20190610", RMI} <= set(radar)
    assert select_entries(tags=["radar", "train-source"]) == [
        "radar-mrms-20190610",
        "radar-opera-20241126",
    ]
    assert select_entries(["radar-mch-*"]) == [
        "radar-mch-20150515",
        "radar-mch-20160711",
        "radar-mch-20170131",
    ]
    # names first, then tags, without duplicates
    assert select_entries([RMI], tags=["train-source"])[0] == RMI
    assert len(select_entries([RMI, RMI])) == 1


def test_select_errors():
    with pytest.raises(DataValidationError, match="--tag radar"):
        select_entries()
    with pytest.raises(UnknownNameError, match="Did you mean"):
        select_entries(["radar-rmi-2021070"])
    with pytest.raises(UnknownNameError, match="no catalog entry matches"):
        select_entries(["nothing-*"])
    with pytest.raises(UnknownNameError, match="tags in use: .*radar"):
        select_entries(tags=["no-such-tag"])


def test_collection_names_expand_to_members(monkeypatch):
    """The hook onto stgeo.data's collections (is_collection / get_collection)."""
    import types

    import stgeo.data

    coll = types.SimpleNamespace(members=["radar-mch-20150515", "radar-knmi-20100826"])
    monkeypatch.setattr(stgeo.data, "is_collection", lambda n: n == "my-events", raising=False)
    monkeypatch.setattr(stgeo.data, "get_collection", lambda n: coll, raising=False)
    assert select_entries(["my-events", "radar-mch-20150515"]) == coll.members


# -- building real events -------------------------------------------------------------------
@pytest.mark.realdata
def test_build_skip_force_on_the_cli(tmp_path, capsys):
    need_shared(PYSTEPS_EVENTS["rmi-20210704"])
    cache = tmp_path / "stores"
    argv = ["catalog", "build", RMI, "--data-root", str(shared_data()), "--cache-dir", str(cache)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    store = cache / "radar" / "rmi-20210704.zarr"
    assert f"built {RMI} -> {store}" in out
    assert f"[1/1] {RMI}: building" in err and "1 entries in" in err and "1 built" in err
    with stgeo.set_options(cache_dir=cache):
        assert stgeo.open_dataset(RMI).rain_rate.sizes["time"] == 39
    mtime = (store / "zarr.json").stat().st_mtime_ns
    assert main(argv) == 0  # same inputs and options: skipped
    assert f"up to date {RMI}" in capsys.readouterr().out
    assert (store / "zarr.json").stat().st_mtime_ns == mtime
    assert main([*argv, "--force", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert f"built {RMI}" in out and err == ""
    assert (store / "zarr.json").stat().st_mtime_ns != mtime


@pytest.mark.realdata
def test_missing_raw_data_builds_nothing(tmp_path, capsys):
    cache = tmp_path / "stores"
    empty = tmp_path / "no-data"
    empty.mkdir()
    argv = ["catalog", "build", "--tag", "radar", "--data-root", str(empty)]
    assert main([*argv, "--cache-dir", str(cache)]) == 1
    err = capsys.readouterr().err
    assert "nothing was built: 10 of 10 entries cannot be built" in err
    assert "radar-opera-20241126: raw data not found: radar/radar/OPERA/20241126/CIRRUS" in err
    assert "--data-root" in err
    assert not cache.exists() or not any(cache.rglob("*.zarr"))


@pytest.mark.realdata
def test_never_overwrites_foreign_data(tmp_path, capsys):
    need_shared(PYSTEPS_EVENTS["rmi-20210704"])
    cache = tmp_path / "stores"
    store = cache / "radar" / "rmi-20210704.zarr"
    store.mkdir(parents=True)
    (store / "mine.txt").write_text("not stgeo's")
    argv = ["catalog", "build", RMI, "--data-root", str(shared_data()), "--cache-dir", str(cache)]
    for extra in ([], ["--force"]):
        assert main([*argv, *extra]) == 1
        assert "stgeo did not write it" in capsys.readouterr().err
    assert (store / "mine.txt").read_text() == "not stgeo's"
    # the recipe protocol refuses as well (stgeo recipe ... --dest)
    src = shared_data() / PYSTEPS_EVENTS["rmi-20210704"]
    with pytest.raises(DataValidationError, match="never overwrites"):
        run_recipe("radar", src, store, overwrite=True)
    assert (store / "mine.txt").exists()


def _user_catalog(tmp_path: Path, good: Path, bad: Path) -> Path:
    cat = tmp_path / "mine.yaml"
    entry = """  - name: {name}
    description: copy of an MCH event
    store: mine/{name}.zarr
    variables: [rain_rate]
    time_step: 5min
    recipe: {{name: radar, source: {src}}}
    tags: [mine]
"""
    cat.write_text(
        "datasets:\n"
        + entry.format(name="mine-bad", src=bad)
        + entry.format(name="mine-good", src=good)
    )
    return cat


@pytest.mark.realdata
def test_a_failing_entry_does_not_stop_the_others(tmp_path):
    src = need_shared(PYSTEPS_EVENTS["mch-20150515"])
    files = sorted(f for f in src.iterdir() if f.is_file())[:3]
    good, bad = tmp_path / "good", tmp_path / "bad"
    for d in (good, bad):
        d.mkdir()
        for f in files:
            shutil.copy(f, d / f.name)
    (bad / files[1].name).write_bytes(files[1].read_bytes()[:200])  # truncated
    lines: list[str] = []
    cache = tmp_path / "stores"
    with stgeo.set_options(catalog_paths=[str(_user_catalog(tmp_path, good, bad))]):
        with pytest.raises(DataValidationError, match="1 of 2 catalog entries failed") as err:
            build_catalog(tags=["mine"], cache_dir=cache, progress=lines.append)
        assert files[1].name in str(err.value)
        assert any("mine-bad: FAILED" in line for line in lines)
        assert (cache / "mine" / "mine-good.zarr").exists()
        assert not (cache / "mine" / "mine-bad.zarr").exists()  # never looks complete
        # once the file is whole, building again only builds what is missing
        shutil.copy(files[1], bad / files[1].name)
        res = build_catalog(tags=["mine"], cache_dir=cache)
    assert [(r.name, r.status) for r in res] == [("mine-bad", "built"), ("mine-good", "up to date")]


def test_option_typos_are_caught_before_building(tmp_path, capsys):
    argv = ["catalog", "build", "synthetic-crowd", "synthetic-storms", "--cache-dir", str(tmp_path)]
    assert main([*argv, "--option", "n_dayz=2"]) == 1
    assert "n_dayz" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.zarr"))


def test_recipe_overwrite_and_verify_options_map_to_force_and_verify(tmp_path):
    args = dict(cache_dir=tmp_path, n_times="4", shape="8,8")
    assert [r.status for r in build_catalog("synthetic-storms", **args)] == ["built"]
    assert [r.status for r in build_catalog("synthetic-storms", **args)] == ["up to date"]
    res = build_catalog("synthetic-storms", overwrite="true", verify="false", **args)
    assert [r.status for r in res] == ["built"]


def test_a_process_waiting_for_another_build_of_the_entry_finds_it_up_to_date(tmp_path):
    """Two processes building one catalog entry (two benchmark runs): the second waits for
    the first and does not build it again (nor clear the first one's staging folder)."""
    import subprocess
    import sys
    import time

    held = tmp_path / "held"
    script = (
        "import sys, time, pathlib\n"
        "from stgeo.datasets import build_catalog\n"
        "from stgeo.data.safety import writer_lock\n"
        "d, held = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
        "with writer_lock(d / 'synthetic' / 'storms.zarr'):\n"
        "    held.touch()\n"
        "    time.sleep(1.5)\n"
        "    r = build_catalog(['synthetic-storms'], cache_dir=d, n_times='6', shape='8,8')\n"
        "    assert [x.status for x in r] == ['built'], r\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(held)])
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert other.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.warns(UserWarning, match="another process is writing"):
            res = build_catalog(["synthetic-storms"], cache_dir=tmp_path, n_times="6", shape="8,8")
    finally:
        assert other.wait(timeout=60) == 0
    assert [r.status for r in res] == ["up to date"]

"""The recipe protocol: fingerprint -> skip -> verify -> provenance -> atomic publish."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import stgeo
from stgeo._registry import RECIPES
from stgeo.datasets import Recipe, RecipeInputs, RecipeOutput, register_recipe, run_recipe
from stgeo.errors import DataValidationError, OutputExistsError, OutputOverlapsInputError
from stgeo.models import ModelSpec, TrainedModel


class Counter(Recipe):
    """Reads a text file of numbers into v(time); streamed two values per region."""

    def __init__(self):
        self.builds = 0
        self.regions_made = []
        self.closed = 0
        self.fail_at = None

    def inputs(self, source, *, scale=1.0):
        return RecipeInputs(files=[Path(source)], options={"scale": float(scale)})

    def build(self, inputs):
        self.builds += 1
        vals = np.loadtxt(inputs.files[0], dtype="f4") * inputs.options["scale"]
        t = pd.date_range("2020-01-01", periods=len(vals), freq="h")
        tpl = xr.Dataset({"v": ("time", np.zeros_like(vals))}, coords={"time": t}).chunk(2)

        def make(start):
            if start == self.fail_at:
                raise RuntimeError("interrupted")
            self.regions_made.append(start)
            return xr.Dataset(
                {"v": ("time", vals[start : start + 2])}, coords={"time": t[start : start + 2]}
            )

        regions = [(s, lambda s=s: make(s)) for s in range(0, len(vals), 2)]
        return RecipeOutput(tpl, chunks={"time": 2}, regions=regions, close=self._close)

    def _close(self):
        self.closed += 1


@pytest.fixture
def counter(tmp_path):
    rec = Counter()
    register_recipe("test-counter", rec, options={"scale": float})
    src = tmp_path / "raw" / "v.txt"
    src.parent.mkdir()
    src.write_text("1 2 3 4 5\n")
    yield rec, src
    RECIPES.remove("test-counter")


def test_skip_overwrite_and_provenance(counter, tmp_path):
    rec, src = counter
    dest = tmp_path / "v.zarr"
    assert run_recipe("test-counter", src, dest, scale="2") == str(dest)
    ds = stgeo.open_dataset(dest)
    np.testing.assert_array_equal(ds.v.values, [2, 4, 6, 8, 10])
    assert ds.attrs["stgeo_recipe"] == "test-counter"
    assert json.loads(ds.attrs["stgeo_recipe_options"]) == {"scale": 2.0}
    assert ds.attrs["stgeo_source"] == str(src) and len(ds.attrs["stgeo_source_fingerprint"]) == 32
    assert rec.builds == 1 and rec.closed == 1
    run_recipe("test-counter", src, dest, scale=2)  # same inputs and options: skipped
    assert rec.builds == 1
    run_recipe("test-counter", src, dest, scale=2, overwrite=True)
    assert rec.builds == 2
    with pytest.raises(OutputExistsError, match=r"other sources or options.*overwrite=true"):
        run_recipe("test-counter", src, dest, scale=3)  # other options: not without asking
    assert rec.builds == 2 and float(stgeo.open_dataset(dest).v[0]) == 2.0
    run_recipe("test-counter", src, dest, scale=3, overwrite=True)
    assert rec.builds == 3 and float(stgeo.open_dataset(dest).v[0]) == 3.0


def test_other_sources_at_dest_are_replaced_only_with_overwrite(counter, tmp_path):
    _, src = counter
    dest = tmp_path / "v.zarr"
    run_recipe("test-counter", src, dest)
    other = tmp_path / "other" / "v.txt"  # another event
    other.parent.mkdir()
    other.write_text("7 8\n")
    with pytest.raises(OutputExistsError, match="other sources or options"):
        run_recipe("test-counter", other, dest)
    assert stgeo.open_dataset(dest).v.values.tolist() == [1, 2, 3, 4, 5]
    run_recipe("test-counter", other, dest, overwrite="true")
    assert stgeo.open_dataset(dest).v.values.tolist() == [7, 8]


def test_a_store_of_another_writer_or_kind_at_dest_is_kept(counter, tmp_path):
    rec, src = counter
    storms = stgeo.testing.storm_cells(n_times=4, shape=(8, 8), seed=0)
    mine = stgeo.to_zarr(storms, tmp_path / "mine.zarr")
    with pytest.raises(OutputExistsError, match="written by stgeo.to_zarr"):
        run_recipe("test-counter", src, mine)
    fc = tmp_path / "fc.zarr"
    stgeo.forecast(storms, "persistence", lead_steps=2, output=fc, progress=False)
    with pytest.raises(OutputExistsError, match="forecast store"):
        run_recipe("test-counter", src, fc, overwrite=True)  # never, whatever overwrite says
    spec = ModelSpec("persistence", 1, 2, ["rain_rate"], ["rain_rate"], "5min", (8, 8))
    model = TrainedModel(spec.build(), spec).save(tmp_path / "model")
    with pytest.raises(OutputExistsError, match="model folder .* not a data store"):
        run_recipe("test-counter", src, model, overwrite=True)
    assert rec.builds == 0
    assert "lead_time" in stgeo.open_dataset(fc).dims and stgeo.load_model(model)
    xr.testing.assert_identical(stgeo.open_dataset(mine).load(), storms.load())


def test_a_stale_store_in_the_cache_folder_is_rebuilt(counter, tmp_path):
    """A catalog entry's store lives in stgeo's cache: rebuilt when its sources changed."""
    rec, src = counter
    with stgeo.set_options(cache_dir=str(tmp_path / "cache")):
        dest = tmp_path / "cache" / "v.zarr"
        run_recipe("test-counter", src, dest)
        run_recipe("test-counter", src, dest, scale=3)
        assert rec.builds == 2 and float(stgeo.open_dataset(dest).v[0]) == 3.0
        storms = stgeo.testing.storm_cells(n_times=4, shape=(8, 8), seed=0)
        mine = stgeo.to_zarr(storms, tmp_path / "cache" / "mine.zarr")
        with pytest.raises(OutputExistsError, match="written by stgeo.to_zarr"):
            run_recipe("test-counter", src, mine)  # not a store of this recipe: kept


@pytest.mark.parametrize("where", ["inside", "same", "parent"])
def test_dest_overlapping_the_source_is_refused(counter, tmp_path, where):
    rec, src = counter
    raw = src.parent
    dest = {"inside": raw / "out.zarr", "same": raw, "parent": tmp_path}[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(OutputOverlapsInputError, match="input"):
        run_recipe("test-counter", raw, dest, overwrite=True)
    assert rec.builds == 0 and sorted(p.name for p in tmp_path.rglob("*")) == before


def test_checksums_are_verified_unless_told_not_to(counter, tmp_path):
    rec, src = counter
    (src.parent / "SHA256SUMS").write_text(hashlib.sha256(b"other").hexdigest() + "  v.txt\n")
    with pytest.raises(DataValidationError, match="checksum mismatch for .*v.txt"):
        run_recipe("test-counter", src, tmp_path / "v.zarr")
    assert rec.builds == 0 and not (tmp_path / "v.zarr").exists()
    run_recipe("test-counter", src, tmp_path / "v.zarr", verify="false")
    assert rec.builds == 1


def test_interrupted_streamed_build_resumes_and_closes(counter, tmp_path):
    rec, src = counter
    dest = tmp_path / "v.zarr"
    rec.fail_at = 4
    with pytest.raises(RuntimeError, match="interrupted"):
        run_recipe("test-counter", src, dest)
    assert rec.closed == 1 and not dest.exists()  # nothing published, resources released
    rec.fail_at = None
    run_recipe("test-counter", src, dest)
    assert rec.regions_made == [0, 2, 4]  # regions 0 and 2 were not read again
    np.testing.assert_array_equal(stgeo.open_dataset(dest).v.values, [1, 2, 3, 4, 5])


def test_register_a_recipe_class_by_decorator(tmp_path):
    @register_recipe("test-ramp", options={"n": int}, source_required=False)
    class Ramp(Recipe):
        def inputs(self, source, *, n=3):
            return RecipeInputs(options={"n": n})

        def build(self, inputs):
            n = inputs.options["n"]
            t = pd.date_range("2020-01-01", periods=n, freq="D")
            return xr.Dataset({"v": ("time", np.arange(n))}, coords={"time": t})

    try:
        assert isinstance(Ramp(), Recipe)  # the decorator returns the class unchanged
        p = run_recipe("test-ramp", None, tmp_path / "r.zarr", n="4")
        assert stgeo.open_dataset(p).v.values.tolist() == [0, 1, 2, 3]
        assert RECIPES.get("test-ramp").name == "test-ramp"
    finally:
        RECIPES.remove("test-ramp")

"""Recipe registry plumbing: run_recipe, options, checksums, the synthetic recipe."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import stgeo
from stgeo._registry import RECIPES
from stgeo.datasets import (
    build_from_catalog,
    list_recipes,
    recipe_info,
    register_recipe,
    run_recipe,
    verify_checksums,
)
from stgeo.errors import (
    DataValidationError,
    OutputExistsError,
    StgeoTypeError,
    UnknownNameError,
)


def test_builtin_recipes_are_registered():
    builtin = ["bikenyc", "era5", "radar", "sevir", "synthetic", "taxibj", "taxibj-plus"]
    assert [n for n in list_recipes() if n in builtin] == builtin
    assert list_recipes("r*") == ["radar"] and list_recipes("tax*") == ["taxibj", "taxibj-plus"]
    assert "radar" in RECIPES
    info = recipe_info("SEVIR")
    assert info["options"]["max_events"] == "int" and info["options"]["start"] == "date"
    assert recipe_info("radar")["events"][0] == "fmi-20160928"
    assert {"overwrite", "verify"} <= set(info["options"])


def test_unknown_recipe_and_option_suggest(tmp_path):
    with pytest.raises(UnknownNameError, match="Did you mean 'radar'"):
        run_recipe("radr", tmp_path, tmp_path / "x.zarr")
    with pytest.raises(UnknownNameError, match="Did you mean 'kind'"):
        run_recipe("synthetic", None, tmp_path / "x.zarr", kinds="storms")
    with pytest.raises(StgeoTypeError, match="n_times"):
        run_recipe("synthetic", None, tmp_path / "x.zarr", n_times="many")
    with pytest.raises(UnknownNameError, match="storms"):
        run_recipe("synthetic", None, tmp_path / "x.zarr", kind="rain")
    with pytest.raises(DataValidationError, match="needs a source"):
        run_recipe("era5", None, tmp_path / "x.zarr")


def test_custom_function_recipe_gets_converted_options(tmp_path):
    seen = {}

    def rec(source, *, k: int = 0, names: tuple = (), flag: bool = False):
        seen.update(source=source, k=k, names=names, flag=flag)
        return stgeo.testing.storm_cells(n_times=2, shape=(8, 8))

    register_recipe("test-dummy", rec, options={"k": int, "names": tuple, "flag": bool})
    try:
        src = tmp_path / "in.txt"
        src.write_text("raw")
        dest = tmp_path / "d.zarr"
        out = run_recipe("test-dummy", src, dest, k="3", names="a, b", flag="yes", verify="false")
        assert out == str(dest)
        assert seen == {"source": str(src), "k": 3, "names": ("a", "b"), "flag": True}
        assert recipe_info("test-dummy")["options"]["names"] == "tuple"
        assert stgeo.open_dataset(dest).attrs["stgeo_recipe"] == "test-dummy"
        with pytest.raises(StgeoTypeError, match="flag='maybe'"):
            run_recipe("test-dummy", src, dest, flag="maybe")
    finally:
        RECIPES.remove("test-dummy")


@pytest.mark.parametrize(
    "kind,var,shape", [("storms", "rain_rate", (6, 16, 20)), ("crowd", "flow", (96, 2, 8, 8))]
)
def test_synthetic_recipe(tmp_path, kind, var, shape):
    opts = {"n_times": 6, "shape": "16,20"} if kind == "storms" else {"n_days": 2, "shape": "8,8"}
    dest = tmp_path / f"{kind}.zarr"
    p = run_recipe("synthetic", None, dest, kind=kind, **opts)
    ds = stgeo.open_dataset(p)
    stgeo.validate(ds)
    assert ds[var].shape == shape
    ref = (
        stgeo.testing.storm_cells(n_times=6, shape=(16, 20), seed=0)
        if kind == "storms"
        else stgeo.testing.crowd_flows(n_days=2, shape=(8, 8), seed=0)
    )
    np.testing.assert_array_equal(ds[var].values, ref[var].values)
    assert ds.attrs["stgeo_recipe"] == "synthetic"
    # idempotent: the same call does not rewrite the store; other options do, when asked
    mtime = os.stat(dest / "zarr.json").st_mtime_ns
    run_recipe("synthetic", None, dest, kind=kind, **opts)
    assert os.stat(dest / "zarr.json").st_mtime_ns == mtime
    with pytest.raises(OutputExistsError, match="overwrite"):
        run_recipe("synthetic", None, dest, kind=kind, seed=1, **opts)
    assert os.stat(dest / "zarr.json").st_mtime_ns == mtime
    run_recipe("synthetic", None, dest, kind=kind, seed=1, overwrite=True, **opts)
    assert not np.array_equal(stgeo.open_dataset(p)[var].values, ref[var].values)


def test_build_from_catalog(tmp_path):
    with stgeo.set_options(cache_dir=str(tmp_path)):
        p = build_from_catalog("synthetic-storms", n_times=12, shape="16,16")
        assert p == str(tmp_path / "synthetic" / "storms.zarr")
        assert stgeo.open_dataset("synthetic-storms").sizes["time"] == 12
        with pytest.raises(DataValidationError, match="s3://sevir"):
            build_from_catalog("sevir-vil")


def test_verify_checksums(tmp_path):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    f, g = sub / "x.bin", sub / "y.bin"
    f.write_bytes(b"payload")
    g.write_bytes(b"unlisted")
    digest = hashlib.sha256(b"payload").hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  ./a/b/x.bin\n")
    assert verify_checksums([f, g], root=sub) == 1
    f.write_bytes(b"payloaX")
    with pytest.raises(DataValidationError, match="checksum mismatch"):
        verify_checksums([f], root=sub)
    # md5 side files (as shipped with the ERA5 GRIB)
    g.with_name("y.bin.md5").write_text(hashlib.md5(b"unlisted").hexdigest() + "\n")
    assert verify_checksums([g], root=sub) == 1
    g.write_bytes(b"unlistedX")
    with pytest.raises(DataValidationError, match="MD5"):
        verify_checksums([g], root=sub)

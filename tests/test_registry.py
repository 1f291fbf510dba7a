import pytest

from stgeo._registry import Registry
from stgeo.errors import StgeoTypeError, UnknownNameError
from stgeo.options import get_options, resolve_device, set_options, show_progress


def test_registry_names_aliases_wildcards_and_suggestions():
    reg = Registry("thing")
    reg.add("SimVP", object(), aliases=["simvp-v2"])
    reg.add("convlstm", object())
    assert reg.get("simvp") is reg.get("SIMVP-V2")
    assert reg.list("sim*") == ["simvp"]
    assert reg.list("*v2") == ["simvp"]
    assert "ConvLSTM" in reg and 3 not in reg
    with pytest.raises(
        UnknownNameError, match="Did you mean 'convlstm'.*Valid thing names: convlstm, simvp"
    ):
        reg.get("convlstn")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("simvp", object())
    with pytest.raises(StgeoTypeError):
        reg.get(3)
    reg.remove("simvp")
    assert reg.list() == ["convlstm"]


def test_registry_entry_points(monkeypatch):
    from importlib import metadata

    class EP:
        name = "plugged"

        def load(self):
            return "the plugin"

    def fake(group):
        return [EP()] if group == "stgeo.things" else []

    monkeypatch.setattr(metadata, "entry_points", fake)
    reg = Registry("thing")
    assert reg.get("Plugged") == "the plugin"


def test_options_context_and_validation():
    assert get_options()["device"] == "auto"
    with set_options(device="cpu", progress=False):
        assert get_options()["device"] == "cpu"
        assert show_progress() is False
        assert show_progress(True) is True
    assert get_options()["device"] == "auto"
    with pytest.raises(ValueError, match="unknown option 'devise'"):
        set_options(devise="cpu")
    with pytest.raises(ValueError, match="not supported"):
        set_options(device="tpu")
    assert resolve_device("auto").type == "cpu"  # no GPU on CI
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STGEO_CACHE_DIR", str(tmp_path))
    assert get_options()["cache_dir"] == str(tmp_path)
    with set_options(cache_dir=tmp_path / "x"):
        assert get_options()["cache_dir"] == str(tmp_path / "x")


def test_package_pickles_by_reference_for_dask():
    import cloudpickle

    import stgeo

    # Dask pickles task closures with cloudpickle, which sends an importable module by name
    assert cloudpickle.loads(cloudpickle.dumps(stgeo)) is stgeo
    f = lambda: stgeo.forecast  # noqa: E731 - a task closure referring to the package
    assert cloudpickle.loads(cloudpickle.dumps(f))() is stgeo.forecast
    assert callable(stgeo.train) and callable(stgeo.forecast)

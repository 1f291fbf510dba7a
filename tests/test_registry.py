import pytest
import torch

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


# -- entry points: every registry loads its group lazily ----------------------------------------
class FakeEntryPoint:
    """What importlib.metadata returns: ``load()`` imports ``module`` and returns ``attr``."""

    def __init__(self, name, module, attr=None):
        self.name, self.module, self.attr = name, module, attr
        self.loads = 0

    def load(self):
        import importlib

        self.loads += 1
        mod = importlib.import_module(self.module)
        return mod if self.attr is None else getattr(mod, self.attr)


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    """Install fake plugin modules and entry points; every registry is restored afterwards.

    ``plugins(group, name, source, attr)`` writes module source ``source`` as an importable
    module and declares entry point ``name = module:attr`` in ``group``.
    """
    import importlib
    import sys
    from importlib import metadata

    import stgeo.datasets
    import stgeo.models
    from stgeo import _registry

    stgeo.datasets.list_recipes()  # imports (registers) the built-in recipes before the copy
    for reg in (
        _registry.MODELS,
        _registry.METRICS,
        _registry.METRIC_FAMILIES,
        _registry.CATALOGS,
        _registry.AUGMENTATIONS,
        _registry.RECIPES,
    ):
        list(reg)  # built-ins and shipped catalogs first, as a user session would have them
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))
        monkeypatch.setattr(reg, "_aliases", dict(reg._aliases))
        monkeypatch.setattr(reg, "_entry_points_loaded", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    groups: dict[str, list[FakeEntryPoint]] = {}
    monkeypatch.setattr(metadata, "entry_points", lambda group: list(groups.get(group, [])))
    modules = []

    def add(group, name, source, attr=None):
        module = f"stgeo_test_plugin_{len(modules)}"
        (tmp_path / f"{module}.py").write_text(source)
        modules.append(module)
        ep = FakeEntryPoint(name, module, attr)
        groups.setdefault(group, []).append(ep)
        return ep

    importlib.invalidate_caches()
    yield add
    for m in modules:
        sys.modules.pop(m, None)


def test_model_entry_points_self_registering_and_plain(plugins):
    import stgeo

    ep = plugins(
        "stgeo.models",
        "plugin-zero",
        "import stgeo, torch\n"
        "@stgeo.register_model('plugin-zero', defaults={'scale': 0.0})\n"
        "def build(in_steps, out_steps, channels, grid_shape=None, scale=1.0):\n"
        "    return torch.nn.Identity()\n",
        "build",
    )
    plugins(
        "stgeo.models",
        "plugin-plain",
        "import torch\n"
        "def build(in_steps, out_steps, channels, grid_shape=None):\n"
        "    return torch.nn.Identity()\n",
        "build",
    )
    skipped = plugins("stgeo.models", "persistence", "raise RuntimeError('not imported')\n")
    assert ep.loads == 0  # lazy: nothing is imported before a lookup needs it
    assert stgeo.list_models("plugin-*") == ["plugin-plain", "plugin-zero"]
    assert ep.loads == 1 and skipped.loads == 0  # built-in names win without importing
    assert stgeo.models.model_info("plugin-zero")["defaults"] == {"scale": 0.0}
    assert isinstance(stgeo.create_model("PLUGIN-PLAIN"), torch.nn.Identity)


def test_metric_entry_point_registers_a_metric_score_computes(plugins):
    import numpy as np
    import xarray as xr

    import stgeo

    plugins(
        "stgeo.metrics",
        "plugin_double_mse",
        "import stgeo\n"
        "def finalize(sums):\n"
        "    return 2 * sums.mse()\n"
        "stgeo.register_metric('plugin_double_mse', family='continuous', finalize=finalize)\n",
        "finalize",
    )
    f = xr.DataArray(np.arange(4.0).reshape(2, 2), dims=("y", "x"))
    res = stgeo.score(f, f + 3.0, metrics=["mse", "plugin_double_mse"])
    assert float(res.plugin_double_mse) == 2 * float(res.mse) == 18.0
    assert stgeo.list_metrics("plugin*") == ["plugin_double_mse"]


def test_catalog_entry_point_loads_a_yaml_folder(plugins, tmp_path):
    import stgeo
    from stgeo._registry import CATALOGS

    folder = tmp_path / "plugin-catalogs"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "datasets:\n"
        "  - {name: plugin-rain, store: plugin/rain.zarr, variables: [rain], time_step: 10min}\n"
        "  - {name: synthetic-crowd, store: plugin/crowd.zarr, variables: [flow], time_step: 1h}\n"
    )
    plugins(
        "stgeo.catalogs",
        "plugin-cats",
        f"from pathlib import Path\nFOLDER = Path({str(folder)!r})\n",
        "FOLDER",
    )
    assert "plugin-rain" in stgeo.list_catalog("plugin-*")
    assert stgeo.data.get_entry("Plugin-Rain").time_step == "10min"
    # a plugin entry replaces a shipped entry of the same name
    assert stgeo.data.get_entry("synthetic-crowd").store == "plugin/crowd.zarr"
    assert CATALOGS.entry("plugin-rain").meta["entry_point"] == "plugin-cats"
    with pytest.raises(FileNotFoundError, match="stgeo catalog build plugin-rain"):
        stgeo.open_dataset("plugin-rain")


def test_augmentation_entry_point_plain_callable(plugins):
    from stgeo.augment import get_augmentation, list_augmentations

    plugins(
        "stgeo.augmentations",
        "plugin-flip",
        "def flip(x, y):\n    return x.flip(-1), y.flip(-1)\n",
        "flip",
    )
    assert list_augmentations("plugin-*") == ["plugin-flip"]
    x, _ = get_augmentation("plugin-flip")(torch.arange(3.0), torch.zeros(1))
    assert x.tolist() == [2.0, 1.0, 0.0]


def test_recipe_entry_point(plugins):
    from stgeo._registry import RECIPES
    from stgeo.datasets import list_recipes

    plugins(
        "stgeo.recipes",
        "plugin-copy",
        "def copy(source, dest, *, overwrite=False, verify=True):\n    return str(dest)\n",
        "copy",
    )
    assert list_recipes("plugin-*") == ["plugin-copy"]
    assert RECIPES.get("plugin-copy")("a", "b") == "b"


def test_broken_plugin_warns_and_is_skipped(plugins):
    from stgeo.augment import list_augmentations
    from stgeo.errors import StgeoWarning

    plugins("stgeo.augmentations", "plugin-broken", "raise ImportError('no such dep')\n")
    plugins("stgeo.augmentations", "plugin-ok", "def f(x, y):\n    return x, y\n", "f")
    with pytest.warns(StgeoWarning, match=r"'plugin-broken'.*ImportError: no such dep.*skipped"):
        assert list_augmentations("plugin-*") == ["plugin-ok"]


def test_lazy_sources_run_once_before_entry_points():
    reg = Registry("thing", group=None)
    calls = []
    reg.add_source(lambda r: calls.append("a") or r.add("from-source", 1))
    assert calls == []
    assert reg.get("from-source") == 1 and reg.list() == ["from-source"]
    assert calls == ["a"]
    copy = reg.copy()
    copy.add("only-in-copy", 2)
    assert "only-in-copy" not in reg and copy.get("from-source") == 1
    assert reg.suggest("from-sorce") == ["from-source"]

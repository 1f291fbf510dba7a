"""stgeo: xarray-native spatio-temporal forecasting of gridded geoscience and urban data.

Importing stgeo registers the ``.st`` accessors on xarray objects. Nothing else happens at
import time (no I/O, no warnings filters, no environment changes).

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=8, shape=(32, 32), seed=0)
>>> fc = ds.st.forecast(model="persistence", lead_steps=3)
>>> fc.dims
('init_time', 'lead_time', 'y', 'x')
"""

import importlib
from typing import Any

from . import accessor as _accessor  # noqa: F401  (registers .st)
from . import augment, conventions, errors, metrics, plot, testing
from .conventions import validate
from .data import list_catalog, open_dataset, to_zarr, verify
from .data.catalog import register_catalog
from .metrics import list_metrics, register_metric, score
from .options import get_options, set_options

__version__ = "0.1.0"

# torch-backed parts load on first use, so `import stgeo` (CLI start-up, Dask workers that
# only read or score data) does not pay for importing torch
_LAZY = {
    "forecast": ("stgeo.forecasting", "forecast"),
    "train": ("stgeo.training", "train"),
    "ModelSpec": ("stgeo.models", "ModelSpec"),
    "TrainedModel": ("stgeo.models", "TrainedModel"),
    "create_model": ("stgeo.models", "create_model"),
    "list_models": ("stgeo.models", "list_models"),
    "load_model": ("stgeo.models", "load_model"),
    "register_model": ("stgeo.models", "register_model"),
    "models": ("stgeo.models", None),
    "pretrained": ("stgeo.pretrained", None),
    "list_pretrained": ("stgeo.pretrained", "list_pretrained"),
    "load_pretrained": ("stgeo.pretrained", "get"),
    "build_pretrained": ("stgeo.pretrained_build", "build_pretrained"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stgeo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ModelSpec",
    "TrainedModel",
    "__version__",
    "augment",
    "build_pretrained",
    "conventions",
    "create_model",
    "errors",
    "forecast",
    "get_options",
    "list_catalog",
    "list_metrics",
    "list_models",
    "list_pretrained",
    "load_model",
    "load_pretrained",
    "metrics",
    "models",
    "open_dataset",
    "plot",
    "pretrained",
    "register_catalog",
    "register_metric",
    "register_model",
    "score",
    "set_options",
    "testing",
    "to_zarr",
    "train",
    "validate",
    "verify",
]

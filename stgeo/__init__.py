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

from . import accessor as _accessor  # noqa: F401  (registers .st)
from . import conventions, errors, plot, testing
from .conventions import validate
from .data import list_catalog, open_dataset, to_zarr
from .forecast import forecast
from .models import ModelSpec, TrainedModel, create_model, list_models, load_model, register_model
from .options import get_options, set_options
from .train import train

__version__ = "0.1.0"

__all__ = [
    "ModelSpec",
    "TrainedModel",
    "__version__",
    "conventions",
    "create_model",
    "errors",
    "forecast",
    "get_options",
    "list_catalog",
    "list_models",
    "load_model",
    "open_dataset",
    "plot",
    "register_model",
    "set_options",
    "testing",
    "to_zarr",
    "train",
    "validate",
]

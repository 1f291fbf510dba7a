"""Models: the Forecaster protocol, ModelSpec, the model registry, baselines and networks."""

from . import (  # noqa: F401  (importing a model module registers its names)
    baselines,
    convlstm,
    earthfarseer,
    extrapolation,
    lagrangian,
    predformer,
    simvp,
    sprog,
    stresnet,
    stresnet_stacked,
    swin,
)
from .artifact import TrainedModel, load_model
from .base import (
    PER_EVENT_STEP,
    BaselineSettings,
    Forecaster,
    ModelSpec,
    baseline_settings,
    create_model,
    default_input_offsets,
    list_models,
    model_info,
    register_model,
    wants_time_features,
)
from .calibration import QuantileMapping
from .ensembles import MeanEnsemble, ensemble
from .grids import GridRule, check_grid, grid_rule

__all__ = [
    "PER_EVENT_STEP",
    "BaselineSettings",
    "Forecaster",
    "GridRule",
    "MeanEnsemble",
    "ModelSpec",
    "QuantileMapping",
    "TrainedModel",
    "baseline_settings",
    "check_grid",
    "create_model",
    "default_input_offsets",
    "ensemble",
    "grid_rule",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "wants_time_features",
]

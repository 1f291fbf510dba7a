"""Models: the Forecaster protocol, ModelSpec, the model registry, baselines and networks."""

from . import (  # noqa: F401  (importing a model module registers its names)
    baselines,
    convlstm,
    earthfarseer,
    extrapolation,
    predformer,
    simvp,
    sprog,
    stresnet,
    swin,
)
from .artifact import TrainedModel, load_model
from .base import (
    BaselineSettings,
    Forecaster,
    ModelSpec,
    baseline_settings,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = [
    "BaselineSettings",
    "Forecaster",
    "ModelSpec",
    "TrainedModel",
    "baseline_settings",
    "create_model",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
]

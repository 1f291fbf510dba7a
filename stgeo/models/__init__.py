"""Models: the Forecaster protocol, ModelSpec, the model registry, baselines and networks."""

from . import baselines, convlstm, extrapolation, simvp  # noqa: F401  (register the baselines)  # noqa: F401  (register the learned models)
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

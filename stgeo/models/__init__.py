"""Models: the Forecaster protocol, ModelSpec, the model registry, baselines and networks."""

from . import baselines  # noqa: F401  (registers the baselines)
from .base import (
    Forecaster,
    ModelSpec,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = [
    "Forecaster",
    "ModelSpec",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]

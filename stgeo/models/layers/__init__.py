"""Shared building blocks of stgeo's learned forecasters.

Examples
--------
>>> import torch
>>> from stgeo.models.layers import pad_to_multiple, crop_to
>>> x = torch.zeros(2, 3, 1, 5, 7)
>>> y = pad_to_multiple(x, 4)
>>> tuple(y.shape[-2:]), tuple(crop_to(y, (5, 7)).shape[-2:])
((8, 8), (5, 7))
"""

from .attention import (
    GatedSpatialAttention,
    MixMLP,
    TemporalAttention,
    TranslatorBlock,
)
from .common import (
    DropPath,
    ForecastModule,
    check_hyperparameter,
    check_input,
    crop_to,
    pad_to_multiple,
)
from .conv import ConvNormAct, EncoderTranslatorDecoder, FrameDecoder, FrameEncoder

__all__ = [
    "ConvNormAct",
    "DropPath",
    "EncoderTranslatorDecoder",
    "ForecastModule",
    "FrameDecoder",
    "FrameEncoder",
    "GatedSpatialAttention",
    "MixMLP",
    "TemporalAttention",
    "TranslatorBlock",
    "check_hyperparameter",
    "check_input",
    "crop_to",
    "pad_to_multiple",
]

"""Input checks, padding/cropping, stochastic depth and the base class of forecasters."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DataValidationError, StgeoTypeError

__all__ = [
    "DropPath",
    "ForecastModule",
    "check_hyperparameter",
    "check_input",
    "crop_to",
    "pad_to_multiple",
]


def check_input(x: Any, in_steps: int, channels: int, model: str = "model") -> None:
    """Raise a stgeo error unless ``x`` is a float tensor ``(B, in_steps, channels, H, W)``.

    Examples
    --------
    >>> import torch
    >>> check_input(torch.zeros(1, 4, 2, 8, 8), 4, 2)
    >>> try:
    ...     check_input(torch.zeros(1, 3, 2, 8, 8), 4, 2, "simvp")
    ... except ValueError as err:
    ...     print("4 input frames" in str(err))
    True
    """
    if not isinstance(x, torch.Tensor):
        raise StgeoTypeError(f"{model} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise StgeoTypeError(
            f"{model} expects a floating-point tensor, got dtype {x.dtype}; convert with x.float()"
        )
    if x.ndim != 5:
        raise DataValidationError(
            f"{model} expects input shaped (batch, time, channel, y, x), got {x.ndim} dims "
            f"{tuple(x.shape)}; add missing axes with x[:, :, None] (channel) or x[None] (batch)"
        )
    b, t, c, h, w = x.shape
    if t != in_steps:
        raise DataValidationError(
            f"{model} was built for {in_steps} input frames, got {t} (shape {tuple(x.shape)})"
        )
    if c != channels:
        raise DataValidationError(
            f"{model} was built for {channels} channel(s), got {c} (shape {tuple(x.shape)})"
        )
    if b < 1 or h < 1 or w < 1:
        raise DataValidationError(f"{model} got an empty input of shape {tuple(x.shape)}")


def check_hyperparameter(
    name: str, value: Any, *, minimum: float = 1, integer: bool = True, maximum: float | None = None
) -> None:
    """Raise a stgeo error unless ``value`` is a number (int if ``integer``) in range."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok_type or isinstance(value, bool):
        kind = "an integer" if integer else "a number"
        raise StgeoTypeError(f"hyperparameter {name} must be {kind}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise DataValidationError(f"hyperparameter {name} must be {rng}, got {value!r}")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the last two axes of ``x`` (any rank >= 3) up to a multiple of ``multiple``.

    Padding goes to the bottom/right so that :func:`crop_to` restores the original grid.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    lead = x.shape[:-3]
    y = x.reshape(-1, *x.shape[-3:])
    # replicate padding works for a single input row/column too (reflect does not)
    y = F.pad(y, (0, pw, 0, ph), mode="replicate")
    return y.reshape(*lead, *y.shape[-3:])


def crop_to(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The top-left ``shape`` of the last two axes (inverse of :func:`pad_to_multiple`)."""
    h, w = shape
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    return x[..., :h, :w]


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ForecastModule(nn.Module):
    """Base class of stgeo's learned forecasters: sizes, input checking and a readable repr.

    Subclasses implement ``_forward(x)`` on a checked ``(B, T_in, C, H, W)`` tensor.
    """

    name = "model"

    def __init__(self, in_steps: int, out_steps: int, channels: int) -> None:
        super().__init__()
        for k, v in (("in_steps", in_steps), ("out_steps", out_steps), ("channels", channels)):
            check_hyperparameter(k, v)
        self.in_steps = in_steps
        self.out_steps = out_steps
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_steps, self.channels, self.name)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

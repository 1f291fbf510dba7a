"""Reference baselines every learned model is judged against.

They follow the Forecaster protocol (pure torch modules), so they run through the same
forecasting path as learned models. Each registration declares its settings (how many input
and output frames, which constructor keywords) for given data: see
:func:`stgeo.models.baseline_settings`.

Examples
--------
>>> import torch, stgeo
>>> x = torch.arange(6.0).reshape(1, 6, 1, 1, 1)          # 6 input frames
>>> stgeo.create_model("persistence", in_steps=6, out_steps=2)(x).flatten().tolist()
[5.0, 5.0]
>>> clim = stgeo.create_model("climatology", in_steps=6, out_steps=8, period_steps=3)
>>> clim(x).flatten().tolist()                            # same phase one period earlier
[3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 3.0, 4.0]
>>> mean2 = stgeo.create_model("climatology", in_steps=6, out_steps=2, period_steps=3, cycles=2)
>>> mean2(x).flatten().tolist()                           # mean of the last two periods
[1.5, 2.5]
>>> import pandas as pd
>>> stgeo.models.baseline_settings("climatology", step=pd.Timedelta("30min"), period="1D")
BaselineSettings(in_steps=48, out_steps=48, hyperparameters={'period_steps': 48})
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn

from ..errors import DataValidationError
from .base import BaselineSettings, register_model
from .grids import GridRule
from .layers.common import check_input

__all__ = ["Climatology", "Persistence", "climatology_settings", "persistence_settings"]


class Persistence(nn.Module):
    """The last observed frame repeated for every lead time."""

    def __init__(self, out_steps: int) -> None:
        super().__init__()
        self.out_steps = out_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x, x.shape[1] if x.dim() == 5 else 1, x.shape[2] if x.dim() == 5 else 1, "persistence"
        )
        return x[:, -1:].expand(-1, self.out_steps, -1, -1, -1).clone()


class Climatology(nn.Module):
    """Periodic persistence: the value at the same phase of the cycle one period earlier,
    or the mean over the last ``cycles`` periods (a historical average).

    With ``period_steps = P`` (one day or one week of time steps) the forecast for lead
    ``k`` (1-based) is the observation at ``t0 + k - P * ceil(k / P)``, i.e. the same time
    of day (week) on the most recent observed cycle; with ``cycles = C`` the mean of the
    observations at that phase on the last ``C`` observed cycles. Needs
    ``in_steps >= C * P``.
    """

    def __init__(self, in_steps: int, out_steps: int, period_steps: int, cycles: int = 1) -> None:
        super().__init__()
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
            raise DataValidationError(f"climatology needs cycles >= 1 (an integer), got {cycles!r}")
        if period_steps < 1 or cycles * period_steps > in_steps:
            raise DataValidationError(
                f"climatology needs 1 <= cycles * period_steps <= in_steps, got cycles={cycles}, "
                f"period_steps={period_steps} and in_steps={in_steps}; give at least "
                f"{cycles} period(s) of history"
            )
        self.in_steps = in_steps
        self.out_steps = out_steps
        idx = [
            [in_steps - c * period_steps + (k % period_steps) for k in range(out_steps)]
            for c in range(1, cycles + 1)
        ]  # (cycles, out_steps): the same phase on each of the last cycles
        self.register_buffer("index", torch.tensor(idx, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_steps, x.shape[2] if x.dim() == 5 else 1, "climatology")
        if self.index.shape[0] == 1:
            return x.index_select(1, self.index[0])
        picked = x.index_select(1, self.index.flatten())
        return picked.unflatten(1, tuple(self.index.shape)).mean(dim=1)


def persistence_settings(
    step: pd.Timedelta, in_steps: int | None, lead_steps: int | None, **kwargs: Any
) -> BaselineSettings:
    """Persistence needs one input frame (unless told otherwise) and predicts every lead at once.

    Examples
    --------
    >>> persistence_settings(pd.Timedelta("5min"), None, 6)
    BaselineSettings(in_steps=1, out_steps=6, hyperparameters={})
    """
    return BaselineSettings(in_steps or 1, lead_steps or 1, dict(kwargs))


def _period_steps(step: pd.Timedelta, kwargs: dict[str, Any]) -> int:
    """Pop ``period_steps=`` (time steps) or ``period=`` (a duration, default one day)."""
    if "period_steps" in kwargs:
        return int(kwargs.pop("period_steps"))
    period = pd.Timedelta(kwargs.pop("period", "1D"))
    ratio = period / step
    if ratio < 1 or ratio != int(ratio):
        raise DataValidationError(
            f"climatology period {period} is not a whole multiple of the data's time "
            f"step {step}; give period= as a multiple (e.g. '1D', '7D')"
        )
    return int(ratio)


def climatology_settings(
    step: pd.Timedelta, in_steps: int | None, lead_steps: int | None, **kwargs: Any
) -> BaselineSettings:
    """Climatology: ``cycles`` (default 1) periods of input frames (``period``, default
    ``"1D"``, or ``period_steps``).

    Without ``lead_steps`` it forecasts one period ahead.

    Examples
    --------
    >>> climatology_settings(pd.Timedelta("1h"), None, 3, period="7D")
    BaselineSettings(in_steps=168, out_steps=3, hyperparameters={'period_steps': 168})
    >>> climatology_settings(pd.Timedelta("1h"), None, 1, period="7D", cycles=4).in_steps
    672
    >>> climatology_settings(pd.Timedelta("1h"), None, None, period="90min")
    Traceback (most recent call last):
    ...
    stgeo.errors.DataValidationError: climatology period 0 days 01:30:00 is not a whole ...
    """
    kw = dict(kwargs)
    period_steps = _period_steps(step, kw)
    kw["period_steps"] = period_steps
    cycles = kw.get("cycles", 1)
    need = period_steps * cycles if isinstance(cycles, int) and cycles > 0 else period_steps
    return BaselineSettings(in_steps or need, lead_steps or period_steps, kw)


@register_model(
    "persistence",
    baseline=True,
    settings=persistence_settings,
    grid=GridRule(multiple=1, fully_convolutional=True),  # pixel by pixel
    description="last frame repeated",
)
def _build_persistence(in_steps, out_steps, channels, grid_shape=None) -> nn.Module:
    return Persistence(out_steps)


@register_model(
    "climatology",
    aliases=("diurnal-persistence",),
    baseline=True,
    settings=climatology_settings,
    grid=GridRule(multiple=1, fully_convolutional=True),  # pixel by pixel
    description="same time of day (week) one period earlier, or its mean over `cycles` periods",
)
def _build_climatology(in_steps, out_steps, channels, grid_shape=None, period_steps=None, cycles=1):
    period = in_steps // cycles if period_steps is None and cycles else period_steps
    return Climatology(in_steps, out_steps, in_steps if period is None else period, cycles)

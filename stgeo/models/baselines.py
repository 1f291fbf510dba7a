"""Reference baselines every learned model is judged against.

They follow the Forecaster protocol (pure torch modules), so they run through the same
forecasting path as learned models.

Examples
--------
>>> import torch, stgeo
>>> x = torch.arange(6.0).reshape(1, 6, 1, 1, 1)          # 6 input frames
>>> stgeo.create_model("persistence", in_steps=6, out_steps=2)(x).flatten().tolist()
[5.0, 5.0]
>>> clim = stgeo.create_model("climatology", in_steps=6, out_steps=8, period_steps=3)
>>> clim(x).flatten().tolist()                            # same phase one period earlier
[3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 3.0, 4.0]
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataValidationError
from .base import register_model
from .layers.common import check_input

__all__ = ["Climatology", "Persistence"]


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
    """Periodic persistence: the value at the same phase of the cycle one period earlier.

    With ``period_steps = P`` (one day or one week of time steps) the forecast for lead
    ``k`` (1-based) is the observation at ``t0 + k - P * ceil(k / P)``, i.e. the same time
    of day (week) on the most recent observed cycle. Needs ``in_steps >= P``.
    """

    def __init__(self, in_steps: int, out_steps: int, period_steps: int) -> None:
        super().__init__()
        if period_steps < 1 or period_steps > in_steps:
            raise DataValidationError(
                f"climatology needs 1 <= period_steps <= in_steps, got period_steps={period_steps}"
                f" and in_steps={in_steps}; give at least one period of history"
            )
        self.in_steps = in_steps
        self.out_steps = out_steps
        idx = [in_steps - period_steps + (k % period_steps) for k in range(out_steps)]
        self.register_buffer("index", torch.tensor(idx, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_steps, x.shape[2] if x.dim() == 5 else 1, "climatology")
        return x.index_select(1, self.index)


@register_model("persistence", baseline=True, description="last frame repeated")
def _build_persistence(in_steps, out_steps, channels, grid_shape=None) -> nn.Module:
    return Persistence(out_steps)


@register_model(
    "climatology",
    aliases=("diurnal-persistence",),
    baseline=True,
    description="same time of day (week) one period earlier",
)
def _build_climatology(in_steps, out_steps, channels, grid_shape=None, period_steps=None):
    return Climatology(in_steps, out_steps, in_steps if period_steps is None else period_steps)

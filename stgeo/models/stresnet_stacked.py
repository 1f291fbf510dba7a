"""Stacked ST-ResNet-style forecaster: residual convolutions on stacked frames, linear baseline.

Not the three-branch ST-ResNet of the paper (that is :mod:`stgeo.models.stresnet`); after
ST-ResNet (Zhang, Zheng and Qi, AAAI 2017): the input frames - which may be the
closeness, period and trend frames of crowd flows, chosen with ``input_offsets`` in
:func:`stgeo.train` - are stacked along channels and mapped by residual units at full
resolution (no down-sampling: small grids such as 16 x 8 keep every cell). Two changes make it
learn well from a few weeks of data:

* **residual on a linear baseline.** The output is ``linear(x) + cnn(x)``: a 1 x 1 linear map
  of the stacked frames, initialised to persistence (the last input frame repeated; or, with
  ``period``, to periodic persistence such as the value a day before), plus a
  convolutional correction whose last layer starts near zero. Training starts from a sound
  forecast and the network learns what persistence (or the linear auto-regression the map
  becomes) misses.
* **position-dependent parameters** (``local=True``, needs ``grid_shape``). ST-ResNet fuses
  its branches with per-cell weights; here every cell gets its own linear map of its input
  history (a per-cell auto-regression, zero at start) and a learned embedding that the
  convolutions see as extra input channels. Land and sea, or a busy station and a quiet
  street, then get their own dynamics. The model is then tied to its training grid.

Registered names: ``stresnet-stacked`` (hidden 64, 4 residual units, local parameters) and
``stresnet-stacked-small`` (hidden 32, 2 units); before the three-branch model existed they
were called ``stresnet`` and ``stresnet-small``. It suits any stack of input frames and
multi-step outputs (e.g. 48 h of ERA5 temperature in, 12 h out).

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("stresnet-stacked", in_steps=6, out_steps=1, channels=2,
...                        grid_shape=(16, 8))
>>> m(torch.randn(3, 6, 2, 16, 8)).shape
torch.Size([3, 1, 2, 16, 8])

At initialisation the forecast is persistence (the correction starts at exactly zero):

>>> x = torch.randn(2, 6, 2, 16, 8)
>>> torch.equal(m.eval()(x), x[:, -1:])
True
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import DataValidationError
from .base import register_model
from .grids import GridRule
from .layers import ForecastModule, check_hyperparameter

__all__ = ["ResidualUnit", "StackedSTResNet", "source_frames", "stacked_grid"]


class ResidualUnit(nn.Module):
    """ReLU -> conv -> ReLU -> conv, added to the input (ST-ResNet's residual unit).

    Examples
    --------
    >>> import torch
    >>> ResidualUnit(8)(torch.zeros(1, 8, 5, 4)).shape
    torch.Size([1, 8, 5, 4])
    """

    def __init__(self, dim: int, kernel: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(dim, dim, kernel, padding=pad),
            nn.ReLU(),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(dim, dim, kernel, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def source_frames(in_steps: int, out_steps: int, period: int = 0) -> list[int]:
    """Input frame each output frame copies at initialisation (persistence or periodic).

    With ``period = 0`` every output frame is the last input frame (persistence); with
    ``period = P`` output frame ``k`` (1-based) is the input at the same phase of the most
    recent observed cycle, ``t0 + k - P * ceil(k / P)`` (periodic persistence, e.g. the value
    24 h before the valid time with hourly data and ``P = 24``).

    Examples
    --------
    >>> source_frames(6, 3)
    [5, 5, 5]
    >>> source_frames(6, 5, period=3)
    [3, 4, 5, 3, 4]
    """
    last = in_steps - 1
    if period == 0:
        return [last] * out_steps
    return [last + k - period * -(-k // period) for k in range(1, out_steps + 1)]


def _init_as_baseline(conv: nn.Conv2d, channels: int, sources: list[int]) -> None:
    """Set a 1x1 convolution of stacked frames to copy input frame ``sources[k]`` to output k."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for k, src in enumerate(sources):
            for c in range(channels):
                conv.weight[k * channels + c, src * channels + c] = 1.0


def _add_damped_anomaly(
    conv: nn.Conv2d, in_steps: int, out_steps: int, channels: int, period: int, decay: float
) -> None:
    """Add ``exp(-k / decay) * (x[t0] - x[t0 - period])`` to output frame k (1-based)."""
    last = in_steps - 1
    with torch.no_grad():
        for k in range(out_steps):
            a = math.exp(-(k + 1) / decay)
            for c in range(channels):
                conv.weight[k * channels + c, last * channels + c] += a
                conv.weight[k * channels + c, (last - period) * channels + c] -= a


class StackedSTResNet(ForecastModule):
    """Residual convolutions on stacked input frames plus a linear (per-cell) baseline.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in and out; channels per frame.
    grid_shape : (int, int), optional
        ``(ny, nx)`` of the grid; required with per-cell parameters (``local=True`` or
        ``embed_dim > 0``; the model then runs only on that grid).
    hidden : int
        Channels of the residual units.
    n_units : int
        Residual units (each two ``kernel`` x ``kernel`` convolutions).
    kernel : int
        Kernel size of the convolutions (odd).
    dropout : float
        Channel dropout inside every residual unit during training.
    local : bool
        Per-cell linear maps of each cell's input history (ST-ResNet's parametric fusion).
    embed_dim : int
        Channels of a learned per-cell embedding fed to the convolutions (0: none).
    period : int
        Start the linear map from periodic persistence with this period in time steps
        (e.g. 24 for the diurnal cycle of hourly data; needs ``in_steps >= period``) instead
        of persistence (0). See :func:`source_frames`.
    decay : float
        With ``period``: also start with the current anomaly against the last cycle,
        ``x[t0] - x[t0 - period]``, added to lead ``k`` with weight ``exp(-k / decay)``
        (damped anomaly persistence; ``decay`` in time steps, 0: none; needs
        ``in_steps > period``).

    Raises
    ------
    DataValidationError
        Invalid hyperparameters, or per-cell parameters without ``grid_shape``.

    Examples
    --------
    >>> import torch
    >>> m = StackedSTResNet(4, 2, 1, hidden=8, n_units=1, local=False, embed_dim=0)
    >>> m(torch.randn(2, 4, 1, 9, 13)).shape
    torch.Size([2, 2, 1, 9, 13])
    """

    name = "stresnet-stacked"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        grid_shape: tuple[int, int] | None = None,
        hidden: int = 64,
        n_units: int = 4,
        kernel: int = 3,
        dropout: float = 0.0,
        local: bool = True,
        embed_dim: int = 8,
        period: int = 0,
        decay: float = 0.0,
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        check_hyperparameter("hidden", hidden)
        check_hyperparameter("n_units", n_units, minimum=0)
        check_hyperparameter("kernel", kernel)
        check_hyperparameter("dropout", dropout, integer=False, minimum=0, maximum=0.99)
        check_hyperparameter("embed_dim", embed_dim, minimum=0)
        check_hyperparameter("period", period, minimum=0)
        check_hyperparameter("decay", decay, integer=False, minimum=0)
        need = period + 1 if period and decay else period
        if need > in_steps:
            raise DataValidationError(
                f"period={period}{' with decay' if decay else ''} needs at least {need} input "
                f"frames, got in_steps={in_steps}; give more inputs or a shorter period (0: start "
                "from persistence)"
            )
        if kernel % 2 == 0:
            raise DataValidationError(f"kernel must be odd, got {kernel}")
        if not isinstance(local, bool):
            raise DataValidationError(f"local must be True or False, got {local!r}")
        if (local or embed_dim) and grid_shape is None:
            raise DataValidationError(
                "stresnet-stacked with per-cell parameters (local=True or embed_dim > 0) needs "
                "grid_shape=(ny, nx) (stgeo.train passes the data's grid); pass local=False, "
                "embed_dim=0 for a model that runs on any grid"
            )
        c_in, c_out = in_steps * channels, out_steps * channels
        bound = bool(local or embed_dim)
        self.grid_shape = tuple(int(v) for v in grid_shape) if bound else None
        self.linear = nn.Conv2d(c_in, c_out, 1)
        _init_as_baseline(self.linear, channels, source_frames(in_steps, out_steps, period))
        if period and decay:
            _add_damped_anomaly(self.linear, in_steps, out_steps, channels, period, decay)
        ny, nx = self.grid_shape or (0, 0)
        self.local_weight = nn.Parameter(torch.zeros(c_out, c_in, ny, nx)) if local else None
        self.local_bias = nn.Parameter(torch.zeros(c_out, ny, nx)) if local else None
        self.embed = nn.Parameter(0.1 * torch.randn(embed_dim, ny, nx)) if embed_dim else None
        self.head = nn.Conv2d(c_in + embed_dim, hidden, kernel, padding=kernel // 2)
        self.units = nn.Sequential(*(ResidualUnit(hidden, kernel, dropout) for _ in range(n_units)))
        self.tail = nn.Conv2d(hidden, c_out, kernel, padding=kernel // 2)
        nn.init.zeros_(self.tail.weight)  # the correction starts at zero: the first forecast
        nn.init.zeros_(self.tail.bias)  # is the linear map's (persistence)

    def _check_grid(self, h: int, w: int) -> None:
        if self.grid_shape is not None and (h, w) != self.grid_shape:
            raise DataValidationError(
                "stresnet-stacked with per-cell parameters was built for the grid "
                f"{self.grid_shape}, "
                f"got ({h}, {w}); forecast on the training grid, or train with local=False, "
                "embed_dim=0 for a model that runs on any grid"
            )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        self._check_grid(h, w)
        z = x.reshape(b, t * c, h, w)
        out = self.linear(z)
        feats = z
        if self.local_weight is not None:
            out = out + torch.einsum("oihw,bihw->bohw", self.local_weight, z) + self.local_bias
        if self.embed is not None:
            feats = torch.cat([z, self.embed.expand(b, -1, -1, -1)], dim=1)
        out = out + self.tail(torch.relu(self.units(self.head(feats))))
        return out.reshape(b, self.out_steps, c, h, w)


def stacked_grid(hp: dict[str, Any]) -> GridRule:
    """Local convolutions at full resolution (any size); per-cell parameters tie it to one grid.

    Examples
    --------
    >>> stacked_grid({}).fixed_grid, stacked_grid({"local": False, "embed_dim": 0}).fixed_grid
    (True, False)
    """
    fixed = bool(hp.get("local", True)) or int(hp.get("embed_dim", 8)) > 0
    note = "per-cell parameters (local / embed_dim) tie it to its training grid" if fixed else ""
    return GridRule(multiple=1, fully_convolutional=True, note=note, fixed_grid=fixed)


def _build(in_steps, out_steps, channels, grid_shape=None, **hp) -> StackedSTResNet:
    """Stacked ST-ResNet-style forecaster (see :class:`StackedSTResNet`)."""
    return StackedSTResNet(in_steps, out_steps, channels, grid_shape=grid_shape, **hp)


register_model(
    "stresnet-stacked",
    _build,
    grid=stacked_grid,
    description="ST-ResNet-style residual CNN on stacked frames over a per-cell linear baseline "
    "(hidden 64, 4 units)",
)
register_model(
    "stresnet-stacked-small",
    _build,
    grid=stacked_grid,
    defaults={"hidden": 32, "n_units": 2},
    description="ST-ResNet-style residual CNN on stacked frames, small (hidden 32, 2 units)",
)

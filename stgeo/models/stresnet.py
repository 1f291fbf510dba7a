"""ST-ResNet (Zhang, Zheng and Qi, AAAI 2017): closeness, period and trend branches.

The input frames are split, oldest first, into the **trend** frames (``len_t`` frames at the
same time of day on previous weeks), the **period** frames (``len_p`` frames, same time on
previous days) and the **closeness** frames (the last ``len_c`` frames). Each group is stacked
along channels and goes through its own branch: a 3x3 convolution to ``hidden`` channels,
``n_units`` residual units (batch norm, ReLU, 3x3 convolution, twice, plus the input) and a
3x3 convolution to the output channels. The branches are fused with **parametric
matrices**: one learned weight per branch, output channel and grid cell, multiplied
element-wise with the branch's output and summed. An **external branch** maps the calendar
features of the predicted times (``n_features``: time of day, day of week, weekend,
holiday; see :class:`stgeo.data.TimeFeatures`) through ``Linear -> ReLU -> Linear`` to one
value per output channel and cell, added to the fusion. The output activation is
``tanh`` for data scaled to [-1, 1] (the paper; ``normalization="minmax"`` in
:func:`stgeo.train`) or the identity for stgeo's default z-scores (``output="linear"``).

The per-cell fusion weights and the external branch tie the model to its training grid
(``grid_shape``; a fixed-grid model: never cropped, tiled or moved to another grid).

Input window: :func:`cpt_offsets` gives, for a time step, the offsets of the trend, period
and closeness frames of the first predicted time (period = 1 day, trend = 1 week);
:func:`stgeo.train` uses them when neither ``in_steps`` nor ``input_offsets`` is given.

Registered names (parameter counts for BikeNYC: 2 channels, 16 x 8, 11 features):

* ``stresnet``: hidden 64, 4 residual units, ``len_c, len_p, len_t = 3, 1, 1`` (the
  paper's BikeNYC setting), 0.90 M parameters;
* ``stresnet-small``: hidden 32, 2 units, 0.12 M;
* ``stresnet-taxibj``: hidden 64, 12 units (the paper's TaxiBJ setting), 2.68 M
  (on TaxiBJ's 32 x 32 grid: 2.71 M).

Examples
--------
>>> import torch, stgeo
>>> m = stgeo.create_model("stresnet", in_steps=5, out_steps=1, channels=2,
...                        grid_shape=(16, 8), n_features=11)
>>> m(torch.randn(3, 5, 2, 16, 8), torch.zeros(3, 11)).shape
torch.Size([3, 1, 2, 16, 8])
>>> sum(p.numel() for p in m.parameters())
902462
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn

from ..errors import DataValidationError, StgeoTypeError
from .base import register_model
from .grids import GridRule
from .layers import ForecastModule, check_hyperparameter, check_input

__all__ = ["BNResidualUnit", "STResNet", "cpt_offsets"]

_DAY = pd.Timedelta("1D")
_WEEK = pd.Timedelta("7D")


class BNResidualUnit(nn.Module):
    """ST-ResNet's residual unit: (batch norm -> ReLU -> 3x3 conv) twice, plus the input.

    Examples
    --------
    >>> import torch
    >>> BNResidualUnit(8)(torch.zeros(2, 8, 5, 4)).shape
    torch.Size([2, 8, 5, 4])
    """

    def __init__(self, dim: int, batch_norm: bool = True) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(dim)) if batch_norm else nn.Identity
        self.body = nn.Sequential(
            norm(),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, padding=1),
            norm(),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Branch(nn.Sequential):
    """conv (frames*C -> hidden) -> residual units -> ReLU -> conv (hidden -> out channels)."""

    def __init__(self, c_in: int, c_out: int, hidden: int, n_units: int, batch_norm: bool):
        super().__init__(
            nn.Conv2d(c_in, hidden, 3, padding=1),
            *(BNResidualUnit(hidden, batch_norm) for _ in range(n_units)),
            nn.ReLU(),
            nn.Conv2d(hidden, c_out, 3, padding=1),
        )


def _steps_in(span: pd.Timedelta, step: pd.Timedelta, what: str) -> int:
    n = span / step
    if n < 1 or abs(n - round(n)) > 1e-9:
        raise DataValidationError(
            f"the {what} of stresnet ({span}) is not a whole number of the data's time step "
            f"({step}); resample the data to a step that divides {span}, or set "
            f"{'len_p' if what == 'period' else 'len_t'}=0"
        )
    return round(n)


def cpt_offsets(
    step: Any,
    len_c: int = 3,
    len_p: int = 1,
    len_t: int = 1,
    period: Any = _DAY,
    trend: Any = _WEEK,
) -> list[int]:
    """Input offsets (relative to the last input ``t0``) of the trend, period and closeness frames.

    The predicted time is ``t0 + 1`` step; the closeness frames are ``t0 - len_c + 1 .. t0``,
    the period frames the predicted time ``1 .. len_p`` periods earlier and the trend frames
    ``1 .. len_t`` trends earlier (oldest first), as in the paper.

    Parameters
    ----------
    step : pandas.Timedelta or str
        Time step of the data.
    len_c, len_p, len_t : int
        Frames of closeness (>= 1), period and trend (>= 0).
    period, trend : pandas.Timedelta or str
        Period (default one day) and trend interval (default one week).

    Raises
    ------
    DataValidationError
        A period or trend that is not a whole number of steps, or frames that overlap.

    Examples
    --------
    >>> cpt_offsets("1h")
    [-167, -23, -2, -1, 0]
    >>> cpt_offsets("30min", len_c=2, len_p=2, len_t=0)
    [-95, -47, -1, 0]
    """
    step = pd.Timedelta(step)
    check_hyperparameter("len_c", len_c)
    check_hyperparameter("len_p", len_p, minimum=0)
    check_hyperparameter("len_t", len_t, minimum=0)
    p = _steps_in(pd.Timedelta(period), step, "period") if len_p else 0
    q = _steps_in(pd.Timedelta(trend), step, "trend") if len_t else 0
    trend_off = [1 - j * q for j in range(len_t, 0, -1)]
    period_off = [1 - j * p for j in range(len_p, 0, -1)]
    close_off = list(range(1 - len_c, 1))
    offsets = trend_off + period_off + close_off
    if offsets != sorted(set(offsets)):
        raise DataValidationError(
            f"the trend, period and closeness frames of stresnet overlap for a {step} step "
            f"(offsets {offsets}): use fewer closeness frames (len_c) or a longer period/trend"
        )
    return offsets


def _default_offsets(step: Any, hp: dict[str, Any]) -> list[int]:
    keys = ("len_c", "len_p", "len_t", "period", "trend")
    return cpt_offsets(step, **{k: hp[k] for k in keys if k in hp})


class STResNet(ForecastModule):
    """Three-branch ST-ResNet with parametric-matrix fusion and an external-factor branch.

    Parameters
    ----------
    in_steps, out_steps, channels : int
        Frames in (``len_t + len_p + len_c``, oldest first) and out; channels per frame.
    grid_shape : (int, int)
        ``(ny, nx)`` of the grid (the fusion weights are per cell).
    len_c, len_p, len_t : int
        Closeness (>= 1), period and trend (>= 0) frames: the input's last ``len_c`` frames
        feed the closeness branch, the ``len_p`` before them the period branch and the
        first ``len_t`` the trend branch. A length 0 drops its branch.
    period, trend : str
        Period and trend interval of the default input window (see :func:`cpt_offsets`);
        recorded, not used by the network itself.
    hidden : int
        Channels inside the branches (the paper: 64).
    n_units : int
        Residual units per branch (the paper: 4 for BikeNYC, 12 for TaxiBJ).
    n_features : int
        Length of the external feature vector (0: no external branch); training sets it
        to the calendar features of the ``out_steps`` predicted times.
    ext_hidden : int
        Width of the external branch's hidden layer (the paper: 10).
    batch_norm : bool
        Batch normalisation in the residual units (the paper's units have it).
    output : {"linear", "tanh"}
        Output activation: ``"tanh"`` for data scaled to [-1, 1]
        (``normalization="minmax"``), ``"linear"`` for z-scores (stgeo's default scaling).

    Raises
    ------
    DataValidationError
        Invalid hyperparameters, ``in_steps`` different from ``len_t + len_p + len_c``, no
        ``grid_shape``; at call time another grid, or features missing or of the wrong
        shape.

    Examples
    --------
    >>> import torch
    >>> m = STResNet(4, 1, 2, grid_shape=(6, 5), len_c=2, len_p=1, len_t=1, hidden=8,
    ...              n_units=1, n_features=3)
    >>> m(torch.randn(2, 4, 2, 6, 5), torch.randn(2, 3)).shape
    torch.Size([2, 1, 2, 6, 5])
    >>> tuple(m.fusion.shape)  # branch, output channel, y, x
    (3, 2, 6, 5)
    """

    name = "stresnet"

    def __init__(
        self,
        in_steps: int,
        out_steps: int,
        channels: int,
        *,
        grid_shape: tuple[int, int] | None = None,
        len_c: int = 3,
        len_p: int = 1,
        len_t: int = 1,
        period: str = "1D",
        trend: str = "7D",
        hidden: int = 64,
        n_units: int = 4,
        n_features: int = 0,
        ext_hidden: int = 10,
        batch_norm: bool = True,
        output: str = "linear",
    ) -> None:
        super().__init__(in_steps, out_steps, channels)
        self._check(in_steps, grid_shape, len_c, len_p, len_t, hidden, n_units)
        check_hyperparameter("n_features", n_features, minimum=0)
        check_hyperparameter("ext_hidden", ext_hidden)
        if not isinstance(batch_norm, bool):
            raise StgeoTypeError(f"batch_norm must be True or False, got {batch_norm!r}")
        if output not in ("linear", "tanh"):
            raise DataValidationError(f"output must be 'linear' or 'tanh', got {output!r}")
        for what, v in (("period", period), ("trend", trend)):
            try:
                pd.Timedelta(v)
            except (TypeError, ValueError):
                raise DataValidationError(
                    f"{what} must be a duration such as '1D', got {v!r}"
                ) from None
        self.grid_shape = tuple(int(v) for v in grid_shape)  # type: ignore[union-attr]
        self.lengths = (int(len_t), int(len_p), int(len_c))  # input order: oldest first
        self.n_features = int(n_features)
        self.output = output
        c_out = out_steps * channels
        ny, nx = self.grid_shape
        self.branches = nn.ModuleList(
            _Branch(n * channels, c_out, hidden, n_units, batch_norm) for n in self.lengths if n
        )
        # one weight per branch, output channel and cell; equal shares at the start
        self.fusion = nn.Parameter(torch.full((len(self.branches), c_out, ny, nx), 1.0))
        with torch.no_grad():
            self.fusion /= len(self.branches)
        self.external = None
        if n_features:
            self.external = nn.Sequential(
                nn.Linear(n_features, ext_hidden), nn.ReLU(), nn.Linear(ext_hidden, c_out * ny * nx)
            )

    @staticmethod
    def _check(in_steps, grid_shape, len_c, len_p, len_t, hidden, n_units) -> None:
        check_hyperparameter("len_c", len_c)
        check_hyperparameter("len_p", len_p, minimum=0)
        check_hyperparameter("len_t", len_t, minimum=0)
        check_hyperparameter("hidden", hidden)
        check_hyperparameter("n_units", n_units, minimum=0)
        if in_steps != len_c + len_p + len_t:
            raise DataValidationError(
                f"stresnet takes len_t + len_p + len_c = {len_t} + {len_p} + {len_c} = "
                f"{len_c + len_p + len_t} input frames (trend, period, closeness, oldest "
                f"first), got in_steps={in_steps}; train without in_steps/input_offsets to "
                "use its default window, or set len_c, len_p, len_t to match"
            )
        if grid_shape is None:
            raise DataValidationError(
                "stresnet has per-cell fusion weights: it needs grid_shape=(ny, nx) "
                "(stgeo.train passes the data's grid)"
            )

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Forecast ``(B, out_steps, C, H, W)`` from ``x`` and the external ``features``.

        ``features`` is ``(B, n_features)``: the calendar features of the predicted times
        (required when the model has an external branch, ignored otherwise).
        """
        check_input(x, self.in_steps, self.channels, self.name)
        b, _, c, h, w = x.shape
        if (h, w) != self.grid_shape:
            raise DataValidationError(
                f"stresnet was built for the grid {self.grid_shape} (its fusion weights are "
                f"per cell), got ({h}, {w}); forecast on the training grid"
            )
        if self.external is not None:
            self._check_features(features, b)
        out = self._forward(x)
        if self.external is not None:
            ext = self.external(features.to(out.dtype)).reshape(out.shape)  # type: ignore[union-attr]
            out = out + ext
        if self.output == "tanh":
            out = torch.tanh(out)
        return out.reshape(b, self.out_steps, c, h, w)

    def _check_features(self, features: Any, b: int) -> None:
        if features is None:
            raise DataValidationError(
                f"this stresnet has an external branch (n_features={self.n_features}): call "
                "it as model(x, features) with the (B, n_features) calendar features of the "
                "predicted times; stgeo.train and stgeo.forecast supply them"
            )
        if not isinstance(features, torch.Tensor) or tuple(features.shape) != (
            b,
            self.n_features,
        ):
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else features
            raise DataValidationError(
                f"stresnet features must be a tensor ({b}, {self.n_features}), got {shape!r}"
            )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fused branches, ``(B, out_steps * C, H, W)`` (no external term, no activation)."""
        b, _, c, h, w = x.shape
        out = None
        start = 0
        k = 0
        for n in self.lengths:
            if not n:
                continue
            part = x[:, start : start + n].reshape(b, n * c, h, w)
            term = self.branches[k](part) * self.fusion[k]
            out = term if out is None else out + term
            start += n
            k += 1
        return out  # type: ignore[return-value]


def stresnet_grid(hp: dict[str, Any]) -> GridRule:
    """Full-resolution 3x3 convolutions, but per-cell fusion weights: a fixed-grid model.

    Examples
    --------
    >>> stresnet_grid({}).fixed_grid
    True
    """
    return GridRule(
        multiple=1,
        fully_convolutional=True,
        note="per-cell fusion weights and external branch tie it to its training grid",
        fixed_grid=True,
    )


_STACKED_ONLY = {"local", "embed_dim", "kernel", "dropout", "decay"}
_RENAMED = (
    "; a model saved as 'stresnet' or 'stresnet-small' before the three-branch ST-ResNet took "
    "these names is now 'stresnet-stacked' / 'stresnet-stacked-small': set \"model\" in its "
    "spec.json accordingly"
)


def _build(in_steps, out_steps, channels, grid_shape=None, **hp) -> STResNet:
    """ST-ResNet (see :class:`STResNet`)."""
    old = sorted(_STACKED_ONLY & set(hp))
    if old:
        raise StgeoTypeError(
            f"{old} are hyperparameters of 'stresnet-stacked', not of the three-branch "
            f"'stresnet'{_RENAMED}"
        )
    try:
        return STResNet(in_steps, out_steps, channels, grid_shape=grid_shape, **hp)
    except DataValidationError as err:
        if "input frames" not in str(err):
            raise
        raise DataValidationError(f"{err}{_RENAMED}") from None


_COMMON = {"grid": stresnet_grid, "input_offsets": _default_offsets, "time_features": True}
register_model(
    "stresnet",
    _build,
    description="ST-ResNet: closeness/period/trend residual branches, per-cell fusion, "
    "calendar features (hidden 64, 4 units)",
    **_COMMON,
)
register_model(
    "stresnet-small",
    _build,
    defaults={"hidden": 32, "n_units": 2},
    description="ST-ResNet, small (hidden 32, 2 units)",
    **_COMMON,
)
register_model(
    "stresnet-taxibj",
    _build,
    defaults={"n_units": 12},
    description="ST-ResNet, the paper's TaxiBJ setting (hidden 64, 12 units)",
    **_COMMON,
)

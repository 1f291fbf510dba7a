"""The model seam: the Forecaster protocol, ModelSpec and the model registry functions.

A forecaster is a pure ``torch.nn.Module`` mapping ``(B, T_in, C, H, W)`` to
``(B, T_out, C, H, W)`` in normalised units. It never sees xarray, computes no loss and
reads no config. A registered *builder* constructs it from the data-dependent sizes
(``in_steps``, ``out_steps``, ``channels``, ``grid_shape``) plus hyperparameters;
:class:`ModelSpec` records all of these so that trained weights can be rebuilt.

Examples
--------
>>> import stgeo, torch
>>> m = stgeo.create_model("persistence", in_steps=4, out_steps=2, channels=1, grid_shape=(8, 8))
>>> m(torch.zeros(3, 4, 1, 8, 8)).shape
torch.Size([3, 2, 1, 8, 8])
>>> "persistence" in stgeo.list_models()
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._registry import MODELS
from ..errors import DataValidationError, StgeoTypeError

__all__ = [
    "Forecaster",
    "ModelSpec",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]


@runtime_checkable
class Forecaster(Protocol):
    """``forward(x: (B, T_in, C, H, W)) -> (B, T_out, C, H, W)``, normalised units."""

    def __call__(self, x: Any) -> Any: ...


@dataclass
class ModelSpec:
    """Everything needed to rebuild and apply a model; travels with trained weights as JSON.

    Attributes
    ----------
    model : str
        Registry name of the architecture (e.g. ``"simvp"``).
    in_steps, out_steps : int
        Input and output frames of one forward pass.
    variables : list of str
        Data variables, in channel order before expansion of extra dims.
    channels : list of str
        Names of the model's channels (``"var"`` or ``"var:channel_value"``), in order.
    time_step : str
        Time step of the data (pandas duration, e.g. ``"5min"``).
    grid_shape : (int, int)
        (ny, nx) of the training grid; ``None`` for grid-agnostic models.
    spatial_dims : (str, str)
        Names of the spatial dims of the training data.
    hyperparameters : dict
        Keyword arguments of the builder (besides the sizes above).
    normalization : dict
        Parameters of the normaliser fitted on the training split (see ``stgeo.data``).
    units : dict
        Units of each variable.
    input_offsets, target_offsets : list of int, optional
        Non-contiguous windows (crowd-flow period/trend); default contiguous.
    extra : dict
        Free-form metadata: training data fingerprint, metrics, training settings, ...

    Examples
    --------
    >>> s = ModelSpec("simvp", 4, 4, ["flow"], ["flow:inflow", "flow:outflow"], "30min", (32, 32))
    >>> ModelSpec.from_dict(s.to_dict()) == s
    True
    """

    model: str
    in_steps: int
    out_steps: int
    variables: list[str]
    channels: list[str]
    time_step: str
    grid_shape: tuple[int, int] | None = None
    spatial_dims: tuple[str, str] = ("y", "x")
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    normalization: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    input_offsets: list[int] | None = None
    target_offsets: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        d["grid_shape"] = list(self.grid_shape) if self.grid_shape else None
        d["spatial_dims"] = list(self.spatial_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown keys are rejected."""
        known = set(cls.__dataclass_fields__)
        bad = set(d) - known
        if bad:
            raise DataValidationError(f"unknown ModelSpec fields {sorted(bad)}")
        d = dict(d)
        if d.get("grid_shape") is not None:
            d["grid_shape"] = tuple(int(v) for v in d["grid_shape"])
        if "spatial_dims" in d:
            d["spatial_dims"] = tuple(d["spatial_dims"])
        return cls(**d)

    def build(self):  # -> torch.nn.Module
        """Construct the (untrained) module this spec describes."""
        return create_model(
            self.model,
            in_steps=self.in_steps,
            out_steps=self.out_steps,
            channels=len(self.channels),
            grid_shape=self.grid_shape,
            **self.hyperparameters,
        )


def register_model(
    name: str,
    builder: Callable[..., Any] | None = None,
    *,
    aliases: list[str] | tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
    baseline: bool = False,
    description: str = "",
    overwrite: bool = False,
    auxiliary_loss: tuple[Callable[..., Any], float] | None = None,
):
    """Register a model builder (usable as a decorator).

    The builder is called as ``builder(in_steps=, out_steps=, channels=, grid_shape=, **hp)``
    and returns a ``torch.nn.Module``. ``defaults`` are hyperparameters of a named variant
    (e.g. ``"simvp-taxibj"`` registers the ``simvp`` builder with the TaxiBJ config).
    ``auxiliary_loss=(fn, weight)`` declares a regulariser that training adds to its loss
    as ``weight * fn(pred, target)`` (see :func:`stgeo.models.losses.aux_loss_of`).

    Examples
    --------
    >>> import torch, stgeo
    >>> @stgeo.register_model("my-zero", overwrite=True)
    ... def build(in_steps, out_steps, channels, grid_shape=None):
    ...     class Zero(torch.nn.Module):
    ...         def forward(self, x):
    ...             return x[:, -1:].repeat(1, out_steps, 1, 1, 1) * 0
    ...     return Zero()
    >>> m = stgeo.create_model("MY-ZERO", in_steps=2, out_steps=3, channels=1)
    >>> m(torch.ones(1, 2, 1, 4, 4)).sum()
    tensor(0.)
    """

    def deco(b: Callable[..., Any]) -> Callable[..., Any]:
        MODELS.add(
            name,
            b,
            aliases=aliases,
            description=description,
            overwrite=overwrite,
            defaults=dict(defaults or {}),
            baseline=baseline,
            auxiliary_loss=auxiliary_loss,
        )
        return b

    return deco(builder) if builder is not None else deco


def list_models(pattern: str = "*", *, baselines: bool = True) -> list[str]:
    """Registered model names matching ``pattern`` (shell wildcards, case-insensitive).

    Examples
    --------
    >>> import stgeo
    >>> stgeo.list_models("persist*")
    ['persistence']
    """
    names = MODELS.list(pattern)
    if not baselines:
        names = [n for n in names if not MODELS.entry(n).meta.get("baseline")]
    return names


def model_info(name: str) -> dict[str, Any]:
    """Canonical name, default hyperparameters, whether it is a baseline, and description."""
    e = MODELS.entry(name)
    return {
        "name": e.name,
        "defaults": dict(e.meta.get("defaults", {})),
        "baseline": bool(e.meta.get("baseline")),
        "description": e.description,
    }


def create_model(
    name: str,
    *,
    in_steps: int = 4,
    out_steps: int = 4,
    channels: int = 1,
    grid_shape: tuple[int, int] | None = None,
    **overrides: Any,
):
    """Build the registered model ``name`` with its variant defaults and ``overrides``.

    Parameters
    ----------
    name : str
        Registry name or alias (case-insensitive); unknown names raise with suggestions.
    in_steps, out_steps : int
        Frames in and out of one forward pass.
    channels : int
        Number of channels C.
    grid_shape : (int, int), optional
        (ny, nx); needed by models with position-dependent parameters.
    **overrides
        Hyperparameters replacing the variant's defaults.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import stgeo
    >>> stgeo.create_model("persistence", in_steps=1, out_steps=6).out_steps
    6
    """
    for k, v in (("in_steps", in_steps), ("out_steps", out_steps), ("channels", channels)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise StgeoTypeError(f"{k} must be a positive integer, got {v!r}")
    e = MODELS.entry(name)
    hp = {**e.meta.get("defaults", {}), **overrides}
    try:
        return e.obj(
            in_steps=in_steps, out_steps=out_steps, channels=channels, grid_shape=grid_shape, **hp
        )
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise StgeoTypeError(f"model {e.name!r}: {err}") from None
        raise

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

import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._registry import MODELS
from ..errors import DataValidationError, StgeoTypeError
from .grids import GridRule, GridRuleLike, grid_rule

__all__ = [
    "PER_EVENT_STEP",
    "BaselineSettings",
    "Forecaster",
    "ModelSpec",
    "baseline_settings",
    "create_model",
    "default_input_offsets",
    "list_models",
    "model_info",
    "register_model",
    "wants_time_features",
]


#: ``ModelSpec.time_step`` of a model trained on events with different time steps, one
#: model step being one data step of each event: it forecasts data of any step
PER_EVENT_STEP = "per-event"


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
        Time step of the training data (pandas duration, e.g. ``"5min"``), or
        ``"per-event"`` (:data:`PER_EVENT_STEP`) for a model trained on events with
        different steps, one model step standing for one data step. Forecasting accepts
        data whose step is within ``step_tolerance`` (default 25%) of it, any step for
        ``"per-event"``.
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
    features : dict, optional
        External inputs of a model that takes ``forward(x, features)`` (e.g. ``stresnet``):
        ``{"time": {...}}``, the settings of :class:`stgeo.data.TimeFeatures` (holiday
        country, time zone) with which training, validation and every forecast compute the
        calendar features of the predicted times. None: the model takes frames only.
    calibration : dict, optional
        Post-processing of the forecasts fitted after training (``stgeo.train(...,
        calibration="quantile")``): the per-lead quantile maps of
        :class:`stgeo.models.calibration.QuantileMapping`, applied by every forecast after
        de-normalisation. None: raw model output.
    members : int, optional
        A seed ensemble (:func:`stgeo.models.ensemble`): that many networks of this
        architecture and hyperparameters, whose outputs are averaged. None: one network.

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
    features: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    members: int | None = None

    def __post_init__(self) -> None:
        n = self.members
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
            raise DataValidationError(
                f"ModelSpec members={n!r}: an ensemble has an integer number of members >= 2 "
                "(None for a single network)"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        d["grid_shape"] = list(self.grid_shape) if self.grid_shape else None
        d["spatial_dims"] = list(self.spatial_dims)
        if d["members"] is None:  # single networks keep the spec layout they always had
            del d["members"]
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
        """Construct the (untrained) module this spec describes (a
        :class:`~stgeo.models.ensembles.MeanEnsemble` of ``members`` networks if set)."""

        def one() -> Any:
            return create_model(
                self.model,
                in_steps=self.in_steps,
                out_steps=self.out_steps,
                channels=len(self.channels),
                grid_shape=self.grid_shape,
                normalization=self.normalization,
                **self.hyperparameters,
            )

        if not self.members:
            return one()
        from .ensembles import MeanEnsemble

        return MeanEnsemble([one() for _ in range(self.members)])


@dataclass(frozen=True)
class BaselineSettings:
    """How a baseline runs on given data: what its settings hook returns.

    A baseline (a model that needs no training, e.g. ``"persistence"``) is forecast by name:
    its registration's ``settings`` hook (see :func:`register_model`) turns the data's time
    step, the ``in_steps`` and ``lead_steps`` asked for and the user's extra keywords into
    the sizes and constructor keywords of the module to build.

    Attributes
    ----------
    in_steps : int
        Input frames of one forward pass.
    out_steps : int
        Output frames of one forward pass.
    hyperparameters : dict
        Keyword arguments of the builder (recorded in the forecast's ``ModelSpec``).

    Examples
    --------
    >>> BaselineSettings(1, 6)
    BaselineSettings(in_steps=1, out_steps=6, hyperparameters={})
    """

    in_steps: int
    out_steps: int
    hyperparameters: dict[str, Any] = field(default_factory=dict)


#: signature of a baseline's settings hook: ``(step, in_steps, lead_steps, **kwargs)``
SettingsHook = Callable[..., BaselineSettings]
#: signature of a model's default-input-window hook: ``(step, hyperparameters) -> offsets``
OffsetsHook = Callable[[Any, dict[str, Any]], list[int]]


def wants_time_features(name: str) -> bool:
    """Whether the registered model ``name`` takes calendar features: ``forward(x, features)``.

    Examples
    --------
    >>> wants_time_features("stresnet"), wants_time_features("simvp")
    (True, False)
    """
    return bool(MODELS.entry(name).meta.get("time_features"))


def default_input_offsets(name: str, step: Any, **hyperparameters: Any) -> list[int] | None:
    """The input offsets the registered model ``name`` declares for data of time ``step``.

    ``None`` when the model declares none (then ``in_steps`` or ``input_offsets`` must be
    given to :func:`stgeo.train`). The hyperparameters override the variant's defaults.

    Examples
    --------
    >>> import pandas as pd
    >>> default_input_offsets("stresnet", pd.Timedelta("1h"))  # trend, period, closeness
    [-167, -23, -2, -1, 0]
    >>> default_input_offsets("stresnet", pd.Timedelta("30min"), len_c=2, len_t=0)
    [-47, -1, 0]
    >>> default_input_offsets("simvp", pd.Timedelta("1h")) is None
    True
    """
    e = MODELS.entry(name)
    hook = e.meta.get("input_offsets")
    if hook is None:
        return None
    offsets = [int(o) for o in hook(step, {**e.meta.get("defaults", {}), **hyperparameters})]
    if not offsets or offsets != sorted(set(offsets)) or offsets[-1] != 0:
        raise DataValidationError(
            f"the input offsets of {e.name!r} for a {step} step are {offsets}: they must be "
            "distinct, increasing and end at 0; choose other lengths (e.g. len_p, len_t)"
        )
    return offsets


def _default_settings(
    name: str, step: Any, in_steps: int | None, lead_steps: int | None, **kwargs: Any
) -> BaselineSettings:
    """Settings of a baseline registered without a hook: ``in_steps`` must be given."""
    if in_steps is None:
        raise DataValidationError(f"baseline {name!r} needs in_steps=...")
    return BaselineSettings(in_steps, lead_steps or 1, dict(kwargs))


def baseline_settings(
    name: str,
    *,
    step: Any,
    in_steps: int | None = None,
    lead_steps: int | None = None,
    **kwargs: Any,
) -> BaselineSettings:
    """The sizes and constructor keywords of the registered baseline ``name`` for some data.

    Calls the ``settings`` hook the baseline was registered with; a baseline registered
    without one needs ``in_steps`` and predicts ``lead_steps`` frames (default 1) per pass,
    its keywords passed to the builder unchanged.

    Parameters
    ----------
    name : str
        Registry name or alias of a baseline.
    step : pandas.Timedelta
        Time step of the data.
    in_steps : int, optional
        Input frames asked for (``None``: the baseline's own choice).
    lead_steps : int, optional
        The furthest lead asked for, in time steps (``None``: the baseline's own default).
    **kwargs
        The baseline's options (e.g. ``period="7D"`` for climatology).

    Returns
    -------
    BaselineSettings

    Raises
    ------
    StgeoTypeError
        ``name`` is not a baseline, or its hook returned something else than
        :class:`BaselineSettings`.
    DataValidationError
        The options do not fit the data (raised by the hook).

    Examples
    --------
    >>> import pandas as pd
    >>> baseline_settings("climatology", step=pd.Timedelta("1h"), period="1D")
    BaselineSettings(in_steps=24, out_steps=24, hyperparameters={'period_steps': 24})
    >>> baseline_settings("persistence", step=pd.Timedelta("1h"), lead_steps=3)
    BaselineSettings(in_steps=1, out_steps=3, hyperparameters={})
    """
    e = MODELS.entry(name)
    if not e.meta.get("baseline"):
        raise StgeoTypeError(
            f"{e.name!r} is not a baseline: it needs trained weights, not settings"
        )
    hook = e.meta.get("settings")
    if hook is None:
        return _default_settings(e.name, step, in_steps, lead_steps, **kwargs)
    out = hook(step, in_steps, lead_steps, **kwargs)
    if not isinstance(out, BaselineSettings):
        raise StgeoTypeError(
            f"the settings hook of baseline {e.name!r} returned {type(out).__name__}; it must "
            "return stgeo.models.BaselineSettings(in_steps, out_steps, hyperparameters)"
        )
    return out


def register_model(
    name: str,
    builder: Callable[..., Any] | None = None,
    *,
    aliases: list[str] | tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
    baseline: bool = False,
    settings: SettingsHook | None = None,
    auxiliary_loss: tuple[Callable[..., Any], float] | None = None,
    grid: GridRuleLike | None = None,
    input_offsets: OffsetsHook | None = None,
    time_features: bool = False,
    description: str = "",
    overwrite: bool = False,
):
    """Register a model builder (usable as a decorator).

    The builder is called as ``builder(in_steps=, out_steps=, channels=, grid_shape=, **hp)``
    and returns a ``torch.nn.Module``. ``defaults`` are hyperparameters of a named variant
    (e.g. ``"simvp-taxibj"`` registers the ``simvp`` builder with the TaxiBJ config).
    ``auxiliary_loss=(fn, weight)`` declares a regulariser that training adds to its loss
    as ``weight * fn(pred, target)`` (see :func:`stgeo.models.losses.aux_loss_of`).

    A ``baseline=True`` model needs no training and is forecast by name
    (``stgeo.forecast(ds, "persistence")``). Its ``settings`` hook declares how it runs on
    given data: ``settings(step, in_steps, lead_steps, **kwargs)`` gets the data's time step
    (``pandas.Timedelta``), the ``in_steps`` asked for and the furthest lead asked for (each
    ``None`` when not given) and the user's extra keywords, and returns a
    :class:`BaselineSettings` (input and output frames per pass, builder keywords). Without
    a hook, ``in_steps`` must be given, ``out_steps`` is the furthest lead (default 1) and the
    keywords go to the builder unchanged (see :func:`baseline_settings`).

    ``grid`` declares how the model applies to grids: a :class:`~stgeo.models.GridRule`
    (``multiple``: the H, W divisibility the architecture needs; ``fully_convolutional``:
    whether the output at a pixel depends only on a bounded neighbourhood), or a function
    of the hyperparameters (variant defaults merged with overrides) returning one. It
    decides how :func:`stgeo.forecast` applies a model trained on one grid (or on crops) to
    another: on the whole grid, or tile by tile (see :func:`stgeo.models.grid_rule`).
    Without it the model is taken as not fully convolutional, any size.

    ``input_offsets`` declares the model's default input window:
    ``input_offsets(step, hp) -> list of int`` gets the data's time step
    (``pandas.Timedelta``) and the hyperparameters (variant defaults merged with
    overrides) and returns the offsets of the input frames relative to the last one (e.g.
    closeness, period = one day and trend = one week back for ``stresnet``). Training uses
    them when neither ``in_steps`` nor ``input_offsets`` is given
    (:func:`default_input_offsets`).

    ``time_features=True`` declares that the module's forward is
    ``forward(x, features)`` with ``features`` a ``(B, n_features)`` tensor: the calendar
    features (:class:`stgeo.data.TimeFeatures`) of each of the ``out_steps`` predicted
    times, concatenated. Training builds the model with ``n_features=...`` and its loaders,
    validation and :func:`stgeo.forecast` supply them (:func:`wants_time_features`).

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

    A baseline whose input window is one hour of data, whatever the time step:

    >>> import pandas as pd
    >>> def hourly(step, in_steps, lead_steps, **kwargs):
    ...     return stgeo.models.BaselineSettings(
    ...         in_steps or int(pd.Timedelta("1h") / step), lead_steps or 1, kwargs)
    >>> @stgeo.register_model("my-hourly-zero", baseline=True, settings=hourly, overwrite=True)
    ... def build_hourly(in_steps, out_steps, channels, grid_shape=None):
    ...     return build(in_steps, out_steps, channels)
    >>> stgeo.models.baseline_settings("my-hourly-zero", step=pd.Timedelta("10min"))
    BaselineSettings(in_steps=6, out_steps=1, hyperparameters={})
    """
    if settings is not None and not baseline:
        raise StgeoTypeError(
            f"settings= declares how a baseline runs on given data; register {name!r} with "
            "baseline=True too (a trained model's settings come from its ModelSpec)"
        )
    if grid is not None and not (isinstance(grid, GridRule) or callable(grid)):
        raise StgeoTypeError(
            f"grid must be a stgeo.models.GridRule or a function of the hyperparameters "
            f"returning one, got {type(grid).__name__}"
        )
    if input_offsets is not None and not callable(input_offsets):
        raise StgeoTypeError(
            "input_offsets must be a function (step, hyperparameters) -> list of int, got "
            f"{type(input_offsets).__name__}"
        )
    if settings is not None and not callable(settings):
        raise StgeoTypeError(
            f"settings must be a function (step, in_steps, lead_steps, **kwargs) -> "
            f"BaselineSettings, got {type(settings).__name__}"
        )

    def deco(b: Callable[..., Any]) -> Callable[..., Any]:
        MODELS.add(
            name,
            b,
            aliases=aliases,
            description=description,
            overwrite=overwrite,
            defaults=dict(defaults or {}),
            baseline=baseline,
            settings=settings,
            auxiliary_loss=auxiliary_loss,
            grid=grid,
            input_offsets=input_offsets,
            time_features=bool(time_features),
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
    """Canonical name, default hyperparameters, whether it is a baseline, description, grid
    rule (for the variant's defaults, see :func:`stgeo.models.grid_rule`), whether it
    declares its input window (:func:`default_input_offsets`) and whether it takes calendar
    features (:func:`wants_time_features`); ``family`` is the architecture a named variant
    configures (the name registered with the same builder and no variant defaults:
    ``"convlstm"`` for ``"convlstm-radar"``; the name itself for a base architecture).

    Examples
    --------
    >>> info = model_info("convlstm-radar")
    >>> info["name"], info["grid"].multiple, info["grid"].fully_convolutional
    ('convlstm-radar', 4, True)
    >>> info["family"], model_info("tau")["family"]
    ('convlstm', 'tau')
    """
    e = MODELS.entry(name)
    bases = [
        n
        for n in MODELS.list()
        if MODELS.entry(n).obj is e.obj and not MODELS.entry(n).meta.get("defaults")
    ]
    family = e.name if e.name in bases or not bases else bases[0]
    return {
        "name": e.name,
        "family": family,
        "defaults": dict(e.meta.get("defaults", {})),
        "baseline": bool(e.meta.get("baseline")),
        "description": e.description,
        "grid": grid_rule(e.name),
        "input_window": e.meta.get("input_offsets") is not None,
        "time_features": bool(e.meta.get("time_features")),
    }


def _takes_normalization(builder: Any) -> bool:
    """Whether a model builder has a ``normalization`` parameter."""
    try:
        return "normalization" in inspect.signature(builder).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def create_model(
    name: str,
    *,
    in_steps: int = 4,
    out_steps: int = 4,
    channels: int = 1,
    grid_shape: tuple[int, int] | None = None,
    normalization: Mapping[str, Any] | None = None,
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
    normalization : dict, optional
        How the model's inputs were normalised (``Normalizer.to_dict()``, as
        ``ModelSpec.normalization``). Passed only to builders that take a ``normalization``
        argument (models that need physical values inside, e.g. ``lagrangian`` with
        ``motion_from="dbr"``); the others ignore it. Training and ``ModelSpec.build`` pass
        the data's normalisation.
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
    if normalization is not None and _takes_normalization(e.obj):
        hp["normalization"] = dict(normalization)
    try:
        return e.obj(
            in_steps=in_steps, out_steps=out_steps, channels=channels, grid_shape=grid_shape, **hp
        )
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise StgeoTypeError(_unknown_option(e.name, e.obj, str(err), hp)) from None
        raise


#: builder parameters that are the data-dependent sizes, not options a user sets
_SIZES = ("in_steps", "out_steps", "channels", "grid_shape", "normalization")


def _options(fn: Any) -> tuple[list[str], bool]:
    """The keyword options ``fn`` takes besides the sizes, and whether that is all of them
    (False: it also takes ``**kwargs``)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return [], False
    names = [
        p.name
        for p in params
        if p.name not in (*_SIZES, "self") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return names, not any(p.kind is p.VAR_KEYWORD for p in params)


def _builder_options(builder: Any) -> tuple[list[str], bool]:
    """A builder's options; for one that hands ``**hp`` on to the class it returns (its
    return annotation), also that class's."""
    names, complete = _options(builder)
    if complete:
        return names, True
    returned = inspect.signature(builder).return_annotation
    if isinstance(returned, str):
        returned = getattr(builder, "__globals__", {}).get(returned)
    if isinstance(returned, type):
        more, complete = _options(returned.__init__)
        names += [n for n in more if n not in names]
    return names, complete


def _unknown_option(name: str, builder: Any, error: str, given: Mapping[str, Any]) -> str:
    """The message for an option a model does not take: the option and the valid ones
    (never the name of the builder, a private function)."""
    valid, complete = _builder_options(builder)
    bad = [k for k in given if k not in valid] if complete else []
    bad = bad or [error.rsplit(" ", 1)[-1].strip("'")]
    what = ("option " if len(bad) == 1 else "options ") + ", ".join(repr(k) for k in bad)
    if not complete:
        return f"model {name!r} takes no {what}" + (
            f"; its options include {', '.join(valid)}" if valid else ""
        )
    takes = f"its options are {', '.join(valid)}" if valid else "it takes no options"
    return f"model {name!r} takes no {what}; {takes}"

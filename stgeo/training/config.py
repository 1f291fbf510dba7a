"""The settings of one training run: a frozen, validated :class:`TrainConfig`.

Every argument check of :func:`stgeo.train` lives here, so a bad setting fails before any
data is read. :meth:`TrainConfig.to_dict` is what the trained model's spec records
(``spec.extra["training"]``) and, with the data's description, what a resumed run compares
with its checkpoint.

Examples
--------
>>> from stgeo.training import TrainConfig
>>> cfg = TrainConfig(model="simvp", out_steps=2, in_steps=4, epochs=3)
>>> cfg.to_dict()["epochs"], cfg.thresholds is None
(3, True)
>>> TrainConfig(model="simvp", out_steps=2, schedule="linear")
Traceback (most recent call last):
...
stgeo.errors.DataValidationError: schedule must be 'cosine' or 'onecycle', got 'linear'
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data import Importance, as_patch_size, crops_per_window
from ..errors import DataValidationError, StgeoTypeError
from ..models.losses import LOSSES, weight_table

__all__ = ["TrainConfig", "augment_name"]

SCHEDULES = ("cosine", "onecycle")
VAL_METRICS = ("mse", "csi")
CALIBRATIONS = ("quantile",)


def augment_name(augment: Any) -> str | None:
    """A stable name of an augmentation for the recorded settings (a repr would change from
    run to run): the registered name, or ``module.qualname`` of a callable.

    Examples
    --------
    >>> augment_name("nuwa"), augment_name(None)
    ('nuwa', None)
    >>> augment_name(augment_name)
    'stgeo.training.config.augment_name'
    """
    if augment is None or isinstance(augment, str):
        return augment
    if isinstance(augment, Mapping):  # {"name": ..., **settings}
        return json.dumps(dict(augment), sort_keys=True, default=str)
    qual = getattr(augment, "__qualname__", None) or type(augment).__qualname__
    return f"{getattr(augment, '__module__', '?')}.{qual}"


def _has_window(model: str) -> bool:
    """Whether the registered ``model`` declares a default input window (e.g. stresnet)."""
    from .._registry import MODELS

    try:
        return MODELS.entry(model).meta.get("input_offsets") is not None
    except (KeyError, ValueError):
        return False


def _positive_int(name: str, v: Any, *, optional: bool = False) -> None:
    if optional and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        extra = " or None" if optional else ""
        raise DataValidationError(f"{name} must be a positive integer{extra}, got {v!r}")


def _number(name: str, v: Any, *, integer: bool = False, optional: bool = False) -> Any:
    """``v`` as a Python ``float`` (``int`` with ``integer``): the type check of a numeric
    setting. Strings, bools and other objects raise :class:`~stgeo.errors.StgeoTypeError`
    naming ``name`` (a string is never parsed: ``"10"`` may be a typo for a list).

    Examples
    --------
    >>> _number("lr", 1), _number("seed", 3, integer=True), _number("x", None, optional=True)
    (1.0, 3, None)
    >>> _number("seed", "x", integer=True)
    Traceback (most recent call last):
    ...
    stgeo.errors.StgeoTypeError: seed must be an integer, got 'x'
    """
    if optional and v is None:
        return None
    whole = isinstance(v, numbers.Integral) or (
        isinstance(v, numbers.Real) and math.isfinite(v) and float(v).is_integer()
    )
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or (integer and not whole):
        what = "an integer" if integer else "a number"
        raise StgeoTypeError(f"{name} must be {what}{' or None' if optional else ''}, got {v!r}")
    return int(v) if integer else float(v)


def _numbers(name: str, v: Any, *, integer: bool = False) -> tuple[Any, ...]:
    """A list of numbers (``thresholds``) or of integers (``input_offsets``) as a tuple;
    a single number stands for a list of one, as in :func:`stgeo.score`.

    Examples
    --------
    >>> _numbers("thresholds", 10), _numbers("thresholds", [0.1, 1])
    ((10.0,), (0.1, 1.0))
    >>> _numbers("thresholds", "10")
    Traceback (most recent call last):
    ...
    stgeo.errors.StgeoTypeError: thresholds must be a list of numbers, got '10'
    """
    if hasattr(v, "tolist"):  # a NumPy array or scalar
        v = v.tolist()
    items = [v] if isinstance(v, numbers.Real) else v
    what = "integers" if integer else "numbers"
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise StgeoTypeError(f"{name} must be a list of {what}, got {v!r}")
    items = list(items)
    try:
        return tuple(_number(name, x, integer=integer) for x in items)
    except StgeoTypeError:
        raise StgeoTypeError(f"{name} must be a list of {what}, got {v!r}") from None


def _is_duration(v: Any) -> bool:
    """Whether ``v`` is a positive duration pandas understands (``"10min"``)."""
    import pandas as pd

    try:
        return bool(pd.Timedelta(v) > pd.Timedelta(0))
    except (TypeError, ValueError):
        return False


def _choice(name: str, v: Any, allowed: Sequence[str]) -> None:
    if v not in allowed:
        if len(allowed) == 2:
            raise DataValidationError(f"{name} must be {allowed[0]!r} or {allowed[1]!r}, got {v!r}")
        raise DataValidationError(f"{name} must be one of {', '.join(allowed)}, got {v!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of :func:`stgeo.train`, checked on creation (see its parameters).

    ``model`` is the registered name; ``hyperparameters`` are the architecture's keyword
    arguments given by the caller; ``splits`` and ``thresholds`` are as given, and after
    :meth:`resolved` the data's time ranges and the thresholds in use (e.g. a catalog's).
    ``world_size`` and ``split_source`` are filled in by the run.

    Raises
    ------
    DataValidationError
        A setting out of range (with what was expected).
    StgeoTypeError
        A setting of the wrong type (``model`` not a name, ``augment`` neither a name nor a
        callable, ``loss_weights`` neither a list nor a mapping, ``thresholds`` not a list
        of numbers, ``seed`` not an integer, a number given as a string).
    """

    model: str
    out_steps: int | None
    in_steps: int | None = None
    input_offsets: tuple[int, ...] | None = None
    variable: str | tuple[str, ...] | None = None
    splits: Mapping[str, Any] | None = None
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    warmup: float | int = 0.05
    clip_grad: float | None = 1.0
    patience: int | None = None
    val_metric: str = "mse"
    thresholds: tuple[float, ...] | None = None
    loss: str = "mse"
    loss_weights: tuple[tuple[float, float], ...] | None = None
    normalization: str = "standard"
    precision: str = "auto"
    seed: int = 0
    max_steps_per_epoch: int | None = None
    max_val_steps: int | None = None
    augment: str | Mapping[str, Any] | Callable[..., Any] | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    world_size: int = 1
    split_source: str | None = None
    patch_size: tuple[int, int] | None = None
    importance: bool | Mapping[str, Any] | Importance | None = None
    time_step: str | None = None
    step_tolerance: float = 0.25
    allow_gaps: bool = False
    min_out_steps: int | None = None
    min_event_step: str | None = None
    crops_per_window: int | str = 1
    precision_used: str | None = None
    time_features: Mapping[str, Any] | None = None
    calibration: str | None = None
    init: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        self._check_names()
        self._check_numbers()
        self._normalise()
        if self.input_offsets is None and self.in_steps is None and not _has_window(self.model):
            raise DataValidationError("give in_steps (the number of input frames) or input_offsets")
        if self.time_features is not None and not isinstance(self.time_features, Mapping):
            raise StgeoTypeError(
                "time_features must be a mapping such as {'holidays': 'US', 'subdiv': 'NY'}, "
                f"got {type(self.time_features).__name__}"
            )

    # -- checks -----------------------------------------------------------------------
    def _check_names(self) -> None:
        if not isinstance(self.model, str):
            raise StgeoTypeError(
                f"model must be a registered model name (str), got {type(self.model).__name__}"
            )
        if self.out_steps is None:
            raise DataValidationError(
                "give out_steps (the number of frames to predict), e.g. out_steps=12"
            )
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("val_metric", self.val_metric, VAL_METRICS)
        _choice("loss", self.loss, LOSSES)
        if self.calibration is not None and self.calibration not in CALIBRATIONS:
            raise DataValidationError(
                f"calibration must be None or 'quantile' (quantile mapping of the forecasts "
                f"per lead, fitted on the training split), got {self.calibration!r}"
            )
        aug = self.augment
        if aug is not None and not isinstance(aug, (str, Mapping)) and not callable(aug):
            raise StgeoTypeError(
                "augment must be a registered augmentation name, a mapping {'name': ..., "
                f"**settings}} or a callable (x, y) -> (x, y), got {type(aug).__name__}"
            )

    def _check_sampling(self) -> None:
        """patch_size, importance, time_step, step_tolerance (see :func:`stgeo.train`)."""
        object.__setattr__(self, "patch_size", as_patch_size(self.patch_size))
        imp = self.importance
        if imp is not None and imp is not False and imp is not True:
            imp = Importance.coerce(imp)
        if imp is not None and imp is not False and self.patch_size is None:
            raise DataValidationError(
                "importance sampling chooses crop positions: give patch_size=(h, w) too"
            )
        object.__setattr__(self, "importance", imp if imp else None)
        cpw = self.crops_per_window
        if cpw != 1:
            if self.patch_size is None:
                raise DataValidationError(
                    "crops_per_window draws several crops of a window: give patch_size=(h, w) too"
                )
            crops_per_window([(1, 1)], (1, 1), cpw)  # the type and range check
        tol = self.step_tolerance
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
            raise DataValidationError(f"step_tolerance must be in [0, 1), got {tol!r}")
        step = self.time_step
        if step is not None and step != "per-event" and not _is_duration(step):
            raise DataValidationError(
                f"time_step must be None, 'per-event' or a duration such as '10min', got {step!r}"
            )
        least = self.min_event_step
        if least is not None:
            if not _is_duration(least):
                raise DataValidationError(
                    f"min_event_step must be a duration such as '5min', got {least!r}"
                )
            if step is not None and step != "per-event":
                raise DataValidationError(
                    f"min_event_step applies to time_step='per-event' (every event at its own "
                    f"step); with time_step={step!r} every event already runs at {step}: drop "
                    "one of the two"
                )

    def _check_numbers(self) -> None:
        self._check_sampling()
        self._check_optimiser()
        self._check_thresholds()
        seed = _number("seed", self.seed, integer=True)
        if not -(2**63) <= seed < 2**63:
            raise DataValidationError(f"seed must fit in 64 bits, got {seed}")
        object.__setattr__(self, "seed", seed)
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        for name in ("patience", "max_steps_per_epoch", "max_val_steps", "min_out_steps"):
            _positive_int(name, getattr(self, name), optional=True)
        m = self.min_out_steps
        if m is not None and isinstance(self.out_steps, int) and m > self.out_steps:
            raise DataValidationError(
                f"min_out_steps={m} exceeds out_steps={self.out_steps}: a training window "
                "needs at least min_out_steps of its out_steps targets (1 <= min_out_steps "
                "<= out_steps)"
            )
        w = self.warmup
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise DataValidationError(
                f"warmup must be a fraction (< 1) or a number of steps, got {w!r}"
            )

    def _check_optimiser(self) -> None:
        """lr, weight_decay and clip_grad: numbers in their ranges."""
        lr = self.lr
        if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and lr > 0):
            raise DataValidationError(f"lr must be a positive number, got {lr!r}")
        wd = _number("weight_decay", self.weight_decay)
        if not (math.isfinite(wd) and wd >= 0):
            raise DataValidationError(
                f"weight_decay must be a number >= 0 (AdamW's weight decay; 0: none), got {wd!r}"
            )
        clip = _number("clip_grad", self.clip_grad, optional=True)
        if clip is not None and not (math.isfinite(clip) and clip > 0):
            raise DataValidationError(
                "clip_grad must be a positive number (the largest gradient norm) or None (no "
                f"clipping), got {clip!r}"
            )

    def _check_thresholds(self) -> None:
        """thresholds: a list of distinct finite numbers (one number: a list of one)."""
        if self.thresholds is None:
            thr = None
        else:
            thr = _numbers("thresholds", self.thresholds)
            if not all(map(math.isfinite, thr)):
                raise DataValidationError(f"thresholds must be finite numbers, got {list(thr)}")
            if len(set(thr)) != len(thr):
                raise DataValidationError(f"thresholds contain duplicates: {list(thr)}")
            object.__setattr__(self, "thresholds", thr)
        if self.val_metric == "csi" and thr is not None and not thr:
            raise DataValidationError(
                "val_metric='csi' needs thresholds (e.g. thresholds=[0.1, 1, 5] in the data's "
                "units)"
            )

    def _normalise(self) -> None:
        """Canonical forms: tuples of numbers, a sorted weight table."""

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        w = self.loss_weights
        if w is not None:
            if isinstance(w, tuple) and all(isinstance(p, tuple) for p in w):
                w = dict(w)  # already a table (a copy made by resolved())
            put("loss_weights", tuple(tuple(p) for p in weight_table(w)))
        if self.input_offsets is not None:
            put("input_offsets", _numbers("input_offsets", self.input_offsets, integer=True))
        if isinstance(self.variable, list):
            put("variable", tuple(self.variable))
        put("hyperparameters", dict(self.hyperparameters))

    # -- derived ----------------------------------------------------------------------
    def warmup_steps(self, total: int) -> int:
        """Warm-up length in steps for a run of ``total`` steps.

        Examples
        --------
        >>> TrainConfig(model="simvp", out_steps=1, in_steps=1, warmup=0.1).warmup_steps(50)
        5
        """
        w = self.warmup
        return round(w * total) if w < 1 else int(w)

    def resolved(self, **changes: Any) -> TrainConfig:
        """A copy with the values the run resolved (thresholds, splits, world size).

        Examples
        --------
        >>> cfg = TrainConfig(model="simvp", out_steps=1, in_steps=2)
        >>> cfg.resolved(thresholds=[1, 5]).thresholds
        (1.0, 5.0)
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The training settings as JSON-ready values (``spec.extra["training"]``).

        Examples
        --------
        >>> d = TrainConfig(model="tau", out_steps=1, in_steps=2, loss_weights=[2]).to_dict()
        >>> d["loss_weights"], d["augment"], d["thresholds"]
        ([[2.0, 2.0]], None, [])
        """
        doc = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": float(self.lr),
            "weight_decay": float(self.weight_decay),
            "schedule": self.schedule,
            "warmup": self.warmup,
            "clip_grad": self.clip_grad,
            "patience": self.patience,
            "val_metric": self.val_metric,
            "thresholds": list(self.thresholds or ()),
            "loss": self.loss,
            "loss_weights": [list(p) for p in self.loss_weights] if self.loss_weights else None,
            "precision": self.precision_used or self.precision,
            "precision_requested": self.precision,
            "seed": self.seed,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "max_val_steps": self.max_val_steps,
            "augment": augment_name(self.augment),
            "world_size": self.world_size,
            "splits": self.splits,
            "split_source": self.split_source,
            "patch_size": list(self.patch_size) if self.patch_size else None,
            "importance": (
                self.importance.to_dict()
                if isinstance(self.importance, Importance)
                else self.importance
            ),
            "time_step": self.time_step,
            "step_tolerance": float(self.step_tolerance),
            "allow_gaps": bool(self.allow_gaps),
        }
        if self.time_features is not None:  # only for models that take them (older records)
            doc["time_features"] = dict(self.time_features)
        if self.calibration is not None:  # only when asked for (older records)
            doc["calibration"] = self.calibration
        if self.min_out_steps is not None:  # partial windows (older records: none)
            doc["min_out_steps"] = int(self.min_out_steps)
        if self.min_event_step is not None:  # subsampled fine events (older records: none)
            doc["min_event_step"] = self.min_event_step
        if self.crops_per_window != 1:  # (older records: one crop per window)
            doc["crops_per_window"] = self.crops_per_window
        if self.init is not None:  # fine-tuning: where the weights started
            doc["init"] = dict(self.init)
        return json.loads(json.dumps(doc, default=str))

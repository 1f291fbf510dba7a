"""How a registered model applies to grids: its :class:`GridRule`.

Every model registration may declare ``grid=GridRule(multiple=..., fully_convolutional=...)``
(or a function of the model's hyperparameters returning one, when e.g. the down-sampling
depends on them):

* ``multiple``: the divisibility of H and W the architecture works on (patch, pixel-shuffle,
  down-sampling factors). The networks pad other sizes themselves, but crops used for
  training (``patch_size``) and forecast tiles should be multiples, so that no padded
  border is learned or blended.
* ``fully_convolutional``: the output at a pixel depends only on a bounded neighbourhood of
  it: no global attention, no fixed token grid or learned position embedding, no
  normalisation over the whole frame (GroupNorm/InstanceNorm over H, W, global pooling), no
  FFT over the grid. Such a model gives the same result on any grid it is applied to, so
  :func:`stgeo.forecast` runs it on the whole grid; any other model trained on a grid (or
  crops) of one size is applied to other grids tile by tile at its trained size (see the
  forecasting guide, "Forecasting any grid").

:func:`grid_rule` resolves the rule of a name (with hyperparameters) or of a
:class:`~stgeo.models.ModelSpec`; :func:`check_grid` raises a clear error, naming the nearest
valid sizes, for a grid the model cannot use as is.

Examples
--------
>>> from stgeo.models import grid_rule, check_grid
>>> r = grid_rule("simvp-radar")
>>> r.multiple, r.fully_convolutional, r.note
(4, False, 'GroupNorm over H, W in the encoder/decoder')
>>> grid_rule("simvp", N_S=6).multiple
8
>>> check_grid("simvp-radar", (128, 128))
>>> check_grid("simvp-radar", (130, 128))
Traceback (most recent call last):
...
stgeo.errors.DataValidationError: 'simvp-radar' needs ... of 4; ...: use 128x128 or 132x128
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._registry import MODELS
from ..errors import DataValidationError, StgeoTypeError

__all__ = ["GridRule", "check_grid", "grid_rule"]


@dataclass(frozen=True)
class GridRule:
    """How a model applies to grids (declared where it is registered).

    Attributes
    ----------
    multiple : int
        H and W the architecture works on are multiples of this (1: any size).
    fully_convolutional : bool
        The output at a pixel depends only on a bounded neighbourhood: the model runs on a
        whole grid of any size with the same result as on a larger one. False for global
        attention, fixed token grids, normalisation over space, global pooling or FFTs.
    note : str
        Why the model is not fully convolutional (shown in docs and messages).
    fixed_grid : bool
        The model has parameters per grid cell (e.g. per-cell linear maps or embeddings): it
        applies only to the grid it was trained on, whole - never tiled, cropped or moved to
        another grid.
    whole_grid : bool
        The model is not fully convolutional but is meant for any grid as a whole: it
        estimates something over the grid it is given (e.g. a motion field) that tiles would
        get wrong. :func:`stgeo.forecast` never tiles it unless told to (``tiling=(h, w)``).

    Examples
    --------
    >>> r = GridRule(multiple=4, fully_convolutional=True)
    >>> r.fits((128, 96)), r.fits((130, 96))
    (True, False)
    >>> r.nearest(130)
    (128, 132)
    """

    multiple: int = 1
    fully_convolutional: bool = False
    note: str = ""
    fixed_grid: bool = False
    whole_grid: bool = False

    def __post_init__(self) -> None:
        m = self.multiple
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise StgeoTypeError(f"GridRule.multiple must be a positive integer, got {m!r}")
        if not isinstance(self.fully_convolutional, bool):
            raise StgeoTypeError(
                "GridRule.fully_convolutional must be True or False, got "
                f"{self.fully_convolutional!r}"
            )

    def fits(self, shape: tuple[int, int]) -> bool:
        """Whether both sizes of ``shape`` are positive multiples of :attr:`multiple`."""
        return all(int(n) >= 1 and int(n) % self.multiple == 0 for n in shape)

    def nearest(self, n: int) -> tuple[int, ...]:
        """The valid sizes nearest to ``n``: ``(n,)`` if it fits, else the multiples around it."""
        n = int(n)
        m = self.multiple
        if n >= 1 and n % m == 0:
            return (n,)
        lo, hi = (n // m) * m, (n // m + 1) * m
        return (lo, hi) if lo >= 1 else (hi,)


#: a grid rule, or a function of the model's hyperparameters returning one
GridRuleLike = GridRule | Callable[[Mapping[str, Any]], GridRule]


def _hyperparameters_of(model: Any, overrides: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, hyperparameters)`` of a registry name, a ModelSpec or a TrainedModel."""
    spec = getattr(model, "spec", model)
    if isinstance(model, str):
        return model, dict(overrides)
    name = getattr(spec, "model", None)
    hp = getattr(spec, "hyperparameters", None)
    if not isinstance(name, str) or not isinstance(hp, Mapping):
        raise StgeoTypeError(
            "grid_rule expects a registered model name, a ModelSpec or a TrainedModel, got "
            f"{type(model).__name__}"
        )
    return name, {**hp, **overrides}


def grid_rule(model: Any, **hyperparameters: Any) -> GridRule:
    """The :class:`GridRule` of a registered model, for its variant defaults and overrides.

    Parameters
    ----------
    model : str, ModelSpec or TrainedModel
        A registry name or alias, or the spec (or trained model) whose name and
        hyperparameters decide the rule.
    **hyperparameters
        Overrides of the variant's defaults (e.g. ``N_S=6`` changes SimVP's multiple).

    Returns
    -------
    GridRule
        The declared rule; a model registered without one gets ``GridRule()`` (any size,
        not fully convolutional: forecast tile by tile on grids other than its own).

    Examples
    --------
    >>> grid_rule("convlstm-radar")
    GridRule(multiple=4, fully_convolutional=True, note='', fixed_grid=False, whole_grid=False)
    >>> grid_rule("persistence").fully_convolutional
    True
    """
    name, hp = _hyperparameters_of(model, hyperparameters)
    e = MODELS.entry(name)
    rule = e.meta.get("grid")
    if rule is None:
        return GridRule()
    if isinstance(rule, GridRule):
        return rule
    out = rule({**e.meta.get("defaults", {}), **hp})
    if not isinstance(out, GridRule):
        raise StgeoTypeError(
            f"the grid rule of model {e.name!r} returned {type(out).__name__}, not a GridRule"
        )
    return out


def check_grid(
    model: Any, shape: tuple[int, int], *, what: str = "", **hyperparameters: Any
) -> None:
    """Raise unless the model can use a grid (or crop, or tile) of ``shape`` as is.

    Parameters
    ----------
    model : str, ModelSpec or TrainedModel
        As for :func:`grid_rule` (variant defaults apply; a spec's hyperparameters too).
    shape : (int, int)
        ``(H, W)`` of the grid, crop (``patch_size``) or tile.
    what : str
        How to call ``shape`` in the message (e.g. ``"patch_size"``).
    **hyperparameters
        Overrides of the variant's defaults, as for :func:`grid_rule` (e.g. the training
        run's ``N_S``).

    Raises
    ------
    DataValidationError
        A size is not a positive multiple of the rule's ``multiple``; the message names the
        nearest valid sizes.

    Examples
    --------
    >>> check_grid("predformer", (64, 64))
    >>> check_grid("simvp", (66, 66), N_S=2)
    >>> check_grid("predformer", (66, 64), what="patch_size")
    Traceback (most recent call last):
    ...
    stgeo.errors.DataValidationError: ... patch_size 66x64 is not: use 64x64 or 68x64
    """
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise StgeoTypeError(f"a grid shape must be two integers (H, W), got {shape!r}") from None
    name, _ = _hyperparameters_of(model, {})
    rule = grid_rule(model, **hyperparameters)
    if rule.fits((h, w)):
        return
    canonical = MODELS.entry(name).name
    label = f"{what} {h}x{w}" if what else f"{h}x{w}"
    options = [f"{a}x{b}" for a in rule.nearest(h) for b in rule.nearest(w)]
    raise DataValidationError(
        f"{canonical!r} needs H and W that are multiples of {rule.multiple}; {label} is not: "
        f"use {' or '.join(options[:4])}"
    )

"""Training losses: the main (pointwise) loss and the auxiliary losses of specific models.

:func:`pointwise_loss` is the main loss of :func:`stgeo.train`: MSE, MAE or their sum,
optionally weighted per pixel by the truth's intensity (:func:`threshold_weights`; with
thresholds 2, 5, 10, 30 mm/h this is the B-MSE + B-MAE of Shi et al. 2017, which keeps
nowcasting models from trading heavy rain for a lower mean error).

Models never compute losses in ``forward``. A model family that wants a regulariser declares
it where it is registered, ``register_model(..., auxiliary_loss=(fn, weight))``; the training
loop adds ``weight * fn(pred, target)`` to its main loss (see :func:`aux_loss_of`, the one
place that reads the declaration). :data:`AUX_LOSSES` lists the pairs of stgeo's families.

Examples
--------
>>> import torch
>>> from stgeo.models.losses import differential_divergence
>>> y = torch.randn(2, 4, 1, 8, 8)
>>> float(differential_divergence(y, y)) == 0.0
True
>>> float(differential_divergence(torch.randn(2, 4, 1, 8, 8), y)) > 0
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .._registry import MODELS
from ..errors import DataValidationError, StgeoTypeError

__all__ = [
    "AUX_LOSSES",
    "LOSSES",
    "aux_loss_of",
    "differential_divergence",
    "pointwise_loss",
    "threshold_weights",
    "weight_table",
]

LOSSES = ("mse", "mae", "mse+mae")


def _number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def weight_table(weights: Any) -> list[tuple[float, float]]:
    """Validate pixel-weight thresholds: ``[(threshold, weight), ...]`` sorted by threshold.

    ``weights`` is a sequence of thresholds (each pixel then weighs the largest threshold its
    truth reaches, at least 1: ``[2, 5, 10, 30]`` gives Shi et al.'s 1/2/5/10/30) or a
    mapping ``{threshold: weight}``.

    Examples
    --------
    >>> weight_table([5, 2])
    [(2.0, 2.0), (5.0, 5.0)]
    >>> weight_table({0.1: 1.5, "1": 4})
    [(0.1, 1.5), (1.0, 4.0)]
    """
    import math

    if isinstance(weights, dict):  # JSON (e.g. the CLI's --option) gives string keys
        pairs = [(_number(t), w) for t, w in weights.items()]
    elif isinstance(weights, (list, tuple)):
        pairs = [(t, max(t, 1.0) if isinstance(t, (int, float)) else t) for t in weights]
    else:
        raise StgeoTypeError(
            "loss_weights must be a list of thresholds (e.g. [2, 5, 10, 30]) or a mapping "
            f"{{threshold: weight}}, got {type(weights).__name__}"
        )
    if not pairs:
        raise DataValidationError("loss_weights is empty; give at least one threshold or None")
    out = []
    for t, w in pairs:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (t, w))
        if not ok or not (math.isfinite(t) and math.isfinite(w)) or w <= 0:
            raise DataValidationError(
                "loss_weights needs finite numeric thresholds and positive weights, "
                f"got {t!r}: {w!r}"
            )
        out.append((float(t), float(w)))
    out.sort()
    if len({t for t, _ in out}) != len(out):
        raise DataValidationError(f"loss_weights has repeated thresholds: {[t for t, _ in out]}")
    return out


def threshold_weights(truth: torch.Tensor, table: list[tuple[float, float]]) -> torch.Tensor:
    """Per-pixel weights: 1 below the first threshold, else the weight of the largest
    threshold reached (``truth >= threshold``), in the truth's (physical) units.

    Examples
    --------
    >>> import torch
    >>> threshold_weights(torch.tensor([0.0, 2.0, 7.0, 40.0]), weight_table([2, 5, 10, 30]))
    tensor([ 1.,  2.,  5., 30.])
    """
    w = torch.ones_like(truth, dtype=torch.float32)
    for t, v in table:
        w = torch.where(truth >= t, torch.full_like(w, v), w)
    return w


def pointwise_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str = "mse",
    weights: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error, mean absolute error or their sum, optionally weighted per pixel.

    Weighted means are divided by the number of pixels, not the sum of the weights, so that
    weights emphasise heavy pixels without rescaling the loss of the others.

    With ``valid`` (a boolean mask, e.g. ``~target.isnan()``: NaN is no-data) the loss is
    the masked mean over valid pixels: masked pixels, whatever their values in ``pred`` or
    ``target``, contribute nothing (and no gradient), and the mean divides by the number of
    valid pixels. A batch without any valid pixel gives 0.

    Examples
    --------
    >>> import torch
    >>> p, y = torch.zeros(4), torch.tensor([0.0, 1.0, 2.0, 3.0])
    >>> float(pointwise_loss(p, y, "mse")), float(pointwise_loss(p, y, "mae"))
    (3.5, 1.5)
    >>> float(pointwise_loss(p, y, "mse+mae", weights=torch.tensor([1.0, 1.0, 2.0, 2.0])))
    9.5
    >>> y_nan = torch.tensor([0.0, 1.0, float("nan"), 3.0])
    >>> float(pointwise_loss(p, y_nan, "mse", valid=~y_nan.isnan()))
    3.3333332538604736
    """
    if kind not in LOSSES:
        raise DataValidationError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    err = pred - target
    if valid is not None:
        err = torch.where(valid, err, torch.zeros((), dtype=err.dtype, device=err.device))
    per_pixel = None
    if kind in ("mse", "mse+mae"):
        per_pixel = err.square()
    if kind in ("mae", "mse+mae"):
        per_pixel = err.abs() if per_pixel is None else per_pixel + err.abs()
    if weights is not None:
        per_pixel = per_pixel * weights
    if valid is None:
        return per_pixel.mean()
    return per_pixel.sum() / valid.sum().clamp_min(1)


def differential_divergence(
    pred: torch.Tensor, target: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """TAU's differential divergence regulariser.

    The differences of consecutive frames of ``pred`` and ``target`` (both
    ``(B, T, C, H, W)``) are turned into distributions over space by a softmax with
    ``temperature``; the result is ``KL(target || pred)`` averaged over batch, frame pairs
    and channels. It is zero for ``T < 2``.

    Parameters
    ----------
    pred, target : torch.Tensor
        Forecast and truth, same shape ``(B, T, C, H, W)``.
    temperature : float
        Softmax temperature (0.1 in the TAU paper).

    Returns
    -------
    torch.Tensor
        Scalar loss (differentiable with respect to ``pred``).

    Examples
    --------
    >>> import torch
    >>> p = torch.zeros(1, 3, 1, 4, 4, requires_grad=True)
    >>> differential_divergence(p, torch.randn(1, 3, 1, 4, 4)).backward()
    >>> p.grad.shape
    torch.Size([1, 3, 1, 4, 4])
    """
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise StgeoTypeError("differential_divergence expects two torch tensors")
    if pred.shape != target.shape or pred.ndim != 5:
        raise DataValidationError(
            "differential_divergence expects pred and target of the same shape (B, T, C, H, W), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if not temperature > 0:
        raise DataValidationError(f"temperature must be > 0, got {temperature}")
    if pred.shape[1] < 2:
        return pred.sum() * 0.0
    dp = (pred[:, 1:] - pred[:, :-1]).flatten(3).float() / temperature
    dt = (target[:, 1:] - target[:, :-1]).flatten(3).float() / temperature
    log_p = F.log_softmax(dp, dim=-1)
    log_t = F.log_softmax(dt, dim=-1)
    kl = (log_t.exp() * (log_t - log_p)).sum(-1)
    return kl.mean()


AUX_LOSSES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], float]] = {
    "tau": (differential_divergence, 0.1),
}


def aux_loss_of(model: str | Any) -> tuple[Callable[..., torch.Tensor], float] | None:
    """The ``(fn, weight)`` regulariser a registered model declares, or ``None``.

    Parameters
    ----------
    model : str or torch.nn.Module
        A registered model name (or alias), or a module whose ``name`` attribute is one
        (stgeo's model families set it, e.g. ``"tau"``).

    Returns
    -------
    tuple or None
        ``(fn, weight)`` from ``register_model(..., auxiliary_loss=(fn, weight))``; training
        adds ``weight * fn(pred, target)`` to its loss.

    Raises
    ------
    UnknownNameError
        ``model`` is a name that is not registered.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.models.losses import aux_loss_of
    >>> fn, w = aux_loss_of("tau-radar")
    >>> fn.__name__, w
    ('differential_divergence', 0.1)
    >>> aux_loss_of(stgeo.create_model("tau", hid_S=4, hid_T=8, N_T=2)) == (fn, w)
    True
    >>> aux_loss_of("simvp") is None, aux_loss_of(stgeo.create_model("persistence")) is None
    (True, True)
    """
    if isinstance(model, str):
        entry = MODELS.entry(model)
    else:
        name = getattr(model, "name", None)
        entry = MODELS.entry(name) if isinstance(name, str) and name in MODELS else None
    found = None if entry is None else entry.meta.get("auxiliary_loss")
    if found is None:
        return None
    fn, weight = found
    return fn, float(weight)

"""Auxiliary training losses of specific models.

Models never compute losses in ``forward``. A model that wants a regulariser carries an
attribute ``aux_loss = (fn, weight)``; the training loop adds ``weight * fn(pred, target)``
to its main loss (see :func:`aux_loss_of`). :data:`AUX_LOSSES` lists the same pairs by
architecture family.

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

from ..errors import DataValidationError, StgeoTypeError

__all__ = ["AUX_LOSSES", "aux_loss_of", "differential_divergence"]


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


def aux_loss_of(module: Any) -> tuple[Callable[..., torch.Tensor], float] | None:
    """The ``(fn, weight)`` regulariser a model asks for, or ``None``.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.models.losses import aux_loss_of
    >>> m = stgeo.create_model("tau", hid_S=4, hid_T=8, N_T=2)
    >>> fn, w = aux_loss_of(m)
    >>> fn.__name__, w
    ('differential_divergence', 0.1)
    >>> aux_loss_of(stgeo.create_model("persistence")) is None
    True
    """
    aux = getattr(module, "aux_loss", None)
    if aux is None:
        return None
    fn, weight = aux
    return fn, float(weight)

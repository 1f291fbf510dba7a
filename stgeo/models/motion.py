"""Motion fields and dB transforms shared by the radar baselines (pysteps wrappers).

The settings are those of pysteps' examples and of the radar protocol
(``specs/evaluation.md``): rain rates (mm/h) at or above ``threshold`` (0.1) become
``10 log10(R)`` dBR, everything else ``zerovalue`` (-15 dBR); the motion is pysteps'
Lucas–Kanade optical flow on those dB frames.

Examples
--------
>>> import numpy as np
>>> from stgeo.models.motion import from_db, to_db
>>> r = np.array([[0.0, 0.05, 1.0, 10.0]])
>>> to_db(r).round(1).tolist()
[[-15.0, -15.0, 0.0, 10.0]]
>>> from_db(to_db(r)).round(3).tolist()
[[0.0, 0.0, 1.0, 10.0]]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._optional import import_optional
from .base import BaselineSettings

__all__ = ["from_db", "lucas_kanade", "per_sequence", "radar_settings", "to_db"]


def to_db(rain: np.ndarray, threshold: float = 0.1, zerovalue: float = -15.0) -> np.ndarray:
    """Rain rates to dBR: ``10 log10(R)`` where ``R >= threshold``, else ``zerovalue``.

    NaN (no data) becomes ``zerovalue`` too.

    Examples
    --------
    >>> import numpy as np
    >>> float(to_db(np.array([100.0]))[0])
    20.0
    """
    r = np.nan_to_num(np.asarray(rain, dtype=np.float64), nan=0.0)
    out = np.full(r.shape, zerovalue, dtype=np.float64)
    wet = r >= threshold
    out[wet] = 10.0 * np.log10(r[wet])
    return out


def from_db(db: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """dBR back to rain rates; values below ``threshold`` (and NaN) become 0.

    Examples
    --------
    >>> import numpy as np
    >>> from_db(np.array([10.0, -15.0, np.nan])).tolist()
    [10.0, 0.0, 0.0]
    """
    with np.errstate(over="ignore", invalid="ignore"):
        r = 10.0 ** (np.asarray(db, dtype=np.float64) / 10.0)
    r = np.where(np.isfinite(r) & (r >= threshold), r, 0.0)
    return r


def lucas_kanade(db: np.ndarray) -> np.ndarray:
    """pysteps' Lucas–Kanade motion field ``(2, H, W)`` (pixels per step) of dB frames.

    Examples
    --------
    >>> import numpy as np
    >>> db = np.full((3, 32, 32), -15.0)
    >>> for t in range(3):
    ...     db[t, 10:16, 8 + t : 14 + t] = 10.0
    >>> v = lucas_kanade(db)
    >>> v.shape, bool(v[0].max() > 0.5)
    ((2, 32, 32), True)
    """
    motion = import_optional("pysteps.motion")
    with warnings.catch_warnings():  # LK warns on degenerate (e.g. uniform) patches
        warnings.simplefilter("ignore", UserWarning)
        return motion.get_method("LK")(np.asarray(db, dtype=np.float64), verbose=False)


def radar_settings(
    step: Any, in_steps: int | None, lead_steps: int | None, **kwargs: Any
) -> BaselineSettings:
    """Settings hook of the optical-flow baselines: 4 input frames unless told otherwise
    (the radar protocol's), every lead in one pass.

    Examples
    --------
    >>> radar_settings(None, None, 12)
    BaselineSettings(in_steps=4, out_steps=12, hyperparameters={})
    """
    return BaselineSettings(in_steps or 4, lead_steps or 1, dict(kwargs))


def per_sequence(
    x: torch.Tensor, out_steps: int, nowcast: Callable[[np.ndarray], np.ndarray]
) -> torch.Tensor:
    """Apply a numpy nowcast ``(T, H, W) -> (out_steps, H, W)`` to every sample and channel of
    ``x`` ``(B, T, C, H, W)``; the result is float32 on ``x``'s device.

    Examples
    --------
    >>> import numpy as np, torch
    >>> y = per_sequence(torch.ones(2, 3, 1, 4, 4), 2, lambda f: np.repeat(f[-1:], 2, axis=0))
    >>> tuple(y.shape)
    (2, 2, 1, 4, 4)
    """
    arr = x.detach().float().cpu().numpy()
    b, _, c, h, w = arr.shape
    out = np.empty((b, out_steps, c, h, w), dtype=np.float32)
    for i in range(b):
        for j in range(c):
            out[i, :, j] = nowcast(arr[i, :, j])
    return torch.from_numpy(out).to(x.device)

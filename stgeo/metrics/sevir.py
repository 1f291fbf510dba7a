"""SEVIR scoring exactly as the published tables do it (Earthformer's convention).

* Field: VIL on the 0-255 byte scale (convert predictions back before scoring).
* Thresholds 16, 74, 133, 160, 181, 219; an event is ``value >= threshold``.
* Hits, misses and false alarms are summed over every pixel, lead frame and test sample,
  per threshold; CSI per threshold; **CSI-M is the arithmetic mean of the six CSIs**.
* Earthformer adds ``eps = 1e-4`` to denominators; stgeo reports without eps (the difference
  is below 1e-8 for any realistic test set).
* Pooled CSI (PreDiff/DiffCast): max-pool both fields with kernel = stride = 4 or 16 first.
* Per-lead CSI keeps the counts per lead frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import xarray as xr

from ..conventions import LEAD_TIME_DIM
from ..errors import DataValidationError, StgeoWarning
from .evaluate import score

__all__ = ["SEVIR_THRESHOLDS", "sevir_scores"]

SEVIR_THRESHOLDS: tuple[int, ...] = (16, 74, 133, 160, 181, 219)


def sevir_scores(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    pool: int | Sequence[int] | None = None,
    per_lead: bool = False,
    thresholds: Sequence[float] = SEVIR_THRESHOLDS,
    batch_init_times: int | None = None,
) -> xr.Dataset:
    """CSI per threshold and CSI-M on SEVIR VIL (0-255), as in the published tables.

    Parameters
    ----------
    fcst, obs : DataArray
        VIL forecasts and observations on the 0-255 scale (aligned like
        :func:`stgeo.metrics.score`: forecasts ``(init_time, lead_time, y, x)`` against
        observations ``(time, y, x)``, or both with the same dims).
    pool : int or sequence of int, optional
        Max-pool sizes for pooled CSI, e.g. ``[1, 4, 16]`` (adds a ``pool`` dim).
    per_lead : bool
        Keep counts per ``lead_time`` (per-lead CSI) instead of pooling them.
    thresholds : sequence of float
        Defaults to :data:`SEVIR_THRESHOLDS`.
    batch_init_times : int, optional
        Streaming block size (see :func:`stgeo.metrics.score`).

    Returns
    -------
    Dataset
        ``csi`` (``threshold`` [, ``pool``, ``lead_time``]), ``csi_m`` (mean over the
        thresholds), and the counts ``hits``, ``misses``, ``false_alarms``.

    Raises
    ------
    DataValidationError
        If no value in either field reaches the lowest threshold (VIL must be on the
        0-255 scale, not normalised to [0, 1]).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> o = xr.DataArray(np.array([[[0, 20, 80, 140], [170, 190, 230, 10]]], float),
    ...                  dims=("time", "y", "x"))
    >>> res = sevir_scores(o, o)
    >>> float(res.csi_m)
    1.0
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StgeoWarning)  # replaced by the clearer error below
        res = score(
            fcst,
            obs,
            metrics=["csi", "csi_m", "hits", "misses", "false_alarms"],
            thresholds=list(thresholds),
            pool=pool,
            preserve_dims=(LEAD_TIME_DIM,) if per_lead else (),
            batch_init_times=batch_init_times,
        )
    lowest = res.sel(threshold=min(thresholds))
    if int((lowest.hits + lowest.misses + lowest.false_alarms).sum()) == 0:
        raise DataValidationError(
            f"no forecast or observed value reaches the lowest SEVIR threshold "
            f"{min(thresholds)}: SEVIR scores expect VIL on the 0-255 byte scale. If the data "
            "are normalised to [0, 1], multiply them by 255 before scoring."
        )
    res.attrs["convention"] = (
        "SEVIR/Earthformer: VIL 0-255, event >= threshold, counts pooled over pixels, leads "
        "and samples; CSI-M = mean of per-threshold CSI; no eps in denominators"
    )
    return res

"""``score``: streaming evaluation of a (lazy) forecast against (lazy) observations.

Scores are computed from mergeable sums (contingency counts, error sums, FSS sums, per-frame
sums), so the result of streaming over blocks of ``init_time`` - or of Dask reducing chunk by
chunk - is identical to scoring everything at once, while memory stays bounded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._registry import METRICS
from ..conventions import INIT_TIME_DIM, LEAD_TIME_DIM, TIME_DIM
from ..errors import DataValidationError, StgeoTypeError, StgeoWarning
from . import categorical, continuous, image, spatial
from ._base import (
    THRESHOLD_DIM,
    align,
    as_dataarray,
    as_positive_ints,
    as_thresholds,
    check_threshold_range,
    is_dask,
    resolve_reduce_dims,
)
from .contingency import ContingencyTable, pooled_counts
from .continuous import ErrorSums, _weights, error_stats
from .image import FrameSums, frame_stats, resolve_data_range
from .spatial import FSSSums, fss_stats

__all__ = ["list_metrics", "score"]

DEFAULT_PRESERVE = (LEAD_TIME_DIM,)
BLOCK_BYTES = 64 * 2**20  # target size of one forecast block on the eager streaming path

_FAMILY_CLASS: dict[str, type] = {
    "contingency": ContingencyTable,
    "continuous": ErrorSums,
    "fss": FSSSums,
    "ssim": FrameSums,
    "psnr": FrameSums,
}


def _register(
    name: str, func: Callable, family: str, finalize: Callable, aliases: Sequence[str] = ()
) -> None:
    METRICS.add(name, func, aliases=list(aliases), family=family, finalize=finalize, overwrite=True)


_register(
    "csi",
    categorical.csi,
    "contingency",
    ContingencyTable.csi,
    ["ts", "threat_score", "critical_success_index"],
)
_register(
    "pod",
    categorical.pod,
    "contingency",
    ContingencyTable.pod,
    ["hit_rate", "probability_of_detection"],
)
_register("far", categorical.far, "contingency", ContingencyTable.far, ["false_alarm_ratio"])
_register("sr", categorical.sr, "contingency", ContingencyTable.sr, ["success_ratio"])
_register(
    "frequency_bias",
    categorical.frequency_bias,
    "contingency",
    ContingencyTable.frequency_bias,
    ["bias", "fbias", "freq_bias"],
)
_register("hss", categorical.hss, "contingency", ContingencyTable.hss, ["heidke_skill_score"])
_register(
    "ets",
    categorical.ets,
    "contingency",
    ContingencyTable.ets,
    ["gss", "equitable_threat_score", "gilbert_skill_score"],
)
_register(
    "csi_m", categorical.csi_m, "contingency", ContingencyTable.csi_m, ["csim", "csi-m", "mean_csi"]
)
for _count in ("hits", "misses", "false_alarms", "correct_negatives"):
    _register(
        _count,
        getattr(categorical, _count),
        "contingency",
        lambda t, _c=_count: t.data[_c].rename(_c),
    )
_register("fss", spatial.fss, "fss", FSSSums.fss, ["fractions_skill_score"])
_register("mse", continuous.mse, "continuous", ErrorSums.mse, ["mse_pixel"])
_register(
    "mse_frame", continuous.mse_frame, "continuous", ErrorSums.mse_frame, ["mse_sum", "frame_mse"]
)
_register("mae", continuous.mae, "continuous", ErrorSums.mae, ["mae_pixel"])
_register(
    "mae_frame", continuous.mae_frame, "continuous", ErrorSums.mae_frame, ["mae_sum", "frame_mae"]
)
_register("rmse", continuous.rmse, "continuous", ErrorSums.rmse)
_register(
    "mean_error",
    continuous.mean_error,
    "continuous",
    ErrorSums.mean_error,
    ["me", "additive_bias", "bias_mean"],
)
_register("ssim", image.ssim, "ssim", FrameSums.mean, ["structural_similarity"])
_register("psnr", image.psnr, "psnr", FrameSums.mean, ["peak_signal_to_noise_ratio"])


def list_metrics(pattern: str = "*") -> list[str]:
    """Names of the registered metrics matching a shell-style pattern.

    Examples
    --------
    >>> list_metrics("csi*")
    ['csi', 'csi_m']
    """
    return METRICS.list(pattern)


def _resolve_metrics(metrics: str | Iterable[str]) -> list[Any]:
    if isinstance(metrics, str):
        metrics = [metrics]
    try:
        names = list(metrics)
    except TypeError:
        raise StgeoTypeError(
            f"metrics must be a name or a list of names, got {metrics!r}."
        ) from None
    if not names:
        raise DataValidationError(f"metrics is empty; choose from {', '.join(METRICS.list())}.")
    entries = {}
    for n in names:
        e = METRICS.entry(n)  # UnknownNameError with "did you mean" and the valid names
        if "family" not in e.meta:
            raise DataValidationError(f"metric {e.name!r} cannot be used by score().")
        entries[e.name] = e
    return list(entries.values())


def _merge(parts: list[xr.Dataset], batch_dim: str | None, reduce: Sequence[str]) -> xr.Dataset:
    if len(parts) == 1:
        return parts[0]
    if batch_dim is not None and batch_dim not in reduce:
        return xr.concat(parts, dim=batch_dim, coords="minimal", compat="override")
    total = parts[0]
    for p in parts[1:]:
        a, b = xr.align(total, p, join="exact")
        total = (a + b).assign_attrs(total.attrs)
    return total


def score(
    fcst: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    *,
    metrics: str | Iterable[str],
    thresholds: float | Sequence[float] | None = None,
    windows: int | Sequence[int] | None = None,
    pool: int | Sequence[int] | None = None,
    preserve_dims: str | Iterable[Hashable] | None = DEFAULT_PRESERVE,
    reduce_dims: str | Iterable[Hashable] | None = None,
    weights: str | xr.DataArray | None = None,
    data_range: float | None = None,
    batch_init_times: int | None = None,
    variable: str | None = None,
    compute: bool = True,
) -> xr.Dataset:
    """Score a forecast against observations: a tidy Dataset with one variable per metric.

    The forecast ``(init_time, lead_time, [channel], y, x)`` is matched to observations
    ``(time, [channel], y, x)`` on ``valid_time`` (lazily); forecasts and observations with
    the same dims are matched by label. Every metric is computed from mergeable sums.

    Parameters
    ----------
    fcst, obs : DataArray or Dataset
        Forecast and observations (a Dataset must hold one variable or name ``variable``).
    metrics : str or sequence of str
        Registered metric names (see :func:`list_metrics`), e.g. ``["csi", "mse"]``.
        Unknown names raise an error listing the valid ones. Note ``"bias"`` is the
        *frequency* bias (categorical); the additive bias is ``"mean_error"`` (``"me"``).
    thresholds : float or sequence of float, optional
        Event thresholds (``value >= threshold``) for categorical scores and FSS, in the
        data's units. 0 is a valid threshold. Adds a ``threshold`` dim.
    windows : int or sequence of int, optional
        FSS window sizes in pixels (>= 1). Adds a ``window`` dim to ``fss``.
    pool : int or sequence of int, optional
        Max-pool sizes (kernel = stride) for categorical scores; adds a ``pool`` dim
        (1 = native resolution), e.g. ``pool=[1, 4, 16]`` for SEVIR pooled CSI.
        ``thresholds``, ``windows``, ``pool`` and ``data_range`` are ignored by metrics
        that do not use them.
    preserve_dims : str or sequence of str, optional
        Dims kept in the result (default ``(LEAD_TIME_DIM,)``, ignored when absent); every
        other dim is reduced. ``()`` or None reduces everything.
    reduce_dims : str or sequence of str, optional
        Alternatively, the dims to reduce (all others kept); overrides ``preserve_dims``.
    weights : None, "latitude" or DataArray, optional
        Weights for continuous scores; ``"latitude"`` uses cos(lat) normalised to mean 1.
    data_range : float, optional
        Data range for SSIM/PSNR (else taken from ``valid_range`` attrs).
    batch_init_times : int, optional
        Stream over blocks of this many ``init_time`` values (``time`` for forecasts
        without lead times), loading one block at a time. Default: Dask inputs are reduced
        by Dask in one pass (chunk by chunk); other inputs (NumPy or lazily indexed files)
        are streamed in blocks of about 64 MiB.
    variable : str, optional
        Variable to score when ``fcst``/``obs`` are Datasets with several variables.
    compute : bool
        With Dask inputs and no batching, ``False`` returns the lazy (Dask-backed) result.

    Returns
    -------
    Dataset
        One variable per metric (``units``/``long_name`` attrs), with dims such as
        ``threshold``, ``window``, ``pool`` and the preserved dims.

    Raises
    ------
    UnknownNameError
        Unknown metric name (the message lists the valid names and suggests the closest).
    DataValidationError
        Misaligned grids or missing valid times, thresholds missing or outside the data's
        ``valid_range``, non-positive window/pool sizes, dims that do not exist.

    Notes
    -----
    NaN policy: a pixel that is NaN in either field is excluded from every count and sum
    (see the metric modules for FSS/SSIM/PSNR details).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2024-01-01", periods=8, freq="5min")
    >>> rng = np.random.default_rng(0)
    >>> obs = xr.DataArray(rng.gamma(0.5, 2.0, (8, 16, 16)), dims=("time", "y", "x"),
    ...                    coords={"time": t}, attrs={"units": "mm h-1"})
    >>> lead = pd.to_timedelta([5, 10], unit="min")
    >>> fc = xr.DataArray(np.stack([obs.values[i:i + 6] for i in range(2)], axis=1),
    ...                   dims=("init_time", "lead_time", "y", "x"),
    ...                   coords={"init_time": t[:6], "lead_time": lead})
    >>> res = score(fc, obs, metrics=["csi", "mse"], thresholds=[0.1, 1.0])
    >>> res.csi.dims, res.mse.dims
    (('threshold', 'lead_time'), ('lead_time',))
    """
    fc0 = as_dataarray(fcst, "fcst", variable)
    ob0 = as_dataarray(obs, "obs", variable)
    entries = _resolve_metrics(metrics)
    families = {e.meta["family"] for e in entries}

    thr: list[float] | None = None
    if families & {"contingency", "fss"}:
        if thresholds is None:
            names = [e.name for e in entries if e.meta["family"] in ("contingency", "fss")]
            hint = (
                " ('bias' is the frequency bias; for the additive bias use 'mean_error')"
                if "frequency_bias" in names
                else ""
            )
            raise DataValidationError(
                f"metrics {names} need thresholds=[...] (event: value >= threshold, in the "
                f"data's units; 0 is a valid threshold){hint}."
            )
        thr, _ = as_thresholds(thresholds, "threshold")
        check_threshold_range(thr, fc0, ob0)
    win = None
    if "fss" in families:
        if windows is None:
            raise DataValidationError("fss needs windows=[...] (window sizes in pixels, >= 1).")
        win = as_positive_ints(windows, "window sizes")
    pools = None
    if pool is not None and "contingency" in families:
        pools = as_positive_ints(pool, "pool sizes")
    rng = None
    if families & {"ssim", "psnr"}:
        rng = resolve_data_range(data_range, fc0, ob0)
    w = _weights(fc0, weights) if weights is not None else None

    if reduce_dims is not None:
        reduce = resolve_reduce_dims(fc0.dims, reduce_dims, None)
    else:
        default = (
            preserve_dims is not None
            and tuple([preserve_dims] if isinstance(preserve_dims, str) else preserve_dims)
            == DEFAULT_PRESERVE
        )
        reduce = resolve_reduce_dims(
            fc0.dims, None, preserve_dims or (), ignore_missing_preserve=default
        )

    def stats_of(fc: xr.DataArray, ob: xr.DataArray) -> dict[str, xr.Dataset]:
        out: dict[str, xr.Dataset] = {}
        if "contingency" in families:
            out["contingency"] = pooled_counts(fc, ob, thr, reduce, pools)  # type: ignore[arg-type]
        if "continuous" in families:
            out["continuous"] = error_stats(fc, ob, reduce, w)
        if "fss" in families:
            out["fss"] = fss_stats(fc, ob, thr, win, reduce)  # type: ignore[arg-type]
        for kind in ("ssim", "psnr"):
            if kind in families:
                out[kind] = frame_stats(kind, fc, ob, reduce, rng)  # type: ignore[arg-type]
        return out

    batch_dim = (
        INIT_TIME_DIM if INIT_TIME_DIM in fc0.dims else (TIME_DIM if TIME_DIM in fc0.dims else None)
    )
    if batch_init_times is not None:
        (batch_init_times,) = as_positive_ints(batch_init_times, "batch_init_times")
    lazy = batch_init_times is None and (is_dask(fc0) or is_dask(ob0))
    if lazy:
        fc, ob = align(fc0, ob0, order_with_forecast=True)
        stats = stats_of(fc, ob)
        if compute:
            import dask

            keys = list(stats)
            stats = dict(zip(keys, dask.compute(*[stats[k] for k in keys]), strict=True))
    else:
        if batch_dim is None:
            blocks = [slice(None)]
        else:
            n = fc0.sizes[batch_dim]
            if batch_init_times is None:
                per = max(1, fc0.dtype.itemsize * fc0.size // max(n, 1))
                batch_init_times = max(1, int(BLOCK_BYTES // per))
            blocks = [slice(i, i + batch_init_times) for i in range(0, n, batch_init_times)]
        parts: dict[str, list[xr.Dataset]] = {}
        for sl in blocks:
            fb = fc0 if batch_dim is None else fc0.isel({batch_dim: sl})
            fb, obb = align(fb, ob0, load=True)
            for k, v in stats_of(fb, obb).items():
                parts.setdefault(k, []).append(v.compute())
            del fb, obb
        stats = {k: _merge(v, batch_dim, reduce) for k, v in parts.items()}

    wrapped = {k: _FAMILY_CLASS[k](v) for k, v in stats.items()}
    result = xr.Dataset()
    for e in entries:
        result[e.name] = e.meta["finalize"](wrapped[e.meta["family"]])
    result.attrs = {
        "event_definition": "value >= threshold",
        "nan_policy": "pixels that are NaN in either field are excluded",
        "metrics": ", ".join(e.name for e in entries),
    }
    if compute and "contingency" in stats:
        _warn_no_events(stats["contingency"], fc0, ob0)
    return result


def _warn_no_events(counts: xr.Dataset, fc: xr.DataArray, ob: xr.DataArray) -> None:
    events = (counts.hits + counts.misses + counts.false_alarms).sum()
    if int(events) == 0 and int((counts.correct_negatives).sum()) > 0:
        thr = counts[THRESHOLD_DIM].values
        units = fc.attrs.get("units", ob.attrs.get("units", "unknown"))
        warnings.warn(
            f"no forecast or observed value reaches any threshold (smallest "
            f"{float(np.min(thr))}); categorical scores are NaN. Check the thresholds are in "
            f"the data's units (units={units!r}).",
            StgeoWarning,
            stacklevel=3,
        )

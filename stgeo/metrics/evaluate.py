"""``score``: streaming evaluation of a (lazy) forecast against (lazy) observations.

Scores are computed from mergeable sums (contingency counts, error sums, FSS sums, per-frame
sums), so the result of streaming over blocks of ``init_time`` - or of Dask reducing chunk by
chunk - is identical to scoring everything at once, while memory stays bounded.

``score`` knows no metric by name: every requested metric names its registered
:class:`~stgeo.metrics.MetricFamily`; the settings those families use are validated, each
family's sums are computed once per block and merged, and every metric is finalized from its
family's sums (see :mod:`stgeo.metrics.family`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._registry import METRIC_FAMILIES, METRICS, Entry
from ..conventions import (
    INIT_TIME_DIM,
    LEAD_TIME_DIM,
    TIME_DIM,
    check_bool,
    check_time_values,
    check_units,
)
from ..errors import DataValidationError, StgeoTypeError

# importing the metric modules registers their families and metrics
from . import categorical, continuous, image, spatial  # noqa: F401
from ._base import (
    align,
    as_dataarray,
    as_positive_ints,
    as_thresholds,
    check_threshold_range,
    is_dask,
    resolve_reduce_dims,
)
from .continuous import _weights
from .family import MetricFamily, ScoreSettings
from .image import resolve_data_range

__all__ = ["list_metrics", "score"]

DEFAULT_PRESERVE = (LEAD_TIME_DIM,)
BLOCK_BYTES = 64 * 2**20  # target size of one forecast block on the eager streaming path


def list_metrics(pattern: str = "*") -> list[str]:
    """Names of the registered metrics matching a shell-style pattern.

    Examples
    --------
    >>> list_metrics("csi*")
    ['csi', 'csi_m']
    """
    return METRICS.list(pattern)


def _resolve_metrics(metrics: str | Iterable[str]) -> list[Entry[Any]]:
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
            raise DataValidationError(
                f"metric {e.name!r} cannot be used by score(): it was registered without a "
                "family; register it with stgeo.register_metric(name, func, family=..., "
                "finalize=...)."
            )
        entries[e.name] = e
    return list(entries.values())


# -- settings: each resolver validates one score() argument for the families declaring it ---
Resolver = Callable[[Any, xr.DataArray, xr.DataArray, list[str]], Any]


def _thresholds(value: Any, fc: xr.DataArray, ob: xr.DataArray, names: list[str]) -> Any:
    if value is None:
        hint = (
            " ('bias' is the frequency bias; for the additive bias use 'mean_error')"
            if "frequency_bias" in names
            else ""
        )
        raise DataValidationError(
            f"metrics {names} need thresholds=[...] (event: value >= threshold, in the "
            f"data's units; 0 is a valid threshold){hint}."
        )
    thr, _ = as_thresholds(value, "threshold")
    check_threshold_range(thr, fc, ob)
    return thr


def _windows(value: Any, fc: xr.DataArray, ob: xr.DataArray, names: list[str]) -> Any:
    if value is None:
        need = "needs" if len(names) == 1 else "need"
        raise DataValidationError(
            f"{' and '.join(names)} {need} windows=[...] (window sizes in pixels, >= 1)."
        )
    return as_positive_ints(value, "window sizes")


_RESOLVERS: dict[str, Resolver] = {
    "thresholds": _thresholds,
    "windows": _windows,
    "pool": lambda v, fc, ob, names: None if v is None else as_positive_ints(v, "pool sizes"),
    "data_range": lambda v, fc, ob, names: resolve_data_range(v, fc, ob),
    "weights": lambda v, fc, ob, names: _weights(fc, v),
}


def _reduce_dims(
    fc: xr.DataArray,
    preserve_dims: str | Iterable[Hashable] | None,
    reduce_dims: str | Iterable[Hashable] | None,
) -> list[str]:
    if reduce_dims is not None:
        # preserve_dims left at its default (or None) means "not given"; anything else clashes
        given = None if preserve_dims is DEFAULT_PRESERVE else preserve_dims
        return resolve_reduce_dims(fc.dims, reduce_dims, given)
    default = (
        preserve_dims is not None
        and tuple([preserve_dims] if isinstance(preserve_dims, str) else preserve_dims)
        == DEFAULT_PRESERVE
    )
    return resolve_reduce_dims(fc.dims, None, preserve_dims or (), ignore_missing_preserve=default)


def _settings(
    entries: list[Entry[Any]],
    families: list[MetricFamily],
    fc: xr.DataArray,
    ob: xr.DataArray,
    values: dict[str, Any],
    reduce: list[str],
) -> ScoreSettings:
    """Validate the settings the requested families declare (in :data:`SETTINGS` order)."""
    resolved: dict[str, Any] = {}
    for setting, resolve in _RESOLVERS.items():
        users = {f.name for f in families if setting in f.settings}
        if users:
            names = [e.name for e in entries if e.meta["family"] in users]
            resolved[setting] = resolve(values[setting], fc, ob, names)
    return ScoreSettings(reduce=tuple(reduce), **resolved)


# -- sums: every requested family's mergeable sums, lazily or streamed over blocks ----------
def _family_sums(
    families: list[MetricFamily], fc: xr.DataArray, ob: xr.DataArray, settings: ScoreSettings
) -> dict[str, xr.Dataset]:
    return {f.name: f.sums(fc, ob, settings) for f in families}


def _lazy_sums(
    families: list[MetricFamily],
    fc0: xr.DataArray,
    ob0: xr.DataArray,
    settings: ScoreSettings,
    compute: bool,
) -> tuple[dict[str, xr.Dataset], dict[str, int] | None]:
    fc, ob = align(fc0, ob0, order_with_forecast=True)
    stats = _family_sums(families, fc, ob, settings)
    counts = None
    if compute:
        import dask

        keys = list(stats)
        *done, counts = dask.compute(*[stats[k] for k in keys], _value_counts(fc, ob))
        stats = dict(zip(keys, done, strict=True))
    return stats, counts


# -- the values scored: NaN is "no data" (excluded), infinity and all-NaN are refused -------
def _value_counts(fc: xr.DataArray, ob: xr.DataArray) -> dict[str, Any]:
    """NaN and infinite counts of the aligned fields (lazy for Dask arrays), and their size."""
    out: dict[str, Any] = {"size": fc.size}
    for who, a in (("forecast", fc), ("observations", ob)):
        data = a.data
        floating = np.issubdtype(a.dtype, np.floating)
        out[f"{who} nan"] = np.isnan(data).sum() if floating else 0
        out[f"{who} inf"] = np.isinf(data).sum() if floating else 0
    return out


def _add_counts(total: dict[str, int] | None, part: dict[str, Any]) -> dict[str, int]:
    part = {k: int(v) for k, v in part.items()}
    return part if total is None else {k: total[k] + part[k] for k in total}


def _check_counts(counts: dict[str, int] | None, *, nan: bool = True) -> None:
    """Refuse infinite values, and fields with nothing to score (all NaN), with the counts."""
    if counts is None:
        return
    size = counts["size"]
    for who in ("forecast", "observations"):
        n_inf, n_nan = counts[f"{who} inf"], counts[f"{who} nan"]
        if n_inf:
            raise DataValidationError(
                f"the {who} hold {n_inf} infinite value(s) among the {size} values scored "
                "(observations counted once per forecast they are matched to); infinity "
                "is no measurement (it would count as an event at every threshold and make "
                "errors infinite). Mark missing data as NaN (excluded from every score), e.g. "
                "da = da.where(numpy.isfinite(da))."
            )
        if nan and size and n_nan == size:
            raise DataValidationError(
                f"the {who} are all NaN ({size} values scored): nothing to score. Check the "
                "data (fill value, mask, time selection) or replace no-data with a value "
                "(e.g. da.fillna(0) if no-data means none)."
            )


def _check_inputs(fc: xr.DataArray, ob: xr.DataArray, variable: Any, compute: Any) -> None:
    """Types, dtypes, time types and units of ``score``'s inputs, before any computation."""
    if variable is not None and not isinstance(variable, str):
        raise StgeoTypeError(f"variable must be a name (str), got {variable!r}")
    check_bool(compute, "compute")
    for who, a in (("forecast", fc), ("observations", ob)):
        dt = a.dtype
        if np.iscomplexobj(a) or not (np.issubdtype(dt, np.number) or dt == np.bool_):
            raise DataValidationError(
                f"the {who} have dtype {dt}; scores need real numbers. Convert them, e.g. "
                "da.astype('float32') (after checking what the values are)."
            )
    if LEAD_TIME_DIM in fc.dims and TIME_DIM in ob.coords:
        if ob.sizes[TIME_DIM] == 0:
            raise DataValidationError("the observations' time axis is empty: nothing to score")
        check_time_values(ob[TIME_DIM], "the observations' time coordinate")
    if INIT_TIME_DIM in fc.coords:
        check_time_values(fc[INIT_TIME_DIM], "the forecast's init_time coordinate")
    check_units(
        ob.attrs.get("units"),
        fc.attrs.get("units"),
        what="the observations",
        expected_what="the forecast",
        name=str(ob.name if ob.name is not None else "obs"),
    )


def _blocks(fc0: xr.DataArray, batch_dim: str | None, per_block: int | None) -> list[slice]:
    if batch_dim is None:
        return [slice(None)]
    n = fc0.sizes[batch_dim]
    if per_block is None:
        per = max(1, fc0.dtype.itemsize * fc0.size // max(n, 1))
        per_block = max(1, int(BLOCK_BYTES // per))
    return [slice(i, i + per_block) for i in range(0, n, per_block)]


def _streamed_sums(
    families: list[MetricFamily],
    fc0: xr.DataArray,
    ob0: xr.DataArray,
    settings: ScoreSettings,
    batch_dim: str | None,
    per_block: int | None,
) -> tuple[dict[str, xr.Dataset], dict[str, int] | None]:
    parts: dict[str, list[xr.Dataset]] = {}
    counts: dict[str, int] | None = None
    for sl in _blocks(fc0, batch_dim, per_block):
        fb = fc0 if batch_dim is None else fc0.isel({batch_dim: sl})
        fb, obb = align(fb, ob0, load=True)
        counts = _add_counts(counts, _value_counts(fb, obb))
        _check_counts(counts, nan=False)  # infinity: refused before any sum overflows
        for k, v in _family_sums(families, fb, obb, settings).items():
            parts.setdefault(k, []).append(v.compute())
        del fb, obb
    return {k: _merge(v, batch_dim, settings.reduce) for k, v in parts.items()}, counts


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
        ``thresholds``, ``windows``, ``pool``, ``weights`` and ``data_range`` are
        validated only when a requested metric's family uses them, and ignored otherwise
        (see :class:`~stgeo.metrics.MetricFamily`).
    preserve_dims : str or sequence of str, optional
        Dims kept in the result (default ``(LEAD_TIME_DIM,)``, ignored when absent); every
        other dim is reduced. ``()`` or None reduces everything.
    reduce_dims : str or sequence of str, optional
        Alternatively, the dims to reduce (all others kept); giving ``preserve_dims`` too
        is an error.
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
        ``valid_range``, non-positive window/pool sizes, dims that do not exist; units of
        the observations that differ in meaning from the forecast's
        (:func:`stgeo.conventions.check_units`); non-real dtypes; observation times that
        are not datetime64; infinite values or an all-NaN field (with their counts; not
        checked with ``compute=False`` on Dask inputs).
    StgeoTypeError
        Wrongly typed arguments (``thresholds=True``, ``variable=3``, ``compute="yes"``).

    Notes
    -----
    NaN policy: a pixel that is NaN in either field is excluded from every count and sum
    (see the metric modules for FSS/SSIM/PSNR details). Infinity is not no-data: it is
    refused, as is a field with nothing but NaN.

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
    _check_inputs(fc0, ob0, variable, compute)
    entries = _resolve_metrics(metrics)
    families = [METRIC_FAMILIES.get(n) for n in dict.fromkeys(e.meta["family"] for e in entries)]
    values = {
        "thresholds": thresholds,
        "windows": windows,
        "pool": pool,
        "data_range": data_range,
        "weights": weights,
    }
    reduce = _reduce_dims(fc0, preserve_dims, reduce_dims)
    settings = _settings(entries, families, fc0, ob0, values, reduce)

    if batch_init_times is not None:
        (batch_init_times,) = as_positive_ints(batch_init_times, "batch_init_times")
    if batch_init_times is None and (is_dask(fc0) or is_dask(ob0)):
        stats, counts = _lazy_sums(families, fc0, ob0, settings, compute)
    else:
        batch_dim = next((d for d in (INIT_TIME_DIM, TIME_DIM) if d in fc0.dims), None)
        stats, counts = _streamed_sums(families, fc0, ob0, settings, batch_dim, batch_init_times)
    _check_counts(counts)
    return _finalize(entries, families, stats, fc0, ob0, compute)


def _finalize(
    entries: list[Entry[Any]],
    families: list[MetricFamily],
    stats: dict[str, xr.Dataset],
    fc: xr.DataArray,
    ob: xr.DataArray,
    compute: bool,
) -> xr.Dataset:
    """One variable per requested metric from its family's merged sums; the families' checks."""
    sums = {f.name: f.container(stats[f.name]) for f in families}
    result = xr.Dataset()
    for e in entries:
        result[e.name] = e.meta["finalize"](sums[e.meta["family"]])
    result.attrs = {
        "event_definition": "value >= threshold",
        "nan_policy": "pixels that are NaN in either field are excluded",
        "metrics": ", ".join(e.name for e in entries),
    }
    for f in families:
        if compute and f.check is not None:
            f.check(stats[f.name], fc, ob)
    return result

"""Categorical (threshold) scores, all derived from a :class:`ContingencyTable`.

Every function has the signature ``score(fcst, obs, *, threshold, reduce_dims=None,
preserve_dims=None)``. An event is ``value >= threshold`` (0 is a real threshold); a pixel
that is NaN in either field is excluded from every count. A scalar threshold gives a scalar
``threshold`` coordinate, a sequence a ``threshold`` dim. Scores whose denominator is 0 are
NaN (0/0 is undefined). With H hits, M misses, F false alarms, N correct negatives:

=================  ============================================  ============  =======
score              formula                                       range         perfect
=================  ============================================  ============  =======
csi                H / (H + M + F)                               [0, 1]        1
pod                H / (H + M)                                   [0, 1]        1
far                F / (H + F)                                   [0, 1]        0
sr                 H / (H + F) = 1 - FAR                         [0, 1]        1
frequency_bias     (H + F) / (H + M)                             [0, inf)      1
hss                2(HN - MF) / ((H+M)(M+N) + (H+F)(F+N))        [-1, 1]       1
ets                (H - Hr) / (H + M + F - Hr),                  [-1/3, 1]     1
                   Hr = (H + M)(H + F) / (H + M + F + N)
csi_m              mean of csi over the thresholds               [0, 1]        1
=================  ============================================  ============  =======
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from ..errors import StgeoWarning
from ._base import THRESHOLD_DIM
from .contingency import ContingencyTable, contingency_table, pooled_counts
from .family import MetricFamily, ScoreSettings, register_metric, register_metric_family

__all__ = [
    "correct_negatives",
    "csi",
    "csi_m",
    "ets",
    "false_alarms",
    "frequency_bias",
    "hits",
    "hss",
    "misses",
    "pod",
    "sr",
]

Dims = str | Iterable[Hashable] | None


def _score(name, fcst, obs, threshold, reduce_dims, preserve_dims) -> xr.DataArray:
    table = contingency_table(
        fcst, obs, threshold=threshold, reduce_dims=reduce_dims, preserve_dims=preserve_dims
    )
    out = getattr(table, name)()
    if np.ndim(threshold) == 0 and THRESHOLD_DIM in out.dims:
        out = out.squeeze(THRESHOLD_DIM)
    return out


def csi(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Critical success index (threat score).

    ``CSI = H / (H + M + F)``; range [0, 1], perfect score 1, NaN when there is no event in
    either field. Event: ``value >= threshold``; NaN pixels excluded.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> float(csi(f, o, threshold=1.0))
    0.3333333333333333
    """
    return _score("csi", fcst, obs, threshold, reduce_dims, preserve_dims)


def pod(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Probability of detection (hit rate).

    ``POD = H / (H + M)``; range [0, 1], perfect score 1, NaN when nothing was observed.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> float(pod(f, o, threshold=1.0))
    0.5
    """
    return _score("pod", fcst, obs, threshold, reduce_dims, preserve_dims)


def far(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """False alarm ratio.

    ``FAR = F / (H + F)``; range [0, 1], perfect score 0, NaN when no event was forecast.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> float(far(f, o, threshold=1.0))
    0.5
    """
    return _score("far", fcst, obs, threshold, reduce_dims, preserve_dims)


def sr(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Success ratio.

    ``SR = 1 - FAR = H / (H + F)``; range [0, 1], perfect score 1, NaN when no event was
    forecast.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> float(sr(f, o, threshold=1.0))
    0.5
    """
    return _score("sr", fcst, obs, threshold, reduce_dims, preserve_dims)


def frequency_bias(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Frequency bias.

    ``BIAS = (H + F) / (H + M)``; range [0, inf), perfect score 1 (>1 over-forecasting),
    NaN when nothing was observed.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 3.0], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> float(frequency_bias(f, o, threshold=1.0))
    1.5
    """
    return _score("frequency_bias", fcst, obs, threshold, reduce_dims, preserve_dims)


def hss(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Heidke skill score.

    ``HSS = 2(HN - MF) / ((H + M)(M + N) + (H + F)(F + N))``; range [-1, 1], perfect
    score 1, 0 for a random forecast; NaN when the denominator is 0.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.0], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 3.0, 0.0], dims="x")
    >>> float(hss(f, o, threshold=1.0))
    1.0
    """
    return _score("hss", fcst, obs, threshold, reduce_dims, preserve_dims)


def ets(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Equitable threat score (Gilbert skill score).

    ``ETS = (H - Hr) / (H + M + F - Hr)`` with ``Hr = (H + M)(H + F) / (H + M + F + N)``
    the hits expected by chance; range [-1/3, 1], perfect score 1, NaN for 0/0.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> float(ets(f, o, threshold=1.0))
    0.0
    """
    return _score("ets", fcst, obs, threshold, reduce_dims, preserve_dims)


def csi_m(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: Sequence[float],
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """CSI-M: the arithmetic mean of the CSIs at several thresholds (SEVIR tables).

    Counts are pooled over the reduced dims per threshold, CSI computed per threshold, then
    averaged. Range [0, 1], perfect score 1; NaN if any threshold's CSI is undefined.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 20.0, 80.0, 80.0], dims="x")
    >>> o = xr.DataArray([0.0, 20.0, 80.0, 0.0], dims="x")
    >>> float(csi_m(f, o, threshold=[16, 74]))  # (2/3 + 1/2) / 2
    0.5833333333333333
    """
    table = contingency_table(
        fcst, obs, threshold=threshold, reduce_dims=reduce_dims, preserve_dims=preserve_dims
    )
    return table.csi_m()


def _count_function(field: str, meaning: str):
    def count(
        fcst: xr.DataArray,
        obs: xr.DataArray,
        *,
        threshold: float | Sequence[float],
        reduce_dims: Dims = None,
        preserve_dims: Dims = None,
    ) -> xr.DataArray:
        table = contingency_table(
            fcst, obs, threshold=threshold, reduce_dims=reduce_dims, preserve_dims=preserve_dims
        )
        out = table.data[field]
        if np.ndim(threshold) == 0:
            out = out.squeeze(THRESHOLD_DIM)
        return out

    count.__name__ = count.__qualname__ = field
    count.__doc__ = f"""Number of {meaning} (a contingency-table count).

    Event: ``value >= threshold``; NaN pixels excluded. Range [0, number of pixels].

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> int({field}(f, o, threshold=1.0))
    1
    """
    return count


hits = _count_function("hits", "hits (event forecast and observed)")
misses = _count_function("misses", "misses (event observed, not forecast)")
false_alarms = _count_function("false_alarms", "false alarms (event forecast, not observed)")
correct_negatives = _count_function(
    "correct_negatives", "correct negatives (event neither forecast nor observed)"
)


# -- registration: the contingency family and its metrics (for stgeo.metrics.score) ----------
def _contingency_sums(fc: xr.DataArray, ob: xr.DataArray, s: ScoreSettings) -> xr.Dataset:
    return pooled_counts(fc, ob, s.thresholds, s.reduce, s.pool)  # type: ignore[arg-type]


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
            stacklevel=4,  # check <- _finalize <- score <- the caller of score
        )


register_metric_family(
    MetricFamily(
        "contingency",
        sums=_contingency_sums,
        container=ContingencyTable,
        settings=("thresholds", "pool"),
        check=_warn_no_events,
        description="contingency-table scores (hits, misses, false alarms, correct negatives)",
    ),
    overwrite=True,
)
for _name, _aliases in {
    "csi": ["ts", "threat_score", "critical_success_index"],
    "pod": ["hit_rate", "probability_of_detection"],
    "far": ["false_alarm_ratio"],
    "sr": ["success_ratio"],
    "frequency_bias": ["bias", "fbias", "freq_bias"],
    "hss": ["heidke_skill_score"],
    "ets": ["gss", "equitable_threat_score", "gilbert_skill_score"],
    "csi_m": ["csim", "csi-m", "mean_csi"],
}.items():
    register_metric(
        _name,
        globals()[_name],
        family="contingency",
        finalize=getattr(ContingencyTable, _name),
        aliases=_aliases,
        overwrite=True,
    )
for _count in ("hits", "misses", "false_alarms", "correct_negatives"):
    register_metric(
        _count,
        globals()[_count],
        family="contingency",
        finalize=lambda t, _c=_count: t.data[_c].rename(_c),
        overwrite=True,
    )

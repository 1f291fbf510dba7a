"""Verification scores for gridded forecasts: xarray-native, lazy and mergeable.

Metrics are counts first: categorical scores derive from a :class:`ContingencyTable`
(hits, misses, false alarms, correct negatives), continuous scores from :class:`ErrorSums`,
FSS from :class:`FSSSums`, SSIM/PSNR from :class:`FrameSums`. All of them add up with ``+``,
so scores streamed over batches, chunks or Dask workers equal the scores of the whole.
Each set of sums is a registered :class:`MetricFamily`; :func:`register_metric` adds a metric
(of an existing or a new family) that :func:`score` computes like the built-in ones.

Conventions: an event is ``value >= threshold`` (0 is a real threshold); a pixel that is NaN
in either field is excluded; 0/0 scores are NaN. Every metric returns a DataArray with
``units`` and ``long_name`` attrs.

Examples
--------
>>> import numpy as np, xarray as xr
>>> import stgeo.metrics as sm
>>> f = xr.DataArray(np.array([[0.0, 2.0], [3.0, 0.5]]), dims=("y", "x"))
>>> o = xr.DataArray(np.array([[0.0, 2.5], [0.0, 1.0]]), dims=("y", "x"))
>>> float(sm.csi(f, o, threshold=1.0))
0.3333333333333333
>>> sm.score(f, o, metrics=["pod", "mae"], thresholds=[1.0]).pod.values.tolist()
[0.5]
"""

from ._base import align
from .categorical import (
    correct_negatives,
    csi,
    csi_m,
    ets,
    false_alarms,
    far,
    frequency_bias,
    hits,
    hss,
    misses,
    pod,
    sr,
)
from .contingency import ContingencyTable, contingency_table
from .continuous import (
    ErrorSums,
    error_sums,
    latitude_weights,
    mae,
    mae_frame,
    mean_error,
    mse,
    mse_frame,
    rmse,
)
from .evaluate import list_metrics, score
from .family import (
    MetricFamily,
    ScoreSettings,
    get_metric_family,
    register_metric,
    register_metric_family,
)
from .image import FrameSums, psnr, ssim
from .sevir import SEVIR_THRESHOLDS, sevir_scores
from .spatial import FSSSums, fss, fss_sums, max_pool

__all__ = [
    "SEVIR_THRESHOLDS",
    "ContingencyTable",
    "ErrorSums",
    "FSSSums",
    "FrameSums",
    "MetricFamily",
    "ScoreSettings",
    "align",
    "contingency_table",
    "correct_negatives",
    "csi",
    "csi_m",
    "error_sums",
    "ets",
    "false_alarms",
    "far",
    "frequency_bias",
    "fss",
    "fss_sums",
    "get_metric_family",
    "hits",
    "hss",
    "latitude_weights",
    "list_metrics",
    "mae",
    "mae_frame",
    "max_pool",
    "mean_error",
    "misses",
    "mse",
    "mse_frame",
    "pod",
    "psnr",
    "register_metric",
    "register_metric_family",
    "rmse",
    "score",
    "sevir_scores",
    "sr",
    "ssim",
]

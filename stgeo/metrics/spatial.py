"""Neighbourhood (spatial) verification: fractions skill score and max-pooling.

FSS (Roberts & Lean 2008) compares, for a threshold ``t`` and a square window of ``w``
pixels, the fraction of event pixels (``value >= t``) around every grid point:

    FSS = 1 - sum (P_f - P_o)^2 / sum (P_f^2 + P_o^2)

with fractions from a ``w x w`` moving average of the binary fields, zero-padded at the
domain edge (as in pysteps). The sums are accumulated over every reduced frame, so FSS
merges exactly across batches (:class:`FSSSums`).

NaN policy: a pixel that is NaN in either field is a non-event in *both* binary fields
(it can neither hit nor miss); it still counts in the window's area. For common masks this is
exactly pysteps' treatment (which sets NaN to a non-event in each field).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from ..errors import DataValidationError
from ._base import (
    THRESHOLD_DIM,
    MergeableSums,
    align,
    as_positive_ints,
    as_thresholds,
    bare,
    finish,
    require_spatial_dims,
    resolve_reduce_dims,
    restore_coords,
    safe_divide,
)
from .family import MetricFamily, ScoreSettings, register_metric, register_metric_family

__all__ = ["FSSSums", "fss", "fss_sums", "max_pool"]

WINDOW_DIM = "window"
_FSS_STATS = ("sum_fct_sq", "sum_obs_sq", "sum_fct_obs")


def max_pool(da: xr.DataArray, size: int) -> xr.DataArray:
    """Max-pool the two spatial dims with kernel = stride = ``size`` (edges trimmed).

    A NaN anywhere in a block makes the pooled value NaN (so it is excluded from counts).
    Works lazily on Dask arrays. Used for the pooled CSI of SEVIR papers (PreDiff/DiffCast).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.arange(16.0).reshape(4, 4), dims=("y", "x"))
    >>> max_pool(da, 2).values.tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    (size,) = as_positive_ints(size, "pool size")
    if size == 1:
        return da
    sd = require_spatial_dims(da, "max pooling")
    for d in sd:
        if da.sizes[d] < size:
            raise DataValidationError(
                f"pool size {size} is larger than the grid ({d!r} has {da.sizes[d]} points)."
            )
    keep = [c for c in da.coords if not (set(da[c].dims) & set(sd))]
    da = da.drop_vars([c for c in da.coords if c not in keep])
    blocks = da.coarsen({sd[0]: size, sd[1]: size}, boundary="trim").construct(
        {sd[0]: (sd[0], "_pool_y"), sd[1]: (sd[1], "_pool_x")}
    )
    return blocks.max(["_pool_y", "_pool_x"], skipna=False)


def _fss_frame_sums(
    f: np.ndarray, o: np.ndarray, *, thresholds: Sequence[float], windows: Sequence[int]
) -> np.ndarray:
    """Per-frame FSS sums; input (..., H, W), output (..., n_thr, n_win, 3).

    Frames are processed one at a time so temporaries stay the size of one frame.
    """
    from scipy.ndimage import uniform_filter

    lead_shape = f.shape[:-2]
    f2 = f.reshape(-1, *f.shape[-2:])
    o2 = o.reshape(-1, *o.shape[-2:])
    out = np.empty((f2.shape[0], len(thresholds), len(windows), 3), dtype=np.float64)
    for k in range(f2.shape[0]):
        fk, ok = f2[k], o2[k]
        valid = ~(np.isnan(fk) | np.isnan(ok))
        for i, t in enumerate(thresholds):
            bf = ((fk >= t) & valid).astype(np.float64)
            bo = ((ok >= t) & valid).astype(np.float64)
            for j, w in enumerate(windows):
                if w > 1:
                    sf = uniform_filter(bf, size=w, mode="constant", cval=0.0)
                    so = uniform_filter(bo, size=w, mode="constant", cval=0.0)
                else:
                    sf, so = bf, bo
                out[k, i, j, 0] = np.sum(sf * sf)
                out[k, i, j, 1] = np.sum(so * so)
                out[k, i, j, 2] = np.sum(sf * so)
    return out.reshape(*lead_shape, len(thresholds), len(windows), 3)


class FSSSums(MergeableSums):
    """Mergeable sums behind the fractions skill score.

    Variables ``sum_fct_sq`` (sum P_f^2), ``sum_obs_sq`` (sum P_o^2) and ``sum_fct_obs``
    (sum P_f P_o), with dims ``threshold``, ``window`` and the preserved dims.
    ``a + b`` merges; :meth:`fss` gives the score.
    """

    _fields = _FSS_STATS

    def fss(self) -> xr.DataArray:
        """FSS = 1 - (Sff - 2 Sfo + Soo) / (Sff + Soo); range [0, 1], perfect 1; 0/0 -> NaN."""
        d = self.data
        num = d.sum_fct_sq - 2 * d.sum_fct_obs + d.sum_obs_sq
        den = d.sum_fct_sq + d.sum_obs_sq
        out = 1 - safe_divide(num, den)
        return finish(
            out, "fss", "1", "fractions skill score", valid_range=[0.0, 1.0], perfect_score=1.0
        )


def fss_stats(
    fc: xr.DataArray,
    ob: xr.DataArray,
    thresholds: Sequence[float],
    windows: Sequence[int],
    reduce: Sequence[str],
) -> xr.Dataset:
    """FSS sums of aligned fields (lazy for Dask inputs)."""
    sd = require_spatial_dims(fc, "FSS")
    kept = [d for d in sd if d not in reduce]
    if kept:
        raise DataValidationError(
            f"FSS is a neighbourhood score: the spatial dims {list(sd)} must be reduced, "
            f"but {kept} would be preserved."
        )
    like, fc, ob = fc, bare(fc), bare(ob)
    if fc.chunks is not None:
        fc = fc.chunk({sd[0]: -1, sd[1]: -1})
        ob = ob.chunk({sd[0]: -1, sd[1]: -1})
    sums = xr.apply_ufunc(
        _fss_frame_sums,
        fc,
        ob,
        input_core_dims=[list(sd), list(sd)],
        output_core_dims=[[THRESHOLD_DIM, WINDOW_DIM, "stat"]],
        kwargs={"thresholds": list(thresholds), "windows": list(windows)},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={
            "output_sizes": {THRESHOLD_DIM: len(thresholds), WINDOW_DIM: len(windows), "stat": 3}
        },
    )
    other = [d for d in reduce if d not in sd]
    sums = sums.sum(other) if other else sums
    sums = sums.assign_coords(
        {THRESHOLD_DIM: list(map(float, thresholds)), WINDOW_DIM: list(map(int, windows))}
    )
    sums = restore_coords(sums.to_dataset(name="_s"), like)["_s"]
    ds = xr.Dataset({name: sums.isel(stat=i, drop=True) for i, name in enumerate(_FSS_STATS)})
    return ds.transpose(THRESHOLD_DIM, WINDOW_DIM, ...)


def fss_sums(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    window: int | Sequence[int],
    reduce_dims: str | Iterable[Hashable] | None = None,
    preserve_dims: str | Iterable[Hashable] | None = None,
) -> FSSSums:
    """Accumulate the mergeable :class:`FSSSums` of a forecast against observations.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.eye(8), dims=("y", "x"))
    >>> s = fss_sums(a, a, threshold=1, window=3)
    >>> float(s.fss().squeeze())
    1.0
    """
    fc, ob = align(fcst, obs)
    thr, _ = as_thresholds(threshold)
    win = as_positive_ints(window, "window sizes")
    reduce = resolve_reduce_dims(fc.dims, reduce_dims, preserve_dims)
    return FSSSums(fss_stats(fc, ob, thr, win, reduce))


def fss(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    window: int | Sequence[int],
    reduce_dims: str | Iterable[Hashable] | None = None,
    preserve_dims: str | Iterable[Hashable] | None = None,
) -> xr.DataArray:
    """Fractions skill score at thresholds and window sizes.

    ``FSS = 1 - sum (P_f - P_o)^2 / sum (P_f^2 + P_o^2)``, where ``P`` are fractions of
    pixels with ``value >= threshold`` in a ``window x window`` neighbourhood (zero-padded
    at the edges), summed over all pixels and reduced frames. Range [0, 1], perfect score 1;
    NaN when neither field has an event (0/0). NaN pixels: see the module docstring.

    Parameters
    ----------
    fcst, obs : DataArray
        Forecast and observations (aligned on valid time, see :func:`~stgeo.metrics.score`).
    threshold : float or sequence of float
        Event thresholds (``>=``); a sequence adds a ``threshold`` dim.
    window : int or sequence of int
        Window sizes in pixels (>= 1); a sequence adds a ``window`` dim.
    reduce_dims, preserve_dims : str or sequence of str, optional
        Dims to sum over, or to keep (the spatial dims are always reduced).

    Returns
    -------
    DataArray
        FSS with ``units="1"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.zeros((10, 10)), dims=("y", "x"))
    >>> o = f.copy()
    >>> f[4, 4] = 1.0
    >>> o[4, 5] = 1.0
    >>> [round(float(fss(f, o, threshold=1, window=w)), 3) for w in (1, 3)]
    [0.0, 0.667]
    """
    out = fss_sums(
        fcst,
        obs,
        threshold=threshold,
        window=window,
        reduce_dims=reduce_dims,
        preserve_dims=preserve_dims,
    ).fss()
    if np.ndim(threshold) == 0:
        out = out.squeeze(THRESHOLD_DIM)
    if np.ndim(window) == 0:
        out = out.squeeze(WINDOW_DIM)
    return out


# -- registration: the FSS family (for stgeo.metrics.score) ----------------------------------
def _fss_sums(fc: xr.DataArray, ob: xr.DataArray, s: ScoreSettings) -> xr.Dataset:
    return fss_stats(fc, ob, s.thresholds, s.windows, s.reduce)  # type: ignore[arg-type]


register_metric_family(
    MetricFamily(
        "fss",
        sums=_fss_sums,
        container=FSSSums,
        settings=("thresholds", "windows"),
        description="fractions skill score sums",
    ),
    overwrite=True,
)
register_metric(
    "fss",
    fss,
    family="fss",
    finalize=FSSSums.fss,
    aliases=["fractions_skill_score"],
    overwrite=True,
)

"""Continuous scores (MSE, MAE, RMSE, mean error) from mergeable sums of errors.

With error ``e = fcst - obs`` and weights ``w`` (1, or latitude weights ``cos(lat)``
normalised to mean 1 over the grid, as in WeatherBench), accumulated over the reduced dims:

=============  ==============================================  ==========  =======
score          formula                                         range       perfect
=============  ==============================================  ==========  =======
mse            sum(w e^2) / sum(w)        (per-pixel mean)     [0, inf)    0
mse_frame      mse * (C*H*W)  = mean over frames of the        [0, inf)    0
               per-frame sum of e^2 over channel and grid
mae            sum(w |e|) / sum(w)                             [0, inf)    0
mae_frame      mae * (C*H*W)                                   [0, inf)    0
rmse           sqrt(mse)  (of the pooled MSE)                  [0, inf)    0
mean_error     sum(w e) / sum(w)          (additive bias)      (-inf, inf) 0
=============  ==============================================  ==========  =======

Two MSE conventions exist in the literature: ``mse`` is the per-pixel mean (Earthformer,
WeatherBench); ``mse_frame`` is OpenSTL's per-frame sum over C*H*W averaged over samples
and frames (TaxiBJ, MovingMNIST tables). ``C*H*W`` is the number of points per frame along
the reduced channel and spatial dims.

NaN policy: a pixel that is NaN in either field is excluded (from sums and weights). With
NaNs present ``mse_frame`` is the NaN-excluded per-pixel MSE scaled by C*H*W.
Sums are accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from ..conventions import find_spatial_dims
from ..errors import DataValidationError, StgeoTypeError
from ._base import (
    MergeableSums,
    align,
    blockwise_sums,
    data_units,
    finish,
    resolve_reduce_dims,
    restore_coords,
    safe_divide,
)
from .family import MetricFamily, ScoreSettings, register_metric, register_metric_family

__all__ = [
    "ErrorSums",
    "error_sums",
    "latitude_weights",
    "mae",
    "mae_frame",
    "mean_error",
    "mse",
    "mse_frame",
    "rmse",
]

Dims = str | Iterable[Hashable] | None
_FIELDS = ("sum_weights", "sum_error", "sum_abs_error", "sum_squared_error", "count")
FRAME_DIMS_ATTR = "frame_points"


def latitude_weights(da: xr.DataArray) -> xr.DataArray:
    """``cos(lat)`` weights normalised to mean 1 over the grid (WeatherBench convention).

    Uses the ``lat`` coordinate (1-D along a ``lat`` dim or 2-D over ``y, x``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon"),
    ...                   coords={"lat": [0.0, 60.0], "lon": [0.0, 1.0, 2.0]})
    >>> latitude_weights(da).values.round(4).tolist()
    [1.3333, 0.6667]
    """
    if "lat" not in da.coords:
        raise DataValidationError(
            "weights='latitude' needs a 'lat' coordinate (degrees north) on the forecast; add "
            "one (e.g. stgeo.conventions.add_latlon(ds)) or pass explicit weights."
        )
    lat = da.coords["lat"]
    lat = xr.DataArray(np.asarray(lat.values, dtype=np.float64), dims=lat.dims)
    if float(np.nanmax(np.abs(lat.values))) > 90.0:
        raise DataValidationError("the 'lat' coordinate has values beyond +-90 degrees.")
    w = np.cos(np.deg2rad(lat))
    w = w / w.mean()
    return w.rename("latitude_weights")


def _weights(fc: xr.DataArray, weights: str | xr.DataArray | None) -> xr.DataArray | None:
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights.lower() in ("latitude", "lat", "cos_lat", "coslat"):
            return latitude_weights(fc)
        raise DataValidationError(
            f"unknown weights {weights!r}: use None, 'latitude' or a DataArray of weights."
        )
    if isinstance(weights, xr.DataArray):
        bad = [d for d in weights.dims if d not in fc.dims]
        if bad:
            raise DataValidationError(
                f"weights have dims {bad} that the forecast lacks (dims {tuple(fc.dims)})."
            )
        if weights.chunks is None and bool((weights < 0).any()):
            raise DataValidationError("weights must be non-negative.")
        return xr.DataArray(weights.data, dims=weights.dims)
    raise StgeoTypeError(f"weights must be None, 'latitude' or a DataArray, got {weights!r}.")


def _error_kernel(
    f: np.ndarray, o: np.ndarray, *w: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    """Error sums of one block: (block shape, reduced axes = 1) + (5,), in float64."""
    e = np.subtract(f, o, dtype=np.float64)
    valid = ~np.isnan(e)
    np.nan_to_num(e, copy=False, nan=0.0)
    kw = {"axis": axes, "keepdims": True}
    count = valid.sum(**kw)
    out = np.empty((*count.shape, 5), dtype=np.float64)
    out[..., 4] = count
    tmp = np.empty_like(e)
    if w:
        ww = np.where(valid, w[0], 0.0)
        out[..., 0] = ww.sum(**kw)
        out[..., 1] = np.multiply(ww, e, out=tmp).sum(**kw)
        np.abs(e, out=tmp)
        out[..., 2] = np.multiply(tmp, ww, out=tmp).sum(**kw)
        np.square(e, out=tmp)
        out[..., 3] = np.multiply(tmp, ww, out=tmp).sum(**kw)
    else:
        out[..., 0] = count
        out[..., 1] = e.sum(**kw)
        out[..., 2] = np.abs(e, out=tmp).sum(**kw)
        out[..., 3] = np.square(e, out=tmp).sum(**kw)
    return out


def error_stats(
    fc: xr.DataArray,
    ob: xr.DataArray,
    reduce: Sequence[str],
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """Error sums of aligned fields (lazy for Dask inputs: per-block sums added by Dask)."""
    dims = [str(d) for d in fc.dims]
    arrays = [fc.data, ob.data]
    if weights is not None:
        w = weights.astype(np.float64).transpose(*[d for d in dims if d in weights.dims])
        w = w.expand_dims([d for d in dims if d not in w.dims]).transpose(*dims)
        wv = np.asarray(w.values)
        if fc.chunks is not None or ob.chunks is not None:
            import dask.array as da

            ref = fc.data if fc.chunks is not None else ob.data
            arrays.append(da.broadcast_to(wv, fc.shape, chunks=ref.chunks))
        else:
            arrays.append(np.broadcast_to(wv, fc.shape))
    sums, kept = blockwise_sums(_error_kernel, arrays, dims, list(reduce), (5,), np.float64)
    sd = find_spatial_dims(fc) or ()
    frame = [d for d in fc.dims if d in (*sd, "channel") and d in reduce]
    points = int(np.prod([fc.sizes[d] for d in frame])) if frame else 1
    ds = xr.Dataset(
        {name: (kept, sums[..., k]) for k, name in enumerate(_FIELDS[:4])},
        attrs={FRAME_DIMS_ATTR: points, "units": data_units(fc, ob)},
    )
    ds["count"] = (kept, sums[..., 4].astype(np.int64))
    return restore_coords(ds, fc)


class ErrorSums(MergeableSums):
    """Mergeable sums behind MSE, MAE, RMSE and the mean error.

    Variables ``sum_weights``, ``sum_error``, ``sum_abs_error``, ``sum_squared_error``
    (weighted) and ``count`` (scored pixels). ``a + b`` merges exactly.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([1.0, 2.0, 4.0], dims="x")
    >>> o = xr.DataArray([1.0, 1.0, 1.0], dims="x")
    >>> s = error_sums(f[:1], o[:1]) + error_sums(f[1:], o[1:])
    >>> float(s.mse()), float(s.mean_error())
    (3.3333333333333335, 1.3333333333333333)
    """

    _fields = _FIELDS

    @property
    def units(self) -> str:
        return str(self.data.attrs.get("units", "unknown"))

    def _mean(self, var: str) -> xr.DataArray:
        return safe_divide(self.data[var], self.data["sum_weights"])

    def mse(self) -> xr.DataArray:
        """Mean squared error per pixel, sum(w e^2) / sum(w); range [0, inf), perfect 0."""
        u = self.units
        return finish(
            self._mean("sum_squared_error"),
            "mse",
            f"({u})^2",
            "mean squared error (per pixel)",
            valid_range=[0.0, np.inf],
            perfect_score=0.0,
        )

    def mse_frame(self) -> xr.DataArray:
        """MSE as a per-frame sum over C*H*W, averaged over frames; range [0, inf), perfect 0."""
        pts = int(self.data.attrs.get(FRAME_DIMS_ATTR, 1))
        u = self.units
        return finish(
            self._mean("sum_squared_error") * pts,
            "mse_frame",
            f"({u})^2",
            "mean squared error (per-frame sum over channel and grid)",
            valid_range=[0.0, np.inf],
            perfect_score=0.0,
            frame_points=pts,
        )

    def mae(self) -> xr.DataArray:
        """Mean absolute error, sum(w |e|) / sum(w); range [0, inf), perfect 0."""
        return finish(
            self._mean("sum_abs_error"),
            "mae",
            self.units,
            "mean absolute error",
            valid_range=[0.0, np.inf],
            perfect_score=0.0,
        )

    def mae_frame(self) -> xr.DataArray:
        """MAE as a per-frame sum over C*H*W, averaged over frames; range [0, inf), perfect 0."""
        pts = int(self.data.attrs.get(FRAME_DIMS_ATTR, 1))
        return finish(
            self._mean("sum_abs_error") * pts,
            "mae_frame",
            self.units,
            "mean absolute error (per-frame sum over channel and grid)",
            valid_range=[0.0, np.inf],
            perfect_score=0.0,
            frame_points=pts,
        )

    def rmse(self) -> xr.DataArray:
        """Root of the pooled mean squared error; range [0, inf), perfect 0."""
        return finish(
            np.sqrt(self._mean("sum_squared_error")),
            "rmse",
            self.units,
            "root mean squared error",
            valid_range=[0.0, np.inf],
            perfect_score=0.0,
        )

    def mean_error(self) -> xr.DataArray:
        """Mean error (additive bias) sum(w (f - o)) / sum(w); perfect 0."""
        return finish(
            self._mean("sum_error"),
            "mean_error",
            self.units,
            "mean error (forecast minus observation)",
            valid_range=[-np.inf, np.inf],
            perfect_score=0.0,
        )


def error_sums(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> ErrorSums:
    """Accumulate the mergeable :class:`ErrorSums` of a forecast against observations.

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([[1.0, 3.0]], dims=("time", "x"))
    >>> o = xr.DataArray([[1.0, 1.0]], dims=("time", "x"))
    >>> float(error_sums(f, o).rmse())
    1.4142135623730951
    """
    fc, ob = align(fcst, obs)
    reduce = resolve_reduce_dims(fc.dims, reduce_dims, preserve_dims)
    return ErrorSums(error_stats(fc, ob, reduce, _weights(fc, weights)))


def _doc_example(name: str, value: str) -> str:
    return f"""
    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([[1.0, 2.0, 4.0]], dims=("y", "x"))
    >>> o = xr.DataArray([[1.0, 1.0, 1.0]], dims=("y", "x"))
    >>> float({name}(f, o))
    {value}
    """


def mse(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> xr.DataArray:
    """Mean squared error per pixel.

    ``MSE = sum(w (f - o)^2) / sum(w)`` over the reduced dims; range [0, inf), perfect 0.
    ``weights="latitude"`` uses cos(lat) weights; NaN pixels are excluded.
    """
    return error_sums(
        fcst, obs, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights
    ).mse()


def mse_frame(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> xr.DataArray:
    """Mean squared error in the per-frame-sum convention (OpenSTL tables).

    ``MSE_frame = MSE * C*H*W``: the sum of squared errors over a frame's channels and grid
    points, averaged over frames (samples x lead times); range [0, inf), perfect 0.
    """
    return error_sums(
        fcst, obs, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights
    ).mse_frame()


def mae(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> xr.DataArray:
    """Mean absolute error.

    ``MAE = sum(w |f - o|) / sum(w)``; range [0, inf), perfect 0; NaN pixels excluded.
    """
    return error_sums(
        fcst, obs, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights
    ).mae()


def mae_frame(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> xr.DataArray:
    """Mean absolute error in the per-frame-sum convention: ``MAE * C*H*W``; perfect 0."""
    return error_sums(
        fcst, obs, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights
    ).mae_frame()


def rmse(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> xr.DataArray:
    """Root mean squared error.

    ``RMSE = sqrt(sum(w (f - o)^2) / sum(w))`` over all reduced dims (the root of the
    pooled MSE); range [0, inf), perfect 0; NaN pixels excluded.
    """
    return error_sums(
        fcst, obs, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights
    ).rmse()


def mean_error(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
    weights: str | xr.DataArray | None = None,
) -> xr.DataArray:
    """Mean error (additive bias).

    ``ME = sum(w (f - o)) / sum(w)``; range (-inf, inf), perfect 0 (> 0: over-forecast).
    """
    return error_sums(
        fcst, obs, reduce_dims=reduce_dims, preserve_dims=preserve_dims, weights=weights
    ).mean_error()


mse.__doc__ = (mse.__doc__ or "") + _doc_example("mse", "3.3333333333333335")
mse_frame.__doc__ = (mse_frame.__doc__ or "") + _doc_example("mse_frame", "10.0")
mae.__doc__ = (mae.__doc__ or "") + _doc_example("mae", "1.3333333333333333")
mae_frame.__doc__ = (mae_frame.__doc__ or "") + _doc_example("mae_frame", "4.0")
rmse.__doc__ = (rmse.__doc__ or "") + _doc_example("rmse", "1.8257418583505538")
mean_error.__doc__ = (mean_error.__doc__ or "") + _doc_example("mean_error", "1.3333333333333333")


# -- registration: the continuous family and its metrics (for stgeo.metrics.score) -----------
def _continuous_sums(fc: xr.DataArray, ob: xr.DataArray, s: ScoreSettings) -> xr.Dataset:
    return error_stats(fc, ob, s.reduce, s.weights)


register_metric_family(
    MetricFamily(
        "continuous",
        sums=_continuous_sums,
        container=ErrorSums,
        settings=("weights",),
        description="error sums (MSE, MAE, RMSE, mean error)",
    ),
    overwrite=True,
)
for _func, _aliases in (
    (mse, ["mse_pixel"]),
    (mse_frame, ["mse_sum", "frame_mse"]),
    (mae, ["mae_pixel"]),
    (mae_frame, ["mae_sum", "frame_mae"]),
    (rmse, []),
    (mean_error, ["me", "additive_bias", "bias_mean"]),
):
    register_metric(
        _func.__name__,
        _func,
        family="continuous",
        finalize=getattr(ErrorSums, _func.__name__),
        aliases=_aliases,
        overwrite=True,
    )

"""Image-style scores: SSIM and PSNR, averaged over frames.

Both are computed per frame (one 2-D image per channel for SSIM; one frame over its channels
and grid for PSNR, as OpenSTL reports it) and averaged over the reduced frames. The per-frame
values are summed with a frame count (:class:`FrameSums`), so averages merge exactly across
batches. A frame containing NaN in either field is skipped (excluded from the average).

``data_range`` (max - min of the data's scale, e.g. 1.0 for [0, 1] images, 255 for bytes)
must be given or declared by the data (``valid_range`` or ``valid_min``/``valid_max`` attrs).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from ..errors import DataValidationError
from ._base import (
    MergeableSums,
    align,
    bare,
    finish,
    require_spatial_dims,
    resolve_reduce_dims,
    restore_coords,
    safe_divide,
)
from .family import MetricFamily, ScoreSettings, register_metric, register_metric_family

__all__ = ["FrameSums", "psnr", "ssim"]

Dims = str | Iterable[Hashable] | None
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5: an 11 x 11 Gaussian window
SSIM_K1, SSIM_K2 = 0.01, 0.03


def resolve_data_range(data_range: float | None, *arrays: xr.DataArray) -> float:
    """``data_range`` as given, else from the data's ``valid_range``/``valid_min``/``valid_max``."""
    if data_range is None:
        for a in arrays:
            if "valid_range" in a.attrs:
                lo, hi = np.asarray(a.attrs["valid_range"], dtype=float).ravel()[:2]
                data_range = float(hi - lo)
                break
            if "valid_min" in a.attrs and "valid_max" in a.attrs:
                data_range = float(a.attrs["valid_max"]) - float(a.attrs["valid_min"])
                break
    if data_range is None:
        raise DataValidationError(
            "SSIM and PSNR need data_range (max - min of the data's scale, e.g. 1.0 for [0, 1] "
            "images or 255 for byte images); pass data_range=... or set a 'valid_range' attr."
        )
    data_range = float(data_range)
    if not np.isfinite(data_range) or data_range <= 0:
        raise DataValidationError(f"data_range must be a positive number, got {data_range}.")
    return data_range


def _ssim_frame(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    from scipy.ndimage import gaussian_filter

    if np.isnan(x).any() or np.isnan(y).any():
        return np.nan
    x = x.astype(np.float64)
    y = y.astype(np.float64)

    def g(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    mx, my = g(x), g(y)
    sxx = g(x * x) - mx * mx
    syy = g(y * y) - my * my
    sxy = g(x * y) - mx * my
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    r = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    return float(s[r:-r, r:-r].mean())


def _ssim_frames(x: np.ndarray, y: np.ndarray, *, data_range: float) -> np.ndarray:
    """Mean SSIM of each 2-D frame; input (..., H, W), output (...); one frame at a time."""
    x2 = x.reshape(-1, *x.shape[-2:])
    y2 = y.reshape(-1, *y.shape[-2:])
    out = np.array(
        [_ssim_frame(a, b, data_range) for a, b in zip(x2, y2, strict=True)], dtype=np.float64
    )
    return out.reshape(x.shape[:-2])


def _psnr_frames(x: np.ndarray, y: np.ndarray, *, data_range: float, ncore: int) -> np.ndarray:
    axes = tuple(range(-ncore, 0))
    err = x.astype(np.float64) - y.astype(np.float64)
    m = np.mean(err * err, axis=axes)  # NaN frames stay NaN and are skipped
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / m)


def frame_stats(
    kind: str, fc: xr.DataArray, ob: xr.DataArray, reduce: Sequence[str], data_range: float
) -> xr.Dataset:
    """Sums of per-frame SSIM or PSNR values and frame counts (lazy for Dask inputs)."""
    sd = require_spatial_dims(fc, kind.upper())
    kept = [d for d in sd if d not in reduce]
    if kept:
        raise DataValidationError(
            f"{kind.upper()} is computed per image: the spatial dims {list(sd)} must be "
            f"reduced, but {kept} would be preserved."
        )
    core = list(sd)
    if kind == "psnr" and "channel" in fc.dims and "channel" in reduce:
        core = ["channel", *core]
    if kind == "ssim":
        for d in sd:
            if fc.sizes[d] < 11:
                raise DataValidationError(
                    f"SSIM uses an 11 x 11 Gaussian window; the grid is too small "
                    f"({d!r} has {fc.sizes[d]} points)."
                )
        func, kwargs = _ssim_frames, {"data_range": data_range}
    else:
        func, kwargs = _psnr_frames, {"data_range": data_range, "ncore": len(core)}
    like, fc, ob = fc, bare(fc), bare(ob)
    if fc.chunks is not None:
        fc = fc.chunk(dict.fromkeys(core, -1))
        ob = ob.chunk(dict.fromkeys(core, -1))
    per_frame = xr.apply_ufunc(
        func,
        fc,
        ob,
        input_core_dims=[core, core],
        kwargs=kwargs,
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    other = [d for d in reduce if d not in core]
    finite = np.isfinite(per_frame) | np.isposinf(per_frame)
    total = per_frame.where(finite).sum(other)
    count = finite.sum(other).astype(np.int64)
    ds = xr.Dataset({"sum": total, "count": count}, attrs={"metric": kind})
    return restore_coords(ds, like)


class FrameSums(MergeableSums):
    """Sum of per-frame values (``sum``) and number of frames (``count``); ``+`` merges."""

    _fields = ("sum", "count")

    def mean(self) -> xr.DataArray:
        """The frame-averaged value (NaN when no frame was scored)."""
        kind = self.data.attrs.get("metric", "")
        out = safe_divide(self.data["sum"], self.data["count"].astype(np.float64))
        if kind == "ssim":
            return finish(
                out,
                "ssim",
                "1",
                "structural similarity index (frame mean)",
                valid_range=[-1.0, 1.0],
                perfect_score=1.0,
            )
        return finish(
            out,
            "psnr",
            "dB",
            "peak signal-to-noise ratio (frame mean)",
            valid_range=[-np.inf, np.inf],
            perfect_score=np.inf,
        )


def ssim(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    data_range: float | None = None,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Structural similarity index (Wang et al. 2004), averaged over frames.

    Per 2-D image: ``SSIM = mean over pixels of (2 mu_f mu_o + C1)(2 s_fo + C2) /
    ((mu_f^2 + mu_o^2 + C1)(s_f^2 + s_o^2 + C2))`` with local statistics from an 11 x 11
    Gaussian window (sigma 1.5), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L`` the data
    range, averaged over the interior (5-pixel border dropped). Range [-1, 1], perfect 1.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.random.default_rng(0).random((2, 16, 16)), dims=("time", "y", "x"))
    >>> float(ssim(a, a, data_range=1.0))
    1.0
    """
    fc, ob = align(fcst, obs)
    reduce = resolve_reduce_dims(fc.dims, reduce_dims, preserve_dims)
    rng = resolve_data_range(data_range, fc, ob)
    return FrameSums(frame_stats("ssim", fc, ob, reduce, rng)).mean()


def psnr(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    data_range: float | None = None,
    reduce_dims: Dims = None,
    preserve_dims: Dims = None,
) -> xr.DataArray:
    """Peak signal-to-noise ratio, averaged over frames.

    Per frame: ``PSNR = 10 log10(L^2 / MSE_frame)`` with ``L`` the data range and the MSE over
    the frame's grid (and channels when ``channel`` is reduced). Units dB; range
    (-inf, inf), perfect +inf (identical frames).

    Examples
    --------
    >>> import xarray as xr
    >>> f = xr.DataArray([[[0.1, 0.2], [0.3, 0.4]]], dims=("time", "y", "x"))
    >>> round(float(psnr(f, f + 0.1, data_range=1.0)), 6)
    20.0
    """
    fc, ob = align(fcst, obs)
    reduce = resolve_reduce_dims(fc.dims, reduce_dims, preserve_dims)
    rng = resolve_data_range(data_range, fc, ob)
    return FrameSums(frame_stats("psnr", fc, ob, reduce, rng)).mean()


# -- registration: the SSIM and PSNR families (for stgeo.metrics.score) ----------------------
def _frame_family(kind: str, func: Callable[..., xr.DataArray], aliases: list[str]) -> None:
    def sums(fc: xr.DataArray, ob: xr.DataArray, s: ScoreSettings) -> xr.Dataset:
        return frame_stats(kind, fc, ob, s.reduce, s.data_range)  # type: ignore[arg-type]

    family = MetricFamily(
        kind,
        sums=sums,
        container=FrameSums,
        settings=("data_range",),
        description=f"per-frame {kind.upper()} sums",
    )
    register_metric_family(family, overwrite=True)
    register_metric(
        kind, func, family=kind, finalize=FrameSums.mean, aliases=aliases, overwrite=True
    )


_frame_family("ssim", ssim, ["structural_similarity"])
_frame_family("psnr", psnr, ["peak_signal_to_noise_ratio"])

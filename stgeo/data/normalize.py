"""Per-channel normalisation fitted on the training split only, stored for inverse transform.

Fit a :class:`Normalizer` on the frames of the *training* split (never on the whole series:
that leaks test-period statistics into training). Its statistics travel with the model in
``ModelSpec.normalization`` (:meth:`Normalizer.to_dict` / :meth:`Normalizer.from_dict`).

Examples
--------
>>> import stgeo
>>> from stgeo.data import Normalizer, split_by_time, to_frames
>>> ds = stgeo.testing.crowd_flows(n_days=4, shape=(8, 8))
>>> parts = split_by_time(ds, train=0.75, test=0.25)
>>> norm = Normalizer("standard").fit(to_frames(parts["train"]))
>>> x = to_frames(parts["test"]).values
>>> bool(abs(norm.inverse(norm.transform(x)) - x).max() < 1e-3)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ..conventions import CHANNEL_DIM, NEGATIVE_TOLERANCE, TIME_DIM, spatial_dims
from ..errors import DataValidationError, StgeoTypeError, StgeoWarning, UnknownNameError

__all__ = ["Normalizer", "fill_nodata"]

_METHODS = ("standard", "log1p", "minmax", "none")


class Normalizer:
    """Per-channel normalisation: ``"standard"``, ``"log1p"``, ``"minmax"`` or ``"none"``.

    Parameters
    ----------
    method : {"standard", "log1p", "minmax", "none"}
        ``standard``: ``(x - mean) / std`` per channel; ``log1p``: the same on
        ``log(1 + max(x, 0))``, for non-negative, skewed variables such as rain rate (small
        errors in normalised units then stay small near zero, so MSE-trained models do not
        paint drizzle over dry areas); ``minmax``: ``2 (x - min) / (max - min) - 1`` per
        channel; ``none``: identity. ``log1p`` reads values below 0 as 0: :meth:`fit`
        refuses them (:class:`~stgeo.errors.DataValidationError`), :meth:`transform` warns
        (:class:`~stgeo.errors.StgeoWarning`), both beyond round-off
        (:data:`stgeo.conventions.NEGATIVE_TOLERANCE`).

    Attributes
    ----------
    channels : list of str
        Channel names the statistics belong to (after :meth:`fit`).
    stats : dict of str -> numpy.ndarray
        ``mean``/``std`` or ``min``/``max`` per channel (float64).

    Examples
    --------
    >>> import numpy as np, xarray as xr, pandas as pd
    >>> fr = xr.DataArray(np.arange(16, dtype="float32").reshape(4, 1, 2, 2),
    ...                   dims=("time", "channel", "y", "x"))
    >>> n = Normalizer("minmax").fit(fr)
    >>> n.transform(np.array([[[0.0]], ], dtype="float32")).ravel().tolist()
    [-1.0]
    >>> Normalizer.from_dict(n.to_dict()).stats["max"].tolist()
    [15.0]
    """

    def __init__(self, method: str = "standard") -> None:
        if not isinstance(method, str) or method.lower() not in _METHODS:
            raise UnknownNameError(
                f"unknown normalisation method {method!r}; valid methods are: {', '.join(_METHODS)}"
            )
        self.method = method.lower()
        self.channels: list[str] | None = None
        self.stats: dict[str, np.ndarray] = {}
        self._cache: dict[Any, tuple[Any, Any]] = {}

    @property
    def fitted(self) -> bool:
        """Whether statistics are available (always True for ``"none"``)."""
        return self.method == "none" or bool(self.stats)

    def __repr__(self) -> str:
        stats = {k: np.round(v, 4).tolist() for k, v in self.stats.items()}
        return f"Normalizer(method={self.method!r}, channels={self.channels}, stats={stats})"

    def fit(self, frames: xr.DataArray) -> Normalizer:
        """Compute per-channel statistics over time and space (NaN ignored).

        Uses dask reductions on dask-backed frames (chunk by chunk, never loading the whole
        array). Pass the frames of the training split only.

        Parameters
        ----------
        frames : xarray.DataArray
            ``(time, channel, y, x)`` from :func:`stgeo.data.to_frames`; a Dataset is
            converted with ``to_frames``.

        Returns
        -------
        Normalizer
            ``self``.

        Examples
        --------
        >>> import stgeo
        >>> from stgeo.data import to_frames
        >>> fr = to_frames(stgeo.testing.storm_cells(n_times=6, shape=(16, 16)))
        >>> Normalizer().fit(fr.chunk({"time": 2})).channels
        ['rain_rate']
        """
        from .windows import _as_frames

        frames = _as_frames(frames)
        self.channels = [str(c) for c in frames[CHANNEL_DIM].values]
        self._cache.clear()
        if self.method == "none":
            self.stats = {}
            return self
        dims = (TIME_DIM, *spatial_dims(frames))
        x = frames.astype(np.float64)
        bounds = {}
        if self.method == "log1p":  # the raw range, to refuse negative values
            bounds = {"lo": x.min(dims, skipna=True), "hi": x.max(dims, skipna=True)}
            # clip negatives to 0, but keep -inf infinite so that the check below reports it
            x = np.log1p(xr.where(np.isneginf(x), np.inf, x.clip(min=0.0)))
        if self.method in ("standard", "log1p"):
            mean = x.mean(dims, skipna=True)
            sq = (x * x).mean(dims, skipna=True)
            res = xr.Dataset({"a": mean, "b": sq, **bounds}).compute()
            m = np.asarray(res["a"].values, dtype=np.float64)
            self._check_finite(m, "mean")
            if bounds:
                self._refuse_negative(res["lo"].values, res["hi"].values)
            var = np.maximum(np.asarray(res["b"].values, dtype=np.float64) - m * m, 0.0)
            # refine the variance with a second pass around the mean when it is tiny
            # relative to mean**2 (cancellation); cheap compared with reading the data
            if np.any(var < 1e-6 * np.maximum(m * m, 1e-30)):
                var = np.asarray(((x - xr.DataArray(m, dims=CHANNEL_DIM)) ** 2).mean(dims).values)
            s = np.sqrt(var)
            self.stats = {"mean": m, "std": np.where(s > 0, s, 1.0)}
        else:
            res = xr.Dataset({"a": x.min(dims), "b": x.max(dims)}).compute()
            lo = np.asarray(res["a"].values, dtype=np.float64)
            hi = np.asarray(res["b"].values, dtype=np.float64)
            self._check_finite(lo, "min")
            self._check_finite(hi, "max")
            self.stats = {"min": lo, "max": hi}
        return self

    def partial_fit(self, block: Any, channels: list[str] | None = None) -> Normalizer:
        """Add frames to streaming statistics (NaN ignored); the result is usable at once.

        Statistics of any number of blocks (events, chunks, workers) merge exactly:
        counts, means and sums of squared deviations combine with Chan et al.'s pairwise
        update, so the result equals :meth:`fit` on all blocks concatenated (to rounding)
        while only one block is in memory at a time. See also :meth:`merge`.

        Parameters
        ----------
        block : numpy.ndarray or xarray.DataArray
            ``(time, channel, y, x)`` frames (a DataArray is read whole: pass chunks).
        channels : list of str, optional
            Channel names (default: the DataArray's ``channel`` labels).

        Returns
        -------
        Normalizer
            ``self``.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(3, 2, (6, 1, 4, 4)).astype("f4")
        >>> a = Normalizer().partial_fit(x[:2]).partial_fit(x[2:])
        >>> b = Normalizer().fit(xr.DataArray(x, dims=("time", "channel", "y", "x")))
        >>> bool(np.allclose(a.stats["std"], b.stats["std"]))
        True
        """
        if isinstance(block, xr.DataArray):
            if channels is None and CHANNEL_DIM in block.coords:
                channels = [str(c) for c in block[CHANNEL_DIM].values]
            block = np.asarray(block.values)
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 4:
            raise DataValidationError(
                f"partial_fit expects (time, channel, y, x) frames, got shape {x.shape}"
            )
        if self.channels is None:
            self.channels = channels or [str(i) for i in range(x.shape[1])]
        elif len(self.channels) != x.shape[1]:
            raise DataValidationError(
                f"partial_fit: {x.shape[1]} channel(s), but the statistics so far have "
                f"{len(self.channels)}: {self.channels}"
            )
        if self.method == "none":
            return self
        if self.method == "log1p":
            self._refuse_negative(*_channel_range(x))
            x = np.log1p(np.clip(x, 0.0, None))
        flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
        self._merge_acc(_block_stats(flat, self.method))
        return self

    def merge(self, other: Normalizer) -> Normalizer:
        """Merge the streaming statistics of ``other`` (same method and channels) into self.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.arange(24, dtype="f4").reshape(6, 1, 2, 2)
        >>> a, b = Normalizer("minmax").partial_fit(x[:3]), Normalizer("minmax").partial_fit(x[3:])
        >>> a.merge(b).stats["max"].tolist()
        [23.0]
        """
        if other.method != self.method:
            raise DataValidationError(
                f"cannot merge {other.method!r} statistics into {self.method!r} ones"
            )
        acc = getattr(other, "_acc", None)
        if acc is None:
            return self
        if self.channels is None:
            self.channels = other.channels
        self._merge_acc(acc)
        return self

    def _merge_acc(self, b: dict[str, np.ndarray]) -> None:
        a = getattr(self, "_acc", None)
        self._acc = b if a is None else _merge_stats(a, b, self.method)
        self._cache.clear()
        acc = self._acc
        if self.method in ("standard", "log1p"):
            n = np.maximum(acc["n"], 1)
            m = np.where(acc["n"] > 0, acc["mean"], np.nan)
            s = np.sqrt(np.maximum(acc["m2"] / n, 0.0))
            self._check_finite(m, "mean")
            self.stats = {"mean": m, "std": np.where(s > 0, s, 1.0)}
        else:
            self._check_finite(acc["min"], "min")
            self.stats = {"min": acc["min"].copy(), "max": acc["max"].copy()}

    def _check_finite(self, v: np.ndarray, what: str) -> None:
        bad = ~np.isfinite(v)
        if bad.any():
            names = [self.channels[i] for i in np.flatnonzero(bad)] if self.channels else []
            cause = (
                "the fitting data hold infinite values"
                if np.isinf(v[bad]).any()
                else "an all-NaN channel, or both +inf and -inf, in the fitting data"
            )
            raise DataValidationError(
                f"cannot normalise: the {what} of channel(s) {names} is not finite ({cause}). "
                "Mark missing data as NaN, e.g. ds = ds.where(numpy.isfinite(ds)), and check "
                "the training split."
            )

    def _negative(self, lo: Any, hi: Any) -> list[tuple[str, float]]:
        """The channels (name, minimum) with values below 0, beyond round-off
        (:data:`stgeo.conventions.NEGATIVE_TOLERANCE`)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = lo < -NEGATIVE_TOLERANCE * np.fmax(hi, 1.0)
        names = self.channels or [str(i) for i in range(lo.size)]
        return [(names[i], float(lo[i])) for i in np.flatnonzero(bad)]

    def _refuse_negative(self, lo: Any, hi: Any) -> None:
        """Fitting ``log1p``: negative values are an error (they would be read as 0)."""
        bad = self._negative(lo, hi)
        if bad:
            found = ", ".join(f"{n!r} down to {v:.6g}" for n, v in bad)
            raise DataValidationError(
                f"normalization='log1p' needs values >= 0, but the data it is fitted on (the "
                f"training split) go below 0 "
                f"({found}); log1p would read them all as 0. Use normalization='standard', or "
                "fix the data: remove an offset, and mark a fill value (e.g. -9999) as NaN, "
                "e.g. ds = ds.where(ds != -9999)"
            )

    def _warn_negative(self, x: Any) -> None:
        """Transforming with ``log1p``: warn that values below 0 are read as 0."""
        bad = self._negative(*_channel_range(x))
        if bad:  # the order of magnitude: one message, not one per batch
            found = ", ".join(f"{n!r} below {_magnitude(v):g}" for n, v in bad)
            warnings.warn(
                f"the data go below 0 ({found}) but log1p normalisation, fitted on values "
                ">= 0, reads every negative value as 0 (e.g. no rain): check the data for an "
                "offset or a fill value (mark no-data as NaN)",
                StgeoWarning,
                stacklevel=4,
            )

    def _scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, shift)`` with ``transform(x) = (x - shift) * scale`` (float64, (C,))."""
        if self.method == "none":
            return np.ones(1), np.zeros(1)
        if not self.stats:
            raise DataValidationError(
                "this Normalizer is not fitted; call .fit(train_frames) or build it with "
                "Normalizer.from_dict(spec.normalization)"
            )
        if self.method in ("standard", "log1p"):
            return 1.0 / self.stats["std"], self.stats["mean"]
        lo, hi = self.stats["min"], self.stats["max"]
        rng = np.where(hi > lo, hi - lo, 1.0)
        # 2 (x - lo) / rng - 1 = (x - (lo + rng / 2)) * (2 / rng)
        return 2.0 / rng, lo + rng / 2.0

    def _params(self, x: Any) -> tuple[Any, Any]:
        scale, shift = self._scale_shift()
        if self.method != "none":
            c = x.shape[-3] if x.ndim >= 3 else -1
            if c != scale.size:
                raise DataValidationError(
                    f"the normaliser was fitted on {scale.size} channel(s) {self.channels} but "
                    f"the array has shape {tuple(x.shape)} (channel axis -3 has "
                    f"{c if c >= 0 else 'no'} entries)"
                )
        if isinstance(x, np.ndarray):
            dt = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
            return (scale.astype(dt)[:, None, None], shift.astype(dt)[:, None, None])
        import torch

        key = (x.device, x.dtype)
        if key not in self._cache:
            dt = x.dtype if x.dtype.is_floating_point else torch.float32
            self._cache[key] = (
                torch.as_tensor(scale, dtype=dt, device=x.device)[:, None, None],
                torch.as_tensor(shift, dtype=dt, device=x.device)[:, None, None],
            )
        return self._cache[key]

    def _apply(self, x: Any, inverse: bool) -> Any:
        if isinstance(x, xr.DataArray):
            if CHANNEL_DIM not in x.dims:
                raise DataValidationError(
                    f"a DataArray to normalise needs a {CHANNEL_DIM!r} dim, got {x.dims}"
                )
            order = list(x.dims)
            sd = spatial_dims(x)
            xt = x.transpose(..., CHANNEL_DIM, *sd)
            out = xt.copy(data=self._apply(np.asarray(xt.values), inverse))
            return out.transpose(*order)
        if not isinstance(x, np.ndarray):
            try:
                import torch
            except ImportError:  # pragma: no cover
                torch = None
            if torch is None or not isinstance(x, torch.Tensor):
                raise StgeoTypeError(
                    f"expected a numpy array, torch tensor or xarray DataArray, got {type(x)}"
                )
        if self.method == "none":
            return x
        scale, shift = self._params(x)
        log = self.method == "log1p"
        if not inverse:
            if log:
                self._warn_negative(x)
                x = (
                    x.clip(0.0).log1p()
                    if not isinstance(x, np.ndarray)
                    else np.log1p(np.clip(x, 0.0, None))
                )
            return (x - shift) * scale
        y = x / scale + shift
        if log:
            y = (
                y.expm1().clamp_min(0.0)
                if not isinstance(y, np.ndarray)
                else np.clip(np.expm1(y), 0.0, None)
            )
        return y

    def transform(self, x: Any) -> Any:
        """Normalise ``x`` (channel axis -3); returns the same type (numpy, torch, xarray).

        Examples
        --------
        >>> import numpy as np
        >>> n = Normalizer.from_dict({"method": "standard", "mean": [1.0], "std": [2.0]})
        >>> n.transform(np.full((1, 1, 1), 3.0)).item()
        1.0
        """
        return self._apply(x, inverse=False)

    def transform_inplace(self, x: np.ndarray) -> np.ndarray:
        """Normalise a float numpy array in place (channel axis -3); return it.

        Single-threaded numpy, so a data-loading thread does not compete with the training
        step's torch threads.

        Examples
        --------
        >>> import numpy as np
        >>> n = Normalizer.from_dict({"method": "standard", "mean": [1.0], "std": [2.0]})
        >>> n.transform_inplace(np.full((1, 1, 1), 3.0, "f4")).item()
        1.0
        """
        if self.method == "none":
            return x
        scale, shift = self._params(x)
        if self.method == "log1p":
            self._warn_negative(x)
            np.clip(x, 0.0, None, out=x)
            np.log1p(x, out=x)
        np.subtract(x, shift, out=x)
        np.multiply(x, scale, out=x)
        return x

    def inverse(self, x: Any) -> Any:
        """Undo :meth:`transform` (e.g. on model outputs); same type as ``x``.

        Examples
        --------
        >>> import numpy as np
        >>> n = Normalizer.from_dict({"method": "standard", "mean": [1.0], "std": [2.0]})
        >>> n.inverse(np.full((1, 1, 1), 1.0)).item()
        3.0
        """
        return self._apply(x, inverse=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for ``ModelSpec.normalization``).

        Examples
        --------
        >>> Normalizer("none").to_dict()
        {'method': 'none', 'channels': None}
        """
        d: dict[str, Any] = {"method": self.method, "channels": self.channels}
        for k, v in self.stats.items():
            d[k] = [float(a) for a in v]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Normalizer:
        """Rebuild a normaliser from :meth:`to_dict` output (``None`` or ``{}``: ``"none"``).

        Examples
        --------
        >>> Normalizer.from_dict({"method": "minmax", "min": [0.0], "max": [10.0]}).method
        'minmax'
        """
        if not d:
            return cls("none")
        if not isinstance(d, Mapping):
            raise StgeoTypeError(f"Normalizer.from_dict expects a mapping, got {type(d)}")
        n = cls(str(d.get("method", "standard")))
        ch = d.get("channels")
        n.channels = [str(c) for c in ch] if ch is not None else None
        need = {
            "standard": ("mean", "std"),
            "log1p": ("mean", "std"),
            "minmax": ("min", "max"),
            "none": (),
        }[n.method]
        for k in need:
            if k not in d:
                raise DataValidationError(
                    f"normalisation {n.method!r} needs {need}; the dict has {sorted(d)}"
                )
            n.stats[k] = np.asarray(d[k], dtype=np.float64).ravel()
        if need and n.stats[need[0]].size != n.stats[need[1]].size:
            raise DataValidationError(f"{need[0]} and {need[1]} have different lengths in {d}")
        if n.method in ("standard", "log1p") and np.any(n.stats["std"] <= 0):
            raise DataValidationError(f"std must be > 0, got {n.stats['std'].tolist()}")
        return n


def fill_nodata(x: Any, normalizer: Normalizer | None = None, *, inplace: bool = False) -> Any:
    """Replace NaN (no data) in normalised frames by each channel's normalised physical 0.

    The one rule for no-data in model inputs, in training and in forecasting: a NaN pixel
    (outside radar range, blocked beams, ...) is shown to the model as the value that
    physical 0 takes after normalisation (``normalizer.transform(0)``; 0 with no
    normaliser), never as a number that would read as signal. Where the no-data pixels
    matter, the caller keeps the mask (``isnan`` before filling): training leaves them out
    of the loss, forecasting returns NaN there.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Normalised frames, channel axis -3 (``(..., C, H, W)``).
    normalizer : Normalizer, optional
        The normaliser ``x`` went through (``None`` or ``"none"``: fill with 0).
    inplace : bool
        Fill a float numpy array (or tensor) in place instead of returning a copy.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``x`` with no NaN left (same type, dtype and device).

    Examples
    --------
    >>> import numpy as np
    >>> n = Normalizer.from_dict({"method": "standard", "mean": [1.0], "std": [2.0]})
    >>> x = n.transform(np.array([[[np.nan, 3.0]]], dtype="float32"))
    >>> fill_nodata(x, n).tolist()
    [[[-0.5, 1.0]]]
    """
    zero = np.zeros((1, 1, 1), dtype=np.float64)
    if normalizer is not None and normalizer.method != "none":
        scale, shift = normalizer._scale_shift()
        zero = np.zeros((scale.size, 1, 1), dtype=np.float64)
        if normalizer.method == "log1p":
            zero = np.log1p(zero)
        zero = (zero - shift[:, None, None]) * scale[:, None, None]
    if isinstance(x, np.ndarray):
        out = x if inplace else x.copy()
        bad = np.isnan(out)
        if bad.any():
            fill = np.broadcast_to(zero.astype(out.dtype), out.shape)
            out[bad] = fill[bad]
        return out
    import torch

    if not isinstance(x, torch.Tensor):
        raise StgeoTypeError(f"fill_nodata expects a numpy array or torch tensor, got {type(x)}")
    bad = torch.isnan(x)
    if not bool(bad.any()):
        return x
    fill = torch.as_tensor(zero, dtype=x.dtype, device=x.device)
    if inplace:
        return x.copy_(torch.where(bad, fill, x))
    return torch.where(bad, fill, x)


def _magnitude(v: float) -> float:
    """The power of ten a negative ``v`` goes below (-23.8 -> -10); ``v`` if not finite."""
    return -(10.0 ** np.floor(np.log10(-v))) if np.isfinite(v) else v


def _channel_range(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel minimum and maximum (NaN ignored; NaN for an all-NaN channel) of
    frames with the channel axis at -3: a numpy array or a torch tensor."""
    if (x.size if isinstance(x, np.ndarray) else x.numel()) == 0:
        return np.full(x.shape[-3], np.nan), np.full(x.shape[-3], np.nan)
    if isinstance(x, np.ndarray):
        flat = np.moveaxis(x, -3, 0).reshape(x.shape[-3], -1)
        return np.fmin.reduce(flat, axis=1), np.fmax.reduce(flat, axis=1)
    import torch

    flat = x.detach().movedim(-3, 0).reshape(x.shape[-3], -1)
    nan = torch.isnan(flat)
    lo = torch.where(nan, torch.inf, flat).amin(dim=1)
    hi = torch.where(nan, -torch.inf, flat).amax(dim=1)
    return lo.float().cpu().numpy(), hi.float().cpu().numpy()


def _block_stats(flat: np.ndarray, method: str) -> dict[str, np.ndarray]:
    """Per-channel count, mean and sum of squared deviations (or min/max) of ``(C, N)``."""
    ok = ~np.isnan(flat)
    n = ok.sum(axis=1).astype(np.float64)
    if method == "minmax":
        with np.errstate(all="ignore"):
            lo = np.where(n > 0, np.nanmin(np.where(ok, flat, np.inf), axis=1), np.inf)
            hi = np.where(n > 0, np.nanmax(np.where(ok, flat, -np.inf), axis=1), -np.inf)
        return {"n": n, "min": lo, "max": hi}
    z = np.where(ok, flat, 0.0)
    mean = z.sum(axis=1) / np.maximum(n, 1)
    d = np.where(ok, flat - mean[:, None], 0.0)
    return {"n": n, "mean": mean, "m2": (d * d).sum(axis=1)}


def _merge_stats(a: dict, b: dict, method: str) -> dict[str, np.ndarray]:
    """Chan et al. (1979) pairwise merge of two sets of per-channel statistics."""
    n = a["n"] + b["n"]
    if method == "minmax":
        return {
            "n": n,
            "min": np.minimum(a["min"], b["min"]),
            "max": np.maximum(a["max"], b["max"]),
        }
    safe = np.maximum(n, 1)
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * b["n"] / safe
    m2 = a["m2"] + b["m2"] + delta * delta * a["n"] * b["n"] / safe
    return {"n": n, "mean": mean, "m2": m2}

"""The contingency table: counts of hits, misses, false alarms and correct negatives.

Event definition: ``value >= threshold`` (greater-or-equal; ``0`` is a real threshold).
NaN policy: a pixel that is NaN in the forecast *or* the observation is excluded: it is
neither an event nor a non-event and appears in no count. Counts are sums, so tables from
batches, chunks or Dask workers add up (``+``) to the table of the whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import DataValidationError, StgeoTypeError
from ._base import (
    THRESHOLD_DIM,
    MergeableSums,
    align,
    as_positive_ints,
    as_thresholds,
    blockwise_sums,
    finish,
    resolve_reduce_dims,
    restore_coords,
    safe_divide,
)
from .spatial import max_pool

__all__ = ["ContingencyTable", "contingency_table", "count_table"]

POOL_DIM = "pool"
_FIELDS = ("hits", "misses", "false_alarms", "correct_negatives")


def _count_true(b: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``b.sum(axis=axes, keepdims=True)`` for booleans, via the much faster count_nonzero."""
    kept = [i for i in range(b.ndim) if i not in axes]
    shape = tuple(1 if i in axes else n for i, n in enumerate(b.shape))
    n_kept = int(np.prod([b.shape[i] for i in kept])) if kept else 1
    if n_kept > 1024:  # many kept cells: one vectorised reduction is better
        return b.sum(axis=axes, keepdims=True)
    if not kept:
        return np.full(shape, np.count_nonzero(b), dtype=np.int64)
    out = np.empty(shape, dtype=np.int64)
    for idx in np.ndindex(*[b.shape[i] for i in kept]):
        sel: list = [slice(None)] * b.ndim
        pos = [0] * b.ndim
        for i, j in zip(kept, idx, strict=True):
            sel[i] = pos[i] = j
        out[tuple(pos)] = np.count_nonzero(b[tuple(sel)])
    return out


def _event_counts(f: Any, o: Any, thresholds: Sequence[float], count: Any) -> list[tuple]:
    """The one counting rule of stgeo: ``(hits, misses, false alarms, correct negatives)``
    per threshold, each a ``count(boolean array)`` result.

    Event: ``value >= threshold``; a pixel NaN in either field is in no count. Written with
    operators only, so ``f`` and ``o`` may be NumPy arrays or torch tensors.
    """
    fv = f == f  # not NaN
    ov = o == o
    n_valid = count(fv & ov)
    rows = []
    for t in thresholds:
        fe = f >= t  # NaN >= t is False
        oe = o >= t
        hits = count(fe & oe)
        fe &= ov
        oe &= fv
        n_f = count(fe)
        n_o = count(oe)
        rows.append((hits, n_o - hits, n_f - hits, n_valid - n_o - n_f + hits))
    return rows


def _count_kernel(
    f: np.ndarray, o: np.ndarray, *, axes: tuple[int, ...], thresholds: Sequence[float]
) -> np.ndarray:
    """Counts of one block: (block shape with reduced axes = 1) + (n_thresholds, 4)."""
    rows = _event_counts(f, o, thresholds, lambda b: _count_true(b, axes))
    shape = tuple(1 if i in axes else n for i, n in enumerate(f.shape))
    out = np.empty((*shape, len(thresholds), 4), dtype=np.int64)
    for i, row in enumerate(rows):
        for k, c in enumerate(row):
            out[..., i, k] = c
    return out


def count_table(fcst: Any, obs: Any, thresholds: float | Sequence[float]) -> Any:
    """Hits, misses, false alarms and correct negatives of two arrays, per threshold.

    The counting rule of every categorical score in :mod:`stgeo.metrics` (and of training's
    validation), for plain arrays: an event is ``value >= threshold``; a pixel that is NaN
    in ``fcst`` or ``obs`` is excluded from every count. All pixels are summed.

    Parameters
    ----------
    fcst, obs : numpy.ndarray or torch.Tensor
        Forecast and observations of the same shape (both NumPy or both torch; tensors
        are counted on their own device).
    thresholds : float or sequence of float
        Event thresholds in the data's units.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Integer counts of shape ``(n_thresholds, 4)``, columns hits, misses, false alarms,
        correct negatives; a tensor on the inputs' device for tensor inputs. Counts are
        sums: the tables of batches, chunks or ranks add up (``+``) to the table of the
        whole; :meth:`ContingencyTable.from_counts` turns them into scores.

    Examples
    --------
    >>> import numpy as np
    >>> f = np.array([0.0, 2.0, 3.0, 0.5, np.nan])
    >>> o = np.array([0.0, 2.5, 0.0, 1.0, 9.0])
    >>> count_table(f, o, [1.0]).tolist()
    [[1, 1, 1, 1]]
    >>> import torch
    >>> count_table(torch.tensor(f), torch.tensor(o), [0.0, 1.0]).tolist()
    [[4, 0, 0, 0], [1, 1, 1, 1]]
    """
    thr, _ = as_thresholds(thresholds, "threshold")
    if _is_tensor(fcst) or _is_tensor(obs):
        return _tensor_counts(fcst, obs, thr)
    f, o = np.asarray(fcst), np.asarray(obs)
    _check_shapes(f.shape, o.shape)
    rows = _event_counts(f, o, thr, np.count_nonzero)
    return np.asarray(rows, dtype=np.int64).reshape(len(thr), 4)


def _is_tensor(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "torch"


def _check_shapes(fs: Sequence[int], os: Sequence[int]) -> None:
    if tuple(fs) != tuple(os):
        raise DataValidationError(
            f"count_table needs fcst and obs of the same shape, got {tuple(fs)} and "
            f"{tuple(os)}; select or broadcast them to one shape first"
        )


def _tensor_counts(fcst: Any, obs: Any, thresholds: Sequence[float]) -> Any:
    import torch  # only for tensor inputs: stgeo.metrics does not need torch

    if not (isinstance(fcst, torch.Tensor) and isinstance(obs, torch.Tensor)):
        raise StgeoTypeError(
            "count_table needs fcst and obs of one kind: two NumPy arrays or two torch "
            f"tensors, got {type(fcst).__name__} and {type(obs).__name__}"
        )
    _check_shapes(fcst.shape, obs.shape)
    rows = _event_counts(fcst, obs, thresholds, lambda b: b.sum(dtype=torch.int64))
    if not rows:
        return torch.zeros((0, 4), dtype=torch.int64, device=fcst.device)
    return torch.stack([torch.stack(r) for r in rows])


def table_counts(
    fc: xr.DataArray, ob: xr.DataArray, thresholds: Sequence[float], reduce: Sequence[str]
) -> xr.Dataset:
    """Counts of aligned fields (lazy for Dask inputs: per-block counts summed by Dask)."""
    dims = [str(d) for d in fc.dims]
    sums, kept = blockwise_sums(
        _count_kernel,
        [fc.data, ob.data],
        dims,
        list(reduce),
        (len(thresholds), 4),
        np.int64,
        thresholds=[float(t) for t in thresholds],
    )
    ds = xr.Dataset(
        {
            name: ((THRESHOLD_DIM, *kept), np.moveaxis(sums[..., k], -1, 0))
            for k, name in enumerate(_FIELDS)
        },
        coords={THRESHOLD_DIM: np.asarray(thresholds, dtype=float)},
    )
    ds = restore_coords(ds, fc)
    for v in _FIELDS:
        ds[v].attrs = {"units": "1", "long_name": f"number of {v.replace('_', ' ')}"}
    return ds.transpose(THRESHOLD_DIM, ...)


def pooled_counts(
    fc: xr.DataArray,
    ob: xr.DataArray,
    thresholds: Sequence[float],
    reduce: Sequence[str],
    pool: Sequence[int] | None,
) -> xr.Dataset:
    """Counts, optionally for several max-pool sizes (adds a ``pool`` dim)."""
    if pool is None:
        return table_counts(fc, ob, thresholds, reduce)
    parts = [table_counts(max_pool(fc, k), max_pool(ob, k), thresholds, reduce) for k in pool]
    out = xr.concat(parts, dim=POOL_DIM, coords="minimal", compat="override")
    return out.assign_coords({POOL_DIM: list(pool)}).transpose(THRESHOLD_DIM, POOL_DIM, ...)


def _score_attrs(long_name: str, lo: float, hi: float, perfect: float, formula: str) -> dict:
    return {
        "valid_range": [lo, hi],
        "perfect_score": perfect,
        "formula": formula,
    }


class ContingencyTable(MergeableSums):
    """Hits, misses, false alarms and correct negatives as an xarray Dataset.

    Parameters
    ----------
    data : Dataset
        Variables ``hits``, ``misses``, ``false_alarms``, ``correct_negatives`` (integer
        counts) sharing dims such as ``threshold``, ``lead_time``.

    Notes
    -----
    ``table_a + table_b`` adds counts cell by cell (coordinates must match), and
    ``sum(tables)`` works, so tables from any split of the data merge into the table of
    the whole. Scores are NaN where their denominator is 0 (0/0 is undefined, not 0 or 1).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray([0.0, 2.0, 3.0, 0.5], dims="x")
    >>> o = xr.DataArray([0.0, 2.5, 0.0, 1.0], dims="x")
    >>> t = contingency_table(f, o, threshold=1.0)
    >>> [int(t.data[v].squeeze()) for v in ("hits", "misses", "false_alarms", "correct_negatives")]
    [1, 1, 1, 1]
    >>> float((t + t).csi().squeeze())
    0.3333333333333333
    """

    _fields = _FIELDS

    @classmethod
    def from_counts(cls, counts: Any, thresholds: float | Sequence[float]) -> ContingencyTable:
        """The table of counts from :func:`count_table` (or a sum of them).

        Parameters
        ----------
        counts : array-like of int, shape (n_thresholds, 4)
            Hits, misses, false alarms, correct negatives per threshold (NumPy or torch).
        thresholds : float or sequence of float
            The thresholds the counts were made with.

        Examples
        --------
        >>> import numpy as np
        >>> f, o = np.array([0.0, 2.0, 3.0, 0.5]), np.array([0.0, 2.5, 0.0, 1.0])
        >>> t = ContingencyTable.from_counts(count_table(f, o, [1.0]), [1.0])
        >>> t.csi().values.tolist()
        [0.3333333333333333]
        """
        thr, _ = as_thresholds(thresholds, "threshold")
        if _is_tensor(counts):
            counts = counts.detach().cpu().numpy()
        c = np.asarray(counts, dtype=np.int64)
        if c.shape != (len(thr), 4):
            raise DataValidationError(
                f"counts must have shape (n_thresholds, 4) = ({len(thr)}, 4), got {c.shape}; "
                "give the thresholds the counts were made with"
            )
        ds = xr.Dataset(
            {name: (THRESHOLD_DIM, c[:, k]) for k, name in enumerate(_FIELDS)},
            coords={THRESHOLD_DIM: np.asarray(thr, dtype=float)},
        )
        for v in _FIELDS:
            ds[v].attrs = {"units": "1", "long_name": f"number of {v.replace('_', ' ')}"}
        return cls(ds)

    # -- counts -------------------------------------------------------------------------
    @property
    def hits(self) -> xr.DataArray:
        return self.data["hits"]

    @property
    def misses(self) -> xr.DataArray:
        return self.data["misses"]

    @property
    def false_alarms(self) -> xr.DataArray:
        return self.data["false_alarms"]

    @property
    def correct_negatives(self) -> xr.DataArray:
        return self.data["correct_negatives"]

    @property
    def total(self) -> xr.DataArray:
        """Number of scored (non-NaN) pixels."""
        d = self.data
        return d.hits + d.misses + d.false_alarms + d.correct_negatives

    def _hmfn(self) -> tuple[xr.DataArray, ...]:
        d = self.data
        return tuple(d[v].astype(np.float64) for v in _FIELDS)

    # -- scores -------------------------------------------------------------------------
    def csi(self) -> xr.DataArray:
        """Critical success index (threat score) H / (H + M + F); range [0, 1], perfect 1."""
        h, m, f, _ = self._hmfn()
        return finish(
            safe_divide(h, h + m + f),
            "csi",
            "1",
            "critical success index",
            **_score_attrs("", 0, 1, 1, "H / (H + M + F)"),
        )

    def pod(self) -> xr.DataArray:
        """Probability of detection (hit rate) H / (H + M); range [0, 1], perfect 1."""
        h, m, _, _ = self._hmfn()
        return finish(
            safe_divide(h, h + m),
            "pod",
            "1",
            "probability of detection",
            **_score_attrs("", 0, 1, 1, "H / (H + M)"),
        )

    def far(self) -> xr.DataArray:
        """False alarm ratio F / (H + F); range [0, 1], perfect 0."""
        h, _, f, _ = self._hmfn()
        return finish(
            safe_divide(f, h + f),
            "far",
            "1",
            "false alarm ratio",
            **_score_attrs("", 0, 1, 0, "F / (H + F)"),
        )

    def sr(self) -> xr.DataArray:
        """Success ratio 1 - FAR = H / (H + F); range [0, 1], perfect 1."""
        h, _, f, _ = self._hmfn()
        return finish(
            safe_divide(h, h + f),
            "sr",
            "1",
            "success ratio",
            **_score_attrs("", 0, 1, 1, "H / (H + F)"),
        )

    success_ratio = sr

    def frequency_bias(self) -> xr.DataArray:
        """Frequency bias (H + F) / (H + M); range [0, inf), perfect 1."""
        h, m, f, _ = self._hmfn()
        return finish(
            safe_divide(h + f, h + m),
            "frequency_bias",
            "1",
            "frequency bias",
            **_score_attrs("", 0, np.inf, 1, "(H + F) / (H + M)"),
        )

    def hss(self) -> xr.DataArray:
        """Heidke skill score; range [-1, 1], perfect 1, 0 = no skill over chance."""
        h, m, f, n = self._hmfn()
        num = 2 * (h * n - m * f)
        den = (h + m) * (m + n) + (h + f) * (f + n)
        return finish(
            safe_divide(num, den),
            "hss",
            "1",
            "Heidke skill score",
            **_score_attrs("", -1, 1, 1, "2(HN - MF) / ((H+M)(M+N) + (H+F)(F+N))"),
        )

    def ets(self) -> xr.DataArray:
        """Equitable threat score (Gilbert skill score); range [-1/3, 1], perfect 1."""
        h, m, f, n = self._hmfn()
        hr = safe_divide((h + m) * (h + f), h + m + f + n)
        return finish(
            safe_divide(h - hr, h + m + f - hr),
            "ets",
            "1",
            "equitable threat score",
            **_score_attrs(
                "", -1 / 3, 1, 1, "(H - Hr) / (H + M + F - Hr), Hr = (H+M)(H+F)/(H+M+F+N)"
            ),
        )

    def pofd(self) -> xr.DataArray:
        """Probability of false detection F / (F + N); range [0, 1], perfect 0."""
        _, _, f, n = self._hmfn()
        return finish(
            safe_divide(f, f + n),
            "pofd",
            "1",
            "probability of false detection",
            **_score_attrs("", 0, 1, 0, "F / (F + N)"),
        )

    def accuracy(self) -> xr.DataArray:
        """Fraction correct (H + N) / total; range [0, 1], perfect 1."""
        h, m, f, n = self._hmfn()
        return finish(
            safe_divide(h + n, h + m + f + n),
            "accuracy",
            "1",
            "fraction correct",
            **_score_attrs("", 0, 1, 1, "(H + N) / (H + M + F + N)"),
        )

    def csi_m(self) -> xr.DataArray:
        """Mean of the CSIs over the ``threshold`` dim (SEVIR's CSI-M); perfect 1."""
        out = self.csi().mean(THRESHOLD_DIM, skipna=False)
        return finish(
            out,
            "csi_m",
            "1",
            "critical success index averaged over thresholds",
            **_score_attrs("", 0, 1, 1, "mean over thresholds of H / (H + M + F)"),
            thresholds=[float(t) for t in self.data[THRESHOLD_DIM].values],
        )


def contingency_table(
    fcst: xr.DataArray,
    obs: xr.DataArray,
    *,
    threshold: float | Sequence[float],
    reduce_dims: str | Iterable[Hashable] | None = None,
    preserve_dims: str | Iterable[Hashable] | None = None,
    pool: int | Sequence[int] | None = None,
) -> ContingencyTable:
    """Count hits, misses, false alarms and correct negatives at one or more thresholds.

    An event is ``value >= threshold``; pixels that are NaN in either field are excluded.
    Forecasts with ``init_time``/``lead_time`` dims are matched to observations with a
    ``time`` dim through ``valid_time``.

    Parameters
    ----------
    fcst, obs : DataArray
        Forecast and observations.
    threshold : float or sequence of float
        Event thresholds in the data's units (a ``threshold`` dim is always present).
    reduce_dims, preserve_dims : str or sequence of str, optional
        Dims to sum over, or to keep; by default every dim is summed.
    pool : int or sequence of int, optional
        Max-pool both fields with kernel = stride = ``pool`` before thresholding (adds a
        ``pool`` dim; 1 means native resolution).

    Returns
    -------
    ContingencyTable
        Lazy (Dask-backed) when the inputs are; call ``.compute()``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = xr.DataArray(np.array([[0.0, 1.0], [2.0, np.nan]]), dims=("y", "x"))
    >>> o = xr.DataArray(np.array([[0.0, 0.0], [2.0, 5.0]]), dims=("y", "x"))
    >>> t = contingency_table(f, o, threshold=[0, 1])
    >>> t.hits.values.tolist(), t.total.values.tolist()
    ([3, 1], [3, 3])
    """
    fc, ob = align(fcst, obs)
    thr, _ = as_thresholds(threshold)
    reduce = resolve_reduce_dims(fc.dims, reduce_dims, preserve_dims)
    pools = None if pool is None else as_positive_ints(pool, "pool sizes")
    return ContingencyTable(pooled_counts(fc, ob, thr, reduce, pools))

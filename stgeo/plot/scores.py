"""Score plots: a score against lead time per model, and the performance diagram.

Both take the tidy Dataset returned by :func:`stgeo.metrics.score` (variables such as
``csi``, ``pod``, ``sr``/``far``, ``bias`` on dims ``threshold`` and ``lead_time``, optionally
``model``), or a dict ``{model name: Dataset}`` to compare models.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import numpy as np, pandas as pd, xarray as xr
>>> leads = pd.to_timedelta([5, 10, 15], unit="min")
>>> ds = xr.Dataset(
...     {"csi": (("threshold", "lead_time"), [[0.8, 0.6, 0.5], [0.5, 0.3, 0.2]])},
...     coords={"threshold": [0.1, 1.0], "lead_time": leads},
... )
>>> fig = plot_csi_vs_lead({"persistence": ds})
>>> len(fig.axes)
2
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import LEAD_TIME_DIM
from ..errors import DataValidationError, StgeoTypeError, UnknownNameError
from .files import check_figure_path, save_figure

__all__ = ["performance_diagram", "plot_csi_vs_lead"]

logger = logging.getLogger("stgeo.plot")

_BOUNDED = {"csi", "pod", "sr", "far", "pofd", "pod_no", "fss", "ssim"}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _tables(scores: Any) -> dict[str, xr.Dataset]:
    """Normalise the input to ``{model name: Dataset}``."""
    if isinstance(scores, xr.DataArray):
        scores = _as_score_dataset(scores)
    if isinstance(scores, xr.Dataset):
        if "model" in scores.dims:
            labels = (
                scores["model"].values
                if "model" in scores.coords
                else np.arange(scores.sizes["model"])
            )
            return {str(m): scores.isel(model=i, drop=True) for i, m in enumerate(labels)}
        name = str(scores.attrs.get("model", "") or "forecast")
        return {name: scores}
    if isinstance(scores, Mapping):
        if not scores:
            raise DataValidationError("no scores to plot: the dict is empty")
        return {str(k): _single_model_table(k, v) for k, v in scores.items()}
    raise StgeoTypeError(
        "scores must be an xarray Dataset from stgeo.metrics.score (optionally with a 'model' "
        f"dim) or a dict {{model name: Dataset}}, got {type(scores).__name__}"
    )


def _as_score_dataset(da: xr.DataArray) -> xr.Dataset:
    return da.to_dataset(name=da.name if da.name is not None else "score")


def _single_model_table(key: Any, v: Any) -> xr.Dataset:
    """The scores of one model given as ``scores[key]`` (a model dim must have size 1)."""
    if isinstance(v, xr.DataArray):
        v = _as_score_dataset(v)
    if not isinstance(v, xr.Dataset):
        raise StgeoTypeError(
            f"scores[{key!r}] must be an xarray Dataset (from stgeo.metrics.score), got "
            f"{type(v).__name__}"
        )
    if "model" in v.dims:
        if v.sizes["model"] != 1:
            raise DataValidationError(
                f"scores[{key!r}] has a 'model' dim of size {v.sizes['model']}; pass "
                "either one Dataset with a model dim or a dict of single-model Datasets"
            )
        v = v.isel(model=0, drop=True)
    return v


def _variable(ds: xr.Dataset, name: str, model: str) -> xr.DataArray:
    if name in ds.data_vars:
        return ds[name]
    if name == "sr" and "far" in ds.data_vars:
        out = 1.0 - ds["far"]
        out.attrs = {"long_name": "success ratio (1 - FAR)", "units": "1"}
        return out.rename("sr")
    counts = ("hits", "misses", "false_alarms")
    if name in ("pod", "sr", "csi") and all(c in ds.data_vars for c in counts):
        h, m, f = (ds[c].astype(float) for c in counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {"pod": h / (h + m), "sr": h / (h + f), "csi": h / (h + m + f)}[name]
        return out.rename(name)
    hint = {"sr": " (or 'far')"}.get(name, "")
    raise UnknownNameError(
        f"the scores of {model!r} have no variable {name!r}{hint}; they hold "
        f"{', '.join(map(str, ds.data_vars)) or '(none)'}. Score with "
        f"stgeo.metrics.score(..., metrics=[{name!r}, ...], thresholds=[...])"
    )


def _reduce_to(
    da: xr.DataArray, keep: Sequence[Hashable], select: Mapping | None, model: str
) -> xr.DataArray:
    if select:
        sel = {k: v for k, v in select.items() if k in da.dims}
        if sel:
            da = da.sel(sel)
    for d in list(da.dims):
        if d in keep:
            continue
        if da.sizes[d] == 1:
            da = da.isel({d: 0})
        else:
            raise DataValidationError(
                f"the scores of {model!r} have an extra dimension {d!r} of size {da.sizes[d]}; "
                f"choose one value with select={{{d!r}: ...}} or reduce it before plotting"
            )
    return da


def _lead_axis(lead: xr.DataArray) -> tuple[np.ndarray, str, Any]:
    """Numeric x values, axis label and a formatter for lead times."""
    v = np.asarray(lead.values)
    if np.issubdtype(v.dtype, np.timedelta64):
        minutes = pd.TimedeltaIndex(v).total_seconds().to_numpy() / 60.0
        if minutes.size and np.nanmax(minutes) > 180:
            return minutes / 60.0, "lead time [h]", lambda x: f"+{x / 60:g} h"
        return minutes, "lead time [min]", lambda x: f"+{x:g} min"
    return v.astype(float), "lead time [steps]", lambda x: f"+{x:g}"


def _threshold_values(tables: dict[str, xr.Dataset], thresholds: Any) -> list[Any] | None:
    have = None
    for ds in tables.values():
        if "threshold" in ds.dims:
            vals = list(np.asarray(ds["threshold"].values))
            have = vals if have is None else [v for v in have if v in vals]
    if have is None:
        if thresholds is not None:
            raise DataValidationError("thresholds given but the scores have no 'threshold' dim")
        return None
    if thresholds is None:
        return have
    wanted = list(np.atleast_1d(thresholds))
    missing = [t for t in wanted if not np.any(np.isclose(have, t))]
    if missing:
        raise UnknownNameError(
            f"threshold(s) {missing} not in the scores; available: {[float(h) for h in have]}"
        )
    return [have[int(np.argmin(np.abs(np.asarray(have, float) - t)))] for t in wanted]


def _threshold_units(tables: dict[str, xr.Dataset]) -> str:
    for ds in tables.values():
        if "threshold" in ds.coords:
            u = ds["threshold"].attrs.get("units", "")
            if u:
                return f" {u}"
    return ""


def _score_lines(
    ax: Any,
    tables: dict[str, xr.Dataset],
    score: str,
    threshold: Any,
    select: Mapping[Hashable, Any] | None,
    colors: Sequence[str],
) -> tuple[str, str | None]:
    """One line per model of ``score`` against lead time at ``threshold`` on ``ax``; returns
    the x-axis label and the first model's ``long_name`` of the score (if any)."""
    xlabel, long_name = "lead time", None
    for i, (model, ds) in enumerate(tables.items()):
        da = _variable(ds, score, model)
        if LEAD_TIME_DIM not in da.dims:
            raise DataValidationError(
                f"the {score!r} scores of {model!r} have no 'lead_time' dim (dims "
                f"{tuple(da.dims)}); score with preserve_dims=('lead_time',)"
            )
        if threshold is not None and "threshold" in da.dims:
            da = da.sel(threshold=threshold)
        da = _reduce_to(da, [LEAD_TIME_DIM], select, model)
        x, xlabel, _ = _lead_axis(da[LEAD_TIME_DIM])
        order = np.argsort(x)
        ax.plot(
            x[order],
            np.asarray(da.values, float)[order],
            marker=_MARKERS[i % 10],
            markersize=4,
            color=colors[i % len(colors)],
            label=model,
        )
        if da.attrs.get("long_name") and i == 0:
            long_name = str(da.attrs["long_name"])
    return xlabel, long_name


def plot_csi_vs_lead(
    scores: xr.Dataset | Mapping[str, xr.Dataset],
    path: str | os.PathLike | None = None,
    *,
    score: str = "csi",
    thresholds: Any = None,
    select: Mapping[Hashable, Any] | None = None,
    title: str | None = None,
    dpi: int = 100,
    overwrite: bool = False,
) -> Any:
    """A score (CSI by default) against lead time, one line per model, one panel per threshold.

    Parameters
    ----------
    scores : xarray.Dataset or dict of str to Dataset
        From :func:`stgeo.metrics.score`: a variable ``score`` on ``lead_time`` (and
        ``threshold``), optionally with a ``model`` dim; or ``{model name: Dataset}``.
    path : path, optional
        Save the figure there (suffix picks the format). An existing file is kept unless
        ``overwrite=True``; a folder or an unknown suffix is refused before drawing.
    score : str
        Variable to plot (``"csi"``, ``"pod"``, ``"ets"``, ``"mse"``, ...).
    thresholds : float or list, optional
        Thresholds to show (default all).
    select : dict, optional
        Values of other dims to pick, e.g. ``{"pool": 4}``.
    title : str, optional
        Figure title.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"csi": (("model", "lead_time"), [[0.7, 0.5], [0.8, 0.6]])},
    ...     coords={"model": ["persistence", "simvp"],
    ...             "lead_time": pd.to_timedelta([10, 20], unit="min")})
    >>> fig = plot_csi_vs_lead(ds)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['persistence', 'simvp']
    """
    import matplotlib.pyplot as plt

    if path is not None:
        check_figure_path(path, overwrite=overwrite, dpi=dpi)  # before any drawing
    tables = _tables(scores)
    thr = _threshold_values(tables, thresholds)
    panels = thr if thr is not None else [None]
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(4.2 * ncols, 3.3 * nrows + 0.5),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    units = _threshold_units(tables)
    long_name = score.upper() if score in ("csi", "pod", "far", "ets", "hss", "fss") else score
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, t in enumerate(panels):
        ax = axes.flat[k]
        xlabel, named = _score_lines(ax, tables, score, t, select, colors)
        if named and k == 0:
            long_name = named
        if t is not None:
            ax.set_title(f"threshold \u2265 {float(t):g}{units}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        if score in _BOUNDED:
            ax.set_ylim(0.0, 1.0)
        ax.set_xlim(left=0.0)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(long_name)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title if title is not None else f"{long_name} against lead time", fontsize=11)
    if path is not None:
        save_figure(fig, path, dpi=dpi, overwrite=overwrite)
    return fig


def _csi_background(ax: Any) -> None:
    sr = np.linspace(0.001, 1.0, 300)
    pod = np.linspace(0.001, 1.0, 300)
    s, p = np.meshgrid(sr, pod)
    csi = 1.0 / (1.0 / s + 1.0 / p - 1.0)
    levels = np.arange(0.1, 1.01, 0.1)
    cf = ax.contourf(s, p, csi, levels=np.concatenate([[0.0], levels]), cmap="Blues", alpha=0.35)
    cs = ax.contour(s, p, csi, levels=levels[:-1], colors="0.45", linewidths=0.6)
    ax.clabel(cs, fmt="%.1f", fontsize=7, inline=True)
    for b in (0.3, 0.5, 0.8, 1.0, 1.3, 1.5, 2.0, 3.0, 5.0):
        if b <= 1:
            x1, y1 = 1.0, b
        else:
            x1, y1 = 1.0 / b, 1.0
        ax.plot([0, x1], [0, y1], ls="--", lw=0.7 if b != 1 else 1.0, color="0.35")
        # bias labels just inside the top and right edges
        ax.annotate(
            f"{b:g}",
            (x1, y1),
            xytext=(-2, 0) if b <= 1 else (2, -2),
            textcoords="offset points",
            fontsize=7,
            color="0.2",
            ha="right" if b <= 1 else "left",
            va="bottom" if b <= 1 else "top",
        )
    return cf


def _select_lead_times(
    pod: xr.DataArray, sr: xr.DataArray, lead_time: Any
) -> tuple[xr.DataArray, xr.DataArray]:
    """``pod`` and ``sr`` at the requested lead times (all when ``lead_time`` is None)."""
    if lead_time is None or LEAD_TIME_DIM not in pod.dims:
        return pod, sr
    wanted = [pd.Timedelta(v) for v in np.atleast_1d(lead_time)]
    have = pd.TimedeltaIndex(pod[LEAD_TIME_DIM].values)
    bad = [w for w in wanted if w not in have]
    if bad:
        raise UnknownNameError(
            f"lead time(s) {[str(b) for b in bad]} not in the scores; available: "
            f"{[str(h) for h in have]}"
        )
    return pod.sel({LEAD_TIME_DIM: wanted}), sr.sel({LEAD_TIME_DIM: wanted})


def _plot_pod_sr(
    ax: Any, pod: xr.DataArray, sr: xr.DataArray, marker: str, color: Any, *, label_leads: bool
) -> None:
    """One line of (SR, POD) points through the lead times; optionally label its two ends."""
    pv, sv = (
        np.atleast_1d(np.asarray(pod.values, float)),
        np.atleast_1d(np.asarray(sr.values, float)),
    )
    ax.plot(
        sv,
        pv,
        marker=marker,
        color=color,
        lw=1.2,
        markersize=6,
        markeredgecolor="k",
        markeredgewidth=0.4,
        zorder=4,
    )
    if not (LEAD_TIME_DIM in pod.dims and pv.size > 1 and label_leads):
        return
    x, _, fmt = _lead_axis(pod[LEAD_TIME_DIM])
    for j in (0, pv.size - 1):
        if np.isfinite(pv[j]) and np.isfinite(sv[j]):
            ax.annotate(
                fmt(x[j]),
                (sv[j], pv[j]),
                xytext=(4, -8),
                textcoords="offset points",
                fontsize=6.5,
                color=color,
            )


def performance_diagram(
    scores: xr.Dataset | Mapping[str, xr.Dataset],
    path: str | os.PathLike | None = None,
    *,
    thresholds: Any = None,
    lead_time: Any = None,
    select: Mapping[Hashable, Any] | None = None,
    ax: Any = None,
    title: str | None = None,
    dpi: int = 100,
    overwrite: bool = False,
) -> Any:
    """Performance diagram (Roebber 2009): POD against success ratio with CSI and bias lines.

    Each (model, threshold) is a line through its lead times (marker per threshold, colour
    per model; the first and last lead times are labelled). Curved contours are CSI, dashed
    rays from the origin are frequency bias (POD / SR); the perfect forecast is the top-right
    corner.

    Parameters
    ----------
    scores : xarray.Dataset or dict of str to Dataset
        With ``pod`` and ``sr`` (or ``far``; or ``hits``/``misses``/``false_alarms``) on
        ``threshold`` and optionally ``lead_time`` (and ``model``).
    path : path, optional
        Save the figure there (suffix picks the format). An existing file is kept unless
        ``overwrite=True``; a folder or an unknown suffix is refused before drawing.
    thresholds : float or list, optional
        Thresholds to show (default all).
    lead_time : duration or list, optional
        Lead times to show (default all).
    select : dict, optional
        Values of other dims to pick, e.g. ``{"pool": 1}``.
    ax : matplotlib Axes, optional
        Draw into these axes (default: a new figure).
    title : str, optional
        Axes title.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"pod": (("threshold", "lead_time"), [[0.9, 0.7], [0.6, 0.4]]),
    ...      "far": (("threshold", "lead_time"), [[0.2, 0.3], [0.4, 0.6]])},
    ...     coords={"threshold": [0.1, 1.0], "lead_time": pd.to_timedelta([5, 30], unit="min")})
    >>> fig = performance_diagram({"persistence": ds})
    >>> fig.axes[0].get_xlabel()
    'success ratio (1 - FAR)'
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if path is not None:
        check_figure_path(path, overwrite=overwrite, dpi=dpi)  # before any drawing
    tables = _tables(scores)
    thr = _threshold_values(tables, thresholds)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 6.0), layout="constrained")
    else:
        fig = ax.figure
    _csi_background(ax)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    units = _threshold_units(tables)
    thr_list = thr if thr is not None else [None]
    for i, (model, ds) in enumerate(tables.items()):
        color = colors[i % len(colors)]
        pod_all = _variable(ds, "pod", model)
        sr_all = _variable(ds, "sr", model)
        for k, t in enumerate(thr_list):
            pod, sr = pod_all, sr_all
            if t is not None:
                pod, sr = pod.sel(threshold=t), sr.sel(threshold=t)
            pod, sr = _select_lead_times(pod, sr, lead_time)
            pod = _reduce_to(pod, [LEAD_TIME_DIM], select, model)
            sr = _reduce_to(sr, [LEAD_TIME_DIM], select, model)
            _plot_pod_sr(ax, pod, sr, _MARKERS[k % len(_MARKERS)], color, label_leads=k == 0)
    handles = [
        Line2D([], [], color=colors[i % len(colors)], lw=2, label=m) for i, m in enumerate(tables)
    ]
    if thr is not None:
        handles += [
            Line2D(
                [],
                [],
                color="0.3",
                marker=_MARKERS[k % len(_MARKERS)],
                ls="none",
                label=f"\u2265 {float(t):g}{units}",
            )
            for k, t in enumerate(thr)
        ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", framealpha=0.9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("success ratio (1 - FAR)")
    ax.set_ylabel("probability of detection (POD)")
    ax.set_title(
        title
        if title is not None
        else "performance diagram (contours: CSI, dashed: frequency bias)",
        fontsize=10,
        pad=8,
    )
    if path is not None:
        save_figure(fig, path, dpi=dpi, overwrite=overwrite)
    return fig

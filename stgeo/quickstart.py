"""``stgeo quickstart``: the main job on the embedded synthetic storms.

Generates a day of synthetic rain cells into a Zarr store, forecasts the test period with
the baselines (persistence, optical-flow extrapolation when pysteps is installed) and a
small learned model trained on the training period, scores all of them with the same
code (MSE and CSI at 0.1/1/5 mm/h per lead time), and writes a report, the scores, the
forecast stores and the trained model.

Examples
--------
>>> from stgeo.quickstart import quickstart
>>> out = quickstart("/tmp/stgeo-qs-doctest", train_model=False, n_times=96,
...                  shape=(48, 48), verbose=False)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .conventions import INIT_TIME_DIM, LEAD_TIME_DIM
from .data import open_dataset, to_zarr
from .data.safety import artefact_kind
from .datasets.synthetic import storm_cells
from .errors import OutputExistsError, StgeoTypeError

__all__ = ["QUICKSTART_MODEL", "quickstart"]

#: the quickstart's learned model and training settings: the recipe of the pretrained
#: ``storms-convlstm`` (intensity-weighted MAE, model selection on CSI; a few minutes on 2 CPU
#: cores). Plain MSE spreads drizzle and loses every 5 mm/h cell; this keeps them. Quantile
#: mapping per lead (fitted on the training split) restores the rain area the model shrinks
#: at long leads: frequency bias near 1 at every lead without moving rain.
QUICKSTART_MODEL: dict[str, Any] = {
    "model": "convlstm",
    "hidden": 32,
    "num_layers": 2,
    "kernel_size": 3,
    "patch": 4,
    "epochs": 16,
    "batch_size": 8,
    "lr": 3e-3,
    "normalization": "log1p",
    "loss": "mae",
    "loss_weights": [2, 5, 10],
    "val_metric": "csi",
    "thresholds": [0.1, 1.0, 5.0],
    "calibration": "quantile",
}

THRESHOLDS = (0.1, 1.0, 5.0)
IN_STEPS, LEAD_STEPS = 4, 12
#: written first into the output folder: a folder holding it is the quickstart's own, and a
#: re-run there replaces the quickstart's outputs (any other non-empty folder is refused)
MARKER = ".stgeo-quickstart.json"
MARKER_FORMAT = "stgeo-quickstart"


def _json_dict(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _written_by_quickstart(out: Path) -> bool:
    """Whether ``out`` holds the quickstart's marker, or is the output of a quickstart from
    before the marker (its ``summary.json`` and its ``storms.zarr`` store)."""
    if _json_dict(out / MARKER).get("format") == MARKER_FORMAT:
        return True
    summary = _json_dict(out / "summary.json")
    return {"store", "forecasts", "table"} <= set(summary) and (
        artefact_kind(out / "storms.zarr") == "store"
    )


def _check_out(out: Any) -> Path:
    """Refuse an output folder that holds anything the quickstart did not write (before any
    work): the quickstart replaces its files there (report.md, summary.json, ...)."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out).strip():
        raise StgeoTypeError(f"out must be a folder path (str or Path), got {out!r}")
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise OutputExistsError(
            f"{out} is a file; the quickstart writes into a folder: give a new or empty folder"
        )
    if not out.is_dir() or _written_by_quickstart(out):
        return out
    found = sorted(c.name for c in out.iterdir())
    if found:
        shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise OutputExistsError(
            f"{out} is a folder that the quickstart did not write and it is not empty "
            f"({shown}); the quickstart writes report.md, summary.json, scores.nc, figures, "
            "stores and a model there, replacing files of those names. Choose a new or empty "
            "folder (out=...; on the command line --out FOLDER)"
        )
    return out


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, flush=True)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    head = "| " + " | ".join(c.ljust(widths[c]) for c in cols) + " |"
    sep = "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"
    body = ["| " + " | ".join(_fmt(r[c]).ljust(widths[c]) for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if np.isfinite(v) else "nan"
    return str(v)


@dataclass(frozen=True)
class _Period:
    """The quickstart's time split: train, validate, then test forecasts."""

    n: int
    train_end: pd.Timestamp
    val_start: pd.Timestamp
    val_end: pd.Timestamp
    test_inits: pd.DatetimeIndex

    @classmethod
    def of(cls, times: pd.DatetimeIndex) -> _Period:
        """70 % train, 10 % validation, forecasts every other step of the last 20 %."""
        n = len(times)
        return cls(
            n=n,
            train_end=times[int(0.7 * n) - 1],
            val_start=times[int(0.7 * n)],
            val_end=times[int(0.8 * n) - 1],
            test_inits=times[int(0.8 * n) + IN_STEPS - 1 : n - LEAD_STEPS : 2],
        )


def _baselines(verbose: bool) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The baselines to run: persistence, and extrapolation when pysteps is installed."""
    models: dict[str, tuple[Any, dict[str, Any]]] = {"persistence": ("persistence", {})}
    try:
        from ._optional import import_optional

        import_optional("pysteps")
        models["extrapolation"] = ("extrapolation", {"in_steps": IN_STEPS})
    except ImportError:
        _say(verbose, "  (pysteps not installed: skipping the extrapolation baseline)")
    return models


def _train_model(
    ds: xr.Dataset,
    period: _Period,
    seed: int,
    out: Path,
    summary: dict[str, Any],
    verbose: bool,
) -> tuple[str, Any]:
    """Train :data:`QUICKSTART_MODEL` on the train/validation period and save it in ``out``."""
    from .training import train

    cfg = dict(QUICKSTART_MODEL)
    name = cfg.pop("model")
    t0 = time.perf_counter()
    trained = train(
        ds.sel(time=slice(None, period.val_end)),
        model=name,
        variable="rain_rate",
        in_steps=IN_STEPS,
        out_steps=LEAD_STEPS,
        splits={"train": (None, period.train_end), "val": (period.val_start, period.val_end)},
        seed=seed,
        **cfg,
    )
    summary["train_seconds"] = round(time.perf_counter() - t0, 1)
    summary["model"] = trained.save(out / "model", overwrite=True)
    _say(verbose, f"  trained {name} in {summary['train_seconds']} s -> {summary['model']}")
    return name, trained


def _forecast_and_score(
    ds: xr.Dataset,
    models: dict[str, tuple[Any, dict[str, Any]]],
    test_inits: pd.DatetimeIndex,
    out: Path,
    summary: dict[str, Any],
    verbose: bool,
) -> xr.Dataset:
    """Forecast the test period with every model into ``out/forecasts`` and score them all."""
    from .forecasting import forecast
    from .metrics import score

    (out / "forecasts").mkdir(exist_ok=True)
    scores = []
    for label, (model, kwargs) in models.items():
        t0 = time.perf_counter()
        path = out / "forecasts" / f"{label}.zarr"
        fc = forecast(
            ds,
            model,
            variable="rain_rate",
            init_times=test_inits,
            lead_steps=LEAD_STEPS,
            output=path,
            overwrite=True,  # the quickstart's own folder: a re-run replaces its forecasts
            progress=False,
            **kwargs,
        )
        summary["forecasts"][label] = str(path)
        s = score(
            fc,
            ds.rain_rate,
            metrics=["mse", "csi", "pod", "sr", "frequency_bias"],
            thresholds=list(THRESHOLDS),
        ).compute()
        scores.append(s.expand_dims(model=[label]))
        _say(verbose, f"  forecast + scored {label} in {time.perf_counter() - t0:.1f} s")
    allscores = xr.concat(scores, "model")
    allscores.attrs.update(
        title="stgeo quickstart scores",
        thresholds_units="mm h-1",
        description="MSE per lead (mm2 h-2); CSI etc. per lead and threshold (event: >= threshold)",
    )
    return allscores


def _plot_figures(
    allscores: xr.Dataset,
    ds: xr.Dataset,
    summary: dict[str, Any],
    out: Path,
    learned: str | None = None,
) -> tuple[str, dict[str, Path]]:
    """Maps of the learned model's forecast (without one: the lowest-MSE model's) next to
    the observations, and score plots."""
    from .plot import performance_diagram, plot_csi_vs_lead, plot_forecast

    best = learned or str(allscores.mse.mean(LEAD_TIME_DIM).idxmin("model").values)
    fc_best = open_dataset(summary["forecasts"][best])["rain_rate"]
    wet = (fc_best.isel({LEAD_TIME_DIM: 0}) >= 1.0).mean(("y", "x")).compute()
    init = fc_best[INIT_TIME_DIM].values[int(wet.argmax(INIT_TIME_DIM))]
    figures = {
        "map": out / f"map_{best}.png",
        "csi": out / "csi_vs_lead.png",
        "performance": out / "performance_diagram.png",
    }
    plot_forecast(
        fc_best,
        ds.rain_rate,
        init_time=init,
        lead_time=["15min", "30min", "60min"],
        path=figures["map"],
        overwrite=True,  # the quickstart's own folder (checked by _check_out)
    )
    plot_csi_vs_lead(allscores, path=figures["csi"], overwrite=True)
    performance_diagram(allscores, path=figures["performance"], overwrite=True)
    import matplotlib.pyplot as plt

    plt.close("all")
    return best, figures


def _table_rows(allscores: xr.Dataset) -> list[dict[str, Any]]:
    """One row per model: mean MSE; CSI at every threshold at +30 and +60 min; the range of
    the frequency bias over all leads per threshold (honest about drizzle and lost peaks)."""
    leads = pd.to_timedelta(allscores[LEAD_TIME_DIM].values)

    def nearest(delta: str | pd.Timedelta) -> int:
        return int(np.argmin(np.abs(leads - pd.Timedelta(delta))))

    rows = []
    for label in allscores.model.values:
        s = allscores.sel(model=label)
        row: dict[str, Any] = {"model": str(label), "MSE (mean over leads)": float(s.mse.mean())}
        for thr in THRESHOLDS:
            for minutes in (30, 60):
                k = nearest(pd.Timedelta(minutes=minutes))
                row[f"CSI {thr:g} mm/h +{minutes} min"] = float(
                    s.csi.sel(threshold=thr).isel({LEAD_TIME_DIM: k})
                )
        for thr in THRESHOLDS:
            bias = s.frequency_bias.sel(threshold=thr).values
            row[f"bias {thr:g} mm/h (leads)"] = f"{np.nanmin(bias):.2f}..{np.nanmax(bias):.2f}"
        rows.append(row)
    return rows


def _verdict(rows: list[dict[str, Any]], allscores: xr.Dataset, learned: str | None) -> list[str]:
    """Plain statements of where the learned model beats extrapolation, and its bias."""
    by = {r["model"]: r for r in rows}
    if learned is None or learned not in by:
        return []
    ref = "extrapolation" if "extrapolation" in by else "persistence"
    wins, losses = [], []
    for thr in (1.0, 5.0):
        for minutes in (30, 60):
            key = f"CSI {thr:g} mm/h +{minutes} min"
            (wins if by[learned][key] > by[ref][key] else losses).append(f"{thr:g} mm/h +{minutes}")
    lines = [
        f"- {learned} beats {ref} in CSI at: {', '.join(wins) or 'none'}"
        + (f"; does not at: {', '.join(losses)}" if losses else "")
        + "."
    ]
    for thr in THRESHOLDS:
        bias = allscores.frequency_bias.sel(model=learned, threshold=thr).values
        lo, hi = float(np.nanmin(bias)), float(np.nanmax(bias))
        ok = "within" if 0.7 <= lo and hi <= 1.4 else "outside"
        lines.append(
            f"- frequency bias at {thr:g} mm/h over all leads: {lo:.2f}..{hi:.2f} ({ok} 0.7..1.4)."
        )
    return lines


def _report(
    table: str,
    *,
    seed: int,
    shape: tuple[int, int],
    period: _Period,
    out: Path,
    model_path: str | None,
    best: str,
    verdict: list[str],
    figures: dict[str, Path],
    elapsed: float,
) -> str:
    """The markdown report."""
    inits = period.test_inits
    return "\n".join(
        [
            "# stgeo quickstart report",
            "",
            f"Synthetic storm cells (`stgeo.testing.storm_cells(seed={seed})`), {period.n} "
            f"frames of {shape[0]}x{shape[1]} at 5 min, 2 km LAEA grid over Belgium.",
            f"Test period: {len(inits)} forecasts initialised {inits[0]} .. "
            f"{inits[-1]}, {LEAD_STEPS} leads of 5 min. Scores pooled over all pixels and "
            "forecasts; CSI event = rain rate >= threshold.",
            "",
            table,
            "",
            *verdict,
            *([""] if verdict else []),
            f"Files: scores `{out / 'scores.nc'}`, forecasts `{out / 'forecasts'}`"
            + (f", model `{model_path}`" if model_path is not None else ""),
            f"Figures: map of {best} vs observed `{figures['map'].name}`, CSI vs lead "
            f"`{figures['csi'].name}`, performance diagram `{figures['performance'].name}`.",
            f"Total time: {elapsed:.0f} s.",
            "",
        ]
    )


def quickstart(
    out: str | Path = "stgeo-quickstart",
    *,
    seed: int = 0,
    train_model: bool = True,
    n_times: int = 288,
    shape: tuple[int, int] = (96, 96),
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the quickstart job and return a summary (paths and scores).

    Parameters
    ----------
    out : str or path
        Output folder: new, empty, or the output folder of an earlier quickstart (whose
        outputs are then replaced); created if needed. Holds ``storms.zarr``,
        ``forecasts/*.zarr``, ``scores.nc``, ``report.md``, ``summary.json``, the figures,
        ``model/`` and the marker ``.stgeo-quickstart.json``.
    seed : int
        Seed of the synthetic data and of training.
    train_model : bool
        Train and score the learned model (default) or only the baselines.
    n_times, shape : int, (int, int)
        Size of the synthetic dataset (default: one day of 5-min frames on 96x96 at 2 km).
    verbose : bool
        Print progress and the report.

    Returns
    -------
    dict
        ``{"report": path, "scores": path, "store": path, "forecasts": {...}, "table": [...]}``.

    Raises
    ------
    OutputExistsError
        ``out`` is a file, or a non-empty folder the quickstart did not write (checked
        before any work; nothing is replaced).
    """
    t_start = time.perf_counter()
    out = _check_out(out)  # before any work
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"format": MARKER_FORMAT}) + "\n")
    _say(verbose, f"stgeo quickstart: writing to {out.resolve()}")

    storms = storm_cells(n_times=n_times, shape=shape, seed=seed)
    store = to_zarr(storms, out / "storms.zarr", chunks={"time": 16}, overwrite=True)
    ds = open_dataset(store)
    period = _Period.of(pd.DatetimeIndex(ds.time.values))
    _say(
        verbose,
        f"  data: {period.n} frames of {shape[0]}x{shape[1]} at 5 min -> {store}\n"
        f"  train until {period.train_end}, validate until {period.val_end}, "
        f"test: {len(period.test_inits)} forecasts from {period.test_inits[0]} "
        f"({LEAD_STEPS} x 5 min ahead)",
    )

    models = _baselines(verbose)
    summary: dict[str, Any] = {"store": store, "forecasts": {}}
    name = None
    if train_model:
        name, trained = _train_model(ds, period, seed, out, summary, verbose)
        models[name] = (trained, {})

    allscores = _forecast_and_score(ds, models, period.test_inits, out, summary, verbose)
    allscores.to_netcdf(out / "scores.nc")
    best, figures = _plot_figures(allscores, ds, summary, out, name)
    summary["figures"] = {k: str(v) for k, v in figures.items()}

    rows = _table_rows(allscores)
    elapsed = time.perf_counter() - t_start
    report = _report(
        _table(rows, list(rows[0])),
        seed=seed,
        shape=shape,
        period=period,
        out=out,
        model_path=summary.get("model"),
        best=best,
        verdict=_verdict(rows, allscores, name),
        figures=figures,
        elapsed=elapsed,
    )
    (out / "report.md").write_text(report)
    summary.update(
        report=str(out / "report.md"),
        scores=str(out / "scores.nc"),
        table=rows,
        seconds=round(elapsed, 1),
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _say(verbose, "\n" + report)
    _say(
        verbose,
        f"outputs in {out.resolve()}: report.md, scores.nc, summary.json, forecasts/, "
        "storms.zarr, *.png" + (", model/" if "model" in summary else ""),
    )
    return summary

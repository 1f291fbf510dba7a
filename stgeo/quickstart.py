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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .conventions import INIT_TIME_DIM, LEAD_TIME_DIM
from .data import open_dataset, to_zarr
from .datasets.synthetic import storm_cells

__all__ = ["QUICKSTART_MODEL", "quickstart"]

#: the quickstart's learned model and training settings (about a minute on 2 CPU cores)
QUICKSTART_MODEL: dict[str, Any] = {
    "model": "convlstm",
    "hidden": 32,
    "num_layers": 2,
    "kernel_size": 3,
    "patch": 4,
    "epochs": 12,
    "batch_size": 8,
    "lr": 3e-3,
    "normalization": "log1p",
}

THRESHOLDS = (0.1, 1.0, 5.0)
IN_STEPS, LEAD_STEPS = 4, 12


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
        Output folder; created if needed. Holds ``storms.zarr``, ``forecasts/*.zarr``,
        ``scores.nc``, ``report.md``, ``summary.json`` and ``model/``.
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
    """
    from .forecasting import forecast
    from .metrics import score

    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _say(verbose, f"stgeo quickstart: writing to {out.resolve()}")

    storms = storm_cells(n_times=n_times, shape=shape, seed=seed)
    store = to_zarr(storms, out / "storms.zarr", chunks={"time": 16})
    ds = open_dataset(store)
    times = pd.DatetimeIndex(ds.time.values)
    n = len(times)
    t_train_end = times[int(0.7 * n) - 1]
    t_val_end = times[int(0.8 * n) - 1]
    test_inits = times[int(0.8 * n) + IN_STEPS - 1 : n - LEAD_STEPS : 2]
    _say(
        verbose,
        f"  data: {n} frames of {shape[0]}x{shape[1]} at 5 min -> {store}\n"
        f"  train until {t_train_end}, validate until {t_val_end}, "
        f"test: {len(test_inits)} forecasts from {test_inits[0]} ({LEAD_STEPS} x 5 min ahead)",
    )

    models: dict[str, tuple[Any, dict[str, Any]]] = {"persistence": ("persistence", {})}
    try:
        from ._optional import import_optional

        import_optional("pysteps")
        models["extrapolation"] = ("extrapolation", {"in_steps": IN_STEPS})
    except ImportError:
        _say(verbose, "  (pysteps not installed: skipping the extrapolation baseline)")

    summary: dict[str, Any] = {"store": store, "forecasts": {}}
    if train_model:
        from .training import train

        cfg = dict(QUICKSTART_MODEL)
        name = cfg.pop("model")
        t0 = time.perf_counter()
        trained = train(
            ds.sel(time=slice(None, t_val_end)),
            model=name,
            variable="rain_rate",
            in_steps=IN_STEPS,
            out_steps=LEAD_STEPS,
            splits={"train": (None, t_train_end), "val": (times[int(0.7 * n)], t_val_end)},
            seed=seed,
            **cfg,
        )
        summary["train_seconds"] = round(time.perf_counter() - t0, 1)
        summary["model"] = trained.save(out / "model")
        models[name] = (trained, {})
        _say(verbose, f"  trained {name} in {summary['train_seconds']} s -> {summary['model']}")

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
    allscores.to_netcdf(out / "scores.nc")

    # maps of the most skilful model's forecast next to the observations, and score plots
    from .plot import performance_diagram, plot_csi_vs_lead, plot_forecast

    best = str(allscores.mse.mean(LEAD_TIME_DIM).idxmin("model").values)
    fc_best = open_dataset(summary["forecasts"][best])["rain_rate"]
    wet = (fc_best.isel(lead_time=0) >= 1.0).mean(("y", "x")).compute()
    init = fc_best.init_time.values[int(wet.argmax(INIT_TIME_DIM))]
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
    )
    plot_csi_vs_lead(allscores, path=figures["csi"])
    performance_diagram(allscores, path=figures["performance"])
    import matplotlib.pyplot as plt

    plt.close("all")
    summary["figures"] = {k: str(v) for k, v in figures.items()}

    leads = pd.to_timedelta(allscores.lead_time.values)
    rows = []
    for label in allscores.model.values:
        s = allscores.sel(model=label)
        row: dict[str, Any] = {"model": str(label), "MSE (mean over leads)": float(s.mse.mean())}
        for minutes in (30, 60):
            k = int(np.argmin(np.abs(leads - pd.Timedelta(minutes=minutes))))
            row[f"CSI 1 mm/h +{minutes} min"] = float(s.csi.sel(threshold=1.0).isel(lead_time=k))
        row["CSI 5 mm/h +30 min"] = float(
            s.csi.sel(threshold=5.0).isel(
                lead_time=int(np.argmin(np.abs(leads - pd.Timedelta("30min"))))
            )
        )
        rows.append(row)
    cols = list(rows[0])
    table = _table(rows, cols)
    elapsed = time.perf_counter() - t_start
    report = "\n".join(
        [
            "# stgeo quickstart report",
            "",
            f"Synthetic storm cells (`stgeo.testing.storm_cells(seed={seed})`), {n} frames of "
            f"{shape[0]}x{shape[1]} at 5 min, 2 km LAEA grid over Belgium.",
            f"Test period: {len(test_inits)} forecasts initialised {test_inits[0]} .. "
            f"{test_inits[-1]}, {LEAD_STEPS} leads of 5 min. Scores pooled over all pixels and "
            "forecasts; CSI event = rain rate >= threshold.",
            "",
            table,
            "",
            f"Files: scores `{out / 'scores.nc'}`, forecasts `{out / 'forecasts'}`"
            + (f", model `{summary.get('model')}`" if "model" in summary else ""),
            f"Figures: map of {best} vs observed `{figures['map'].name}`, CSI vs lead "
            f"`{figures['csi'].name}`, performance diagram `{figures['performance'].name}`.",
            f"Total time: {elapsed:.0f} s.",
            "",
        ]
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

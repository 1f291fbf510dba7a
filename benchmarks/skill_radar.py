"""Radar nowcasting skill with the protocol of specs/evaluation.md (``skill_radar``).

Builds the three test events' Zarr stores from ``../shared/data`` with the catalog recipes (once,
into ``--cache``), forecasts 12 steps from every origin t0 = 3, 7, 11, ... (4 input frames) on
the full native grid with each method, and scores them with ``stgeo.score``: NaN (no data) is
0 mm/h in both fields, event = value >= threshold, hits/misses/false alarms summed over all
pixels and origins of an event per lead step, CSI per event, then the unweighted mean over the
events at ~30 and ~60 min (steps 6/12 for 5-min data, 5/10 for the 6-min BoM event).

Baselines (persistence, Lucas-Kanade extrapolation, S-PROG) are recomputed in the same run with
the same code; learned models are given as trained model directories (``--model DIR``, their
registry name is taken from the spec) or trained in the run (``--train NAME``): on random
``--patch`` crops (importance-sampled towards rain) of the protocol's five training events (the
``radar-train`` catalog collection; ``--large-area`` adds the OPERA composite:
``radar-train-large``), 4 -> 12
frames, for at most ``--train-minutes`` of wall time, then forecast on the full native grids of
the test events (tiled, see ``stgeo.forecast``).

    python benchmarks/skill_radar.py [--quick] [--model DIR ...] [--train NAME ...]
                                     [--train-minutes 20] [--cache DIR]

``--quick`` scores one event (MeteoSwiss 2017-01-31) from 2 origins: a smoke test of the
pipeline, not a skill figure. Ends with one JSON line (keys of specs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import stgeo
from stgeo.datasets import build_from_catalog
from stgeo.training import TimeLimit

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TEST_EVENTS = ("radar-fmi-20160928", "radar-bom2-20180616", "radar-mch-20170131")
BASELINES = ("persistence", "extrapolation", "sprog")
THRESHOLDS = (0.1, 1.0, 5.0)
IN_STEPS, OUT_STEPS, STRIDE = 4, 12, 4


def origins(n_times: int, quick: bool) -> list[int]:
    """Protocol origins t0 = 3, 7, 11, ... with 12 future frames inside the event."""
    idx = list(range(IN_STEPS - 1, n_times - OUT_STEPS, STRIDE))
    return idx[:2] if quick else idx


def report_leads(step: pd.Timedelta) -> dict[str, int]:
    """Lead steps reported as ~30 and ~60 min for a time step."""
    k30 = round(pd.Timedelta("30min") / step)
    return {"30min": k30, "60min": 2 * k30}


def open_event(name: str, cache: Path) -> xr.Dataset:
    with stgeo.set_options(cache_dir=str(cache)):
        build_from_catalog(name, data_root=SHARED)
        return stgeo.open_dataset(name)


# sizes that train a useful number of steps in the budget on 2 CPU cores (a 7.4 M-parameter
# simvp-radar step on 8 crops of 128x128 takes ~10x longer than this 1.2 M one)
MODEL_SETTINGS = {
    "simvp": {"hid_S": 16, "hid_T": 128, "N_S": 4, "N_T": 4},
    # extrapolation corrected in Lagrangian coordinates, probability matched (1.0 M)
    "lagrangian": {"hidden": 32, "prob_matching": True},
}


def train_settings(quick: bool, patch: int, epochs: int = 15) -> dict:
    """Training settings of ``--train`` (the same for every model; the seed is fixed)."""
    return {
        "in_steps": IN_STEPS,
        "out_steps": OUT_STEPS,
        "patch_size": (patch, patch),
        "importance": True,
        "normalization": "log1p",
        "batch_size": 4 if quick else 8,
        "epochs": 2 if quick else epochs,
        "max_steps_per_epoch": 3 if quick else 40,
        "max_val_steps": 2 if quick else 20,
        "val_metric": "csi",
        "lr": 2e-3,
        "seed": 0,
        "progress": False,
    }


def train_model(name: str, args: argparse.Namespace) -> tuple[Path, float]:
    """Train ``name`` on the radar training events (and sources); return its folder and time."""
    cache = Path(args.cache)
    collection = "radar-train-large" if args.large_area else "radar-train"
    members = list(stgeo.data.get_collection(collection).members)
    with stgeo.set_options(cache_dir=str(cache)):
        for ev in members:
            build_from_catalog(ev, data_root=SHARED)
        tag = f"{name}-p{args.patch}" + ("-la" if args.large_area else "")
        out = cache / "skill_radar_models" / tag
        kw = train_settings(args.quick, args.patch, args.epochs)
        t = time.perf_counter()
        m = stgeo.train(
            members,
            model=name,
            time_step="per-event",
            callbacks=[TimeLimit(args.train_minutes * 60)],
            **kw,
            **MODEL_SETTINGS.get(name, {}),
        )
        seconds = time.perf_counter() - t
        m.save(out, overwrite=True)
    last = m.history[-1] if m.history else {}
    print(
        f"trained {name} in {seconds:.0f} s: {len(m.history)} epochs, best epoch "
        f"{m.metrics.get('best_epoch')}, val_csi_m {last.get('val_csi_m')}",
        flush=True,
    )
    return out, seconds


def forecast_event(ds: xr.Dataset, model: str, quick: bool) -> xr.DataArray:
    rr = ds.rain_rate.fillna(0.0)  # the protocol: no data is 0 mm/h
    t0 = origins(rr.sizes["time"], quick)
    kw = {"in_steps": IN_STEPS} if not Path(model).exists() else {}
    return stgeo.forecast(
        rr, model, init_times=rr.time.values[t0], lead_steps=OUT_STEPS, progress=False, **kw
    )


def score_event(fc: xr.DataArray, obs: xr.DataArray) -> xr.Dataset:
    """CSI and frequency bias per threshold and lead, pooled over pixels and origins."""
    fc = fc.fillna(0.0)
    obs = obs.fillna(0.0)
    return stgeo.score(
        fc, obs, metrics=["csi", "frequency_bias"], thresholds=list(THRESHOLDS)
    ).compute()


def method_row(per_event: dict[str, xr.Dataset], steps: dict[str, pd.Timedelta]) -> dict:
    row: dict[str, float] = {}
    for label in ("30min", "60min"):
        for thr, key in ((1.0, "1"), (5.0, "5"), (0.1, "01")):
            csis, biases = [], []
            for ev, sc in per_event.items():
                lead = pd.Timedelta(steps[ev]) * report_leads(steps[ev])[label]
                sel = {"threshold": thr, "lead_time": lead}
                csis.append(float(sc.csi.sel(sel)))
                biases.append(float(sc.frequency_bias.sel(sel)))
            row[f"csi{key}_{label}"] = round(float(np.mean(csis)), 4)
            row[f"bias{key}_{label}"] = round(float(np.mean(biases)), 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", action="append", default=[], help="trained model directory")
    ap.add_argument("--train", action="append", default=[], help="registered model to train")
    ap.add_argument("--train-minutes", type=float, default=20.0, help="training wall-time budget")
    ap.add_argument("--patch", type=int, default=128, help="training crop size (pixels)")
    ap.add_argument("--epochs", type=int, default=15, help="training epochs of 40 steps")
    ap.add_argument("--large-area", action="store_true", help="add OPERA (radar-train-large)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "stgeo"))
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs the real radar data in {SHARED}")
    events = TEST_EVENTS[2:] if args.quick else TEST_EVENTS
    data = {ev: open_event(ev, Path(args.cache)) for ev in events}
    steps = {ev: pd.Timedelta(stgeo.conventions.time_step(ds)) for ev, ds in data.items()}
    trained = {}
    for name in args.train:
        path, seconds = train_model(name, args)
        trained[str(path)] = seconds
    methods = [*BASELINES, *args.model, *trained]
    results: dict[str, dict] = {}
    for m in methods:
        name = stgeo.load_model(m).spec.model if Path(m).exists() else m
        if name in results:  # two models of one architecture: tell them apart by folder
            name = f"{name}:{Path(m).name}"
        t = time.perf_counter()
        per_event = {
            ev: score_event(forecast_event(ds, m, args.quick), ds.rain_rate)
            for ev, ds in data.items()
        }
        results[name] = method_row(per_event, steps)
        results[name]["forecast_seconds"] = round(time.perf_counter() - t, 1)
        if m in trained:
            results[name]["train_seconds"] = round(trained[m], 1)
        print(f"{name:14s}", json.dumps(results[name]), flush=True)
    cols = ["csi1_30min", "csi1_60min", "csi5_30min", "csi5_60min", "bias1_30min", "bias1_60min"]
    print(f"\nmean over {len(events)} test event(s): " + ", ".join(events))
    print(f"{'method':14s}" + "".join(f"{c:>12s}" for c in cols))
    for name, row in results.items():
        print(f"{name:14s}" + "".join(f"{row[c]:12.3f}" for c in cols))
    print(json.dumps({**results, "events": list(events), "quick": args.quick}))


if __name__ == "__main__":
    main()

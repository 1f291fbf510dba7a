"""Does every learned model learn? Synthetic storms, one budget, one seed (``zoo_synthetic``).

Data: ``stgeo.testing.storm_cells`` (the generator of ``stgeo quickstart``), 5-min rain-rate
frames in mm/h. Training storms: ``--series`` independent days (``seed=0, 2, 3, ...``; the
first 85 % of each day's frames train, the rest validate), trained as separate events; held-out
storms: an independent series with ``seed=1``, never seen in training. Each day's wind blows
from its own random direction (turning slowly), so one day teaches one direction of motion:
a model that must move the held-out storms the right way needs several.
Task: 4 input frames -> 12 lead steps (1 h), as the quickstart and the radar protocol.

Every learned model (convlstm, simvp, tau, swin, earthfarseer, predformer, stresnet) is trained
with ``stgeo.train`` under the same budget and seed: the same number of optimiser steps
(``--epochs`` x ``--steps`` of ``--batch`` windows), learning rate, cosine schedule,
normalisation (``standard`` by default: the training loss is then the scored MSE up to a
constant factor; ``--normalization log1p`` weights light rain more) and bf16 autocast where
the CPU has it. Model sizes are each family's
layout at a width that trains in a few minutes on one CPU core (``MODEL_SETTINGS``; the
registered defaults are sized for benchmarks such as TaxiBJ and would take hours here).
ConvLSTM's settings add ``augment="dihedral"`` (random flips and quarter turns of the
windows); the other models train on the windows as they are.
ST-ResNet is included: it is fully convolutional on a fixed grid, and the training and held-out
storms share the grid. The baselines (persistence and optical-flow extrapolation, pysteps'
Lucas-Kanade + semi-Lagrangian advection) are recomputed in the same run on the same held-out
windows, and everything is scored by ``stgeo.score``: MSE (mm^2 h^-2) pooled over pixels,
origins and leads, and CSI at 1 mm/h (hits / misses / false alarms pooled over pixels and
origins per lead, then averaged over leads, and at +30 and +60 min).

    python benchmarks/zoo_synthetic.py [--quick] [--models convlstm,swin] [--epochs 20]
                                       [--steps 50] [--batch 8] [--lr 2e-3]
                                       [--series 8]

``--quick`` trains tiny versions for a few steps on small grids: a smoke test of the pipeline,
not a skill figure. Ends with one JSON line: per method ``mse``, ``csi1``, ``csi1_30min``,
``csi1_60min`` (and ``train_seconds``, ``params``, ``beats_persistence``,
``beats_extrapolation`` for the learned models), plus the run's settings.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
import skill_common as common
import xarray as xr

import stgeo

IN_STEPS, OUT_STEPS = 4, 12
THRESHOLD = 1.0  # mm/h
MODELS = ("convlstm", "simvp", "tau", "swin", "earthfarseer", "predformer", "stresnet")
BASELINES = ("persistence", "extrapolation")

# each family at a width that trains a few hundred steps in minutes on one CPU core
MODEL_SETTINGS: dict[str, dict[str, Any]] = {
    # ConvLSTM alone also trains on flipped / rotated windows: without them it learns the
    # eight training winds and does not beat extrapolation on the held-out day (MSE 8.69)
    "convlstm": {
        "hidden": 64,
        "num_layers": 2,
        "kernel_size": 3,
        "patch": 4,
        "augment": "dihedral",
    },
    "simvp": {"hid_S": 16, "hid_T": 128, "N_S": 4, "N_T": 4},
    "tau": {"hid_S": 16, "hid_T": 128, "N_S": 4, "N_T": 4},
    "swin": {"hid_S": 16, "hid_T": 128, "N_S": 4, "N_T": 4},
    "earthfarseer": {},  # the registered small variant
    "predformer": {"patch": 8, "dim": 64, "heads": 4, "depth": 2},
    "stresnet": {},  # the registered small variant (REGISTRY_NAME)
}
# --quick: the smallest layouts that still exercise every part of each model
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    "convlstm": {"hidden": 8, "num_layers": 1, "kernel_size": 3, "patch": 4, "augment": "dihedral"},
    "simvp": {"hid_S": 8, "hid_T": 16, "N_S": 2, "N_T": 2},
    "tau": {"hid_S": 8, "hid_T": 16, "N_S": 2, "N_T": 2},
    "swin": {"hid_S": 8, "hid_T": 16, "N_S": 2, "N_T": 2, "heads": 2, "window": 4},
    "earthfarseer": {"hid_S": 8, "fotf_dim": 16, "hid_T": 16, "N_T": 2, "tedev_depth": 1},
    "predformer": {"patch": 8, "dim": 16, "heads": 2, "depth": 1},
    "stresnet": {},
}
# the registered variant trained for a family (default: the family's name)
# stresnet-stacked: the three-branch stresnet needs a week of history, storms have a day
REGISTRY_NAME = {"stresnet": "stresnet-stacked-small"}


def storms(quick: bool, series: int = 1) -> tuple[list[xr.Dataset], xr.Dataset]:
    """Training storms (``series`` independent days: seeds 0, 2, 3, ..., each with its own
    wind) and held-out storms (seed 1) on the same grid."""
    shape = (32, 32) if quick else (64, 64)
    seeds = [0, *range(2, series + 1)]
    n = 96 if quick else 288
    train = [stgeo.testing.storm_cells(n_times=n, shape=shape, seed=s) for s in seeds]
    test = stgeo.testing.storm_cells(n_times=40 if quick else 120, shape=shape, seed=1)
    return train, test


def test_inits(test: xr.Dataset, quick: bool) -> np.ndarray:
    """Forecast origins of the held-out storms: every other frame with 12 frames to verify."""
    times = test.time.values[IN_STEPS - 1 : test.sizes["time"] - OUT_STEPS : 2]
    return times[:3] if quick else times


def score(fc: xr.DataArray, obs: xr.DataArray) -> dict[str, float]:
    """Pooled MSE and CSI at 1 mm/h (mean over leads, and at +30 and +60 min)."""
    s = stgeo.score(fc, obs, metrics=["mse", "csi"], thresholds=[THRESHOLD]).compute()
    csi = s.csi.sel(threshold=THRESHOLD)
    leads = pd.to_timedelta(s.lead_time.values)
    row = {"mse": round(float(s.mse.mean()), 5), "csi1": round(float(csi.mean()), 4)}
    for minutes in (30, 60):
        k = int(np.argmin(np.abs(leads - pd.Timedelta(minutes=minutes))))
        row[f"csi1_{minutes}min"] = round(float(csi.isel(lead_time=k)), 4)
    return row


def forecast(test: xr.Dataset, model: Any, inits: np.ndarray) -> xr.DataArray:
    kw = {"in_steps": IN_STEPS} if isinstance(model, str) else {}
    return stgeo.forecast(
        test,
        model,
        variable="rain_rate",
        init_times=inits,
        lead_steps=OUT_STEPS,
        progress=False,
        **kw,
    )


def train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The budget every model gets (same steps, batch, learning rate, schedule, seed)."""
    return {
        "variable": "rain_rate",
        "in_steps": IN_STEPS,
        "out_steps": OUT_STEPS,
        "splits": {"train": 0.85, "val": 0.15},
        "epochs": args.epochs,
        "max_steps_per_epoch": args.steps,
        "max_val_steps": 4 if args.quick else 20,
        "batch_size": args.batch,
        "lr": args.lr,
        "normalization": args.normalization,
        "seed": args.seed,
        "progress": False,
    }


def train_and_score(
    name: str,
    train: list[xr.Dataset],
    test: xr.Dataset,
    inits: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    hp = (QUICK_SETTINGS if args.quick else MODEL_SETTINGS)[name]
    t = time.perf_counter()
    model = REGISTRY_NAME.get(name, name)
    trained = stgeo.train(train, model=model, **train_settings(args), **hp)
    seconds = time.perf_counter() - t
    row = score(forecast(test, trained, inits), test.rain_rate)
    row["train_seconds"] = round(seconds, 3)  # a quick run can take under 0.05 s
    row["params"] = sum(p.numel() for p in trained.module.parameters())
    row["val_mse"] = trained.metrics.get("val_mse")
    row["best_epoch"] = trained.metrics.get("best_epoch")
    return row


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny models and data: a smoke test")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated learned models")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default 20; quick 1)")
    ap.add_argument("--steps", type=int, default=None, help="steps per epoch (default 50)")
    ap.add_argument("--batch", type=int, default=8, help="windows per step")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument(
        "--series",
        type=int,
        default=None,
        help="independent days of training storms (seeds 0, 2, 3, ...: one wind each; "
        "default 8, quick 1)",
    )
    ap.add_argument(
        "--normalization",
        default="standard",
        choices=("standard", "log1p"),
        help="input/target scaling (standard: the loss is the scored MSE up to a constant)",
    )
    args = ap.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 20)
    args.steps = args.steps or (2 if args.quick else 50)
    args.series = args.series or (1 if args.quick else 8)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.models) - set(MODEL_SETTINGS))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    train, test = storms(args.quick, args.series)
    inits = test_inits(test, args.quick)
    print(
        f"training storms {len(train)} x {dict(train[0].sizes)} (seeds 0, 2, ...), held-out "
        f"storms {dict(test.sizes)} "
        f"(seed 1), {len(inits)} origins, {IN_STEPS} -> {OUT_STEPS} steps; budget "
        f"{args.epochs} x {args.steps} steps of {args.batch}, lr {args.lr}, seed {args.seed}"
        + ("  [--quick: a smoke test, not a skill figure]" if args.quick else ""),
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    for name in BASELINES:
        results[name] = score(forecast(test, name, inits), test.rain_rate)
        print(f"{name:14s} {results[name]}", flush=True)
    for name in args.models:
        row = train_and_score(name, train, test, inits, args)
        row["beats_persistence"] = row["mse"] < results["persistence"]["mse"]
        row["beats_extrapolation"] = row["mse"] < results["extrapolation"]["mse"]
        results[name] = row
        print(f"{name:14s} {row}", flush=True)
    print()
    common.print_table(results, ["mse", "csi1", "csi1_30min", "csi1_60min", "train_seconds"])
    payload = {
        **results,
        "quick": args.quick,
        "settings": {k: v for k, v in vars(args).items() if k != "quick"},
        "model_settings": {
            m: {
                "model": REGISTRY_NAME.get(m, m),
                **(QUICK_SETTINGS if args.quick else MODEL_SETTINGS)[m],
            }
            for m in args.models
        },
    }
    common.emit(payload)
    return payload


if __name__ == "__main__":
    main()

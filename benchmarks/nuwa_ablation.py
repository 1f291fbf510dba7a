"""NuwaDynamics ablation (``nuwa_ablation``): the same backbone and seed, with and without.

For every seed the backbone (SimVP by default) is trained twice with identical settings, once
plain and once with ``augment={"name": "nuwa", ...}`` (discovery ViT fitted on the training
split, the ``k`` least-attended patches of a ``share`` of every batch intervened and appended),
and both are scored with the protocols of specs/evaluation.md:

* **radar** (``skill_radar``): trained on the radar training events, forecast 12 steps from
  t0 = 3, 7, 11, ... on the full native grid of the test events (FMI 2016-09-28, BoM 2
  2018-06-16, MeteoSwiss 2017-01-31), NaN -> 0 mm/h, CSI at 1 and 5 mm/h at ~30/~60 min
  (contingency counts pooled over pixels and origins per event, then the mean over events),
  frequency bias, and RMSE (mm/h) pooled over leads, pixels and origins. The scoring code is
  ``benchmarks/skill_radar.py``'s. All five training events (the ``radar-train``
  collection) train together on importance-sampled random ``--crop`` crops.
* **bikenyc** (``skill_bikenyc``): next-hour in/outflow from closeness (3 h), period (same
  hour 1 and 2 days before) and trend (same hour a week before); train/val per the catalog,
  test = the last 240 h; RMSE and MAE in counts over all cells, both channels and every test
  hour; persistence in the same run for reference.

    python benchmarks/nuwa_ablation.py [--quick] [--seeds N] [--arms radar,bikenyc]
                                       [--model simvp] [--cache DIR]

``--quick`` trains few steps (2 seeds, one radar test event from 2 origins): a smoke test of
the whole pipeline in a few minutes on 2 cores, not a skill figure. The table lists every
seed and the mean per arm; the relative change is ``(nuwa - plain) / plain``. Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skill_radar as skill
import xarray as xr

import stgeo
from stgeo.datasets import build_from_catalog

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
BIKE_OFFSETS = [-167, -47, -23, -2, -1, 0]  # trend (week), period (2 days, 1 day), closeness
TEST_HOURS = 240


def settings(quick: bool) -> dict[str, Any]:
    """Training and augmentation settings of each arm (the same for both variants)."""
    nuwa = {"name": "nuwa", "k": 0.25, "mode": "mean", "share": 0.5}
    return {
        "radar": {
            "train": dict(
                in_steps=4,
                out_steps=12,
                normalization="log1p",
                batch_size=8,
                lr=2e-3,
                epochs=2 if quick else 8,
                max_steps_per_epoch=6 if quick else 30,
                max_val_steps=2 if quick else 10,
                precision="fp32",
                hid_S=16,
                hid_T=64,
                N_S=2,
                N_T=2 if quick else 4,
            ),
            "nuwa": {**nuwa, "fit_steps": 30 if quick else 200},
        },
        "bikenyc": {
            "train": dict(
                variable="flow",
                input_offsets=BIKE_OFFSETS,
                out_steps=1,
                batch_size=16,
                lr=2e-3,
                epochs=3 if quick else 40,
                patience=None if quick else 8,
                precision="fp32",
                hid_S=16,
                hid_T=64,
                N_S=2,
                N_T=2 if quick else 4,
            ),
            "nuwa": {**nuwa, "fit_steps": 50 if quick else 200},
        },
    }


def train_pair(data: Any, model: str, seed: int, cfg: dict[str, Any], **extra: Any) -> dict:
    """The plain and the augmented model of one seed, with their training seconds."""
    out = {}
    for variant, augment in (("plain", None), ("nuwa", cfg["nuwa"])):
        t = time.perf_counter()
        m = stgeo.train(
            data, model, seed=seed, augment=augment, progress=False, **cfg["train"], **extra
        )
        out[variant] = (m, round(time.perf_counter() - t, 1))
    return out


# -- BikeNYC ---------------------------------------------------------------------------------
def open_catalog(name: str, cache: Path) -> xr.Dataset:
    with stgeo.set_options(cache_dir=str(cache)):
        build_from_catalog(name, data_root=SHARED)
        return stgeo.open_dataset(name)


def bike_scores(fc: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    err = fc.astype(np.float64) - obs.astype(np.float64)
    return {
        "rmse": round(float(np.sqrt(np.mean(err**2))), 4),
        "mae": round(float(np.mean(np.abs(err))), 4),
    }


def bike_arm(seeds: list[int], model: str, cfg: dict, cache: Path) -> dict[str, Any]:
    ds = open_catalog("bikenyc", cache)
    flow = ds.flow.load()
    test_times = flow.time.values[-TEST_HOURS:]
    obs = flow.sel(time=test_times).values  # (time, channel, y, x)
    inits = test_times - np.timedelta64(1, "h")
    rows = []
    for seed in seeds:
        for variant, (m, secs) in train_pair(ds, model, seed, cfg).items():
            fc = stgeo.forecast(flow, m, init_times=inits, lead_steps=1, progress=False)
            fc = fc.isel(lead_time=0).transpose("init_time", "channel", ...).values
            row = {"seed": seed, "variant": variant, **bike_scores(fc, obs)}
            rows.append({**row, "train_seconds": secs, "best_epoch": m.metrics["best_epoch"]})
            print("bikenyc", json.dumps(rows[-1]), flush=True)
    persistence = bike_scores(flow.sel(time=inits).values, obs)
    return {"rows": rows, "persistence": persistence, "test_hours": TEST_HOURS}


# -- radar -----------------------------------------------------------------------------------
def radar_training(crop: int) -> tuple[Any, dict[str, Any], str]:
    """The radar training data: the protocol's five training events (catalog collection
    ``radar-train``, each at its own time step) on importance-sampled random crops."""
    extra = {"patch_size": (crop, crop), "importance": True}
    return "radar-train", extra, f"radar-train (5 events), {crop}px importance-sampled crops"


def radar_forecast(ds: xr.Dataset, m: Any, quick: bool) -> xr.DataArray:
    """skill_radar's forecast: origins t0 = 3, 7, ..., 12 steps, no data -> 0 mm/h."""
    rr = ds.rain_rate.fillna(0.0)
    t0 = skill.origins(rr.sizes["time"], quick)
    init = rr.time.values[t0]
    return stgeo.forecast(rr, m, init_times=init, lead_steps=skill.OUT_STEPS, progress=False)


def radar_scores(m: Any, data: dict, quick: bool) -> dict[str, float]:
    per_event, steps, rmse = {}, {}, []
    for ev, ds in data.items():
        fc = radar_forecast(ds, m, quick)
        per_event[ev] = skill.score_event(fc, ds.rain_rate)
        steps[ev] = pd.Timedelta(stgeo.conventions.time_step(ds))
        mse = stgeo.score(fc.fillna(0.0), ds.rain_rate.fillna(0.0), metrics=["mse"]).compute()
        rmse.append(float(np.sqrt(mse.mse.mean())))
    row = skill.method_row(per_event, steps)
    return {**row, "rmse": round(float(np.mean(rmse)), 4)}


def radar_arm(seeds: list[int], model: str, cfg: dict, cache: Path, quick: bool, crop: int):
    skill.SHARED = SHARED
    events = skill.TEST_EVENTS[2:] if quick else skill.TEST_EVENTS
    test = {ev: skill.open_event(ev, cache) for ev in events}
    for ev in stgeo.data.get_collection("radar-train").members:
        skill.open_event(ev, cache)  # builds the training stores into the cache
    data, extra, how = radar_training(crop)
    rows = []
    for seed in seeds:
        with stgeo.set_options(cache_dir=str(cache)):  # the collection's stores
            pair = train_pair(data, model, seed, cfg, **extra)
        for variant, (m, secs) in pair.items():
            row = {
                "seed": seed,
                "variant": variant,
                **radar_scores(m, test, quick),
            }
            rows.append({**row, "train_seconds": secs})
            print("radar", json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "test_events": list(events), "training": how}


# -- report ----------------------------------------------------------------------------------
def summarise(rows: list[dict], keys: list[str]) -> dict[str, Any]:
    """Mean per variant over seeds and the relative change of the augmented model."""
    out: dict[str, Any] = {}
    for variant in ("plain", "nuwa"):
        sel = [r for r in rows if r["variant"] == variant]
        out[variant] = {k: round(float(np.mean([r[k] for r in sel])), 4) for k in keys}
    out["change_pct"] = {
        k: round(100 * (out["nuwa"][k] - out["plain"][k]) / abs(out["plain"][k]), 2)
        if out["plain"][k]
        else None
        for k in keys
    }
    return out


def table(arm: str, rows: list[dict], summary: dict, keys: list[str]) -> None:
    print(f"\n{arm}: " + ", ".join(keys))
    print(f"{'seed':>6s} {'variant':>8s}" + "".join(f"{k:>13s}" for k in keys))
    for r in rows:
        print(f"{r['seed']:6d} {r['variant']:>8s}" + "".join(f"{r[k]:13.4f}" for k in keys))
    for variant in ("plain", "nuwa"):
        print(f"{'mean':>6s} {variant:>8s}" + "".join(f"{summary[variant][k]:13.4f}" for k in keys))
    change = summary["change_pct"]
    cells = "".join("          n/a" if change[k] is None else f"{change[k]:13.2f}" for k in keys)
    print(f"{'':>6s} {'change %':>8s}" + cells)  # n/a: the plain score is 0


def verdict(arm: str, summary: dict, better_lower: list[str], better_higher: list[str]) -> str:
    ch = summary["change_pct"]
    gains = [k for k in better_lower if ch[k] is not None and ch[k] < 0]
    gains += [k for k in better_higher if ch[k] is not None and ch[k] > 0]
    total = len(better_lower) + len(better_higher)
    return f"{arm}: NuwaDynamics improved {len(gains)} of {total} scores ({', '.join(gains)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None, help="default 3 (quick: 2)")
    ap.add_argument("--arms", default="radar,bikenyc")
    ap.add_argument("--model", default="simvp")
    ap.add_argument("--crop", type=int, default=128, help="radar training crop (pixels)")
    ap.add_argument("--radar-epochs", type=int, default=None, help="override radar epochs")
    ap.add_argument("--radar-steps", type=int, default=None, help="override steps per epoch")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "stgeo"))
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs the real data in {SHARED}")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    cfg = settings(args.quick)
    for key, value in (("epochs", args.radar_epochs), ("max_steps_per_epoch", args.radar_steps)):
        if value is not None:  # a smaller radar budget on a slow machine (reported in the JSON)
            cfg["radar"]["train"][key] = value
    cache = Path(args.cache)
    result: dict[str, Any] = {"model": args.model, "seeds": seeds, "quick": args.quick}
    result["radar_budget"] = {
        k: cfg["radar"]["train"][k] for k in ("epochs", "max_steps_per_epoch")
    }
    notes = []
    if "bikenyc" in arms:
        bike = bike_arm(seeds, args.model, cfg["bikenyc"], cache)
        keys = ["rmse", "mae"]
        bike["summary"] = summarise(bike["rows"], keys)
        table("bikenyc (counts)", bike["rows"], bike["summary"], keys)
        print(f"persistence: {bike['persistence']}")
        result["bikenyc"] = bike
        notes.append(verdict("bikenyc", bike["summary"], keys, []))
    if "radar" in arms:
        radar = radar_arm(seeds, args.model, cfg["radar"], cache, args.quick, args.crop)
        keys = ["csi1_30min", "csi1_60min", "csi5_30min", "csi5_60min", "rmse"]
        radar["summary"] = summarise(radar["rows"], keys)
        table("radar (mean over test events)", radar["rows"], radar["summary"], keys)
        print(f"training: {radar['training']}")
        result["radar"] = radar
        notes.append(verdict("radar", radar["summary"], ["rmse"], keys[:4]))
    for note in notes:
        print(note + (" [quick: smoke test, not a skill figure]" if args.quick else ""))
    result["notes"] = notes
    print(json.dumps(result))


if __name__ == "__main__":
    main()

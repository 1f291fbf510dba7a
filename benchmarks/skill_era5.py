"""ERA5 2 m temperature skill with the protocol of specs/evaluation.md (``skill_era5``).

Data: ``../shared/data/era5/era5-2mt-2019-03-uk.nc`` (hourly t2m, March 2019, 50-58N 10W-2E at
0.25 deg), built into ``--cache`` with the catalog recipe. Train 2019-03-01..03-21, validation
03-22..03-24, test 03-25..03-31 (the catalog's splits; inputs may reach back into validation).
Task: 12 hourly leads from every origin at 00, 06, 12 and 18 UTC of the test week whose 12
leads lie in the data (26 origins, 03-25 00:00 .. 03-31 06:00). Score: latitude-weighted RMSE
(K), cos(lat) weights normalised to mean 1, per lead hour and averaged over the 12 leads,
computed by ``stgeo.score(..., weights="latitude")``.

Baselines in the same run with the same scoring: persistence and diurnal persistence (the
value 24 h before the valid time: ``stgeo.forecast(..., "climatology", period="1D")``).
The shipped pretrained model (``era5-t2m-uk``, forecast as ``stgeo.forecast(t2m,
"stresnet-stacked")`` resolves it: the same recipe trained once and stored in float16) is
scored too, as ``"<name> (pretrained)"``, without training.
Learned: ``stresnet-stacked-small`` (stgeo.models.stresnet_stacked) trained with
``stgeo.train(..., seeds=...)``: a seed ensemble (stgeo.models.ensemble) whose forecast is the
mean of the seeds'; each seed is also scored alone. The learned model reads the last
``--history`` hours (default 48 h: two diurnal cycles; diurnal persistence itself reads 24 h
back; the protocol's "12 h in" with ``--history 12``) and predicts the 12 leads in one pass.

    python benchmarks/skill_era5.py [--quick] [--seeds N] [--history H] [--cache DIR]

``--quick`` trains one model for a few steps: a smoke test of the pipeline in about a minute,
not a skill figure. Ends with one JSON line: ``rmse_mean``, ``rmse_lead1``, ``rmse_lead6``,
``rmse_lead12`` per method, ``train_seconds`` per learned model.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import pandas as pd
import skill_common as common
import xarray as xr

import stgeo

CATALOG = "era5-t2m-uk-201903"
LEADS = 12
ORIGIN_EVERY = pd.Timedelta("6h")
REFERENCE = {  # specs/evaluation.md, measured with this protocol
    "persistence": {"rmse_mean": 2.71, "rmse_lead1": 0.60, "rmse_lead6": 2.82, "rmse_lead12": 3.83},
    "diurnal_persistence": {
        "rmse_mean": 1.48,
        "rmse_lead1": 1.47,
        "rmse_lead6": 1.52,
        "rmse_lead12": 1.54,
    },
}
TARGET = 1.18  # issue 14: 20% below the better baseline (1.48 K)
KEYS = ["rmse_mean", "rmse_lead1", "rmse_lead6", "rmse_lead12"]


def settings(quick: bool, history: int) -> dict[str, Any]:
    """The learned model and its training settings (fixed; seeds vary)."""
    # no per-cell linear maps (they overfit 3 weeks of data), the per-cell embedding kept
    train = dict(epochs=10, lr=2e-3, batch_size=16, local=False)
    if quick:
        train = dict(epochs=1, max_steps_per_epoch=8, max_val_steps=2, lr=2e-3, batch_size=8)
        train["local"] = False
    if history > 24:  # start from damped anomaly persistence against the day before
        train.update(period=24, decay=6.0)  # (see stgeo.models.stresnet_stacked.StackedSTResNet)
    elif history == 24:  # from diurnal persistence
        train.update(period=24)
    return {"model": "stresnet-stacked-small", "train": train}


def origins(t2m: xr.DataArray, test: tuple[str, str]) -> np.ndarray:
    """Origins every 6 h in the test split whose 12 leads lie in the data."""
    t = pd.DatetimeIndex(t2m.time.values)
    last = t[-1] - LEADS * pd.Timedelta("1h")
    start = pd.Timestamp(test[0])
    keep = (t >= start) & (t <= last) & (((t - start) % ORIGIN_EVERY) == pd.Timedelta(0))
    return t2m.time.values[keep]


def score(fc: xr.DataArray, obs: xr.DataArray) -> dict[str, float]:
    """Latitude-weighted RMSE per lead (pooled over origins and cells) and its lead mean."""
    r = stgeo.score(fc, obs, metrics=["rmse"], weights="latitude").rmse
    hours = (r.lead_time.values / np.timedelta64(1, "h")).round().astype(int)
    r = r.assign_coords(lead_time=hours)
    return {
        "rmse_mean": round(float(r.mean()), 4),
        **{f"rmse_lead{k}": round(float(r.sel(lead_time=k)), 4) for k in (1, 6, 12)},
    }


def baselines(t2m: xr.DataArray, inits: np.ndarray) -> dict[str, xr.DataArray]:
    kw = dict(init_times=inits, lead_steps=LEADS, progress=False)
    return {
        "persistence": stgeo.forecast(t2m, "persistence", **kw),
        "diurnal_persistence": stgeo.forecast(t2m, "climatology", period="1D", **kw),
    }


def learned(
    ds: xr.Dataset, inits: np.ndarray, seeds: list[int], history: int, quick: bool
) -> tuple:
    """Train the seed ensemble; its forecast and each seed's (record, forecast)."""
    cfg = settings(quick, history)
    m, secs = common.train_seeds(
        ds,
        cfg["model"],
        seeds,
        variable="t2m",
        in_steps=history,
        out_steps=LEADS,
        precision="fp32",
        **cfg["train"],
    )

    def forecast(model: Any) -> xr.DataArray:
        return stgeo.forecast(ds.t2m, model, init_times=inits, lead_steps=LEADS, progress=False)

    per_seed = [(row, forecast(member)) for row, member in common.seed_members(m)]
    return cfg["model"], forecast(m), per_seed, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None, help="default 3 (quick: 1)")
    ap.add_argument("--history", type=int, default=48, help="input hours of the learned model")
    ap.add_argument("--cache", default=None, help="store cache (default ~/.cache/stgeo)")
    args = ap.parse_args()
    if not common.SHARED.is_dir():
        sys.exit(f"needs the real data in {common.SHARED}")
    if args.history < 1:
        sys.exit(f"--history must be at least 1 hour, got {args.history}")
    ds = common.open_catalog(CATALOG, args.cache or common.DEFAULT_CACHE)
    t2m = ds.t2m.load()
    inits = origins(t2m, tuple(stgeo.data.get_entry(CATALOG).splits["test"]))
    results: dict[str, dict[str, Any]] = {
        name: score(fc, t2m) for name, fc in baselines(t2m, inits).items()
    }
    shipped, fc = common.pretrained_forecast(
        t2m, "stresnet-stacked", init_times=inits, lead_steps=LEADS
    )
    results[f"{shipped} (pretrained)"] = score(fc, t2m)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    name, ens, per_seed, secs = learned(ds, inits, seeds, args.history, args.quick)
    for row, fc in per_seed:
        row.update(score(fc, t2m))
        results[f"{name}[seed={row['seed']}]"] = row
    rows = [row for row, _ in per_seed]
    results[name] = {**score(ens, t2m), "train_seconds": secs, "seeds": rows}
    print(f"\nERA5 t2m, latitude-weighted RMSE (K), {len(inits)} origins, leads 1..{LEADS} h")
    common.print_table(results, [*KEYS, "train_seconds"])
    checks = common.compare_reference(results, REFERENCE, tol=0.01)
    best = min(results[b]["rmse_mean"] for b in REFERENCE)
    got = results[name]["rmse_mean"]
    print(
        f"{name} ({args.history} h in): {got:.3f} K, {common.relative(got, best)} the better "
        f"baseline (target <= {TARGET} K)"
        + (" [quick: smoke test, not a skill figure]" if args.quick else "")
    )
    got = results[f"{shipped} (pretrained)"]["rmse_mean"]
    print(
        f"{shipped} (shipped pretrained, no training): {got:.3f} K, "
        f"{common.relative(got, best)} the better baseline (target <= {TARGET} K)"
    )
    out = {k: v for k, v in results.items() if "[seed=" not in k}
    common.emit(
        {
            **out,
            "reference_check": checks,
            "target_rmse_mean": TARGET,
            "origins": len(inits),
            "history_hours": args.history,
            "quick": args.quick,
        }
    )


if __name__ == "__main__":
    main()

"""Shared pieces of the skill benchmarks (``skill_bikenyc``, ``skill_era5``).

The benchmarks import it as ``skill_common``: a script's own folder is on ``sys.path``.

Store building goes through the catalog recipes (``build_from_catalog``) into ``--cache``;
scores through ``stgeo.score``; learned models through ``stgeo.train`` / ``stgeo.forecast``;
the shipped pretrained models through ``stgeo.forecast(data, "<architecture>")``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import stgeo
from stgeo.datasets import build_from_catalog

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("STGEO_SHARED_DATA") or HERE.parent.parent / "shared" / "data")
DEFAULT_CACHE = str(Path.home() / ".cache" / "stgeo")


def open_catalog(name: str, cache: str | Path) -> xr.Dataset:
    """The catalog entry's store, built from ``../shared/data`` with its recipe (once)."""
    with stgeo.set_options(cache_dir=str(cache)):
        build_from_catalog(name, data_root=SHARED)
        return stgeo.open_dataset(name)


def like(fc: xr.DataArray, values: np.ndarray, name: str) -> xr.DataArray:
    """A forecast with ``fc``'s labels (init/lead/valid time, grid) and other values."""
    out = fc.copy(data=np.asarray(values, dtype=fc.dtype).reshape(fc.shape))
    out.attrs = {**fc.attrs, "model": name}
    return out


def train_timed(data: Any, model: str, **kwargs: Any) -> tuple[Any, float]:
    """``stgeo.train(data, model, **kwargs)`` and its wall time in seconds."""
    t = time.perf_counter()
    m = stgeo.train(data, model, progress=False, **kwargs)
    return m, round(time.perf_counter() - t, 1)


def train_seeds(data: Any, model: str, seeds: Sequence[int], **kwargs: Any) -> tuple[Any, float]:
    """One model per seed, a seed ensemble when there are several (``stgeo.train(...,
    seeds=...)``, forecasting the mean of the seeds), and the wall time in seconds."""
    seeding = {"seeds": list(seeds)} if len(seeds) > 1 else {"seed": seeds[0]}
    return train_timed(data, model, **seeding, **kwargs)


def seed_members(model: Any) -> list[tuple[dict[str, Any], Any]]:
    """Each seed of a model (the members of a seed ensemble, else the model itself) with its
    record: seed and best epoch."""
    return [
        ({"seed": m.spec.extra["training"]["seed"], "best_epoch": m.metrics["best_epoch"]}, m)
        for m in (model.members or [model])
    ]


def pretrained_forecast(data: Any, architecture: str, **kwargs: Any) -> tuple[str, Any]:
    """The forecast of the shipped pretrained model that fits ``data`` when asked for by
    its architecture's name (as a user would), and that model's name."""
    fc = stgeo.forecast(data, architecture, progress=False, **kwargs)
    return str(fc.attrs["pretrained"]), fc


def print_table(results: Mapping[str, Mapping[str, float]], cols: Sequence[str]) -> None:
    """One row per method, one column per key."""
    print(f"{'method':30s}" + "".join(f"{c:>14s}" for c in cols))
    for name, row in results.items():
        cells = "".join(
            f"{row[c]:14.3f}" if isinstance(row.get(c), (int, float)) else f"{'-':>14s}"
            for c in cols
        )
        print(f"{name:30s}" + cells)


def compare_reference(
    results: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
    tol: float,
) -> dict[str, dict[str, Any]]:
    """Measured baselines against the spec's reference values (``ok`` within ``tol``)."""
    out: dict[str, dict[str, Any]] = {}
    for method, ref in reference.items():
        for key, want in ref.items():
            got = results[method][key]
            ok = abs(got - want) <= tol
            out.setdefault(method, {})[key] = {"measured": got, "reference": want, "ok": ok}
            flag = "matches" if ok else "DIFFERS from"
            print(f"{method} {key}: {got:.3f} {flag} the reference {want:.2f}")
    return out


def relative(value: float, reference: float) -> str:
    """``"12.3% below"`` or ``"4.5% above"`` ``reference``."""
    pct = 100 * (1 - value / reference)
    return f"{abs(pct):.1f}% {'below' if pct >= 0 else 'above'}"


def emit(payload: Mapping[str, Any]) -> None:
    """The benchmark contract's last line: one line of JSON."""
    print(json.dumps(payload), flush=True)

"""Helpers for the dataset recipe tests: the shared real data and generated raw files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    env = os.environ.get("STGEO_SHARED_DATA")
    return Path(env) if env else (REPO / ".." / "shared" / "data").resolve()


def need_shared(*parts: str) -> Path:
    p = shared_data().joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} is absent (set STGEO_SHARED_DATA)")
    return p


# -- generated raw files in the providers' layouts ---------------------------------------------
def write_deepst_h5(
    path: Path, times: pd.DatetimeIndex, per_day: int, grid, seed=0, shuffle=False
) -> np.ndarray:
    """A DeepST-layout flow file: date bytes YYYYMMDDSS, data (N, 2, H, W) float64."""
    import h5py

    rng = np.random.default_rng(seed)
    step = pd.Timedelta("1D") / per_day
    slots = ((times - times.normalize()) / step).astype(int) + 1
    dates = np.asarray([f"{t:%Y%m%d}{s:02d}".encode() for t, s in zip(times, slots, strict=True)])
    data = rng.integers(0, 300, size=(len(times), 2, *grid)).astype(np.float64)
    order = rng.permutation(len(times)) if shuffle else np.arange(len(times))
    with h5py.File(path, "w") as f:
        f["date"] = dates[order]
        f["data"] = data[order]
    return data


SEVIR_PROJ = "+proj=laea +lat_0=38 +lon_0=-98 +units=m +a=6370997.0 +ellps=sphere"


def make_sevir(root: Path, events: list[dict], size: int = 48, nt: int = 49, seed: int = 0):
    """CATALOG.csv + SEVIR_VIL h5 files; ``events``: dicts with id, time, file, lat, lon."""
    import h5py
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    fwd = Transformer.from_crs("EPSG:4326", SEVIR_PROJ, always_xy=True)
    inv = Transformer.from_crs(SEVIR_PROJ, "EPSG:4326", always_xy=True)
    rows, by_file, arrays = [], {}, {}
    for ev in events:
        by_file.setdefault(ev["file"], []).append(ev)
    for fname, evs in by_file.items():
        vil = rng.integers(0, 255, size=(len(evs), size, size, nt), dtype=np.uint8)
        p = root / "data" / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(p, "w") as f:
            f["id"] = np.asarray([e["id"].encode() for e in evs])
            f["vil"] = vil
        for i, e in enumerate(evs):
            arrays[e["id"]] = vil[i]
            cx, cy = fwd.transform(e["lon"], e["lat"])
            llon, llat = inv.transform(cx - 192000.0, cy - 192000.0)
            ulon, ulat = inv.transform(cx + 192000.0, cy + 192000.0)
            offs = ":".join(str(int(v)) for v in (-119 + 5 * np.arange(nt)))
            rows.append(
                {
                    "id": e["id"],
                    "file_name": fname,
                    "file_index": i,
                    "img_type": "vil",
                    "time_utc": e["time"],
                    "minute_offsets": offs,
                    "episode_id": 1.0,
                    "event_id": 2.0,
                    "event_type": "Hail",
                    "llcrnrlat": llat,
                    "llcrnrlon": llon,
                    "urcrnrlat": ulat,
                    "urcrnrlon": ulon,
                    "proj": SEVIR_PROJ,
                    "size_x": size,
                    "size_y": size,
                    "height_m": 384000.0,
                    "width_m": 384000.0,
                    "data_min": 0,
                    "data_max": 254,
                    "pct_missing": 0.0,
                }
            )
            # another image type of the same event, which the vil recipe must ignore
            rows.append(
                {
                    **rows[-1],
                    "img_type": "ir069",
                    "file_name": "ir069/x.h5",
                    "size_x": 192,
                    "size_y": 192,
                }
            )
    pd.DataFrame(rows).to_csv(root / "CATALOG.csv", index=False)
    return arrays

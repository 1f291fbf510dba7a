"""Radar event folders (FMI PGM, KNMI HDF5, BoM netCDF, MeteoSwiss GIF, RMI ODIM) -> Zarr.

    python recipes/radar.py --source ../shared/data/radar/radar/fmi/pgm/20160928 \
        --dest radar/fmi-20160928.zarr
    python recipes/radar.py --all-events ../shared/data --dest-dir radar/   # the 8 events, timed

Same as `stgeo recipe radar ...` and `stgeo.datasets.run_recipe("radar", source, dest)`;
`--help` lists the options.
"""

import sys
import time
from pathlib import Path

from stgeo.datasets.recipes import recipe_main


def all_events(argv: list[str]) -> int:
    import argparse

    from stgeo.datasets.radar import convert_radar_events

    ap = argparse.ArgumentParser(prog="recipes/radar.py --all-events")
    ap.add_argument(
        "--all-events",
        required=True,
        metavar="DATA_ROOT",
        help="folder holding radar/radar/... (../shared/data)",
    )
    ap.add_argument("--dest-dir", required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    stores = convert_radar_events(args.all_events, args.dest_dir)
    seconds = time.perf_counter() - t0

    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())

    from stgeo.datasets.radar import RADAR_EVENTS

    raw = sum(size(Path(args.all_events) / RADAR_EVENTS[e]) for e in stores)
    out = sum(size(Path(p)) for p in stores.values())
    for e, p in stores.items():
        print(f"{e:16s} {p}")
    print(
        f"{len(stores)} events in {seconds:.1f} s; raw {raw / 2**20:.1f} MiB -> stores "
        f"{out / 2**20:.1f} MiB ({out / raw:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    if "--all-events" in sys.argv:
        sys.exit(all_events(sys.argv[1:]))
    sys.exit(recipe_main("radar"))

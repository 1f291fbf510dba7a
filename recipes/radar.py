"""Radar event folders (FMI, KNMI, BoM, MeteoSwiss, RMI, OPERA ODIM, MRMS GRIB2) -> Zarr.

    python recipes/radar.py --source ../shared/data/radar/radar/fmi/pgm/20160928 \\
        --dest radar/fmi-20160928.zarr
    python recipes/radar.py --all-events ../shared/data --dest-dir radar/   # the 10 events, timed

A thin entry point: the same arguments as `stgeo recipe radar ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("radar", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("radar"))

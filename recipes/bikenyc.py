"""BikeNYC flows (NYC14_M16x8_T60_NewEnd.h5 or the netCDF tail) -> Zarr.

    python recipes/bikenyc.py --source ../shared/data/bikenyc --dest bikenyc/bikenyc.zarr

A thin entry point: the same arguments as `stgeo recipe bikenyc ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("bikenyc", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("bikenyc"))

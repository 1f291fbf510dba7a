"""BikeNYC flows (NYC14_M16x8_T60_NewEnd.h5 or the netCDF tail) -> Zarr.

    python recipes/bikenyc.py --source ../shared/data/bikenyc --dest bikenyc/bikenyc.zarr

Same as `stgeo recipe bikenyc ...` and `stgeo.datasets.run_recipe("bikenyc", source, dest, ...)`;
`--help` lists the options.
"""

import sys

from stgeo.datasets.recipes import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("bikenyc"))

"""ERA5 single-level fields (netCDF, or GRIB with cfgrib) -> Zarr with ascending latitude.

    python recipes/era5.py --source ../shared/data/era5/era5-2mt-2019-03-uk.nc --dest era5/t2m.zarr

A thin entry point: the same arguments as `stgeo recipe era5 ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("era5", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("era5"))

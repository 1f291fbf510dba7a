"""ERA5 single-level fields (netCDF, or GRIB with cfgrib) -> Zarr with ascending latitude.

    python recipes/era5.py --source ../shared/data/era5/era5-2mt-2019-03-uk.nc --dest era5/t2m.zarr

Same as `stgeo recipe era5 ...` and `stgeo.datasets.run_recipe("era5", source, dest, ...)`;
`--help` lists the options.
"""

import sys

from stgeo.datasets.recipes import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("era5"))

"""SEVIR storm events (CATALOG.csv + HDF5; public bucket s3://sevir, anonymous) -> Zarr.

    python recipes/sevir.py --source SEVIR --dest sevir/vil.zarr --option split=train

Same as `stgeo recipe sevir ...` and `stgeo.datasets.run_recipe("sevir", source, dest, ...)`;
`--help` lists the options.
"""

import sys

from stgeo.datasets.recipes import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("sevir"))

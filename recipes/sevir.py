"""SEVIR storm events (CATALOG.csv + HDF5; public bucket s3://sevir, anonymous) -> Zarr.

    python recipes/sevir.py --source SEVIR --dest sevir/vil.zarr --option split=train

A thin entry point: the same arguments as `stgeo recipe sevir ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("sevir", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("sevir"))

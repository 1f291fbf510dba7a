"""TaxiBJ+ flows (UrbanFM layout: P1..P4/{train,valid,test}/{X,Y,ext}.npy) -> Zarr, one grid.

    python recipes/taxibj_plus.py --source TaxiBJ+ --dest taxibj/p1-fine.zarr --option period=P1
    python recipes/taxibj_plus.py --source TaxiBJ+/P1 --dest p1-coarse.zarr --option grid=coarse

A thin entry point: the same arguments as `stgeo recipe taxibj-plus ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("taxibj-plus", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("taxibj-plus"))

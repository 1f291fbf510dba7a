"""TaxiBJ flows (BJ{13..16}_M32x32_T30_InOut.h5, BJ_Meteorology.h5, BJ_Holiday.txt) -> Zarr.

    python recipes/taxibj.py --source TaxiBJ --dest taxibj/taxibj.zarr

A thin entry point: the same arguments as `stgeo recipe taxibj ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("taxibj", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("taxibj"))

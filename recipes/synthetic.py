"""Synthetic storm cells or crowd flows -> Zarr (the embedded default data).

    python recipes/synthetic.py --dest synthetic/storms.zarr --option kind=storms

A thin entry point: the same arguments as `stgeo recipe synthetic ...` (both run
`stgeo.datasets.command.run_recipe_args`), and the same as
`stgeo.datasets.run_recipe("synthetic", source, dest, **options)`; `--help` lists the options.
"""

import sys

from stgeo.datasets.command import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("synthetic"))

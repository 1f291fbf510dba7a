"""Synthetic storm cells or crowd flows -> Zarr (the embedded default data).

    python recipes/synthetic.py --dest synthetic/storms.zarr --option kind=storms

Same as `stgeo recipe synthetic ...` and
`stgeo.datasets.run_recipe("synthetic", None, dest, ...)`;
`--help` lists the options.
"""

import sys

from stgeo.datasets.recipes import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("synthetic"))

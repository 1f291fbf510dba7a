"""The recipe command line, shared by ``stgeo recipe`` and the ``recipes/*.py`` scripts.

One argument set and one runner, so every ability is reachable both ways::

    stgeo recipe --list
    stgeo recipe NAME --source PATH --dest STORE [--option KEY=VALUE ...]
    stgeo recipe radar --all-events DATA_ROOT --dest-dir DIR [--event NAME ...]
    python recipes/NAME.py ...             # the same arguments without NAME

Examples
--------
>>> import os, tempfile
>>> from stgeo.datasets.command import recipe_main
>>> d = os.path.join(tempfile.mkdtemp(), "s.zarr")
>>> args = ["--dest", d, "--option", "n_times=4", "--option", "shape=8,8"]
>>> recipe_main("synthetic", args)  # doctest: +ELLIPSIS
wrote /.../s.zarr
0
>>> recipe_main("synthetic", args)  # doctest: +ELLIPSIS
/.../s.zarr is up to date (same sources and options); nothing written
0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import DataValidationError, StgeoError
from .options import parse_options
from .registry import get_recipe, list_recipes, recipe_info, run_events, run_recipe

__all__ = ["add_recipe_arguments", "recipe_main", "run_recipe_args"]

EXAMPLES = """examples:
  stgeo recipe --list
  stgeo recipe radar --source ../shared/data/radar/radar/fmi/pgm/20160928 --dest fmi.zarr
  stgeo recipe radar --all-events ../shared/data --dest-dir radar/
  stgeo recipe radar --all-events ../shared/data --dest-dir radar/ --event mch-20150515
  stgeo recipe sevir --source SEVIR --dest vil-train.zarr --option split=train
  stgeo recipe synthetic --dest storms.zarr --option kind=storms --option n_times=60
  stgeo recipe era5 --source era5.nc --dest t2m.zarr --option variables=t2m,d2m

Options are KEY=VALUE, converted to the recipe's declared types (`stgeo recipe --list`
shows them); every recipe takes overwrite=true (replace the store at --dest: one built
from other sources or options, or an identical one) and verify=false (skip checksums).
A store at --dest built from the same sources and options is kept as it is."""


def add_recipe_arguments(parser: argparse.ArgumentParser, *, name: str | None = None) -> None:
    """Add the recipe arguments to ``parser`` (with a ``name`` positional unless ``name``).

    Examples
    --------
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_recipe_arguments(p)
    >>> p.parse_args(["radar", "--all-events", "data", "--dest-dir", "out"]).all_events
    'data'
    """
    if name is None:
        parser.add_argument(
            "name", nargs="?", help="recipe (radar, sevir, taxibj, bikenyc, era5, synthetic)"
        )
    parser.add_argument("--list", action="store_true", help="list the recipes and their options")
    parser.add_argument("--source", help="raw input file or folder")
    parser.add_argument("--dest", help="output Zarr store")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe option (repeat for several)",
    )
    parser.add_argument(
        "--all-events",
        metavar="DATA_ROOT",
        help="convert the recipe's named events found under DATA_ROOT (radar: the 8 pysteps "
        "example events under ../shared/data) into --dest-dir, timed",
    )
    parser.add_argument("--dest-dir", help="folder of the event stores (with --all-events)")
    parser.add_argument(
        "--event",
        action="append",
        default=None,
        metavar="NAME",
        help="with --all-events: only this event (repeat for several)",
    )


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _print_list(out: Callable[[str], None]) -> int:
    for name in list_recipes():
        info = recipe_info(name)
        out(f"{name:10s} {info['description']}")
        opts = ", ".join(f"{k} ({t})" for k, t in info["options"].items())
        out(f"{'':10s} options: {opts}")
        if info["events"]:
            out(f"{'':10s} events (--all-events): {', '.join(info['events'])}")
    return 0


def _run_events(name: str, a: argparse.Namespace, out: Callable[[str], None]) -> int:
    if not a.dest_dir:
        raise DataValidationError("--all-events needs --dest-dir DIR (the folder of the stores)")
    options = parse_options(a.option, str)
    t0 = time.perf_counter()
    stores = run_events(name, a.all_events, a.dest_dir, events=a.event, **options)
    seconds = time.perf_counter() - t0
    events = get_recipe(name).events
    raw = sum(_folder_bytes(Path(a.all_events) / events[e]) for e in stores)
    size = sum(_folder_bytes(Path(p)) for p in stores.values())
    for event, path in stores.items():
        out(f"{event:16s} {path}")
    out(
        f"{len(stores)} events in {seconds:.1f} s; raw {raw / 2**20:.1f} MiB -> stores "
        f"{size / 2**20:.1f} MiB ({size / max(raw, 1):.2f}x)"
    )
    return 0


def run_recipe_args(
    a: argparse.Namespace, *, name: str | None = None, out: Callable[[str], None] = print
) -> int:
    """Run what the parsed recipe arguments ask for; return the exit status.

    Parameters
    ----------
    a : argparse.Namespace
        Arguments from a parser set up by :func:`add_recipe_arguments`.
    name : str, optional
        The recipe, when the parser has no ``name`` positional (the scripts).
    out : callable
        Where result lines go (default: ``print``).

    Raises
    ------
    StgeoError
        Bad arguments, unknown recipe or option, invalid inputs.
    """
    if a.list:
        return _print_list(out)
    name = name or a.name
    if not name:
        raise DataValidationError("name a recipe (stgeo recipe --list shows them)")
    if a.all_events:
        return _run_events(name, a, out)
    if a.event or a.dest_dir:
        raise DataValidationError("--event and --dest-dir go with --all-events DATA_ROOT")
    if not a.dest:
        raise DataValidationError(
            "a destination store path is needed (--dest STORE, or --all-events DATA_ROOT "
            "--dest-dir DIR)"
        )
    before = _identity(a.dest)
    path = run_recipe(name, a.source, a.dest, **parse_options(a.option, str))
    if before is not None and _identity(path) == before:
        out(f"{path} is up to date (same sources and options); nothing written")
    else:
        out(f"wrote {path}")
    return 0


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """The folder at ``path`` as (device, inode): a store written anew is renamed into place,
    so its identity changes; None if nothing is there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def recipe_main(name: str, argv: Sequence[str] | None = None) -> int:
    """Command-line entry of one recipe, for the scripts in ``recipes/``.

    The arguments are those of ``stgeo recipe NAME`` (``--source PATH --dest STORE
    [--option KEY=VALUE ...]``, ``--all-events DATA_ROOT --dest-dir DIR``, ``--list``).
    Prints the result; returns 0, or 2 with a one-line message on bad input.

    Examples
    --------
    >>> recipe_main("era5", ["--dest", "x.zarr"])  # stderr: error: recipe 'era5' needs a source
    2
    """
    info = recipe_info(name)
    opts = ", ".join(f"{k} ({t})" for k, t in info["options"].items())
    ap = argparse.ArgumentParser(
        prog=f"recipes/{info['name']}.py",
        description=f"{info['description']}. Options: {opts}.",
        epilog=EXAMPLES.replace(f"stgeo recipe {info['name']}", f"python recipes/{name}.py"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_arguments(ap, name=name)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        status = run_recipe_args(args, name=name)
    except (StgeoError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return status

"""The ``stgeo`` command line.

Subcommands: ``quickstart``, ``catalog``, ``recipe``, ``train``, ``forecast``, ``score``,
``plot``, ``verify``, ``pretrained``.
Outputs (``--out``) never replace what stgeo did not write, nor an input of the same command;
an earlier output of the same kind is replaced only with ``--overwrite``.
Errors print ``stgeo COMMAND: error: ...`` (the message's own line breaks kept, no traceback)
and exit with status 1 (2 for usage errors); unexpected errors are named as such with a
"please report" hint; ``--debug`` shows the traceback.

Examples
--------
>>> from stgeo.cli import main
>>> main(["catalog", "list", "synthetic-*"])  # doctest: +ELLIPSIS
synthetic-crowd ...
synthetic-storms ...
0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .conventions import LEAD_TIME_DIM, VALID_TIME_COORD
from .data.safety import check_output
from .datasets.command import EXAMPLES as RECIPE_EXAMPLES
from .datasets.command import add_recipe_arguments
from .datasets.options import parse_options
from .errors import DataValidationError, StgeoError, StgeoTypeError

__all__ = ["main"]


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


_EXAMPLES = {
    "quickstart": _examples("stgeo quickstart --out ./stgeo-quickstart"),
    "catalog": _examples(
        "stgeo catalog list",
        "stgeo catalog show synthetic-storms",
        "stgeo catalog build synthetic-storms",
        "stgeo catalog build synthetic-crowd --option n_days=7",
        "stgeo catalog build radar-fmi-20160928 --data-root ../shared/data",
        "stgeo catalog build --tag radar --data-root ../shared/data --cache-dir stores/",
    ),
    "recipe": RECIPE_EXAMPLES,
    "train": _examples(
        "stgeo train storms.zarr --model simvp --variable rain_rate --in-steps 4 "
        "--out-steps 12 --epochs 5 --out model/",
        "stgeo train storms.zarr --model convlstm --out model/ --option hidden=32 "
        "--option progress=false",
        "stgeo train my-radar.zarr --init radar-nowcaster --epochs 3 --lr 1e-4 --out tuned/",
    ),
    "forecast": _examples(
        "stgeo forecast storms.zarr --model model/ --lead-steps 12 --out fc.zarr",
        "stgeo forecast storms.zarr --model persistence --lead-steps 6 --out fc.zarr",
        "stgeo forecast storms.zarr --model model/ --out fc.zarr --dask tcp://scheduler:8786",
    ),
    "plot": _examples(
        "stgeo plot fc.zarr --obs storms.zarr --lead-time 30min --lead-time 60min --out map.png",
        "stgeo plot fc.zarr --animate --out forecast.gif",
    ),
    "score": _examples(
        "stgeo score fc.zarr storms.zarr --metrics csi,pod,mse --thresholds 0.1,1,5 --out scores.nc"
    ),
    "verify": _examples("stgeo verify storms.zarr", "stgeo verify fc.zarr storms.zarr"),
    "pretrained": _examples(
        "stgeo pretrained list",
        "stgeo pretrained show storms-convlstm",
        "stgeo pretrained build storms-convlstm --out ./storms-convlstm",
        "stgeo pretrained build radar-nowcaster --data-root ../shared/data --out ./rebuilt",
    ),
}

_OVERWRITE_HELP = "replace an earlier output of the same kind (never anything stgeo did not write)"
_MASK_HELP = (
    "read chunks missing from a damaged store as NaN (and say which) instead of refusing it"
)


def _numbers(text: str | None, flag: str, kind: type = float) -> list[Any] | None:
    """Comma-separated numbers given to ``flag`` (``--thresholds 0.1,1,5``); None stays None."""
    if text is None:
        return None
    example = "0.1,1,5" if kind is float else "3,5,9"
    items = [t.strip() for t in text.split(",")]
    if "" in items:
        raise StgeoTypeError(
            f"{flag}={text!r} has an empty item; give comma-separated numbers, e.g. {example}"
        )
    try:
        return [kind(t) for t in items]
    except ValueError:
        bad = next(t for t in items if not _is_number(t, kind))
        raise StgeoTypeError(
            f"{flag}={text!r}: {bad!r} is not {'a number' if kind is float else 'an integer'}; "
            f"give comma-separated numbers, e.g. {example}"
        ) from None


def _is_number(text: str, kind: type) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _options(
    items: list[str] | None, flags: dict[str, str], lists: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``--option KEY=VALUE`` items as keyword arguments.

    A key that has its own flag (``flags``: key -> flag) is refused, naming the flag; the
    keys in ``lists`` take comma-separated numbers (``thresholds=0.1,1,5``).
    """
    kw = parse_options(items)
    for key in kw:
        if key in flags:
            raise StgeoTypeError(f"--option {key}=...: use {flags[key]} instead")
    for key in lists:
        value = kw.get(key)
        if isinstance(value, str):
            kw[key] = _numbers(value, f"--option {key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            kw[key] = [float(value)]
    return kw


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help may start its epilog with text made only when the help
    is shown (``more_help``), e.g. names from registries that are slow to import."""

    more_help: Callable[[], str] | None = None

    def format_help(self) -> str:
        if self.more_help is not None:
            self.epilog = f"{self.more_help()}\n\n{self.epilog or ''}".rstrip()
            self.more_help = None
        return super().format_help()


def _model_choices() -> str:
    """What ``forecast --model`` accepts, with the registered names."""
    import textwrap

    from .models import list_models, model_info
    from .pretrained import cards as pretrained_cards
    from .pretrained.fit import candidates

    cards = pretrained_cards()
    baselines = [m for m in list_models() if model_info(m)["baseline"]]
    learned = list_models(baselines=False)
    archs = [m for m in learned if candidates(m)]
    others = [m for m in learned if m not in archs]
    items = [
        ("a pretrained model (stgeo pretrained list)", [c.name for c in cards]),
        ("an architecture with pretrained models (the one that fits the data is used)", archs),
        ("a baseline", baselines),
        ("a saved model folder (stgeo train ... --out model/)", []),
        ("other architectures must be trained first (stgeo train --model NAME)", others),
    ]
    lines = ["--model accepts:"]
    for what, names in items:
        text = f"{what}: {', '.join(names)}" if names else what
        lines.append(
            textwrap.fill(
                text, 88, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
            )
        )
    return "\n".join(lines)


def _sub(sp: Any, name: str, help_: str) -> argparse.ArgumentParser:
    return sp.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=_EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_quickstart(q: argparse.ArgumentParser) -> None:
    q.add_argument("--out", default="stgeo-quickstart", help="output folder (default: %(default)s)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    q.add_argument(
        "--no-train", action="store_true", help="baselines only (skip the learned model)"
    )


def _add_catalog(c: argparse.ArgumentParser) -> None:
    csp = c.add_subparsers(dest="action", metavar="ACTION", required=True)
    cl = csp.add_parser("list", help="list entry names")
    cl.add_argument("pattern", nargs="?", default="*", help="shell wildcard (default: all)")
    cs = csp.add_parser("show", help="show one entry")
    cs.add_argument("name")
    cb = csp.add_parser(
        "build",
        help="build entries' stores by running their recipes (by name, wildcard, collection "
        "or --tag)",
        description="Build the stores of catalog entries: checks every raw source first, skips "
        "stores already built from the same inputs (unless --force), verifies checksums, "
        "never overwrites what stgeo did not write.",
        epilog=_examples(
            "stgeo catalog build synthetic-storms",
            "stgeo catalog build --tag radar --data-root ../shared/data",
            "stgeo catalog build 'radar-mch-*' radar-opera-20241126 --cache-dir stores/",
            "stgeo catalog build radar-train --force",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cb.add_argument("name", nargs="*", help="entry names, shell wildcards or collections")
    cb.add_argument(
        "--tag",
        action="append",
        default=[],
        help="build every entry carrying this tag (repeat: entries carrying all of them)",
    )
    cb.add_argument(
        "--data-root",
        default=None,
        help="folder of the raw sources (default: $STGEO_SHARED_DATA, else . or ../shared/data)",
    )
    cb.add_argument(
        "--cache-dir", default=None, help="root of the stores (default: the stgeo cache dir)"
    )
    cb.add_argument("--force", action="store_true", help="rebuild stores that are up to date")
    cb.add_argument("--no-verify", action="store_true", help="skip checking the inputs' checksums")
    cb.add_argument("--quiet", action="store_true", help="print only the stores built")
    cb.add_argument("--option", action="append", metavar="KEY=VALUE", help="recipe option")


def _add_train(t: argparse.ArgumentParser) -> None:
    t.add_argument("data", help="Zarr store path or catalog name")
    t.add_argument("--model", default=None, help="architecture (default simvp, or --init's)")
    t.add_argument("--variable", default=None)
    t.add_argument(
        "--in-steps",
        type=int,
        default=None,
        help="input frames (default 4; models that declare their window, e.g. stresnet: theirs)",
    )
    t.add_argument("--out-steps", type=int, default=None, help="predicted frames (default 4)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="train a seed ensemble: one model per seed, saved as one model forecasting "
        "their mean (replaces --seed)",
    )
    t.add_argument(
        "--init",
        default=None,
        metavar="MODEL",
        help="fine-tune: start from this pretrained model's name or saved model folder (its "
        "architecture, windows, variables and normaliser are used)",
    )
    t.add_argument("--out", required=True, help="folder for the trained model")
    t.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    t.add_argument("--option", action="append", metavar="KEY=VALUE", help="model/training option")


def _add_forecast(f: argparse.ArgumentParser) -> None:
    f.add_argument("data", help="Zarr store path or catalog name")
    f.add_argument(
        "--model",
        required=True,
        help="a pretrained model's name, an architecture's name (the pretrained model of it "
        "that fits the data is used), a baseline's name or a saved model folder (listed below)",
    )
    if isinstance(f, _Parser):
        f.more_help = _model_choices
    f.add_argument("--variable", default=None)
    f.add_argument("--lead-steps", type=int, default=None)
    f.add_argument("--start", default=None, help="first init time (default: first possible)")
    f.add_argument("--end", default=None, help="last init time")
    f.add_argument("--out", required=True, help="output Zarr store")
    f.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    f.add_argument("--mask-missing-chunks", action="store_true", help=_MASK_HELP)
    f.add_argument(
        "--fillna",
        type=float,
        default=None,
        help="replace missing input values (e.g. radar no-data) by this value, e.g. 0",
    )
    f.add_argument("--option", action="append", metavar="KEY=VALUE", help="model option")
    f.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="forecast on a Dask cluster: a scheduler address, or 'local' for a local cluster "
        "(one single-threaded worker per core); chunks are written to --out by the workers",
    )


def _add_score(s: argparse.ArgumentParser) -> None:
    s.add_argument("forecast", help="forecast Zarr store")
    s.add_argument("obs", help="observation store path or catalog name")
    s.add_argument("--variable", default=None)
    s.add_argument(
        "--metrics",
        default=None,
        help="comma-separated metric names (default: mse, and csi when thresholds are known)",
    )
    s.add_argument(
        "--thresholds",
        default=None,
        help="comma-separated event thresholds, e.g. 0.1,1,5 (default: the catalog entry's "
        "thresholds when the observations are a catalog store)",
    )
    s.add_argument(
        "--windows", default=None, help="comma-separated FSS window sizes in pixels, e.g. 3,5,9"
    )
    s.add_argument(
        "--data-range",
        type=float,
        default=None,
        help="data range (max - min) for ssim and psnr (default: the data's valid_range attr)",
    )
    s.add_argument("--out", default=None, help="write scores to this netCDF file")
    s.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    s.add_argument("--mask-missing-chunks", action="store_true", help=_MASK_HELP)
    s.add_argument(
        "--fillna",
        type=float,
        default=None,
        help="replace missing values in both fields by this value (radar protocol: 0)",
    )


def _add_plot(pl: argparse.ArgumentParser) -> None:
    pl.add_argument("forecast", help="forecast Zarr store")
    pl.add_argument("--obs", default=None, help="observation store path or catalog name")
    pl.add_argument("--variable", default=None)
    pl.add_argument("--init-time", default=None, help="forecast to draw (default: the first)")
    pl.add_argument(
        "--lead-time", action="append", default=None, help="lead time to draw, e.g. 30min"
    )
    pl.add_argument("--animate", action="store_true", help="write an animation (.gif or .mp4)")
    pl.add_argument("--out", required=True, help="output PNG (or GIF/MP4 with --animate)")
    pl.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _add_verify(v: argparse.ArgumentParser) -> None:
    v.add_argument(
        "stores", nargs="+", metavar="STORE", help="Zarr store folder(s) or catalog name(s)"
    )


def _add_pretrained(p: argparse.ArgumentParser) -> None:
    psp = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pl = psp.add_parser("list", help="list the pretrained models and the data they fit")
    pl.add_argument("pattern", nargs="?", default="*", help="shell wildcard (default: all)")
    ps = psp.add_parser("show", help="show a pretrained model's card (data, recipe, scores)")
    ps.add_argument("name")
    pb = psp.add_parser(
        "build",
        help="rebuild a pretrained model from its recorded training recipe (or make one)",
        description="Build the recipe's catalog stores, train with the recorded stgeo.train "
        "arguments and seed (on the CPU), score it, and write a new artefact folder; says "
        "whether the weights equal the registered ones bit for bit. With --recipe, a new "
        "artefact NAME from a recipe file (JSON: data, train, evaluate, ...).",
    )
    pb.add_argument("name")
    pb.add_argument("--out", required=True, help="artefact folder to write")
    pb.add_argument("--recipe", default=None, help="recipe JSON file (a new or varied artefact)")
    pb.add_argument("--index", default=None, help="add the artefact to this index file")
    for field in ("description", "licence", "provenance"):
        pb.add_argument(f"--{field}", default=None, help=f"the card's {field} (new artefacts)")
    pb.add_argument(
        "--default", action="store_true", help="preferred when several artefacts fit the data"
    )
    pb.add_argument(
        "--data-root",
        default=None,
        help="folder of the raw sources (default: $STGEO_SHARED_DATA, else . or ../shared/data)",
    )
    pb.add_argument("--cache-dir", default=None, help="root of the catalog stores")
    pb.add_argument("--no-evaluate", action="store_true", help="skip scoring (no scores table)")
    pb.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stgeo",
        description="xarray-native spatio-temporal forecasting of gridded geoscience/urban data",
        epilog="example:\n  stgeo quickstart",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sp = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add_arguments, _) in _SUBCOMMANDS.items():
        add_arguments(_sub(sp, name, help_))
    return p


def _check_figure_out(out: str, overwrite: bool, animate: bool) -> None:
    """A figure replaces an existing file only with ``--overwrite``, never a folder; its
    suffix must name a format the figure (or animation) can be written in."""
    from pathlib import Path

    from .errors import OutputExistsError
    from .plot import check_figure_path
    from .plot.animate import ANIMATION_FORMATS

    p = Path(out)
    if p.is_dir():
        raise StgeoError(f"--out {out} is a folder; give a file name, e.g. {p / 'forecast.png'}")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    check_figure_path(p, overwrite=True, formats=ANIMATION_FORMATS if animate else None)


def _lead_times(values: list[str] | None) -> list[Any] | None:
    """``--lead-time`` values as durations; a bare number is refused (its unit is unknown)."""
    import pandas as pd

    if values is None:
        return None
    out = []
    for v in values:
        if _is_number(v, float):
            raise StgeoTypeError(
                f"--lead-time {v}: a bare number; give a duration such as 30min or 1h"
            )
        try:
            out.append(pd.Timedelta(v))
        except ValueError:
            raise StgeoTypeError(
                f"--lead-time {v}: not a duration; give e.g. 30min or 1h"
            ) from None
    return out


def _init_time(value: str | None) -> Any:
    """``--init-time`` as a time stamp."""
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        raise StgeoTypeError(
            f"--init-time {value}: not a date and time; give e.g. 2021-07-04T12:20"
        ) from None


def _cmd_plot(a: argparse.Namespace) -> int:
    from .data import open_dataset
    from .plot import animate_forecast, plot_forecast

    _check_figure_out(a.out, a.overwrite, a.animate)
    init_time, lead_time = _init_time(a.init_time), _lead_times(a.lead_time)
    fc = open_dataset(a.forecast)
    obs = open_dataset(a.obs) if a.obs else None
    if a.animate:
        path = animate_forecast(
            fc, a.out, obs, init_time=init_time, variable=a.variable, overwrite=a.overwrite
        )
    else:
        import matplotlib

        matplotlib.use("Agg")  # the CLI only writes files
        plot_forecast(
            fc,
            obs,
            init_time=init_time,
            lead_time=lead_time,
            variable=a.variable,
            path=a.out,
            overwrite=a.overwrite,
        )
        path = a.out
    print(f"wrote {path}")
    return 0


def _cmd_catalog(a: argparse.Namespace) -> int:
    from .data.catalog import get_entry, list_catalog

    if a.action == "list":
        for name in list_catalog(a.pattern):
            e = get_entry(name)
            print(f"{name:32s} {e.description}")
        from .data import get_collection, list_collections

        for name in list_collections(a.pattern):
            c = get_collection(name)
            print(f"{name:32s} [collection of {len(c.members)}] {c.description}")
        return 0
    if a.action == "build":
        from .datasets import build_catalog

        results = build_catalog(
            a.name,
            tags=a.tag,
            data_root=a.data_root,
            cache_dir=a.cache_dir,
            force=a.force,
            verify=not a.no_verify,
            progress=not a.quiet,
            **parse_options(a.option, str),  # typed by each entry's recipe
        )
        for r in results:
            print(f"{r.status} {r.name} -> {r.store}")
        return 0
    import yaml

    e = get_entry(a.name)
    print(yaml.safe_dump(e.to_dict(), sort_keys=False).rstrip())
    print(f"# store path: {e.store_path()}")
    print(f"# defined in: {e.source_file}")
    return 0


def _cmd_recipe(a: argparse.Namespace) -> int:
    from .datasets.command import run_recipe_args

    return run_recipe_args(a)


def _pick_variable(ds: Any, variable: str | None) -> Any:
    return ds if variable is None else ds[[variable]]


def _declares_window(model: str) -> bool:
    """Whether ``model`` declares its own input window (then ``--in-steps`` has no default)."""
    from .errors import UnknownNameError
    from .models import model_info

    try:
        return bool(model_info(model)["input_window"])
    except UnknownNameError:
        return False  # train() names the valid models


_TRAIN_FLAGS = {
    k: "--" + k.replace("_", "-")
    for k in ("model", "variable", "in_steps", "out_steps", "epochs", "batch_size", "lr")
} | {"seed": "--seed", "seeds": "--seeds", "init": "--init"}


def _cmd_train(a: argparse.Namespace) -> int:
    from .data import open_dataset
    from .training import train

    _check_out_folder(a.out, "./model")
    inputs = [a.data] if a.init is None else [a.data, a.init]  # never write over the start
    check_output(a.out, "model", inputs=inputs, overwrite=a.overwrite)  # before training
    kw = _options(a.option, _TRAIN_FLAGS, lists=("thresholds",))
    ds = open_dataset(a.data)
    if a.lr is not None:
        kw["lr"] = a.lr
    model, in_steps, out_steps = a.model, a.in_steps, a.out_steps
    if a.init is None:  # from scratch: the CLI's defaults (with --init: the initial model's)
        model = model or "simvp"
        out_steps = 4 if out_steps is None else out_steps
        if in_steps is None and "input_offsets" not in kw and not _declares_window(model):
            in_steps = 4
    tm = train(
        ds,
        model=model,
        variable=a.variable,
        in_steps=in_steps,
        out_steps=out_steps,
        init=a.init,
        epochs=a.epochs,
        batch_size=a.batch_size,
        seed=a.seed,
        seeds=a.seeds,
        **kw,
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes
        path = tm.save(a.out, overwrite=a.overwrite)
        print(f"saved trained model to {path}")
    return 0


def _cmd_forecast(a: argparse.Namespace) -> int:
    from .data import open_dataset
    from .forecasting import forecast

    _check_out_folder(a.out, "./fc.zarr")
    check_output(a.out, "store", inputs=[a.data, a.model], overwrite=a.overwrite)
    ds = open_dataset(a.data, missing_chunks=_missing(a))
    if a.fillna is not None:
        ds = ds.fillna(a.fillna)
    init = slice(a.start, a.end) if (a.start or a.end) else None
    kw = dict(variable=a.variable, lead_steps=a.lead_steps, init_times=init, output=a.out)
    kw["overwrite"] = a.overwrite
    kw.update(_options(a.option, _FORECAST_FLAGS))
    if a.dask is None:
        try:
            fc = forecast(ds, a.model, **kw)
        except DataValidationError as err:
            raise _with_cli_train_hint(err, a, ds) from err
    else:
        from ._optional import import_optional

        distributed = import_optional("distributed")
        with contextlib.ExitStack() as stack:
            if a.dask == "local":
                cluster = distributed.LocalCluster(
                    n_workers=os.cpu_count() or 1, threads_per_worker=1, dashboard_address=None
                )
                target = stack.enter_context(cluster)
            else:
                target = a.dask
            client = stack.enter_context(distributed.Client(target))
            workers = len(client.scheduler_info().get("workers", {}))
            print(
                f"forecasting on the Dask cluster at {client.scheduler.address} ({workers} workers)"
            )
            fc = forecast(ds, a.model, **{**kw, "lazy": True, "progress": False})
    print(f"wrote {a.out}: {dict(fc.sizes)}")
    arrays = list(fc.data_vars.values()) if hasattr(fc, "data_vars") else [fc]
    used = {str(x.attrs["pretrained"]) for x in arrays if x.attrs.get("pretrained")}
    if used:
        print(f"model {a.model!r}: used the pretrained model {', '.join(sorted(used))}")
    return 0


_FORECAST_FLAGS = {
    "variable": "--variable",
    "lead_steps": "--lead-steps",
    "init_times": "--start/--end",
    "output": "--out",
    "overwrite": "--overwrite",
}
_TRAIN_HINT = "\nTrain one first on your data"  # where forecast()'s Python advice starts


def _with_cli_train_hint(err: DataValidationError, a: argparse.Namespace, ds: Any) -> Exception:
    """``err`` with its Python advice for "no pretrained model fits" given as commands."""
    import shlex

    text = str(err)
    if not text.startswith(("no pretrained", f"{a.model!r} is an architecture")):
        return err
    from .pretrained import find
    from .pretrained.fit import looks_synthetic, trained_on_synthetic_data

    names = [str(v) for v, da in ds.data_vars.items() if "time" in da.dims and da.ndim >= 3]
    var = a.variable or (names[0] if names else None)
    matches = find(ds, variable=a.variable)
    if not looks_synthetic(ds):  # on real data, suggest models trained on real data first
        matches = sorted(matches, key=lambda m: trained_on_synthetic_data(m.card))
    fitting = [m.card.name for m in matches]
    out_steps = a.lead_steps or 12
    data, out = shlex.quote(a.data), shlex.quote(a.out)
    train = f"stgeo train {data} --model {a.model}" + (f" --variable {var}" if var else "")
    lines = [
        text.split(_TRAIN_HINT, 1)[0],
        "Train one first on your data and forecast with it:",
        f"  {train} --in-steps 4 --out-steps {out_steps} --out model/",
        f"  stgeo forecast {data} --model model/ --lead-steps {out_steps} --out {out}",
    ]
    if fitting:
        lines.append(f"or forecast with a pretrained model that fits, e.g. --model {fitting[0]}")
    else:
        lines.append("or forecast with a baseline, e.g. --model persistence")
    return DataValidationError("\n".join(lines))


def _check_out_file(out: str | None) -> None:
    """Refuse an output file that names a folder, before any work (missing folders are made)."""
    if out is None:
        return
    from pathlib import Path

    p = Path(out)
    if p.is_dir():
        raise StgeoError(f"--out {out} is a folder; give a file name, e.g. {p / 'scores.nc'}")


def _check_out_folder(out: str, example: str) -> None:
    """Refuse an output folder that is the current folder or one of its parents."""
    from pathlib import Path

    p, here = Path(out).resolve(), Path.cwd().resolve()
    if p == here or p in here.parents:
        raise StgeoError(
            f"--out {out} is the current folder (or contains it); give a new name, "
            f"e.g. --out {example}"
        )


def _check_score_stores(fcds: Any, obs: Any, a: argparse.Namespace) -> None:
    """The forecast must have lead times, the observations a time axis."""
    if not any(LEAD_TIME_DIM in fcds[v].dims for v in fcds.data_vars):
        raise StgeoError(
            f"{a.forecast} is not a forecast store (no variable has a 'lead_time' dim); the "
            "first argument is the forecast (stgeo forecast ... --out fc.zarr), the second "
            "the observations"
        )
    if "time" not in obs.dims:
        what = "a forecast store" if LEAD_TIME_DIM in obs.dims else "not observations"
        raise StgeoError(
            f"{a.obs} is {what} (it has no 'time' dim, dims {tuple(obs.dims)}); the second "
            "argument is the observed data (a store or catalog name with a time axis)"
        )


def _cmd_score(a: argparse.Namespace) -> int:
    from .data import open_dataset
    from .metrics import score

    if a.out:
        check_output(a.out, "scores", inputs=[a.forecast, a.obs], overwrite=a.overwrite)
    _check_out_file(a.out)
    thresholds = _numbers(a.thresholds, "--thresholds")
    windows = _numbers(a.windows, "--windows", int)
    fcds = open_dataset(a.forecast, missing_chunks=_missing(a))
    obs = open_dataset(a.obs, missing_chunks=_missing(a))
    _check_score_stores(fcds, obs, a)
    if a.fillna is not None:
        fcds, obs = fcds.fillna(a.fillna), obs.fillna(a.fillna)
    names = [v for v in fcds.data_vars if LEAD_TIME_DIM in fcds[v].dims]
    var = a.variable or (names[0] if len(names) == 1 else None)
    if var is None:
        raise StgeoError(f"the forecast store holds {names}; choose one with --variable")
    for store, ds in ((a.forecast, fcds), (a.obs, obs)):
        if var not in ds.data_vars:
            have = ", ".join(map(str, ds.data_vars)) or "(none)"
            raise StgeoError(f"{store} has no variable {var!r}; it has: {have}")
    # score the forecasts whose every valid time is observed (e.g. the last ones run past the data)
    ok = fcds[VALID_TIME_COORD].load().isin(obs["time"].values).all(LEAD_TIME_DIM)
    if not bool(ok.any()):
        raise StgeoError("no forecast in the store has all its valid times in the observations")
    if not bool(ok.all()):
        print(
            f"scoring the {int(ok.sum())} of {ok.size} forecasts whose valid times are all observed"
        )
        fcds = fcds.sel(init_time=ok.values)
    metrics, thresholds = _score_defaults(a, thresholds, fcds, obs)
    try:
        res = score(
            fcds[var],
            obs[var],
            metrics=metrics,
            thresholds=thresholds,
            windows=windows,
            data_range=a.data_range,
        )
    except DataValidationError as err:  # name the command's flags, not score()'s arguments
        raise DataValidationError(_flag_hints(str(err))) from err
    res = res.compute()
    res = res.drop_vars([c for c in res.coords if res[c].ndim == 0])  # e.g. a leftover crs
    res.attrs.update(_score_provenance(a, fcds[var], var))
    print(_scores_table(res, fcds[var].attrs.get("units")))
    if a.out:
        _write_scores(res, a.out)
        print(f"wrote {a.out}")
    return 0


def _score_defaults(
    a: argparse.Namespace, thresholds: list[float] | None, fcds: Any, obs: Any
) -> tuple[list[str], list[float] | None]:
    """The metrics and thresholds to score: as given, else the catalog's thresholds (when the
    observations are a catalog entry's store) and mse (plus csi with thresholds)."""
    metrics = [m.strip() for m in a.metrics.split(",") if m.strip()] if a.metrics else None
    if thresholds is None:
        entry = _catalog_entry_of(a.obs, obs) or _catalog_entry_of(a.forecast, fcds)
        if entry is not None and entry.thresholds:
            thresholds = list(entry.thresholds)
            shown = ",".join(f"{t:g}" for t in thresholds)
            print(f"using the thresholds of the catalog entry {entry.name!r}: {shown}")
    if metrics is None:
        metrics = ["mse", "csi"] if thresholds else ["mse"]
        if not thresholds:
            print(
                "scoring mse (no --metrics given); for categorical scores give e.g. "
                "--metrics mse,csi --thresholds 0.1,1,5"
            )
    return metrics, thresholds


def _catalog_entry_of(arg: str, ds: Any) -> Any:
    """The catalog entry whose store ``arg``/``ds`` is (by name, attribute or store path)."""
    from pathlib import Path

    from .data import get_entry, list_catalog
    from .errors import UnknownNameError

    name = ds.attrs.get("stgeo_catalog")
    if name:
        with contextlib.suppress(UnknownNameError):
            return get_entry(str(name))
    path = Path(arg).resolve()
    for n in list_catalog():
        entry = get_entry(n)
        if entry.store_path().resolve() == path:
            return entry
    return None


_FLAG_FORMS = {
    "thresholds=[...]": "--thresholds T1,T2,...",
    "windows=[...]": "--windows N1,N2,...",
    "data_range=...": "--data-range X",
    "data_range": "--data-range",
}


def _flag_hints(message: str) -> str:
    """score()'s error message with its keyword arguments named as the command's flags."""
    for python, flag in _FLAG_FORMS.items():
        message = message.replace(python, flag)
    return message


def _score_provenance(a: argparse.Namespace, fc: Any, var: str) -> dict[str, str]:
    """Attributes saying what was scored: the stores, the variable and the model."""
    attrs = {"forecast_store": str(a.forecast), "observations": str(a.obs), "variable": var}
    for key in ("model", "pretrained"):
        if fc.attrs.get(key):
            attrs[key] = str(fc.attrs[key])
    return attrs


def _scores_table(res: Any, units: str | None) -> str:
    """The scores as a table: one row per lead time, one column per metric (and threshold,
    window, pool); a legend line for the column labels."""
    import itertools

    import pandas as pd

    from .conventions import freq_string

    labels = {"threshold": "@{:g}", "window": " w{:g}", "pool": " p{:g}"}
    columns: dict[str, Any] = {}
    for name, da in res.data_vars.items():
        other = [d for d in da.dims if d != LEAD_TIME_DIM]
        for values in itertools.product(*(da[d].values for d in other)):
            sel = dict(zip(other, values, strict=True))
            label = str(name) + "".join(
                labels.get(str(d), f" {d}={{}}").format(v) for d, v in sel.items()
            )
            columns[label] = da.sel(sel).values.reshape(-1)
    if LEAD_TIME_DIM in res.dims:
        index = ["+" + freq_string(pd.Timedelta(t)) for t in res[LEAD_TIME_DIM].values]
    else:
        index = ["all"]
    table = pd.DataFrame(columns, index=pd.Index(index, name="lead time"))
    text = table.to_string(float_format=_fmt_score, line_width=100)
    legend = []
    if "threshold" in res.dims:
        legend.append(f"@T: events value >= T {units or ''}".rstrip())
    if "window" in res.dims:
        legend.append("wN: FSS window of N pixels")
    if "pool" in res.dims:
        legend.append("pN: max-pooled over N x N pixels")
    return text + ("\n(" + "; ".join(legend) + ")" if legend else "")


def _fmt_score(v: float) -> str:
    if v != v or v == 0 or 1e-3 <= abs(v) < 1e6:  # NaN, 0, or a readable size
        return f"{v:.4f}"
    return f"{v:.3e}"


def _missing(a: argparse.Namespace) -> str:
    return "mask" if a.mask_missing_chunks else "raise"


def _write_scores(res: Any, out: str) -> None:
    """Write the scores to the netCDF file ``out`` atomically, marked as stgeo's."""
    import uuid
    from pathlib import Path

    from .data.safety import SCORES_ATTR, replace_path

    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        res.assign_attrs({SCORES_ATTR: "scores"}).to_netcdf(tmp)
        replace_path(tmp, dest, "scores")
    finally:
        tmp.unlink(missing_ok=True)


def _cmd_verify(a: argparse.Namespace) -> int:
    from .data import verify

    bad = 0
    for store in a.stores:
        report = verify(store)  # a path or a catalog name
        print(report)
        bad += not report.ok
    return 1 if bad else 0


def _cmd_pretrained(a: argparse.Namespace) -> int:
    from . import pretrained

    if a.action == "list":
        for name in pretrained.list(a.pattern):
            print(pretrained.card(name).summary())
        return 0
    if a.action == "show":
        print(_card_text(pretrained.card(a.name)))
        return 0
    from .pretrained_build import build_pretrained

    _check_out_folder(a.out, "./rebuilt")
    fields = {k: getattr(a, k) for k in ("description", "licence", "provenance") if getattr(a, k)}
    res = build_pretrained(
        a.name,
        out=a.out,
        recipe=_read_recipe(a.recipe) if a.recipe else None,
        data_root=a.data_root,
        cache_dir=a.cache_dir,
        evaluate=not a.no_evaluate,
        overwrite=a.overwrite,
        progress=True,
        index=a.index,
        **fields,
        **({"default": True} if a.default else {}),
    )
    print(f"wrote {res.path} (weights sha256 {res.card.weights_sha256})")
    if res.identical is not None:
        same = "identical to" if res.identical else "different from"
        print(f"weights: bit for bit {same} the registered {a.name!r}")
        if not res.same_data:
            print("note: the training data's fingerprint differs from the recorded one")
    return 0


def _read_recipe(path: str) -> Any:
    """A recipe file's JSON, with a clear error when it is missing or not JSON."""
    import json
    from pathlib import Path

    from .pretrained import Recipe

    p = Path(path)
    if not p.is_file():
        raise StgeoError(f"--recipe {path}: no such file; give a JSON file with 'data' and 'train'")
    try:
        return Recipe.from_dict(json.loads(p.read_text()))
    except json.JSONDecodeError as err:
        raise StgeoError(f"--recipe {path} is not valid JSON: {err}") from None


def _card_text(c: Any) -> str:
    """A card for the terminal: summary, data, recipe (as a train call) and scores."""
    from .pretrained import Recipe

    lines = [c.summary(), c.description, ""]
    keys = ("normalization", "grid_shape", "dtype", "data_fingerprint", "weights_sha256")
    for key in (*keys, "licence"):
        lines.append(f"{key}: {getattr(c, key)}")
    lines.append(f"provenance: {c.provenance}")
    lines.append(f"weights: {c.files}")
    if c.recipe:
        lines.append(f"recipe: {Recipe.from_dict(c.recipe).train_call()}")
    for title, rows in (("", c.scores), ("validation (training data):", c.validation)):
        if rows:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            lines += ["", *([title] if title else [])]
            lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(r.get(k, "")) for k in cols) + " |" for r in rows]
    return "\n".join(lines)


def _cmd_quickstart(a: argparse.Namespace) -> int:
    from .quickstart import quickstart

    quickstart(a.out, seed=a.seed, train_model=not a.no_train)
    return 0


_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]] = {
    "quickstart": (
        "generate synthetic storms, forecast, score and report (the main job)",
        _add_quickstart,
        _cmd_quickstart,
    ),
    "catalog": ("list catalog entries, show one, or build its store", _add_catalog, _cmd_catalog),
    "recipe": (
        "build a canonical Zarr store from raw files (one source, or a recipe's named events)",
        add_recipe_arguments,
        _cmd_recipe,
    ),
    "train": ("train a model on a store or catalog entry", _add_train, _cmd_train),
    "forecast": (
        "forecast from a store with a trained model or a baseline",
        _add_forecast,
        _cmd_forecast,
    ),
    "score": ("score a forecast store against observations", _add_score, _cmd_score),
    "plot": (
        "draw maps of a forecast store (with observations and errors), or a GIF",
        _add_plot,
        _cmd_plot,
    ),
    "verify": (
        "read every chunk of Zarr stores: report missing and damaged chunks (exit 1 if any)",
        _add_verify,
        _cmd_verify,
    ),
    "pretrained": (
        "list, show or rebuild the named pretrained models",
        _add_pretrained,
        _cmd_pretrained,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 error, 2 usage)."""
    parser = _parser()
    a = parser.parse_args(argv)
    if a.version:
        from . import __version__

        print(__version__)
        return 0
    if not a.command:
        parser.print_help()
        return 2
    try:
        return _SUBCOMMANDS[a.command][2](a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if a.debug:
            raise
        print(f"stgeo {a.command}: error: {_message(err)}", file=sys.stderr)
        return 1


_EXPECTED = (StgeoError, ValueError, TypeError, KeyError, OSError, ImportError)


def _message(err: BaseException) -> str:
    """The message of ``err`` (its line breaks kept, trailing blanks dropped); unexpected
    errors named, with a "please report" hint."""
    text = "\n".join(line.rstrip() for line in str(err).strip().splitlines())
    text = text or type(err).__name__
    if isinstance(err, OSError) and not isinstance(err, StgeoError) and err.filename:
        text = f"{err.strerror or text}: {err.filename}"
    if isinstance(err, _EXPECTED):
        return text
    return (
        f"unexpected {type(err).__name__}: {text} (this is a bug in stgeo or a library it uses; "
        "please report it with the command and the output of `stgeo --debug ...`)"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

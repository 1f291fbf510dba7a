"""Rebuild a pretrained artefact from its recorded recipe (``stgeo pretrained build NAME``).

The build builds the catalog stores the recipe names (skipping stores that are up to date),
calls ``stgeo.train`` with the recipe's exact arguments and seed on the CPU, scores the
model and the recipe's baselines on the evaluation split with the same code
(:func:`stgeo.forecast`, :func:`stgeo.score`), and writes a new artefact folder with
:func:`stgeo.pretrained.package`. On the same platform, torch version and thread count the
weights are identical bit for bit to the shipped ones; :class:`BuildResult` says whether
they are.

Examples
--------
>>> import os, tempfile, stgeo
>>> from stgeo.pretrained import Recipe
>>> from stgeo.pretrained_build import build_pretrained
>>> recipe = Recipe.from_dict({
...     "data": "synthetic-storms", "catalog_options": {"n_times": 40, "shape": "16,16"},
...     "train": {"model": "convlstm", "variable": "rain_rate", "in_steps": 2,
...               "out_steps": 2, "epochs": 1, "hidden": 4, "num_layers": 1, "seed": 0,
...               "splits": {"train": 0.8, "val": 0.2}}})
>>> d = tempfile.mkdtemp()
>>> res = build_pretrained("tiny-storms", recipe=recipe, out=os.path.join(d, "tiny"),
...                        cache_dir=os.path.join(d, "stores"))
>>> res.card.architecture, res.card.recipe["train"]["seed"]
('convlstm', 0)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .conventions import LEAD_TIME_DIM, time_step
from .errors import DataValidationError, UnknownNameError
from .options import set_options
from .pretrained import PretrainedCard, Recipe, card, package

__all__ = ["BuildResult", "build_pretrained", "evaluate_recipe"]

_DEFAULT_LEADS = ("30min", "60min")
#: what a recipe's scoring sections default to (``validate``: the validation split, every
#: initial time whose first lead is in it)
_SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "evaluate": {},
    "validate": {"split": "val", "anchor": "valid"},
}


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_pretrained` made.

    Attributes
    ----------
    card : PretrainedCard
        The new artefact's card (``card.json`` in ``path``).
    path : str
        The artefact folder.
    identical : bool or None
        Whether the weights equal the registered artefact's bit for bit (its
        ``weights_sha256``; None: nothing to compare with, e.g. a new artefact).
    same_data : bool or None
        Whether the training data's fingerprint equals the recorded one.
    """

    card: PretrainedCard
    path: str
    identical: bool | None
    same_data: bool | None


def _registered(name: str) -> PretrainedCard | None:
    try:
        return card(name)
    except UnknownNameError:
        return None


def _recipe_of(name: str, recipe: Recipe | dict[str, Any] | None) -> tuple[Recipe, Any]:
    old = _registered(name)
    if recipe is not None:
        return (recipe if isinstance(recipe, Recipe) else Recipe.from_dict(recipe)), old
    if old is None:
        from .pretrained import list_pretrained

        raise UnknownNameError(
            f"no pretrained model {name!r} (registered: {list_pretrained()}); give a recipe "
            "to build a new one"
        )
    return Recipe.from_dict(old.recipe), old


def _train(recipe: Recipe, device: str, progress: bool) -> Any:
    from .training import TimeLimit, train

    kw = dict(recipe.train)
    model = kw.pop("model")
    kw.setdefault("seed", 0)
    callbacks = [TimeLimit(recipe.time_budget)] if recipe.time_budget else []
    return train(
        recipe.data, model=model, device=device, progress=progress, callbacks=callbacks, **kw
    )


def _standard_names(recipe: Recipe, variables: Sequence[str]) -> dict[str, str]:
    """The CF standard names of the trained variables, read from the (first) training store."""
    from .data import open_dataset
    from .data.collections import get_collection, is_collection

    name = get_collection(recipe.data).members[0] if is_collection(recipe.data) else recipe.data
    ds = open_dataset(name)
    return {
        v: str(ds[v].attrs["standard_name"])
        for v in variables
        if v in ds and "standard_name" in ds[v].attrs
    }


def build_pretrained(
    name: str,
    *,
    out: str | os.PathLike,
    recipe: Recipe | dict[str, Any] | None = None,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    evaluate: bool = True,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool | Callable[[str], None] = False,
    index: str | os.PathLike | None = None,
    **card_fields: Any,
) -> BuildResult:
    """Re-run the training recipe of pretrained artefact ``name`` and write a new artefact.

    Parameters
    ----------
    name : str
        A registered pretrained artefact (its card's recipe and metadata are used), or a
        new name together with ``recipe``.
    out : str or path
        The artefact folder to write (never over anything stgeo did not write).
    recipe : Recipe or mapping, optional
        Use this recipe instead of the recorded one (a new artefact, or a variation).
    data_root : path, optional
        Folder of the raw sources of the catalog entries (``stgeo catalog build``).
    cache_dir : path, optional
        Where the catalog stores are built and read (default: the ``cache_dir`` option).
    evaluate : bool
        Score the model and the recipe's baselines (the card's ``scores``, and its
        ``validation`` when the recipe has ``validate``).
    device : str
        Training device; ``"cpu"`` (default) is the bit-reproducible one.
    overwrite : bool
        Replace an existing artefact folder written by stgeo.
    progress : bool or callable
        Report the steps (``True``: print; a callable receives the lines).
    index : str or path, optional
        Add the new artefact to this index file (see :func:`stgeo.pretrained.add_to_index`).
    **card_fields
        Card metadata for :func:`stgeo.pretrained.package` (``description``, ``licence``,
        ``provenance``, ``default``, ``backbone``, ``standard_names``, ``dtype``, ``url``),
        replacing the registered card's.

    Returns
    -------
    BuildResult
    """
    say = _reporter(progress)
    rec, old = _recipe_of(name, recipe)
    _check_outputs(out, overwrite, index)  # before any work: building and training take long
    scope = set_options(cache_dir=str(cache_dir)) if cache_dir else contextlib.nullcontext()
    with scope:
        _build_stores(rec, data_root, say, evaluate)
        sections = [x for x in _SECTION_DEFAULTS if evaluate and getattr(rec, x) is not None]
        for section in sections:  # their mistakes before, not after, training
            _check_evaluation(rec, label=name, section=section)
        say(f"training: {rec.train_call()}")
        tm = _train(rec, device, progress is True)
        tables: dict[str, list[dict[str, Any]]] = {}
        for section in sections:
            say(f"scoring the model and the baselines ({section})")
            tables[section] = evaluate_recipe(tm, rec, label=name, section=section)
        meta = {**_metadata(old, rec, tm), **card_fields}
    new = package(
        tm,
        name=name,
        out=out,
        recipe=rec,
        scores=tables.get("evaluate", []),
        validation=tables.get("validate", []),
        overwrite=overwrite,
        index=index,
        **meta,
    )
    identical = None if old is None else new.weights_sha256 == old.weights_sha256
    same_data = None if old is None else new.data_fingerprint == old.data_fingerprint
    return BuildResult(new, str(Path(out)), identical, same_data)


def _check_outputs(out: Any, overwrite: bool, index: Any) -> None:
    """Raise now what writing the artefact (and the index entry) would raise at the end."""
    from .data.safety import check_output
    from .models.artifact import check_model_folder
    from .pretrained import load_index

    check_model_folder(check_output(out, "model", overwrite=overwrite))
    if index is not None and Path(index).exists():
        load_index(index)  # refuses a file that is not a pretrained index


def _build_stores(rec: Recipe, data_root: Any, say: Callable[[str], None], evaluate: bool) -> None:
    """Build the stores of the training (and evaluation) entries that have a recipe;
    entries without one must already have their store."""
    from .data.catalog import get_entry
    from .datasets import build_catalog

    names = _events(rec.data)
    for section in _SECTION_DEFAULTS:
        ev = getattr(rec, section)
        if evaluate and ev is not None:
            names += [n for n in _events(ev.get("data", rec.data)) if n not in names]
    buildable = [n for n in names if get_entry(n).recipe.get("name")]
    if buildable:
        say(f"building the stores of {buildable} (skipping those up to date)")
        build_catalog(buildable, data_root=data_root, progress=say, **rec.catalog_options)


def _metadata(old: PretrainedCard | None, rec: Recipe, tm: Any) -> dict[str, Any]:
    if old is None:
        return {"standard_names": _standard_names(rec, tm.spec.variables)}
    return {
        "description": old.description,
        "licence": old.licence,
        "provenance": old.provenance,
        "standard_names": old.standard_names or _standard_names(rec, tm.spec.variables),
        "backbone": old.backbone,
        "default": old.default,
        "dtype": old.dtype,
        "url": old.files.get("url"),
    }


def _reporter(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    return print if progress else (lambda line: None)


# -- evaluation -------------------------------------------------------------------------
def _events(data: str) -> list[str]:
    from .data.collections import get_collection, is_collection

    return list(get_collection(data).members) if is_collection(data) else [data]


def _init_times(
    ds: xr.Dataset, name: str, ev: dict[str, Any], history: int = 0
) -> pd.DatetimeIndex:
    """The initial times scored: every ``every``-th time of the split (``anchor="origin"``) or
    of the times whose first lead lies in the split (``anchor="valid"``) that have the
    model's ``history`` steps of inputs in the data, keeping those whose ``lead_steps`` leads
    all lie in the data (a test event that is all ``test``, 4 inputs, every 4: t0 = 3, 7,
    11, ... of the radar protocol)."""
    from .data.catalog import get_entry

    entry = get_entry(name)
    split = ev.get("split", "test")
    if split not in entry.splits:
        raise DataValidationError(
            f"the recipe evaluates on split {split!r}, which catalog entry {name!r} does not "
            f"define (it has {sorted(entry.splits)})"
        )
    start, end = (pd.Timestamp(t) for t in entry.splits[split])
    times = pd.DatetimeIndex(ds.time.values)
    step = time_step(ds)
    first = times + step if ev.get("anchor", "origin") == "valid" else times
    ok = (first >= start) & (first <= end) & (times >= times[0] + history * step)
    inits = times[ok][:: int(ev.get("every", 1))]
    inits = inits[inits <= times[-1] - int(ev["lead_steps"]) * step]
    if not len(inits):
        raise DataValidationError(
            f"the recipe's evaluation has no initial time in catalog entry {name!r}: split "
            f"{split!r} ({start} .. {end}, anchor {ev.get('anchor', 'origin')!r}, every "
            f"{ev.get('every', 1)}) leaves none whose {ev['lead_steps']} leads of {step} lie "
            f"in the data (which end at {times[-1]}); lower lead_steps or use another split"
        )
    return inits


def _section(rec: Recipe, section: str) -> dict[str, Any]:
    """A recipe's ``evaluate`` or ``validate`` mapping with the section's defaults."""
    return {**_SECTION_DEFAULTS[section], **(getattr(rec, section) or {})}


def _check_evaluation(rec: Recipe, *, label: str, section: str = "evaluate") -> None:
    """Raise now what the evaluation after training would: a baseline labelled as the model,
    an evaluation split without initial times."""
    ev = _section(rec, section)
    _check_label(ev, label)
    lead_steps = int(ev.get("lead_steps", rec.train.get("out_steps", 1)))
    offsets = rec.train.get("input_offsets")
    history = -min(offsets) if offsets else int(rec.train.get("in_steps") or 1) - 1
    _scored_events(rec, section, {**ev, "lead_steps": lead_steps}, history)


def _scored_events(
    rec: Recipe, section: str, ev: dict[str, Any], history: int
) -> list[tuple[str, pd.DatetimeIndex]]:
    """The events a section scores and their initial times. ``evaluate``: every event of
    its data (one without initial times is an error); ``validate``: those that have some
    (short validation parts of a collection's events hold no complete forecast)."""
    from .data import open_dataset

    out, errors = [], []
    for name in _events(ev.get("data", rec.data)):
        try:
            out.append((name, _init_times(open_dataset(name), name, ev, history)))
        except DataValidationError as err:
            if section != "validate":
                raise
            errors.append(str(err))
    if not out:
        raise DataValidationError(
            f"the recipe's {section} has no initial time in any of its events: " + "; ".join(errors)
        )
    return out


def _check_label(ev: dict[str, Any], label: str) -> None:
    if label in [_baseline(b)[0] for b in ev.get("baselines", [])]:
        raise DataValidationError(
            f"a baseline of the recipe's evaluation is labelled {label!r}, the model's own "
            "label: give it another 'label' (each is a row of the table)"
        )


def _baseline(entry: str | dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A recipe's baseline as (label, model name, forecast options)."""
    if isinstance(entry, str):
        return entry, entry, {}
    opts = {k: v for k, v in entry.items() if k not in ("model", "label")}
    return str(entry.get("label", entry["model"])), entry["model"], opts


def _score_event(
    tm: Any, name: str, inits: pd.DatetimeIndex, ev: dict[str, Any], label: str
) -> dict[str, xr.Dataset]:
    from .data import open_dataset
    from .forecasting import forecast
    from .metrics import score

    ds = open_dataset(name)
    var = tm.spec.variables[0]
    thresholds = [float(t) for t in ev.get("thresholds", [])]
    metrics = [*ev.get("metrics", ["mse"]), *(["csi", "frequency_bias"] if thresholds else [])]
    kw: dict[str, Any] = {"thresholds": thresholds} if thresholds else {}
    if ev.get("weights"):
        kw["weights"] = ev["weights"]
    out = {}
    methods = [(label, tm, {}), *(_baseline(b) for b in ev.get("baselines", []))]
    for method, model, opts in methods:
        fc = forecast(
            ds, model, variable=var, init_times=inits, lead_steps=ev["lead_steps"], **opts
        )
        out[method] = score(fc, ds[var], metrics=metrics, **kw).compute()
    return out


def evaluate_recipe(
    tm: Any, recipe: Recipe, *, label: str, section: str = "evaluate"
) -> list[dict[str, Any]]:
    """Score ``tm`` and the recipe's baselines on its evaluation data: the card's table.

    ``section="validate"`` scores as the recipe's ``validate`` says instead (the
    validation split of the events that have initial times in it: the card's
    ``validation`` table).

    Each catalog entry (or member of a collection) is scored on its ``split``; the table
    gives per method each of ``metrics`` (default ``["mse"]``; also ``"rmse"``, ``"mae"``)
    as its mean over the leads (RMSE and MAE also at the lead times ``leads``, default
    ``["30min", "60min"]``, tagged as spelled there: ``"RMSE +6h"``) and, per threshold,
    CSI and frequency bias at those leads, averaged over the events.
    ``weights="latitude"`` weights the cells by cos(latitude) (see :func:`stgeo.score`).
    A baseline is a name (``"persistence"``) or a mapping with ``model``, an optional
    ``label`` and options of :func:`stgeo.forecast` (``{"model": "climatology", "period":
    "1D", "label": "diurnal persistence"}``).

    Examples
    --------
    >>> import tempfile, stgeo
    >>> from stgeo.pretrained import Recipe
    >>> r = Recipe.from_dict({"data": "synthetic-storms",
    ...     "train": {"model": "persistence", "in_steps": 1, "out_steps": 6},
    ...     "evaluate": {"lead_steps": 6, "thresholds": [1.0], "every": 12}})
    >>> with stgeo.set_options(cache_dir=tempfile.mkdtemp()):
    ...     _ = stgeo.datasets.build_from_catalog("synthetic-storms", n_times=288,
    ...                                           shape="16,16")
    ...     tm = stgeo.train("synthetic-storms", model="persistence", in_steps=1,
    ...                      out_steps=6, progress=False)
    ...     rows = evaluate_recipe(tm, r, label="persistence-model")
    >>> rows[0]["method"], sorted(rows[0])[:2]
    ('persistence-model', ['CSI 1 +30min', 'MSE'])
    """
    if section not in _SECTION_DEFAULTS:
        raise DataValidationError(
            f"section must be one of {list(_SECTION_DEFAULTS)}, got {section!r}"
        )
    ev = _section(recipe, section)
    _check_label(ev, label)
    ev["lead_steps"] = int(ev.get("lead_steps", tm.out_steps))
    spec = tm.spec
    history = -min(spec.input_offsets) if spec.input_offsets else spec.in_steps - 1
    per_event = [
        _score_event(tm, name, inits, ev, label)
        for name, inits in _scored_events(recipe, section, ev, history)
    ]
    leads = [(str(x), pd.Timedelta(x)) for x in ev.get("leads", _DEFAULT_LEADS)]
    if "leads" in ev:  # asked for explicitly: each must be a lead of the forecasts
        have = pd.to_timedelta(next(iter(per_event[0].values()))[LEAD_TIME_DIM].values)
        missing = [text for text, t in leads if t not in have]
        if missing:
            raise DataValidationError(
                f"the recipe's evaluation asks for leads {missing}, which its forecasts "
                f"({ev.get('lead_steps', tm.out_steps)} steps) do not have; they reach "
                f"{', '.join(str(t) for t in have)}"
            )
    rows = []
    for method in per_event[0]:
        row: dict[str, Any] = {"method": method}
        row.update(_mean_row([_row(e[method], leads) for e in per_event]))
        rows.append(row)
    return rows


_CONTINUOUS = {"mse": "MSE", "rmse": "RMSE", "mae": "MAE"}
_CATEGORICAL = {"csi": "CSI", "frequency_bias": "bias"}


def _row(s: xr.Dataset, leads: Sequence[tuple[str, pd.Timedelta]]) -> dict[str, float]:
    """One event's row: each continuous metric's lead mean, then per lead (tagged as the
    recipe spells it) the continuous metrics and CSI / bias per threshold."""
    row = {short: float(s[name].mean()) for name, short in _CONTINUOUS.items() if name in s}
    have = pd.to_timedelta(s[LEAD_TIME_DIM].values)
    for text, lead in [(t, x) for t, x in leads if x in have]:
        tag = f"+{text}"
        at = {LEAD_TIME_DIM: lead}
        for name, short in _CONTINUOUS.items():
            if name in s and name != "mse":
                row[f"{short} {tag}"] = float(s[name].sel(at))
        for name, short in _CATEGORICAL.items():
            if name not in s:
                continue
            for thr in s["threshold"].values:
                row[f"{short} {float(thr):g} {tag}"] = float(s[name].sel({**at, "threshold": thr}))
    return row


def _mean_row(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.nanmean([r[k] for r in rows if k in r])), 4) for k in rows[0]}

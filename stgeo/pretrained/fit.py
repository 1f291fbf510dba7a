"""Which pretrained artefact fits some data: variable, units, time step and grid.

An artefact **fits** a dataset when

1. every variable of the artefact is in the data, by name or by CF ``standard_name``
   (a data variable of another name with the artefact's standard name is used, renamed to
   the artefact's name); a variable of the same name whose ``standard_name`` is another
   quantity's (``rain_rate`` that is an ``air_temperature``) does not fit;
2. the data's units mean the same as the artefact's (compared by meaning, ``mm/h`` equals
   ``mm h-1``; missing units are not compared: forecasting by an architecture's name then
   warns);
3. the data's time step is the artefact's within ``step_tolerance`` (a fraction, 0.25 by
   default, as in :func:`stgeo.forecast`), or the artefact was trained ``per-event``;
4. the grid is one the model applies to: any grid, unless the architecture has parameters
   per grid cell (:class:`stgeo.models.GridRule` ``fixed_grid``), then only its training grid
   (its shape and, when the card records them, the latitude and longitude of its corners).

:func:`find` lists the artefacts of an architecture that fit, in the order of preference:
artefacts marked ``default`` first, then index order.

Examples
--------
>>> import stgeo
>>> from stgeo.pretrained import find
>>> ds = stgeo.testing.storm_cells(n_times=8, shape=(32, 32), seed=0)
>>> [m.card.name for m in find(ds, "convlstm")]
['storms-convlstm']
>>> find(ds.resample(time="10min").mean(), "convlstm")
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

from ..conventions import (
    SPATIAL_DIM_PAIRS,
    event_grid_corners,
    grid_corners,
    grid_corners_differ,
    time_step,
    units_equal,
)
from ..errors import DataValidationError, UnknownNameError
from ..models import grid_rule, model_info
from ..models.base import PER_EVENT_STEP
from .card import PretrainedCard
from .registry import cards

__all__ = [
    "Match",
    "candidates",
    "find",
    "looks_synthetic",
    "misfits",
    "trained_on_synthetic_data",
]


@dataclass(frozen=True)
class Match:
    """A pretrained artefact that fits a dataset, and how the data map onto it.

    Attributes
    ----------
    card : PretrainedCard
        The artefact.
    rename : dict
        Data variable -> artefact variable, for variables found by standard name.
    """

    card: PretrainedCard
    rename: dict[str, str] = field(default_factory=dict)


def _gridded(ds: xr.Dataset) -> list[str]:
    return [str(v) for v, da in ds.data_vars.items() if "time" in da.dims and da.ndim >= 3]


def _variable_map(
    c: PretrainedCard, ds: xr.Dataset, asked: Sequence[str] | None
) -> tuple[dict[str, str], list[str]]:
    """(data variable -> card variable, problems) for the card's variables in ``ds``."""
    pool = list(asked) if asked is not None else _gridded(ds)
    found: dict[str, str] = {}
    problems = []
    for v in c.variables:
        std = c.standard_names.get(v)
        if v in pool and v in ds:
            other = _other_quantity(ds, v, std)
            if other is None:
                found[v] = v
            else:
                problems.append(
                    f"{v!r} has standard_name {other!r}, the model's {v!r} is {std!r} "
                    "(another quantity of the same name)"
                )
            continue
        same = [d for d in pool if d in ds and std and ds[d].attrs.get("standard_name") == std]
        if len(same) == 1:
            found[same[0]] = v
        else:
            what = f"{v!r}" + (f" (standard_name {std!r})" if std else "")
            problems.append(f"no variable {what} in the data (it has {pool})")
    if asked is not None and not problems and sorted(found) != sorted(asked):
        problems.append(f"it forecasts {c.variables}, not {list(asked)}")
    return found, problems


def _other_quantity(ds: xr.Dataset, name: str, std: str | None) -> str | None:
    """The data variable's ``standard_name`` when both it and the artefact have one and they
    differ (the same name used for another quantity), else None."""
    have = ds[name].attrs.get("standard_name")
    if not std or not isinstance(have, str) or not have.strip():
        return None
    return have if have.strip() != std.strip() else None


def _unit_problems(c: PretrainedCard, ds: xr.Dataset, found: dict[str, str]) -> list[str]:
    out = []
    for data_var, v in found.items():
        have, want = ds[data_var].attrs.get("units"), c.units.get(v)
        if units_equal(have, want) is False:
            out.append(f"{data_var!r} is in {have!r}, the model expects {want!r}")
    return out


def _step_problems(c: PretrainedCard, step: pd.Timedelta | None, tolerance: float) -> list[str]:
    if c.time_step == PER_EVENT_STEP or step is None:
        return []
    trained = pd.Timedelta(c.time_step)
    if abs(step / trained - 1.0) > tolerance:
        return [
            f"the data step is {_text(step)}, the model's {c.time_step} "
            f"(more than step_tolerance={tolerance:g} apart)"
        ]
    return []


def _text(step: pd.Timedelta) -> str:
    from ..conventions import freq_string

    return freq_string(step)


def _grid_problems(c: PretrainedCard, ds: xr.Dataset, data_var: str | None) -> list[str]:
    try:
        rule = grid_rule(c.architecture, **c.hyperparameters)
    except (UnknownNameError, TypeError, ValueError):
        return [f"its architecture {c.architecture!r} is not registered here"]
    if not rule.fixed_grid or data_var is None:
        return []
    trained = c.grid_shape
    dims = next((p for p in SPATIAL_DIM_PAIRS if set(p) <= set(ds[data_var].dims)), None)
    shape = [int(ds.sizes[d]) for d in dims] if dims else None
    if trained is not None and shape != list(trained):
        return [f"it runs only on its training grid {trained}, the data grid is {shape}"]
    here = grid_corners(ds)
    for place in [here] if here else event_grid_corners(ds):
        elsewhere = grid_corners_differ(c.grid_corners or {}, place, trained or shape)
        if elsewhere:
            return [f"it runs only on its training grid: {elsewhere}"]
    return []


def misfits(
    c: PretrainedCard,
    ds: xr.Dataset,
    *,
    variable: str | Sequence[str] | None = None,
    step_tolerance: float = 0.25,
) -> tuple[dict[str, str], list[str]]:
    """Why artefact ``c`` does not fit ``ds``: ``(rename, problems)``; no problem: it fits.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.pretrained import card, misfits
    >>> ds = stgeo.testing.storm_cells(n_times=4, shape=(16, 16), seed=0)
    >>> ds["rain_rate"].attrs["units"] = "m s-1"
    >>> misfits(card("storms-convlstm"), ds)[1]
    ["'rain_rate' is in 'm s-1', the model expects 'mm h-1'"]
    """
    asked = [variable] if isinstance(variable, str) else variable
    found, problems = _variable_map(c, ds, asked)
    if problems:
        return {}, problems
    problems += _unit_problems(c, ds, found)
    try:
        step = time_step(ds[next(iter(found))])
    except DataValidationError as err:
        problems.append(str(err))
        step = None
    problems += _step_problems(c, step, step_tolerance)
    problems += _grid_problems(c, ds, next(iter(found), None))
    return {k: v for k, v in found.items() if k != v}, problems


def _wanted(c: PretrainedCard, canonical: str) -> bool:
    """Whether the artefact is of the architecture asked for: that name (or alias), or, when
    a base architecture is asked for, any of its named variants (``"stresnet-stacked"``
    takes a ``"stresnet-stacked-small"`` artefact; ``"simvp-radar"`` only that variant)."""
    names = [n for n in (c.architecture, c.backbone) if n is not None]
    if canonical in [_canonical(n) for n in names]:
        return True
    return _family(canonical) == canonical and canonical in [_family(n) for n in names]


def _canonical(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return str(model_info(name)["name"])
    except UnknownNameError:
        return name.lower()


def _family(name: str) -> str:
    try:
        return str(model_info(name)["family"])
    except UnknownNameError:
        return name.lower()


def find(
    data: xr.Dataset,
    architecture: str | None = None,
    *,
    variable: str | Sequence[str] | None = None,
    step_tolerance: float = 0.25,
) -> list[Match]:
    """The pretrained artefacts (of ``architecture``, default any) that fit ``data``.

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray, str or path
        The data to forecast (a catalog name or store path is opened lazily).
    architecture : str, optional
        A registered model name or alias: only artefacts whose ``architecture`` or
        ``backbone`` is that model (for a base architecture such as ``"simvp"``, also its
        named variants such as ``"simvp-radar"``).
    variable : str or list of str, optional
        The variables to forecast (default: any gridded variable of the data).
    step_tolerance : float
        Largest relative difference of time steps accepted.

    Returns
    -------
    list of Match
        Best first: ``default`` artefacts, then index order.
    """
    from ..data import open_data

    data = open_data(data)
    canonical = _canonical(architecture) if architecture is not None else None
    out = []
    for c in cards():
        if canonical is not None and not _wanted(c, canonical):
            continue
        rename, problems = misfits(c, data, variable=variable, step_tolerance=step_tolerance)
        if not problems:
            out.append(Match(c, rename))
    return sorted(out, key=lambda m: not m.card.default)


def candidates(architecture: str) -> list[PretrainedCard]:
    """All artefacts of ``architecture`` (its name, an alias, or a backbone name; a base
    architecture also takes its named variants)."""
    canonical = _canonical(architecture)
    return [c for c in cards() if _wanted(c, str(canonical))]


def trained_on_synthetic_data(c: PretrainedCard) -> bool:
    """Whether artefact ``c`` was trained on generated data only: every catalog entry of its
    recipe's ``data`` is built by the ``synthetic`` recipe (``stgeo.testing``'s generators).

    Examples
    --------
    >>> from stgeo.pretrained import card
    >>> trained_on_synthetic_data(card("storms-convlstm"))
    True
    >>> trained_on_synthetic_data(card("radar-nowcaster"))
    False
    """
    from ..data.catalog import get_entry
    from ..data.collections import get_collection, is_collection

    data = (c.recipe or {}).get("data")
    if not isinstance(data, str):
        return False
    try:
        names = list(get_collection(data).members) if is_collection(data) else [data]
        return all(get_entry(n).recipe.get("name") == "synthetic" for n in names)
    except (UnknownNameError, KeyError, ValueError):
        return False


def looks_synthetic(data: xr.Dataset | xr.DataArray) -> bool:
    """Whether ``data`` come from stgeo's generators (their ``source`` attribute names
    ``stgeo.testing``, as :func:`stgeo.testing.storm_cells` and the synthetic catalog
    stores set it).

    Examples
    --------
    >>> import stgeo
    >>> looks_synthetic(stgeo.testing.storm_cells(n_times=2, shape=(8, 8)))
    True
    """
    return str(data.attrs.get("source", "")).startswith("stgeo.testing.")

"""What ``model=`` means: a path, a TrainedModel, a bare module or a registered baseline name,
turned into ``(module, spec, label)``; and the checks that the data fit that spec.

Baselines are resolved by one generic path: their registration declares their settings
(:func:`stgeo.models.baseline_settings`), nothing here knows any baseline by name.

Examples
--------
>>> import stgeo
>>> from stgeo.data import to_frames
>>> from stgeo.conventions import time_step
>>> ds = stgeo.testing.storm_cells(n_times=12, shape=(16, 16), seed=0)
>>> frames = to_frames(ds)
>>> module, spec, label = _resolve_model(
...     "climatology", frames=frames, step=time_step(frames), in_steps=None, lead_steps=2,
...     model_kwargs={"period": "30min"})
>>> spec.in_steps, spec.out_steps, spec.hyperparameters
(6, 2, {'period_steps': 6})
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..conventions import (
    check_units,
    event_grid_corners,
    freq_string,
    grid_corners,
    grid_corners_differ,
)
from ..data import variables_of
from ..errors import DataValidationError, StgeoTypeError, StgeoWarning, UnknownNameError
from ..models import GridRule, grid_rule
from ..models.artifact import TrainedModel, load_model
from ..models.base import PER_EVENT_STEP, ModelSpec, baseline_settings, create_model, model_info
from ..pretrained import PretrainedCard, card, cards, find, get, misfits
from ..pretrained.fit import candidates, looks_synthetic, trained_on_synthetic_data
from ..pretrained.registry import is_pretrained, unknown_name_message
from .core import _leads
from .tiles import Tiling

__all__: list[str] = []

logger = logging.getLogger("stgeo.forecasting")

_MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt")


def _is_path(model: Any) -> bool:
    if isinstance(model, os.PathLike):
        return True
    s = str(model)
    return Path(s).exists() or os.sep in s or s.endswith(_MODEL_SUFFIXES)


def _load_if_path(model: Any) -> Any:
    """A saved model's path loaded as a :class:`TrainedModel`; anything else unchanged."""
    if isinstance(model, (str, os.PathLike)) and _is_path(model):
        return load_model(model)
    return model


def _use_pretrained(
    model: Any, ds: xr.Dataset, variable: Any, step_tolerance: float
) -> tuple[Any, xr.Dataset, Any, dict[str, Any]]:
    """A pretrained artefact's name, or an architecture's name with a pretrained artefact
    that fits the data -> ``(TrainedModel, data, variable, attrs)``; anything else unchanged.

    Several fitting artefacts: the first ``default`` one, else the first in index order.
    """
    if not isinstance(model, str) or _is_path(model):
        return model, ds, variable, {}
    if is_pretrained(model):
        rename, problems = misfits(
            card(model), ds, variable=variable, step_tolerance=step_tolerance
        )
        if problems:
            raise DataValidationError(
                f"the pretrained model {model!r} ({card(model).fits_text()}) does not fit the "
                f"data: {'; '.join(problems)}"
            )
        return _load_pretrained(card(model), rename, ds, variable, model, [], by_name=True)
    try:
        info = model_info(model)
    except UnknownNameError:
        raise UnknownNameError(unknown_name_message(model)) from None
    if info["baseline"]:
        return model, ds, variable, {}
    matches = find(ds, info["name"], variable=variable, step_tolerance=step_tolerance)
    if not matches:
        raise DataValidationError(
            _nothing_fits(info["name"], ds, variable, step_tolerance, asked=model)
        )
    first = matches[0]
    others = [m.card.name for m in matches[1:]]
    return _load_pretrained(first.card, first.rename, ds, variable, model, others)


#: (name asked for, artefact) pairs already announced in this process: the choice of a
#: pretrained model for an architecture's name is said once per process
_ANNOUNCED: set[tuple[str, str]] = set()


def _load_pretrained(
    c: PretrainedCard,
    rename: dict[str, str],
    ds: xr.Dataset,
    variable: Any,
    asked: str,
    others: list[str],
    *,
    by_name: bool = False,
) -> tuple[Any, xr.Dataset, Any, dict[str, Any]]:
    """Load artefact ``c`` for ``model=asked``. Chosen for an architecture's name (not
    ``by_name``), the choice is logged at WARNING level once per process (shown without any
    logging setup; silence it with ``logging.getLogger("stgeo").setLevel(logging.ERROR)``),
    and a :class:`~stgeo.errors.StgeoWarning` says when the data's units cannot be checked
    or the artefact learnt from synthetic data only and these data are not synthetic."""
    tm = get(c.name)
    msg = f"model={asked!r}: using the pretrained model {c.name!r} ({c.summary()})"
    if others:
        msg += f"; also fitting: {others} (the index's default / first entry wins)"
    if rename:
        msg += f"; data variables renamed {rename}"
    if by_name or (asked, c.name) in _ANNOUNCED:
        logger.info(msg)
    else:
        _ANNOUNCED.add((asked, c.name))
        logger.warning(msg + f"; forecast with model={c.name!r} to choose it by name")
    if not by_name:
        _warn_unchecked(c, ds, asked, rename)
    if rename:
        ds = ds.rename(rename)
        variable = None
    return tm, ds, variable, {"pretrained": c.name}


def _warn_unchecked(c: PretrainedCard, ds: xr.Dataset, asked: str, rename: dict[str, str]) -> None:
    """StgeoWarning when stgeo picked artefact ``c`` for ``model=asked`` on weak grounds:
    data without units (not compared), or real data for a model trained on synthetic data."""
    back = {v: k for k, v in rename.items()}
    in_data = {back.get(v, v): v for v in c.variables if back.get(v, v) in ds}  # data -> card
    want = {
        d: c.units.get(v)
        for d, v in in_data.items()
        if not str(ds[d].attrs.get("units", "")).strip()
    }
    unitless = list(want)
    if unitless:
        warnings.warn(
            f"model={asked!r}: the data variable(s) {unitless} have no units, so stgeo cannot "
            f"check that they are in the units the pretrained model {c.name!r} expects "
            f"({want}); set ds[name].attrs['units'] (or pass model={c.name!r} to choose it "
            "by name)",
            StgeoWarning,
            stacklevel=5,
        )
    if trained_on_synthetic_data(c) and not looks_synthetic(ds):
        warnings.warn(
            f"model={asked!r} uses the pretrained model {c.name!r}, which learnt from "
            f"synthetic data only ({c.recipe.get('data')!r}): on these data its forecasts "
            "show what the model does, they are no skilful forecast. Train a model on your "
            f"data (stgeo.train(ds, model={c.architecture!r}, ...)), or pass "
            f"model={c.name!r} to use it knowingly",
            StgeoWarning,
            stacklevel=5,
        )


def _nothing_fits(
    arch: str, ds: xr.Dataset, variable: Any, step_tolerance: float, *, asked: str
) -> str:
    """The error text: the pretrained models, why none fits, and the train call to make one."""
    lines = []
    for c in cards():
        _, problems = misfits(c, ds, variable=variable, step_tolerance=step_tolerance)
        why = "fits these data" if not problems else "does not fit: " + "; ".join(problems)
        lines.append(f"  - {c.summary()} -- {why}")
    var = variable if variable is not None else _first_gridded(ds)
    same = candidates(arch)
    head = (
        f"no pretrained {arch!r} model fits these data"
        if same
        else f"{asked!r} is an architecture with untrained weights and no pretrained {arch!r} "
        "model is registered"
    )
    return (
        f"{head}. Pretrained models:\n"
        + ("\n".join(lines) or "  (none)")
        + "\nTrain one first on your data and forecast with it:\n"
        + f"  m = stgeo.train(ds, model={arch!r}, variable={var!r}, in_steps=4, out_steps=12)\n"
        + "  fc = ds.st.forecast(model=m)   # or m.save('my-model') and model='my-model'\n"
        + "or forecast with a pretrained model by its name (model='<name>')"
    )


def _first_gridded(ds: xr.Dataset) -> str | None:
    names = [str(v) for v, da in ds.data_vars.items() if "time" in da.dims and da.ndim >= 3]
    return names[0] if names else None


def _variables(model: Any, variable: str | Sequence[str] | None) -> Any:
    """The variables to read: a trained model's own (``variable`` must agree), else ``variable``."""
    if not isinstance(model, TrainedModel):
        return variable
    trained = model.spec.variables
    if variable is not None:
        asked = [variable] if isinstance(variable, str) else list(variable)
        if asked != list(trained):
            raise DataValidationError(
                f"the model was trained on variables {trained}, not {asked}; forecast "
                "those variables (or train a model for these)"
            )
    return trained


def _resolve_model(
    model: Any,
    *,
    frames: xr.DataArray,
    step: pd.Timedelta,
    in_steps: int | None,
    lead_steps: int | Sequence[int] | None,
    model_kwargs: dict[str, Any],
) -> tuple[Any, ModelSpec, str]:
    """(module, spec, label) for a TrainedModel, a torch module or a baseline name."""
    import torch

    if isinstance(model, TrainedModel):
        if model_kwargs:
            raise StgeoTypeError(
                f"extra keyword arguments {sorted(model_kwargs)} only apply to baseline models "
                "given by name; a trained model carries its own settings"
            )
        return model.module, model.spec, model.spec.model
    if isinstance(model, torch.nn.Module):
        return _from_module(model, frames, step, in_steps, model_kwargs)
    if not isinstance(model, str):
        raise StgeoTypeError(
            "model must be a registered baseline name, a path to a saved model, a TrainedModel "
            f"or a torch.nn.Module, got {type(model).__name__}"
        )
    return _from_name(model, frames, step, in_steps, lead_steps, model_kwargs)


def _from_name(
    name: str,
    frames: xr.DataArray,
    step: pd.Timedelta,
    in_steps: int | None,
    lead_steps: int | Sequence[int] | None,
    model_kwargs: dict[str, Any],
) -> tuple[Any, ModelSpec, str]:
    """A registered baseline, sized by the settings its registration declares."""
    info = model_info(name)
    name = info["name"]
    if not info["baseline"]:
        raise StgeoTypeError(
            f"{name!r} is an architecture with untrained weights; train it first "
            f"(m = stgeo.train(ds, model={name!r}, ...)) and pass the result or its path"
        )
    last_lead = _leads(lead_steps)[-1] if lead_steps is not None else None
    settings = baseline_settings(
        name, step=step, in_steps=in_steps, lead_steps=last_lead, **model_kwargs
    )
    channels = [str(c) for c in frames["channel"].values]
    kw = dict(settings.hyperparameters)
    module = create_model(
        name,
        in_steps=settings.in_steps,
        out_steps=settings.out_steps,
        channels=len(channels),
        grid_shape=None,
        **kw,
    )
    spec = ModelSpec(
        name,
        settings.in_steps,
        settings.out_steps,
        variables_of(channels),
        channels,
        freq_string(step),
        None,
        hyperparameters=kw,
    )
    return module, spec, name


def _from_module(
    module: Any,
    frames: xr.DataArray,
    step: pd.Timedelta,
    in_steps: int | None,
    model_kwargs: dict[str, Any],
) -> tuple[Any, ModelSpec, str]:
    if in_steps is None:
        raise DataValidationError(
            "a bare torch module needs in_steps=...; better, pass a TrainedModel or a path"
        )
    if model_kwargs:
        raise StgeoTypeError(f"unexpected keyword arguments {sorted(model_kwargs)}")
    return module, _bare_spec(module, frames, step, in_steps), type(module).__name__


def _bare_spec(module: Any, frames: xr.DataArray, step: pd.Timedelta, in_steps: int) -> ModelSpec:
    """The spec of a bare module, its ``out_steps`` found by one forward pass on zeros."""
    import torch

    channels = [str(c) for c in frames["channel"].values]
    shape = (1, in_steps, len(channels), *frames.shape[-2:])
    try:
        with torch.no_grad():
            p = next(iter(module.parameters()), None)
            dev = p.device if p is not None else torch.device("cpu")
            y = module(torch.zeros(shape, device=dev, dtype=p.dtype if p is not None else None))
    except Exception as err:
        raise DataValidationError(
            f"the module cannot forecast input of shape {shape} (B, T_in, C, H, W): {err}"
        ) from None
    if y.ndim != 5 or tuple(y.shape[2:]) != shape[2:]:
        raise DataValidationError(
            f"the module maps {shape} to {tuple(y.shape)}; a forecaster must return "
            "(B, T_out, C, H, W)"
        )
    return ModelSpec(
        type(module).__name__,
        in_steps,
        int(y.shape[1]),
        variables_of(channels),
        channels,
        freq_string(step),
        tuple(frames.shape[-2:]),
    )


def _check_step(spec: ModelSpec, step: pd.Timedelta, label: str, tolerance: float) -> dict:
    """Raise unless the data's step is the model's within ``tolerance`` (a fraction); return
    the attributes recording a different model step (empty when equal or per-event)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise DataValidationError(
            f"step_tolerance must be a fraction >= 0 (0.25 = 25%), got {tolerance!r}"
        )
    if spec.time_step == PER_EVENT_STEP:
        return {}
    try:
        trained = pd.Timedelta(spec.time_step)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"the model {label!r} records an unreadable time step {spec.time_step!r}; expected "
            f"a pandas duration such as '5min' or {PER_EVENT_STEP!r}"
        ) from None
    if trained == step:
        return {}
    data = freq_string(step)
    if abs(step / trained - 1.0) > tolerance:
        raise DataValidationError(
            f"the model {label!r} was trained on a time step of {spec.time_step}, the data have "
            f"{data}: more than step_tolerance={tolerance:g} ({tolerance:.0%}) apart. Resample "
            f"the data (e.g. ds.resample(time={spec.time_step!r}).mean()), or raise "
            "step_tolerance if one model step may stand for one data step"
        )
    warnings.warn(
        f"the model {label!r} was trained on a time step of {spec.time_step}; the data have "
        f"{data} (within step_tolerance={tolerance:g}): one model step is taken as one data "
        f"step, lead_time counts in {data}",
        StgeoWarning,
        stacklevel=3,
    )
    return {"model_time_step": str(spec.time_step)}


def _check_compat(
    spec: ModelSpec, frames: xr.DataArray, sdims: tuple[str, str], label: str
) -> None:
    """Raise unless the data have the model's channels, spatial dims and normaliser."""
    channels = [str(c) for c in frames["channel"].values]
    if channels != list(spec.channels):
        raise DataValidationError(
            f"the model {label!r} was trained on channels {spec.channels}, the data give "
            f"{channels}; select the same variables (variable={spec.variables!r})"
        )
    _check_dims(spec, sdims, label)
    _check_units(spec, frames, label)
    if spec.normalization:  # a malformed normaliser fails here, not inside the first batch
        from ..data import Normalizer

        try:
            Normalizer.from_dict(spec.normalization)
        except DataValidationError as err:
            msg = f"the model {label!r} has an unusable normalisation: {err}"
            raise DataValidationError(msg) from None


def _check_grid_place(spec: ModelSpec, ds: xr.Dataset, grid: tuple[int, int], label: str) -> None:
    """A model with per-cell parameters forecasts only where it was trained: the corners of
    the data grid (of every event, for events with their own geolocation) must be those of
    its training grid (when both are known)."""
    trained = spec.extra.get("grid_corners")
    if not trained or spec.grid_shape is None or not _rule_of(spec).fixed_grid:
        return
    if list(grid) != [int(n) for n in spec.grid_shape]:
        return  # another shape: the grid-shape check says so
    here = grid_corners(ds)
    for place in [here] if here else event_grid_corners(ds):
        elsewhere = grid_corners_differ(trained, place, spec.grid_shape)
        if elsewhere:
            raise DataValidationError(
                f"the model {label!r} has parameters per grid cell, tied to where it was "
                f"trained: {elsewhere}. Forecast data on the training grid, or train on this grid"
            )


def _check_units(spec: ModelSpec, frames: xr.DataArray, label: str) -> None:
    """Raise when a variable's units differ in meaning from those the model was trained on."""
    if not spec.units:
        return
    channels = [str(c) for c in frames["channel"].values]
    units = list(frames.attrs.get("units", [])) or [""] * len(channels)
    data_units: dict[str, str] = {}
    for ch, u in zip(channels, units, strict=False):
        data_units.setdefault(variables_of([ch])[0], str(u))
    for var, trained in spec.units.items():
        check_units(
            data_units.get(var),
            trained,
            what="the data",
            expected_what=f"the model {label!r} (trained on it)",
            name=var,
        )


def _check_dims(spec: ModelSpec, sdims: tuple[str, str], label: str) -> None:
    if spec.grid_shape is not None and tuple(spec.spatial_dims) != tuple(sdims):
        raise DataValidationError(
            f"the model {label!r} was trained on spatial dims {tuple(spec.spatial_dims)}, "
            f"the data have {sdims}"
        )


def _rule_of(spec: ModelSpec) -> GridRule:
    """The grid rule of the spec's registered model (``GridRule()`` when not registered)."""
    try:
        return grid_rule(spec)
    except UnknownNameError:
        return GridRule()


_TILING_WORDS = ("auto", "off")


def _check_fixed_grid(spec: ModelSpec, grid: tuple[int, int], tiling: Any) -> None:
    """A model with per-cell parameters runs only whole, on the grid it was trained on."""
    trained = None if spec.grid_shape is None else tuple(int(n) for n in spec.grid_shape)
    if trained is not None and tuple(grid) != trained:
        raise DataValidationError(
            f"the model {spec.model!r} has parameters per grid cell, tied to its training grid "
            f"{trained[0]}x{trained[1]}; the data grid is {grid[0]}x{grid[1]}. Forecast data "
            "on the training grid, or train on this grid"
        )
    if tiling not in (None, "auto", "off"):
        raise DataValidationError(
            f"the model {spec.model!r} has parameters per grid cell and cannot be tiled; "
            "leave tiling=None"
        )


def _tiling(
    spec: ModelSpec, grid: tuple[int, int], tiling: Any, overlap: float | int, batch: int
) -> Tiling:
    """How to apply the model to ``grid``: whole (padded to its multiple) or tiled.

    ``"auto"`` (or None) tiles at the trained grid a model that is neither fully convolutional
    nor a whole-grid model when the data grid differs from it; ``"off"`` never tiles;
    ``(th, tw)`` tiles at that size.
    """
    rule = _rule_of(spec)
    if rule.fixed_grid:
        _check_fixed_grid(spec, grid, tiling)
        return Tiling(None, overlap, rule.multiple, batch)
    if isinstance(tiling, str) and tiling.lower() in _TILING_WORDS:
        tiling = tiling.lower()
    elif tiling is not None and (isinstance(tiling, str) or not hasattr(tiling, "__len__")):
        raise StgeoTypeError(
            f"tiling must be 'auto', 'off', None or a tile size (H, W), got {tiling!r}"
        )
    if tiling is None or tiling == "auto":
        whole = Tiling(None, overlap, rule.multiple, batch)
        trained = spec.grid_shape
        if trained is None or rule.fully_convolutional or rule.whole_grid:
            return whole
        tile = whole.padded(tuple(trained))
        if tile == whole.padded(grid):
            return whole
        return Tiling(tile, overlap, rule.multiple, batch)
    if tiling == "off":
        return Tiling(None, overlap, rule.multiple, batch)
    return Tiling(tuple(tiling), overlap, rule.multiple, batch)


def _tiling_attrs(t: Tiling, grid: tuple[int, int]) -> dict[str, Any]:
    """Attributes of the forecast saying how the model was applied to the grid."""
    plan = t.plan(grid)
    if len(plan) == 1:
        return {"tiling": "whole grid"}
    return {"tiling": f"{len(plan)} tiles of {plan.tile[0]}x{plan.tile[1]}, blended overlaps"}

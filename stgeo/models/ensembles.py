"""Seed ensembles: one architecture trained with several seeds, forecasting their mean.

Networks trained on a few events differ from one seed to the next by more than the skill
differences users compare models on; the mean of a few seeds' forecasts is steadier and
usually better than its members (variance reduction). :func:`ensemble` combines trained
models that differ only in their weights into one :class:`~stgeo.models.TrainedModel`, saved,
loaded, packaged and forecast like any other (its :class:`~stgeo.models.ModelSpec` records
``members=N``; the weights of member ``i`` are stored under ``members.i.``). ``stgeo.train(...,
seeds=[0, 1, 2])`` trains the members and returns the ensemble.

The members' outputs are averaged in the model's normalised space: for the affine
normalisations (``"standard"``, ``"minmax"``) that is exactly the mean forecast; for
``"log1p"`` it is the mean in log space (a geometric-type mean, which keeps zeros sharper).

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=30, shape=(16, 16), seed=0)
>>> kw = dict(in_steps=2, out_steps=2, epochs=1, hidden=4, progress=False)
>>> members = [stgeo.train(ds, model="convlstm", seed=s, **kw) for s in (0, 1)]
>>> ens = stgeo.models.ensemble(members)
>>> ens.spec.members, [m.spec.extra["training"]["seed"] for m in ens.members]
(2, [0, 1])
>>> fc = stgeo.forecast(ds.rain_rate, ens, init_times=ds.time.values[[5]], progress=False)
>>> fc.sizes["lead_time"]
2
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import DataValidationError, StgeoTypeError

__all__ = ["MeanEnsemble", "ensemble"]

#: spec fields that must agree between members: what the model is and what data it reads
_SAME = (
    "model",
    "in_steps",
    "out_steps",
    "variables",
    "channels",
    "time_step",
    "grid_shape",
    "spatial_dims",
    "hyperparameters",
    "normalization",
    "units",
    "input_offsets",
    "target_offsets",
    "features",
)


class MeanEnsemble(nn.Module):
    """The mean of the outputs of ``members`` (modules with the same inputs and outputs).

    Every argument of :meth:`forward` (frames, and the calendar features of models that take
    them) goes to every member; the mean is accumulated and returned in float32 (or the
    members' wider type).

    Examples
    --------
    >>> import torch, stgeo
    >>> a = stgeo.create_model("convlstm", in_steps=2, out_steps=1, hidden=4)
    >>> b = stgeo.create_model("convlstm", in_steps=2, out_steps=1, hidden=4)
    >>> x = torch.rand(1, 2, 1, 8, 8)
    >>> bool(torch.allclose(MeanEnsemble([a, b])(x), (a(x) + b(x)) / 2))
    True
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise DataValidationError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        first = self.members[0](*args, **kwargs)
        # accumulate in at least float32: under bf16 autocast the members' outputs are bf16,
        # and a bf16 sum would round the mean to about 3 significant digits
        out = first.to(torch.promote_types(first.dtype, torch.float32))
        for m in self.members[1:]:
            out = out + m(*args, **kwargs)
        return out / len(self.members)


def ensemble(members: Sequence[Any]) -> Any:
    """One model forecasting the mean of ``members``, trained models that differ only in
    their weights (e.g. the same ``stgeo.train`` call with different seeds).

    Parameters
    ----------
    members : sequence of TrainedModel
        At least two single (not ensemble) models with the same architecture,
        hyperparameters, sizes, variables, time step, grid and normalisation, and no
        calibration (calibrate the ensemble as a whole, not its members).

    Returns
    -------
    TrainedModel
        Its spec is the members' with ``members=N``; ``spec.extra["members"]`` keeps each
        member's seed, training metrics and history, and :attr:`TrainedModel.members` gives
        the members back (e.g. to score each seed).

    Raises
    ------
    DataValidationError
        Fewer than two members, an ensemble or calibrated model among them, or members that
        differ in what they are or read (the message names the field).

    Examples
    --------
    See the module docstring (:mod:`stgeo.models.ensembles`).
    """
    from .artifact import TrainedModel

    members = list(members)
    _check_members(members)
    first = members[0].spec
    keep = ("metrics", "history")
    extra = {k: v for k, v in first.extra.items() if k not in keep}
    per_member = []
    for m in members:
        training = m.spec.extra.get("training", {})
        per_member.append(
            {
                "seed": training.get("seed") if isinstance(training, dict) else None,
                "metrics": m.spec.extra.get("metrics", {}),
                "history": list(m.history),
            }
        )
    extra["members"] = per_member
    if isinstance(extra.get("training"), dict):
        training = {k: v for k, v in extra["training"].items() if k != "seed"}
        extra["training"] = {**training, "seeds": [p["seed"] for p in per_member]}
    extra["metrics"] = {"members": [p["metrics"] for p in per_member]}
    spec = copy.deepcopy(first)
    spec.members = len(members)
    spec.extra = extra
    module = MeanEnsemble([copy.deepcopy(m.module) for m in members])
    return TrainedModel(module, spec, history=[])


def _check_members(members: list[Any]) -> None:
    """Raise unless ``members`` are two or more single, uncalibrated, alike trained models."""
    from .artifact import TrainedModel

    for i, m in enumerate(members):
        if not isinstance(m, TrainedModel):
            raise StgeoTypeError(
                f"ensemble members must be stgeo TrainedModels (stgeo.train / stgeo.load_model),"
                f" member {i} is {type(m).__name__}"
            )
        if m.spec.members:
            raise DataValidationError(
                f"member {i} is itself an ensemble of {m.spec.members}; pass its members "
                "(TrainedModel.members) instead"
            )
        if m.spec.calibration is not None:
            raise DataValidationError(
                f"member {i} is calibrated; an ensemble averages raw outputs: train the "
                "members without calibration"
            )
    if len(members) < 2:
        raise DataValidationError(f"an ensemble needs at least 2 members, got {len(members)}")
    first = members[0].spec
    for i, m in enumerate(members[1:], start=1):
        for name in _SAME:
            if getattr(m.spec, name) != getattr(first, name):
                raise DataValidationError(
                    f"ensemble members differ in {name}: member 0 has {getattr(first, name)!r},"
                    f" member {i} {getattr(m.spec, name)!r}; members must be the same model "
                    "trained on the same data (e.g. only the seed differs)"
                )

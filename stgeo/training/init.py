"""Fine-tuning: ``stgeo.train(data, init=...)`` starts from a trained model's weights.

A model trained on one archive (or on synthetic storms) can start the training on another
instead of random weights: ``init`` takes a :class:`~stgeo.models.TrainedModel`, a saved
model folder or a pretrained model's name (``stgeo.pretrained.list()``), and the run trains
**that network** further on the new data. Everything the weights depend on comes from the
initial model and may not be changed: the architecture and its hyperparameters, the input
and output windows, the variables (channels) and the **normalisation with its fitted
statistics** (the weights expect inputs scaled as in their first training; re-fitting the
statistics on the new data would shift every input). Given explicitly, they must agree
with the initial model; left out, they are taken from it. Everything about the run itself
(epochs, learning rate, loss, crops, splits, seeds, callbacks, calibration) is the caller's.

The trained model records where it started (``spec.extra["training"]["init"]``: the source
and the sha256 of the initial weights), and a checkpointed run resumes only from the same
start (the same weights, whether given as a model, a folder or a pretrained name).

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0)
>>> kw = dict(epochs=1, batch_size=4, max_steps_per_epoch=2, progress=False)
>>> base = stgeo.train(ds, model="simvp", in_steps=2, out_steps=2, hid_S=8, hid_T=16,
...                    N_S=2, N_T=2, **kw)
>>> other = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=1)
>>> tuned = stgeo.train(other, init=base, lr=1e-4, **kw)
>>> tuned.spec.hyperparameters == base.spec.hyperparameters, tuned.in_steps
(True, 2)
>>> tuned.spec.extra["training"]["init"]["source"]
'a TrainedModel (simvp)'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._registry import MODELS
from ..data.normalize import Normalizer
from ..errors import DataValidationError, StgeoTypeError
from ..models.artifact import TrainedModel, load_model, load_strict, shape_mismatches

__all__ = ["Init", "resolve_init"]


@dataclass(frozen=True)
class Init:
    """The initial model of a fine-tuning run and where it came from."""

    model: TrainedModel
    source: str

    @property
    def architecture(self) -> str:
        return MODELS.entry(self.model.spec.model).name

    def record(self) -> dict[str, str]:
        """What the trained model's spec records: the source and the initial weights' hash."""
        from ..pretrained.package import tensors_digest

        digest = tensors_digest(self.model.module.state_dict())
        return {"source": self.source, "weights_sha256": digest}

    def normalizer(self) -> Normalizer:
        """The initial model's normaliser, with the statistics its weights were trained on."""
        return Normalizer.from_dict(self.model.spec.normalization)

    def arguments(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        """``train``'s ``(model, in_steps, out_steps, input_offsets, normalization,
        variable, time_features)``, taken from the initial model where ``given`` (train's
        arguments) leaves them out; any given one that differs from it (or a given
        hyperparameter, ``given["model_kwargs"]``) is an error that says what to drop."""
        spec = self.model.spec
        offsets = list(spec.input_offsets) if spec.input_offsets else None
        method = str(spec.normalization.get("method", "standard"))
        problems = self._problems(given, offsets, method)
        if problems:
            raise DataValidationError(
                f"init: the initial model ({self.source}) fixes its architecture, windows and "
                f"normalisation, and these arguments change them: {'; '.join(problems)}. Drop "
                "them (they are taken from the initial model) or train from scratch without init"
            )
        if spec.features and spec.features.get("variables"):
            raise DataValidationError(
                f"init: the initial model ({self.source}) takes external variables, whose "
                "standardisation would be re-fitted on the new data; fine-tuning such a model "
                "is not supported: train it from scratch on the new data"
            )
        variable = given.get("variable")
        features = spec.features.get("time") if spec.features else None
        return (
            self.architecture,
            None if offsets else spec.in_steps,
            spec.out_steps,
            offsets,
            method,
            list(spec.variables) if variable is None else variable,
            given.get("time_features") or features,
        )

    def _problems(self, given: Mapping[str, Any], offsets: Any, method: str) -> list[str]:
        spec = self.model.spec
        model = given.get("model")
        out = []
        if model is not None and MODELS.entry(model).name != self.architecture:
            out.append(f"model={model!r} (it is a {self.architecture!r})")
        fixed = {"in_steps": spec.in_steps, "out_steps": spec.out_steps, "normalization": method}
        out += [
            f"{k}={given[k]!r} (it has {v!r})"
            for k, v in fixed.items()
            if given.get(k) is not None and given[k] != v
        ]
        mine = offsets or list(range(1 - spec.in_steps, 1))
        if given.get("input_offsets") is not None and list(given["input_offsets"]) != mine:
            out.append(f"input_offsets={list(given['input_offsets'])} (it has {mine})")
        hp = dict(spec.hyperparameters)
        for key, value in (given.get("model_kwargs") or {}).items():
            if key not in hp:
                out.append(f"{key}={value!r} (it was built without it)")
            elif hp[key] != value:
                out.append(f"{key}={value!r} (it has {hp[key]!r})")
        return out

    def check_channels(self, channels: Sequence[str]) -> None:
        """The data's channels must be the initial model's, in its order."""
        want = list(self.model.spec.channels)
        if list(channels) != want:
            raise DataValidationError(
                f"init: the initial model ({self.source}) takes the channels {want}, the data "
                f"give {list(channels)}. Rename the variables to the model's names (e.g. "
                f"ds.rename({{'my_var': '{self.model.spec.variables[0]}'}})) or select them with "
                "variable=..."
            )

    def missing_variables(self, err: Exception) -> DataValidationError:
        """The error for data that lack the initial model's variables."""
        want = list(self.model.spec.variables)
        return DataValidationError(
            f"init: the initial model ({self.source}) takes the variables {want}; the data "
            f"do not have them ({err}). Rename yours to the model's names (e.g. "
            f"ds.rename({{'my_var': '{want[0]}'}})) or pass variable=[...] with as many "
            "variables, in the model's order"
        )

    def load_into(self, module: Any) -> None:
        """Copy the initial weights into the freshly built ``module``."""
        tensors = self.model.module.state_dict()
        shapes = [
            f"{k}: {got} vs {want}"
            for k, got, want in shape_mismatches(module.state_dict(), tensors)
        ]
        if shapes:
            grid = self.model.spec.grid_shape
            hint = (
                f" The initial model has per-cell parameters of its {tuple(grid)} training "
                "grid: fine-tune it on data of that grid shape."
                if grid is not None
                else ""
            )
            raise DataValidationError(
                f"init: the weights of {self.source} do not fit the network these data need "
                f"(initial vs needed shapes: {'; '.join(shapes[:3])}"
                f"{f'; ... {len(shapes)} in all' if len(shapes) > 3 else ''}).{hint}"
            )
        load_strict(module, tensors, source=self.source)


def resolve_init(init: Any) -> Init:
    """The initial model of ``train(..., init=...)``: a TrainedModel, a saved model folder, or a
    pretrained model's name.

    Examples
    --------
    >>> resolve_init("radar-nowcaster").architecture
    'lagrangian'
    """
    from .. import pretrained
    from ..pretrained.registry import is_pretrained

    if isinstance(init, TrainedModel):
        tm, source = init, f"a TrainedModel ({MODELS.entry(init.spec.model).name})"
    elif isinstance(init, (str, os.PathLike)):
        if isinstance(init, str) and is_pretrained(init):
            tm, source = pretrained.get(init), f"pretrained {init!r}"
        elif Path(init).exists():
            tm, source = load_model(init), f"the model saved in {os.fspath(init)}"
        else:
            raise DataValidationError(
                f"init={os.fspath(init)!r} is neither a pretrained model "
                f"({', '.join(pretrained.list())}) nor a saved model folder; give one of "
                "those, or a TrainedModel"
            )
    else:
        raise StgeoTypeError(
            "init must be a TrainedModel, a saved model folder or a pretrained model's name, "
            f"got {type(init).__name__}"
        )
    if tm.spec.members:
        raise DataValidationError(
            f"init: {source} is a seed ensemble of {tm.spec.members} networks; fine-tune one "
            "of them (init=model.members[0]) or each with seeds=[...]"
        )
    return Init(tm, source)

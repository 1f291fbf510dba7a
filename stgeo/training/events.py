"""The data of a multi-event or patch run: many events, per-event splits, crops, one normaliser.

Used by :func:`stgeo.train` when ``data`` is a list of sources or a catalog collection, or
when ``patch_size`` is given (one dataset on one grid without patches keeps the
chunk-aware whole-frame path of :mod:`.data`).

Rules (also in the training guide):

* **Windows never cross an event**; each event has its own :class:`~stgeo.data.Windows`.
* **Splits per event**: ``splits=`` given applies to every event (fractions of each event's
  own time axis, e.g. the last 20 % of each event for validation; time ranges on each
  event's time axis, an event without a time in a range has no windows there); without
  ``splits=`` each event uses its catalog splits when it has them, else the last 10 % of its
  time for validation.
* **Normalisation** statistics stream over the training part of every event, a few frames
  at a time, merged exactly (:meth:`stgeo.data.Normalizer.partial_fit`).
* **Time steps** (:func:`resolve_time_steps`): ``time_step=None`` requires one step up to
  ``step_tolerance``; a duration uses every event whose step divides it (window offsets
  scaled, no resampling); ``"per-event"`` uses each event at its own step.
* **Gaps** inside an event are refused as :func:`stgeo.validate` refuses them, unless
  ``allow_gaps=True`` (then no window crosses one).
* **Partial windows** (``min_out_steps``): a training window needs only its first
  ``min_out_steps`` targets in the event's training range; the others read as NaN and are
  masked out of the loss. Validation windows stay complete.

Examples
--------
>>> import stgeo
>>> from stgeo.training import TrainConfig
>>> from stgeo.training.events import prepare_events
>>> a = stgeo.testing.storm_cells(n_times=30, shape=(24, 32), seed=0)
>>> b = stgeo.testing.storm_cells(n_times=20, shape=(20, 20), seed=1)
>>> cfg = TrainConfig(model="simvp", in_steps=2, out_steps=1, patch_size=(16, 16))
>>> td, cfg = prepare_events([a, b], cfg)
>>> td.describe()["events"]["event-1"]["train_windows"], td.grid
(16, (16, 16))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._registry import MODELS
from ..conventions import freq_string, spatial_dims, time_step, validate
from ..data import (
    EventLoader,
    EventSource,
    EventWindows,
    Importance,
    Normalizer,
    Windows,
    crops_per_window,
    stream_statistics,
    to_frames,
    variables_of,
)
from ..errors import DataValidationError
from ..models import PER_EVENT_STEP, check_grid, grid_rule
from .config import TrainConfig
from .data import data_fingerprint, describe_data, split_ranges

__all__ = [
    "MultiEventData",
    "check_patch_for_model",
    "prepare_events",
    "resolve_time_steps",
]


def resolve_time_steps(
    names: Sequence[str],
    steps: Sequence[pd.Timedelta],
    policy: str | None,
    tolerance: float = 0.25,
    min_event_step: str | None = None,
) -> tuple[pd.Timedelta, list[int]]:
    """The run's time step and, per event, how many data steps make one model step.

    Parameters
    ----------
    names, steps : sequences
        Each event's name and time step.
    policy : None, "per-event" or a duration
        ``None``: every step within ``tolerance`` (relative) of the others; the run's step
        is the most common one (ties: the smallest). ``"per-event"``: every event at its
        own step (one model step = one data step, an approximation when steps differ);
        the run's step as for None. A duration such as ``"10min"``: every step must divide
        it, and window offsets are scaled by the quotient (no resampling).
    tolerance : float
        Relative tolerance of ``policy=None`` (0.25: 5 and 6 min mix, 5 and 10 do not).
    min_event_step : str, optional
        With ``"per-event"``: an event whose step is shorter uses every ``k``-th frame,
        ``k`` the smallest integer with ``k * step >= min_event_step`` (2-min data with
        ``"5min"``: 6-min steps), so that one model step is not a fraction of the others.

    Returns
    -------
    (pandas.Timedelta, list of int)
        The run's step and the offset factor of every event.

    Raises
    ------
    DataValidationError
        The steps do not fit the policy; the message lists every event's step and the fixes.

    Examples
    --------
    >>> td = pd.Timedelta
    >>> resolve_time_steps(["a", "b"], [td("5min"), td("6min")], None)
    (Timedelta('0 days 00:05:00'), [1, 1])
    >>> resolve_time_steps(["a", "b"], [td("2min"), td("5min")], "10min")
    (Timedelta('0 days 00:10:00'), [5, 2])
    >>> resolve_time_steps(["a", "b", "c"], [td("2min"), td("5min"), td("10min")],
    ...                    "per-event", min_event_step="5min")
    (Timedelta('0 days 00:05:00'), [3, 1, 1])
    """
    steps = [pd.Timedelta(s) for s in steps]
    if min_event_step is not None and policy != "per-event":
        raise DataValidationError(
            f"min_event_step={min_event_step!r} subsamples fine events of a run that uses "
            f"every event at its own step, but the run's time_step policy is {policy!r}: "
            "pass time_step='per-event' (or drop min_event_step)"
        )
    if policy == "per-event":
        least = pd.Timedelta(min_event_step or 0)
        factors = [max(1, math.ceil(least / s - 1e-9)) for s in steps]
        counts = Counter(s * f for s, f in zip(steps, factors, strict=True))
        return min(counts, key=lambda s: (-counts[s], s)), factors
    counts = Counter(steps)
    common = min(counts, key=lambda s: (-counts[s], s))
    if policy is None:
        if max(steps) / min(steps) - 1 <= tolerance + 1e-12:
            return common, [1] * len(steps)
        problem = f"differ by more than step_tolerance={tolerance:g}"
    else:
        run = pd.Timedelta(policy)
        ratios = [run / s for s in steps]
        bad = [n for n, r in zip(names, ratios, strict=True) if r < 1 or abs(r - round(r)) > 1e-9]
        if not bad:
            return run, [round(r) for r in ratios]
        problem = f"do not all divide time_step={policy!r} (not: {', '.join(bad)})"
    listed = ", ".join(f"{n}: {freq_string(s)}" for n, s in zip(names, steps, strict=True))
    raise DataValidationError(
        f"the events' time steps {problem}: {listed}. Fixes: (1) time_step='<duration>' "
        "that every step divides (e.g. '10min' for 5- and 10-min events: offsets are scaled, "
        "nothing is resampled); (2) time_step='per-event' to use every event at its own step "
        "(one model step = one data step); (3) train on events of one step, or raise "
        "step_tolerance."
    )


def check_patch_for_model(model: str, patch_size: tuple[int, int] | None, **hp: Any) -> None:
    """The one place where a model's own grid constraint is checked against ``patch_size``.

    The rule is the model's registered :class:`stgeo.models.GridRule` (its ``multiple``,
    with the run's hyperparameters applied); see :func:`stgeo.models.check_grid`.

    Examples
    --------
    >>> check_patch_for_model("simvp", (128, 128)) is None
    True
    >>> check_patch_for_model("predformer", (66, 64))
    Traceback (most recent call last):
    ...
    stgeo.errors.DataValidationError: ... patch_size 66x64 is not: use 64x64 or 68x64
    """
    if patch_size is None or model not in MODELS:
        return
    if grid_rule(model, **hp).fixed_grid:
        raise DataValidationError(
            f"{model!r} has parameters per grid cell (tied to one grid): it cannot train on "
            "crops; drop patch_size and train on whole frames of one grid"
        )
    check_grid(model, tuple(patch_size), what="patch_size", **hp)


@dataclass(frozen=True)
class _Event:
    name: str
    frames: xr.DataArray
    step: pd.Timedelta
    factor: int
    train: Windows | None
    val: Windows | None
    ranges: dict[str, list[str]]
    catalog: str | None


@dataclass(frozen=True)
class MultiEventData:
    """The events, windows and normaliser of a multi-event or patch run (see module doc)."""

    events: list[_Event]
    channels: list[str]
    variables: list[str]
    units: dict[str, str]
    train: EventWindows
    val: EventWindows | None
    normalizer: Normalizer
    run_step: pd.Timedelta
    patch_size: tuple[int, int] | None
    importance: Importance | None
    wet_maps: list[tuple[int, np.ndarray]] | None
    base_offsets: tuple[list[int], list[int]]
    catalog: str | None = None
    mixed_steps: bool = False

    @property
    def spatial_dims(self) -> tuple[str, str]:
        return tuple(spatial_dims(self.events[0].frames))  # type: ignore[return-value]

    @property
    def grid(self) -> tuple[int, int]:
        if self.patch_size is not None:
            return self.patch_size
        return tuple(int(s) for s in self.events[0].frames.shape[2:])  # type: ignore[return-value]

    @property
    def time_step(self) -> str:
        """The run's step; ``"per-event"`` when events of different steps each used their own."""
        return PER_EVENT_STEP if self.mixed_steps else freq_string(self.run_step)

    @property
    def input_offsets(self) -> list[int]:
        return list(self.base_offsets[0])

    @property
    def target_offsets(self) -> list[int]:
        return list(self.base_offsets[1])

    @property
    def fingerprint(self) -> str:
        parts = [
            [e.name, data_fingerprint(e.frames, {"catalog": e.catalog} if e.catalog else None)]
            for e in self.events
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def event_summary(self) -> dict[str, Any]:
        """Per event: windows contributed, time step, offset factor, grid, split ranges."""
        tr = self.train.counts()
        va = self.val.counts() if self.val is not None else {}
        reps = dict(zip(self.train.names, self.train.repeats, strict=True))
        return {
            e.name: {
                "train_windows": int(tr.get(e.name, 0)) // reps.get(e.name, 1),
                **({"crops_per_window": reps[e.name]} if reps.get(e.name, 1) > 1 else {}),
                "val_windows": int(va.get(e.name, 0)),
                "time_step": freq_string(e.step),
                "offset_factor": e.factor,
                "grid": [int(s) for s in e.frames.shape[2:]],
                "spatial_dims": list(spatial_dims(e.frames)),
                "splits": e.ranges,
            }
            for e in self.events
        }

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records of the data (resume refuses other data)."""
        return {**describe_data(self), "events": self.event_summary()}

    def shard(self, rank: int, world: int) -> MultiEventData:
        """This rank's share of the windows: every ``world``-th, all ranks the same count."""

        def cut(w: EventWindows | None) -> EventWindows | None:
            if w is None:
                return None
            n = len(w) // world
            if n == 0:
                raise DataValidationError(
                    f"only {len(w)} windows for {world} ranks; use fewer processes or more data"
                )
            return w.subset(np.arange(len(w))[rank::world][:n])

        return dataclasses.replace(self, train=cut(self.train), val=cut(self.val))

    def loaders(self, cfg: TrainConfig) -> tuple[EventLoader, EventLoader | None]:
        """The shuffled, cropped training loader and the fixed-crop validation loader."""
        common = {
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "normalizer": self.normalizer,
            "patch_size": self.patch_size,
        }
        train = EventLoader(
            self.train,
            shuffle=True,
            drop_last=len(self.train) >= 2 * cfg.batch_size,
            importance=self.importance,
            wet_maps=self.wet_maps,
            **common,
        )
        # validation crops do not depend on the training seed (always those of seed 0), so
        # runs that differ only in their seed are scored, and selected, on the same crops
        val_kw = {**common, "seed": 0}
        val = None if self.val is None else EventLoader(self.val, shuffle=False, **val_kw)
        return train, val


def _base_offsets(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.input_offsets is not None:
        inp = np.asarray(cfg.input_offsets, dtype=np.int64)
    else:
        inp = np.arange(-int(cfg.in_steps) + 1, 1, dtype=np.int64)
    return inp, np.arange(1, int(cfg.out_steps) + 1, dtype=np.int64)


def _frames_of(src: EventSource, cfg: TrainConfig) -> xr.DataArray:
    """The event's frames, after the gap rule shared with :func:`stgeo.validate`."""
    try:
        validate(src.dataset, strict=False, allow_gaps=cfg.allow_gaps, check_values=False)
    except DataValidationError as err:
        raise DataValidationError(f"event {src.name!r}: {err}") from None
    return to_frames(src.dataset, cfg.variable)


def _windows(
    name: str,
    frames: xr.DataArray,
    rng: tuple,
    factor: int,
    base: tuple,
    is_val: bool,
    min_targets: int | None = None,
) -> Windows | None:
    inp, tgt = base
    try:
        return Windows(
            frames,
            input_offsets=(inp * factor).tolist(),
            target_offsets=(tgt * factor).tolist(),
            time_range=rng,
            inputs_in_range=not is_val,
            min_targets=None if is_val else min_targets,
        )
    except DataValidationError as err:
        if is_val:
            return None  # an event too short for a validation window: trains, not validates
        hint = (
            ""
            if min_targets
            else "; or min_out_steps=K to train on windows that need only their first K "
            "targets (the others are left out of the loss)"
        )
        raise DataValidationError(f"event {name!r} has no training window: {err}{hint}") from None


def _build_event(src: EventSource, cfg: TrainConfig, step, factor, base) -> _Event:
    frames = _frames_of(src, cfg)
    try:
        ranges, _ = split_ranges(src.dataset, cfg.splits)
    except DataValidationError as err:
        raise DataValidationError(f"event {src.name!r}: {err}") from None
    train = _windows(src.name, frames, ranges["train"], factor, base, False, cfg.min_out_steps)
    val = None
    if "val" in ranges:
        val = _windows(src.name, frames, ranges["val"], factor, base, True)
    return _Event(
        name=src.name,
        frames=frames,
        step=step,
        factor=factor,
        train=train,
        val=val,
        ranges={k: [str(a), str(b)] for k, (a, b) in ranges.items()},
        catalog=src.dataset.attrs.get("stgeo_catalog"),
    )


def _check_channels(sources: list[EventSource], frames: list[xr.DataArray]) -> list[str]:
    chans = [[str(c) for c in f["channel"].values] for f in frames]
    for s, c in zip(sources[1:], chans[1:], strict=True):
        if c != chans[0]:
            raise DataValidationError(
                f"event {s.name!r} has channels {c}, event {sources[0].name!r} has {chans[0]}; "
                "every event needs the same variables (select them with variable=...)"
            )
    return chans[0]


def _statistics(
    events: list[_Event], cfg: TrainConfig, imp: Importance | None, fixed: Normalizer | None
):
    """Stream the training part of every event once: normaliser (unless ``fixed``) and
    wet-fraction maps; nothing is read when neither is needed."""
    norm = Normalizer(cfg.normalization) if fixed is None else fixed
    maps = []
    for e in events:
        lo, hi = e.train.frame_range()
        maps.append(
            stream_statistics(e.frames, lo, hi + 1, None if fixed is not None else norm, imp)
        )
    if norm.method == "none" and fixed is None:
        norm.channels = [str(c) for c in events[0].frames["channel"].values]
    return norm, (maps if imp is not None else None)


def _repeats(events: list[_Event], cfg: TrainConfig) -> list[int]:
    if cfg.patch_size is None:
        return [1] * len(events)
    grids = [tuple(int(v) for v in e.frames.shape[2:]) for e in events]
    return crops_per_window(grids, cfg.patch_size, cfg.crops_per_window)


def _thresholds(cfg: TrainConfig, events: list[EventSource]) -> tuple[float, ...]:
    if cfg.thresholds is not None:
        return tuple(cfg.thresholds)
    from ..data import get_entry

    for src in events:
        name = src.dataset.attrs.get("stgeo_catalog")
        if name:
            try:
                return tuple(float(t) for t in get_entry(str(name)).thresholds)
            except (KeyError, ValueError):
                continue
    return ()


def _model_window(cfg: TrainConfig, run_step: pd.Timedelta) -> TrainConfig:
    """The model's declared window at the run's step; time-feature models are refused."""
    from ..models import default_input_offsets, wants_time_features

    if wants_time_features(cfg.model):
        raise DataValidationError(
            f"{cfg.model!r} takes calendar features of the predicted times, which the "
            "multi-event and patch path does not deliver yet: train it on one dataset on one "
            "grid (no list of events, no collection, no patch_size, no time_step)"
        )
    if cfg.in_steps is None and cfg.input_offsets is None:
        offsets = default_input_offsets(cfg.model, run_step, **dict(cfg.hyperparameters))
        cfg = cfg.resolved(input_offsets=tuple(offsets or ()))
    return cfg


def prepare_events(
    sources: Sequence[EventSource] | Sequence[Any],
    cfg: TrainConfig,
    policy: str | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[MultiEventData, TrainConfig]:
    """Events -> frames, per-event splits and windows, streamed normaliser, wet maps.

    ``sources`` are :class:`~stgeo.data.EventSource` (or anything
    :func:`stgeo.data.open_events` takes as a list); ``policy`` is the collection's
    time-step policy, used when ``cfg.time_step`` is None. A fitted ``normalizer`` (the
    initial model's when fine-tuning) is used as is instead of one fitted on the events.
    """
    check_patch_for_model(cfg.model, cfg.patch_size, **dict(cfg.hyperparameters))
    if not all(isinstance(s, EventSource) for s in sources):
        from ..data import open_events

        sources, policy = open_events(list(sources))
    sources = list(sources)
    steps = [time_step(s.dataset) for s in sources]
    names = [s.name for s in sources]
    run_step, factors = resolve_time_steps(
        names, steps, cfg.time_step or policy, cfg.step_tolerance, cfg.min_event_step
    )
    cfg = _model_window(cfg, run_step)
    base = _base_offsets(cfg)
    events = [
        _build_event(s, cfg, st, f, base) for s, st, f in zip(sources, steps, factors, strict=True)
    ]
    channels = _check_channels(sources, [e.frames for e in events])
    thresholds = _thresholds(cfg, sources)
    imp = Importance.coerce(cfg.importance, thresholds)
    cfg = cfg.resolved(
        thresholds=thresholds,
        importance=imp,
        splits={e.name: e.ranges for e in events} if len(events) > 1 else events[0].ranges,
        split_source="per event" if cfg.splits is None else "argument (per event)",
    )
    norm, maps = _statistics(events, cfg, imp, normalizer)
    variables = variables_of(channels)
    ds0 = sources[0].dataset
    vals = [e for e in events if e.val is not None]
    td = MultiEventData(
        events=events,
        channels=channels,
        variables=variables,
        units={v: str(ds0[v].attrs["units"]) for v in variables if "units" in ds0[v].attrs},
        train=EventWindows(
            [e.train for e in events],
            names,
            repeats=_repeats(events, cfg),
        ),
        val=EventWindows([e.val for e in vals], [e.name for e in vals]) if vals else None,
        normalizer=norm,
        run_step=run_step,
        patch_size=cfg.patch_size,
        importance=imp,
        wet_maps=maps,
        base_offsets=(base[0].tolist(), base[1].tolist()),
        catalog=None if len(events) > 1 else events[0].catalog,
        mixed_steps=(cfg.time_step or policy) == PER_EVENT_STEP
        and len({s * f for s, f in zip(steps, factors, strict=True)}) > 1,
    )
    return td, cfg


def is_multi_event(data: Any, cfg: TrainConfig) -> bool:
    """Whether ``data`` and ``cfg`` call for this path: a list of sources, a collection, a
    ``patch_size``, an explicit ``time_step``, partial windows (``min_out_steps``) or
    ``min_event_step``."""
    from ..data.collections import is_collection

    if cfg.patch_size is not None or cfg.time_step is not None or cfg.min_out_steps:
        return True
    if cfg.min_event_step is not None:  # (resolve_time_steps says it needs "per-event")
        return True
    return isinstance(data, (list, tuple)) or is_collection(data)


def summary_for_spec(td: Any) -> Mapping[str, Any] | None:
    """Events and their windows for ``spec.extra`` (None for the single-dataset path)."""
    return td.event_summary() if isinstance(td, MultiEventData) else None

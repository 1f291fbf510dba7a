"""The data of a training run: frames, splits, windows, the normaliser, loaders and shards.

Everything here goes through :mod:`stgeo.data`: the frames adapter, :func:`split_by_time`,
:class:`Windows` (validation windows may take inputs from before the validation range; their
targets lie in it), a :class:`Normalizer` fitted on the training split only and the
chunk-aware :class:`BatchLoader`.

Examples
--------
>>> import stgeo
>>> from stgeo.training import TrainConfig
>>> from stgeo.training.data import prepare_data
>>> ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0)
>>> cfg = TrainConfig(model="simvp", in_steps=2, out_steps=1)
>>> td, cfg = prepare_data(ds, cfg)
>>> len(td.train) > len(td.val), cfg.split_source
(True, 'default (last 10% of time for validation)')
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..conventions import freq_string, spatial_dims, time_step, validate
from ..data import (
    BatchLoader,
    ExternalVariables,
    Normalizer,
    TimeFeatures,
    Windows,
    get_entry,
    open_data,
    split_by_time,
    to_frames,
    variables_of,
)
from ..errors import DataValidationError, StgeoTypeError
from ..models.base import default_input_offsets, wants_time_features
from .config import TrainConfig

__all__ = [
    "FeatureLoader",
    "TrainingData",
    "data_fingerprint",
    "describe_data",
    "model_window",
    "prepare_data",
    "split_ranges",
    "window_features",
]

Ranges = dict[str, tuple[pd.Timestamp, pd.Timestamp]]


def data_fingerprint(frames: xr.DataArray, extra: Mapping[str, Any] | None = None) -> str:
    """A short hash of the data's metadata (channels, grid, coordinates, time axis).

    It identifies the training data without reading the values (cheap on any size).

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import to_frames
    >>> frames = to_frames(stgeo.testing.storm_cells(n_times=8, shape=(8, 8), seed=0))
    >>> len(data_fingerprint(frames)), data_fingerprint(frames) == data_fingerprint(frames)
    (16, True)
    """
    sd = spatial_dims(frames)
    t = frames["time"].values

    def ends(name: str) -> list[Any]:
        if name not in frames.coords or frames[name].size == 0:
            return []
        v = np.asarray(frames[name].values).ravel()
        return [str(v[0]), str(v[-1])]

    doc = {
        "channels": [str(c) for c in frames["channel"].values],
        "shape": [int(s) for s in frames.shape],
        "dims": [str(d) for d in frames.dims],
        "time": [str(t[0]), str(t[-1]), int(t.size)] if t.size else [],
        sd[0]: ends(sd[0]),
        sd[1]: ends(sd[1]),
        "lat": ends("lat"),
        "lon": ends("lon"),
        **(dict(extra) if extra else {}),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _catalog_entry(ds: xr.Dataset) -> Any | None:
    name = ds.attrs.get("stgeo_catalog")
    if not name:
        return None
    with contextlib.suppress(KeyError, ValueError):
        return get_entry(str(name))
    return None


def _default_splits(ds: xr.Dataset) -> tuple[Mapping[str, Any], str]:
    entry = _catalog_entry(ds)
    if entry is not None and "train" in entry.splits:
        return {k: tuple(v) for k, v in entry.splits.items()}, f"catalog {entry.name!r}"
    return {"train": 0.9, "val": 0.1}, "default (last 10% of time for validation)"


def describe_data(td: Any) -> dict[str, Any]:
    """What a checkpoint records of a run's data (offsets, channels, grid, step, scaling,
    fingerprint); ``td`` is a :class:`TrainingData` or a multi-event run's data."""
    return {
        "input_offsets": td.input_offsets,
        "target_offsets": td.target_offsets,
        "channels": td.channels,
        "grid": list(td.grid),
        "time_step": td.time_step,
        "normalization": td.normalizer.to_dict(),
        "data_fingerprint": td.fingerprint,
    }


def split_ranges(ds: xr.Dataset, splits: Mapping[str, Any] | None) -> tuple[Ranges, str]:
    """Resolve ``splits`` into inclusive (start, end) time ranges; return them and the source.

    ``None`` takes the catalog's splits when the data came from a catalog, else the last 10%
    of time for validation.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=10, shape=(4, 4), seed=0)
    >>> ranges, source = split_ranges(ds, {"train": 0.8, "val": 0.2})
    >>> sorted(ranges), source
    (['train', 'val'], 'argument')
    """
    source = "argument"
    if splits is None:
        splits, source = _default_splits(ds)
    if not isinstance(splits, Mapping):
        raise StgeoTypeError(
            "splits must be a mapping such as {'train': ('2021-01-01', '2021-06-30'), "
            "'val': ('2021-07-01', '2021-07-31')} or {'train': 0.8, 'val': 0.2}"
        )
    bad = set(splits) - {"train", "val", "test"}
    if bad:
        raise DataValidationError(f"unknown split names {sorted(bad)}; use train, val, test")
    if "train" not in splits:
        raise DataValidationError("splits needs a 'train' entry")
    parts = split_by_time(
        ds, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in splits.items()}
    )
    out = {}
    for k, sub in parts.items():
        if sub.sizes.get("time", 0) == 0:
            raise DataValidationError(
                f"the {k!r} split {splits[k]!r} contains no time step of the data"
            )
        t = pd.DatetimeIndex(sub["time"].values)
        out[k] = (t[0], t[-1])
    return out, source


def model_window(cfg: TrainConfig, frames: xr.DataArray, catalog: Any = None) -> TrainConfig:
    """``cfg`` with the model's declared input window and time-feature settings filled in.

    Without ``in_steps`` and ``input_offsets`` a model that declares its window (e.g.
    ``stresnet``: closeness, period = 1 day, trend = 1 week) gets the offsets it declares for
    the data's time step (:func:`stgeo.models.default_input_offsets`). A model that takes
    calendar features gets ``cfg.time_features`` checked, defaulting to the catalog entry's
    ``time_features`` (e.g. BikeNYC: US holidays of New York), else no holiday column.

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import to_frames
    >>> ds = stgeo.testing.storm_cells(n_times=8, shape=(8, 8), seed=0)
    >>> cfg = model_window(TrainConfig(model="stresnet", out_steps=1), to_frames(ds))
    >>> cfg.input_offsets, cfg.time_features["holidays"]
    ((-2015, -287, -2, -1, 0), None)
    """
    if cfg.in_steps is None and cfg.input_offsets is None:
        step = time_step(frames)
        offsets = default_input_offsets(cfg.model, step, **dict(cfg.hyperparameters))
        cfg = cfg.resolved(input_offsets=tuple(offsets or ()))
    if not wants_time_features(cfg.model):
        if cfg.time_features is not None:
            raise DataValidationError(
                f"model {cfg.model!r} takes no time features; drop time_features= (models "
                "that take them: " + ", ".join(_feature_models()) + ")"
            )
        return cfg
    settings = cfg.time_features
    if settings is None:
        settings = getattr(catalog, "time_features", None) or {}
    settings = dict(settings)
    names = settings.pop("variables", None) or []
    if isinstance(names, str):
        names = [names]
    resolved = TimeFeatures.from_dict(settings).to_dict()
    if names:
        resolved["variables"] = list(names)
    return cfg.resolved(time_features=resolved)


def _feature_models() -> list[str]:
    from ..models import list_models

    return [n for n in list_models() if wants_time_features(n)]


def window_features(
    windows: Windows,
    features: TimeFeatures,
    external: ExternalVariables | None = None,
    table: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The features of every window's predicted times: ``(n_windows, T_out * (F + K))``.

    Row ``i`` holds, for each target time ``t0 + target_offsets * step`` of window ``i``,
    its calendar features (:class:`stgeo.data.TimeFeatures`) and, with ``external``, the
    external variables at that time (:func:`stgeo.data.timefeatures.feature_rows`).

    Examples
    --------
    >>> import stgeo
    >>> from stgeo.data import Windows, to_frames
    >>> w = Windows(to_frames(stgeo.testing.storm_cells(n_times=8, shape=(4, 4))), 2, 3)
    >>> window_features(w, TimeFeatures()).shape
    (4, 30)
    """
    from ..data.timefeatures import feature_rows

    step = time_step(windows.frames)
    t0 = pd.DatetimeIndex(np.asarray(windows.init_times).ravel()).values
    offs = np.asarray(windows.target_offsets, dtype=np.int64)
    times = t0[:, None] + (offs * step.to_timedelta64())[None, :]
    return feature_rows(times, features, external, table)


class FeatureLoader:
    """A batch loader that also yields each batch's features: ``(x, y, features)``.

    ``table`` holds one row per window (see :func:`window_features`); the rows of a batch
    follow :meth:`stgeo.data.BatchLoader.batch_indices`, the order the loader reads
    (a pure function of ``(seed, epoch)``), so no data is read twice.
    """

    def __init__(self, loader: BatchLoader, table: np.ndarray) -> None:
        import torch

        self.loader = loader
        self.table = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __getattr__(self, name: str) -> Any:  # batch_size, windows, ... of the loader
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self):
        order = self.loader.batch_indices()
        for i, (x, y) in enumerate(self.loader):
            yield x, y, self.table[order[i]]


def _window_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {"out_steps": cfg.out_steps}
    if cfg.input_offsets is not None:
        kw["input_offsets"] = list(cfg.input_offsets)
    if cfg.in_steps is not None:
        kw["in_steps"] = cfg.in_steps
    return kw


def _thresholds(cfg: TrainConfig, ds: xr.Dataset) -> tuple[float, ...]:
    """The given thresholds, else the catalog's, else none."""
    thresholds = cfg.thresholds
    if thresholds is None:
        entry = _catalog_entry(ds)
        thresholds = tuple(entry.thresholds) if entry is not None else ()
    return tuple(float(t) for t in thresholds)


@dataclass(frozen=True)
class TrainingData:
    """The frames, windows and normaliser of one run (windows of this rank when sharded)."""

    frames: xr.DataArray
    channels: list[str]
    variables: list[str]
    units: dict[str, str]
    catalog: str | None
    train: Windows
    val: Windows | None
    normalizer: Normalizer
    window_kwargs: dict[str, Any]
    time_features: TimeFeatures | None = None
    external: ExternalVariables | None = None
    external_table: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def spatial_dims(self) -> tuple[str, str]:
        return tuple(spatial_dims(self.frames))  # type: ignore[return-value]

    @property
    def grid(self) -> tuple[int, int]:
        sd = self.spatial_dims
        return int(self.frames.sizes[sd[0]]), int(self.frames.sizes[sd[1]])

    @property
    def time_step(self) -> str:
        return freq_string(time_step(self.frames))

    @property
    def input_offsets(self) -> list[int]:
        return [int(o) for o in self.train.input_offsets]

    @property
    def target_offsets(self) -> list[int]:
        return [int(o) for o in self.train.target_offsets]

    @property
    def fingerprint(self) -> str:
        return data_fingerprint(self.frames, {"catalog": self.catalog} if self.catalog else None)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records of the data (resume refuses other data)."""
        return describe_data(self)

    def shard(self, rank: int, world: int) -> TrainingData:
        """This rank's share of the windows: every ``world``-th, all ranks the same count."""
        return dataclasses.replace(
            self, train=self._shard(self.train, rank, world), val=self._shard(self.val, rank, world)
        )

    def _shard(self, w: Windows | None, rank: int, world: int) -> Windows | None:
        if w is None:
            return None
        n = len(w) // world
        if n == 0:
            raise DataValidationError(
                f"only {len(w)} windows for {world} ranks; use fewer processes or more data"
            )
        return Windows(
            self.frames,
            init_times=w.init_times[rank::world][:n],
            time_range=w.time_range,
            inputs_in_range=w.inputs_in_range,
            **self.window_kwargs,
        )

    def loaders(self, cfg: TrainConfig) -> tuple[BatchLoader, BatchLoader | None]:
        """The shuffled training loader and the ordered validation loader."""
        drop_last = len(self.train) >= 2 * cfg.batch_size
        train = BatchLoader(
            self.train,
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            drop_last=drop_last,
            normalizer=self.normalizer,
        )
        val = None
        if self.val is not None:
            val = BatchLoader(
                self.val, cfg.batch_size, shuffle=False, seed=cfg.seed, normalizer=self.normalizer
            )
        if self.time_features is None:
            return train, val
        ext = (self.time_features, self.external, self.external_table)
        train = FeatureLoader(train, window_features(self.train, *ext))  # type: ignore[assignment]
        if val is not None:
            val = FeatureLoader(val, window_features(self.val, *ext))  # type: ignore[assignment,arg-type]
        return train, val


def _train_windows(
    frames: xr.DataArray, rng: tuple, win_kw: dict[str, Any], cfg: TrainConfig, declared: bool
) -> Windows:
    """The training windows; when the window is the model's ``declared`` one (ST-ResNet's
    closeness, period and trend), a window longer than the training split says how long it
    is and how to shorten it. Offsets the caller gave keep the windows' own message."""
    try:
        return Windows(frames, time_range=rng, **win_kw)
    except DataValidationError as err:
        offs = win_kw.get("input_offsets")
        if not declared or offs is None or not cfg.input_offsets:
            raise
        step = time_step(frames)
        span = (cfg.out_steps - min(offs)) * step  # type: ignore[operator]
        raise DataValidationError(
            f"{cfg.model!r} reads input frames back to offset {min(offs)} (its trend/period "
            f"window: {freq_string(-min(offs) * step)} of history before the last input) and "
            f"predicts {cfg.out_steps} step(s), so each training window spans "
            f"{freq_string(span)}; the training split {rng[0]} .. {rng[1]} has no such "
            f"window ({err}). Give more history, or shorten the window (e.g. len_t=0 to drop "
            "the one-week trend, len_p=0 for the one-day period, or input_offsets=...)"
        ) from None


def prepare_data(
    data: xr.Dataset | xr.DataArray | str | os.PathLike,
    cfg: TrainConfig,
    normalizer: Normalizer | None = None,
) -> tuple[TrainingData, TrainConfig]:
    """Open ``data``, resolve splits and thresholds, build the windows, fit the normaliser.

    Returns the run's data and ``cfg`` with the resolved thresholds and split ranges. A
    fitted ``normalizer`` (the initial model's when fine-tuning) is used as is: no pass
    over the training split for its statistics. A
    list of sources, a catalog collection or ``cfg.patch_size`` take the multi-event path
    (:func:`stgeo.training.events.prepare_events`); one dataset keeps the whole-frame,
    chunk-aware path below. Both apply the gap rule of :func:`stgeo.validate`.
    """
    from .events import is_multi_event, prepare_events

    if is_multi_event(data, cfg):
        from ..data import open_events

        sources, policy = open_events(data)
        return prepare_events(sources, cfg, policy, normalizer)  # type: ignore[return-value]
    ds = open_data(data)
    validate(ds, strict=False, allow_gaps=cfg.allow_gaps, check_values=False)
    frames = to_frames(ds, cfg.variable)
    channels = [str(c) for c in frames["channel"].values]
    variables = variables_of(channels)
    ranges, source = split_ranges(ds, cfg.splits)
    declared = cfg.in_steps is None and cfg.input_offsets is None  # the model's own window
    cfg = model_window(cfg, frames, _catalog_entry(ds))
    cfg = cfg.resolved(
        thresholds=_thresholds(cfg, ds),
        splits={k: [str(a), str(b)] for k, (a, b) in ranges.items()},
        split_source=source,
    )
    win_kw = _window_kwargs(cfg)
    train = _train_windows(frames, ranges["train"], win_kw, cfg, declared)
    val = None
    if "val" in ranges:
        val = Windows(frames, time_range=ranges["val"], inputs_in_range=False, **win_kw)
    t_lo, t_hi = ranges["train"]
    td = TrainingData(
        frames=frames,
        channels=channels,
        variables=variables,
        units={v: str(ds[v].attrs["units"]) for v in variables if "units" in ds[v].attrs},
        catalog=ds.attrs.get("stgeo_catalog"),
        train=train,
        val=val,
        normalizer=(
            Normalizer(cfg.normalization).fit(frames.sel(time=slice(t_lo, t_hi)))
            if normalizer is None
            else normalizer
        ),
        window_kwargs=win_kw,
        **_features(ds, cfg, ranges["train"]),
    )
    return td, cfg


def _features(ds: xr.Dataset, cfg: TrainConfig, train_range: tuple) -> dict[str, Any]:
    """The run's calendar settings and external variables (fitted on the training split)."""
    if cfg.time_features is None:
        return {}
    settings = dict(cfg.time_features)
    names = settings.pop("variables", None)
    out: dict[str, Any] = {"time_features": TimeFeatures.from_dict(settings)}
    if names:
        ext = ExternalVariables.fit(ds, names, train_range)
        out.update(external=ext, external_table=ext.table(ds))
    return out

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
    Normalizer,
    Windows,
    get_entry,
    open_data,
    split_by_time,
    to_frames,
    variables_of,
)
from ..errors import DataValidationError, StgeoTypeError
from .config import TrainConfig

__all__ = ["TrainingData", "data_fingerprint", "describe_data", "prepare_data", "split_ranges"]

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
        if self.val is None:
            return train, None
        val = BatchLoader(
            self.val, cfg.batch_size, shuffle=False, seed=cfg.seed, normalizer=self.normalizer
        )
        return train, val


def prepare_data(
    data: xr.Dataset | xr.DataArray | str | os.PathLike, cfg: TrainConfig
) -> tuple[TrainingData, TrainConfig]:
    """Open ``data``, resolve splits and thresholds, build the windows, fit the normaliser.

    Returns the run's data and ``cfg`` with the resolved thresholds and split ranges. A
    list of sources, a catalog collection or ``cfg.patch_size`` take the multi-event path
    (:func:`stgeo.training.events.prepare_events`); one dataset keeps the whole-frame,
    chunk-aware path below. Both apply the gap rule of :func:`stgeo.validate`.
    """
    from .events import is_multi_event, prepare_events

    if is_multi_event(data, cfg):
        from ..data import open_events

        sources, policy = open_events(data)
        return prepare_events(sources, cfg, policy)  # type: ignore[return-value]
    ds = open_data(data)
    validate(ds, strict=False, allow_gaps=cfg.allow_gaps, check_values=False)
    frames = to_frames(ds, cfg.variable)
    channels = [str(c) for c in frames["channel"].values]
    variables = variables_of(channels)
    ranges, source = split_ranges(ds, cfg.splits)
    cfg = cfg.resolved(
        thresholds=_thresholds(cfg, ds),
        splits={k: [str(a), str(b)] for k, (a, b) in ranges.items()},
        split_source=source,
    )
    win_kw = _window_kwargs(cfg)
    train = Windows(frames, time_range=ranges["train"], **win_kw)
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
        normalizer=Normalizer(cfg.normalization).fit(frames.sel(time=slice(t_lo, t_hi))),
        window_kwargs=win_kw,
    )
    return td, cfg

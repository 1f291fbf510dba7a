"""Training: the one training loop, its configuration, checkpoints and hooks.

``stgeo.train`` (and ``ds.st.train``) is :func:`stgeo.training.train`. The package is split
by concern: :mod:`.config` (the frozen :class:`TrainConfig`), :mod:`.data` (windows, splits,
normaliser, loaders, shards), :mod:`.loop` (fit / epoch / evaluate), :mod:`.callbacks`
(:class:`Callback` hooks, progress bar, augmentation), :mod:`.validation` (scores as
:mod:`stgeo.metrics` computes them), :mod:`.checkpoint`, :mod:`.distributed` and
:mod:`.schedules`.
"""

from .callbacks import Callback, TimeLimit, TrainState
from .config import TrainConfig
from .data import data_fingerprint
from .fit import train
from .schedules import make_optimizer

__all__ = [
    "Callback",
    "TimeLimit",
    "TrainConfig",
    "TrainState",
    "data_fingerprint",
    "make_optimizer",
    "train",
]

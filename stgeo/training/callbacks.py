"""Training hooks: :class:`Callback` and the :class:`TrainState` it receives.

The loop of :func:`stgeo.train` knows nothing of augmentations, progress bars, loggers or
curricula: they plug in as callbacks. A callback overrides any of these hooks (all optional;
``state`` is the run's :class:`TrainState`):

==========================  ======================================================================
hook                        when
==========================  ======================================================================
``on_fit_start(state)``     before the first epoch (after a resume: before the next epoch)
``on_epoch_start(state)``   before the first batch of each epoch
``on_batch_start(state,     each training batch, normalised and on the device, before the
x, y)``                     forward pass; return ``(x, y)`` to replace the batch, or ``None``
``on_batch_end(state)``     after the optimiser step (``state.loss`` is the batch's loss)
``on_validation_end         after validation (``state.metrics``: ``val_mse``, ``val_csi``,
(state)``                   ``val_csi_m``)
``on_epoch_end(state)``     after the epoch's record is in ``state.history`` and before the
                            checkpoint; set ``state.stop = True`` to end training
``on_fit_end(state)``       after the last epoch, before the best weights are restored
==========================  ======================================================================

Batch-transforming callbacks run in order, each on the previous one's output: first the
``augment=`` of :func:`stgeo.train`, then the ``callbacks=`` in the order given, then the
progress bar.

Examples
--------
A callback that logs the validation MSE of every epoch:

>>> import stgeo
>>> from stgeo.training import Callback
>>> class PrintVal(Callback):
...     def on_epoch_end(self, state):
...         print(f"epoch {state.epoch + 1}: val_mse={state.record['val_mse']:.3f}")
>>> ds = stgeo.testing.storm_cells(n_times=24, shape=(8, 8), seed=0)
>>> m = stgeo.train(ds, model="simvp", in_steps=2, out_steps=1, epochs=2, hid_S=4, hid_T=8,
...                 N_T=1, max_steps_per_epoch=1, progress=False, callbacks=[PrintVal()])
... # doctest: +ELLIPSIS
epoch 1: val_mse=...
epoch 2: val_mse=...
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._registry import AUGMENTATIONS
from ..augment import TrainableAugmentation
from ..errors import StgeoTypeError
from ..options import show_progress
from .config import TrainConfig

__all__ = [
    "Augmentation",
    "Callback",
    "CallbackList",
    "FittedAugmentation",
    "ProgressBar",
    "TimeLimit",
    "TrainState",
    "augmentation",
]

HOOKS = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_start",
    "on_batch_end",
    "on_validation_end",
    "on_epoch_end",
    "on_fit_end",
)


@dataclass
class TrainState:
    """What the hooks see of a run (read it; ``stop`` is the one field meant to be set).

    Attributes
    ----------
    config : TrainConfig
        The run's settings.
    model : torch.nn.Module
        The module being trained (not the DistributedDataParallel wrapper).
    optimizer, scheduler : optional
        The AdamW optimiser and its learning-rate scheduler (None for baselines).
    epoch : int
        Index of the current epoch, from 0.
    batch : int
        Index of the current batch in its epoch, from 0.
    step : int
        Optimiser steps taken so far (over all epochs).
    steps_per_epoch : int
        Batches per epoch (after ``max_steps_per_epoch``).
    loss : torch.Tensor or None
        The last batch's training loss (detached 0-d tensor; reading it as a float
        synchronises with the device).
    metrics : dict
        The last validation scores, keys as in the history (``val_mse``, ...).
    record : dict
        The current epoch's history record (complete in ``on_epoch_end``).
    history : list of dict
        The records of the finished epochs.
    rank, world_size : int
        This process's rank and the number of processes (1 without torchrun).
    stop : bool
        Set to True (e.g. in ``on_epoch_end``) to end training after this epoch.
    next_epoch : int
        The epoch a resumed run starts from (epochs done so far).
    best, best_epoch, best_result, bad_epochs
        Model selection: the best validation score so far, its epoch (from 1), its scores
        and the epochs since it.
    train_loader : BatchLoader or None
        The run's training loader (normalised ``(x, y)`` CPU batches of this rank; e.g.
        for callbacks that fit something on the training split in ``on_fit_start``).
    checkpoint_dir : pathlib.Path or None
        The run's checkpoint folder (``train(checkpoint_dir=...)``); callbacks may keep
        their own state in a subfolder of it.
    """

    config: TrainConfig
    model: Any
    optimizer: Any = None
    scheduler: Any = None
    epoch: int = 0
    batch: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    loss: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    rank: int = 0
    world_size: int = 1
    stop: bool = False
    next_epoch: int = 0
    best: float | None = None
    best_epoch: int | None = None
    best_result: dict[str, Any] = field(default_factory=dict)
    bad_epochs: int = 0
    train_loader: Any = None
    checkpoint_dir: Path | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and prints."""
        return self.rank == 0

    # the loop's progress, as checkpoints store it (key names kept for old checkpoints)
    def progress(self) -> dict[str, Any]:
        """The loop's progress as JSON (what a checkpoint stores)."""
        return {
            "next_epoch": self.next_epoch,
            "step": self.step,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_result": self.best_result,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stop,
            "history": self.history,
        }

    def load_progress(self, doc: dict[str, Any]) -> None:
        """Continue from :meth:`progress` of a checkpoint."""
        self.next_epoch = int(doc["next_epoch"])
        self.step = int(doc["step"])
        self.best = doc["best"]
        self.best_epoch = doc["best_epoch"]
        self.best_result = dict(doc["best_result"])
        self.bad_epochs = int(doc["bad_epochs"])
        self.stop = bool(doc["stopped"])
        self.history = list(doc["history"])


class Callback:
    """Base class of training hooks: override the hooks you need (see the module doc)."""

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first (or, resumed, the next) epoch."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Before the first batch of an epoch."""

    def on_batch_start(self, state: TrainState, x: Any, y: Any) -> tuple[Any, Any] | None:
        """Before the forward pass; return ``(x, y)`` to replace the batch."""
        return None

    def on_batch_end(self, state: TrainState) -> None:
        """After the optimiser step of a batch."""

    def on_validation_end(self, state: TrainState) -> None:
        """After the validation of an epoch."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After an epoch's record is in the history, before its checkpoint."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the last epoch."""


class CallbackList:
    """Calls each hook on every callback that overrides it, in order.

    Only overriding callbacks are called, so hooks nobody uses cost nothing per batch.

    Examples
    --------
    >>> class Hi(Callback):
    ...     def on_fit_start(self, state):
    ...         print("hi")
    >>> cbs = CallbackList([Hi(), Callback()])
    >>> cbs.on_fit_start(None)
    hi
    >>> cbs.on_batch_start(None, 1, 2)
    (1, 2)
    """

    def __init__(self, callbacks: Sequence[Callback]):
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise StgeoTypeError(
                    "callbacks must be instances of stgeo.training.Callback (subclass it and "
                    f"override the hooks you need), got {type(cb).__name__}"
                )
        self.callbacks = list(callbacks)
        self._hooks = {
            h: [getattr(cb, h) for cb in self.callbacks if _overrides(cb, h)] for h in HOOKS
        }

    def _call(self, hook: str, state: TrainState) -> None:
        for fn in self._hooks[hook]:
            fn(state)

    def on_fit_start(self, state: TrainState) -> None:
        self._call("on_fit_start", state)

    def on_epoch_start(self, state: TrainState) -> None:
        self._call("on_epoch_start", state)

    def on_batch_start(self, state: TrainState, x: Any, y: Any) -> tuple[Any, Any]:
        for fn in self._hooks["on_batch_start"]:
            out = fn(state, x, y)
            if out is not None:
                x, y = out
        return x, y

    def on_batch_end(self, state: TrainState) -> None:
        self._call("on_batch_end", state)

    def on_validation_end(self, state: TrainState) -> None:
        self._call("on_validation_end", state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._call("on_epoch_end", state)

    def on_fit_end(self, state: TrainState) -> None:
        self._call("on_fit_end", state)


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


class TimeLimit(Callback):
    """End training at the first epoch end where another epoch would pass a time budget.

    The budget counts wall time from ``on_fit_start`` of this process (a resumed run starts
    a new budget). Training stops after the epoch at which ``elapsed + (mean epoch time)``
    exceeds ``seconds``, so the run ends within about one epoch of the budget or below it;
    the best validated weights are kept as usual. Keep epochs short (``max_steps_per_epoch``)
    for a tight bound; the learning-rate schedule still spans the planned ``epochs``.

    Parameters
    ----------
    seconds : float
        Wall-time budget of the run in seconds (> 0).
    clock : callable, optional
        The clock read, in seconds (default :func:`time.monotonic`).

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=24, shape=(8, 8), seed=0)
    >>> m = stgeo.train(ds, model="simvp", in_steps=2, out_steps=1, epochs=50, hid_S=4,
    ...                 hid_T=8, N_T=1, max_steps_per_epoch=1, progress=False,
    ...                 callbacks=[TimeLimit(1e-9)])
    >>> len(m.history)
    1
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise StgeoTypeError(f"TimeLimit needs a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self.clock = clock
        self.start = 0.0
        self.epochs = 0

    def on_fit_start(self, state: TrainState) -> None:
        self.start = self.clock()
        self.epochs = 0

    def on_epoch_end(self, state: TrainState) -> None:
        self.epochs += 1
        elapsed = self.clock() - self.start
        if elapsed + elapsed / self.epochs > self.seconds:
            state.stop = True


class Augmentation(Callback):
    """Applies ``fn(x, y) -> (x, y)`` to every normalised training batch.

    An ``fn`` with a ``reseed(*keys)`` method (e.g. :class:`stgeo.augment.dihedral.Dihedral`)
    is first reseeded from ``(run seed, epoch, batch, rank)``, so its draws depend only on
    where the batch is in the run and a resumed run is exact.

    Examples
    --------
    >>> aug = Augmentation(lambda x, y: (-x, y))
    >>> aug.on_batch_start(None, 1, 2)
    (-1, 2)
    """

    def __init__(self, fn: Callable[[Any, Any], tuple[Any, Any]]):
        self.fn = fn

    def on_batch_start(self, state: TrainState, x: Any, y: Any) -> tuple[Any, Any]:
        reseed = getattr(self.fn, "reseed", None)
        if state is not None and callable(reseed):
            reseed(state.config.seed, state.epoch, state.batch, state.rank)
        return self.fn(x, y)


class FittedAugmentation(Augmentation):
    """Runs a :class:`~stgeo.augment.TrainableAugmentation` (e.g. NuwaDynamics) in training.

    ``on_fit_start``: on a resumed run (``state.next_epoch > 0``) whose checkpoint folder
    holds the saved augmentation (``checkpoint_dir/augment/``), that is restored and reused;
    otherwise an unfitted augmentation is fitted on the training loader's batches with the
    run seed (a fitted one is used as given), and then saved there (rank 0). The
    augmentation is moved to the model's device.

    ``on_batch_start``: reseeds it from ``(run seed, epoch, batch, rank)`` and returns
    ``augment(x, y)``, so every batch's draws depend only on where it is in the run and a
    resumed run is exact.

    Examples
    --------
    >>> from stgeo.augment.nuwa import NuwaAugment
    >>> FittedAugmentation(NuwaAugment()).folder(None) is None
    True
    """

    #: subfolder of the checkpoint folder that holds the fitted augmentation
    FOLDER = "augment"

    def __init__(self, augment: TrainableAugmentation):
        super().__init__(augment)
        self.augment = augment

    def folder(self, state: TrainState | None) -> Path | None:
        """Where the fitted augmentation is saved (None without a checkpoint folder)."""
        if state is None or state.checkpoint_dir is None:
            return None
        return Path(state.checkpoint_dir) / self.FOLDER

    def on_fit_start(self, state: TrainState) -> None:
        aug, folder = self.augment, self.folder(state)
        device = next(iter(state.model.parameters()), None)
        device = None if device is None else device.device
        resumed = folder is not None and state.next_epoch > 0 and folder.is_dir()
        if resumed:
            aug.restore(folder)  # reuse the saved fit
        elif not aug.fitted:
            loader = state.train_loader
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(0)  # the same batches whichever epoch the run starts at
            aug.fit(loader, seed=state.config.seed, device=device)
        if device is not None:
            aug.to(device)
        if folder is not None and state.is_main and not resumed:
            aug.save(folder)

    def on_batch_start(self, state: TrainState, x: Any, y: Any) -> tuple[Any, Any]:
        self.augment.reseed(state.config.seed, state.epoch, state.batch, state.rank)
        return self.augment(x, y)


def _from_registry(name: str, settings: Mapping[str, Any]) -> Callable[..., Any]:
    """The registered augmentation ``name``; a trainable one as a fresh copy with ``settings``."""
    obj = AUGMENTATIONS.get(name)
    if isinstance(obj, TrainableAugmentation):
        return obj.replace(**settings)
    if settings:
        raise StgeoTypeError(
            f"the augmentation {name!r} takes no settings (got {sorted(settings)}); register a "
            "configured instance or a functools.partial under its own name instead"
        )
    return obj


def augmentation(augment: str | Mapping[str, Any] | Callable[..., Any] | None) -> Callback | None:
    """The callback of ``train(augment=...)``: a registered name, settings, or a callable.

    ``augment`` is a registered name (``"nuwa"``), a mapping ``{"name": ..., **settings}``
    (settings of a registered trainable augmentation, e.g. ``{"name": "nuwa", "k": 0.1}``),
    a :class:`~stgeo.augment.TrainableAugmentation` instance (fitted on the training split
    unless already fitted; see :class:`FittedAugmentation`) or any callable
    ``(x, y) -> (x, y)``.

    Raises
    ------
    UnknownNameError
        ``augment`` names no registered augmentation.
    StgeoTypeError
        A mapping without ``"name"``, unknown settings, or neither name nor callable.

    Examples
    --------
    >>> cb = augmentation({"name": "nuwa", "k": 0.1, "share": 1.0})
    >>> type(cb).__name__, cb.augment.k, cb.augment.share
    ('FittedAugmentation', 0.1, 1.0)
    """
    if augment is None:
        return None
    if isinstance(augment, Mapping):
        settings = dict(augment)
        name = settings.pop("name", None)
        if not isinstance(name, str):
            raise StgeoTypeError(
                "an augment mapping needs the registered name under 'name', e.g. "
                f"{{'name': 'nuwa', 'k': 0.25}}; got keys {sorted(map(str, augment))}"
            )
        augment = _from_registry(name, settings)
    elif isinstance(augment, str):
        augment = _from_registry(augment, {})
    if isinstance(augment, TrainableAugmentation):
        return FittedAugmentation(augment)
    if callable(augment):
        return Augmentation(augment)
    raise StgeoTypeError(
        "augment must be a registered augmentation name, a mapping {'name': ..., **settings} "
        f"or a callable (x, y) -> (x, y), got {type(augment).__name__}"
    )


class ProgressBar(Callback):
    """A tqdm bar per epoch (loss, samples/s) and a line per epoch, on rank 0 only.

    Parameters
    ----------
    progress : bool, optional
        Show it; default: only on a terminal (see :func:`stgeo.set_options`).
    """

    def __init__(self, progress: bool | None = None):
        self.progress = progress
        self.tqdm: Any = None
        self.bar: Any = None
        self.t_start = 0.0
        self.n_seen = 0

    def on_fit_start(self, state: TrainState) -> None:
        if state.is_main and show_progress(self.progress):
            from tqdm.auto import tqdm  # only when a bar is drawn

            self.tqdm = tqdm

    def on_epoch_start(self, state: TrainState) -> None:
        if self.tqdm is None:
            return
        cfg = state.config
        self.bar = self.tqdm(
            total=state.steps_per_epoch,
            desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
            leave=False,
            unit="batch",
        )
        self.t_start = time.perf_counter()
        self.n_seen = 0

    def on_batch_start(self, state: TrainState, x: Any, y: Any) -> None:
        if self.bar is not None:
            self.n_seen += int(x.shape[0])

    def on_batch_end(self, state: TrainState) -> None:
        if self.bar is None:
            return
        el = time.perf_counter() - self.t_start
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{float(state.loss):.4g}", samples_s=f"{self.n_seen / el:.1f}")

    def on_epoch_end(self, state: TrainState) -> None:
        if self.bar is None:
            return
        self.bar.close()
        self.bar = None
        rec = state.record
        msg = f"epoch {state.epoch + 1}/{state.config.epochs}: train loss {rec['train_loss']:.4g}"
        key = f"val_{'csi_m' if state.config.val_metric == 'csi' else 'mse'}"
        if key in rec:
            msg += f", val {state.config.val_metric} {rec[key]:.4g}"
        self.tqdm.write(msg)

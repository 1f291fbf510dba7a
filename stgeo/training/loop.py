"""The epoch loop: fit, one training epoch, evaluation, model selection.

:class:`Loop` runs the optimisation of :func:`stgeo.train` once everything is set up: it
knows the model, loaders, optimiser, schedule and callbacks, and nothing of augmentations,
progress bars or loggers (those are callbacks, see :mod:`stgeo.training.callbacks`).

Per batch: move to the device, refuse non-finite inputs, ``on_batch_start`` (may replace the
batch), forward under bf16 autocast where supported, the loss on normalised values (plus
the model's declared auxiliary loss), backward, gradient clipping, AdamW and schedule steps,
``on_batch_end``. Per epoch: validation in physical units (:mod:`.validation`), the history
record, best-weights selection and early stopping, ``on_epoch_end``, the checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import BatchLoader, EventLoader, Normalizer, fill_nodata
from ..errors import DataValidationError
from ..models.losses import pointwise_loss, threshold_weights
from ..models.runtime import autocast
from .callbacks import CallbackList, TrainState
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .distributed import Distributed
from .validation import ValidationSums

__all__ = ["Loop", "check_finite", "evaluate", "is_better"]


def check_finite(x: torch.Tensor, what: str, epoch: int, step: int) -> torch.Tensor | None:
    """Check a training batch for no-data and infinities; the mask of its valid pixels.

    NaN is no-data (e.g. outside radar range): accepted, the returned boolean mask marks
    the valid pixels (``None`` when every pixel is valid, the fast path). Infinite values
    are refused (they would poison the weights), and so is a batch of targets that is
    entirely NaN (nothing to learn from).

    Examples
    --------
    >>> import torch
    >>> check_finite(torch.zeros(2, 3), "targets", 0, 0) is None
    True
    >>> check_finite(torch.tensor([0.0, float("nan")]), "targets", 0, 0).tolist()
    [True, False]
    """
    if bool(torch.isfinite(x).all()):
        return None
    if bool(torch.isinf(x).any()):
        raise DataValidationError(
            f"infinite values in the training {what} (epoch {epoch + 1}, batch {step + 1}); "
            "replace them, e.g. ds = ds.where(np.isfinite(ds)) to mark them as no-data (NaN)"
        )
    valid = ~torch.isnan(x)
    if what == "targets" and not bool(valid.any()):
        raise DataValidationError(
            f"the training targets of epoch {epoch + 1}, batch {step + 1} are all NaN "
            "(no-data): nothing to learn from. Check the data (all-NaN frames?) or crop "
            "where there are data (patch_size)"
        )
    return valid


def is_better(metric: str, a: float, b: float | None) -> bool:
    """Whether score ``a`` beats the best so far ``b`` (higher CSI-M, lower MSE).

    Examples
    --------
    >>> is_better("mse", 1.0, None), is_better("mse", 1.0, 2.0), is_better("csi", 0.1, 0.2)
    (True, True, False)
    """
    if b is None or math.isnan(b):
        return not math.isnan(a)
    return a > b if metric == "csi" else a < b


def predictions(
    net: Any,
    loader: BatchLoader | EventLoader,
    normalizer: Normalizer,
    cfg: TrainConfig,
    device: torch.device,
    features: bool = False,
    max_batches: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(forecast, truth)`` of each batch of ``loader`` in physical units, ``net`` in eval
    mode without gradients (at most ``max_batches`` batches). Infinite values are refused;
    NaN inputs are no data (:func:`stgeo.data.fill_nodata`)."""
    net.eval()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = batch[0], batch[1]
        _refuse_inf(x, y, i)
        x = fill_nodata(x.to(device, non_blocking=True), normalizer)
        y = y.to(device, non_blocking=True)
        args = (batch[2].to(device, non_blocking=True),) if features else ()
        with torch.no_grad(), autocast(device, cfg.precision):  # not across the yield
            pred = net(x, *args)
        yield normalizer.inverse(pred.float()), normalizer.inverse(y)


def evaluate(
    net: Any,
    loader: BatchLoader | EventLoader | None,
    normalizer: Normalizer,
    cfg: TrainConfig,
    device: torch.device,
    dist: Distributed | None = None,
    features: bool = False,
) -> dict[str, Any]:
    """Validation scores of ``net`` in physical units, summed over batches and ranks.

    ``{"mse": ..., "csi": [...], "csi_m": ...}`` (see :mod:`.validation`), ``{}`` without a
    validation loader; at most ``cfg.max_val_steps`` batches. With ``features`` the
    batches' features (``(x, y, features)`` batches) are passed on: ``net(x, features)``.
    """
    if loader is None:
        return {}
    sums = ValidationSums(cfg.thresholds or (), device)
    for pred, obs in predictions(net, loader, normalizer, cfg, device, features, cfg.max_val_steps):
        sums.add(pred, obs)
    sums.reduce(dist)
    if int(sums.n) == 0:
        raise DataValidationError(
            "every validation target pixel is NaN (no data), so the validation scores are "
            "undefined and no epoch could be selected; check the data of the validation "
            f"period (splits {cfg.splits}), choose other splits, or train without 'val'"
        )
    return sums.result()


def _refuse_inf(x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
    """Infinite values in a validation batch would give infinite scores: refuse them."""
    for what, t in (("inputs", x), ("targets", y)):
        if bool(torch.isinf(t).any()):
            raise DataValidationError(
                f"infinite values in the validation {what} (batch {batch + 1}); replace them, "
                "e.g. ds = ds.where(np.isfinite(ds)) to mark them as no-data (NaN)"
            )


@dataclass
class Loop:
    """One run's optimisation loop (see the module doc).

    ``net`` is what is called (the module, or its DistributedDataParallel wrapper);
    ``state.model`` is the module itself. ``record`` is the run's configuration as a
    checkpoint stores it; checkpoints are written when ``checkpoint_dir`` is set.
    """

    state: TrainState
    net: Any
    train_loader: BatchLoader | EventLoader
    val_loader: BatchLoader | EventLoader | None
    normalizer: Normalizer
    device: torch.device
    callbacks: CallbackList
    dist: Distributed | None = None
    aux_loss: tuple[Callable[..., torch.Tensor], float] | None = None
    checkpoint_dir: Path | None = None
    record: Mapping[str, Any] | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    features: bool = False

    def __post_init__(self) -> None:
        opt = self.state.optimizer
        self.params = [p for g in opt.param_groups for p in g["params"]] if opt else []

    # -- training -----------------------------------------------------------------------
    def _objective(
        self, x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor | None = None, args=()
    ) -> torch.Tensor:
        """The loss of one batch; ``valid`` masks no-data (NaN) target pixels out of it;
        ``args`` are the model's extra inputs (the batch's features)."""
        cfg = self.state.config
        with autocast(self.device, cfg.precision):
            pred = self.net(x, *args)
        pred = pred.float()
        tab = cfg.loss_weights
        pix_w = threshold_weights(self.normalizer.inverse(y), tab) if tab else None
        objective = pointwise_loss(pred, y, cfg.loss, pix_w, valid)
        if self.aux_loss is not None:
            fn, weight = self.aux_loss
            # no-data targets take the (detached) prediction: no error, no gradient there
            y_aux = y if valid is None else torch.where(valid, y, pred.detach())
            objective = objective + weight * fn(pred, y_aux)
        return objective

    def _step(
        self, x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor | None = None, args=()
    ) -> torch.Tensor:
        """Forward, backward and optimiser step of one batch; returns its loss."""
        st = self.state
        cfg = st.config
        objective = self._objective(x, y, valid, args)
        if not bool(torch.isfinite(objective)):
            raise DataValidationError(
                f"the training loss became {float(objective)} at epoch {st.epoch + 1}, "
                f"batch {st.batch + 1}; lower lr (now {cfg.lr}) or check the data for extreme "
                "values"
            )
        st.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if cfg.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.params, float(cfg.clip_grad))
        st.optimizer.step()
        st.scheduler.step()
        st.step += 1
        return objective

    def train_epoch(self) -> dict[str, Any]:
        """One pass over the training batches; the epoch's loss and throughput."""
        st = self.state
        self.train_loader.set_epoch(st.epoch)
        self.net.train()
        self.callbacks.on_epoch_start(st)
        t_start = time.perf_counter()
        wait = 0.0
        loss_sum = torch.zeros((), dtype=torch.float64)
        n_seen = 0
        it = iter(self.train_loader)
        try:
            for i in range(st.steps_per_epoch):
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                wait += time.perf_counter() - t0
                st.batch = i
                x = batch[0].to(self.device, non_blocking=True)
                y = batch[1].to(self.device, non_blocking=True)
                args = (batch[2].to(self.device, non_blocking=True),) if self.features else ()
                if check_finite(x, "inputs", st.epoch, i) is not None:
                    x = fill_nodata(x, self.normalizer)
                x, y = self.callbacks.on_batch_start(st, x, y)
                valid = check_finite(y, "targets", st.epoch, i)
                st.loss = self._step(x, y, valid, args).detach()
                loss_sum += st.loss.double().cpu() * x.shape[0]
                n_seen += x.shape[0]
                self.callbacks.on_batch_end(st)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        if self.dist is not None:
            t = torch.stack([loss_sum, torch.tensor(float(n_seen), dtype=torch.float64)])
            t = t.to(self.device)
            self.dist.all_reduce(t)
            loss_sum, n_seen = t[0].cpu(), int(t[1])
        seconds = time.perf_counter() - t_start
        return {
            "epoch": st.epoch + 1,
            "train_loss": float(loss_sum) / max(n_seen, 1),
            "lr": float(st.scheduler.get_last_lr()[0]),
            "seconds": round(seconds, 3),
            "samples_per_s": round(n_seen / max(seconds, 1e-9), 2),
            "data_wait_fraction": round(wait / max(seconds, 1e-9), 4),
        }

    def _select(self, res: Mapping[str, Any]) -> None:
        """Keep the best weights; count epochs without improvement; early stopping."""
        st = self.state
        cfg = st.config
        if not res:
            return
        score = float(res["csi_m"]) if cfg.val_metric == "csi" else float(res["mse"])
        if is_better(cfg.val_metric, score, st.best):
            st.best, st.best_epoch, st.best_result, st.bad_epochs = score, st.epoch + 1, res, 0
            self.best_weights = {k: v.detach().clone() for k, v in st.model.state_dict().items()}
        else:
            st.bad_epochs += 1
        if cfg.patience is not None and st.bad_epochs >= cfg.patience:
            st.stop = True

    def _save(self) -> None:
        st = self.state
        if self.checkpoint_dir is not None and st.is_main:
            save_checkpoint(
                self.checkpoint_dir,
                st.next_epoch,
                st.model,
                st.optimizer,
                st.scheduler,
                self.best_weights,
                st.progress(),
                self.record or {},
            )
        if self.dist is not None:
            self.dist.barrier()

    def fit(self) -> None:
        """Train from ``state.next_epoch`` to the last epoch or an early stop, then load the
        best weights into the model (when there was validation)."""
        st = self.state
        self.callbacks.on_fit_start(st)
        for epoch in range(st.next_epoch, st.config.epochs):
            if st.stop:
                break
            st.epoch = epoch
            rec = self.train_epoch()
            res = evaluate(
                self.net,
                self.val_loader,
                self.normalizer,
                st.config,
                self.device,
                self.dist,
                self.features,
            )
            st.metrics = {f"val_{k}": v for k, v in res.items()}
            self.callbacks.on_validation_end(st)
            rec.update(st.metrics)
            self._select(res)
            st.record = json.loads(json.dumps(rec, default=float))
            st.history.append(st.record)
            st.next_epoch = epoch + 1
            self.callbacks.on_epoch_end(st)
            self._save()
        self.callbacks.on_fit_end(st)
        if self.best_weights is not None:
            st.model.load_state_dict(self.best_weights)
        else:
            st.best_result = {}

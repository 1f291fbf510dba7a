"""The one training loop: ``stgeo.train(data, model=...)`` -> :class:`~stgeo.models.TrainedModel`.

Data go through :mod:`stgeo.data` (frames, windows, a normaliser fitted on the training split
only, a chunk-aware batch loader); the model is any registered architecture. The loop uses
AdamW, a cosine or one-cycle learning-rate schedule with linear warm-up, gradient clipping,
bf16 autocast where the device supports it, early stopping and best-checkpoint selection on
the validation metric (MSE, or CSI-M when thresholds are given, both in physical units and
computed as :mod:`stgeo.metrics` computes them), and writes an atomic, pickle-free
checkpoint every epoch so an interrupted run resumes. Callbacks
(:class:`~stgeo.training.Callback`) hook into every batch and epoch.

:func:`train` only orchestrates: :mod:`.config` checks the settings, :mod:`.data` prepares
windows and loaders, :mod:`.schedules` makes the optimiser and schedule,
:mod:`.checkpoint` resumes, :mod:`.loop` trains and :mod:`.distributed` handles torchrun.

Examples
--------
>>> import stgeo
>>> ds = stgeo.testing.storm_cells(n_times=40, shape=(16, 16), seed=0)
>>> m = stgeo.train(ds, model="persistence", variable="rain_rate", in_steps=1, out_steps=2,
...                 progress=False)
>>> m.spec.channels, m.spec.time_step
(['rain_rate'], '5min')
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from .._registry import MODELS
from ..conventions import grid_corners
from ..data import Importance
from ..data.safety import check_checkpoint_dir
from ..errors import DataValidationError, UnknownNameError
from ..models.artifact import TrainedModel
from ..models.base import ModelSpec, create_model
from ..models.calibration import QuantileSample
from ..models.ensembles import ensemble
from ..models.losses import aux_loss_of
from ..models.runtime import prepare_for_training, resolve_precision
from ..options import resolve_device
from .callbacks import Callback, CallbackList, ProgressBar, TrainState, augmentation
from .checkpoint import check_latest, forget, restore
from .config import TrainConfig
from .data import TrainingData, prepare_data
from .distributed import Distributed, maybe_distributed
from .events import summary_for_spec
from .init import Init, resolve_init
from .loop import Loop, evaluate, predictions
from .schedules import make_optimizer, make_scheduler

__all__ = ["train"]


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for user augmentations
    random.seed(seed)


def _build(
    name: str, td: TrainingData, cfg: TrainConfig, device: torch.device, start: Init | None
) -> Any:
    """The module of ``name`` for the data's windows (with the initial weights when
    fine-tuning), on ``device`` in its training layout."""
    module = create_model(
        name,
        in_steps=len(td.input_offsets),
        out_steps=len(td.target_offsets),
        channels=len(td.channels),
        grid_shape=td.grid,
        normalization=td.normalizer.to_dict(),
        **cfg.hyperparameters,
    )
    if start is not None:
        start.load_into(module)
    return prepare_for_training(module, device)  # channels-last, CPU allocator tuning


def _persistence(td: TrainingData) -> Any:
    """The registered persistence baseline for the run's windows."""
    return create_model(
        "persistence",
        in_steps=len(td.input_offsets),
        out_steps=len(td.target_offsets),
        channels=len(td.channels),
        grid_shape=td.grid,
    )


def _hooks(augment: Any, callbacks: Sequence[Callback] | None, progress: Any) -> CallbackList:
    """The run's callbacks: the augmentation, the caller's, then the progress bar."""
    hooks = [augmentation(augment), *(callbacks or ()), ProgressBar(progress)]
    return CallbackList([h for h in hooks if h is not None])


def _prepare(data: Any, cfg: TrainConfig, start: Init | None) -> tuple[Any, TrainConfig]:
    """:func:`prepare_data`; when fine-tuning, with the initial model's normaliser."""
    try:
        td, cfg = prepare_data(data, cfg, None if start is None else start.normalizer())
    except UnknownNameError as err:
        if start is None or "unknown variable" not in str(err):
            raise
        raise start.missing_variables(err) from None
    if start is not None:
        start.check_channels(td.channels)
    return td, cfg


def _steps_per_epoch(n_batches: int, cfg: TrainConfig) -> int:
    n = n_batches if cfg.max_steps_per_epoch is None else min(n_batches, cfg.max_steps_per_epoch)
    if n < 1:
        raise DataValidationError(
            "no training batch: give more training data or a smaller batch_size"
        )
    return n


def _train_seeds(
    seeds: Sequence[int], args: dict[str, Any], model_kwargs: Mapping[str, Any]
) -> TrainedModel:
    """``train(..., seeds=...)``: one run per seed, combined into a seed ensemble."""
    seeds = list(seeds) if not isinstance(seeds, (str, bytes)) else [seeds]
    if len(seeds) < 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise DataValidationError(
            f"seeds must be two or more integers (one model per seed), got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise DataValidationError(
            f"seeds must differ (the same seed trains the same model), got {seeds!r}"
        )
    if args["seed"] != 0:
        raise DataValidationError(f"give seed={args['seed']!r} or seeds={seeds!r}, not both")
    if args["calibration"] is not None:
        raise DataValidationError(
            "calibration is fitted to one trained model's forecasts; train the seed ensemble "
            "without calibration"
        )
    ckdir = args.pop("checkpoint_dir")
    members = []
    for s in seeds:
        ck = None if ckdir is None else Path(ckdir) / f"seed-{s}"
        members.append(train(**{**args, "seed": s}, checkpoint_dir=ck, **model_kwargs))
    return ensemble(members)


def _artefact(
    module: Any,
    state: TrainState,
    td: TrainingData,
    hyperparameters: Mapping[str, Any],
    baseline_scores: Mapping[str, Any],
) -> TrainedModel:
    """The trained model with its spec (settings, data, best and persistence scores)."""
    metrics = {f"val_{k}": v for k, v in state.best_result.items()}
    metrics.update({f"persistence_val_{k}": v for k, v in baseline_scores.items()})
    metrics["best_epoch"] = state.best_epoch
    metrics["early_stopped"] = bool(state.stop)
    n_in, out_off = len(td.input_offsets), td.target_offsets
    spec = ModelSpec(
        model=state.config.model,
        in_steps=n_in,
        out_steps=len(out_off),
        variables=td.variables,
        channels=td.channels,
        time_step=td.time_step,
        grid_shape=td.grid,
        spatial_dims=td.spatial_dims,
        hyperparameters=json.loads(json.dumps(dict(hyperparameters), default=str)),
        normalization=td.normalizer.to_dict(),
        units=td.units,
        input_offsets=None if td.input_offsets == list(range(-n_in + 1, 1)) else td.input_offsets,
        target_offsets=None if out_off == list(range(1, len(out_off) + 1)) else out_off,
        extra={
            "data_fingerprint": td.fingerprint,
            "catalog": td.catalog,
            **({"grid_corners": corners} if (corners := _corners(td)) else {}),
            **({"events": ev} if (ev := summary_for_spec(td)) else {}),
            "metrics": metrics,
            "training": state.config.to_dict(),
            "history": state.history,
        },
        features=_features_spec(td),
    )
    module.eval()
    # hand back the standard layout, the one load_model() rebuilds (same results bit for bit)
    module.to(memory_format=torch.contiguous_format)
    return TrainedModel(module, spec, history=state.history)


def _corners(td: Any) -> dict[str, list[float]] | None:
    """Where the training grid lies (a single grid with lat/lon; multi-event data: None)."""
    frames = getattr(td, "frames", None)
    return None if frames is None else grid_corners(frames)


def _calibration(
    module: Any,
    loader: Any,
    td: TrainingData,
    cfg: TrainConfig,
    device: torch.device,
    dist: Distributed | None,
) -> dict[str, Any]:
    """Quantile maps of the trained model's forecasts on the training split (see ``train``)."""
    sample = QuantileSample(per_batch=65536, seed=cfg.seed)
    features = getattr(td, "time_features", None) is not None
    for pred, obs in predictions(module, loader, td.normalizer, cfg, device, features, 64):
        sample.add(pred, obs)
    qm = sample.quantile_mapping(td.target_offsets)
    if dist is not None:  # the mean of the ranks' quantile functions
        for a in (qm.forecast, qm.observed):
            t = torch.from_numpy(a).to(device)
            dist.all_reduce(t)
            a[...] = (t / dist.world).cpu().numpy()
    module.eval()
    return qm.to_dict()


def _features_spec(td: Any) -> dict[str, Any] | None:
    """``ModelSpec.features`` of the run: the time-feature settings, if the model takes them."""
    tf = getattr(td, "time_features", None)
    if tf is None:
        return None
    ext = getattr(td, "external", None)
    return {"time": tf.to_dict(), **({"variables": ext.to_dict()} if ext else {})}


def _with_feature_size(td: Any, cfg: TrainConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The model keywords with ``n_features``: F calendar features per predicted frame."""
    tf = getattr(td, "time_features", None)
    if tf is None:
        return kwargs
    ext = getattr(td, "external", None)
    per_frame = tf.size + (ext.size if ext is not None else 0)
    n = per_frame * len(td.target_offsets)
    given = kwargs.get("n_features")
    if given is not None and given != n:
        raise DataValidationError(
            f"n_features={given!r} does not match the run's features ({per_frame} features "
            f"x {len(td.target_offsets)} predicted frames = {n}); leave it out"
        )
    return {**kwargs, "n_features": n}


def _checked_checkpoint_dir(checkpoint_dir: Any, data: Any) -> Path | None:
    """``checkpoint_dir`` checked before any work: holding only what training writes there,
    outside the inputs, and no ``latest.json`` but stgeo's (a user's file is never replaced)."""
    if checkpoint_dir is None:
        return None
    ckdir = check_checkpoint_dir(checkpoint_dir, inputs=[data])
    check_latest(ckdir)
    return ckdir


def _finish(tm: TrainedModel, checkpoint_dir: Path | None, dist: Distributed | None) -> None:
    if checkpoint_dir is not None and (dist is None or dist.rank == 0):
        tm.save(checkpoint_dir / "model", overwrite=True)
    if dist is not None:
        dist.barrier()
        dist.close()


def _resume(
    ckdir: Path | None, resume: bool, record: Mapping[str, Any], state: TrainState, device: Any
) -> dict[str, Any] | None:
    """Continue ``state`` from the checkpoint in ``ckdir``; return the best weights so far."""
    if ckdir is None:
        return None
    if not resume:
        forget(ckdir)
        return None
    found = restore(ckdir, record, state.model, state.optimizer, state.scheduler, device)
    if found is None:
        return None
    progress, best = found
    state.load_progress(progress)
    return best


def _record(entry: Any, model_kwargs: Mapping[str, Any], td: Any, cfg: TrainConfig):
    """The run's hyperparameters (with the architecture's defaults) and what a checkpoint
    records of it (resume refuses another record)."""
    hp = {**entry.meta.get("defaults", {}), **model_kwargs}
    record = {"model": entry.name, "hyperparameters": hp, **td.describe(), **cfg.to_dict()}
    return hp, json.loads(json.dumps(record, default=str))


def train(
    data: xr.Dataset | xr.DataArray | str | os.PathLike | Sequence[Any],
    model: str | None = None,
    *,
    variable: str | Sequence[str] | None = None,
    in_steps: int | None = None,
    out_steps: int | None = None,
    input_offsets: Sequence[int] | None = None,
    splits: Mapping[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    schedule: str = "cosine",
    warmup: float | int = 0.05,
    clip_grad: float | None = 1.0,
    patience: int | None = None,
    val_metric: str = "mse",
    thresholds: Sequence[float] | None = None,
    loss: str = "mse",
    loss_weights: Sequence[float] | Mapping[float, float] | None = None,
    normalization: str | None = None,
    precision: str = "auto",
    device: str = "auto",
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool | None = None,
    max_steps_per_epoch: int | None = None,
    max_val_steps: int | None = None,
    augment: str | Mapping[str, Any] | Callable[..., Any] | None = None,
    callbacks: Sequence[Callback] | None = None,
    patch_size: int | tuple[int, int] | None = None,
    importance: bool | Mapping[str, Any] | Importance | None = None,
    time_step: str | None = None,
    step_tolerance: float = 0.25,
    allow_gaps: bool = False,
    min_out_steps: int | None = None,
    min_event_step: str | None = None,
    crops_per_window: int | str = 1,
    time_features: Mapping[str, Any] | None = None,
    calibration: str | None = None,
    seeds: Sequence[int] | None = None,
    init: TrainedModel | str | os.PathLike | None = None,
    **model_kwargs: Any,
) -> TrainedModel:
    """Train a registered forecasting model on gridded data; return the best model.

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray, str, path, or a list of them
        Canonical data (see :func:`stgeo.validate`), a catalog name / Zarr store path, a
        catalog **collection** name (``stgeo.data.list_collections()``, e.g.
        ``"radar-train"``), or a list of sources, each one event (Datasets, paths, catalog
        names). Events may differ in grid, length, projection and time step; windows never
        cross an event. Read lazily, a few chunks (or one crop) at a time.
    model : str, optional
        Registered architecture or variant (``stgeo.list_models()``), e.g. ``"simvp"``,
        ``"tau"``, ``"convlstm"``. Baselines (no trainable weights) are evaluated, not trained.
        Default: ``"simvp"``, or the architecture of ``init``.
    variable : str or list of str, optional
        Variables to model (default: all gridded variables).
    in_steps, out_steps : int
        Input frames and predicted frames of one forward pass (``out_steps`` is required).
        A model that declares its input window (``stresnet``: closeness, period = 1 day,
        trend = 1 week; :func:`stgeo.models.default_input_offsets`) needs neither
        ``in_steps`` nor ``input_offsets``.
    input_offsets : sequence of int, optional
        Non-contiguous inputs relative to the last input time, e.g. ``[-336, -48, -1, 0]``
        (closeness/period/trend for crowd flows); replaces ``in_steps``.
    splits : mapping, optional
        ``{"train": (start, end), "val": (start, end)}`` (inclusive times) or fractions
        ``{"train": 0.8, "val": 0.2}``. Default: the catalog's splits when the data came from
        a catalog (``attrs["stgeo_catalog"]``), else the last 10% of time for validation.
        Without ``"val"`` there is no early stopping and the last epoch is kept. Validation
        windows may take inputs from before the validation range; their targets lie in it.
    epochs, batch_size, lr, weight_decay : optional
        Epochs, windows per batch, AdamW learning rate and weight decay.
    schedule : {"cosine", "onecycle"}
        Learning-rate policy with linear (cosine: to ``lr``) or cosine (one-cycle: from
        ``lr/25``) warm-up, then cosine decay (to 0, one-cycle to ``lr/1e4``).
    warmup : float or int
        Warm-up length: a fraction of all steps (< 1) or a number of steps (>= 1).
    clip_grad : float or None
        Clip the global gradient norm (None: no clipping).
    patience : int, optional
        Stop after this many epochs without improvement of the validation metric.
    val_metric : {"mse", "csi"}
        Model selection: lowest MSE, or highest CSI-M (mean CSI over ``thresholds``), both in
        physical units. ``"csi"`` needs thresholds (given, or the catalog's).
    thresholds : sequence of float, optional
        Event thresholds (physical units) for CSI (one number: a list of one). Validation
        scores follow :mod:`stgeo.metrics`: event = value >= threshold, a pixel NaN in the
        forecast or the observation is excluded, a CSI with no event in either field is NaN
        and so is CSI-M then.
    loss : {"mse", "mae", "mse+mae"}
        Training loss on the normalised data (plus the auxiliary loss the model's registry
        entry declares, e.g. TAU's).
    loss_weights : sequence of float or mapping, optional
        Weight each pixel by its truth's intensity, in physical units: a list of thresholds
        (a pixel weighs the largest threshold it reaches, at least 1) or ``{threshold:
        weight}``. ``loss="mse+mae", loss_weights=[2, 5, 10, 30]`` on rain rates in mm/h is
        the B-MSE + B-MAE of Shi et al. (2017); it counters the blurring of heavy rain that
        a plain MSE rewards.
    normalization : {"standard", "log1p", "minmax", "none"}, optional
        Per-channel normalisation fitted on the training split only (see
        :class:`stgeo.data.Normalizer`; ``"log1p"`` suits rain rates and other skewed,
        non-negative variables, and refuses a training split that goes below 0). Default:
        ``"standard"``; with ``init``, the initial model's normaliser with its statistics
        (never re-fitted).
    precision : {"auto", "bf16", "fp32"}
        ``"auto"`` uses bf16 autocast where the device supports it.
    device : str
        ``"auto"`` (CUDA, MPS, CPU), ``"cpu"``, ``"cuda:1"``, ...
    seed : int
        Seeds weights, shuffling and dropout: a CPU run is reproducible.
    seeds : sequence of int, optional
        Train a **seed ensemble**: one model per seed (each exactly the run ``seed=s`` would
        be, checkpointed under ``checkpoint_dir/seed-<s>``), returned as one model that
        forecasts the mean of their outputs (:func:`stgeo.models.ensemble`;
        ``TrainedModel.members`` gives each back). Replaces ``seed``. The callbacks see
        every member's run in turn (a :class:`~stgeo.training.TimeLimit` budget applies to
        each member).
    checkpoint_dir : str or path, optional
        Write a checkpoint after every epoch (weights, optimizer, scheduler, RNG states,
        best weights, history; safetensors + JSON, atomically) and the final model to
        ``checkpoint_dir/model``. With ``resume=True`` an interrupted run continues from
        the last checkpoint; the settings must be the same (else a DataValidationError).
    resume : bool
        Continue from ``checkpoint_dir`` if it holds a checkpoint.
    progress : bool, optional
        Progress bar with loss and throughput (default: only on a terminal).
    max_steps_per_epoch, max_val_steps : int, optional
        Cap the batches per epoch / per validation (quick runs, smoke tests).
    augment : str, mapping or callable, optional
        Name of a registered augmentation (``stgeo.augment.list_augmentations()``, e.g.
        ``"nuwa"`` for NuwaDynamics), its settings as ``{"name": "nuwa", "k": 0.25, ...}``,
        or a callable applied to each normalised training batch: ``x, y = augment(x, y)``.
        It runs as the first callback. A trainable augmentation
        (:class:`stgeo.augment.TrainableAugmentation`, e.g.
        :class:`stgeo.augment.nuwa.NuwaAugment`) is fitted on the training batches before
        the first epoch, saved in ``checkpoint_dir/augment`` and reused on resume.
    callbacks : sequence of Callback, optional
        Hooks called at fit, epoch, batch and validation events, in order (see
        :class:`stgeo.training.Callback`).
    patch_size : int or (int, int), optional
        Train on crops of this size (an int: square) at random positions, seeded from
        ``(seed, epoch, window)`` (reproducible and resume-exact); validation uses fixed
        crops, the same whatever the seed (runs that differ only in their seed are compared
        on the same validation). Only the chunks a crop intersects are read. Needed when the
        events have different grids; must not exceed any event's grid.
    importance : bool, mapping or stgeo.data.Importance, optional
        Favour crops with signal: a candidate crop is accepted with probability
        ``floor + (1 - floor) * min(1, wet / saturation)``, ``wet`` its fraction of pixels
        ``>= threshold`` (physical units) over the window's targets (see
        :class:`stgeo.data.Importance`). ``True``: the first catalog threshold, floor 0.1.
    time_step : None, "per-event" or str
        Time-step policy for events of different steps: None requires one step up to
        ``step_tolerance``; a duration (``"10min"``) uses events whose step divides it,
        scaling window offsets (no resampling); ``"per-event"`` uses every event at its
        own step (one model step = one data step). A collection may set the default
        (``radar-train`` uses ``"per-event"``). The run's step is recorded in the spec.
    step_tolerance : float
        Relative tolerance of ``time_step=None`` (0.25: 5- and 6-min events mix).
    min_event_step : str, optional
        With ``time_step="per-event"``: an event whose step is shorter than this uses every
        ``k``-th frame, ``k`` the smallest integer with ``k * step >= min_event_step``
        (nothing is resampled: window offsets are scaled). With ``"5min"``, 2-min MRMS
        frames train the model at 6-min steps beside 5- and 10-min events, instead of a
        model step meaning 2 min on one event and 5 on the others.
    allow_gaps : bool
        Accept gaps inside an event's time axis (no window crosses one); by default a
        gap is refused, exactly as :func:`stgeo.validate` refuses it.
    min_out_steps : int, optional
        **Partial training windows** for short events: a training window needs only its
        first ``min_out_steps`` targets inside the event's training range; the later ones
        (past the end of the event or of its training range, or across a gap) are no-data
        and left out of the loss, like NaN pixels. A 13-frame radar composite then gives a
        4 -> 12 model windows with 2..9 targets instead of none. Validation windows stay
        complete. Uses the multi-event path (:mod:`stgeo.training.events`). Default: every
        target is needed.
    crops_per_window : int or "area"
        With ``patch_size``: crops drawn from every training window per epoch, each at its
        own position. ``"area"``: as many as the event's grid holds patches
        (:func:`stgeo.data.crops_per_window`), so crops are drawn uniformly over space and
        time and a continental composite with few frames weighs by its area rather than by
        its handful of windows. Default 1.
    time_features : mapping, optional
        For models that take calendar features of the predicted times (``stresnet``;
        :func:`stgeo.models.wants_time_features`): the settings of
        :class:`stgeo.data.TimeFeatures`, e.g. ``{"holidays": "US", "subdiv": "NY"}``.
        Default: the catalog entry's ``time_features`` (BikeNYC: US/NY, TaxiBJ: CN), else
        no holiday flag. ``"variables": ["temperature", "wind_speed"]`` adds external
        variables of the data (dims ``time`` and no spatial one, standardised with the
        training split's statistics) at the predicted times; forecasts then need them at
        their valid times. The training and validation batches carry the features, the
        model's spec records the settings and every forecast computes them the same way.
    calibration : {None, "quantile"}
        Post-process the forecasts of the trained model: ``"quantile"`` fits, on the
        training split (the best weights' forecasts of up to 64 batches, in their loader's
        order; 65536 pixels per lead and channel per batch), one monotone map per lead and
        channel from the forecasts' quantiles to the observations' quantiles
        (:class:`stgeo.models.QuantileMapping`), stored in the spec and applied by every
        forecast. It corrects a systematic frequency bias (a pixel loss shrinks the rain
        area at long leads) without moving rain. The validation scores in ``metrics`` are
        those of the raw model. With several ranks, each fits on its shard and the
        quantiles are averaged.
    init : TrainedModel, str or path, optional
        **Fine-tune**: start from the weights of a trained model (a ``TrainedModel``, a
        saved model folder, or a pretrained model's name such as ``"radar-nowcaster"``)
        instead of random ones (see :mod:`stgeo.training.init`). Its architecture,
        hyperparameters, windows, variables and normaliser are used (given explicitly, they
        must agree with it); the run's own settings (epochs, ``lr``, loss, crops, splits,
        seeds, calibration) are yours. The result records its start in
        ``spec.extra["training"]["init"]``.
    **model_kwargs
        Hyperparameters of the architecture (e.g. ``hid_S=16``).

    Returns
    -------
    TrainedModel
        The model with the best validation score (weights on the training device), its
        spec (normaliser, variables, grid, time step, data fingerprint, metrics, settings)
        and the per-epoch history. ``model.metrics`` holds the best validation scores and
        those of persistence on the same windows.

    Raises
    ------
    DataValidationError
        Invalid data, splits or settings; too few time steps for one window; infinite
        values or all-NaN targets in a training batch; a checkpoint written with different
        settings; events of different grids without ``patch_size``, a patch larger than an
        event, events whose time steps do not fit ``time_step``; ``seeds`` with
        ``calibration`` or with a ``seed`` other than 0.
    UnknownNameError
        Unknown model, variable or augmentation name.

    Notes
    -----
    **No-data.** NaN in the data is no-data (radar recipes write NaN outside range):
    target pixels that are NaN are left out of the loss (a masked mean over the valid
    pixels, for every loss and the pixel weights) and out of the validation scores; NaN
    inputs are replaced by the normalised value of physical 0 (dry/empty for
    precipitation-like data).

    Multi-GPU training uses torch.distributed: start the same command under
    ``torchrun --nproc_per_node=N -m stgeo.cli train ...`` (or any script calling
    ``stgeo.train``). Each rank trains on its own shard of the windows, gradients are
    averaged by ``DistributedDataParallel``, validation counts are summed across ranks and
    only rank 0 writes checkpoints and the model.

    Examples
    --------
    >>> import stgeo
    >>> ds = stgeo.testing.storm_cells(n_times=48, shape=(16, 16), seed=0)
    >>> m = stgeo.train(ds, model="persistence", in_steps=1, out_steps=3, progress=False)
    >>> round(m.metrics["val_mse"], 6) == round(m.metrics["persistence_val_mse"], 6)
    True
    """
    if seeds is not None:
        args = dict(locals())
        del args["seeds"], args["model_kwargs"]
        return _train_seeds(seeds, args, model_kwargs)
    start = None if init is None else resolve_init(init)
    if start is not None:  # fine-tuning: the model's arguments are the initial model's
        args = start.arguments(locals())
        model, in_steps, out_steps, input_offsets, normalization, variable, time_features = args
        model_kwargs = dict(start.model.spec.hyperparameters)
    cfg = TrainConfig(
        model=model or "simvp",
        variable=variable,
        in_steps=in_steps,
        out_steps=out_steps,
        input_offsets=input_offsets,
        splits=splits,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        warmup=warmup,
        clip_grad=clip_grad,
        patience=patience,
        val_metric=val_metric,
        thresholds=thresholds,
        loss=loss,
        loss_weights=loss_weights,
        normalization=normalization or "standard",
        precision=precision,
        seed=seed,
        max_steps_per_epoch=max_steps_per_epoch,
        max_val_steps=max_val_steps,
        augment=augment,
        hyperparameters=model_kwargs,
        patch_size=patch_size,
        importance=importance,
        time_step=time_step,
        step_tolerance=step_tolerance,
        allow_gaps=allow_gaps,
        min_out_steps=min_out_steps,
        min_event_step=min_event_step,
        crops_per_window=crops_per_window,
        time_features=time_features,
        calibration=calibration,
        init=None if start is None else start.record(),
    )
    cbs = _hooks(augment, callbacks, progress)
    ckdir = _checked_checkpoint_dir(checkpoint_dir, data)
    entry = MODELS.entry(cfg.model)
    td, cfg = _prepare(data, cfg.resolved(model=entry.name), start)
    model_kwargs = _with_feature_size(td, cfg, model_kwargs)
    cfg = cfg.resolved(hyperparameters=model_kwargs)
    dev = resolve_device(device)
    cfg = cfg.resolved(precision_used=resolve_precision(dev, cfg.precision))
    dist = maybe_distributed(dev)
    if dist is not None:
        dev, td = dist.device, td.shard(dist.rank, dist.world)
        cfg = cfg.resolved(world_size=dist.world)
    _seed(cfg.seed)
    module = _build(entry.name, td, cfg, dev, start)
    params = [p for p in module.parameters() if p.requires_grad]
    train_loader, val_loader = td.loaders(cfg)
    state = TrainState(
        config=cfg,
        model=module,
        steps_per_epoch=_steps_per_epoch(len(train_loader), cfg),
        rank=0 if dist is None else dist.rank,
        world_size=cfg.world_size,
        train_loader=train_loader,
        checkpoint_dir=ckdir,
    )
    hp, record = _record(entry, model_kwargs, td, cfg)
    scoring = (val_loader, td.normalizer, cfg, dev, dist)
    base = evaluate(_persistence(td).to(dev), *scoring)
    if not params:  # a baseline: nothing to optimise, just score it
        state.best_result = evaluate(module, *scoring)
    else:
        state.optimizer = make_optimizer(params, cfg.lr, cfg.weight_decay)
        state.scheduler = make_scheduler(state.optimizer, cfg, state.steps_per_epoch)
        Loop(
            state=state,
            net=module if dist is None else dist.wrap(module),
            train_loader=train_loader,
            val_loader=val_loader,
            normalizer=td.normalizer,
            device=dev,
            callbacks=cbs,
            dist=dist,
            aux_loss=aux_loss_of(entry.name),
            checkpoint_dir=ckdir,
            record=record,
            best_weights=_resume(ckdir, resume, record, state, dev),
            features=getattr(td, "time_features", None) is not None,
        ).fit()
    tm = _artefact(module, state, td, hp, base)
    if cfg.calibration is not None:
        tm.spec.calibration = _calibration(module, train_loader, td, cfg, dev, dist)
    _finish(tm, ckdir, dist)
    return tm

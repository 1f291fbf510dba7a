"""The numerical core: numpy input windows -> numpy forecasts, and the batch job that runs it.

:func:`forecast_array` is a pure function (no xarray, no I/O), so the same code runs in the
calling process and chunk by chunk on Dask workers; :class:`_ForecastJob` is what both call
per batch of windows.

Examples
--------
>>> import numpy as np
>>> from stgeo.models import ModelSpec
>>> spec = ModelSpec("persistence", 1, 1, ["v"], ["v"], "1h")
>>> forecast_array(spec.build(), spec, np.ones((2, 1, 1, 3, 3), "float32"), 2).shape
(2, 2, 1, 3, 3)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataValidationError, StgeoTypeError
from ..models.base import ModelSpec
from .tiles import Tiling

__all__ = ["external_table", "forecast_array", "rollout_offsets"]


def _spec_offsets(spec: ModelSpec) -> tuple[list[int], list[int]]:
    inp = list(spec.input_offsets) if spec.input_offsets else list(range(-spec.in_steps + 1, 1))
    out = list(spec.target_offsets) if spec.target_offsets else list(range(1, spec.out_steps + 1))
    return [int(o) for o in inp], [int(o) for o in out]


def _is_contiguous(out_offsets: list[int]) -> bool:
    return out_offsets == list(range(1, len(out_offsets) + 1))


def _leads(lead_steps: int | Sequence[int]) -> Sequence[int]:
    """The leads (time steps) of ``lead_steps``: ``N`` -> ``range(1, N + 1)``, or a checked
    list. ``N`` stays a range (no list of N numbers): it may be huge until the memory check
    (:func:`_check_fits_memory`) has refused it."""
    if isinstance(lead_steps, (int, np.integer)) and not isinstance(lead_steps, bool):
        if lead_steps < 1:
            raise DataValidationError(f"lead_steps must be >= 1, got {lead_steps}")
        return range(1, int(lead_steps) + 1)
    if isinstance(lead_steps, range) and len(lead_steps) and lead_steps.step > 0:
        if lead_steps.start < 1:
            raise DataValidationError(f"lead_steps must be positive, got {lead_steps}")
        return lead_steps  # increasing, without repeats
    try:
        if isinstance(lead_steps, (str, bytes)) or any(
            isinstance(v, (bool, str, bytes)) or int(v) != v
            for v in lead_steps  # type: ignore[union-attr]
        ):
            raise TypeError  # "12" is not leads 1 and 2; True is not 1; 1.5 is not a lead
        leads = [int(v) for v in lead_steps]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise StgeoTypeError(
            f"lead_steps must be an int (1..N) or a list of positive ints, got {lead_steps!r}"
        ) from None
    if not leads or min(leads) < 1 or sorted(set(leads)) != leads:
        raise DataValidationError(
            f"lead_steps must be increasing positive integers without repeats, got {leads}"
        )
    return leads


def rollout_offsets(spec: ModelSpec, lead_steps: int | Sequence[int]) -> list[int]:
    """Offsets (<= 0, relative to ``t0``) of the observed frames a forecast to ``lead_steps`` needs.

    For a contiguous model (``in_steps`` consecutive inputs) this is just its input window;
    with non-contiguous inputs (e.g. period/trend offsets) rolling out further needs more
    history.

    Examples
    --------
    >>> from stgeo.models import ModelSpec
    >>> s = ModelSpec("m", 2, 1, ["v"], ["v"], "1h", input_offsets=[-24, 0])
    >>> rollout_offsets(s, 3)
    [-24, -23, -22, 0]
    """
    leads = _leads(lead_steps)
    inp, out = _spec_offsets(spec)
    if not _is_contiguous(out):
        return inp
    n_out = len(out)
    chunks = -(-leads[-1] // n_out)
    # pass k reads offsets k * n_out + o; only the passes that still read observed frames
    # (offset <= 0) count: O(history), whatever the lead
    observed = min(chunks, -min(inp) // n_out + 1)
    need = {k * n_out + o for k in range(observed) for o in inp}
    return sorted(o for o in need if o <= 0)


_FLOAT32 = 4


def _cgroup_free() -> int | None:
    """Memory left under this process's cgroup (v2) limit, if it has one."""
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read().strip())
    except (OSError, ValueError):
        return None
    return int(limit) - used if limit.isdigit() else None


def _available_memory() -> int | None:
    """Bytes of memory this process can still use (None: unknown; nothing is refused).

    psutil's estimate if installed, else the kernel's ``MemAvailable`` (Linux) or the free
    physical pages (other POSIX systems); never more than a cgroup limit leaves.
    """
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                line = next(x for x in f if x.startswith("MemAvailable:"))
            avail = int(line.split()[1]) * 1024
        except (OSError, StopIteration, ValueError, IndexError):
            try:
                avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (AttributeError, OSError, ValueError):
                avail = None
    capped = _cgroup_free()
    if capped is not None:
        avail = capped if avail is None else min(avail, capped)
    return avail


def _gib(nbytes: float) -> str:
    return f"{nbytes / 1024**3:.1f} GiB"


def _check_fits_memory(nbytes: int, what: str, fix: str) -> None:
    """Raise DataValidationError when ``nbytes`` exceed the memory available now (a clear
    error instead of the process being killed by the system, taking others with it)."""
    avail = _available_memory()
    if avail is not None and nbytes > avail:
        raise DataValidationError(
            f"{what} would take {_gib(nbytes)} of memory, more than the {_gib(avail)} "
            f"available; {fix}"
        )


def _batch_bytes(batch: int, n_leads: int, spec: ModelSpec, frame: Sequence[int]) -> int:
    """Peak bytes of forecasting one batch: its ``n_leads`` leads plus the frames a rollout
    keeps (inputs and one pass), as model input, output and numpy result (about twice).

    Examples
    --------
    >>> from stgeo.models import ModelSpec
    >>> spec = ModelSpec("persistence", 1, 1, ["v"], ["v"], "1h")
    >>> _batch_bytes(8, 12, spec, (1, 100, 100))
    8960000
    """
    history = -min(spec.input_offsets) + 1 if spec.input_offsets else spec.in_steps
    n_out = len(spec.target_offsets) if spec.target_offsets else spec.out_steps  # no list
    return 2 * batch * (n_leads + n_out + history) * int(np.prod(frame)) * _FLOAT32


def _checked_inputs(inputs: Any, hist_off: list[int], spec: ModelSpec) -> np.ndarray:
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim != 5 or x.shape[1] != len(hist_off):
        raise DataValidationError(
            f"inputs must be (B, {len(hist_off)}, C, H, W) for input offsets {hist_off}, "
            f"got shape {x.shape}"
        )
    if len(spec.channels) and x.shape[2] != len(spec.channels):
        raise DataValidationError(
            f"inputs have {x.shape[2]} channels, the model expects {len(spec.channels)} "
            f"({spec.channels})"
        )
    return x


class _Features:
    """The calendar features of each pass of a forecast, for a model that takes them.

    Pass ``k`` of a rollout predicts the offsets ``k * n_out + out_off``; its features are
    those of these valid times (``init_times + offset * step``), as in training.
    """

    def __init__(
        self, spec: ModelSpec, init_times: Any, step: Any, device: Any, table: Any = None
    ) -> None:
        import pandas as pd

        from ..data import ExternalVariables, TimeFeatures

        if init_times is None or step is None:
            raise DataValidationError(
                f"model {spec.model!r} takes calendar features of the predicted times: give "
                "forecast_array init_times= (the t0 of each window) and time_step="
            )
        feats = spec.features or {}
        self.tf = TimeFeatures.from_dict(feats.get("time"))
        self.ext = None
        if feats.get("variables"):
            self.ext = ExternalVariables.from_dict(feats["variables"])
            if table is None:
                raise DataValidationError(
                    f"model {spec.model!r} takes the external variables "
                    f"{list(self.ext.names)}: give forecast_array external_table="
                    "ExternalVariables.table(data)"
                )
        self.table = table
        self.t0 = pd.DatetimeIndex(np.asarray(init_times).ravel()).values
        self.step = pd.Timedelta(step).to_timedelta64()
        self.device = device

    def __call__(self, offsets: list[int]) -> Any:
        import torch

        from ..data.timefeatures import feature_rows

        off = np.asarray(offsets, dtype=np.int64)
        times = self.t0[:, None] + (off * self.step)[None, :]
        f = feature_rows(times, self.tf, self.ext, self.table)
        return torch.from_numpy(f).to(self.device)


def _takes_features(spec: ModelSpec) -> bool:
    return bool(spec.features and spec.features.get("time") is not None)


def external_table(spec: ModelSpec, data: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The external variables a model takes, read from ``data`` (None if it takes none).

    Examples
    --------
    >>> from stgeo.models import ModelSpec
    >>> external_table(ModelSpec("persistence", 1, 1, ["v"], ["v"], "1h"), None) is None
    True
    """
    feats = spec.features or {}
    if not feats.get("variables"):
        return None
    from ..data import ExternalVariables

    return ExternalVariables.from_dict(feats["variables"]).table(data)


class _Runner:
    """One checked forward pass: ``(B, T_in, C, H, W)`` -> ``(B, n_out, C, H, W)`` on ``device``,
    on the whole grid or tile by tile (``tiling``); ``features`` (a :class:`_Features`) gives
    the extra input of each pass of a model that takes calendar features."""

    def __init__(
        self,
        model: Any,
        precision: str | None,
        n_out: int,
        device: Any,
        tiling: Any = None,
        features: _Features | None = None,
    ) -> None:
        self.model = model
        self.precision = precision
        self.n_out = n_out
        self.device = device
        self.tiling = tiling
        self.features = features

    def __call__(self, inp: Any, offsets: list[int] | None = None) -> Any:
        fn = self._checked
        if self.features is not None:
            fn = functools.partial(self._checked, features=self.features(offsets))
        if self.tiling is None:
            return fn(inp)
        if self.features is not None and len(self.tiling.plan(tuple(inp.shape[-2:]))) > 1:
            raise DataValidationError(
                "a model that takes calendar features runs on the whole grid, not in tiles; "
                "forecast with tiling='off'"
            )
        return self.tiling.apply(fn, inp).to(self.device)

    def _checked(self, inp: Any, features: Any = None) -> Any:
        from ..models.runtime import predict

        y = predict(self.model, inp, self.precision, features=features)
        if y.ndim != 5 or y.shape[0] != inp.shape[0] or y.shape[2:] != inp.shape[2:]:
            raise DataValidationError(
                f"the model returned shape {tuple(y.shape)} for input {tuple(inp.shape)}; "
                "a forecaster must map (B, T_in, C, H, W) to (B, T_out, C, H, W)"
            )
        if y.shape[1] != self.n_out:
            raise DataValidationError(
                f"the model returned {y.shape[1]} frames, its spec says out_steps={self.n_out}"
            )
        return y.to(self.device)


def _direct(run: _Runner, hist: dict[int, Any], inp_off: list[int], out_off: list[int]) -> dict:
    """Predictions of a model with non-contiguous outputs: one pass, no rollout."""
    import torch

    missing = [o for o in inp_off if o not in hist]
    if missing:
        raise DataValidationError(f"inputs lack the offsets {missing} the model needs")
    y = run(torch.stack([hist[o] for o in inp_off], 1), out_off)
    return {o: y[:, i] for i, o in enumerate(out_off)}


def _rollout(
    run: _Runner, hist: dict[int, Any], inp_off: list[int], leads: Sequence[int]
) -> dict[int, Any]:
    """Predictions at ``leads``, feeding predictions back in chunks of ``run.n_out``. Only
    the asked leads are kept, and the predictions a later pass still reads: a far lead
    needs no memory for every lead before it."""
    import torch

    n_out = run.n_out
    last_lead = leads[-1]
    wanted = leads if isinstance(leads, range) else set(leads)
    out: dict[int, Any] = {}
    recent: dict[int, Any] = {}  # predictions later passes read as inputs
    for k in range(-(-last_lead // n_out)):
        frames = []
        for o in inp_off:
            s = k * n_out + o
            if s > 0:
                frames.append(recent[s])
            elif s in hist:
                frames.append(hist[s])
            else:
                raise DataValidationError(
                    f"rolling out to lead {last_lead} needs the observed frame at offset "
                    f"{s}, which the inputs lack; pass input_offsets=rollout_offsets(...)"
                )
        y = run(torch.stack(frames, 1), [k * n_out + i + 1 for i in range(n_out)])
        for i in range(n_out):
            recent[k * n_out + i + 1] = y[:, i]
            if k * n_out + i + 1 in wanted:
                out[k * n_out + i + 1] = y[:, i]
        oldest = (k + 1) * n_out + min(inp_off)  # the oldest offset the next pass reads
        for s in [s for s in recent if s < oldest]:
            del recent[s]
    return out


def _normalizer(spec: ModelSpec, normalize: bool) -> Any:
    if not (normalize and spec.normalization):
        return None
    from ..data import Normalizer

    return Normalizer.from_dict(spec.normalization)


def forecast_array(
    model: Any,
    spec: ModelSpec,
    inputs: np.ndarray,
    lead_steps: int | Sequence[int],
    *,
    input_offsets: Sequence[int] | None = None,
    device: Any = None,
    precision: str | None = "auto",
    normalize: bool = True,
    tiling: Tiling | None = None,
    init_times: Any = None,
    time_step: Any = None,
    external_table: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Forecast from input windows: the pure numerical core of :func:`stgeo.forecast`.

    Parameters
    ----------
    model : torch.nn.Module
        A forecaster (plain, or prepared by ``stgeo.models.runtime.prepare_for_inference``).
    spec : ModelSpec
        Its spec (sizes, offsets, normalisation).
    inputs : numpy.ndarray
        ``(B, T_hist, C, H, W)`` observed frames in physical units at ``input_offsets``
        relative to each ``t0``.
    lead_steps : int or sequence of int
        ``N`` (leads 1..N) or explicit leads in time steps. Beyond the model's ``out_steps``
        predictions are fed back in chunks of ``out_steps`` (autoregressive rollout).
    input_offsets : sequence of int, optional
        Offsets of the ``T_hist`` input frames; default the model's own input offsets
        (use :func:`rollout_offsets` for non-contiguous inputs and long rollouts).
    device : str or torch.device, optional
        Where to compute (default: the module's device).
    precision : {"auto", "bf16", "fp32"} or None
        Autocast precision for a plain module; None for a prepared one.
    normalize : bool
        Apply the spec's normaliser to the inputs and its inverse to the outputs, then the
        spec's calibration if it has one (``spec.calibration``: quantile maps per lead,
        :class:`stgeo.models.QuantileMapping`).
    tiling : Tiling, optional
        Apply the model padded to a multiple and/or tile by tile with blended overlaps
        (:class:`stgeo.forecasting.Tiling`); default: the whole grid as given.
    init_times : array-like of datetime64, optional
        The ``t0`` of each window; with ``time_step``, needed by a model that takes
        calendar features (``spec.features``, e.g. ``stresnet``): each forward pass gets
        the features of the times it predicts, computed with the spec's settings.
    time_step : str or pandas.Timedelta, optional
        The data's time step (see ``init_times``).
    external_table : (times, values), optional
        The external variables of a model that takes them (``spec.features["variables"]``),
        as :func:`external_table` reads them from the data; needed at every predicted time.

    Returns
    -------
    numpy.ndarray
        ``(B, len(leads), C, H, W)`` float32 in physical units. NaN in the inputs is no
        data: the model sees the normalised value of physical 0 there
        (:func:`stgeo.data.fill_nodata`) and the forecast is NaN, for every lead and
        channel, at each pixel where any input frame (any channel) of that window is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from stgeo.models import ModelSpec
    >>> spec = ModelSpec("persistence", 1, 2, ["v"], ["v"], "1h")
    >>> x = np.arange(4, dtype="float32").reshape(4, 1, 1, 1, 1)
    >>> forecast_array(spec.build(), spec, x, 5).shape
    (4, 5, 1, 1, 1)
    """
    import torch

    leads = _leads(lead_steps)
    inp_off, out_off = _spec_offsets(spec)
    hist_off = [int(o) for o in (input_offsets if input_offsets is not None else inp_off)]
    x = _checked_inputs(inputs, hist_off, spec)
    contiguous = _is_contiguous(out_off)
    if not contiguous and (leads[-1] > max(out_off) or not set(leads) <= set(out_off)):
        missing = [v for v in leads[:20] if v not in out_off] or [leads[-1]]
        raise DataValidationError(
            f"this model predicts only the offsets {out_off}; it cannot roll out to leads "
            f"{missing}{' ...' if len(leads) > 20 else ''}"
        )
    _check_fits_memory(
        _batch_bytes(x.shape[0], len(leads), spec, x.shape[2:]),
        f"forecasting {x.shape[0]} windows to {len(leads)} leads",
        "ask for fewer lead steps (a list of leads keeps only those) or fewer windows at once",
    )
    normalizer = _normalizer(spec, normalize)
    nodata = np.isnan(x).any(axis=(1, 2))  # (B, H, W): no data in some input frame
    t = torch.from_numpy(x)
    if device is not None:
        t = t.to(device)
    if normalizer is not None:
        t = normalizer.transform(t)
    if nodata.any():
        from ..data import fill_nodata

        t = fill_nodata(t, normalizer)
    hist = {o: t[:, i] for i, o in enumerate(hist_off)}
    feats = None
    if _takes_features(spec):
        feats = _Features(spec, init_times, time_step, t.device, external_table)
    run = _Runner(model, precision, len(out_off), t.device, tiling, feats)
    if contiguous:
        preds = _rollout(run, hist, inp_off, leads)
    else:
        preds = _direct(run, hist, inp_off, out_off)
    out = torch.stack([preds[v] for v in leads], 1)
    if normalizer is not None:
        out = normalizer.inverse(out)
    if normalize and spec.calibration:
        from ..models import QuantileMapping

        out = QuantileMapping.from_dict(spec.calibration).apply(out.float(), leads)
    res = out.float().cpu().numpy()
    if nodata.any():
        res[np.broadcast_to(nodata[:, None, None], res.shape)] = np.nan
    return res


class _ForecastJob:
    """Everything needed to forecast a block of windows: called per batch in process, and per
    chunk on Dask workers (pickled once per worker)."""

    def __init__(self, module, spec, windows, leads, offsets, batch_size, device, tiling=None):
        from ..conventions import time_step

        self.tiling = tiling
        self.step = time_step(windows.frames) if _takes_features(spec) else None
        self.external = None  # (times, values) of the external variables (see api.forecast)
        self.module = module
        self.spec = spec
        self.windows = windows
        self.leads = leads if isinstance(leads, range) else list(leads)
        self.offsets = list(offsets)
        self.batch_size = int(batch_size)
        self.device = device

    def batch(self, idx: np.ndarray) -> np.ndarray:
        """Forecasts of the windows ``idx`` (one forward pass per ``out_steps`` of leads)."""
        return forecast_array(
            self.module,
            self.spec,
            self.windows.inputs(idx),
            self.leads,
            input_offsets=self.offsets,
            device=self.device,
            precision=None,
            tiling=self.tiling,
            init_times=self.windows.init_times[idx] if self.step is not None else None,
            time_step=self.step,
            external_table=self.external,
        )

    def __call__(self, start: int, stop: int) -> np.ndarray:
        _match_worker_threads()
        bs = self.batch_size
        return np.concatenate(
            [self.batch(np.arange(s, min(s + bs, stop))) for s in range(start, stop, bs)]
        )


def _match_worker_threads() -> None:
    """On a Dask ``distributed`` worker, let torch use that worker's threads, not every core
    of the machine (several workers on one machine would otherwise oversubscribe it)."""
    try:
        from distributed import get_worker

        n = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _prepared_job(
    module: Any,
    spec: ModelSpec,
    windows: Any,
    leads: list[int],
    offsets: list[int],
    batch_size: int,
    device: str,
    precision: str,
    tiling: Tiling | None = None,
) -> _ForecastJob:
    """The batch job with the module prepared for inference on the resolved device."""
    from ..models.runtime import prepare_for_inference, resolve_precision
    from ..options import resolve_device

    dev = resolve_device(device)
    prec = resolve_precision(dev, precision)
    if not any(True for _ in module.parameters()):
        prec = "fp32"  # baselines: nothing to accelerate, keep the values exact
    fast = prepare_for_inference(module, dev, prec)
    return _ForecastJob(fast, spec, windows, leads, offsets, batch_size, dev, tiling)

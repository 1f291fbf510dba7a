"""Device and precision plumbing shared by training and inference.

* :func:`resolve_precision` decides between ``"bf16"`` and ``"fp32"``: ``"auto"`` picks bf16
  on CUDA devices that support it and on CPUs with native bf16 arithmetic (AVX-512 BF16 or
  AMX), fp32 elsewhere (MPS included).
* :func:`autocast` is the mixed-precision context for training and evaluation.
* :func:`prepare_for_inference` returns an inference copy of a model: eval mode, batch norms
  and layer scales folded into convolutions (blocks with ``fuse_for_inference``),
  channels-last weights, bf16 weights when the precision is bf16, optionally
  ``torch.compile``.
* :func:`predict` runs a model without autograd and returns float32.

Only CPU is exercised by stgeo's tests; the CUDA paths use the same public torch APIs.

Examples
--------
>>> import torch, stgeo
>>> from stgeo.models import runtime
>>> m = stgeo.create_model("simvp", in_steps=2, out_steps=2, hid_S=4, hid_T=8, N_T=2)
>>> fast = runtime.prepare_for_inference(m, "cpu", precision="fp32")
>>> x = torch.randn(1, 2, 1, 8, 8)
>>> bool(torch.allclose(runtime.predict(fast, x), runtime.predict(m, x, precision="fp32"),
...                     atol=1e-5))
True
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..errors import DataValidationError, StgeoTypeError
from ..options import get_options, resolve_device

__all__ = [
    "autocast",
    "cpu_supports_bf16",
    "fuse_for_inference",
    "predict",
    "prepare_for_inference",
    "prepare_for_training",
    "resolve_precision",
    "tune_cpu_allocator",
]

_PRECISIONS = ("auto", "bf16", "fp32", "off")


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX-BF16) usable by torch.

    Examples
    --------
    >>> isinstance(cpu_supports_bf16(), bool)
    True
    """
    if not torch.backends.mkldnn.is_available():
        return False
    cap = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "BF16" in cap or "AMX" in cap:
        return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _device(device: Any) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device is None or isinstance(device, str):
        return resolve_device(device)
    raise StgeoTypeError(f"device must be a string or torch.device, got {device!r}")


def resolve_precision(device: Any = None, precision: str | None = None) -> str:
    """``"bf16"`` or ``"fp32"`` for ``precision`` on ``device``.

    Parameters
    ----------
    device : str or torch.device, optional
        Default: the ``device`` option.
    precision : {"auto", "bf16", "fp32", "off"}, optional
        Default: the ``autocast`` option. ``"off"`` is the same as ``"fp32"``; ``"auto"``
        means bf16 where the device computes it natively.

    Examples
    --------
    >>> resolve_precision("cpu", "fp32")
    'fp32'
    >>> resolve_precision("cpu", "auto") in ("bf16", "fp32")
    True
    """
    if precision is None:
        precision = get_options()["autocast"]
    if precision not in _PRECISIONS:
        raise DataValidationError(
            f"precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}"
        )
    if precision in ("fp32", "off"):
        return "fp32"
    if precision == "bf16":
        return "bf16"
    dev = _device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if dev.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


@contextlib.contextmanager
def autocast(device: Any = None, precision: str | None = "auto") -> Iterator[str]:
    """Mixed-precision context: bf16 autocast when :func:`resolve_precision` says bf16.

    Yields the resolved precision (``"bf16"`` or ``"fp32"``).

    Examples
    --------
    >>> import torch
    >>> with autocast("cpu", "bf16") as prec:
    ...     y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    >>> prec, y.dtype
    ('bf16', torch.bfloat16)
    >>> with autocast("cpu", "fp32"):
    ...     torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype
    torch.float32
    """
    dev = _device(device)
    prec = resolve_precision(dev, precision)
    if prec == "bf16" and dev.type in ("cpu", "cuda", "mps"):
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            yield prec
    else:
        yield prec


@functools.lru_cache(maxsize=1)
def tune_cpu_allocator() -> bool:
    """Keep freed large blocks in the C heap so repeated passes do not page-fault (glibc).

    glibc serves large allocations (above 128 KiB, adaptively up to 32 MiB) with ``mmap``
    and returns them to the system on free, so every forward/backward pass of a
    convolutional network page-faults its activations in again (measured here: ~200k
    faults and ~15% of the CPU time per SimVP batch). Raising the mmap and trim thresholds
    (``mallopt``) stops that; the process keeps its peak memory instead of returning it.
    Idempotent; returns whether it applied
    (False on non-glibc platforms).

    Examples
    --------
    >>> isinstance(tune_cpu_allocator(), bool)
    True
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1
        return bool(ok and libc.mallopt(m_trim_threshold, (1 << 31) - 1) == 1)
    except (OSError, AttributeError):
        return False


def prepare_for_training(
    module: nn.Module, device: Any = None, *, channels_last: bool = True
) -> nn.Module:
    """Move ``module`` (in place) to ``device`` in the layout that trains fastest.

    Channels-last weights let oneDNN (CPU) and cuDNN (CUDA) use their fast bf16 kernels;
    on CPU the allocator is tuned (:func:`tune_cpu_allocator`). Train inside
    :func:`autocast` for mixed precision.

    Examples
    --------
    >>> import stgeo
    >>> m = prepare_for_training(stgeo.create_model("convlstm", hidden=4, num_layers=1), "cpu")
    >>> m.cells[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    True
    """
    if not isinstance(module, nn.Module):
        raise StgeoTypeError(f"expected a torch.nn.Module, got {type(module).__name__}")
    dev = _device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    module.to(device=dev)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    return module


def fuse_for_inference(module: nn.Module) -> nn.Module:
    """Replace, in place, every sub-module that has ``fuse_for_inference()`` by its fused form.

    The module must be in eval mode (fusing folds running batch-norm statistics).
    """
    if module.training:
        raise DataValidationError("fuse_for_inference needs a module in eval mode; call .eval()")
    for name, child in list(module.named_children()):
        fuse = getattr(child, "fuse_for_inference", None)
        if callable(fuse):
            child = fuse().eval()
            setattr(module, name, child)
        fuse_for_inference(child)
    return module


def prepare_for_inference(
    module: nn.Module,
    device: Any = None,
    precision: str | None = "auto",
    *,
    channels_last: bool = True,
    compile: bool = False,
) -> nn.Module:
    """An inference copy of ``module`` (the original is left untouched).

    Parameters
    ----------
    module : torch.nn.Module
        A forecaster.
    device : str or torch.device, optional
        Target device (default: the ``device`` option).
    precision : {"auto", "bf16", "fp32", "off"}
        bf16 stores the weights in bf16 (no per-call casts); fp32 keeps them.
    channels_last : bool
        Store 4-D weights channels-last (oneDNN's fast layout on CPU, tensor cores on CUDA).
    compile : bool
        Wrap with ``torch.compile`` (first call compiles; worth it for long runs only).

    Returns
    -------
    torch.nn.Module
        Eval-mode, gradient-free copy; ``predict`` knows its precision.

    Examples
    --------
    >>> import stgeo
    >>> m = stgeo.create_model("convlstm", hidden=4, num_layers=1, kernel_size=3)
    >>> fast = prepare_for_inference(m, "cpu", "bf16")
    >>> next(fast.parameters()).dtype, m.training
    (torch.bfloat16, True)
    """
    if not isinstance(module, nn.Module):
        raise StgeoTypeError(f"expected a torch.nn.Module, got {type(module).__name__}")
    dev = _device(device)
    prec = resolve_precision(dev, precision)
    if dev.type == "cpu":
        tune_cpu_allocator()
    m = copy.deepcopy(module).eval()
    fuse_for_inference(m)
    m.requires_grad_(False)
    m.to(device=dev)
    if prec == "bf16":
        m.to(dtype=torch.bfloat16)
    if channels_last:
        m.to(memory_format=torch.channels_last)
    m._stgeo_inference = {"precision": prec, "device": str(dev)}
    if compile:
        compiled = torch.compile(m, dynamic=False)
        compiled._stgeo_inference = m._stgeo_inference
        return compiled
    return m


def _param_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def predict(
    module: nn.Module,
    x: torch.Tensor,
    precision: str | None = None,
    *,
    batch_size: int | None = None,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply ``module`` to ``x`` without autograd and return float32 (on ``x``'s device).

    Parameters
    ----------
    module : torch.nn.Module
        A forecaster, plain or from :func:`prepare_for_inference` (then its precision is used
        and ``precision`` must be None or agree).
    x : torch.Tensor
        ``(B, T_in, C, H, W)``.
    precision : {"auto", "bf16", "fp32", "off"}, optional
        For plain modules: autocast precision (default: the ``autocast`` option).
    batch_size : int, optional
        Run at most this many samples per call.
    features : torch.Tensor, optional
        ``(B, F)`` extra input of a model that takes features (``module(x, features)``,
        e.g. ``stresnet``'s calendar features); None: ``module(x)``.

    Examples
    --------
    >>> import torch, stgeo
    >>> m = stgeo.create_model("persistence", in_steps=2, out_steps=3)
    >>> predict(m, torch.ones(5, 2, 1, 4, 4), batch_size=2).shape
    torch.Size([5, 3, 1, 4, 4])
    """
    if not isinstance(x, torch.Tensor):
        raise StgeoTypeError(f"predict expects a torch.Tensor, got {type(x).__name__}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise DataValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    info = getattr(module, "_stgeo_inference", None)
    dev = _param_device(module)
    out_dev = x.device
    if info is not None:
        prec = info["precision"]
        if precision is not None and resolve_precision(dev, precision) != prec:
            raise DataValidationError(
                f"the module was prepared for {prec}; prepare it again for {precision}"
            )
    else:
        prec = resolve_precision(dev, precision)
    was_training = module.training
    if info is None:
        module.eval()
    try:
        outs = []
        n = x.shape[0] if x.ndim else 1
        step = batch_size or max(n, 1)
        with torch.inference_mode():
            for start in range(0, max(n, 1), step):
                xb = x[start : start + step] if x.ndim else x
                args = () if features is None else (features[start : start + step].to(dev),)
                if info is not None:
                    dtype = torch.bfloat16 if prec == "bf16" else torch.float32
                    xb = xb.to(device=dev)
                    if xb.is_floating_point():
                        xb = xb.to(dtype=dtype)
                    args = tuple(a.to(dtype=dtype) for a in args)
                    y = module(xb, *args)
                else:
                    xb = xb.to(device=dev)
                    with autocast(dev, prec):
                        y = module(xb, *args)
                outs.append(y.to(device=out_dev, dtype=torch.float32))
        return outs[0] if len(outs) == 1 else torch.cat(outs)
    finally:
        if info is None and was_training:
            module.train()

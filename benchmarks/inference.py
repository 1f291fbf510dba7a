"""Inference and training speed of stgeo's learned models (evaluation.md, "inference").

For every registered learned model on its benchmark shape (TaxiBJ-like: B=16, 4 -> 4,
C=2, 32 x 32; radar-like: B=4, 10 -> 10, C=1, 128 x 128): parameters, FLOPs per sample
(``torch.utils.flop_counter``), inference samples/s in fp32 and bf16 (through
``stgeo.models.runtime.prepare_for_inference`` and ``predict``; plain bf16 autocast for
reference), training samples/s (MSE + the model's auxiliary loss, AdamW step) in fp32 and
bf16 autocast, achieved GFLOP/s and the fraction of the machine's matmul GFLOP/s. The
matmul peaks are measured in the same rounds as each model, and every figure is the best
of several interleaved rounds, because the machines are shared and noisy.

Models whose name ends in ``-radar`` run on the radar shape, all others on the TaxiBJ
shape. ``--quick`` benchmarks the base models plus ``simvp-radar`` with fewer rounds.
``--breakdown`` also times every aten op of inference and training by kind (GEMM, dense
convolution, depthwise convolution, other) through a dispatch mode and prints the bounds that
follow (the PyTorch profiler inflates oneDNN calls several-fold on 2 cores).

The full run (no ``--models``, no ``--quick``; or ``--nowcast``, ``--nowcast-only``) also
times the issue's operational case: a 12-step nowcast of one 512 x 512 radar frame from 4
inputs with ``earthfarseer`` (small) in bf16 and fp32, and with pysteps' Lucas-Kanade
extrapolation and S-PROG (the registered ``extrapolation`` and ``sprog`` baselines) on the
same frames in the same run (median wall times).

Usage::

    python benchmarks/inference.py [--quick] [--models simvp,tau] [--rounds 5] [--breakdown]
                                   [--nowcast | --nowcast-only]

The last line printed is one JSON object: per model ``infer_fp32_sps``, ``infer_bf16_sps``,
``train_sps``, ``train_bf16_sps``, ``gflops_achieved``, ``peak_fraction``,
``bf16_rel_mse`` (and more), plus ``gemm_bf16_gflops``, ``gemm_fp32_gflops`` and
``nowcast`` (seconds per method, or null when not run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import stgeo
from stgeo.models import runtime
from stgeo.models.losses import aux_loss_of
from stgeo.training.fit import make_optimizer

SHAPES = {
    "taxibj": {"batch": 16, "in_steps": 4, "out_steps": 4, "channels": 2, "grid": (32, 32)},
    "radar": {"batch": 4, "in_steps": 10, "out_steps": 10, "channels": 1, "grid": (128, 128)},
}


def shape_of(name: str) -> str:
    return "radar" if name.endswith("-radar") else "taxibj"


def rate(fn: Callable[[], object], items: int, min_time: float) -> float:
    """Items per second of ``fn`` over at least ``min_time`` seconds (at least 2 calls)."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time and n >= 2:
            return n * items / dt


def gemm_gflops(dtype: torch.dtype, min_time: float, n: int = 2048) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    return rate(lambda: a @ b, 1, min_time) * 2 * n**3 / 1e9


def flops_per_sample(model: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    return fc.get_total_flops() / x.shape[0]


def train_step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str):
    model = runtime.prepare_for_training(model, "cpu").train()
    opt = make_optimizer(list(model.parameters()), 1e-4, 0.01)
    aux = aux_loss_of(model)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with runtime.autocast("cpu", precision):
            pred = model(x)
        pred = pred.float()
        loss = torch.nn.functional.mse_loss(pred, y)
        if aux is not None:
            loss = loss + aux[1] * aux[0](pred, y)
        loss.backward()
        opt.step()

    return step


# -- where the time goes (--breakdown) ---------------------------------------------------
# groups argument position of each convolution overload
_CONV_GROUPS = {
    "aten.conv2d.default": 6,
    "aten.convolution.default": 8,
    "aten._convolution.default": 8,
    "aten.mkldnn_convolution.default": 6,
    "aten.convolution_backward.default": 9,
    "mkldnn._convolution_pointwise.default": 6,
}
_MATMULS = {"aten.mm.default", "aten.addmm.default", "aten.bmm.default", "aten.linear.default"}


def op_kind(name: str, args: tuple, kwargs: dict | None = None) -> str:
    """``"gemm"`` (1x1 convolutions and matmuls), ``"depthwise"`` (one input channel per
    group, including stgeo's grouped weight-gradient convolutions), ``"conv"`` (other
    convolutions) or ``"other"`` (normalisation, activations, casts, optimiser, ...)."""
    if name in _MATMULS:
        return "gemm"
    if name in _CONV_GROUPS:
        weight = args[2] if name == "aten.convolution_backward.default" else args[1]
        i = _CONV_GROUPS[name]
        groups = args[i] if len(args) > i else (kwargs or {}).get("groups", 1)
        if weight.shape[1] == 1 and groups > 1:
            return "depthwise"
        if groups == 1 and tuple(weight.shape[-2:]) == (1, 1):
            return "gemm"
        return "conv"
    return "other"


class OpTimer(TorchDispatchMode):
    """Wall time of every aten op by :func:`op_kind` (CPU ops are synchronous)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t0 = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        kind = op_kind(str(func), args, kwargs)
        self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - t0
        return out


def timed_kinds(fn: Callable[[], object], repeats: int = 3) -> dict[str, float]:
    """Milliseconds per call of ``fn`` by op kind (forward and backward ops alike)."""
    fn()
    with OpTimer() as timer:
        for _ in range(repeats):
            fn()
    return {k: 1e3 * v / repeats for k, v in sorted(timer.seconds.items())}


def breakdown(name: str, gemm32: float) -> dict:
    """Per-kind milliseconds of fp32/bf16 inference and training steps of ``name``, and two
    bounds: the fp32 peak fraction reachable if every op other than the dense ones (GEMMs
    and dense convolutions) took no time, and the bf16/fp32 speed-ups of the dense ops and
    of everything else in training."""
    s = SHAPES[shape_of(name)]
    kw = dict(in_steps=s["in_steps"], out_steps=s["out_steps"], channels=s["channels"])
    torch.manual_seed(0)
    model = stgeo.create_model(name, grid_shape=s["grid"], **kw)
    x = torch.randn(s["batch"], s["in_steps"], s["channels"], *s["grid"])
    y = torch.randn(s["batch"], s["out_steps"], s["channels"], *s["grid"])
    flops = flops_per_sample(model.eval(), x) * s["batch"]
    out: dict = {}
    for prec in ("fp32", "bf16"):
        inf = runtime.prepare_for_inference(model, "cpu", prec)
        out[f"infer_{prec}_ms"] = timed_kinds(lambda inf=inf: runtime.predict(inf, x))
        net = stgeo.create_model(name, grid_shape=s["grid"], **kw)
        out[f"train_{prec}_ms"] = timed_kinds(train_step_fn(net, x, y, prec))

    def dense(row: dict) -> float:
        return row.get("gemm", 0.0) + row.get("conv", 0.0)

    d = dense(out["infer_fp32_ms"])
    out["infer_fp32_dense_gflops"] = flops / d / 1e6 if d else float("nan")
    out["peak_fraction_ceiling"] = out["infer_fp32_dense_gflops"] / gemm32
    t32, t16 = out["train_fp32_ms"], out["train_bf16_ms"]
    out["train_dense_speedup"] = dense(t32) / dense(t16)
    out["train_rest_speedup"] = (sum(t32.values()) - dense(t32)) / (sum(t16.values()) - dense(t16))
    return out


def print_breakdown(name: str, b: dict) -> None:
    kinds = ("gemm", "conv", "depthwise", "other")
    print(f"  {name}: milliseconds per batch by op kind (dispatch-timed)")
    print(f"    {'':12s}" + "".join(f"{k:>11s}" for k in kinds) + f"{'total':>11s}")
    for key in ("infer_fp32_ms", "infer_bf16_ms", "train_fp32_ms", "train_bf16_ms"):
        row = b[key]
        cells = "".join(f"{row.get(k, 0.0):11.1f}" for k in kinds)
        print(f"    {key[:-3]:12s}{cells}{sum(row.values()):11.1f}")
    print(
        f"    fp32 inference: GEMMs and dense convolutions run at "
        f"{b['infer_fp32_dense_gflops']:.0f} GFLOP/s; even with every other op free, "
        f"peak_fraction <= {b['peak_fraction_ceiling']:.2f}"
    )
    print(
        f"    training bf16/fp32: GEMMs and dense convolutions {b['train_dense_speedup']:.2f}x, "
        f"everything else {b['train_rest_speedup']:.2f}x"
    )


def bench_model(
    name: str, rounds: int, min_time: float, train: bool, max_train_gflop: float | None = None
) -> dict:
    s = SHAPES[shape_of(name)]
    torch.manual_seed(0)
    model = stgeo.create_model(
        name,
        in_steps=s["in_steps"],
        out_steps=s["out_steps"],
        channels=s["channels"],
        grid_shape=s["grid"],
    )
    b = s["batch"]
    x = torch.randn(b, s["in_steps"], s["channels"], *s["grid"])
    y = torch.randn(b, s["out_steps"], s["channels"], *s["grid"])
    params = sum(p.numel() for p in model.parameters())
    fps = flops_per_sample(model.eval(), x)
    if max_train_gflop is not None and 3 * fps * b / 1e9 > max_train_gflop:
        train = False  # --quick: a training step of this model takes too long
    f32 = runtime.prepare_for_inference(model, "cpu", "fp32")
    b16 = runtime.prepare_for_inference(model, "cpu", "bf16")
    ref = runtime.predict(f32, x)
    out16 = runtime.predict(b16, x)
    rel_mse = float((out16 - ref).square().mean() / (ref - ref.mean()).square().mean())
    eager = model.eval()
    tasks: dict[str, Callable[[], float]] = {
        "gemm_fp32": lambda: gemm_gflops(torch.float32, min_time / 2),
        "gemm_bf16": lambda: gemm_gflops(torch.bfloat16, min_time / 2),
        "infer_fp32_sps": lambda: rate(lambda: runtime.predict(f32, x), b, min_time),
        "infer_bf16_sps": lambda: rate(lambda: runtime.predict(b16, x), b, min_time),
        "infer_autocast_bf16_sps": lambda: rate(
            lambda: runtime.predict(eager, x, "bf16"), b, min_time
        ),
    }
    if train:
        steps = {
            p: train_step_fn(
                stgeo.create_model(
                    name,
                    in_steps=s["in_steps"],
                    out_steps=s["out_steps"],
                    channels=s["channels"],
                    grid_shape=s["grid"],
                ),
                x,
                y,
                p,
            )
            for p in ("fp32", "bf16")
        }
        for fn in steps.values():
            fn()  # warm-up (optimizer state, oneDNN primitives)
        tasks["train_sps"] = lambda: rate(steps["fp32"], b, min_time)
        tasks["train_bf16_sps"] = lambda: rate(steps["bf16"], b, min_time)
    for fn in (lambda: runtime.predict(f32, x), lambda: runtime.predict(b16, x)):
        fn()
    best = {k: 0.0 for k in tasks}
    for _ in range(rounds):  # interleaved rounds, best of each
        for k, fn in tasks.items():
            best[k] = max(best[k], fn())
    r = {
        "shape": shape_of(name),
        "params": params,
        "gflop_per_sample": fps / 1e9,
        **{k: v for k, v in best.items() if not k.startswith("gemm")},
        "bf16_rel_mse": rel_mse,
    }
    r["gflops_achieved"] = r["infer_fp32_sps"] * fps / 1e9
    r["peak_fraction"] = r["gflops_achieved"] / best["gemm_fp32"]
    r["gflops_achieved_bf16"] = r["infer_bf16_sps"] * fps / 1e9
    r["peak_fraction_bf16"] = r["gflops_achieved_bf16"] / best["gemm_bf16"]
    r["infer_bf16_speedup"] = r["infer_bf16_sps"] / r["infer_fp32_sps"]
    if train:
        r["train_bf16_speedup"] = r["train_bf16_sps"] / r["train_sps"]
        r["train_steps_per_s"] = r["train_sps"] / b
    r["_gemm"] = (best["gemm_fp32"], best["gemm_bf16"])
    return r


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``repeats`` calls of
    ``fn``, after one warm-up call. On a shared machine the CPU time is the steadier figure:
    it does not count the time other processes held the cores."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(statistics.median(wall)), float(statistics.median(cpu))


def nowcast_case(size: int = 512, repeats: int = 5, baseline_repeats: int = 3) -> dict:
    """A 12-step nowcast of one ``size`` x ``size`` radar frame from 4 inputs: EarthFarseer
    small (``prepare_for_inference``, bf16 and fp32) against the registered pysteps baselines
    ``extrapolation`` (Lucas-Kanade + semi-Lagrangian) and ``sprog`` on the same frames.

    The frames are synthetic storm cells (``stgeo.testing.storm_cells``, 30 cells per hour:
    about 8 % of the domain at >= 0.1 mm/h, like a rainy radar scene); the learned model sees
    them ``log1p``-scaled, as trained. Median wall times in seconds."""
    ds = stgeo.testing.storm_cells(n_times=4, shape=(size, size), seed=0, cells_per_hour=30.0)
    rain = torch.as_tensor(ds.rain_rate.values, dtype=torch.float32)[None, :, None]
    out: dict = {"size": size, "in_steps": 4, "out_steps": 12, "wet_fraction": 0.0}
    out["wet_fraction"] = round(float((rain >= 0.1).float().mean()), 4)
    torch.manual_seed(0)
    model = stgeo.create_model("earthfarseer", in_steps=4, out_steps=12, channels=1)
    x = torch.log1p(rain)
    for prec in ("bf16", "fp32"):
        net = runtime.prepare_for_inference(model, "cpu", prec)
        key = f"earthfarseer_{prec}"
        out[f"{key}_s"], out[f"{key}_cpu_s"] = median_seconds(
            lambda n=net: runtime.predict(n, x), repeats
        )
    for name in ("extrapolation", "sprog"):
        base = stgeo.create_model(name, in_steps=4, out_steps=12)
        out[f"{name}_s"], out[f"{name}_cpu_s"] = median_seconds(
            lambda b=base: b(rain), baseline_repeats
        )
    return out


def print_nowcast(r: dict) -> None:
    print(
        f"nowcast of one {r['size']}x{r['size']} frame, {r['in_steps']} -> {r['out_steps']} "
        f"steps, {torch.get_num_threads()} threads, median wall time (process CPU time):"
    )
    for key, label in (
        ("earthfarseer_bf16", "earthfarseer small, bf16"),
        ("earthfarseer_fp32", "earthfarseer small, fp32"),
        ("extrapolation", "pysteps Lucas-Kanade extrapolation"),
        ("sprog", "pysteps S-PROG"),
    ):
        print(f"  {label:36s} {r[key + '_s']:6.2f} s ({r[key + '_cpu_s']:.2f} s CPU)", flush=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="base models only, fewer rounds")
    ap.add_argument("--models", default=None, help="comma-separated registry names")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (best of)")
    ap.add_argument("--no-train", action="store_true", help="skip the training measurements")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument(
        "--breakdown",
        action="store_true",
        help="also time each op kind (GEMM, conv, depthwise, other) in inference and training",
    )
    ap.add_argument(
        "--nowcast",
        action="store_true",
        help="also (with --models or --quick) time a 12-step 512x512 nowcast: earthfarseer "
        "against the pysteps baselines",
    )
    ap.add_argument("--nowcast-only", action="store_true", help="only the nowcast case")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    learned = stgeo.list_models(baselines=False)
    if args.nowcast_only:
        names = []
    elif args.models:
        names = [stgeo.models.model_info(n)["name"] for n in args.models.split(",")]
    elif args.quick:
        names = [n for n in learned if "-" not in n] + [n for n in ("simvp-radar",) if n in learned]
    else:
        names = learned
    rounds = args.rounds or (2 if args.quick else 5)
    min_time = 0.6 if args.quick else 1.5
    bf16 = runtime.cpu_supports_bf16()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"native bf16: {bf16}, rounds {rounds}"
    )
    results: dict[str, dict] = {}
    g32, g16 = 0.0, 0.0
    hdr = (
        f"{'model':16s} {'shape':6s} {'params':>8s} {'GF/smp':>7s} {'fp32/s':>7s} "
        f"{'bf16/s':>7s} {'x':>5s} {'ac16/s':>7s} {'trn/s':>7s} {'trn16/s':>7s} {'x':>5s} "
        f"{'GF/s':>6s} {'peak':>5s} {'relMSE':>8s}"
    )
    print(hdr)
    nan = float("nan")
    for name in names:
        r = bench_model(
            name, rounds, min_time, not args.no_train, max_train_gflop=400 if args.quick else None
        )
        a, b = r.pop("_gemm")
        g32, g16 = max(g32, a), max(g16, b)
        results[name] = r
        print(
            f"{name:16s} {r['shape']:6s} {r['params'] / 1e6:7.2f}M {r['gflop_per_sample']:7.2f} "
            f"{r['infer_fp32_sps']:7.1f} {r['infer_bf16_sps']:7.1f} "
            f"{r['infer_bf16_speedup']:5.2f} {r['infer_autocast_bf16_sps']:7.1f} "
            f"{r.get('train_sps', nan):7.1f} {r.get('train_bf16_sps', nan):7.1f} "
            f"{r.get('train_bf16_speedup', nan):5.2f} {r['gflops_achieved']:6.1f} "
            f"{r['peak_fraction']:5.2f} {r['bf16_rel_mse']:8.1e}  "
            f"(gemm fp32 {a:.0f}, bf16 {b:.0f} GFLOP/s)",
            flush=True,
        )
        if args.breakdown:
            r["breakdown"] = breakdown(name, a)
            print_breakdown(name, r["breakdown"])
    nowcast = None
    if args.nowcast or args.nowcast_only or not (args.models or args.quick):
        nowcast = nowcast_case()
        print_nowcast(nowcast)
    out = {
        "nowcast": nowcast,
        "gemm_fp32_gflops": g32,
        "gemm_bf16_gflops": g16,
        "threads": torch.get_num_threads(),
        "native_bf16": bf16,
        "models": results,
    }
    out["max_bf16_rel_mse"] = max((r["bf16_rel_mse"] for r in results.values()), default=0.0)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

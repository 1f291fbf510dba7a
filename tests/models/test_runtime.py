"""Device/precision plumbing: precision resolution, autocast, inference preparation, predict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import stgeo
from stgeo.errors import DataValidationError, StgeoTypeError
from stgeo.models import runtime


def small(name: str, **kw):
    torch.manual_seed(0)
    hp = {"convlstm": {"hidden": 8, "num_layers": 2, "kernel_size": 3}}.get(
        name, {"hid_S": 8, "hid_T": 16, "N_T": 2}
    )
    return stgeo.create_model(name, in_steps=3, out_steps=2, channels=2, **hp, **kw)


def test_cpu_bf16_detection_matches_cpu_flags():
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo on this platform")
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert runtime.cpu_supports_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_resolve_precision():
    assert runtime.resolve_precision("cpu", "fp32") == "fp32"
    assert runtime.resolve_precision("cpu", "off") == "fp32"
    assert runtime.resolve_precision("cpu", "bf16") == "bf16"
    expected = "bf16" if runtime.cpu_supports_bf16() else "fp32"
    assert runtime.resolve_precision("cpu", "auto") == expected
    with stgeo.set_options(autocast="off"):
        assert runtime.resolve_precision("cpu") == "fp32"
    with pytest.raises(DataValidationError, match="precision must be one of"):
        runtime.resolve_precision("cpu", "fp16")
    with pytest.raises(StgeoTypeError):
        runtime.resolve_precision(3, "auto")


def test_autocast_context():
    lin = torch.nn.Linear(3, 3)
    with runtime.autocast("cpu", "bf16") as prec:
        assert prec == "bf16"
        assert lin(torch.randn(2, 3)).dtype == torch.bfloat16
    with runtime.autocast(torch.device("cpu"), "fp32") as prec:
        assert prec == "fp32"
        assert lin(torch.randn(2, 3)).dtype == torch.float32


@pytest.mark.parametrize("name", ["simvp", "tau", "convlstm"])
def test_prepared_fp32_equals_plain_eval(name):
    m = small(name).train()
    # give the batch norms non-trivial running statistics
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(4, 3, 2, 12, 20) * 2 + 1)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fast = runtime.prepare_for_inference(m, "cpu", "fp32")
    assert m.training and fast is not m and not fast.training
    for k, v in m.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k])
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in fast.modules())
    assert all(not p.requires_grad for p in fast.parameters())
    x = torch.randn(3, 3, 2, 12, 20)
    ref = m.eval()(x).detach()
    out = runtime.predict(fast, x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["simvp", "tau", "convlstm"])
def test_bf16_inference_is_close_to_fp32(name):
    m = small(name).eval()
    x = torch.randn(4, 3, 2, 16, 16)
    ref = runtime.predict(m, x, precision="fp32")
    for y in (
        runtime.predict(runtime.prepare_for_inference(m, "cpu", "bf16"), x),
        runtime.predict(m, x, precision="bf16"),
    ):
        assert y.dtype == torch.float32
        rel = float((y - ref).square().mean() / ref.square().mean())
        assert 0 < rel < 1e-2


def test_predict_batches_and_restores_training_mode():
    m = small("simvp").train()
    x = torch.randn(5, 3, 2, 8, 8)
    full = runtime.predict(m, x, "fp32")
    chunked = runtime.predict(m, x, "fp32", batch_size=2)
    assert m.training
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)
    assert not full.requires_grad
    with pytest.raises(DataValidationError):
        runtime.predict(m, x, batch_size=0)
    with pytest.raises(StgeoTypeError):
        runtime.predict(m, x.numpy())


def test_predict_refuses_conflicting_precision():
    fast = runtime.prepare_for_inference(small("simvp"), "cpu", "bf16")
    x = torch.randn(1, 3, 2, 8, 8)
    assert runtime.predict(fast, x, "bf16").dtype == torch.float32
    with pytest.raises(DataValidationError, match="prepared for bf16"):
        runtime.predict(fast, x, "fp32")


def test_prepare_rejects_non_modules_and_fuse_needs_eval():
    with pytest.raises(StgeoTypeError):
        runtime.prepare_for_inference(lambda x: x, "cpu")
    with pytest.raises(DataValidationError, match="eval mode"):
        runtime.fuse_for_inference(small("simvp").train())


def test_prepared_model_still_checks_input():
    fast = runtime.prepare_for_inference(small("simvp"), "cpu", "fp32")
    with pytest.raises(DataValidationError, match="input frames"):
        runtime.predict(fast, torch.randn(1, 4, 2, 8, 8))


def test_prepare_for_training_and_allocator():
    m = small("simvp")
    out = runtime.prepare_for_training(m, "cpu")
    assert out is m
    assert m.translator[0].proj1.weight.is_contiguous(memory_format=torch.channels_last)
    # training in bf16 autocast on channels-last weights works and gives finite gradients
    x = torch.randn(2, 3, 2, 12, 12)
    with runtime.autocast("cpu", "bf16"):
        y = m(x)
    y.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
    assert isinstance(runtime.tune_cpu_allocator(), bool)
    with pytest.raises(StgeoTypeError):
        runtime.prepare_for_training("simvp")

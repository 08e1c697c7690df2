"""Real-world model code: counting and memory prediction leave the model exactly as found, plain tensor attributes
replay on fake tensors, CUDA calls on a CPU-only host are kept on the CPU, and model prints stay out of --json.
Each small model here reproduces a pattern met in NTIRE 2024 entries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from effbench.base.model_code import cuda_redirects, left_as_found, running_model_code
from effbench.counting import compare_conventions, profile
from effbench.counting._trace import record
from effbench.memory import predict_memory

ROOT = Path(__file__).resolve().parent.parent


class _SmrnLike(nn.Module):
    """team10_SMRN: a plain tensor attribute, reassigned with ``type_as`` inside forward, plus a list of them."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.Tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
        self.gains = [torch.tensor(0.5), torch.tensor(2.0)]
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.tail = nn.Conv2d(8, 3 * 4, 3, padding=1)
        self.up = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mean = self.mean.type_as(x)
        y = self.bn(self.head(x - self.mean)) * self.gains[0]
        return self.up(self.tail(y) * self.gains[1]) + self.mean


def _state(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.device, bool]]:
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    tensors |= {"mean": model.mean} | {f"gains.{i}": g for i, g in enumerate(model.gains)}
    return {k: (t, t.detach().clone(), t.device, t.requires_grad) for k, t in tensors.items()}


def _assert_same(before: dict, model: nn.Module) -> None:
    after = _state(model)
    assert after.keys() == before.keys()
    for k, (t, copy, device, grad) in before.items():
        now = after[k][0]
        assert now is t, f"{k} is another object"
        assert now.device == device and now.requires_grad == grad, k
        assert torch.equal(now.detach(), copy), f"{k} changed"


def test_profile_and_predict_memory_leave_a_model_reassigning_its_tensor_attribute_as_found() -> None:
    torch.manual_seed(0)
    model = _SmrnLike().eval()
    x = torch.rand(1, 3, 8, 8)
    expected = model(x)
    before = _state(model)
    for convention in ("full", "ntire2022", "fvcore"):
        prof = profile(model, (16, 16), convention=convention, peak_memory=False)
        assert prof.convs == 2 and prof.output_shape == (1, 3, 32, 32)
        _assert_same(before, model)
    rep = predict_memory(model, (16, 16))
    assert rep.peak_bytes > 0 and rep.output_shape == (1, 3, 32, 32)
    _assert_same(before, model)
    assert not model.training
    assert torch.equal(model(x), expected)  # the next real forward works and gives the same image


def test_profile_with_memory_prediction_counts_a_model_with_plain_tensor_attributes() -> None:
    model = _SmrnLike().eval()
    prof = profile(model, (16, 16))
    assert prof.peak_memory_bytes and prof.peak_memory_bytes > 0
    assert prof.engine == "meta"  # the tensor attributes got meta stand-ins: no fallback needed


def test_every_trace_engine_leaves_the_model_as_found() -> None:
    class DataDependent(_SmrnLike):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.mean = self.mean.type_as(x)
            self.seen = x.sum()  # a tensor attribute the forward adds
            y = super().forward(x)
            return y if x.max() > -1 else -y  # python control flow on a tensor value: the real engine

    model = DataDependent().eval()
    before = _state(model)
    trace = record(model, (1, 3, 8, 8))
    assert trace.engine == "real"
    _assert_same(before, model)
    assert "seen" not in vars(model)


def test_left_as_found_restores_in_place_changes_and_swapped_modules_after_an_exception() -> None:
    model = _SmrnLike()
    before = _state(model)
    head = model.head
    with pytest.raises(RuntimeError, match="boom"), left_as_found(model):
        with torch.no_grad():
            model.head.weight.mul_(0)
            model.bn.running_mean.data = torch.ones(8)
        model.mean.add_(1)
        model.gains.append(torch.tensor(3.0))
        model.head = nn.Identity()
        model.head_bias = torch.zeros(1)
        model.eval()
        raise RuntimeError("boom")
    _assert_same(before, model)
    assert model.head is head and model.training and len(model.gains) == 2
    assert not hasattr(model, "head_bias")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA redirect is only active without CUDA")
class TestCudaOnCpuHost:
    def test_a_constructor_calling_cuda_and_running_a_cuda_forward_builds_on_the_cpu(self) -> None:
        class SpanLike(nn.Module):  # team38_SPAN: self.cuda()(torch.randn(1, 3, 256, 256).cuda()) in __init__
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 48, 3, padding=1)
                self.up = nn.PixelShuffle(4)
                self.cuda()(torch.randn(1, 3, 16, 16).cuda())

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.up(self.conv(x))

        with running_model_code() as guard:
            model = guard.attach(SpanLike().eval())
        assert model.conv.weight.device.type == "cpu"
        assert cuda_redirects(model) == {"Tensor.cuda": 3}  # weight, bias and the input
        prof = profile(model, (16, 16), peak_memory=False)
        assert prof.cuda_redirected and prof.to_dict()["cuda_redirected"] is True

    def test_a_forward_making_cuda_tensors_is_counted_and_predicted(self) -> None:
        class ZerosOnCuda(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 3, 3, padding=1)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                pad = torch.zeros(x.shape, device="cuda")
                return self.conv(x.to("cuda") + pad)

        model = ZerosOnCuda().eval()
        prof = profile(model, (8, 8), convention="full")
        assert prof.convs == 1 and prof.peak_memory_bytes
        assert prof.cuda_redirected
        assert torch.equal(model.conv.weight, model.conv.weight.cpu())  # still on the CPU

    def test_no_redirect_no_flag(self) -> None:
        prof = profile(_SmrnLike().eval(), (8, 8), peak_memory=False)
        assert not prof.cuda_redirected and prof.to_dict()["cuda_redirected"] is False


def test_running_model_code_routes_prints_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with running_model_code():
        print("hello from a model file")
    out, err = capsys.readouterr()
    assert out == "" and "hello from a model file" in err


_PRINTING_MODEL = """
import torch
from torch import nn

print("importing the model file")


class Loud(nn.Module):
    def __init__(self):
        super().__init__()
        print("building")
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        print("forward", tuple(x.shape))
        return self.up(self.conv(x))
"""


def test_profile_json_stdout_is_only_the_json_when_the_model_prints(tmp_path: Path) -> None:
    path = tmp_path / "loud.py"
    path.write_text(_PRINTING_MODEL)
    run = subprocess.run(
        [sys.executable, "-m", "effbench", "profile", f"{path}:Loud", "--size", "16x16", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)  # nothing but the JSON document
    assert doc["convs"] == 1 and doc["peak_memory_bytes"] > 0
    assert "importing the model file" in run.stderr and "building" in run.stderr and "forward" in run.stderr


def test_compare_conventions_leaves_the_model_as_found() -> None:
    model = _SmrnLike().eval()
    before = _state(model)
    compare_conventions(model, (8, 8), peak_memory=True)
    _assert_same(before, model)


class _Gated(nn.Module):
    """A data-dependent op (``aten._local_scalar_dense`` via a Python ``if`` on a tensor value), as in one 2024
    entry; ``gated=False`` is the same network without it (the fake replay runs it)."""

    def __init__(self, gated: bool = True) -> None:
        super().__init__()
        self.gated = gated
        self.head = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Conv2d(16, 16, 3, padding=1)
        self.tail = nn.Conv2d(16, 3 * 16, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        if not self.gated or y.abs().max() >= 0:
            y = y + self.body(torch.relu(y))
        return self.up(self.tail(y))


def test_predict_memory_runs_a_data_dependent_model_for_real_on_a_small_input() -> None:
    torch.manual_seed(0)
    rep = predict_memory(_Gated().eval(), (24, 20))
    twin = predict_memory(_Gated(gated=False).eval(), (24, 20))
    assert rep.engine == "real" and twin.engine == "fake"
    assert "data-dependent" in rep.notes[-1] and "DataDependentOutputException" in rep.notes[-1]
    assert abs(rep.peak_bytes - twin.peak_bytes) <= 0.02 * twin.peak_bytes


def test_predict_memory_scales_two_real_replays_of_a_data_dependent_model_to_a_large_input() -> None:
    torch.manual_seed(0)
    model = _Gated().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rep = predict_memory(model, (192, 128))
    twin = predict_memory(_Gated(gated=False).eval(), (192, 128))
    assert rep.engine == "real-scaled" and rep.input_shape == (1, 3, 192, 128)
    assert "32x21 and 48x32" in rep.notes[-1] and "extrapolated linearly" in rep.notes[-1]
    assert abs(rep.peak_bytes - twin.peak_bytes) <= 0.03 * twin.peak_bytes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


_FAILS_SMALL = '''
import torch
from torch import nn


class NeedsRoom(nn.Module):
    """Data-dependent (the fake replay cannot run it) and refusing small inputs (nor can the small real ones)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        if x.shape[-1] < 64:
            raise ValueError("needs at least 64 pixels a side")
        if x.mean() > -1:
            x = x * 1.0
        return self.up(self.conv(x))
'''


def test_profile_records_a_failed_memory_prediction_and_still_prints_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from effbench.cli import main

    path = tmp_path / "needs_room.py"
    path.write_text(_FAILS_SMALL)
    assert main(["profile", f"{path}:NeedsRoom", "--size", "64x64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["convs"] == 1 and doc["flops"] > 0 and doc["engine"] == "real"
    assert doc["peak_memory_bytes"] is None
    assert "NeedsRoom" in doc["memory_error"] and "needs at least 64 pixels" in doc["memory_error"]
    assert main(["profile", f"{path}:NeedsRoom", "--size", "64x64"]) == 0
    out = capsys.readouterr().out
    assert "peak memory not predicted" in out and "convs" in out


_SPAN_LIKE = """
import torch
from torch import nn


class SpanLike(nn.Module):
    def __init__(self, feature_channels=8):
        super().__init__()
        self.mean = torch.Tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)
        self.cuda()(torch.randn(1, 3, 16, 16).cuda())

    def forward(self, x):
        self.mean = self.mean.type_as(x)
        return self.up(self.conv(x - self.mean))
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA redirect is only active without CUDA")
def test_profile_builds_a_spec_whose_constructor_calls_cuda_on_a_cpu_only_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from effbench.cli import main

    path = tmp_path / "span_like.py"
    path.write_text(_SPAN_LIKE)
    assert (
        main(["profile", f"{path}:SpanLike", "--size", "16x16", "--convention", "ntire2022", "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["cuda_redirected"] is True and doc["convs"] == 1 and doc["peak_memory_bytes"] > 0

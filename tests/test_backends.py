"""Deployment backends: the zoo under ONNX Runtime and torch.compile matches eager fp32, a collapsed fp16 output is
``bad_output``, an unexportable op is named with its module, and the sweep carries the backend axis."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from effbench.backends import (
    BackendUnavailable,
    CollapsedOutputError,
    ExportError,
    backend_names,
    check_equivalence,
    prepare,
)
from effbench.base.errors import UsageError
from effbench.sweep.config import Cell, SweepConfig, load_config
from effbench.timing import benchmark
from effbench.zoo.registry import create_model, list_models, model_info
from effbench.zoo.spec import resolve_model

ZOO = [m for m in list_models() if not model_info(m).reference and 4 in model_info(m).scales]
needs_ort = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(p) for p in ("onnx", "onnxruntime")),
    reason="onnx/onnxruntime not installed (pip install 'effbench[onnx]')",
)


def _example(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


class Overflow(nn.Module):
    """x4 super-resolution that passes through 1e5 times its features: fine in fp32, infinite in fp16."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.conv(x) * 1e5) / 1e5


class Erfcx(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.erfcx(x)  # no ONNX symbolic in any opset


class WithUnexportableTail(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 3, 1)
        self.tail = Erfcx()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(x))


def test_registry_lists_the_four_backends_and_refuses_others() -> None:
    assert backend_names() == ["eager", "compile", "onnxruntime", "tensorrt"]
    with pytest.raises(UsageError, match="unknown backend 'tvm'"):
        prepare(nn.Identity(), _example(), "tvm")


@needs_ort
@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_under_onnxruntime_cpu_matches_eager_fp32(name: str) -> None:
    """Within 1e-4 on the image scale: differences divided by the model's data range (1 or 255)."""
    resolved = resolve_model(name, scale=4)
    model, data_range = resolved.model.eval(), resolved.identity.data_range
    x = _example() * data_range
    prepared = prepare(model, x, "onnxruntime")
    with torch.inference_mode():
        ref, out = model(x), prepared.fn(x)
    assert prepared.details["provider"] == "CPUExecutionProvider"
    assert prepared.export_seconds > 0 and prepared.artifact_bytes > 1000
    assert (out - ref).abs().max().item() / data_range <= 1e-4
    again = (
        _example(1) * data_range
    )  # another input of the exported size reuses the session, and still matches
    with torch.inference_mode():
        assert (prepared.fn(again) - model(again)).abs().max().item() / data_range <= 1e-4


@needs_ort
def test_onnxruntime_reexports_for_another_input_size() -> None:
    model = create_model("fmen_s", scale=4).eval()
    prepared = prepare(model, _example(), "onnxruntime")
    bigger = torch.rand(1, 3, 24, 40)
    with torch.inference_mode():
        out = prepared.fn(bigger)
        assert out.shape == (1, 3, 96, 160)
        assert (out - model(bigger)).abs().max().item() <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fmen_s", "rfdn"])
def test_torch_compile_on_cpu_matches_eager(name: str) -> None:
    model = create_model(name, scale=4).eval()
    x = _example()
    prepared = prepare(model, x, "compile")
    with torch.inference_mode():
        diff = (prepared.fn(x) - model(x)).abs().max().item()
    assert prepared.export_seconds > 0 and prepared.artifact_bytes is None
    assert diff <= 1e-4


def test_fp16_overflow_is_bad_output_with_the_figure() -> None:
    torch.manual_seed(0)
    with pytest.raises(CollapsedOutputError, match=r"values are NaN or infinite") as info:
        benchmark(Overflow(), (16, 16), dtype="fp16", repeats=2, preflight=False)
    assert info.value.status == "bad_output"
    assert "fp16" in str(info.value)


def test_reduced_precision_within_threshold_records_the_equivalence() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 48, 3, padding=1), nn.PixelShuffle(4))
    fp32 = benchmark(model, (8, 8), repeats=2, preflight=False)
    assert "equivalence_psnr_db" not in fp32["metrics"]  # eager fp32 is the reference: nothing to compare
    bf16 = benchmark(model, (8, 8), dtype="bf16", repeats=2, preflight=False)
    m = bf16["metrics"]
    data_range = bf16["identity"]["data_range"]
    assert 30 < m["equivalence_psnr_db"] < 80 and 0 < m["equivalence_max_abs_diff"] / data_range < 0.05
    assert bf16["backend"] == "eager" and bf16["dtype"] == "bf16"


def test_equivalence_refuses_noise_and_constants_and_accepts_identity() -> None:
    ref = torch.rand(1, 3, 16, 16)
    assert check_equivalence(ref.clone(), ref) == {
        "equivalence_psnr_db": math.inf,
        "equivalence_max_abs_diff": 0.0,
    }
    with pytest.raises(CollapsedOutputError, match=r"PSNR 1\d\.\d\d dB < 30 dB"):
        check_equivalence(ref + 0.2 * torch.randn_like(ref), ref)
    with pytest.raises(CollapsedOutputError, match="constant 0"):
        check_equivalence(torch.zeros_like(ref), ref)
    with pytest.raises(CollapsedOutputError, match="shape"):
        check_equivalence(ref[..., :8], ref)


@needs_ort
def test_unexportable_op_names_the_op_and_the_module() -> None:
    with pytest.raises(
        ExportError, match=r"ONNX export failed at aten::special_erfcx in module tail \(Erfcx\)"
    ):
        prepare(WithUnexportableTail().eval(), _example(), "onnxruntime")


def test_tensorrt_without_it_says_so() -> None:
    with pytest.raises(BackendUnavailable, match="tensorrt is not available here: it needs a CUDA device"):
        prepare(nn.Identity(), _example(), "tensorrt")


@needs_ort
def test_bench_command_times_under_onnxruntime(capsys: pytest.CaptureFixture[str]) -> None:
    from effbench.cli import main

    assert (
        main(["bench", "fmen_s", "--size", "16x16", "--backend", "onnxruntime", "--repeats", "3", "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    m = doc["metrics"]
    assert doc["backend"] == "onnxruntime" and doc["settings"]["backend"] == "onnxruntime"
    assert m["export_seconds"] > 0 and m["artifact_bytes"] > 1000 and m["runtime_ms"]["repeats"] == 3
    assert m["equivalence_max_abs_diff"] <= 1e-4


def test_sweep_has_a_backend_axis(tmp_path) -> None:
    cfg_file = tmp_path / "sweep.toml"
    cfg_file.write_text(
        'models = ["fmen_s"]\nsizes = ["16x16"]\ndevices = ["cpu"]\nbackends = ["eager", "onnxruntime"]\n'
    )
    cells = load_config(cfg_file).cells()
    assert [c.backend for c in cells] == ["eager", "onnxruntime"]
    assert cells[0].cell_id == "fmen_s_x4_16x16_cpu_fp32_steady"  # eager ids as before backends existed
    assert cells[1].cell_id == "fmen_s_x4_16x16_cpu_fp32_steady_onnxruntime"
    assert cells[1].new_result()["backend"] == "onnxruntime"
    with pytest.raises(UsageError, match="unknown backend"):
        SweepConfig(models=["fmen_s"], devices=["cpu"], backends=["tvm"]).cells()


@needs_ort
def test_sweep_cell_under_onnxruntime_and_a_failing_export_goes_on() -> None:
    from effbench.sweep.worker import measure_cell

    ok = measure_cell(Cell("fmen_s", size=(16, 16), repeats=2, static=False, backend="onnxruntime"))
    assert ok["status"] == "ok", ok["error"]
    assert ok["metrics"]["export_seconds"] > 0 and "equivalence_psnr_db" in ok["metrics"]
    bad = measure_cell(Cell("fmen_s", size=(16, 16), repeats=2, static=False, backend="tensorrt"))
    assert bad["status"] == "error" and bad["error"].startswith("tensorrt is not available here")


def test_report_keeps_each_backend_in_its_own_table() -> None:
    from effbench.report.table import build_table, group_key, split_groups

    def doc(backend: str | None, ms: float) -> dict:
        d = Cell("fmen_s", size=(16, 16), backend=backend or "eager").new_result()
        if backend is None:
            del d["backend"]  # a document written before backends existed
        d["metrics"] = {"runtime_ms": {"median": ms}}
        return d

    old, eager, ort = doc(None, 5.0), doc("eager", 4.0), doc("onnxruntime", 3.0)
    assert group_key(old) == group_key(eager) != group_key(ort)
    groups = split_groups([eager, ort])
    assert sorted(len(g) for g in groups) == [1, 1]
    assert {build_table(g).meta["backend"] for g in groups} == {"eager", "onnxruntime"}

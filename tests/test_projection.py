"""The runtime projection (effbench.timing.projection): GPU descriptions, the trace, the GPU-normalised terms, the
non-negative fit, the packaged NTIRE 2022 fit, and where the projection shows (bench --project, the challenge's
projection part, challenge check), always labelled a projection."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from effbench.base.errors import UsageError
from effbench.challenge.projection import year_gpu, year_protocol
from effbench.timing.gpus import gpu_names, gpu_spec
from effbench.timing.projection import (
    TERMS,
    CostModel,
    fit_cost_model,
    load_cost_model,
    nnls,
    project_model,
    record_trace,
    spearman,
    steady_protocol,
    tiled_flops,
    trace_features,
)

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "reports" / "projection" / "traces.json"


class Net(nn.Module):
    """A 3x3 conv (bias), a 1x1 conv (no bias), a depthwise conv, a pixel shuffle: every kind, known figures."""

    def __init__(self, c: int = 36) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.mix = nn.Conv2d(c, c, 1, bias=False)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.tail = nn.Conv2d(c, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.head(x))
        y = self.dw(self.mix(y)) + y
        return self.up(self.tail(y))


# ------------------------------------------------------------------------------------------------------------
# GPU descriptions


def test_every_required_gpu_is_described_with_a_source() -> None:
    for name in ("titan-xp", "gtx-1080-ti", "rtx-3090", "rtx-a6000", "a100", "h100", "h200"):
        g = gpu_spec(name)
        assert g.peak_tflops["fp32"] > 0 and g.memory_gb_per_s > 0 and g.sm_count > 0
        assert g.launch_overhead_us > 0 and g.source.startswith(("http", "NVIDIA"))
    assert set(gpu_names()) >= {"titan-xp", "h200"}


def test_gpu_lookup_takes_the_names_torch_and_the_years_give() -> None:
    assert gpu_spec("NVIDIA H100 80GB HBM3").name == "h100"
    assert gpu_spec("NVIDIA Titan Xp").name == "titan-xp"  # years.py's spelling
    assert gpu_spec("NVIDIA GeForce RTX 3090").name == "rtx-3090"
    assert gpu_spec("RTX A6000").name == "rtx-a6000"
    with pytest.raises(UsageError, match="known GPUs: .*titan-xp"):
        gpu_spec("voodoo-3")


def test_tf32_raises_the_fp32_peak_only_where_tensor_cores_run_it() -> None:
    a100, pascal = gpu_spec("a100"), gpu_spec("titan-xp")
    assert a100.peak_flops_per_s("fp32", tf32=True) == pytest.approx(156e12)
    assert a100.peak_flops_per_s("fp32", tf32=False) == pytest.approx(19.5e12)
    assert pascal.peak_flops_per_s("fp32", tf32=True) == pascal.peak_flops_per_s("fp32")
    with pytest.raises(UsageError, match="no published bf16 peak"):
        pascal.peak_flops_per_s("bf16")


# ------------------------------------------------------------------------------------------------------------
# the trace and its terms


def test_the_trace_records_each_op_kind_with_flops_bytes_and_kernels() -> None:
    h, w, c = 20, 30, 36
    trace = record_trace(Net(c), (h, w))
    convs = [r for r in trace.ops if r.conv]
    assert [r.kind for r in convs] == ["conv", "conv1x1", "grouped", "conv"]
    px = h * w
    assert convs[0].flops == 2 * 3 * c * 9 * px  # 2 FLOPs per multiply-accumulate
    assert convs[1].flops == 2 * c * c * px
    assert [r.kernels for r in convs] == [2, 1, 2, 2]  # a bias is one more kernel
    assert convs[1].bytes == 4 * (c * px + c * c + c * px)  # input, weight, output
    assert convs[0].conv == (3, c, 3, 3, 1, 1) and convs[2].conv[4] == c
    assert not any(r.op in ("view", "_unsafe_view", "permute") for r in trace.ops)  # views move nothing
    assert trace.device == "meta"


class HalfInside(nn.Module):
    """Switches to fp16 inside forward against its own fp16 weights (as an NTIRE 2025 entry does)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1).half()
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.conv(x.half())).float()


def test_a_model_that_switches_to_fp16_inside_forward_is_traced_with_its_own_dtypes() -> None:
    trace = record_trace(HalfInside(), (16, 16))
    conv = next(r for r in trace.ops if r.kind == "conv")
    assert conv.bytes == 2 * (3 * 256 + 48 * 27 + 48 + 48 * 256)  # fp16 tensors: 2 bytes each


class Windows(nn.Module):
    """Refuses sides that are not multiples of its 16-pixel window (as NTIRE 2024's CRAFT does)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x.view(b, c, h // 16, 16, w // 16, 16)  # raises unless both sides are multiples of 16
        return self.up(self.conv(x))


def test_a_model_refusing_the_protocol_size_is_traced_near_it_and_scaled_by_pixels() -> None:
    from effbench.timing.projection import record_trace_near

    with pytest.raises(Exception, match="invalid"):
        record_trace(Windows(), (30, 50))
    near = record_trace_near(Windows(), (30, 50))
    assert near.input_size == (30, 50) and near.traced_size == (32, 64)
    exact = record_trace(Windows(), (32, 64)).totals()
    assert near.totals()["conv_flops"] == pytest.approx(exact["conv_flops"] * 30 * 50 / (32 * 64))
    assert near.totals()["kernels"] == exact["kernels"]
    p = load_cost_model().project(near, "titan-xp", steady_protocol((30, 50)))
    assert any("traced at 32x64" in c for c in p.caveats)


def test_tiled_flops_round_channels_up_to_the_gemm_tiles() -> None:
    trace = record_trace(Net(36), (8, 8))
    mix = next(r for r in trace.ops if r.kind == "conv1x1")
    assert tiled_flops(mix) == pytest.approx(mix.flops * (64 / 36) * (40 / 36))
    head = next(r for r in trace.ops if r.kind == "conv")
    assert tiled_flops(head) == pytest.approx(head.flops * (64 / 36) * (8 / 3))


def test_terms_are_normalised_by_the_gpus_own_figures() -> None:
    totals = record_trace(Net(), (32, 32)).totals()
    proto = steady_protocol((32, 32))
    base = gpu_spec("titan-xp")
    twice = dataclasses.replace(
        base,
        peak_tflops={"fp32": 2 * base.peak_tflops["fp32"]},
        memory_gb_per_s=2 * base.memory_gb_per_s,
        launch_overhead_us=2 * base.launch_overhead_us,
    )
    f1, f2 = trace_features(totals, base, proto), trace_features(totals, twice, proto)
    for t in ("conv_flops", "conv1x1_flops", "conv_bytes", "other_bytes", "grouped_bytes"):
        assert f2[t] == pytest.approx(f1[t] / 2)
    assert f2["launches"] == pytest.approx(2 * f1["launches"])
    assert f1["startup"] == 0.0  # steady state: no start-up


def test_year_protocols_average_the_start_up_over_the_timed_images() -> None:
    p22, p24 = year_protocol(2022), year_protocol(2024)
    assert [s.name for s in p22.sets] == ["DIV2K_valid", "DIV2K_test"]
    assert p22.startup_share == pytest.approx(1 / 200)  # first of 100 images, mean of two sets
    assert p24.startup_share == pytest.approx(1 / 400)
    assert p22.size[1] == 510 and 330 < p22.size[0] < 360
    assert not p22.cudnn_benchmark
    assert (year_gpu(2022).name, year_gpu(2024).name, year_gpu(2025).name) == (
        "titan-xp",
        "rtx-3090",
        "rtx-a6000",
    )
    with pytest.raises(UsageError, match="--gpu"):
        year_gpu(2023)
    assert year_gpu(2023, "h200").name == "h200"


def test_a_years_start_up_comes_from_its_baselines_published_valid_and_test_runtimes() -> None:
    assert year_protocol(2022).startup_s is None  # one published average: the fitted constant stands
    p24 = year_protocol(2024)
    # (16.18 - 10.89 x 291*510/(282*510)) x 200 images; the organisers' results.json times the first image 1.03 s
    assert p24.startup_s == pytest.approx((16.18 - 10.89 * 291 / 282) * 0.2)
    assert "16.18 ms valid" in p24.describe()
    proj = load_cost_model().project(record_trace(Net(), p24.size), "rtx-3090", p24)
    assert proj.terms_ms["startup"] == pytest.approx(p24.startup_s / 400 * 1e3)


# ------------------------------------------------------------------------------------------------------------
# the fit


def test_nnls_recovers_non_negative_coefficients_and_agrees_with_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((40, 6))
    x_true = np.array([0.5, 0.0, 2.0, 0.0, 1.0, 3.0])
    x = nnls(a, a @ x_true)
    assert np.allclose(x, x_true, atol=1e-8)
    b = rng.normal(size=40)
    got = nnls(a, b)
    assert (got >= 0).all()
    scipy_opt = pytest.importorskip("scipy.optimize")
    want, _ = scipy_opt.nnls(a, b)
    assert np.allclose(got, want, atol=1e-7)


def test_spearman_of_ranks() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(math.sqrt(3) / 2)


def _samples_2022() -> list[tuple[dict, float]]:
    data = json.loads(TRACES.read_text())
    proto = year_protocol(2022)
    rows = sorted((int(k), v) for k, v in data["ntire2022"].items() if v["status"] == "ok")
    return [(trace_features(v["totals"], "titan-xp", proto), v["published_ms"] * 1e-3) for _, v in rows]


def test_a_fit_on_the_2022_traces_projects_held_out_entries_within_the_acceptance() -> None:
    samples = _samples_2022()
    assert len(samples) >= 35
    cm, loo = fit_cost_model(samples, fitted_on="2022 traces")
    measured = [s for _, s in samples]
    assert spearman(loo, measured) >= 0.9
    assert float(np.median([abs(p / m - 1) for p, m in zip(loo, measured)])) <= 0.15
    assert all(v >= 0 for v in cm.coefficients.values())
    assert cm.ratio_low < 1 < cm.ratio_high
    assert load_cost_model().ratio_low < 1 < load_cost_model().ratio_high


def test_the_packaged_fit_is_the_fit_of_the_committed_traces() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "projection_validate", ROOT / "reports/projection/validate.py"
    )
    validate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(validate)
    lent = [fs for _, (fs, _) in validate._lent_samples(json.loads(TRACES.read_text()))]
    assert len(lent) >= 18  # the zoo measured on the lent H100 and H200 (reports/gpu/)
    cm, _ = fit_cost_model(
        _samples_2022(), fitted_on="x", measured=lent, measured_weight=validate.MEASURED_WEIGHT
    )
    packaged = load_cost_model()
    for t in TERMS:
        assert packaged.coefficients[t] == pytest.approx(cm.coefficients[t], rel=1e-6, abs=1e-12)
    assert packaged.ratio_low == pytest.approx(cm.ratio_low) and "Titan Xp" in packaged.fitted_on


def test_a_fit_with_too_few_samples_or_unknown_terms_is_refused() -> None:
    f = dict.fromkeys(TERMS, 1.0)
    with pytest.raises(UsageError, match="at least"):
        fit_cost_model([(f, 1.0)] * 3, fitted_on="x")
    with pytest.raises(UsageError, match="unknown cost terms"):
        fit_cost_model([(f, 1.0)] * 20, fitted_on="x", terms=("conv_flops", "warp_speed"))
    with pytest.raises(ValueError, match="unknown terms"):
        CostModel.from_dict(
            {
                "coefficients": {"warp": 1.0},
                "ratio_low": 1,
                "ratio_high": 1,
                "coverage": 0.8,
                "fitted_on": "x",
            }
        )


# ------------------------------------------------------------------------------------------------------------
# projections


def test_a_projection_is_labelled_and_its_interval_brackets_it() -> None:
    p = project_model(Net(), "rtx-3090", (64, 64))
    assert p.label == "projection" and "projection, not a measurement" in p.text()
    assert p.low_ms < p.runtime_ms < p.high_ms
    assert p.runtime_ms == pytest.approx(sum(p.terms_ms.values()))
    m = p.metrics()
    from effbench.base.catalogue import metrics

    assert set(m) | {"runtime_projection"} <= {x.key for x in metrics()}  # catalogue keys
    assert set(m) == {
        "runtime_projected_ms",
        "runtime_projected_low_ms",
        "runtime_projected_high_ms",
        "runtime_projected_gpu",
    }


def test_more_work_projects_slower_and_a_faster_gpu_projects_faster() -> None:
    small, wide = (
        project_model(Net(16), "titan-xp", (128, 128)),
        project_model(Net(96), "titan-xp", (128, 128)),
    )
    assert wide.runtime_ms > small.runtime_ms
    assert project_model(Net(96), "h200", (128, 128)).runtime_ms < wide.runtime_ms
    ntire = project_model(Net(16), "titan-xp", (128, 128), protocol="ntire", images=10)
    assert ntire.runtime_ms > small.runtime_ms  # the first of 10 images pays the start-up
    with pytest.raises(UsageError):
        project_model(Net(16), "titan-xp", (128, 128), protocol="ntire", images=0)


def test_bench_project_prints_a_labelled_projection(capsys: pytest.CaptureFixture[str]) -> None:
    from effbench.cli import main

    assert main(["bench", "rlfn", "--project", "rtx-a6000", "--size", "64x64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["projection"]["label"] == "projection" and doc["projection"]["gpu"] == "NVIDIA RTX A6000"
    assert main(["bench", "rlfn", "--project", "rtx-a6000", "--size", "64x64"]) == 0
    assert "[projection, not a measurement" in capsys.readouterr().out


def test_challenge_check_projects_runtime_beside_the_baseline() -> None:
    from effbench.challenge.check import check_entry, check_markdown

    report = check_entry("fmen_s", 2022)
    proj = report["runtime_projection"]
    assert proj["label"] == "projection" and proj["gpu"] == "NVIDIA TITAN Xp"
    assert proj["entry"]["low_ms"] < proj["entry"]["runtime_ms"] < proj["entry"]["high_ms"]
    assert proj["ratio"] < 1  # FMEN-S is faster than the IMDN baseline (28.07 vs 50.86 ms published)
    assert "PROJECTED runtime on NVIDIA TITAN Xp (not measured" in check_markdown(report)
    unknown = check_entry("fmen_s", 2023)
    assert "runtime_projection" not in unknown and "--gpu" in unknown["runtime_projection_error"]


@pytest.mark.slow  # a fresh Python with torch per cell: ~15 s on the loaded 2-core machine
def test_the_challenge_projection_part_adds_projected_columns(tmp_path: Path) -> None:
    from effbench.challenge.manifest import load_manifest
    from effbench.challenge.run import run_challenge

    manifest = tmp_path / "m.toml"
    manifest.write_text(
        '[challenge]\nname = "t"\nyear = 2024\nroot = "."\n\n[[entry]]\nname = "rlfn"\nmodel = "rlfn"\n'
    )
    summary = run_challenge(load_manifest(manifest), tmp_path / "lb", parts="projection", progress=False)
    row = summary["leaderboard"][0]
    assert row["status"] == "ok", row
    assert row["runtime_projected_low_ms"] < row["runtime_projected_ms"] < row["runtime_projected_high_ms"]
    assert row["runtime_projected_gpu"] == "NVIDIA GeForce RTX 3090"  # the year's GPU by default
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "Runtime PROJECTED [ms]" in md and "not measured" in md

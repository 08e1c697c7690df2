"""Timing: the timer reads true time, the steady statistics, the NTIRE protocol's faithful points, output checks,
the roofline's byte count, the environment record and the ``effbench bench`` command."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch
from sweep_models import NaNOutput, Nearest, Raises, Sleep20ms, WrongShape

import effbench
from effbench.base.errors import ModelError, UsageError
from effbench.timing import BadOutputError, NonFiniteOutputError, WarmupRule, summarize
from effbench.timing.image_pairs import find_pairs, synthetic_pairs
from effbench.timing.steady import _warmup

QUICK = WarmupRule(window=2, max_runs=4, max_seconds=0.5)


def test_a_model_that_sleeps_20ms_reads_20ms_within_10_percent():
    doc = effbench.benchmark(Sleep20ms(), (8, 8), repeats=10, warmup=QUICK, threads=1)
    rt = doc["metrics"]["runtime_ms"]
    assert rt["median"] == pytest.approx(20.0, rel=0.10)
    assert rt["min"] >= 20.0  # time.sleep never returns early: a timer reading less would be wrong


def test_steady_reports_every_statistic_consistently():
    doc = effbench.benchmark(Nearest(), (8, 8), repeats=7, warmup=QUICK, threads=1)
    rt = doc["metrics"]["runtime_ms"]
    assert doc["schema"] == "effbench.result/1" and doc["status"] == "ok" and doc["protocol"] == "steady"
    assert len(rt["samples"]) == rt["repeats"] == 7
    assert rt["min"] <= rt["median"] <= rt["max"]
    assert rt["median"] == pytest.approx(statistics.median(rt["samples"]))
    assert rt["cv"] == pytest.approx(rt["std"] / rt["mean"])
    assert rt["first_call"] > 0 and rt["iqr"] >= 0 and 1 <= rt["warmup_runs"] <= 4
    assert doc["env"]["torch_threads"] == 1 and doc["settings"]["threads"] == 1
    assert doc["scale"] == 4 and doc["input_shape"] == [1, 3, 8, 8]


def test_threads_are_restored_after_the_measurement():
    before = torch.get_num_threads()
    effbench.benchmark(Nearest(), (8, 8), repeats=2, warmup=QUICK, threads=1)
    assert torch.get_num_threads() == before


def test_summarize_matches_hand_computed_statistics():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s["median"] == 3.0 and s["mean"] == 3.0 and s["min"] == 1.0 and s["max"] == 5.0
    assert s["std"] == pytest.approx(math.sqrt(2.5))
    assert s["iqr"] == pytest.approx(2.0)  # quartiles 2 and 4
    with pytest.raises(ValueError):
        summarize([])


def _scripted_timer(times):
    it = iter(times)
    return lambda step: (next(it), None)


def test_warmup_stops_once_window_medians_agree_within_2_percent():
    # first-call effects fade: 50, 20, 10 then a flat 5 ms; windows of 3
    times = [50, 20, 10, 5.0, 5.0, 5.0, 5.05, 5.0, 5.02] + [5.0] * 100
    info = _warmup(lambda: None, _scripted_timer(times), WarmupRule(window=3, max_runs=100, max_seconds=60))
    assert info["stopped"] == "settled" and info["runs"] == 9  # windows (50,20,10) (5,5,5) (5.05,5,5.02)


def test_warmup_is_bounded_when_timings_never_settle():
    times = [1.0, 2.0] * 1000  # window medians alternate 1 / 2
    info = _warmup(lambda: None, _scripted_timer(times), WarmupRule(window=1, max_runs=12, max_seconds=60))
    assert info["stopped"] == "max_runs" and info["runs"] == 12


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        (Raises(), ModelError, "error"),
        (WrongShape(), BadOutputError, "bad_output"),
        (NaNOutput(), NonFiniteOutputError, "nan_output"),
    ],
)
def test_broken_models_raise_a_clear_error_with_a_status(model, error, status):
    with pytest.raises(error) as exc:
        effbench.benchmark(model, (8, 8), scale=4, repeats=2, warmup=QUICK)
    assert getattr(exc.value, "status", "error") == status
    assert str(exc.value)


def test_bad_arguments_are_usage_errors():
    for kwargs in (
        {"protocol": "fast"},
        {"dtype": "fp8"},
        {"repeats": 0},
        {"device": "tpu"},
        {"cuda_graphs": True, "device": "cpu"},
    ):
        with pytest.raises(UsageError):
            effbench.benchmark(Nearest(), (8, 8), **kwargs)


class _Spy(Nearest):
    """Records what the NTIRE protocol guarantees at forward time."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, bool, bool]] = []

    def forward(self, x):
        self.seen.append(
            (
                torch.is_grad_enabled(),
                any(p.requires_grad for p in self.parameters()),
                torch.backends.cudnn.benchmark,
            )
        )
        return super().forward(x)


def test_ntire_protocol_is_the_challenge_script():
    model = _Spy()
    prev = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        doc = effbench.benchmark(model, (8, 8), scale=4, protocol="ntire", images=4)
    finally:
        torch.backends.cudnn.benchmark = prev
    rt = doc["metrics"]["runtime_ms"]
    # one forward per image, no warm-up; grad mode on but no parameter requires grad; cudnn.benchmark off
    assert model.seen == [(True, False, False)] * 4
    assert len(rt["samples"]) == 4 and rt["first_call"] == rt["samples"][0]
    assert rt["mean"] == pytest.approx(sum(rt["samples"]) / 4) and rt["official"] == "mean"
    assert doc["dataset"].startswith("synthetic") and doc["metrics"]["images"] == 4
    assert all(p.requires_grad for p in model.parameters())  # the caller's flags are given back


def test_ntire_psnr_on_set5_uses_rgb_uint8_and_a_scale_pixel_border(data_dir):
    pairs = find_pairs(data_dir / "Set5", scale=4)
    assert len(pairs) == 5 and all(p.hr is not None for p in pairs)
    doc = effbench.benchmark(Nearest(), scale=4, protocol="ntire", dataset=data_dir / "Set5")
    m = doc["metrics"]
    assert m["images"] == 5 and "border 4" in m["psnr_protocol"] and 5 < m["psnr"] < 40


def test_find_pairs_reads_the_div2k_layout_and_rejects_empty_folders(tmp_path: Path):
    from PIL import Image

    (tmp_path / "DIV2K_valid_LR").mkdir()
    (tmp_path / "DIV2K_valid_HR").mkdir()
    for i in (801, 802):
        Image.new("RGB", (4, 3)).save(tmp_path / f"DIV2K_valid_LR/{i:04}x4.png")
        Image.new("RGB", (16, 12)).save(tmp_path / f"DIV2K_valid_HR/{i:04}.png")
    pairs = find_pairs(tmp_path, scale=4)
    assert [p.name for p in pairs] == ["0801", "0802"]
    assert pairs[0].lr_array().shape == (3, 4, 3) and pairs[0].hr_array().shape == (12, 16, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no LR images"):
        find_pairs(tmp_path / "empty")
    lr = next(iter(synthetic_pairs(1, (5, 6), scale=2, with_hr=True)))
    assert lr.lr_array().shape == (5, 6, 3) and lr.hr_array().shape == (10, 12, 3)


def test_roofline_counts_the_bytes_of_inputs_weights_and_outputs():
    from effbench.timing.roofline import count_traffic, roofline

    conv = torch.nn.Conv2d(3, 3, 1, bias=False)
    t = count_traffic(conv, (1, 3, 8, 8))
    assert t["bytes_moved"] == (3 * 64 + 9 + 3 * 64) * 4  # input + weight + output, fp32
    r = roofline(conv, (1, 3, 8, 8), torch.device("cpu"), measured_ms=1.0)
    assert r["flops"] == 2 * 3 * 3 * 64 and r["bytes_moved"] == t["bytes_moved"]
    assert r["bound_ms"] == pytest.approx(max(r["compute_ms"], r["memory_ms"]))
    assert r["measured_over_bound"] == pytest.approx(1.0 / r["bound_ms"])
    assert r["peak_flops_per_s"] > 1e8 and r["peak_bytes_per_s"] > 1e8


def test_environment_is_recorded_and_gpu_fields_are_absent_on_cpu():
    from effbench.base.env import capture_env

    env = capture_env("cpu")
    assert env["torch_version"] == torch.__version__ and env["cpu_count"] >= 1 and env["torch_threads"] >= 1
    assert "gpu_name" not in env and all(v is not None for v in env.values())


def test_cli_bench_reports_the_statistics_as_json(capsys):
    from effbench.cli import main

    if "fmen_s" not in effbench.list_models():
        pytest.skip("zoo model fmen_s is not registered yet")
    assert (
        main(
            [
                "bench",
                "fmen_s",
                "--device",
                "cpu",
                "--size",
                "64x64",
                "--json",
                "--repeats",
                "5",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    rt = doc["metrics"]["runtime_ms"]
    assert doc["model"] == "fmen_s" and doc["input_shape"] == [1, 3, 64, 64] and doc["device"] == "cpu"
    for key in ("median", "mean", "std", "cv", "min", "iqr", "first_call"):
        assert rt[key] > 0 or key in ("std", "iqr")
    assert rt["repeats"] == 5 and len(rt["samples"]) == 5


def test_cli_bench_bad_size_and_unknown_model_exit_2(capsys):
    from effbench.cli import main

    assert main(["bench", "tests/sweep_models.py:Nearest", "--size", "0x5", "--device", "cpu"]) == 2
    assert main(["bench", "no_such_model_xyz", "--device", "cpu"]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_steady_with_graphs_records_memory_and_environment():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    doc = effbench.benchmark(Nearest(), (64, 64), device="cuda", cuda_graphs=True, repeats=20)
    m = doc["metrics"]
    assert m["runtime_ms"]["cuda_graphs"] and m["peak_memory_measured_bytes"] > 0
    assert doc["env"]["gpu_name"] and doc["env"]["cuda_version"]
    nt = effbench.benchmark(Nearest(), (64, 64), device="cuda", protocol="ntire", images=3)
    assert nt["metrics"]["ntire_memory_mib"] > 0


def test_benchmark_leaves_the_callers_model_in_its_dtype_and_device():
    import torch
    from torch import nn

    import effbench

    model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
    effbench.benchmark(model, (8, 8), device="cpu", dtype="bf16", repeats=2, threads=1)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_a_workload_and_options_time_what_the_keywords_time():
    from effbench.base.measurement import Workload
    from effbench.timing import BenchOptions

    wl = Workload((8, 8), scale=4, batch=2, threads=1)
    doc = effbench.benchmark(Nearest(), wl, BenchOptions(repeats=3, warmup=QUICK))
    assert doc["input_shape"] == [2, 3, 8, 8] and doc["metrics"]["runtime_ms"]["repeats"] == 3
    assert doc.metrics() == doc["metrics"] and dict(doc) == doc.to_dict() and json.dumps(doc.to_dict())
    with pytest.raises(TypeError, match="unknown option"):
        effbench.benchmark(Nearest(), wl, repeat=3)
    with pytest.raises(UsageError, match="batch 1"):
        effbench.benchmark(Nearest(), wl, protocol="ntire")

"""Fault injection for the measuring commands (issue 14, items 5-8): hanging models, huge inputs, corrupt images,
junk and code-running checkpoints, bad CLI values, and CPU timings that say how far they can be trusted."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effbench.ci.gate import EXIT_INCONCLUSIVE
from effbench.cli import main
from effbench.timing.steady import TimingTarget, WarmupRule, median_ci, time_steady

MODELS = '''
import time

import torch
from torch import nn


class Hang(nn.Module):
    """A x4 model whose forward never returns (a Python loop around sleep)."""

    def __init__(self, scale=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x):
        while True:
            time.sleep(0.05)


class Shrink(nn.Module):
    """Claims to upscale but returns its input's size."""

    def __init__(self, scale=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class Tiny(nn.Module):
    def __init__(self, scale=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.up(self.conv(x))
'''


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    path = tmp_path / "fault_models.py"
    path.write_text(MODELS)
    return path


def _images(folder: Path, names: list[str], size: int = 32) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{name}.png")


# --- timeouts: a hanging forward is interrupted -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["bench", "--device", "cpu", "--size", "8x8"], ["profile", "--size", "8x8"]]
)
def test_a_hanging_model_is_stopped_by_timeout_with_exit_code_4(models, command, capsys):
    t0 = time.perf_counter()
    rc = main([command[0], f"{models}:Hang", *command[1:], "--timeout", "1"])
    assert rc == 4 and time.perf_counter() - t0 < 15
    assert f"{command[0]} of {models}:Hang timed out after 1 s" in capsys.readouterr().err


def test_eval_of_a_hanging_model_times_out(models, tmp_path, capsys):
    _images(tmp_path / "set" / "HR", ["a"])
    rc = main(["eval", f"{models}:Hang", "--dataset", str(tmp_path / "set"), "--timeout", "1"])
    assert rc == 4
    assert "eval of" in capsys.readouterr().err


def test_timeout_must_be_positive(models):
    with pytest.raises(SystemExit) as exc:
        main(["bench", f"{models}:Tiny", "--timeout", "-1"])
    assert exc.value.code == 2


# --- pre-flight memory check ----------------------------------------------------------------------------------------


def test_a_huge_cpu_input_is_refused_before_allocating_with_the_figures(capsys):
    t0 = time.perf_counter()
    rc = main(["bench", "fmen_s", "--device", "cpu", "--size", "20000x20000"])
    err = capsys.readouterr().err
    assert rc == 1 and time.perf_counter() - t0 < 30
    assert (
        "needs a predicted" in err
        and "GiB" in err
        and "available" in err
        and "refused before allocating" in err
    )


def test_the_preflight_figures_are_recorded_when_the_model_fits(models):
    from effbench.timing import benchmark

    doc = benchmark(f"{models}:Tiny", (8, 8), device="cpu", repeats=3)
    pre = doc["settings"]["preflight"]
    assert 0 < pre["predicted_bytes"] < pre["available_bytes"]


@pytest.fixture
def tiny_and_counted_predictions(models, monkeypatch):
    """The Tiny model, a prediction function made before counting starts, and the list of later predictions."""
    import effbench.memory.predict as predict
    from effbench.zoo.spec import resolve_model

    model = resolve_model(f"{models}:Tiny").model
    real = predict.predict_memory
    calls: list = []
    monkeypatch.setattr(predict, "predict_memory", lambda *a, **k: calls.append(a) or real(*a, **k))
    return model, real, calls


def test_a_prediction_the_caller_has_spares_the_preflight_a_second_one(tiny_and_counted_predictions):
    from effbench.timing import benchmark

    model, predict_memory, calls = tiny_and_counted_predictions
    known = predict_memory(model, (8, 8))
    doc = benchmark(model, (8, 8), device="cpu", repeats=3, predicted_memory=known)
    assert doc["settings"]["preflight"]["predicted_bytes"] == known.peak_bytes and calls == []


def test_a_prediction_for_another_input_size_is_not_reused_by_the_preflight(tiny_and_counted_predictions):
    from effbench.timing import benchmark

    model, predict_memory, calls = tiny_and_counted_predictions
    other = predict_memory(model, (16, 16))
    doc = benchmark(model, (8, 8), device="cpu", repeats=3, predicted_memory=other)
    assert len(calls) == 1
    assert 0 < doc["settings"]["preflight"]["predicted_bytes"] < other.peak_bytes


# --- eval keeps what it scored --------------------------------------------------------------------------------------


@pytest.fixture()
def corrupt_set(tmp_path: Path) -> Path:
    _images(tmp_path / "set" / "HR", ["a", "c"])
    (tmp_path / "set" / "HR" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return tmp_path / "set"


def test_eval_stops_at_a_corrupt_image_naming_it_and_keeps_the_scored_ones(models, corrupt_set, capsys):
    rc = main(["eval", f"{models}:Tiny", "--dataset", str(corrupt_set), "--json"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert str(corrupt_set / "HR" / "b.png") in err
    doc = json.loads(out)
    assert [r["name"] for r in doc["images"]] == ["a"] and doc["n_images"] == 1


def test_eval_skip_bad_goes_on_and_lists_the_skipped_image(models, corrupt_set, capsys):
    rc = main(["eval", f"{models}:Tiny", "--dataset", str(corrupt_set), "--json", "--skip-bad"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [r["name"] for r in doc["images"]] == ["a", "c"]
    assert [s["path"] for s in doc["skipped"]] == [str(corrupt_set / "HR" / "b.png")]


# --- checkpoints ----------------------------------------------------------------------------------------------------


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # loading this pickle would create the marker file
        return (os.system, (f"touch {self.marker}",))


def test_a_junk_checkpoint_is_refused_as_not_a_checkpoint(models, tmp_path, capsys):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is no checkpoint at all")
    rc = main(["profile", f"{models}:Tiny", "--size", "8x8", "--weights", str(junk)])
    err = capsys.readouterr().err
    assert rc == 1 and "junk.pth" in err and "is not a PyTorch checkpoint" in err
    assert "weights_only=False" not in err


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_a_code_running_checkpoint_is_refused_and_never_runs(models, tmp_path, capsys, writer):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    if writer == "torch":
        torch.save({"conv.weight": torch.zeros(1), "x": _RunsCode(marker)}, evil)
    else:
        evil.write_bytes(pickle.dumps(_RunsCode(marker), protocol=4))
    rc = main(["profile", f"{models}:Tiny", "--size", "8x8", "--weights", str(evil)])
    err = capsys.readouterr().err
    assert rc == 1 and "evil.pth" in err
    assert "runs no code" in err and "system" in err
    assert "weights_only=False" not in err
    assert not marker.exists()


def test_a_state_dict_of_another_model_lists_its_keys(models, tmp_path, capsys):
    other = tmp_path / "other.pth"
    torch.save({"body.0.weight": torch.zeros(3, 3, 3, 3)}, other)
    rc = main(["profile", f"{models}:Tiny", "--size", "8x8", "--weights", str(other)])
    err = capsys.readouterr().err
    assert rc == 1 and "state dict whose keys do not fit" in err and "body.0.weight" in err


# --- bad CLI values -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--repeats", "-1"], "--repeats"),
        (["--repeats", "0"], "--repeats"),
        (["--threads", "0"], "--threads"),
        (["--timeout", "-5"], "--timeout"),
        (["--sizes", "0x8"], "positive"),
    ],
)
def test_run_refuses_bad_values_before_launching_anything(models, tmp_path, capsys, flags, says):
    out = tmp_path / "runs"
    rc = main(
        ["run", "--models", f"{models}:Tiny", "--devices", "cpu", "--out", str(out), "--no-progress", *flags]
    )
    assert rc == 2 and says in capsys.readouterr().err
    assert not (out / "cells").exists() or not any((out / "cells").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_run_on_cuda_without_cuda_names_the_devices_flag(models, tmp_path, capsys):
    rc = main(["run", "--models", f"{models}:Tiny", "--devices", "cuda", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "--devices" in err and "--device " not in err


def test_memory_warns_when_the_output_is_not_the_x_scale_image(models, capsys):
    rc = main(["memory", f"{models}:Shrink", "--size", "8x8"])
    err = capsys.readouterr().err
    assert rc == 0 and "warning" in err and "returns shape (1, 3, 8, 8)" in err and "(1, 3, 32, 32)" in err


# --- trustworthy CPU timing -----------------------------------------------------------------------------------------


def test_median_ci_is_the_order_statistic_interval():
    assert median_ci([5.0, 1.0, 4.0, 2.0, 3.0]) is None  # n = 5: even [min, max] covers only 94 %
    assert median_ci([6.0, 1.0, 5.0, 2.0, 4.0, 3.0]) == (1.0, 6.0)  # n = 6: P = 1 - 2/64
    xs = [float(i) for i in range(100)]  # n = 100: ranks 40 and 61 (binomial tables)
    assert median_ci(xs) == (39.0, 60.0)


class FakeClock:
    """A clock that moves only when a step says so: the timing rules are tested whatever the machine's load (on
    a loaded machine a busy-wait's times spread so much that no 95% interval gets tight)."""

    def __init__(self) -> None:
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def perf_counter(self) -> float:
        return self.ns * 1e-9

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    import effbench.timing.steady as steady

    fake = FakeClock()
    monkeypatch.setattr(steady, "time", fake)
    return fake


def test_steady_timing_stops_once_the_median_ci_is_tight(fake_clock):
    jitter = iter(np.random.default_rng(0).uniform(0.0, 0.0002, 10_000))

    def step() -> None:
        fake_clock.advance(0.002 + next(jitter))  # 2.0-2.2 ms: the interval is within 50% from the start

    stats = time_steady(
        step,
        torch.device("cpu"),
        repeats=None,
        rule=WarmupRule(max_runs=0),
        target=TimingTarget(ci_rel=0.5, budget_s=5.0, min_repeats=20),
    )
    assert stats["repeats_stopped"] == "ci_target" and not stats["noisy"]
    assert stats["repeats"] == 20 and stats["ci_low"] <= stats["median"] <= stats["ci_high"]


def test_the_timing_budget_bounds_the_timed_runs_even_below_the_minimum_repeats(fake_clock):
    def step() -> None:
        fake_clock.advance(0.5)  # 0.5 s a forward, 2 s of budget: 4 fit, 6 are needed for an interval

    stats = time_steady(
        step,
        torch.device("cpu"),
        repeats=None,
        rule=WarmupRule(max_runs=0),
        target=TimingTarget(ci_rel=0.5, budget_s=2.0, min_repeats=20),
    )
    assert stats["repeats"] == 6 and stats["repeats_stopped"] == "budget"
    assert stats["noisy"] and "only 6 repeats fitted in the 2 s budget" in stats["noisy_reason"]

    fake_clock.ns = 0
    stats = time_steady(
        lambda: fake_clock.advance(0.1),
        torch.device("cpu"),
        repeats=None,
        rule=WarmupRule(max_runs=0),
        target=TimingTarget(ci_rel=0.5, budget_s=2.0, min_repeats=40),
    )
    assert stats["repeats"] == 20 and stats["timed_loop_wall_ms"] == pytest.approx(2000)

    fake_clock.ns = 0
    steps = iter([0.3, 0.6] * 50)
    stats = time_steady(
        lambda: fake_clock.advance(next(steps)),
        torch.device("cpu"),
        repeats=None,
        rule=WarmupRule(max_runs=0),
        target=TimingTarget(ci_rel=0.02, budget_s=2.0, min_repeats=20),
    )
    # both reasons: the interval is wide, and the budget held too few repeats
    assert stats["repeats"] == 6 and "wider than the 2% target" in stats["noisy_reason"]
    assert "only 6 repeats fitted in the 2 s budget" in stats["noisy_reason"]


def test_a_noisy_timing_is_flagged_with_the_reason():
    rng = iter(np.random.default_rng(1).exponential(0.002, 10_000))

    def step() -> None:
        time.sleep(next(rng))

    stats = time_steady(
        step,
        torch.device("cpu"),
        repeats=None,
        rule=WarmupRule(max_runs=0),
        target=TimingTarget(ci_rel=0.001, budget_s=0.3, min_repeats=20),
    )
    assert stats["repeats_stopped"] == "budget" and stats["noisy"]
    assert "wider than the 0.1% target" in stats["noisy_reason"]


def test_bench_records_the_load_and_the_ci(models):
    from effbench.timing import benchmark

    doc = benchmark(f"{models}:Tiny", (8, 8), device="cpu", target=TimingTarget(budget_s=1.0))
    rt, load = doc["metrics"]["runtime_ms"], doc["env"]["load"]
    # 20 repeats, or on a machine too loaded to fit them in the budget fewer, flagged noisy with the reason
    assert rt["repeats"] >= 20 or (rt["repeats"] >= 6 and "fitted in the 1 s budget" in rt["noisy_reason"])
    assert {"ci_low", "ci_high", "ci_rel", "noisy"} <= set(rt)
    assert "loadavg_1m" in load and load["wall_s"] > 0 and "other_cpu_s" in load


# --- the README's CPU CI flow: run twice, gate -------------------------------------------------------------------

# The work is a sleep of WORK ms after the convs: the flow is tested end to end with real timing (cells, results,
# gate), without depending on this shared VM's CPU speed, which drifts between runs by more than the 20 % under test
# (the compute-bound case is benchmarks/bench_cpu_timing.py's).
WORK = """
import time

from torch import nn

WORK = {work}


class Work(nn.Module):
    def __init__(self, scale=4):
        super().__init__()
        self.head = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x):
        time.sleep(WORK / 1000)
        return self.up(self.head(x))
"""


@pytest.mark.slow
def test_the_cpu_ci_flow_passes_unchanged_code_and_fails_a_20_percent_slowdown(tmp_path, capsys):
    model = tmp_path / "work.py"

    def sweep(work: int, out: str) -> None:
        model.write_text(WORK.format(work=work))
        rc = main(
            [
                "run",
                "--models",
                f"{model}:Work",
                "--devices",
                "cpu",
                "--sizes",
                "16x16",
                "--threads",
                "1",
                "--no-static",
                "--no-report",
                "--no-progress",
                "--out",
                str(tmp_path / out),
            ]
        )
        assert rc == 0

    sweep(10, "base")
    sweep(10, "same")
    sweep(12, "slow")  # 12 ms of work instead of 10: 20% more time
    capsys.readouterr()
    # unchanged code never fails: it passes, or is inconclusive when a run was noisy or the machine loaded
    assert main(["gate", "--baseline", str(tmp_path / "base"), "--current", str(tmp_path / "same")]) in (
        0,
        EXIT_INCONCLUSIVE,
    )
    rc = main(["gate", "--baseline", str(tmp_path / "base"), "--current", str(tmp_path / "slow")])
    out = capsys.readouterr().out
    if rc == EXIT_INCONCLUSIVE:  # the quiet-machine verdict on recorded runs is tests/test_gate_noise.py's
        pytest.skip(
            f"needs a quiet machine: a run was noisy or loaded, the gate rightly said INCONCLUSIVE\n{out}"
        )
    assert rc == 1 and "significant slowdown" in out

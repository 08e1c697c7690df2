"""The ``steady`` protocol: a cold first call, warm-up until the timings settle, then N timed runs.

Warm-up rule (:class:`WarmupRule`): forwards are timed in windows of ``window`` runs; warm-up stops at the first
window whose median differs from the previous window's median by less than ``tolerance`` (2 %), after at least
``min_windows`` windows, and in any case after ``max_runs`` runs or once ``max_seconds`` have passed (checked after
every run); the result records which (``warmup_stopped``).

Timers: CPU uses :func:`time.perf_counter_ns` around each forward. CUDA records an event before and after a
run of back-to-back forwards (or CUDA-graph replays) and synchronises; a sample is that time divided by the number
of forwards, which is chosen after warm-up so that one sample lasts at least ``min_sample_ms`` (20 ms by default).
Timing a single forward between synchronisations leaves the GPU idle between samples: its clocks drop and the
launch latency of the next call lands inside the sample, which made run-to-run medians of small EISR models vary
by up to 27 % on an H100. Back-to-back forwards keep the device busy, so the sample is the steady per-image time.

Repeats: a fixed count, or (``repeats=None`` with a :class:`TimingTarget`, the CPU default) samples are added until
the distribution-free 95 % confidence interval of the median (order statistics of the binomial(n, 1/2) law, see
:func:`median_ci`) lies within ``ci_rel`` (2 %) of the median on either side, or the ``budget_s`` (20 s) is spent.
The budget bounds the timed loop: it stops at the first sample that ends past it, even below ``min_repeats``, once
it holds the 6 samples a 95 % interval of the median needs (so a forward longer than ``budget_s / 6`` overruns
it by at most those 6 forwards); fewer than ``min_repeats`` samples are flagged ``noisy`` with the reason.
Every result records ``ci_low``, ``ci_high`` and ``ci_rel`` (the larger half-width over the median); one whose
interval is wider than the target is flagged ``noisy`` with the reason.

:func:`run_steady` is the protocol on a prepared model (what :func:`effbench.benchmark` calls): the cold first call
with its output checked, :func:`time_steady`, and on CUDA the energy per image and the peak of one forward.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..base.stats import MIN_CI_SAMPLES, median_ci
from .output_check import check_output

__all__ = [
    "MIN_CI_SAMPLES",
    "TimingTarget",
    "WarmupRule",
    "make_timer",
    "median_ci",
    "run_steady",
    "summarize",
    "time_steady",
]


@dataclass(frozen=True)
class WarmupRule:
    """When warm-up stops: window medians within ``tolerance`` (relative), bounded by runs and seconds."""

    window: int = 5
    tolerance: float = 0.02
    min_windows: int = 2
    max_runs: int = 200
    max_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_windows < 1 or self.max_runs < 0 or self.max_seconds < 0:
            raise ValueError(f"invalid warm-up rule {self}")


@dataclass(frozen=True)
class TimingTarget:
    """Adaptive repeats: stop once the median's 95 % CI is within ``ci_rel`` of it and ``min_repeats`` (enough for
    the gate's significance test) are taken, or once ``budget_s`` of timed runs are spent (with at least
    :data:`MIN_CI_SAMPLES`), or at ``max_repeats``."""

    ci_rel: float = 0.02
    budget_s: float = 20.0
    min_repeats: int = 20
    max_repeats: int = 100_000

    def __post_init__(self) -> None:
        if not (self.ci_rel > 0 and self.budget_s > 0 and 6 <= self.min_repeats <= self.max_repeats):
            raise ValueError(f"invalid timing target {self}")


def _ci_fields(samples: list[float], target: float) -> dict[str, Any]:
    med = statistics.median(samples)
    ci = median_ci(samples)
    if ci is None or med <= 0:
        return {
            "ci_low": None,
            "ci_high": None,
            "ci_rel": None,
            "ci_target": target,
            "noisy": True,
            "noisy_reason": f"{len(samples)} repeats are too few for a 95% confidence interval of the median",
        }
    rel = max(med - ci[0], ci[1] - med) / med
    out: dict[str, Any] = {
        "ci_low": ci[0],
        "ci_high": ci[1],
        "ci_rel": rel,
        "ci_target": target,
        "noisy": rel > target,
    }
    if rel > target:
        out["noisy_reason"] = (
            f"the median's 95% CI is +-{100 * rel:.1f}% of it, wider than the "
            f"{100 * target:g}% target, after {len(samples)} repeats"
        )
    return out


def summarize(samples_ms: list[float]) -> dict[str, Any]:
    """Median, mean, std (sample), coefficient of variation, min, max and IQR of timings in milliseconds."""
    if not samples_ms:
        raise ValueError("no timing samples")
    xs = sorted(samples_ms)
    n = len(xs)
    mean = statistics.fmean(xs)
    std = statistics.stdev(xs) if n > 1 else 0.0
    if n >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {
        "median": statistics.median(xs),
        "mean": mean,
        "std": std,
        "cv": std / mean if mean > 0 else None,
        "min": xs[0],
        "max": xs[-1],
        "iqr": q3 - q1,
        "repeats": n,
    }


def make_timer(device: torch.device) -> Callable[..., tuple[float, Any]]:
    """A function ``timer(fn, n=1) -> (milliseconds per call, last result)`` for ``n`` back-to-back calls of ``fn``
    on ``device`` (CPU timers support ``n=1`` only: each CPU sample is one call)."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def cuda_timer(fn: Callable[[], Any], n: int = 1) -> tuple[float, Any]:
            start.record()
            for _ in range(n):
                out = fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / n, out

        return cuda_timer

    clock = time.perf_counter_ns

    def cpu_timer(fn: Callable[[], Any]) -> tuple[float, Any]:
        t0 = clock()
        out = fn()
        t1 = clock()
        return (t1 - t0) * 1e-6, out

    return cpu_timer


def _warmup(
    step: Callable[[], Any], timer: Callable[[Callable[[], Any]], tuple[float, Any]], rule: WarmupRule
) -> dict[str, Any]:
    runs = 0
    prev: float | None = None
    windows = 0
    t_end = time.perf_counter() + rule.max_seconds
    reason = "max_runs"
    last_change: float | None = None
    while runs < rule.max_runs:
        window = []
        for _ in range(rule.window):
            window.append(timer(step)[0])
            runs += 1
            if time.perf_counter() >= t_end:
                break
        if len(window) < rule.window:
            reason = "max_seconds"
            break
        med = statistics.median(window)
        windows += 1
        if prev is not None:
            last_change = abs(med - prev) / prev if prev > 0 else 0.0
            if last_change < rule.tolerance and windows >= rule.min_windows:
                reason = "settled"
                break
        prev = med
        if time.perf_counter() >= t_end:
            reason = "max_seconds"
            break
    return {"runs": runs, "stopped": reason, "last_change": last_change}


def time_steady(
    step: Callable[[], Any],
    device: torch.device,
    *,
    repeats: int | None,
    rule: WarmupRule,
    target: TimingTarget | None = None,
    cold_ms: float | None = None,
    min_sample_ms: float | None = None,
) -> dict[str, Any]:
    """Warm up ``step`` per ``rule``, then time ``repeats`` samples (``None``: adaptively, per ``target``);
    returns the statistics, the confidence interval of the median and the samples.

    On CUDA each sample averages enough back-to-back calls to last ``min_sample_ms`` (default 20 ms; 0 times
    single calls); on CPU each sample is one call. ``target`` (default :class:`TimingTarget`) also sets the CI
    width above which a fixed-count result is flagged ``noisy``.
    """
    if repeats is not None and repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    goal = target or TimingTarget()
    timer = make_timer(device)
    warm = _warmup(step, timer, rule) if rule.max_runs > 0 else {"runs": 0, "stopped": "disabled"}
    inner = 1
    if device.type == "cuda":
        want = 20.0 if min_sample_ms is None else min_sample_ms
        if want > 0:
            probe = statistics.median(timer(step)[0] for _ in range(3))
            inner = max(1, min(1000, math.ceil(want / max(probe, 1e-3))))

    def sample() -> float:
        return timer(step, inner)[0] if inner > 1 else timer(step)[0]

    wall0 = time.perf_counter_ns()
    if repeats is not None:
        samples = [sample() for _ in range(repeats)]
        stopped = "fixed"
    else:
        deadline = time.perf_counter() + goal.budget_s
        samples = []
        while len(samples) < goal.min_repeats:
            samples.append(sample())
            if len(samples) >= MIN_CI_SAMPLES and time.perf_counter() >= deadline:
                break
        while True:
            ci = _ci_fields(samples, goal.ci_rel)
            if not ci["noisy"] and len(samples) >= goal.min_repeats:
                stopped = "ci_target"
                break
            if len(samples) >= goal.max_repeats:
                stopped = "max_repeats"
                break
            if time.perf_counter() >= deadline:
                stopped = "budget"
                break
            for _ in range(min(max(5, len(samples) // 10), goal.max_repeats - len(samples))):
                samples.append(sample())
                if time.perf_counter() >= deadline:
                    break
    wall_ms = (time.perf_counter_ns() - wall0) * 1e-6
    stats = summarize(samples)
    stats.update(_ci_fields(samples, goal.ci_rel))
    if repeats is None and len(samples) < goal.min_repeats:
        short = (
            f"only {len(samples)} repeats fitted in the {goal.budget_s:g} s budget (fewer than "
            f"{goal.min_repeats}, which the gate's test needs)"
        )
        stats["noisy"] = True
        stats["noisy_reason"] = f"{stats['noisy_reason']}; {short}" if stats.get("noisy_reason") else short
    stats.update(
        {
            "first_call": cold_ms,
            "warmup_runs": warm["runs"],
            "calls_per_sample": inner,
            "warmup_stopped": warm["stopped"],
            "repeats_stopped": stopped,
            "timed_loop_wall_ms": wall_ms,
            "samples": samples,
        }
    )
    return stats


def _energy(
    model: nn.Module, x: torch.Tensor, device: torch.device, seconds: float
) -> dict[str, float | int]:
    """Joules per forward from NVML's total-energy counter over a loop of at least ``seconds``."""
    from ..base.env import nvml_handle, read_energy_mj

    handle = nvml_handle(device.index)
    if handle is None or read_energy_mj(handle) is None:
        return {}
    torch.cuda.synchronize(device)
    e0, t0, n = read_energy_mj(handle), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or n < 3:
        model(x)
        n += 1
        if n % 10 == 0:
            torch.cuda.synchronize(device)
    torch.cuda.synchronize(device)
    e1, dt = read_energy_mj(handle), time.perf_counter() - t0
    if e0 is None or e1 is None or e1 <= e0:
        return {}
    joules = (e1 - e0) / 1000.0
    return {"energy_j_per_image": joules / n, "power_w_mean": joules / dt, "energy_loop_images": n}


def _cuda_graph_step(model: nn.Module, x: torch.Tensor) -> tuple[Callable[[], None], torch.cuda.CUDAGraph]:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay, graph


def run_steady(
    model: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    scale: int | None,
    *,
    repeats: int | None,
    rule: WarmupRule,
    target: TimingTarget | None = None,
    cuda_graphs: bool = False,
    energy_seconds: float = 0.0,
    other_bytes: int = 0,
) -> tuple[dict[str, Any], int]:
    """The steady protocol on a prepared ``model`` and input ``x``: a cold first call (its output checked,
    :func:`~effbench.timing.output_check.check_output`), then :func:`time_steady` (CUDA-graph replays when
    ``cuda_graphs``); on CUDA also the energy per forward over ``energy_seconds`` and the peak of one forward
    after a reset, less ``other_bytes`` (device memory held before the benchmark that is not the model's, e.g. a
    cuBLAS workspace left by earlier matmuls: 32 MiB on Hopper), so the figure is what this model needs in a
    fresh process. Returns the metrics (``runtime_ms`` and the CUDA extras) and the scale (inferred when None)."""
    metrics: dict[str, Any] = {}
    cuda = device.type == "cuda"
    timer = make_timer(device)
    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize(device)
        cold_ms, out = timer(lambda: model(x))
        scale = check_output(out, x, scale)
        del out
        step: Callable[[], Any] = lambda: model(x)  # noqa: E731
        graph = None
        if cuda_graphs:
            step, graph = _cuda_graph_step(model, x)
        stats = time_steady(step, device, repeats=repeats, rule=rule, target=target, cold_ms=cold_ms)
        stats["cuda_graphs"] = bool(graph is not None)
        del graph
        metrics["runtime_ms"] = stats
        if cuda:
            if energy_seconds > 0:
                metrics.update(_energy(model, x, device, energy_seconds))
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            out = model(x)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            del out
            metrics["peak_memory_measured_bytes"] = int(peak - other_bytes)
            metrics["peak_memory_above_inputs_bytes"] = int(peak - base)
            metrics["device_memory_held_before_bytes"] = int(other_bytes)
    return metrics, scale

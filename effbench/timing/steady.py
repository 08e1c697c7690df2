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
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["WarmupRule", "summarize", "time_steady", "make_timer"]


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
    repeats: int,
    rule: WarmupRule,
    cold_ms: float | None = None,
    around_timed: tuple[Callable[[], Any], Callable[[], Any]] | None = None,
    min_sample_ms: float | None = None,
) -> dict[str, Any]:
    """Warm up ``step`` per ``rule``, then time ``repeats`` samples; returns the statistics and the samples.

    On CUDA each sample averages enough back-to-back calls to last ``min_sample_ms`` (default 20 ms; 0 times
    single calls); on CPU each sample is one call. ``around_timed`` = (before, after) callbacks run just outside
    the timed loop (e.g. energy counters).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    timer = make_timer(device)
    warm = _warmup(step, timer, rule) if rule.max_runs > 0 else {"runs": 0, "stopped": "disabled"}
    inner = 1
    if device.type == "cuda":
        target = 20.0 if min_sample_ms is None else min_sample_ms
        if target > 0:
            probe = statistics.median(timer(step)[0] for _ in range(3))
            inner = max(1, min(1000, math.ceil(target / max(probe, 1e-3))))
    samples = [0.0] * repeats
    if around_timed:
        around_timed[0]()
    wall0 = time.perf_counter_ns()
    for i in range(repeats):
        samples[i] = timer(step, inner)[0] if inner > 1 else timer(step)[0]
    wall_ms = (time.perf_counter_ns() - wall0) * 1e-6
    if around_timed:
        around_timed[1]()
    stats = summarize(samples)
    stats.update(
        {
            "first_call": cold_ms,
            "warmup_runs": warm["runs"],
            "calls_per_sample": inner,
            "warmup_stopped": warm["stopped"],
            "timed_loop_wall_ms": wall_ms,
            "samples": samples,
        }
    )
    return stats

"""Gate self-test: does the gate pass an unchanged model and fail a slower or bigger one?

A small plain CNN (``depth`` 3x3 convs of ``channels`` channels, like the body of an EISR net) is timed on the
CPU; the "slower" variant has one more conv layer (``depth + 1`` layers: about ``1/depth`` more work, 10% for
the default depth of 10). Each gate run times the baseline and the current model in interleaved rounds (so that
machine-wide noise hits both alike), writes result documents with the samples, and calls :func:`gate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .gate import GateResult, gate, load_for_gate


def plain_cnn(depth: int = 10, channels: int = 32):
    """``depth`` conv3x3+ReLU layers on ``channels`` channels."""
    from torch import nn

    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers).eval()


def static_metrics(model, x) -> dict[str, float]:
    """Params, FLOPs (torch.utils.flop_counter: 2 per multiply-add) and conv count of a model on ``x``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    convs = sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    return {
        "params": float(sum(p.numel() for p in model.parameters())),
        "flops": float(counter.get_total_flops()),
        "convs": float(convs),
    }


def time_pair(
    model_a, model_b, x, rounds: int = 50, inner: int = 10, warmup: int = 3
) -> tuple[list[float], list[float]]:
    """Interleaved timing (ms) of two models on ``x``.

    Each round yields one sample per model: the fastest of ``inner`` forwards, the two models' forwards
    alternating (a b b a a b ...) so that both see the same machine state. On a shared CPU, pre-emption only
    ever adds time, so the minimum of a short burst is a clean reading of the model's cost.
    """
    import torch

    ta: list[float] = []
    tb: list[float] = []
    with torch.no_grad():
        for _ in range(warmup):
            model_a(x)
            model_b(x)
        flip = False
        for _ in range(rounds):
            best_a = best_b = float("inf")
            for _ in range(inner):
                flip = not flip
                for which in (0, 1) if flip else (1, 0):
                    m = model_a if which == 0 else model_b
                    t0 = time.perf_counter()
                    m(x)
                    dt = time.perf_counter() - t0
                    if which == 0:
                        best_a = min(best_a, dt)
                    else:
                        best_b = min(best_b, dt)
            ta.append(1e3 * best_a)
            tb.append(1e3 * best_b)
    return ta, tb


def result_doc(
    name: str, samples: list[float], metrics: dict[str, float], shape: list[int]
) -> dict[str, Any]:
    """A result document (schema effbench.result/1) holding the timing samples and static metrics."""
    import statistics

    from ..base.results import new_result

    rt = {
        "median": statistics.median(samples),
        "mean": statistics.fmean(samples),
        "std": statistics.stdev(samples),
        "repeats": len(samples),
        "samples": samples,
    }
    return new_result(
        name,
        scale=1,
        input_shape=shape,
        device="cpu",
        dtype="fp32",
        protocol="steady",
        metrics={**metrics, "runtime_ms": rt},
    )


@dataclass
class SelfTestResult:
    """Outcome of repeated gate runs of one scenario."""

    scenario: str
    runs: int
    passed: int
    failed: int
    median_ratios: list[float]
    seconds: float


def run_scenario(
    scenario: str,
    runs: int = 20,
    depth: int = 10,
    channels: int = 16,
    size: int = 16,
    rounds: int = 80,
    inner: int = 10,
    threshold: float = 5.0,
    alpha: float = 0.05,
) -> SelfTestResult:
    """Run the gate ``runs`` times on a fresh measurement of baseline vs current.

    ``scenario``: ``"unchanged"`` (same architecture, separate instances) or ``"slower"`` (one extra conv).
    """
    import statistics

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    base_model = plain_cnn(depth, channels)
    if scenario == "unchanged":
        cur_model = plain_cnn(depth, channels)
    elif scenario == "slower":
        cur_model = plain_cnn(depth + 1, channels)
    else:
        raise ValueError(f"unknown scenario {scenario!r}: 'unchanged' or 'slower'")
    x = torch.randn(1, channels, size, size)
    shape = list(x.shape)
    mb, mc = static_metrics(base_model, x), static_metrics(cur_model, x)
    passed = failed = 0
    ratios: list[float] = []
    t0 = time.perf_counter()
    for _ in range(runs):
        tb, tc = time_pair(base_model, cur_model, x, rounds=rounds, inner=inner)
        base = load_from_docs([result_doc("plain_cnn", tb, mb, shape)])
        cur = load_from_docs([result_doc("plain_cnn", tc, mc if scenario == "slower" else mb, shape)])
        res: GateResult = gate(base, cur, thresholds={"runtime": threshold}, alpha=alpha)
        rt_checks = [c for c in res.checks if c.metric == "runtime"]
        # In the "slower" scenario the deterministic metrics fail too; count the runtime verdict alone.
        verdict = rt_checks[0].verdict if rt_checks else "missing"
        passed += verdict == "pass"
        failed += verdict == "fail"
        ratios.append(statistics.median(tc) / statistics.median(tb))
    return SelfTestResult(scenario, runs, passed, failed, ratios, time.perf_counter() - t0)


def load_from_docs(docs: list[dict[str, Any]]):
    """:func:`load_for_gate` for in-memory documents (through a temporary file, the same code path)."""
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "results.json"
        p.write_text(json.dumps(docs))
        return load_for_gate(p)

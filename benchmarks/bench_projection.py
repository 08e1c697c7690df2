"""Speed of the runtime projection -- run with ``python -m pytest benchmarks/bench_projection.py``.

The target (issue 28): projecting one entry takes under 1 s on a CPU-only machine once it is counted, i.e. once
its shapes-only trace is recorded. The benchmark projects every zoo model's recorded trace at the NTIRE 2022
protocol's size on the year's GPU (terms + cost model + interval); ``extra_info`` also records what the trace itself
cost per model (the counting step the projection comes after), and the slowest single projection.
"""

from __future__ import annotations

import time

BUDGET_S = 1.0
MODELS = ("imdn_ntire", "e_rfdn", "rlfn", "fmen_s", "edsr_baseline", "latticenet")


def test_projection_after_counting_under_1_s_per_entry(benchmark) -> None:
    from effbench.challenge.projection import year_gpu, year_protocol
    from effbench.timing.projection import load_cost_model, record_trace
    from effbench.zoo import create_model

    proto = year_protocol(2022)
    gpu = year_gpu(2022)
    traces, trace_s = {}, {}
    for name in MODELS:
        t0 = time.perf_counter()
        traces[name] = record_trace(create_model(name, scale=4), proto.size)
        trace_s[name] = round(time.perf_counter() - t0, 3)
    cm = load_cost_model()
    slowest = 0.0

    def project_all() -> list:
        nonlocal slowest
        out = []
        for tr in traces.values():
            t0 = time.perf_counter()
            out.append(cm.project(tr, gpu, proto))
            slowest = max(slowest, time.perf_counter() - t0)
        return out

    got = benchmark.pedantic(project_all, rounds=5, iterations=1)
    per_entry = benchmark.stats.stats.max / len(MODELS)
    benchmark.extra_info.update(
        per_entry_s=per_entry, slowest_single_s=slowest, trace_s=trace_s, size=list(proto.size), gpu=gpu.name
    )
    assert all(p.label == "projection" for p in got)
    assert slowest < BUDGET_S, f"one projection took {slowest:.3f} s (budget {BUDGET_S} s)"

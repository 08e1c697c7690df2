"""One trace serves every convention -- run with ``python -m pytest benchmarks/bench_conventions.py -q -s``.

The zoo (every non-reference model at x4, deploy form) at a 480x270 input (H x W = 270 x 480, a 1080p output)
under ``full``, ``ntire2022`` and ``fvcore``, each model recorded once and the three conventions' tables applied to
that trace (:func:`effbench.counting.compare_conventions`), is at least 20x faster than one
``fvcore.nn.FlopCountAnalysis(model, x).total()`` pass over the same models, timed side by side in the same run,
with equal ``fvcore`` counts.
"""

from __future__ import annotations

import importlib
import logging
import time

import pytest
import torch

import effbench
from effbench.counting import compare_conventions
from effbench.zoo.registry import list_models, model_info

MIN_SPEEDUP = 20.0
HW = (270, 480)
CONVENTIONS = ("full", "ntire2022", "fvcore")


def _zoo_x4() -> dict[str, torch.nn.Module]:
    names = [n for n in list_models() if not model_info(n).reference and 4 in model_info(n).scales]
    return {n: effbench.create_model(n, scale=4, deploy=True) for n in names}


def _fvcore_pass(models: dict[str, torch.nn.Module]) -> tuple[float, dict[str, int]]:
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    totals = {}
    t0 = time.perf_counter()
    with torch.no_grad():
        for n, m in models.items():
            fa = FlopCountAnalysis(m, torch.rand(1, 3, *HW))
            fa.unsupported_ops_warnings(False)
            fa.uncalled_modules_warnings(False)
            totals[n] = int(fa.total())
    return time.perf_counter() - t0, totals


def test_zoo_480x270_three_conventions_one_trace_20x_faster_than_fvcore(benchmark, monkeypatch) -> None:
    pytest.importorskip("fvcore")
    models = _zoo_x4()
    profile_mod = importlib.import_module("effbench.counting.profile")
    real_record, traces = profile_mod.record, []

    def counted_record(*args, **kwargs):
        traces.append(1)
        return real_record(*args, **kwargs)

    monkeypatch.setattr(profile_mod, "record", counted_record)

    def run() -> dict[str, dict[str, int]]:
        traces.clear()
        return {
            n: {c: p.flops for c, p in compare_conventions(m, HW, CONVENTIONS).items()}
            for n, m in models.items()
        }

    ours = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert len(traces) == len(models)  # one trace per model for the three conventions
    ours_s = benchmark.stats.stats.median
    fv_s, fv_totals = _fvcore_pass(models)
    for n, total in fv_totals.items():
        assert ours[n]["fvcore"] == total, n  # the same count, not just faster
    speedup = fv_s / ours_s
    print(
        f"\n{len(models)} zoo models at {HW[1]}x{HW[0]}: effbench, 3 conventions from one trace each: "
        f"{ours_s:.3f} s; fvcore FlopCountAnalysis: {fv_s:.3f} s; {speedup:.1f}x faster"
    )
    benchmark.extra_info.update(
        models=list(models), input=f"{HW[1]}x{HW[0]}", effbench_s=ours_s, fvcore_s=fv_s, speedup=speedup
    )
    assert speedup >= MIN_SPEEDUP, f"only {speedup:.1f}x faster than fvcore ({ours_s:.3f} s vs {fv_s:.3f} s)"

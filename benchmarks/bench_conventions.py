"""One trace serves every convention -- run with ``python -m pytest benchmarks/bench_conventions.py -q -s``.

The zoo (every non-reference model at x4, deploy form) at a 480x270 input (H x W = 270 x 480, a 1080p output):

1. under ``full``, ``ntire2022`` and ``fvcore``, each model recorded once and the three conventions' tables applied
   to that trace (:func:`effbench.counting.compare_conventions`), at least 3x faster than torch's own
   ``FlopCounterMode`` over a forward of the same models on the meta device (the models moved there beforehand,
   outside the timing), in interleaved rounds so that the machine's drift hits both; FlopCounterMode's count is
   2 x the ``full`` MACs of every model (the same count, not just faster);
2. the same at least 20x faster than one ``fvcore.nn.FlopCountAnalysis(model, x).total()`` pass over the same
   models, timed in the same run, with equal ``fvcore`` counts;
3. the default :func:`effbench.profile` (``full`` counts and the predicted peak memory) at least 10x faster than
   that fvcore pass.
"""

from __future__ import annotations

import importlib
import logging
import statistics
import time

import pytest
import torch

import effbench
from effbench.counting import compare_conventions, profile
from effbench.zoo.registry import list_models, model_info

HW = (270, 480)
CONVENTIONS = ("full", "ntire2022", "fvcore")
MIN_OVER_FLOP_COUNTER = 3.0
MIN_OVER_FVCORE = 20.0
MIN_PROFILE_OVER_FVCORE = 10.0


def _zoo_x4() -> dict[str, torch.nn.Module]:
    names = [n for n in list_models() if not model_info(n).reference and 4 in model_info(n).scales]
    return {n: effbench.create_model(n, scale=4, deploy=True) for n in names}


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return _zoo_x4()


def _three(models: dict[str, torch.nn.Module]) -> dict[str, dict[str, object]]:
    return {n: compare_conventions(m, HW, CONVENTIONS) for n, m in models.items()}


@pytest.fixture(scope="module")
def fvcore_pass(models: dict[str, torch.nn.Module]) -> tuple[float, dict[str, int]]:
    """One FlopCountAnalysis pass over the zoo: its seconds and each model's total."""
    pytest.importorskip("fvcore")
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


def test_zoo_480x270_three_conventions_one_trace_3x_faster_than_flop_counter_on_meta(
    benchmark, models, monkeypatch
) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    on_meta = {n: effbench.create_model(n, scale=4, deploy=True).to("meta") for n in models}
    fcm_seconds: list[float] = []
    fcm_totals: dict[str, int] = {}

    def flop_counter_round() -> None:  # pedantic's setup: runs before each timed round of ours
        t0 = time.perf_counter()
        for n, m in on_meta.items():
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                m(torch.empty(1, 3, *HW, device="meta"))
            fcm_totals[n] = int(counter.get_total_flops())
        fcm_seconds.append(time.perf_counter() - t0)

    profile_mod = importlib.import_module("effbench.counting.profile")
    real_record, traces = profile_mod.record, []

    def counted_record(*args, **kwargs):
        traces.append(1)
        return real_record(*args, **kwargs)

    monkeypatch.setattr(profile_mod, "record", counted_record)

    def run() -> dict[str, dict[str, object]]:
        traces.clear()
        return _three(models)

    ours = benchmark.pedantic(run, setup=flop_counter_round, rounds=7, iterations=1, warmup_rounds=1)
    assert len(traces) == len(models)  # one trace per model for the three conventions
    for n, total in fcm_totals.items():
        assert total == 2 * ours[n]["full"].macs, n  # the same count, not just faster
    ours_s = benchmark.stats.stats.median
    fcm_s = statistics.median(fcm_seconds[1:])  # the first ran before the warm-up round
    speedup = fcm_s / ours_s
    print(
        f"\n{len(models)} zoo models at {HW[1]}x{HW[0]}: effbench, 3 conventions from one trace each: "
        f"{ours_s:.3f} s; FlopCounterMode on meta: {fcm_s:.3f} s (medians of interleaved rounds); {speedup:.1f}x"
    )
    benchmark.extra_info.update(
        models=list(models),
        input=f"{HW[1]}x{HW[0]}",
        effbench_s=ours_s,
        flop_counter_meta_s=fcm_s,
        speedup=speedup,
    )
    assert speedup >= MIN_OVER_FLOP_COUNTER, (
        f"only {speedup:.1f}x faster than FlopCounterMode on meta ({ours_s:.3f} s vs {fcm_s:.3f} s)"
    )


def test_zoo_480x270_three_conventions_one_trace_20x_faster_than_fvcore(
    benchmark, models, fvcore_pass
) -> None:
    ours = benchmark.pedantic(lambda: _three(models), rounds=3, iterations=1, warmup_rounds=1)
    ours_s = benchmark.stats.stats.median
    fv_s, fv_totals = fvcore_pass
    for n, total in fv_totals.items():
        assert ours[n]["fvcore"].flops == total, n  # the same count, not just faster
    speedup = fv_s / ours_s
    print(
        f"\n{len(models)} zoo models at {HW[1]}x{HW[0]}: effbench, 3 conventions from one trace each: "
        f"{ours_s:.3f} s; fvcore FlopCountAnalysis: {fv_s:.3f} s; {speedup:.1f}x faster"
    )
    benchmark.extra_info.update(
        models=list(models), input=f"{HW[1]}x{HW[0]}", effbench_s=ours_s, fvcore_s=fv_s, speedup=speedup
    )
    assert speedup >= MIN_OVER_FVCORE, (
        f"only {speedup:.1f}x faster than fvcore ({ours_s:.3f} s vs {fv_s:.3f} s)"
    )


def test_zoo_480x270_default_profile_with_memory_10x_faster_than_fvcore(
    benchmark, models, fvcore_pass
) -> None:
    def run() -> dict[str, object]:
        return {n: profile(m, HW) for n, m in models.items()}  # full counts + predicted peak memory

    ours = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert all(p.peak_memory_bytes and p.memory_error is None for p in ours.values())
    ours_s = benchmark.stats.stats.median
    fv_s, _ = fvcore_pass
    speedup = fv_s / ours_s
    print(
        f"\n{len(models)} zoo models at {HW[1]}x{HW[0]}: effbench.profile (full + predicted memory): "
        f"{ours_s:.3f} s; fvcore FlopCountAnalysis: {fv_s:.3f} s; {speedup:.1f}x faster"
    )
    benchmark.extra_info.update(
        models=list(models), input=f"{HW[1]}x{HW[0]}", effbench_s=ours_s, fvcore_s=fv_s, speedup=speedup
    )
    assert speedup >= MIN_PROFILE_OVER_FVCORE, (
        f"profile() only {speedup:.1f}x faster than fvcore ({ours_s:.3f} s vs {fv_s:.3f} s)"
    )

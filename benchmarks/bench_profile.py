"""Speed of effbench.profile (shapes-only trace) -- run with ``python -m pytest benchmarks/bench_profile.py``.

1. The whole zoo at x4 and a 256x256 input under all three conventions (one trace per model, every convention
   applied to it: :func:`effbench.counting.compare_conventions`) in under 2 s in total.
2. At a 480x270 input (a 1080p output at x4), profiling under ``fvcore`` is at least 20x faster than fvcore's own
   ``FlopCountAnalysis(...).total()`` on the same models, timed side by side in the same run (and equal counts).
3. The command line, end to end in a fresh process (best of three): ``effbench --help`` and ``effbench zoo`` under 1 s
   each (neither imports torch), ``effbench profile fmen_s`` (counts and predicted memory) under 3 s.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest
import torch

import effbench
from effbench.counting import compare_conventions, profile

ZOO_BUDGET_S = 2.0
MIN_SPEEDUP = 20.0
NTIRE_MODELS = ("imdn_ntire", "e_rfdn", "fmen_s", "rlfn")  # the challenge entries fvcore is used for


def _zoo_x4() -> dict[str, torch.nn.Module]:
    return {
        n: effbench.create_model(n, scale=4)
        for n in effbench.list_models()
        if 4 in effbench.model_info(n).scales
    }


def test_zoo_x4_256_all_conventions_under_2s(benchmark) -> None:
    models = _zoo_x4()

    def run() -> dict[str, int]:
        return {n: compare_conventions(m, (256, 256))["full"].flops for n, m in models.items()}

    flops = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert all(v >= 0 for v in flops.values())
    best = benchmark.stats.stats.min
    benchmark.extra_info.update(
        models=list(models), best_s=best, median_s=benchmark.stats.stats.median, budget_s=ZOO_BUDGET_S
    )
    assert best < ZOO_BUDGET_S, f"profiling {len(models)} zoo models x 3 conventions took {best:.2f} s"


def _fvcore_seconds(model: torch.nn.Module, hw: tuple[int, int]) -> tuple[float, int]:
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    x = torch.rand(1, 3, *hw)
    t0 = time.perf_counter()
    fa = FlopCountAnalysis(model, x)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    total = int(fa.total())
    return time.perf_counter() - t0, total


def test_480x270_at_least_20x_faster_than_fvcore(benchmark) -> None:
    pytest.importorskip("fvcore")
    hw = (270, 480)
    models = {n: effbench.create_model(n, scale=4) for n in NTIRE_MODELS if n in effbench.list_models()}

    def run() -> dict[str, int]:
        return {n: profile(m, hw, convention="fvcore", peak_memory=False).flops for n, m in models.items()}

    ours = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    ours_s = benchmark.stats.stats.median
    fv_s = 0.0
    per_model = {}
    with torch.no_grad():
        for n, m in models.items():
            secs, total = _fvcore_seconds(m, hw)
            fv_s += secs
            per_model[n] = {"fvcore_s": round(secs, 3), "flops": total}
            assert ours[n] == total, n  # same count, not just faster
    speedup = fv_s / ours_s
    benchmark.extra_info.update(
        models=list(models),
        input=f"{hw[1]}x{hw[0]}",
        effbench_s=ours_s,
        fvcore_s=fv_s,
        speedup=speedup,
        per_model=per_model,
    )
    assert speedup >= MIN_SPEEDUP, f"only {speedup:.1f}x faster than fvcore ({ours_s:.3f} s vs {fv_s:.3f} s)"


def _best_wall_seconds(*argv: str, tries: int = 3) -> float:
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "effbench", *argv], capture_output=True, text=True, timeout=300
        )
        best = min(best, time.perf_counter() - t0)
        assert out.returncode == 0, out.stderr
    return best


@pytest.mark.parametrize(
    ("argv", "budget_s"),
    [(("--help",), 1.0), (("zoo",), 1.0), (("profile", "fmen_s"), 3.0)],
    ids=["help", "zoo", "profile_fmen_s"],
)
def test_command_line_end_to_end(benchmark, argv: tuple[str, ...], budget_s: float) -> None:
    seconds = benchmark.pedantic(lambda: _best_wall_seconds(*argv), rounds=1, iterations=1)
    benchmark.extra_info.update(command=" ".join(("effbench", *argv)), best_wall_s=seconds, budget_s=budget_s)
    print(f"\neffbench {' '.join(argv)}: {seconds:.2f} s wall (best of 3)")
    assert seconds < budget_s, f"effbench {' '.join(argv)} took {seconds:.2f} s (budget {budget_s} s)"

"""Gate self-test on real CPU measurements (timing-dependent, hence a benchmark and not a unit test).

Acceptance: 20 gate runs of an unchanged model pass at least 19 times; a model made ~10% slower (one extra conv
layer in a 10-layer plain CNN) fails at least 19 of 20. Each gate run times baseline and current interleaved
(80 samples each, every sample the fastest of 10 forwards alternating between the two models, 1 thread) and applies the gate's default runtime rule
(5% threshold, one-sided Mann-Whitney U at alpha 0.05).

Run: ``python -m pytest benchmarks/bench_gate.py -s`` (prints the pass/fail counts and median ratios).
"""

from __future__ import annotations

import statistics

import pytest

from effbench.ci.selftest import run_scenario


@pytest.mark.parametrize("scenario", ["unchanged", "slower"])
def test_gate_selftest_20_runs(benchmark, scenario: str) -> None:
    result = benchmark.pedantic(run_scenario, args=(scenario,), kwargs={"runs": 20}, rounds=1, iterations=1)
    ratios = result.median_ratios
    benchmark.extra_info.update(
        passed=result.passed,
        failed=result.failed,
        runs=result.runs,
        median_ratio_median=statistics.median(ratios),
        median_ratio_min=min(ratios),
        median_ratio_max=max(ratios),
    )
    print(
        f"\n{scenario}: {result.passed} pass / {result.failed} fail of {result.runs} gate runs; "
        f"median ratio {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}]; "
        f"{result.seconds:.1f} s"
    )
    if scenario == "unchanged":
        assert result.passed >= 19
    else:
        assert result.failed >= 19

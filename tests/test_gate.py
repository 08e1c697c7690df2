"""The regression gate: noise passes, a real slowdown fails, any growth of a deterministic metric fails, and the
exit codes say which (0 pass, 1 regression, 2 usage or missing data).

The timing-dependent 20-run self-test on real CPU measurements lives in benchmarks/bench_gate.py; here the
runtime samples are drawn with a fixed seed from a noise model of a shared CPU (3% jitter plus 10% of samples
pre-empted and 1.5-3x slower), so the verdicts are deterministic.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from effbench.base.results import new_result, write_json_atomic
from effbench.base.stats import bootstrap_ratio_ci, mann_whitney_u, t_sf, welch_t
from effbench.ci.gate import gate, load_for_gate, parse_percent
from effbench.ci.selftest import load_from_docs, plain_cnn, static_metrics
from effbench.cli import main

ONE_MAP = 16 * 16 * 16 * 4  # bytes of one more 16-channel 16x16 fp32 feature map alive at the peak


def noisy_samples(true_ms: float, n: int, rng: np.random.Generator) -> list[float]:
    s = true_ms * np.exp(rng.normal(0.0, 0.03, n))
    hit = rng.random(n) < 0.10
    s[hit] *= rng.uniform(1.5, 3.0, hit.sum())
    return s.tolist()


def doc(model: str, samples: list[float] | None, **metrics) -> dict:
    m = dict(metrics)
    if samples is not None:
        m["runtime_ms"] = {
            "median": float(np.median(samples)),
            "mean": float(np.mean(samples)),
            "std": float(np.std(samples, ddof=1)) if len(samples) > 1 else 0.0,
            "repeats": len(samples),
            "samples": samples,
        }
    return new_result(model, scale=4, input_shape=[1, 3, 64, 64], device="cpu", dtype="fp32", metrics=m)


@pytest.fixture(scope="module")
def conv_metrics() -> tuple[dict, dict]:
    import torch

    x = torch.randn(1, 16, 16, 16)
    return static_metrics(plain_cnn(10, 16), x), static_metrics(plain_cnn(11, 16), x)


def run_gate(base_docs, cur_docs, **kw):
    return gate(load_from_docs(base_docs), load_from_docs(cur_docs), **kw)


def test_unchanged_model_passes_at_least_19_of_20(conv_metrics) -> None:
    m, _ = conv_metrics
    verdicts = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        res = run_gate(
            [doc("net", noisy_samples(1.0, 60, rng), **m)], [doc("net", noisy_samples(1.0, 60, rng), **m)]
        )
        verdicts.append(res.exit_code)
    assert verdicts.count(0) >= 19


def test_ten_percent_slower_fails_at_least_19_of_20(conv_metrics) -> None:
    m, _ = conv_metrics
    codes = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        res = run_gate(
            [doc("net", noisy_samples(1.0, 60, rng), **m)], [doc("net", noisy_samples(1.1, 60, rng), **m)]
        )
        codes.append(res.exit_code)
        if res.exit_code == 1:
            assert [c.metric for c in res.regressions] == ["runtime"]
    assert codes.count(1) >= 19


def test_slower_within_threshold_or_not_significant_passes() -> None:
    rng = np.random.default_rng(7)
    # 3% slower with a 5% threshold: never a regression
    res = run_gate([doc("net", noisy_samples(1.0, 60, rng))], [doc("net", noisy_samples(1.03, 60, rng))])
    assert res.exit_code == 0
    # 10% slower on 5 vs 5 very noisy samples: beyond the threshold but not significant
    res = run_gate([doc("net", [1.0, 1.3, 0.8, 1.1, 0.9])], [doc("net", [1.2, 0.9, 1.2, 1.0, 1.4])])
    rt = next(c for c in res.checks if c.metric == "runtime")
    assert rt.verdict == "pass" and "not significant" in rt.detail


def test_too_few_repeats_to_test_a_slowdown_is_missing_data() -> None:
    # 3 vs 3: even complete separation has p = 1/C(6,3) = 0.05, never < alpha = 0.05
    res = run_gate([doc("net", [1.0, 1.01, 0.99])], [doc("net", [1.5, 1.51, 1.49])])
    rt = next(c for c in res.checks if c.metric == "runtime")
    assert rt.verdict == "missing" and "too few repeats" in rt.detail and res.exit_code == 2
    # ...while the same repeats within the threshold pass
    assert run_gate([doc("net", [1.0, 1.01, 0.99])], [doc("net", [1.0, 1.02, 0.98])]).exit_code == 0


def test_one_more_conv_fails_params_flops_and_memory_every_time(conv_metrics) -> None:
    m10, m11 = conv_metrics
    assert m11["params"] - m10["params"] == 16 * 16 * 9 + 16  # one 3x3 conv, 16 -> 16 channels, with bias
    assert m11["convs"] == m10["convs"] + 1
    for seed in range(20):
        rng = np.random.default_rng(seed)
        same = noisy_samples(1.0, 30, rng)
        base = doc("net", same, **m10, peak_memory_predicted_bytes=10 * ONE_MAP)
        for metric, cur_metrics in (
            ("params", {**m11, "flops": m10["flops"], "convs": m10["convs"]}),
            ("FLOPs", {**m10, "flops": m11["flops"]}),
            ("convs", {**m10, "convs": m11["convs"]}),
        ):
            res = run_gate(
                [base], [doc("net", same, **cur_metrics, peak_memory_predicted_bytes=10 * ONE_MAP)]
            )
            assert res.exit_code == 1 and [c.metric for c in res.regressions] == [metric]
        res = run_gate([base], [doc("net", same, **m10, peak_memory_predicted_bytes=11 * ONE_MAP)])
        assert res.exit_code == 1 and [c.metric for c in res.regressions] == ["memory (predicted)"]
    # a threshold lets a known growth through
    res = run_gate(
        [base],
        [doc("net", same, **m11, peak_memory_predicted_bytes=11 * ONE_MAP)],
        thresholds={"params": 15, "flops": 15, "convs": 15, "memory": 15},
    )
    assert res.exit_code == 0


def test_missing_model_or_metric_is_exit_2_and_regression_wins(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    s = noisy_samples(1.0, 30, rng)
    base = [doc("a", s, params=100.0), doc("b", s, params=100.0)]
    res = run_gate(base, [doc("a", s, params=100.0)])
    assert res.exit_code == 2 and res.missing[0].model == "b"
    res = run_gate(base, [doc("a", s), doc("b", s, params=100.0)])
    assert res.exit_code == 2 and res.missing[0].metric == "params"
    res = run_gate(base, [doc("a", s, params=101.0)])  # a regression and a missing model
    assert res.exit_code == 1
    res = run_gate([doc("a", s)], [doc("a", s), doc("new", s)])
    assert res.exit_code == 0 and any(c.verdict == "new" for c in res.checks)
    failed = new_result(
        "a",
        scale=4,
        input_shape=[1, 3, 64, 64],
        device="cpu",
        dtype="fp32",
        status="error",
        error="RuntimeError: shape mismatch",
    )
    assert run_gate([doc("a", s)], [failed]).exit_code == 1


def test_cli_exit_codes_and_summary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    base_dir = tmp_path / "base" / "cells"
    write_json_atomic(base_dir / "net.json", doc("net", noisy_samples(1.0, 60, rng), params=1000.0))
    same = tmp_path / "same.json"
    write_json_atomic(same, [doc("net", noisy_samples(1.0, 60, rng), params=1000.0)])
    slow = tmp_path / "slow.json"
    write_json_atomic(slow, [doc("net", noisy_samples(1.25, 60, rng), params=1000.0)])
    summary = tmp_path / "summary.md"
    assert (
        main(
            ["gate", "--baseline", str(tmp_path / "base"), "--current", str(same), "--summary", str(summary)]
        )
        == 0
    )
    assert "effbench gate: PASS" in capsys.readouterr().out
    assert (
        main(
            ["gate", "--baseline", str(tmp_path / "base"), "--current", str(slow), "--summary", str(summary)]
        )
        == 1
    )
    text = summary.read_text()
    assert "effbench gate: PASS" in text and "effbench gate: FAIL" in text and "Mann-Whitney" in text
    assert (
        main(["gate", "--baseline", str(tmp_path / "base"), "--current", str(slow), "--runtime", "40%"]) == 0
    )
    assert main(["gate", "--baseline", str(tmp_path / "nope"), "--current", str(same)]) == 2
    assert main(["gate", "--baseline", str(same), "--current", str(same), "--runtime", "five"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["gate", "--baseline", str(bad), "--current", str(same)]) == 2
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["gate", "--baseline", str(empty), "--current", str(same)]) == 2


def test_reads_pytest_benchmark_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)

    def bench_file(path: Path, true_s: float, params: int, save_data: bool) -> Path:
        data = [x / 1e3 for x in noisy_samples(true_s * 1e3, 40, rng)]
        stats = {
            "min": min(data),
            "max": max(data),
            "mean": float(np.mean(data)),
            "stddev": float(np.std(data, ddof=1)),
            "median": float(np.median(data)),
            "rounds": len(data),
            "iterations": 1,
        }
        if save_data:
            stats["data"] = data
        path.write_text(
            json.dumps(
                {
                    "machine_info": {},
                    "commit_info": {},
                    "version": "5.2.3",
                    "benchmarks": [
                        {
                            "group": None,
                            "name": "test_sr",
                            "fullname": "tests/test_sr.py::test_sr",
                            "params": None,
                            "extra_info": {"params": params, "flops": 2.0e9, "convention": "full"},
                            "stats": stats,
                        }
                    ],
                }
            )
        )
        return path

    base = bench_file(tmp_path / "0001_base.json", 0.010, 5000, True)
    assert load_for_gate(base)["tests/test_sr.py::test_sr"].metrics == {"params": 5000.0, "flops": 2.0e9}
    assert gate(base, bench_file(tmp_path / "0002.json", 0.010, 5000, True)).exit_code == 0
    assert gate(base, bench_file(tmp_path / "0003.json", 0.012, 5000, True)).exit_code == 1
    res = gate(base, bench_file(tmp_path / "0004.json", 0.010, 5100, True))
    assert res.exit_code == 1 and res.regressions[0].metric == "params"
    # summaries only (saved without --benchmark-save-data): Welch's t on the means
    sb = bench_file(tmp_path / "0005.json", 0.010, 5000, False)
    res = gate(sb, bench_file(tmp_path / "0006.json", 0.013, 5000, False))
    assert res.exit_code == 1 and "Welch" in res.regressions[0].detail


def test_baseline_save_and_update(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep" / "cells"
    write_json_atomic(sweep / "a.json", doc("a", [1.0, 1.1, 0.9], params=1.0))
    write_json_atomic(sweep / "b.json", doc("b", [2.0, 2.1, 1.9], params=2.0))
    f = tmp_path / "baseline.json"
    assert main(["baseline", "save", str(tmp_path / "sweep"), "--file", str(f)]) == 0
    assert [d["model"] for d in json.loads(f.read_text())] == ["a", "b"]
    new = tmp_path / "new.json"
    write_json_atomic(new, [doc("b", [2.0], params=3.0), doc("c", [3.0], params=4.0)])
    assert main(["baseline", "update", str(new), "--file", str(f)]) == 0
    assert "1 replaced, 1 added" in capsys.readouterr().out
    by_model = {d["model"]: d for d in json.loads(f.read_text())}
    assert sorted(by_model) == ["a", "b", "c"] and by_model["b"]["metrics"]["params"] == 3.0
    assert main(["baseline", "update", str(new), "--file", str(tmp_path / "none.json")]) == 2


def test_baseline_update_keeps_two_models_of_one_name_apart(tmp_path: Path) -> None:
    a, b = doc("Net", [1.0], params=1.0), doc("Net", [2.0], params=2.0)
    a["model_key"], b["model_key"] = "a.py:Net", "b.py:Net"  # the same class name in two files
    write_json_atomic(tmp_path / "a.json", [a])
    write_json_atomic(tmp_path / "b.json", [b])
    f = tmp_path / "baseline.json"
    assert main(["baseline", "save", str(tmp_path / "a.json"), "--file", str(f)]) == 0
    assert main(["baseline", "update", str(tmp_path / "b.json"), "--file", str(f)]) == 0
    saved = json.loads(f.read_text())
    assert sorted((d["model_key"], d["metrics"]["params"]) for d in saved) == [
        ("a.py:Net", 1.0),
        ("b.py:Net", 2.0),
    ]


def test_mann_whitney_exact_small_case_by_hand() -> None:
    # x entirely above y, 3 vs 3: U = 9, and only 1 of C(6,3) = 20 arrangements is that extreme -> p = 0.05
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]) == (9.0, pytest.approx(0.05))
    assert mann_whitney_u([1, 2, 3], [4, 5, 6])[1] == pytest.approx(1.0)


def test_statistics_match_scipy_when_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(11)
    x, y = rng.normal(1.05, 0.1, 25), rng.normal(1.0, 0.1, 30)
    assert mann_whitney_u(x, y)[1] == pytest.approx(
        stats.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue, rel=1e-9
    )
    xt, yt = np.round(x, 1), np.round(y, 1)  # ties: normal approximation with tie correction
    assert mann_whitney_u(xt, yt)[1] == pytest.approx(
        stats.mannwhitneyu(xt, yt, alternative="greater", method="asymptotic").pvalue, rel=1e-9
    )
    assert welch_t(1.1, 0.1, 10, 1.0, 0.2, 12)[1] == pytest.approx(
        stats.ttest_ind_from_stats(1.1, 0.1, 10, 1.0, 0.2, 12, equal_var=False, alternative="greater").pvalue
    )
    assert t_sf(-1.3, 4.5) == pytest.approx(stats.t.sf(-1.3, 4.5))


def test_bootstrap_ci_brackets_the_true_ratio() -> None:
    rng = np.random.default_rng(2)
    lo, hi = bootstrap_ratio_ci(rng.normal(1.1, 0.02, 50), rng.normal(1.0, 0.02, 50))
    assert lo < 1.1 < hi and hi - lo < 0.05


def test_parse_percent() -> None:
    assert parse_percent("5%") == 5.0 and parse_percent("0") == 0.0 and parse_percent(" 2.5 % ") == 2.5
    for bad in ("-1%", "abc", "nan"):
        with pytest.raises(ValueError):
            parse_percent(bad)
    assert math.isfinite(parse_percent("1e3"))

"""The gate never fails on noise: a runtime measured noisy or on a loaded machine is INCONCLUSIVE (exit 7) with
the reason, while a real 20% slowdown measured quietly still FAILs (issue 26)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from effbench.base.results import new_result
from effbench.ci.gate import EXIT_INCONCLUSIVE, gate
from effbench.ci.selftest import load_from_docs
from effbench.cli import main


def timing(true_ms: float, seed: int, n: int = 60, **flags) -> dict:
    samples = (true_ms * np.exp(np.random.default_rng(seed).normal(0.0, 0.01, n))).tolist()
    return {
        "median": float(np.median(samples)),
        "mean": float(np.mean(samples)),
        "std": float(np.std(samples, ddof=1)),
        "repeats": n,
        "samples": samples,
        **flags,
    }


def doc(runtime: dict, other_cpu_share: float = 0.02) -> dict:
    d = new_result(
        "net",
        scale=4,
        input_shape=[1, 3, 64, 64],
        device="cpu",
        dtype="fp32",
        metrics={"runtime_ms": runtime, "params": 1000},
    )
    d["env"] = {"load": {"other_cpu_share": other_cpu_share, "wall_s": 4.0}}
    return d


def runtime_check(res):
    return next(c for c in res.checks if c.metric == "runtime")


def run_gate(base: dict, cur: dict, **kw):
    return gate(load_from_docs([base]), load_from_docs([cur]), **kw)


def test_a_20_percent_slowdown_measured_quietly_fails():
    res = run_gate(doc(timing(10.0, 1)), doc(timing(12.0, 2)))
    assert res.exit_code == 1 and runtime_check(res).verdict == "fail"
    assert "significant slowdown" in runtime_check(res).detail


@pytest.mark.parametrize("side", ["baseline", "current"])
def test_a_noisy_side_makes_even_a_clear_slowdown_inconclusive(side):
    noisy = {"noisy": True, "noisy_reason": "the median's 95% CI is +-6.2% of it, wider than the 2% target"}
    base = doc(timing(10.0, 1, **(noisy if side == "baseline" else {})))
    cur = doc(timing(12.0, 2, **(noisy if side == "current" else {})))
    res = run_gate(base, cur)
    chk = runtime_check(res)
    assert res.exit_code == EXIT_INCONCLUSIVE and chk.verdict == "inconclusive"
    assert f"{side} is noisy (the median's 95% CI is +-6.2%" in chk.detail
    assert "INCONCLUSIVE" in res.markdown()


def test_a_loaded_machine_makes_the_runtime_inconclusive_with_the_share():
    res = run_gate(doc(timing(10.0, 1)), doc(timing(12.0, 2), other_cpu_share=0.55))
    chk = runtime_check(res)
    assert res.exit_code == EXIT_INCONCLUSIVE
    assert (
        "current ran on a loaded machine (other processes used 55% of the CPUs, more than 25%)" in chk.detail
    )
    # the limit is the caller's: with 60% allowed the same slowdown fails
    assert (
        run_gate(
            doc(timing(10.0, 1)), doc(timing(12.0, 2), other_cpu_share=0.55), max_other_cpu=0.6
        ).exit_code
        == 1
    )


def test_a_deterministic_regression_still_fails_beside_an_inconclusive_runtime():
    cur = doc(timing(12.0, 2, noisy=True))
    cur["metrics"]["params"] = 1001
    res = run_gate(doc(timing(10.0, 1)), cur)
    assert res.exit_code == 1 and [c.metric for c in res.regressions] == ["params"]
    assert runtime_check(res).verdict == "inconclusive"


WORK = """
import time

from torch import nn


class Work(nn.Module):
    def __init__(self, scale=4):
        super().__init__()
        self.head = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x):
        time.sleep(0.01)
        return self.up(self.head(x))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/stat").exists(), reason="the machine's load is read from /proc/stat (Linux)"
)
def test_unchanged_code_with_a_cpu_hog_beside_the_second_run_never_fails(tmp_path, capsys):
    model = tmp_path / "work.py"
    model.write_text(WORK)

    def sweep(out: str) -> None:
        argv = ["run", "--models", f"{model}:Work", "--devices", "cpu", "--sizes", "16x16", "--threads", "1"]
        argv += ["--budget", "2", "--no-static", "--no-report", "--no-progress", "--out", str(tmp_path / out)]
        assert main(argv) == 0

    sweep("base")
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(max(1, (os.cpu_count() or 1)))
    ]
    try:
        sweep("current")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    capsys.readouterr()
    rc = main(["gate", "--baseline", str(tmp_path / "base"), "--current", str(tmp_path / "current")])
    out = capsys.readouterr().out
    assert rc == EXIT_INCONCLUSIVE, out
    assert "current ran on a loaded machine" in out and "❌" not in out

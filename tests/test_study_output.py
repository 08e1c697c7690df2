"""Study output (issue 17 item 6): no profiler noise on the terminal, and each row names the measurement its
time verdict uses (paired rounds in one process, or the separate processes' times)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from effbench.studies import analyse_study, get_study
from effbench.studies.native_stderr import native_stderr_to
from effbench.studies.report import render_study_markdown
from effbench.studies.verdicts import time_basis_words
from effbench.timing.breakdown import op_time_breakdown


def _doc(ms: float, cv: float = 0.01, fastest: float | None = None) -> dict:
    rt = {"median": ms, "cv": cv} | ({"min": fastest} if fastest is not None else {})
    metrics = {"params": 1000, "flops": 10, "peak_memory_predicted_bytes": 100, "runtime_ms": rt}
    return {"status": "ok", "metrics": metrics}


def test_profiler_and_native_stderr_go_to_the_log_not_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "profiler.log"
    with native_stderr_to(log):
        os.write(2, b"native line\n")
        op_time_breakdown(torch.nn.Conv2d(3, 4, 3), (8, 8), device="cpu", forwards=1)
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "native line" not in err and "USDT" not in err and "profiler_st" not in err
    assert err == "after\n"
    assert "native line" in log.read_text()


def test_each_time_verdict_names_its_measurement() -> None:
    study = get_study("fusion")
    docs = {
        "plain N=2": _doc(100.0),
        "fusion N=2": _doc(60.0),
        "plain N=3": _doc(100.0),
        "fusion N=3": _doc(130),
    }
    paired = {
        "plain N=2": {
            "samples_ms": {"plain N=2": [100.0, 101, 99, 100], "fusion N=2": [120.0, 121, 119, 120]}
        }
    }
    rows = {r["variant"]: r for r in analyse_study(study, docs, "cpu", (64, 64), paired=paired)}
    by_rounds, by_processes = rows["fusion N=2"], rows["fusion N=3"]
    assert time_basis_words(by_rounds) == "paired rounds (4 interleaved in one process)"
    assert "[paired: median of 4 interleaved rounds" in by_rounds["verdict"]
    assert "separate runs' medians differ by -40.0%" in by_rounds["verdict"]
    assert time_basis_words(by_processes) == "separate processes (medians)"
    assert "[separate processes: medians of the two runs]" in by_processes["verdict"]
    assert time_basis_words(rows["plain N=2"]) is None
    md = render_study_markdown(
        {
            "study": "fusion",
            "title": study.title,
            "source": study.source,
            "paper_setting": study.paper_setting,
            "device": "cpu",
            "size": [64, 64],
            "repeats": 5,
            "rows": list(rows.values()),
        }
    )
    assert "(vs plain N=2; time judged on paired rounds (4 interleaved in one process))" in md
    assert "(vs plain N=3; time judged on separate processes (medians))" in md


def test_noisy_separate_runs_say_they_use_the_fastest_run() -> None:
    study = get_study("attention")
    docs = {
        "Baseline": _doc(160.0, cv=0.2, fastest=100.0),
        "Baseline+CCA": _doc(140.0, cv=0.2, fastest=112.0),
    }
    row = analyse_study(study, docs, "cpu", (64, 64))[1]
    assert time_basis_words(row) == "separate processes (fastest runs)"
    assert "[separate processes: fastest runs; the medians differ by -12.5%" in row["verdict"]

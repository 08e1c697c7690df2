"""``effbench study --backend --dtype``: every variant's cell runs under the backend and dtype asked for; the
interleaved rounds (eager models in one process) are skipped under another backend and the document says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from effbench.base.errors import UsageError
from effbench.cli import main
from effbench.studies import get_study, run_study

needs_ort = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(p) for p in ("onnx", "onnxruntime")),
    reason="onnx/onnxruntime not installed (pip install 'effbench[onnx]')",
)


@needs_ort
@pytest.mark.slow
def test_a_study_runs_its_cells_under_onnxruntime(tmp_path: Path) -> None:
    out = tmp_path / "fusion"
    argv = ["study", "fusion", "--size", "16x16", "--repeats", "1", "--only", "fusion N=2", "--out", str(out)]
    assert main([*argv, "--backend", "onnxruntime", "--no-progress"]) == 0
    doc = json.loads((out / "study.json").read_text())
    assert doc["backend"] == "onnxruntime" and doc["dtype"] == "fp32"
    assert all(r["status"] == "ok" and r["time_ms"] > 0 for r in doc["rows"])
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    assert len(cells) == 2 and all(c["backend"] == "onnxruntime" for c in cells)
    assert all(c["metrics"]["equivalence_psnr_db"] > 100 for c in cells)  # ONNX Runtime fp32 = eager fp32
    assert doc["paired"] == {} and "no interleaved rounds under backend onnxruntime" in doc["paired_skipped"]


def test_a_study_refuses_int8_on_eager_before_running_anything(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="backend eager does not offer"):
        run_study(get_study("fusion"), size=(16, 16), out_dir=tmp_path / "s", dtype="int8")
    assert not (tmp_path / "s").exists()
    with pytest.raises(UsageError, match="unknown backend 'tflite'"):
        run_study(get_study("fusion"), size=(16, 16), out_dir=tmp_path / "s", backend="tflite")

"""Sweeps: the cross product of cells, one fresh process per cell, results never lost or truncated, a killed
sweep resumed without running a finished cell twice, and broken models recorded with a status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sweep_runs import MODELS, ROOT, cell_starts, run_argv, sweep_cell

from effbench.base.errors import UsageError
from effbench.sweep import Cell, SweepConfig, load_config, run_sweep


def _starts(out: Path) -> Counter:
    return Counter(cell_id for cell_id, _ in cell_starts(out))


def _docs(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}


def test_config_is_the_cross_product_and_rejects_unknown_keys(tmp_path: Path):
    cfg_file = tmp_path / "sweep.toml"
    cfg_file.write_text(
        '[sweep]\nmodels = ["a.py:A", "b.py:B", "c.py:C"]\nscales = [2, 4]\nsizes = ["8x8", [16, 12]]\n'
        'devices = ["cpu"]\nrepeats = 3\n'
    )
    cfg = load_config(cfg_file)
    cells = cfg.cells()
    assert len(cells) == 3 * 2 * 2 and {c.size for c in cells} == {(8, 8), (16, 12)}
    assert len({c.cell_id for c in cells}) == len(cells) and all(c.repeats == 3 for c in cells)
    cfg_file.write_text("modles = ['x']\n")
    with pytest.raises(UsageError, match="modles"):
        load_config(cfg_file)
    with pytest.raises(UsageError):
        SweepConfig(models=["a.py:A"], devices=["tpu"]).cells()


def test_cells_of_the_same_class_name_in_different_files_get_different_ids():
    a, b = Cell("x/m.py:Net"), Cell("y/m.py:Net")
    assert a.cell_id != b.cell_id and Cell.from_dict(a.to_dict()) == a


def _sweep_cmd(out: Path, *extra: str) -> list[str]:
    return run_argv(
        out, [f"{MODELS}:{m}" for m in ("SlowA", "SlowB", "SlowC")], *extra, sizes=("8x8", "12x12")
    )


@pytest.mark.slow
def test_sigkill_mid_sweep_then_resume_runs_no_finished_cell_twice(tmp_path: Path):
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        _sweep_cmd(out),
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "cells").glob("*.json"))) < 2:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its cell process, mid-sweep
    proc.wait()
    before = _docs(out)  # every file present parses: nothing truncated
    assert 2 <= len(before) < 6, "the sweep should have been killed in the middle"
    starts_before = _starts(out)

    done = subprocess.run(_sweep_cmd(out, "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _docs(out)
    assert len(after) == 6 and all(d["status"] == "ok" for d in after.values())
    starts = _starts(out)
    for cell_id in before:  # finished before the kill: never started again
        assert starts[cell_id] == 1 and after[cell_id]["created"] == before[cell_id]["created"]
    assert all(starts[c] - starts_before[c] == 1 for c in after if c not in before)
    assert not [p for p in (out / "cells").iterdir() if p.suffix != ".json"]  # no stale temporary files
    assert (out / "results.csv").read_text().count("\n") == 7  # header + 6 rows


@pytest.mark.slow
def test_broken_models_get_a_clear_status_and_the_sweep_goes_on(tmp_path: Path):
    names = ["Raises", "WrongShape", "NaNOutput"]
    cells = [sweep_cell(n) for n in names]
    summary = run_sweep(cells, tmp_path, progress=False, timeout=300)
    docs = {d["model"]: d for d in _docs(tmp_path).values()}
    assert {n: docs[n]["status"] for n in names} == {
        "Raises": "error",
        "WrongShape": "bad_output",
        "NaNOutput": "nan_output",
    }
    assert "always fails" in docs["Raises"]["error"]
    assert "expected (1, 3, 32, 32)" in docs["WrongShape"]["error"]
    assert "NaN" in docs["NaNOutput"]["error"]
    assert summary["ran"] == 3 and summary["status"] == Counter(error=1, bad_output=1, nan_output=1)


@pytest.mark.slow
def test_a_hanging_cell_times_out_and_the_next_cell_still_runs(tmp_path: Path):
    cells = [
        sweep_cell("Hangs", threads=None),
        sweep_cell("Raises", threads=None),
    ]
    summary = run_sweep(cells, tmp_path, progress=False, timeout=8)
    docs = {d["model"]: d for d in _docs(tmp_path).values()}
    assert docs["Hangs"]["status"] == "timeout" and "per-cell timeout" in docs["Hangs"]["error"]
    assert "Raises" in docs and summary["ran"] == 2


def test_a_cell_process_that_dies_is_recorded_as_an_error_with_its_output(tmp_path: Path):
    crash = tmp_path / "crashing-python"
    crash.write_text("#!/bin/sh\necho 'Segmentation fault (simulated)' >&2\nexit 139\n")
    crash.chmod(0o755)
    cells = [sweep_cell("Nearest", threads=None)]
    summary = run_sweep(cells, tmp_path / "out", progress=False, python=str(crash))
    (doc,) = _docs(tmp_path / "out").values()
    assert (
        doc["status"] == "error" and "exited with code 139" in doc["error"] and "Segmentation" in doc["error"]
    )
    assert summary["status"] == Counter(error=1)


def test_default_sweep_compares_networks_not_the_bicubic_reference():
    from effbench.sweep.config import SweepConfig

    models = SweepConfig(scales=[4]).resolved_models()
    assert "bicubic" not in models and {"fmen_s", "e_rfdn", "imdn_ntire"} <= set(models)
    assert "bicubic" in SweepConfig(models=["bicubic"], scales=[4]).resolved_models()

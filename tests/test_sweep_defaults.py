"""The default sweep is sized for the device it runs on, and a piped sweep prints one line per cell (issue 26)."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from sweep_runs import MODELS, ROOT

from effbench.sweep import SweepConfig
from effbench.sweep.config import CPU_BUDGET_S, CPU_SIZE, GPU_SIZE
from effbench.sweep.progress import LineProgress, clock, make_progress


def test_the_default_cpu_sweep_is_sized_for_a_cpu():
    cells = SweepConfig(devices=["cpu"]).cells()
    assert len(cells) >= 2 and {c.size for c in cells} == {CPU_SIZE}
    assert {c.budget_s for c in cells} == {CPU_BUDGET_S}
    assert cells[0].timing_target().budget_s == CPU_BUDGET_S


def test_sizes_and_budget_given_are_kept():
    cfg = SweepConfig(models=["fmen_s"], devices=["cpu"], sizes=[(32, 48)], budget_s=1.5)
    (cell,) = cfg.cells()
    assert cell.size == (32, 48) and cell.budget_s == 1.5
    assert cfg.sizes_for("cuda") == [(32, 48)] and cfg.budget_for("cuda") is None
    assert SweepConfig().sizes_for("cuda") == [GPU_SIZE]


def test_a_piped_sweep_prints_a_line_per_cell_with_elapsed_time_and_eta(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "effbench",
            "run",
            "--models",
            f"{MODELS}:Nearest",
            f"{MODELS}:Sleep20ms",
            "--sizes",
            "8x8",
            "--devices",
            "cpu",
            "--repeats",
            "2",
            "--no-static",
            "--no-report",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
    assert len(lines) == 2, proc.stdout
    assert re.fullmatch(
        r"\[1/2\] Nearest 8x8 cpu: ok in \d+\.\d s \(elapsed \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d\)", lines[0]
    )
    assert re.fullmatch(r"\[2/2\] Sleep20ms 8x8 cpu: ok in \d+\.\d s \(elapsed \d+:\d\d:\d\d\)", lines[1])


class _Cell:
    def __init__(self, name: str) -> None:
        self.cell_id = self.label = name


def test_the_eta_is_the_mean_time_per_cell_times_the_cells_left():
    out = io.StringIO()
    progress = LineProgress(4, out)
    progress.start()
    progress._t0 -= 30.0  # 30 s into the sweep when the first cell ends: 3 left at 30 s each
    progress.started(_Cell("a"))
    progress.finished(_Cell("a"), "ok")
    assert out.getvalue().strip().endswith("(elapsed 0:00:30, ETA 0:01:30)")
    assert clock(3725) == "1:02:05"
    assert isinstance(make_progress(3, io.StringIO()), LineProgress)  # not a terminal: lines

"""Helpers shared by the sweep tests (tests/test_sweep.py, tests/test_faults.py): small cells of the models in
tests/sweep_models.py, the ``effbench run`` command line over them, and the cell starts a sweep logged."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from effbench.sweep import Cell

ROOT = Path(__file__).resolve().parent.parent
MODELS = "tests/sweep_models.py"


def sweep_cell(name: str, *, threads: int | None = 1) -> Cell:
    """A cheap cell of the ``tests/sweep_models.py`` model ``name``: x4, 8x8, CPU, 2 repeats, no static metrics."""
    return Cell(f"{MODELS}:{name}", 4, (8, 8), "cpu", repeats=2, threads=threads, static=False)


def run_argv(out: Path, models: Sequence[str], *extra: str, sizes: Sequence[str] = ("8x8",)) -> list[str]:
    """``python -m effbench run`` of ``models`` into ``out`` with the settings of :func:`sweep_cell`, plus
    ``extra``."""
    return [
        sys.executable,
        "-m",
        "effbench",
        "run",
        "--models",
        *models,
        "--sizes",
        *sizes,
        "--devices",
        "cpu",
        "--repeats",
        "2",
        "--threads",
        "1",
        "--no-static",
        "--no-report",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def cell_starts(out: Path) -> list[tuple[str, int]]:
    """``(cell_id, pid)`` of every cell process the sweep's runs.log says was started, in order."""
    log = out / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(ln.split()[2], int(ln.split("pid=")[1])) for ln in lines if " start " in ln]

"""Run sweep cells, each in a fresh subprocess, with a per-cell timeout, resume and a rich progress bar.

Layout of an output folder ``OUT``::

    OUT/cells/<cell_id>.json   one result document per cell (written atomically by the cell or by the runner)
    OUT/logs/<cell_id>.log     the cell process's stdout and stderr
    OUT/runs.log               one ``start <cell_id>`` line per cell process launched (audit of re-runs)
    OUT/results.csv            the combined table (effbench.base.results.results_frame), plus results.parquet
                               when pyarrow is installed
    OUT/report/                the report (effbench.report.render_report), when asked

A cell is finished when its JSON exists and parses; ``resume=True`` skips finished cells. A crash, a hang past
the timeout or a CUDA out-of-memory becomes that cell's status, and the sweep goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..base.results import new_result, write_json_atomic
from .config import Cell

__all__ = ["run_sweep", "is_finished", "write_table"]

_PKG_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def is_finished(path: Path) -> bool:
    """True when ``path`` holds a parseable result document."""
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _failure_doc(cell: Cell, status: str, error: str) -> dict[str, Any]:
    h, w = cell.size
    doc = new_result(cell.model_name, cell.spec, scale=cell.scale, input_shape=[1, 3, h, w], device=cell.device,
                     dtype=cell.dtype, protocol=cell.protocol, convention=None, status=status, error=error)
    doc["cell"] = cell.to_dict()
    doc["cell_id"] = cell.cell_id
    return doc


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    parts = [_PKG_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def _run_cell(cell: Cell, out: Path, timeout: float | None, python: str) -> dict[str, Any] | None:
    """Run one cell process; returns a failure document when the process left no result, else None."""
    result = out / "cells" / f"{cell.cell_id}.json"
    log = out / "logs" / f"{cell.cell_id}.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            [python, "-m", "effbench.sweep.worker", json.dumps(cell.to_dict()), str(result)],
            stdout=logf, stderr=subprocess.STDOUT, env=_child_env(), stdin=subprocess.DEVNULL,
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return _failure_doc(cell, "timeout", f"no result after {timeout:g} s (per-cell timeout); process killed")
        except BaseException:  # Ctrl-C or a kill of the runner: take the cell process down too
            proc.kill()
            proc.wait()
            raise
    if is_finished(result):
        return None
    tail = _tail(log)
    if rc < 0:
        what = f"the cell process died with signal {-rc}"
    else:
        what = f"the cell process exited with code {rc} and wrote no result"
    low = tail.lower()
    status = "oom" if "out of memory" in low else "error"
    return _failure_doc(cell, status, f"{what}; last output:\n{tail}" if tail else what)


def write_table(out: str | Path) -> list[Path]:
    """Combine ``OUT/cells/*.json`` into ``OUT/results.csv`` (and ``results.parquet`` with pyarrow)."""
    from ..base.results import load_results, results_frame

    out = Path(out)
    docs = load_results([out / "cells"]) if (out / "cells").is_dir() else []
    if not docs:
        return []
    frame = results_frame(docs)
    written = [out / "results.csv"]
    tmp = out / ".results.csv.tmp"
    frame.to_csv(tmp, index=False)
    os.replace(tmp, written[0])
    try:
        import pyarrow  # noqa: F401

        tmp = out / ".results.parquet.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out / "results.parquet")
        written.append(out / "results.parquet")
    except ImportError:
        pass
    return written


def run_sweep(
    cells: Sequence[Cell],
    out: str | Path,
    *,
    resume: bool = False,
    timeout: float | None = None,
    progress: bool = True,
    python: str | None = None,
) -> dict[str, Any]:
    """Run ``cells`` into ``out``; returns ``{"ran", "skipped", "status": Counter, "seconds", "table"}``.

    Each cell runs in its own process (``python -m effbench.sweep.worker``). ``resume`` skips cells whose result
    already parses; ``timeout`` (seconds) bounds each cell. Interrupting the sweep keeps every finished cell.
    """
    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    for stale in (out / "cells").glob(".*.tmp"):  # left by a process killed while writing
        stale.unlink(missing_ok=True)
    ids = [c.cell_id for c in cells]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        from ..base.errors import UsageError

        raise UsageError(f"duplicate sweep cells: {', '.join(dup)}")
    todo = [c for c in cells if not (resume and is_finished(out / "cells" / f"{c.cell_id}.json"))]
    summary: dict[str, Any] = {"ran": 0, "skipped": len(cells) - len(todo), "status": Counter(), "out": str(out)}
    t0 = time.perf_counter()
    py = python or sys.executable

    bar = None
    if progress and todo:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False)
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task("sweep", total=len(todo))
        for cell in todo:
            if bar is not None:
                bar.update(task, description=f"{cell.model_name} {cell.size[0]}x{cell.size[1]} {cell.device}")
            failure = _run_cell(cell, out, timeout, py)
            path = out / "cells" / f"{cell.cell_id}.json"
            if failure is not None:
                write_json_atomic(path, failure)
                status = failure["status"]
            else:
                status = json.loads(path.read_text()).get("status", "error")
            summary["status"][status] += 1
            summary["ran"] += 1
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
        summary["table"] = [str(p) for p in write_table(out)]
        summary["seconds"] = time.perf_counter() - t0
    return summary

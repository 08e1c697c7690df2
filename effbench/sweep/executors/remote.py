"""What a remote executor (Ray, submitit) runs on a node, and how the driver takes its answer in.

On the node, :func:`run_cell_here` runs the cell's usual supervised process into a private temporary folder and
returns the result document, the cell's log and its ``runs.log`` lines; the node writes nothing into the sweep's
output folder, which the driver alone writes (:func:`deliver`), so a result exists once, whatever was retried.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..cell_process import CellProcess, SweepCell
from .interface import Finished, node_info

__all__ = ["deliver", "lost_doc", "loss_reason", "run_cell_here"]


def run_cell_here(cell: SweepCell, timeout: float | None, cwd: str) -> dict[str, Any]:
    """Run ``cell`` on this node (in ``cwd``, the driver's working directory, when it exists here, so relative
    model paths mean the same); returns ``{"doc", "log", "runs", "node"}``."""
    if Path(cwd).is_dir():
        os.chdir(cwd)
    with tempfile.TemporaryDirectory(prefix="effbench-cell-") as tmp:
        out = Path(tmp)
        (out / "cells").mkdir()
        (out / "logs").mkdir()
        proc = CellProcess(cell, out, timeout, sys.executable)
        try:
            while not proc.poll():
                time.sleep(proc.wait_s())
        except BaseException:  # the task was cancelled: the cell goes with it
            proc.kill()
            raise
        doc = proc.document()
        runs = out / "runs.log"
        return {
            "doc": doc,
            "log": (out / "logs" / f"{cell.cell_id}.log").read_text(errors="replace"),
            "runs": runs.read_text() if runs.exists() else "",
            "node": node_info(),
        }


def loss_reason(exc: BaseException, where: str = "") -> str:
    """One line saying why a worker was lost: the exception's type and first line (``where``: e.g. the job)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}{where}"


def lost_doc(cell: SweepCell, executor: str, reasons: list[str]) -> dict[str, Any]:
    """The ``error`` document of a cell whose worker was lost on every attempt."""
    tries = "; then ".join(reasons)
    return cell.new_result(
        convention=None,
        status="error",
        error=f"the {executor} worker running the cell was lost {len(reasons)} times: {tries}",
    )


def deliver(
    out: Path, cell: SweepCell, answer: dict[str, Any], finished: Finished, *, lost: list[str]
) -> None:
    """Take a node's answer for ``cell`` into ``out``: its log, its ``runs.log`` lines, then its document (through
    ``finished``); ``lost`` are the reasons of earlier attempts whose worker was lost (recorded in ``node``)."""
    (out / "logs" / f"{cell.cell_id}.log").write_text(answer["log"])
    if answer["runs"]:
        fd = os.open(out / "runs.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, answer["runs"].encode())
        finally:
            os.close(fd)
    node = dict(answer["node"])
    if lost:
        node["lost_attempts"] = list(lost)
    finished(cell, answer["doc"], node)

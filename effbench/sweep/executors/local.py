"""The local executor: cell processes on this machine, up to ``jobs`` at once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ..cell_process import CellProcess, SweepCell
from .interface import Executor, Finished, Started, node_info, timed_device

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Cells in the given order, at most ``jobs`` processes at once: device-free cells side by side, never two
    timed cells of one device, and a timed CPU cell alone on the machine unless ``allow_shared_cpu``."""

    name = "local"

    def __init__(self, jobs: int = 1, allow_shared_cpu: bool = False) -> None:
        self.jobs = jobs
        self.allow_shared_cpu = allow_shared_cpu

    def _next(self, pending: Sequence[SweepCell], running: Sequence[CellProcess]) -> int | None:
        """The index in ``pending`` of the first cell that may start now, None when none may."""
        if len(running) >= self.jobs:
            return None
        busy = {timed_device(p.cell) for p in running} - {None}
        cpu_alone = not self.allow_shared_cpu
        if cpu_alone and "cpu" in busy:
            return None
        for i, cell in enumerate(pending):
            device = timed_device(cell)
            if device is None:
                return i
            if device in busy or (device == "cpu" and cpu_alone and running):
                continue
            return i
        return None

    def run(
        self,
        cells: Sequence[SweepCell],
        out: Path,
        *,
        timeout: float | None,
        python: str,
        started: Started,
        finished: Finished,
    ) -> None:
        pending = list(cells)
        running: list[CellProcess] = []
        node = node_info()
        try:
            while pending or running:
                while (i := self._next(pending, running)) is not None:
                    cell = pending.pop(i)
                    started(cell)
                    running.append(CellProcess(cell, out, timeout, python))
                ended = [p for p in running if p.poll()]
                for proc in ended:
                    running.remove(proc)
                    finished(proc.cell, proc.document(), node)
                if running and not ended:
                    time.sleep(min(p.wait_s() for p in running))
        except BaseException:  # Ctrl-C, SIGTERM of the runner: take the cells' process groups down too
            for proc in running:
                proc.kill()
            raise

"""A sweep's progress: a live bar on a terminal, one line per finished cell (elapsed time and ETA) otherwise.

Piped into a file or a CI log, a live bar prints nothing until the end; a line per cell shows that the sweep
moves and when it will end.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.progress import TaskID

    from .cell_process import SweepCell

__all__ = ["LineProgress", "Progress", "clock", "make_progress"]


def clock(seconds: float) -> str:
    """``0:01:05`` for 65 seconds (hours unbounded)."""
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress(Protocol):
    """What the runner tells a progress display."""

    def start(self) -> None: ...

    def started(self, cell: SweepCell) -> None: ...

    def finished(self, cell: SweepCell, status: str) -> None: ...

    def stop(self) -> None: ...


class LineProgress:
    """One line per finished cell: ``[3/9] fmen_s 64x64 cpu: ok in 7.1 s (elapsed 0:00:21, ETA 0:00:42)``; the
    ETA is the mean time per cell so far times the cells left."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream
        self.done = 0
        self._t0 = 0.0
        self._cell_t0: dict[str, float] = {}

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def started(self, cell: SweepCell) -> None:
        self._cell_t0[cell.cell_id] = time.perf_counter()

    def finished(self, cell: SweepCell, status: str) -> None:
        now = time.perf_counter()
        self.done += 1
        elapsed = now - self._t0
        took = now - self._cell_t0.pop(cell.cell_id, self._t0)
        left = self.total - self.done
        eta = f", ETA {clock(elapsed / self.done * left)}" if left else ""
        self._print(
            f"[{self.done}/{self.total}] {cell.label}: {status} in {took:.1f} s "
            f"(elapsed {clock(elapsed)}{eta})"
        )

    def stop(self) -> None:
        pass


class _BarProgress:
    """rich's live bar: the running cell, cells done, elapsed time and ETA."""

    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.total = total
        self.bar = RichProgress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task: TaskID | None = None

    def start(self) -> None:
        self.bar.start()
        self.task = self.bar.add_task("sweep", total=self.total)

    def started(self, cell: SweepCell) -> None:
        self.bar.update(self.task, description=cell.label)

    def finished(self, cell: SweepCell, status: str) -> None:
        self.bar.advance(self.task)

    def stop(self) -> None:
        self.bar.stop()


def make_progress(total: int, stream: TextIO | None = None) -> Progress:
    """A live bar when ``stream`` (default stdout) is a terminal, else a :class:`LineProgress`."""
    out = stream or sys.stdout
    if out.isatty():
        return _BarProgress(total)
    return LineProgress(total, stream)

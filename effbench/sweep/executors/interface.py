"""What every executor is (:class:`Executor`) and shares: the driver's callbacks, the device a cell times on,
where a cell ran. The executors themselves (``local``, ``ray``, ``submitit``) live beside this module."""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..cell_process import SweepCell

__all__ = ["Executor", "Finished", "Started", "node_info", "timed_device"]

Started = Callable[[SweepCell], None]
"""Called in the driver with a cell when it is handed to the executor to run."""
Finished = Callable[[SweepCell, dict[str, Any] | None, dict[str, Any]], None]
"""Called in the driver as each cell ends: ``(cell, doc, node)``; ``doc`` is the result document to write, or None
when the cell's process wrote its valid result in ``OUT/cells`` itself; ``node`` says where it ran."""


class Executor(ABC):
    """Runs cells and reports each one as it ends; Ctrl-C / SIGTERM stop it with the outstanding cells killed."""

    name: ClassVar[str]

    @abstractmethod
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
        """Run every cell of ``cells`` (``timeout`` seconds each) and call ``finished`` once for each of them."""


def timed_device(cell: SweepCell) -> str | None:
    """The device a cell times on (``cpu``, ``cuda:0``, ...), None for a device-free cell (its ``device_free``
    attribute; a cell kind without one is taken as timed)."""
    if getattr(cell, "device_free", False):
        return None
    device = str(cell.device)
    return "cuda:0" if device == "cuda" else device


def node_info() -> dict[str, Any]:
    """Where a cell runs: this machine's host name."""
    return {"hostname": socket.gethostname()}

"""Sweeps: the cross product of models, scales, sizes, devices and protocols, one fresh process per cell,
one atomic result JSON per cell, resumable, with a combined table and a report.

Entry points: :func:`run_sweep` (API) and ``effbench run`` (CLI); a cell process is
``python -m effbench.sweep.worker CELL_JSON OUT_JSON``, supervised (:mod:`.supervise`: it dies with its runner)
under an exclusive lock on the output folder (:mod:`.lock`).
"""

from __future__ import annotations

from .cell_process import cell_state
from .config import Cell, SweepConfig, load_config
from .lock import LockHeldError, OutputLock
from .runner import SweepTerminated, is_finished, run_sweep, write_table

__all__ = [
    "Cell",
    "LockHeldError",
    "OutputLock",
    "SweepConfig",
    "SweepTerminated",
    "cell_state",
    "is_finished",
    "load_config",
    "run_sweep",
    "write_table",
]

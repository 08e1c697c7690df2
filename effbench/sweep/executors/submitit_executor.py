"""The submitit executor: one Slurm array job per kind of cell (device-free, timed on CUDA, timed on CPU), one array
task per cell, each running the cell's process on its node and returning the document to the driver.

A device-free task asks for 1 CPU; a timed CUDA task for 1 GPU; a timed CPU task for its ``threads`` CPUs and the
whole node (``--exclusive``) unless ``allow_shared_cpu``. A task whose job dies (cancelled, node failure, Slurm
time limit) is submitted once more, then recorded as ``error`` with both reasons. submitit's pickles and the
tasks' Slurm logs go to ``OUT/.submitit`` (on a file system the nodes share). Without Slurm, submitit runs the
tasks as local processes (what the tests use). submitit is imported only here (``pip install "effbench[slurm]"``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...base.errors import UsageError
from ..cell_process import SweepCell
from .interface import Executor, Finished, Started, timed_device
from .remote import deliver, loss_reason, lost_doc, run_cell_here

__all__ = ["SubmititExecutor"]

_WAIT_S = 0.5
_SLURM_MARGIN_MIN = 5  # the cell's own timeout kills it first; Slurm's limit is the backstop


def _submitit_task(cell: SweepCell, timeout: float | None, cwd: str) -> dict[str, Any]:
    """The array task: :func:`run_cell_here`, with the Slurm (or local) job id."""
    import submitit

    answer = run_cell_here(cell, timeout, cwd)
    answer["node"]["job_id"] = submitit.JobEnvironment().job_id
    return answer


class SubmititExecutor(Executor):
    """Cells as tasks of Slurm array jobs in ``partition`` (``cluster``: submitit's choice, ``"slurm"`` or
    ``"local"``; None picks Slurm where ``sbatch`` exists, else local processes)."""

    name = "submitit"

    def __init__(
        self, partition: str | None = None, allow_shared_cpu: bool = False, cluster: str | None = None
    ) -> None:
        self.partition = partition
        self.allow_shared_cpu = allow_shared_cpu
        self.cluster = cluster

    def _kind(self, cell: SweepCell) -> tuple[str, dict[str, Any]]:
        """The kind of ``cell`` and the job parameters of that kind."""
        device = timed_device(cell)
        if device is None:
            return "static", {"cpus_per_task": 1}
        if device.startswith("cuda"):
            return "cuda", {"cpus_per_task": 1, "gpus_per_node": 1}
        params: dict[str, Any] = {"cpus_per_task": getattr(cell, "threads", None) or 1}
        if not self.allow_shared_cpu:
            params["slurm_exclusive"] = True
        return "cpu", params

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
        try:
            import submitit
        except ImportError:
            raise UsageError(
                '--executor submitit needs submitit on this machine: pip install "effbench[slurm]"'
            ) from None
        executor = submitit.AutoExecutor(folder=out / ".submitit" / "%j", cluster=self.cluster)
        base: dict[str, Any] = {
            "name": "effbench",
            "timeout_min": math.ceil((timeout or 900) / 60) + _SLURM_MARGIN_MIN,
            "slurm_partition": self.partition,
        }
        cwd = os.getcwd()
        kinds: dict[str, tuple[dict[str, Any], list[SweepCell]]] = {}
        for cell in cells:
            kind, params = self._kind(cell)
            kinds.setdefault(kind, (params, []))[1].append(cell)
        flight: list[tuple[Any, SweepCell, list[str]]] = []  # (submitit job, cell, earlier losses)

        def submit(cell_list: list[SweepCell], params: dict[str, Any], lost: list[str]) -> None:
            executor.update_parameters(**base, **params)
            n = len(cell_list)
            jobs = executor.map_array(_submitit_task, cell_list, [timeout] * n, [cwd] * n)
            flight.extend((job, cell, lost) for job, cell in zip(jobs, cell_list))

        for params, cell_list in kinds.values():
            for cell in cell_list:
                started(cell)
            submit(cell_list, params, [])
        try:
            while flight:
                ended = [f for f in flight if f[0].done()]
                for item in ended:
                    flight.remove(item)
                    job, cell, lost = item
                    try:
                        answer = job.result()
                    except Exception as exc:  # the job died, was cancelled, or ran out of Slurm time
                        reason = loss_reason(exc, f" (job {job.job_id})")
                        if not lost:
                            submit([cell], self._kind(cell)[1], [reason])
                        else:
                            reasons = [*lost, reason]
                            finished(cell, lost_doc(cell, self.name, reasons), {"lost_attempts": reasons})
                        continue
                    deliver(out, cell, answer, finished, lost=lost)
                if not ended:
                    time.sleep(_WAIT_S)
        except BaseException:  # Ctrl-C, SIGTERM: the finished cells are written; cancel the rest
            for job, _, _ in flight:
                job.cancel(check=False)
            raise

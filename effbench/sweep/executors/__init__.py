"""Executors: what runs a sweep's cells. Every executor runs each cell as the same fresh process
(``python -m WORKER CELL_JSON OUT_JSON``), so a result does not depend on which one ran it; only the driver (the
process running :func:`effbench.sweep.run_sweep`) writes into the output folder.

- ``local`` (the default): cell processes on this machine, ``jobs`` at a time: many device-free cells at once, a
  timed cell never beside another timed cell of its device, a timed CPU cell alone (unless ``allow_shared_cpu``).
- ``ray``: each cell a Ray task on a Ray cluster (``address``; ``pip install "effbench[ray]"``).
- ``submitit``: one Slurm array job per kind of cell, one task per cell (``pip install "effbench[slurm]"``).
"""

from __future__ import annotations

from ...base.errors import UsageError
from .interface import Executor, Finished, Started, node_info, timed_device

__all__ = ["EXECUTORS", "Executor", "Finished", "Started", "get_executor", "node_info", "timed_device"]

EXECUTORS = ("local", "ray", "submitit")


def get_executor(
    name: str = "local",
    *,
    jobs: int = 1,
    address: str | None = None,
    allow_shared_cpu: bool = False,
    gpu_type: str | None = None,
    slurm_partition: str | None = None,
) -> Executor:
    """The executor ``name`` with its options; an option another executor owns is a :class:`UsageError`."""
    if name not in EXECUTORS:
        raise UsageError(f"--executor: unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {jobs!r}")
    owners = {
        "--jobs": ("local", jobs != 1),
        "--address": ("ray", address is not None),
        "--gpu-type": ("ray", gpu_type is not None),
        "--slurm-partition": ("submitit", slurm_partition is not None),
    }
    wrong = [
        f"{flag} is for --executor {owner}"
        for flag, (owner, given) in owners.items()
        if given and owner != name
    ]
    if wrong:
        raise UsageError(f"--executor {name}: {'; '.join(wrong)}")
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(jobs=jobs, allow_shared_cpu=allow_shared_cpu)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=address, allow_shared_cpu=allow_shared_cpu, gpu_type=gpu_type)
    from .submitit_executor import SubmititExecutor

    return SubmititExecutor(partition=slurm_partition, allow_shared_cpu=allow_shared_cpu)

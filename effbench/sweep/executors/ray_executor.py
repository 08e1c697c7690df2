"""The Ray executor: each cell a Ray task that runs the cell's process on its node and returns the document.

Resources per task: a device-free cell takes 1 CPU (many pack on a node); a timed CUDA cell a whole GPU
(``num_gpus=1``, so never two timed cells on one GPU; ``gpu_type`` asks for Ray's accelerator type, e.g.
``H100``); a timed CPU cell every CPU of one node (pinned to it), so it runs alone there, or only its ``threads``
CPUs with ``allow_shared_cpu``. A task whose worker is lost (killed, node death) is submitted once more, then
recorded as ``error`` with both reasons. Ray is imported only here (``pip install "effbench[ray]"``).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...base.errors import UsageError
from ..cell_process import SweepCell
from .interface import Executor, Finished, Started, timed_device
from .remote import deliver, loss_reason, lost_doc, run_cell_here

__all__ = ["RayExecutor"]

_WAIT_S = 0.5


def _ray_task(cell: SweepCell, timeout: float | None, cwd: str) -> dict[str, Any]:
    """The task body: :func:`run_cell_here`, with the Ray node and the GPUs Ray gave it."""
    import ray

    answer = run_cell_here(cell, timeout, cwd)
    answer["node"]["ray_node_id"] = ray.get_runtime_context().get_node_id()
    answer["node"]["gpu_ids"] = [str(g) for g in ray.get_gpu_ids()]
    return answer


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            '--executor ray needs Ray on this machine and every node: pip install "effbench[ray]"'
        ) from None
    return ray


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Put back the SIGTERM and SIGINT handlers the block replaced: ``ray.init`` installs its own SIGTERM handler
    (``sys.exit``, or killing a local cluster then exiting 1), which would replace effbench's (the runner's:
    finished cells kept, table written, exit code 143). The runner's ``ray.shutdown`` stops what this process
    started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


class RayExecutor(Executor):
    """Cells as tasks on the Ray cluster at ``address`` (None: the running Ray of this process, else
    ``RAY_ADDRESS`` or a new local instance; ``"auto"``: the cluster this machine belongs to)."""

    name = "ray"

    def __init__(
        self, address: str | None = None, allow_shared_cpu: bool = False, gpu_type: str | None = None
    ):
        self.address = address
        self.allow_shared_cpu = allow_shared_cpu
        self.gpu_type = gpu_type

    def _options(self, cell: SweepCell, cpu_nodes: Iterator[tuple[str, int]]) -> dict[str, Any]:
        device = timed_device(cell)
        if device is None:
            return {"num_cpus": 1}
        if device.startswith("cuda"):
            opts: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1}
            if self.gpu_type:
                opts["accelerator_type"] = self.gpu_type
            return opts
        if self.allow_shared_cpu:
            return {"num_cpus": getattr(cell, "threads", None) or 1}
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_id, cpus = next(cpu_nodes, (None, 0))
        if node_id is None:
            raise UsageError("--executor ray: no live node of the cluster has CPUs for a timed CPU cell")
        return {"num_cpus": cpus, "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}

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
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            try:
                with _signal_handlers_kept():
                    ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:  # "auto" or an address with no cluster behind it
                first = str(exc).strip().split(". ")[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(
                    f"--executor ray --address {self.address}: no Ray cluster to connect to ({first.rstrip('.')}); "
                    "start one (ray start --head) or leave --address out to run a local Ray for this sweep"
                ) from None
        try:
            self._run(ray, cells, out, timeout, started, finished)
        finally:
            if started_here:
                ray.shutdown()

    def _run(
        self,
        ray: Any,
        cells: Sequence[SweepCell],
        out: Path,
        timeout: float | None,
        started: Started,
        finished: Finished,
    ) -> None:
        nodes = [
            (n["NodeID"], int(n["Resources"]["CPU"]))
            for n in ray.nodes()
            if n.get("Alive") and n.get("Resources", {}).get("CPU")
        ]
        cpu_nodes = itertools.cycle(nodes)
        task = ray.remote(_ray_task)
        cwd = os.getcwd()
        flight: dict[Any, tuple[SweepCell, list[str]]] = {}  # Ray object ref -> (cell, earlier losses)

        def submit(cell: SweepCell, lost: list[str]) -> None:
            opts = self._options(cell, cpu_nodes)
            ref = task.options(**opts, max_retries=0, name=f"effbench {cell.cell_id}").remote(
                cell, timeout, cwd
            )
            flight[ref] = (cell, lost)

        for cell in cells:
            started(cell)
            submit(cell, [])
        try:
            while flight:
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=_WAIT_S)
                for ref in ready:
                    cell, lost = flight.pop(ref)
                    try:
                        answer = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        reason = loss_reason(exc)
                        if not lost:
                            submit(cell, [reason])
                            continue
                        finished(
                            cell,
                            lost_doc(cell, self.name, [*lost, reason]),
                            {"lost_attempts": [*lost, reason]},
                        )
                        continue
                    deliver(out, cell, answer, finished, lost=lost)
        except BaseException:  # Ctrl-C, SIGTERM: the finished cells are written; cancel the rest
            for ref in flight:
                ray.cancel(ref, force=True)
            raise

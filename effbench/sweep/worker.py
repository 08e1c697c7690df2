"""One sweep cell, run in a fresh process: ``python -m effbench.sweep.worker CELL_JSON OUT_JSON``.

The cell's measurements (:attr:`effbench.sweep.config.Cell.parts`: static counts, the predicted peak memory, the
runtime, PSNR when the cell has a data set, the op-time breakdown, the measured peak memory on CUDA, and any extra
registered measurement such as a plugin's) run by name through :mod:`effbench.base.measurement` on a model
resolved once; the worker writes one result document atomically. A part that is unavailable or fails is recorded
under ``partial_errors`` and its metric left out. A model that raises, returns a wrong shape or non-finite values,
or runs out of memory gives the cell the status ``error``, ``bad_output``, ``nan_output`` or ``oom``; the process
still exits 0 with its document written.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..base.measurement import MeasurementRun, Workload
    from .config import Cell

__all__ = ["log_start", "main", "measure_cell", "options_of", "record_killed", "run_worker", "workload_of"]


def log_start(out: Path, cell_id: str) -> None:
    """Append ``start <cell_id>`` to the sweep's runs.log (one short O_APPEND write: safe across processes)."""
    line = f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} start {cell_id} pid={os.getpid()}\n"
    fd = os.open(out.parent.parent / "runs.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def record_killed(out: Path, killed: list[dict[str, Any]]) -> None:
    """Add ``killed`` (processes a cell left running, killed after it: :func:`effbench.base.procs.kill_descendants`)
    to the cell's result document at ``out``, when it wrote one; for a cell process that owns its descendants
    itself (a forked challenge cell) rather than through the runner's supervisor."""
    from ..base.results import validate_result, write_json_atomic

    try:
        doc = json.loads(out.read_text())
    except (OSError, ValueError):
        return
    if validate_result(doc) is None:
        doc["killed_processes"] = [*(doc.get("killed_processes") or []), *killed]
        write_json_atomic(out, doc)


#: the document's ``partial_errors`` key of each of the sweep's built-in measurements that fails without failing
#: the cell (an extra measurement's failure goes under its own name)
PARTIAL_KEYS = {
    "counts": "static",
    "predicted_memory": "predict_memory",
    "op_time_breakdown": "op_time_breakdown",
    "measured_memory": "measure_cuda_memory",
}
#: the measurements whose failure is the cell's status (the model failed where it is timed or scored)
FATAL = ("runtime", "dataset_psnr")


def workload_of(cell: Cell) -> Workload:
    """The :class:`~effbench.base.measurement.Workload` a sweep cell's measurements run on."""
    from ..base.measurement import Workload

    return Workload(
        size=tuple(cell.size),
        scale=cell.scale,
        dtype=cell.dtype,
        device=cell.device,
        threads=cell.threads,
    )


def options_of(cell: Cell) -> dict[str, Any]:
    """The cell's settings its measurements read (:class:`~effbench.base.measurement.Context` options)."""
    return {
        "protocol": cell.protocol,
        "repeats": cell.repeats,
        "target": cell.timing_target(),
        "roofline": cell.roofline,
        "dataset": cell.dataset,
        "backend": cell.backend,
        "calibration": cell.calibration,
        "forwards": 5,
    }


def _failure(exc: BaseException) -> tuple[str, str]:
    """``(status, error)`` of a failure that fails the cell."""
    from ..base.errors import EffbenchError, ModelError

    if isinstance(exc, ModelError):
        return getattr(exc, "status", "error"), str(exc)
    if isinstance(exc, EffbenchError):
        return "error", str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


def _record(run: MeasurementRun, cell: Cell, doc: dict[str, Any], partial: dict[str, str]) -> None:
    """Put what ``run`` measured in ``doc``: the cell's status from a fatal failure (or, untimed, from the model
    failing where counting ran it), the other failures and skips in ``partial``, the runtime's input shape,
    environment, settings and data set, and every result's metrics."""
    from ..base.errors import EffbenchError, ModelError
    from ..timing.units import DatasetPsnr

    for name, exc in run.failed.items():
        if name in FATAL:
            status, error = _failure(exc)
            doc.update(status=status, error=error)
            if not isinstance(exc, EffbenchError):
                partial["traceback"] = "".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__, limit=6)
                )
        else:
            partial[PARTIAL_KEYS.get(name, name)] = f"{type(exc).__name__}: {exc}"
    for name, why in run.skipped.items():
        if name == "dataset_psnr" or name not in PARTIAL_KEYS:  # the other built-in ones skip silently
            partial[name] = why
    counted = run.failed.get("counts")
    if not cell.timing and isinstance(counted, ModelError):  # untimed: the model failed where counting ran it
        doc.update(status=getattr(counted, "status", "error"), error=partial.pop("static"))
    timed = run.results.get("runtime")
    if timed is not None and "dataset_psnr" not in run.failed:
        doc["input_shape"] = timed["input_shape"]
        doc["env"] = timed["env"]
        doc["settings"] = timed.get("settings")
        scored = run.results.get("dataset_psnr")
        doc["dataset"] = scored.dataset if isinstance(scored, DatasetPsnr) else timed.get("dataset")
    metrics: dict[str, Any] = {}
    for res in run.results.values():
        metrics.update(res.metrics())
    doc["metrics"] = {k: v for k, v in metrics.items() if v is not None}


def measure_cell(cell: Cell) -> dict[str, Any]:
    """Measure one :class:`~effbench.sweep.config.Cell` in this process; always returns a result document.

    The model is resolved once; the cell's :attr:`~effbench.sweep.config.Cell.parts` run through
    :func:`effbench.base.measurement.run_measurements`. A failing runtime or data-set PSNR pass gives the cell
    its status (the model's :class:`~effbench.base.errors.ModelError` status, else ``error``) and stops there;
    any other failure, or a data-set PSNR pass that does not apply, is recorded under ``partial_errors``."""
    from ..base.errors import EffbenchError
    from ..base.measurement import run_measurements
    from ..zoo.spec import resolve_model

    t0 = time.perf_counter()
    doc = cell.new_result(convention="full" if cell.static else None)
    partial: dict[str, str] = {}
    try:
        resolved = resolve_model(cell.spec, scale=cell.scale)
    except EffbenchError as exc:
        doc.update(status="error", error=f"building the model failed: {exc}")
        return doc
    except Exception as exc:
        doc.update(status="error", error=f"building the model failed: {type(exc).__name__}: {exc}")
        return doc
    ident = resolved.identity
    doc.update(model=ident.name, model_key=ident.key, identity=ident.as_dict())

    try:
        run = run_measurements(
            resolved,
            workload_of(cell),
            cell.parts,
            options=options_of(cell),
            on_error=lambda name, exc: name in FATAL,
        )
    except EffbenchError as exc:  # an unknown measurement, a bad workload: nothing was measured
        doc.update(status="error", error=str(exc))
    else:
        _record(run, cell, doc, partial)

    if not doc["env"]:
        from ..base.env import capture_env

        try:
            doc["env"] = capture_env(cell.device)
        except Exception:
            doc["env"] = capture_env("cpu")
    if partial:
        doc["partial_errors"] = partial
    doc["cell_seconds"] = time.perf_counter() - t0
    return doc


def run_worker(
    argv: list[str] | None, module: str, from_dict: Callable[[dict], Any], measure: Callable[[Any], dict]
) -> int:
    """The body of a cell process (``python -m MODULE CELL_JSON OUT_JSON``): read the cell, log its start, measure
    it, write its document atomically. Shared by every kind of cell."""
    from ..base.results import write_json_atomic

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(f"usage: python -m {module} CELL_JSON OUT_JSON", file=sys.stderr)
        return 2
    cell = from_dict(json.loads(argv[0]))
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    log_start(out, cell.cell_id)
    write_json_atomic(out, measure(cell))
    return 0


def main(argv: list[str] | None = None) -> int:
    from .config import Cell

    return run_worker(argv, "effbench.sweep.worker", Cell.from_dict, measure_cell)


if __name__ == "__main__":
    sys.exit(main())

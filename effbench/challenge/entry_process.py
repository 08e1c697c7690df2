"""One challenge cell, run in a fresh process: ``python -m effbench.challenge.entry_process CELL_JSON OUT_JSON``.

Builds the entry from its spec (a failure becomes the cell's status: ``missing_package``, ``needs_cuda``,
``checkpoint_error`` or ``error``, with the reason), as the year's harness builds it for a device-free cell, then
runs the registered measurements the cell's parts stand for (:attr:`EntryCell.measurements
<effbench.challenge.cells.EntryCell.measurements>`, the challenge's own in :mod:`effbench.challenge.units`)
through :func:`effbench.base.measurement.run_measurements`, on a tiled model for an entry the manifest gives a
``tile``.

A part that fails gives the cell the status ``error`` naming the part (its traceback under
``partial_errors``); the other parts' metrics are kept. An entry whose first forward runs CUDA-only code is
``needs_cuda``, one whose output is written outside the trace ``opaque_op`` (:mod:`effbench.challenge.statuses`).
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from .statuses import build_status, special_status

if TYPE_CHECKING:
    from ..base.measurement import MeasurementRun
    from .cells import EntryCell

__all__ = ["build_status", "main", "measure_entry"]


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))


def _part_errors(cell: EntryCell, run: MeasurementRun) -> dict[str, BaseException]:
    """The failed measurements of a device-free cell by the part the document names: the harness's own steps
    under its parts joined (``static+memory``), CUDA-only code under ``needs_cuda`` (each once)."""
    from .cells import PART_MEASUREMENTS
    from .units import HarnessStepError, NeedsCuda

    part_of: dict[str, str] = {}
    for p in cell.parts:
        for m in PART_MEASUREMENTS.get(p, (p,)):
            part_of.setdefault(m, p)
    harness_parts = "+".join(p for p in cell.parts if p in ("static", "memory"))
    errors: dict[str, BaseException] = {}
    for name, exc in run.failed.items():
        if isinstance(exc, HarnessStepError):
            errors.setdefault(harness_parts, exc.cause)
        elif isinstance(exc, NeedsCuda):
            errors.setdefault("needs_cuda", exc.cause)
        else:
            errors[part_of.get(name, name)] = exc
    return errors


def measure_entry(cell: EntryCell) -> dict[str, Any]:
    """Measure one :class:`~effbench.challenge.cells.EntryCell` in this process; always returns a document."""
    from ..base.env import capture_env
    from ..base.measurement import run_measurements
    from ..zoo.spec import ModelSpec, resolve_model
    from .harness import Harness, build_as_harness, harness_of
    from .units import EntrySetup, recorded_harness

    t0 = time.perf_counter()
    doc = cell.new_result()
    seconds: dict[str, float] = {}
    doc["part_seconds"] = seconds  # where the cell's time went: build, then each part
    harness = Harness.from_dict(cell.harness) if cell.harness else harness_of(cell.year)
    if cell.device_free:
        # device-free cells run side by side (--jobs); an intra-op thread pool per cell only oversubscribes the
        # cores (a 16x16 EFDN forward: 2.5 s with 2 threads on a loaded 2-core machine, 0.01 s with one)
        import torch

        torch.set_num_threads(1)
    build = None
    try:
        spec = ModelSpec.from_dict(cell.model)
        if cell.measured:
            resolved = resolve_model(spec, scale=cell.scale)
        else:  # built as the harness builds it: the construction's memory is in its record
            build = build_as_harness(spec, cell.scale)
            resolved = build.resolved
        seconds["build"] = time.perf_counter() - t0
    except Exception as exc:
        doc.update(status=build_status(exc), error=f"building the entry failed: {type(exc).__name__}: {exc}")
        doc["env"] = capture_env("cpu")
        doc["cell_seconds"] = time.perf_counter() - t0
        return doc
    model, ident = resolved.model, resolved.identity
    doc.update(model_key=ident.key, identity=ident.as_dict())
    if cell.tile:  # what runs on whole images: the entry tile by tile (it is counted whole)
        from ..quality.tiling import Tiled
        from ..zoo.spec import ResolvedModel

        resolved = ResolvedModel(Tiled(model, cell.tile, scale=cell.scale), ident)
        doc["tile"] = cell.tile
    metrics: dict[str, Any] = {}
    failed: dict[str, str] = {}
    t_part = time.perf_counter()
    run = run_measurements(
        resolved,
        cell.workload(),
        cell.measurements,
        options={"entry": EntrySetup(cell, harness, build)},
    )
    if cell.measured:
        for name, exc in run.failed.items():
            part = "runtime" if name == "ntire_run" else name
            failed[part] = f"{type(exc).__name__}: {exc}"
            doc.setdefault("partial_errors", {})[f"{part}_traceback"] = _format(exc)
        metrics.update(run.metrics())
        seconds["runtime"] = time.perf_counter() - t_part
    else:
        errors = _part_errors(cell, run)
        record = recorded_harness(run.shared)
        if record is not None:  # what the harness's parts recorded, a failed one's included
            metrics.update(record.metrics)
        metrics.update(run.metrics())
        for part, exc in errors.items():
            failed[part] = f"{type(exc).__name__}: {exc}"
            doc.setdefault("partial_errors", {})[f"{part}_traceback"] = _format(exc)
        seconds["+".join(cell.parts)] = time.perf_counter() - t_part
        special = special_status(errors, metrics)
        if special is not None:
            doc.update(status=special[0], error=special[1])
            failed = {}
    for name, why in run.skipped.items():  # a measurement that does not apply here says why, as in a sweep
        doc.setdefault("partial_errors", {})[name] = why
    if failed:
        doc.update(status="error", error="; ".join(f"{p} failed: {why}" for p, why in failed.items()))
    doc["metrics"] = {k: v for k, v in metrics.items() if v is not None}
    try:
        doc["env"] = capture_env(cell.device if cell.measured else "cpu")
    except Exception:
        doc["env"] = capture_env("cpu")
    doc["cell_seconds"] = time.perf_counter() - t0
    return doc


def main(argv: list[str] | None = None) -> int:
    from ..sweep.worker import run_worker
    from .cells import EntryCell

    return run_worker(argv, "effbench.challenge.entry_process", EntryCell.from_dict, measure_entry)


if __name__ == "__main__":
    sys.exit(main())

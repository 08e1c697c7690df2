"""One sweep cell, run in a fresh process: ``python -m effbench.sweep.worker CELL_JSON OUT_JSON``.

Computes static metrics (``effbench.profile``, full convention), the predicted peak memory
(``effbench.predict_memory``), the runtime (``effbench.benchmark``), the measured peak memory on CUDA
(``effbench.memory.measure_cuda_memory``) and PSNR when the cell has a data set, then writes one result document
atomically. A part that is unavailable or fails is recorded under ``partial_errors`` and its metric left out.
A model that raises, returns a wrong shape or non-finite values, or runs out of memory gives the cell the
status ``error``, ``bad_output``, ``nan_output`` or ``oom``; the process still exits 0 with its document written.
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
from typing import Any

__all__ = ["log_start", "main", "measure_cell", "record_killed", "run_worker"]


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


def measure_cell(cell: Any) -> dict[str, Any]:
    """Measure one :class:`~effbench.sweep.config.Cell` in this process; always returns a result document."""
    from ..base.errors import EffbenchError, ModelError
    from ..zoo.spec import resolve_model

    t0 = time.perf_counter()
    h, w = cell.size
    doc = cell.new_result(convention="full" if cell.static else None)
    partial: dict[str, str] = {}
    metrics: dict[str, Any] = {}
    predicted = None  # the predicted peak memory, reused by benchmark's pre-flight check
    static_failure: Exception | None = None
    try:
        resolved = resolve_model(cell.spec, scale=cell.scale)
    except EffbenchError as exc:
        doc.update(status="error", error=f"building the model failed: {exc}")
        return doc
    except Exception as exc:
        doc.update(status="error", error=f"building the model failed: {type(exc).__name__}: {exc}")
        return doc
    model, ident = resolved.model, resolved.identity
    doc.update(model=ident.name, model_key=ident.key, identity=ident.as_dict())

    if cell.static:
        try:
            from ..counting import profile

            metrics.update(
                profile(model, (h, w), convention="full", scale=cell.scale, peak_memory=False).metrics()
            )
        except Exception as exc:
            partial["static"] = f"{type(exc).__name__}: {exc}"
            static_failure = exc
        try:
            from ..memory import predict_memory

            predicted = predict_memory(model, (h, w), scale=cell.scale)
            metrics.update(predicted.metrics())
        except Exception as exc:
            partial["predict_memory"] = f"{type(exc).__name__}: {exc}"

    if cell.timing:  # an untimed cell is device-free: static metrics and predicted memory only
        try:
            from ..timing import benchmark

            # ntire runs over the data set (that is the protocol); steady times the cell's size, PSNR comes after
            res = benchmark(
                model,
                (h, w),
                scale=cell.scale,
                device=cell.device,
                protocol=cell.protocol,
                dtype=cell.dtype,
                repeats=cell.repeats,
                target=cell.timing_target(),
                threads=cell.threads,
                roofline=cell.roofline,
                dataset=cell.dataset if cell.protocol == "ntire" else None,
                predicted_memory=predicted,
                backend=cell.backend,
            )
            metrics.update(res.metrics())
            eager_like = cell.backend == "eager" and cell.dtype in ("fp32", "fp16", "bf16")
            if cell.dataset and cell.protocol != "ntire" and not eager_like:
                # the PSNR pass below runs the eager module: it would not score what this backend runs
                partial["dataset_psnr"] = (
                    f"not scored under {cell.backend} {cell.dtype} (the data-set PSNR pass runs the eager "
                    "model); equivalence_psnr_db compares this backend's output with eager fp32"
                )
            elif cell.dataset and cell.protocol != "ntire":
                import torch

                from ..timing import DTYPES
                from ..timing.image_pairs import find_pairs
                from ..timing.ntire import evaluate_psnr

                metrics.update(
                    evaluate_psnr(
                        model,
                        find_pairs(cell.dataset, cell.scale),
                        torch.device(cell.device),
                        data_range=ident.data_range,
                        scale=cell.scale,
                        dtype=DTYPES[cell.dtype],
                    )
                )
                res["dataset"] = cell.dataset
            doc["input_shape"] = res["input_shape"]
            doc["env"] = res["env"]
            doc["settings"] = res.get("settings")
            doc["dataset"] = res.get("dataset")
        except ModelError as exc:
            doc.update(status=getattr(exc, "status", "error"), error=str(exc))
        except EffbenchError as exc:
            doc.update(status="error", error=str(exc))
        except Exception as exc:
            doc.update(status="error", error=f"{type(exc).__name__}: {exc}")
            partial["traceback"] = traceback.format_exc(limit=6)
    elif isinstance(static_failure, ModelError):  # untimed: the model failed where only counting ran it
        doc.update(status=getattr(static_failure, "status", "error"), error=partial.pop("static"))

    if doc["status"] == "ok" and cell.breakdown:
        try:
            from ..timing import DTYPES
            from ..timing.breakdown import op_time_breakdown

            metrics["op_time"] = op_time_breakdown(
                model, (h, w), device=cell.device, dtype=DTYPES[cell.dtype], threads=cell.threads, forwards=5
            )
        except Exception as exc:
            partial["op_time_breakdown"] = f"{type(exc).__name__}: {exc}"

    if doc["status"] == "ok" and cell.device.startswith("cuda"):
        try:
            from ..memory import measure_cuda_memory

            mem = measure_cuda_memory(model, (h, w), scale=cell.scale, device=cell.device)
            metrics["peak_memory_forward_bytes"] = metrics.get("peak_memory_measured_bytes")
            metrics["peak_memory_measured_bytes"] = int(mem["measured_peak_bytes"])
            metrics["peak_memory_measured_source"] = "effbench.memory.measure_cuda_memory"
        except Exception as exc:
            partial["measure_cuda_memory"] = f"{type(exc).__name__}: {exc}"

    if not doc["env"]:
        from ..base.env import capture_env

        try:
            doc["env"] = capture_env(cell.device)
        except Exception:
            doc["env"] = capture_env("cpu")
    doc["metrics"] = {k: v for k, v in metrics.items() if v is not None}
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

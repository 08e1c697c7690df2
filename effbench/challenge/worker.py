"""One challenge cell, run in a fresh process: ``python -m effbench.challenge.worker CELL_JSON OUT_JSON``.

Builds the entry from its spec (a failure becomes the cell's status: ``missing_package``, ``needs_cuda``,
``checkpoint_error`` or ``error``, with the reason), then measures the cell's parts:

- ``static``: params, FLOPs, activations and convs from one shapes-only trace at the year's counting input, each
  metric under the year's convention (``metrics.counting`` records which), plus every convention's counts in
  ``metrics.by_convention`` (the gap to ``full``) and the ops the FLOPs convention does not count;
- ``memory``: the predicted ``max_memory_allocated`` at the year's memory input (the validation set's largest LR
  image), tile by tile for an entry the manifest gives a ``tile`` (as the measured parts run it);
- ``runtime`` / ``quality``: the year's ``test_demo.py`` protocol over the validation images
  (:func:`effbench.timing.ntire.run_ntire` through :func:`effbench.timing.benchmark`: per-image timing, mean,
  ``max_memory_allocated`` over the run, PSNR), under the cell's backend and dtype.

A part that fails gives the cell the status ``error`` naming the part; the other parts' metrics are kept.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any

__all__ = ["build_status", "measure_entry", "main"]

_SYNTHETIC_IMAGES = 5  # stand-ins for the validation set when its images are not given (runtime only)

_CUDA_SIGNS = (
    "torch not compiled with cuda",
    "found no nvidia driver",
    "cuda driver",
    "no cuda gpus are available",
    "triton",
    "cuda is not available",
)


def build_status(exc: BaseException) -> str:
    """The status of an entry that could not be built: ``missing_package`` (an import the host lacks),
    ``needs_cuda`` (CUDA-only code on a host without CUDA), ``checkpoint_error``, else ``error``."""
    from ..base.errors import CheckpointError

    text = f"{type(exc).__name__}: {exc}".lower()
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any(isinstance(c, ModuleNotFoundError) for c in chain) or "missing package" in text:
        return "missing_package"
    if any(sign in text for sign in _CUDA_SIGNS):
        return "needs_cuda"
    if any(isinstance(c, CheckpointError) for c in chain):
        return "checkpoint_error"
    return "error"


def _static(model: Any, name: str, cell: Any) -> dict[str, Any]:
    from .counts import year_counts

    return year_counts(model, name, cell.counting, cell.counting_size, cell.scale)[0]


def _memory(model: Any, name: str, cell: Any) -> dict[str, Any]:
    from ..memory import predict_memory

    report = predict_memory(model, cell.memory_size, scale=cell.scale)
    return {
        "peak_memory_predicted_bytes": int(report.peak_bytes),
        "memory_input": [1, 3, *cell.memory_size],
    }


def _measured(resolved: Any, cell: Any) -> dict[str, Any]:
    """The year's harness loop (:func:`effbench.timing.benchmark` with the ``ntire`` protocol) over the validation
    images, or over synthetic images of the memory input when none are given (runtime only), under the cell's
    backend and dtype (an exported model is checked against eager fp32 first)."""
    from ..timing import benchmark

    if not cell.dataset and "quality" in cell.parts:
        raise ValueError("quality needs the validation images: pass --dataset FOLDER")
    res = benchmark(
        resolved,
        cell.memory_size,
        scale=cell.scale,
        device=cell.device,
        protocol="ntire",
        dataset=cell.dataset,
        images=_SYNTHETIC_IMAGES,
        backend=cell.backend,
        dtype=cell.dtype,
    )
    metrics = dict(res.metrics())
    if "runtime" not in cell.parts:
        metrics.pop("runtime_ms", None)
    if "quality" not in cell.parts:
        metrics.pop("psnr", None)
        metrics.pop("psnr_protocol", None)
    metrics["dataset"] = res.get("dataset")
    return metrics


def measure_entry(cell: Any) -> dict[str, Any]:
    """Measure one :class:`~effbench.challenge.cells.EntryCell` in this process; always returns a document."""
    from ..base.env import capture_env
    from ..zoo.spec import ModelSpec, resolve_model

    t0 = time.perf_counter()
    doc = cell.new_result()
    seconds: dict[str, float] = {}
    doc["part_seconds"] = seconds  # where the cell's time went: build, then each part
    try:
        resolved = resolve_model(ModelSpec.from_dict(cell.model), scale=cell.scale)
        seconds["build"] = time.perf_counter() - t0
    except Exception as exc:
        doc.update(status=build_status(exc), error=f"building the entry failed: {type(exc).__name__}: {exc}")
        doc["env"] = capture_env("cpu")
        doc["cell_seconds"] = time.perf_counter() - t0
        return doc
    model, ident = resolved.model, resolved.identity
    doc.update(model_key=ident.key, identity=ident.as_dict())
    run_model = model  # what runs on whole images: the entry, or the entry tile by tile
    if cell.tile:
        from ..quality.tiling import Tiled
        from ..zoo.spec import ResolvedModel

        run_model = Tiled(model, cell.tile, scale=cell.scale)
        resolved = ResolvedModel(run_model, ident)
        doc["tile"] = cell.tile
    metrics: dict[str, Any] = {}
    failed: dict[str, str] = {}
    steps = [
        ("static", lambda: _static(model, cell.entry, cell)),
        ("memory", lambda: _memory(run_model, cell.entry, cell)),
        ("runtime", lambda: _measured(resolved, cell)),
    ]
    for part, step in steps:
        wanted = part in cell.parts or (part == "runtime" and "quality" in cell.parts)
        if not wanted:
            continue
        t_part = time.perf_counter()
        try:
            metrics.update(step())
        except Exception as exc:
            failed[part] = f"{type(exc).__name__}: {exc}"
            doc.setdefault("partial_errors", {})[f"{part}_traceback"] = traceback.format_exc(limit=8)
        seconds[part] = time.perf_counter() - t_part
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

    return run_worker(argv, "effbench.challenge.worker", EntryCell.from_dict, measure_entry)


if __name__ == "__main__":
    sys.exit(main())

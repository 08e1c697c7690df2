"""One challenge cell, run in a fresh process: ``python -m effbench.challenge.worker CELL_JSON OUT_JSON``.

Builds the entry from its spec (a failure becomes the cell's status: ``missing_package``, ``needs_cuda``,
``checkpoint_error`` or ``error``, with the reason), then measures the cell's parts:

- ``static`` and ``memory``, as the year's harness records them (:mod:`effbench.challenge.harness`): the entry
  built as ``select_model()`` builds it (what its constructor allocates, constructor forwards included, is
  recorded), frozen, its first validation forward predicted in the form it was built and then run for real on a
  small image (an entry that changes itself on it is counted and predicted changed, with the figures as built
  in ``metrics.as_built``); params, FLOPs, activations and convs at the year's counting input, each metric under
  the year's convention (``metrics.counting``), every convention's counts in ``metrics.by_convention``, the ops
  the FLOPs convention does not count, a range over several inputs for an entry whose counts depend on the
  input's values (``input_dependent``); ``memory_predicted_mib``, what ``max_memory_allocated`` records over
  the harness's run (construction, the validation images with autograd as the harness has it, dtypes and
  autocast as the model has them), and ``memory_inference_mib``, one no-grad forward of the largest validation
  image; tile by tile for an entry the manifest gives a ``tile`` (as the measured parts run it);
- ``runtime`` / ``quality``: the year's ``test_demo.py`` protocol over the validation images
  (:func:`effbench.timing.ntire.run_ntire` through :func:`effbench.timing.benchmark`: per-image timing, mean,
  ``max_memory_allocated`` over the run, PSNR), under the cell's backend and dtype.

A part that fails gives the cell the status ``error`` naming the part; the other parts' metrics are kept.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Iterator
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
    "only supported on cuda",
    "cuda_home",  # torch.utils.cpp_extension building a CUDA extension without a CUDA toolkit
    "nvcc",
)
#: packages that exist only for CUDA devices: an entry that cannot import them needs CUDA, not a package
_CUDA_ONLY_PACKAGES = ("triton",)


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
    missing = [(c.name or "").split(".")[0] for c in chain if isinstance(c, ModuleNotFoundError)]
    if any(name in _CUDA_ONLY_PACKAGES for name in missing):
        return "needs_cuda"
    if missing or "missing package" in text:
        return "missing_package"
    if any(sign in text for sign in _CUDA_SIGNS):
        return "needs_cuda"
    if any(isinstance(c, CheckpointError) for c in chain):
        return "checkpoint_error"
    return "error"


def _mib(nbytes: int) -> float:
    return round(nbytes / 2**20, 3)


class _Clock:
    """Seconds per step of a cell (``with clock("step"): ...``), into ``seconds``."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = round(self.seconds.get(step, 0.0) + time.perf_counter() - t0, 3)


def _copy_or_self(model: Any) -> Any:
    """A deep copy of ``model``, or the model itself where it cannot be copied."""
    import copy

    try:
        return copy.deepcopy(model)
    except Exception:
        return model


#: the multiples an input is padded up to, in turn, when an entry cannot run the memory input as it is
_PAD_MULTIPLES = (8, 16, 32, 64)


def _predict_padded(model: Any, size: tuple[int, ...], grad: bool, kw: dict[str, Any]) -> tuple[Any, tuple]:
    """:func:`~effbench.memory.predict_memory` at ``size``, or, when the entry's forward fails there (a window
    model whose input must be a multiple of its window), at ``size`` padded up to the first multiple of
    :data:`_PAD_MULTIPLES` it runs (as the harness's branch for such an entry pads its input). Returns the report
    and the size it was predicted at."""
    from ..base.errors import ModelError
    from ..memory import predict_memory

    try:
        return predict_memory(model, size, grad=grad, **kw), tuple(size)
    except ModelError as exc:
        first_failure = exc
    for m in _PAD_MULTIPLES:
        padded = tuple(-(-int(v) // m) * m for v in size)
        if padded == tuple(size):
            continue
        try:
            return predict_memory(model, padded, grad=grad, **kw), padded
        except ModelError:
            continue
    raise first_failure


def _harness_static_memory(
    build: Any, run_model: Any, cell: Any, harness: Any, failed: dict[str, BaseException]
) -> dict[str, Any]:
    """The static and memory parts as the year's harness records them (:mod:`effbench.challenge.harness`):
    frozen as ``select_model()`` leaves the entry, the memory of its first validation forward in the form it was
    built, then that forward run for real (an entry that changes itself on it is counted changed, as the
    harness's counting tools see it after the run), and the pure no-grad inference figures beside. A part
    that fails is put in ``failed`` (part -> exception) and the other part still runs. ``harness_seconds`` says
    where the time went."""
    from ..memory import predict_memory
    from .counts import year_counts
    from .harness import freeze_as_harness, run_first_forward

    model = build.resolved.model
    freeze_as_harness(model, harness)
    seconds: dict[str, float] = {}
    clock = _Clock(seconds)
    out: dict[str, Any] = {"harness": harness.to_dict(), "harness_seconds": seconds}
    if build.stand_ins:
        out["stand_ins"] = list(build.stand_ins)
    size = tuple(cell.memory_size)
    mem_kw: dict[str, Any] = dict(scale=cell.scale, keep_dtypes=True)
    first, first_error = None, None
    if "memory" in cell.parts:
        try:
            with clock("memory, first image as built"):
                # on a copy: a replayed forward may still change the model's plain attributes (a flag saying
                # its branches are fused), and the real first forward below must meet it as built
                first, size = _predict_padded(_copy_or_self(run_model), size, harness.forward_grad, mem_kw)
        except Exception as exc:  # e.g. a forward that changes the model cannot be replayed on fake tensors
            first_error = exc
    with clock("first forward (real)"):
        ff = run_first_forward(
            model,
            harness,
            [*harness.first_forward_sizes, tuple(cell.counting_size)],
            build.resolved.data_range,
        )
    changed, as_built = ff.changed, ff.as_built
    if ff.error:
        out["harness_forward_error"] = ff.error
        if ff.exception is not None and build_status(ff.exception) == "needs_cuda":
            # CUDA-only code in the forward (jiterator, Triton): nothing here can run it
            failed["needs_cuda"] = ff.exception
            return out
    out["changed_by_first_forward"] = changed
    if ff.opaque_ops:
        out["opaque_ops"] = ff.opaque_ops
    if build.unavailable:
        out["counted_path_differs"] = {
            "unavailable": list(build.unavailable),
            "counted": "the entry's own fallback path (what its code runs without them); the organisers' "
            "machine ran the path through them, which this host cannot build or import",
        }
    if "static" in cell.parts:
        try:
            with clock("counts"):
                try:
                    counts = year_counts(model, cell.entry, cell.counting, cell.counting_size, cell.scale)[0]
                except Exception as exc:
                    if ff.error:  # the real forward failed too
                        raise
                    # the shapes-only replays cannot run it (an extension reading data pointers): a real forward
                    counts = year_counts(
                        model, cell.entry, cell.counting, cell.counting_size, cell.scale, force_real=True
                    )[0]
                    counts["shapes_only_error"] = f"{type(exc).__name__}: {exc}"[:500]
            out.update(counts)
            if "counted_path_differs" in out:
                out["counted_path_differs"]["figures"] = {
                    conv: {k: counts["by_convention"][conv][k] for k in ("flops", "activations", "convs")}
                    for conv in counts["by_convention"]
                }
            if changed and as_built is not None:
                with clock("counts as built"):
                    before = year_counts(
                        as_built, cell.entry, cell.counting, cell.counting_size, cell.scale, draws=0
                    )[0]
                out["as_built"] = {k: before[k] for k in ("params", *cell.counting) if k in before}
        except Exception as exc:  # the memory part still runs; the cell says which part failed
            failed["static"] = exc
    if "memory" in cell.parts:
        try:
            with clock("memory, validation"):
                if first is not None and not changed:
                    later = first
                else:
                    later, size = _predict_padded(run_model, size, harness.forward_grad, mem_kw)
            with clock("memory, no-grad inference"):
                # without an autograd graph the harness's forward is the no-grad forward: the same replay
                inference = (
                    later
                    if not later.autograd_kept
                    else predict_memory(run_model, size, grad=False, **mem_kw)
                )
        except Exception as exc:
            failed["memory"] = exc
            return out
        stages = {"validation": later.peak_bytes}
        if first is not None:
            stages["validation, first image (as built)"] = first.peak_bytes
        elif changed:
            out["memory_as_built_error"] = (
                "the first forward (which changes the entry) could not be replayed on fake tensors: "
                f"{type(first_error).__name__}: {first_error}"
            )[:500]
        if build.construction_on_device:
            stages["construction"] = build.construction_peak_bytes
        stage, peak = max(stages.items(), key=lambda kv: kv[1])
        out.update(
            peak_memory_predicted_bytes=int(peak),
            memory_predicted_mib=_mib(peak),
            memory_peak_stage=stage,
            memory_stages_mib={k: _mib(v) for k, v in stages.items()},
            memory_inference_mib=_mib(inference.peak_bytes),
            peak_memory_inference_bytes=int(inference.peak_bytes),
            memory_input=[1, 3, *size],
            memory_engine=inference.engine,
        )
        if tuple(size) != tuple(cell.memory_size):
            h, w = cell.memory_size
            out["memory_padded_to"] = list(size)
            out["memory_padded_note"] = (
                f"the entry cannot run a {h}x{w} input (window sizes): predicted at {size[0]}x{size[1]}, the "
                "multiple it runs, as harness branches pad such entries' inputs"
            )
        if build.construction_peak_bytes:
            out["memory_construction_mib"] = _mib(build.construction_peak_bytes)
    return out


def _projection(model: Any, cell: Any) -> dict[str, Any]:
    """The runtime projected under the year's protocol on the cell's GPU (a projection, never a measurement)."""
    from .projection import project_entry

    proj = project_entry(model, cell.year, cell.gpu)
    return {**proj.metrics(), "runtime_projection": proj.as_dict()}


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


def _special_status(errors: dict[str, BaseException], metrics: dict[str, Any]) -> tuple[str, str] | None:
    """``needs_cuda`` (the forward runs CUDA-only code: jiterator, Triton) or ``opaque_op`` (an output written
    outside the dispatcher, so no trace counted what made it), with the reason; else ``None``."""
    if "needs_cuda" in errors:
        exc = errors["needs_cuda"]
        return "needs_cuda", f"the forward runs CUDA-only code: {type(exc).__name__}: {exc}"
    if metrics.get("opaque_ops"):
        what = "; ".join(
            f"{' / '.join(o['written_by'])} filled the {o['made_by'].removeprefix('aten.')} result made at "
            f"{o.get('made_at') or o['module'] or 'the model'} (read by {o['read_by']})"
            for o in metrics["opaque_ops"]
        )
        return "opaque_op", f"an output written outside the trace, so not counted: {what}"
    return None


def measure_entry(cell: Any) -> dict[str, Any]:
    """Measure one :class:`~effbench.challenge.cells.EntryCell` in this process; always returns a document."""
    from ..base.env import capture_env
    from ..zoo.spec import ModelSpec, resolve_model
    from .harness import Harness, build_as_harness, harness_of

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
    run_model = model  # what runs on whole images: the entry, or the entry tile by tile
    if cell.tile:
        from ..quality.tiling import Tiled
        from ..zoo.spec import ResolvedModel

        run_model = Tiled(model, cell.tile, scale=cell.scale)
        resolved = ResolvedModel(run_model, ident)
        doc["tile"] = cell.tile
    metrics: dict[str, Any] = {}
    failed: dict[str, str] = {}
    t_part = time.perf_counter()
    if cell.measured:
        try:
            metrics.update(_measured(resolved, cell))
        except Exception as exc:
            failed["runtime"] = f"{type(exc).__name__}: {exc}"
            doc.setdefault("partial_errors", {})["runtime_traceback"] = traceback.format_exc(limit=8)
        seconds["runtime"] = time.perf_counter() - t_part
    else:
        errors: dict[str, BaseException] = {}
        harness_parts = "+".join(p for p in cell.parts if p in ("static", "memory"))
        try:
            if harness_parts:
                metrics.update(_harness_static_memory(build, run_model, cell, harness, errors))
        except Exception as exc:  # the harness's own steps (freezing, the first forward)
            errors[harness_parts] = exc
        if "projection" in cell.parts:
            try:
                metrics.update(_projection(run_model, cell))
            except Exception as exc:
                errors["projection"] = exc
        for part, exc in errors.items():
            failed[part] = f"{type(exc).__name__}: {exc}"
            doc.setdefault("partial_errors", {})[f"{part}_traceback"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8)
            )
        seconds["+".join(cell.parts)] = time.perf_counter() - t_part
        special = _special_status(errors, metrics)
        if special is not None:
            doc.update(status=special[0], error=special[1])
            failed = {}
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

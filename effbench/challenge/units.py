"""The challenge's measurements, registered (:mod:`effbench.base.measurement`) and run by name by a challenge cell
(:mod:`effbench.challenge.entry_process`) and by ``challenge check``:

- ``harness_counts`` and ``harness_memory`` (the parts ``static`` and ``memory``): the entry as the year's harness
  records it (:mod:`effbench.challenge.harness`), frozen as ``select_model()`` leaves it, its first validation
  forward predicted in the form it was built and then run for real on a small image (an entry that changes itself
  on it is counted and predicted changed, with the figures as built in ``metrics.as_built``). The two share that
  first forward through ``context.shared`` (:func:`harness_record`: run once, by whichever comes first); they
  read the cell and the harness's build from ``context.options["entry"]`` (an :class:`EntrySetup`).
  ``harness_counts``: params, FLOPs, activations and convs at the year's counting input, each metric under the
  year's convention (``metrics.counting``), every convention's counts in ``metrics.by_convention``, the ops the
  FLOPs convention does not count, a range over several inputs for an entry whose counts depend on the input's
  values (``input_dependent``). ``harness_memory``: ``memory_predicted_mib``, what ``max_memory_allocated``
  records over the harness's run (construction, the validation images with autograd as the harness has it,
  dtypes and autocast as the model has them), and ``memory_inference_mib``, one no-grad forward of the largest
  validation image;
- ``runtime_projection`` (the part ``projection``): the runtime projected under the year's protocol on the cell's
  GPU (a projection, never a measurement);
- ``ntire_run`` (the parts ``runtime`` and ``quality``, one pass over the images): the year's ``test_demo.py``
  protocol over the validation images (:func:`effbench.timing.benchmark` with the ``ntire`` protocol: per-image
  timing, mean, ``max_memory_allocated`` over the run, PSNR), under the cell's backend and dtype;
- ``year_counts``: a model's counts under a year's conventions (``options["counting"]``: metric -> convention),
  with every convention's profile, for ``challenge check``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..base.measurement import Context, Resolved, Workload, register_measurement

if TYPE_CHECKING:
    from torch import nn

    from ..counting import Profile
    from ..memory import MemoryReport
    from ..timing.projection import Projection
    from .cells import EntryCell
    from .harness import FirstForward, Harness, HarnessBuild

__all__ = [
    "EntryFigures",
    "EntryProjection",
    "EntrySetup",
    "HarnessRecord",
    "HarnessStepError",
    "NeedsCuda",
    "YearCounts",
    "harness_record",
    "recorded_harness",
]

_SYNTHETIC_IMAGES = 5  # stand-ins for the validation set when its images are not given (runtime only)
#: the multiples an input is padded up to, in turn, when an entry cannot run the memory input as it is
_PAD_MULTIPLES = (8, 16, 32, 64)
#: where the harness's first forward is kept in ``context.shared``
_RECORD = "challenge.harness_record"


@dataclass(frozen=True)
class EntrySetup:
    """What the challenge's measurements read from ``context.options["entry"]``: the cell, the year's harness
    and, for a device-free cell, the entry as the harness built it (its untouched model is the one counted;
    the resolved model a measurement is given may run it tile by tile)."""

    cell: EntryCell
    harness: Harness
    build: HarnessBuild | None = None


@dataclass(frozen=True)
class EntryFigures:
    """A challenge measurement's figures under the result document's metric keys."""

    values: Mapping[str, Any]

    def metrics(self) -> dict[str, Any]:
        return dict(self.values)


class HarnessCounts(EntryFigures):
    """``harness_counts``: the counts after the harness's first forward, with the harness's record."""


class HarnessMemory(EntryFigures):
    """``harness_memory``: the memory predicted over the harness's run, with the harness's record."""


class NtireRun(EntryFigures):
    """``ntire_run``: the year's harness loop over the validation images (runtime and/or PSNR)."""


@dataclass(frozen=True)
class EntryProjection:
    """``runtime_projection``: the runtime projected on a GPU (never a measurement)."""

    projection: Projection

    def metrics(self) -> dict[str, Any]:
        return {**self.projection.metrics(), "runtime_projection": self.projection.as_dict()}


@dataclass(frozen=True)
class YearCounts:
    """``year_counts``: a model's counts under a year's conventions, and each convention's profile."""

    counts: dict[str, Any]
    profiles: dict[str, Profile]

    def metrics(self) -> dict[str, Any]:
        return dict(self.counts)


class HarnessStepError(Exception):
    """The harness's own steps (freezing, the first forward) failed: neither static nor memory could run.
    ``cause`` is the exception they raised."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class NeedsCuda(Exception):
    """The harness's first forward runs CUDA-only code (jiterator, Triton): nothing here can run it. ``cause`` is
    the forward's exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


@dataclass
class HarnessRecord:
    """The harness's steps before its counts, run once per cell (:func:`harness_record`).

    ``metrics``: the record the cell's document takes (the harness, ``harness_seconds``, stand-ins, what the
    first forward did), which ``harness_counts`` and ``harness_memory`` add their figures to as they go (a part
    that fails keeps what the other added); ``common``: its keys before they did; ``memory_size``: the memory
    input, padded where the entry needs it; ``first``: the memory of the first image as built (when the cell
    measures memory), or ``first_error``; ``needs_cuda``: the first forward's CUDA-only failure."""

    metrics: dict[str, Any]
    seconds: dict[str, float]
    forward: FirstForward
    memory_size: tuple[int, ...]
    first: MemoryReport | None = None
    first_error: BaseException | None = None
    needs_cuda: BaseException | None = None
    common: frozenset[str] = field(default_factory=frozenset)

    def added_since(self, keys: set[str]) -> dict[str, Any]:
        """The common record and what was added to it after ``keys``."""
        return {k: v for k, v in self.metrics.items() if k in self.common or k not in keys}


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


def _copy_or_self(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``, or the model itself where it cannot be copied."""
    import copy

    try:
        return copy.deepcopy(model)
    except Exception:
        return model


def _predict_padded(
    model: nn.Module, size: tuple[int, ...], grad: bool, kw: dict[str, Any]
) -> tuple[MemoryReport, tuple[int, ...]]:
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


def entry_setup(ctx: Context) -> EntrySetup:
    """The cell's :class:`EntrySetup` (``context.options["entry"]``)."""
    setup = ctx.option("entry")
    if not isinstance(setup, EntrySetup):
        raise UsageError(
            "the challenge's measurements run in a challenge cell: options['entry'] must be an EntrySetup"
        )
    return setup


def _harness_build(setup: EntrySetup) -> HarnessBuild:
    if setup.build is None:
        raise UsageError("the harness's measurements need the entry built as the harness builds it")
    return setup.build


def _memory_kw(cell: EntryCell) -> dict[str, Any]:
    return dict(scale=cell.scale, keep_dtypes=True)


def _run_harness(resolved: Resolved, setup: EntrySetup) -> HarnessRecord:
    """Freeze the entry as ``select_model()`` leaves it, predict its first validation forward's memory in the form
    it was built (when the cell measures memory: on a copy, as a replayed forward may still change the model's
    plain attributes, and the real first forward must meet it as built), then run that forward for real."""
    from .harness import freeze_as_harness, run_first_forward
    from .statuses import build_status

    cell, harness, build = setup.cell, setup.harness, _harness_build(setup)
    model = build.resolved.model
    freeze_as_harness(model, harness)
    seconds: dict[str, float] = {}
    clock = _Clock(seconds)
    out: dict[str, Any] = {"harness": harness.to_dict(), "harness_seconds": seconds}
    if build.stand_ins:
        out["stand_ins"] = list(build.stand_ins)
    size: tuple[int, ...] = tuple(cell.memory_size)
    first, first_error = None, None
    if "harness_memory" in cell.measurements:
        try:
            with clock("memory, first image as built"):
                first, size = _predict_padded(
                    _copy_or_self(resolved.model), size, harness.forward_grad, _memory_kw(cell)
                )
        except Exception as exc:  # e.g. a forward that changes the model cannot be replayed on fake tensors
            first_error = exc
    with clock("first forward (real)"):
        ff = run_first_forward(
            model,
            harness,
            [*harness.first_forward_sizes, tuple(cell.counting_size)],
            build.resolved.data_range,
        )
    record = HarnessRecord(out, seconds, ff, size, first, first_error)
    if ff.error:
        out["harness_forward_error"] = ff.error
        if ff.exception is not None and build_status(ff.exception) == "needs_cuda":
            record.needs_cuda = ff.exception
            record.common = frozenset(out)
            return record
    out["changed_by_first_forward"] = ff.changed
    if ff.opaque_ops:
        out["opaque_ops"] = ff.opaque_ops
    if build.unavailable:
        out["counted_path_differs"] = {
            "unavailable": list(build.unavailable),
            "counted": "the entry's own fallback path (what its code runs without them); the organisers' "
            "machine ran the path through them, which this host cannot build or import",
        }
    record.common = frozenset(out)
    return record


def harness_record(resolved: Resolved, ctx: Context) -> HarnessRecord:
    """The cell's :class:`HarnessRecord`: made by the first of ``harness_counts`` and ``harness_memory`` to ask,
    kept in ``context.shared``. Raises :class:`HarnessStepError` when the harness's steps failed and
    :class:`NeedsCuda` when the first forward needs CUDA (for each part that asks)."""
    got = ctx.shared.get(_RECORD)
    if got is None:
        try:
            got = _run_harness(resolved, entry_setup(ctx))
        except Exception as exc:
            ctx.shared[_RECORD] = exc
            raise HarnessStepError(exc) from exc
        ctx.shared[_RECORD] = got
    if isinstance(got, BaseException):
        raise HarnessStepError(got)
    if got.needs_cuda is not None:
        raise NeedsCuda(got.needs_cuda)
    return got


def recorded_harness(shared: Mapping[str, Any]) -> HarnessRecord | None:
    """The :class:`HarnessRecord` a cell's measurements left in ``shared`` (None when none ran or the harness's
    steps failed)."""
    got = shared.get(_RECORD)
    return got if isinstance(got, HarnessRecord) else None


@register_measurement(
    "harness_counts",
    summary="params, FLOPs, #Acts, #Conv as the year's harness and tools count them (challenge part static)",
)
def harness_counts(resolved: Resolved, workload: Workload, ctx: Context) -> HarnessCounts:
    """The counts after the harness's first forward, each metric under the year's convention, at the workload's
    size (the year's counting input)."""
    from .counts import year_counts

    record = harness_record(resolved, ctx)
    setup = entry_setup(ctx)
    cell, model, ff = setup.cell, _harness_build(setup).resolved.model, record.forward
    out, start = record.metrics, set(record.metrics)
    clock = _Clock(record.seconds)
    size, scale = workload.size, workload.scale
    with clock("counts"):
        try:
            counts = year_counts(model, cell.entry, cell.counting, size, scale)[0]
        except Exception as exc:
            if ff.error:  # the real forward failed too
                raise
            # the shapes-only replays cannot run it (an extension reading data pointers): a real forward
            counts = year_counts(model, cell.entry, cell.counting, size, scale, force_real=True)[0]
            counts["shapes_only_error"] = f"{type(exc).__name__}: {exc}"[:500]
    out.update(counts)
    if "counted_path_differs" in out:
        out["counted_path_differs"]["figures"] = {
            conv: {k: counts["by_convention"][conv][k] for k in ("flops", "activations", "convs")}
            for conv in counts["by_convention"]
        }
    if ff.changed and ff.as_built is not None:
        with clock("counts as built"):
            before = year_counts(ff.as_built, cell.entry, cell.counting, size, scale, draws=0)[0]
        out["as_built"] = {k: before[k] for k in ("params", *cell.counting) if k in before}
    return HarnessCounts(record.added_since(start))


@register_measurement(
    "harness_memory",
    after=("harness_counts",),
    summary="memory predicted over the year's harness run, and one no-grad forward (challenge part memory)",
)
def harness_memory(resolved: Resolved, workload: Workload, ctx: Context) -> HarnessMemory:
    """``max_memory_allocated`` over the harness's run (construction, the validation images as the harness runs
    them) and one no-grad forward of the largest validation image, predicted on the model as given (tile by
    tile for a tiled entry)."""
    from ..memory import predict_memory

    record = harness_record(resolved, ctx)
    setup = entry_setup(ctx)
    cell, build, harness = setup.cell, _harness_build(setup), setup.harness
    run_model, first, size = resolved.model, record.first, record.memory_size
    out, start = record.metrics, set(record.metrics)
    clock = _Clock(record.seconds)
    mem_kw = _memory_kw(cell)
    with clock("memory, validation"):
        if first is not None and not record.forward.changed:
            later = first
        else:
            later, size = _predict_padded(run_model, size, harness.forward_grad, mem_kw)
    with clock("memory, no-grad inference"):
        # without an autograd graph the harness's forward is the no-grad forward: the same replay
        inference = (
            later if not later.autograd_kept else predict_memory(run_model, size, grad=False, **mem_kw)
        )
    stages = {"validation": later.peak_bytes}
    if first is not None:
        stages["validation, first image (as built)"] = first.peak_bytes
    elif record.forward.changed:
        out["memory_as_built_error"] = (
            "the first forward (which changes the entry) could not be replayed on fake tensors: "
            f"{type(record.first_error).__name__}: {record.first_error}"
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
    return HarnessMemory(record.added_since(start))


@register_measurement(
    "runtime_projection",
    summary="the runtime PROJECTED under the year's protocol on its GPU (challenge part projection)",
)
def runtime_projection(resolved: Resolved, workload: Workload, ctx: Context) -> EntryProjection:
    """The runtime projected under the cell's year's protocol on the cell's GPU (default: the year's)."""
    from .projection import project_entry

    cell = entry_setup(ctx).cell
    return EntryProjection(project_entry(resolved.model, cell.year, cell.gpu))


@register_measurement(
    "ntire_run",
    needs_device=True,
    summary="the year's test_demo.py loop over the validation images: runtime, PSNR (challenge runtime/quality)",
)
def ntire_run(resolved: Resolved, workload: Workload, ctx: Context) -> NtireRun:
    """The year's harness loop (:func:`effbench.timing.benchmark` with the ``ntire`` protocol) over the validation
    images, or over synthetic images of the workload's size when none are given (runtime only), under the cell's
    backend and the workload's dtype (an exported model is checked against eager fp32 first). Only the parts the
    cell asks for are kept (``runtime_ms``; ``psnr``)."""
    from ..timing import BenchOptions, benchmark

    cell = entry_setup(ctx).cell
    if not cell.dataset and "quality" in cell.parts:
        raise ValueError("quality needs the validation images: pass --dataset FOLDER")
    options = BenchOptions(
        protocol="ntire",
        dataset=cell.dataset,
        images=_SYNTHETIC_IMAGES,
        backend=cell.backend,
        calibration=cell.calibration,
    )
    res = benchmark(resolved, workload, options)
    metrics = dict(res.metrics())
    if "runtime" not in cell.parts:
        metrics.pop("runtime_ms", None)
    if "quality" not in cell.parts:
        metrics.pop("psnr", None)
        metrics.pop("psnr_protocol", None)
    metrics["dataset"] = res.get("dataset")
    return NtireRun(metrics)


@register_measurement(
    "year_counts",
    summary="counts under a year's conventions, every convention's profile beside (challenge check)",
)
def year_counts_unit(resolved: Resolved, workload: Workload, ctx: Context) -> YearCounts:
    """:func:`effbench.challenge.counts.year_counts` of the model at the workload's size: ``options["counting"]``
    (metric -> convention) says each metric's convention; ``options["label"]`` names the model (default: its
    identity's name)."""
    from .counts import year_counts

    counting = ctx.option("counting")
    if not counting:
        raise UsageError("year_counts needs options['counting']: metric -> convention (a year's rules)")
    label = ctx.option("label") or resolved.identity.name
    counts, profiles = year_counts(resolved.model, label, counting, workload.size, workload.scale)
    return YearCounts(counts, profiles)

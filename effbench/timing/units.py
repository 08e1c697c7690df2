"""The timing package's registered measurements (:mod:`effbench.base.measurement`), each run on the workload's
device: ``runtime`` (:func:`effbench.benchmark` under the cell's protocol), ``op_time_breakdown`` (time per
operator kind, torch.profiler) and ``dataset_psnr`` (the eager PSNR pass over a data set after steady timing).

``dataset_psnr`` lives here rather than in :mod:`effbench.quality` because it reads the data set as the timing
protocols do (:func:`effbench.timing.image_pairs.find_pairs`, :func:`effbench.timing.ntire.evaluate_psnr`), and
timing already builds on quality (a unit there would close an import circle between the two packages).

Options read from the cell (:class:`~effbench.base.measurement.Context`): ``protocol`` (``steady`` or
``ntire``), ``repeats``, ``target`` (a :class:`~effbench.timing.steady.TimingTarget`), ``roofline``,
``dataset`` (ntire: the images timed; steady: the images ``dataset_psnr`` scores), ``backend``, ``calibration``
(the folders an int8 cell is calibrated on), ``forwards`` (profiled forwards of the breakdown, default 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..base.measurement import Context, NotApplicable, Resolved, Workload, register_measurement

if TYPE_CHECKING:
    from .bench import BenchmarkResult

__all__ = ["DatasetPsnr", "OpTimeBreakdown", "breakdown", "dataset_psnr", "runtime"]

EAGER_DTYPES = ("fp32", "fp16", "bf16")


@register_measurement(
    "runtime",
    needs_device=True,
    after=("predicted_memory",),
    summary="runtime under the cell's protocol (steady or ntire), backend and dtype",
)
def runtime(resolved: Resolved, workload: Workload, context: Context) -> BenchmarkResult:
    """:func:`effbench.benchmark` of ``workload``; an earlier ``predicted_memory`` result spares its pre-flight
    check a second prediction. The ntire protocol runs over the ``dataset`` option (that is the protocol); steady
    times the workload's size (``dataset_psnr`` scores the data set)."""
    from .bench import BenchOptions, benchmark

    protocol = context.option("protocol", "steady")
    options = BenchOptions(
        protocol=protocol,
        repeats=context.option("repeats"),
        target=context.option("target"),
        roofline=bool(context.option("roofline", False)),
        dataset=context.option("dataset") if protocol == "ntire" else None,
        backend=context.option("backend", "eager"),
        calibration=tuple(context.option("calibration", ())),
    )
    return benchmark(
        resolved.model, workload, options, predicted_memory=context.earlier.get("predicted_memory")
    )


@dataclass(frozen=True)
class OpTimeBreakdown:
    """Time per operator kind of a few profiled forwards (:func:`effbench.timing.breakdown.op_time_breakdown`)."""

    op_time: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        return {"op_time": self.op_time}


@register_measurement(
    "op_time_breakdown",
    needs_device=True,
    after=("runtime",),
    summary="time per operator kind (torch.profiler; conv GFLOP/s by layer shape)",
)
def breakdown(resolved: Resolved, workload: Workload, context: Context) -> OpTimeBreakdown:
    """Profile ``forwards`` (option, default 5) forwards on ``workload.device``; not applicable once the model
    failed earlier in the cell."""
    if context.model_failed is not None:
        raise NotApplicable("the model failed earlier in this cell")
    from ..base.inputs import DTYPES
    from .breakdown import op_time_breakdown

    return OpTimeBreakdown(
        op_time_breakdown(
            resolved.model,
            workload.size,
            device=workload.device,
            dtype=DTYPES[workload.dtype],
            threads=workload.threads,
            forwards=int(context.option("forwards", 5)),
        )
    )


@dataclass(frozen=True)
class DatasetPsnr:
    """Mean PSNR of the eager model over a data set's images (RGB uint8, a border of ``scale`` pixels)."""

    dataset: str
    psnr: float | None = None
    protocol: str | None = None

    def metrics(self) -> dict[str, Any]:
        return {"psnr": self.psnr, "psnr_protocol": self.protocol}


@register_measurement(
    "dataset_psnr",
    needs_device=True,
    after=("runtime",),
    summary="PSNR of the eager model over the data set (steady protocol)",
)
def dataset_psnr(resolved: Resolved, workload: Workload, context: Context) -> DatasetPsnr:
    """Score the ``dataset`` option's images with the eager model on ``workload.device``, untimed. Not
    applicable without a data set, under the ntire protocol (it scores PSNR in its own pass) and under a backend
    or dtype the eager model does not run (its PSNR would not be what that backend runs)."""
    dataset = context.option("dataset")
    backend = context.option("backend", "eager")
    if not dataset:
        raise NotApplicable("no data set")
    if context.option("protocol", "steady") == "ntire":
        raise NotApplicable("the ntire protocol scores PSNR in its own pass over the data set")
    if backend != "eager" or workload.dtype not in EAGER_DTYPES:
        raise NotApplicable(
            f"not scored under {backend} {workload.dtype} (the data-set PSNR pass runs the eager "
            "model); equivalence_psnr_db compares this backend's output with eager fp32"
        )
    import torch

    from ..base.inputs import DTYPES
    from .image_pairs import find_pairs
    from .ntire import evaluate_psnr

    scored = evaluate_psnr(
        resolved.model,
        find_pairs(dataset, workload.scale),
        torch.device(workload.device),
        data_range=resolved.identity.data_range,
        scale=workload.scale,
        dtype=DTYPES[workload.dtype],
    )
    return DatasetPsnr(str(dataset), scored.get("psnr"), scored.get("psnr_protocol"))

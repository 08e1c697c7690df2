"""The memory package's registered measurements (:mod:`effbench.base.measurement`): ``predicted_memory``, the
peak memory of one forward predicted on fake tensors (device-free), and ``measured_memory``, the peak measured on
a CUDA device (not applicable elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..base.measurement import Context, NotApplicable, Resolved, Workload, register_measurement

if TYPE_CHECKING:
    from . import MemoryReport

__all__ = ["MeasuredMemory", "measured_memory", "predicted_memory"]

MEASURED_SOURCE = "effbench.memory.measure_cuda_memory"


@register_measurement("predicted_memory", summary="peak memory of one forward, predicted on fake tensors")
def predicted_memory(resolved: Resolved, workload: Workload, context: Context) -> MemoryReport:
    """:func:`effbench.memory.predict_memory` of ``workload``'s input (the CUDA caching allocator's view)."""
    from . import predict_memory

    return predict_memory(resolved.model, workload.size, scale=workload.scale)


@dataclass(frozen=True)
class MeasuredMemory:
    """The peak memory of one forward measured on a CUDA device (:func:`effbench.memory.measure_cuda_memory`).

    ``forward_peak_bytes`` is the peak an earlier measurement of the cell (the runtime's timed forward) reported
    as measured, kept beside this one as ``peak_memory_forward_bytes``; ``report`` the full measurement."""

    measured_peak_bytes: int
    forward_peak_bytes: int | None = None
    report: dict[str, Any] = field(default_factory=dict, compare=False)

    def metrics(self) -> dict[str, Any]:
        return {
            "peak_memory_forward_bytes": self.forward_peak_bytes,
            "peak_memory_measured_bytes": self.measured_peak_bytes,
            "peak_memory_measured_source": MEASURED_SOURCE,
        }


@register_measurement(
    "measured_memory",
    needs_device=True,
    after=("runtime",),
    summary="peak memory of one forward measured on the CUDA device",
)
def measured_memory(resolved: Resolved, workload: Workload, context: Context) -> MeasuredMemory:
    """Measure the peak of one forward on ``workload.device`` (CUDA only: :class:`NotApplicable` elsewhere, and
    once the model failed earlier in the cell)."""
    if not workload.device.startswith("cuda"):
        raise NotApplicable(f"measured memory needs a CUDA device, not {workload.device}")
    if context.model_failed is not None:
        raise NotApplicable("the model failed earlier in this cell")
    from . import measure_cuda_memory

    forward = None  # the peak an earlier measurement measured (the timed forward's), last one wins
    for res in context.earlier.values():
        value = res.metrics().get("peak_memory_measured_bytes")
        if value is not None:
            forward = value
    mem = measure_cuda_memory(resolved.model, workload.size, scale=workload.scale, device=workload.device)
    return MeasuredMemory(int(mem["measured_peak_bytes"]), forward, dict(mem))

"""The counting package's registered measurement (:mod:`effbench.base.measurement`): ``counts``, the
full-convention static profile (params, MACs, FLOPs, activations, convolutions) of the workload's input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base.measurement import Context, Resolved, Workload, register_measurement

if TYPE_CHECKING:
    from .profile import Profile

__all__ = ["counts"]


@register_measurement("counts", summary="params, MACs, FLOPs, activations and convolutions (full convention)")
def counts(resolved: Resolved, workload: Workload, context: Context) -> Profile:
    """The ``full`` convention's :func:`effbench.counting.profile` of ``workload``'s input; the predicted peak
    memory is its own measurement (``predicted_memory``), so it is left out here."""
    from .profile import profile

    return profile(
        resolved.model,
        workload.size,
        convention="full",
        scale=workload.scale,
        batch=workload.batch,
        channels=workload.channels,
        peak_memory=False,
    )

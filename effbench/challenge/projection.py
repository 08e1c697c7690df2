"""A year's runtime protocol as a projection protocol, and the projected runtime of an entry on the year's GPU
(:mod:`effbench.timing.projection`): what ``--parts projection``, ``challenge check`` and the validation in
``reports/projection/`` share."""

from __future__ import annotations

from typing import Any

from ..base.errors import UsageError
from ..timing.gpus import GpuSpec, gpu_spec
from ..timing.projection import Projection, Protocol, image_set, load_cost_model, record_trace
from .years import year_rules

__all__ = ["project_entry", "year_gpu", "year_protocol"]


def year_protocol(year: int) -> Protocol:
    """The year's harness timing (its validation and test sets, no warm-up, its ``cudnn.benchmark``) as a
    :class:`~effbench.timing.projection.Protocol`."""
    rt = year_rules(year).runtime
    return Protocol(
        tuple(image_set(s) for s in rt.sets),
        warmup_images=rt.warmup_images,
        cudnn_benchmark=rt.cudnn_benchmark,
        name=f"NTIRE {year} ESR",
    )


def year_gpu(year: int, gpu: str | None = None) -> GpuSpec:
    """``gpu`` when given, else the GPU the year's organisers timed on; a year whose GPU is not known needs
    ``--gpu``."""
    if gpu:
        return gpu_spec(gpu)
    device = year_rules(year).runtime.device
    try:
        return gpu_spec(device)
    except UsageError:
        raise UsageError(f"NTIRE {year}: the organisers' GPU is {device!r}; name one with --gpu") from None


def project_entry(model: Any, year: int, gpu: str | None = None) -> Projection:
    """The projected runtime of ``model`` under the year's protocol on ``gpu`` (default: the year's GPU)."""
    protocol = year_protocol(year)
    spec = year_gpu(year, gpu)
    trace = record_trace(model, protocol.size, protocol.dtype)
    return load_cost_model().project(trace, spec, protocol)

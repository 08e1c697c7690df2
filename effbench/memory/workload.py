"""What the memory entry points run a model on: a :class:`~effbench.base.measurement.Workload`, or a size and the
workload's fields as keywords (``batch``, ``channels``, ``dtype``, ``memory_format``, ``scale``), resolved once
here into the model and one frozen workload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

import torch
from torch import nn

from ..base.errors import UsageError
from ..base.inputs import DTYPES, resolve_dtype
from ..base.measurement import Workload

if TYPE_CHECKING:
    from ..zoo.spec import ModelSpec, ResolvedModel

    ModelLike = nn.Module | str | ModelSpec | ResolvedModel

__all__ = [
    "MEMORY_FORMATS",
    "WorkloadFields",
    "cuda_device",
    "memory_workload",
    "resolve_inputs",
    "torch_dtype",
    "torch_format",
]

MEMORY_FORMATS: dict[str, torch.memory_format] = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
}


class WorkloadFields(TypedDict, total=False):
    """The workload's fields an entry point takes as keywords beside a size (torch dtypes and memory formats, or
    their names)."""

    batch: int
    channels: int
    dtype: torch.dtype | str
    memory_format: torch.memory_format | str
    scale: int


def _dtype_name(dtype: torch.dtype | str) -> str:
    if isinstance(dtype, torch.dtype):
        for name, dt in DTYPES.items():
            if dt == dtype:
                return name
        raise UsageError(f"unsupported dtype {dtype}: use {', '.join(map(str, DTYPES.values()))}")
    return dtype


def _format_name(fmt: torch.memory_format | str) -> str:
    if isinstance(fmt, torch.memory_format):
        for name, f in MEMORY_FORMATS.items():
            if f == fmt:
                return name
    elif isinstance(fmt, str) and fmt in MEMORY_FORMATS:
        return fmt
    raise UsageError(f"unknown memory format {fmt!r}: use {', '.join(MEMORY_FORMATS)}")


def memory_workload(input_size: Workload | tuple[int, int] | int, fields: Mapping[str, object]) -> Workload:
    """``input_size`` (a workload, or a size) with ``fields`` (:class:`WorkloadFields`) applied, checked once."""
    unknown = set(fields) - set(WorkloadFields.__annotations__)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    changes = dict(fields)
    if "dtype" in changes:
        changes["dtype"] = _dtype_name(changes["dtype"])  # type: ignore[arg-type]
    if "memory_format" in changes:
        changes["memory_format"] = _format_name(changes["memory_format"])  # type: ignore[arg-type]
    if isinstance(input_size, Workload):
        return input_size.with_(**changes) if changes else input_size
    return Workload(size=input_size, **changes)  # type: ignore[arg-type]


def torch_dtype(workload: Workload) -> torch.dtype:
    """The workload's dtype as torch's (``fp32`` -> ``torch.float32``); ``int8`` is a usage error here."""
    return resolve_dtype(workload.dtype)


def torch_format(workload: Workload) -> torch.memory_format:
    """The workload's memory format as torch's."""
    return MEMORY_FORMATS[workload.memory_format]


def resolve_inputs(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int,
    fields: Mapping[str, object],
    *,
    deploy: bool,
) -> tuple[ResolvedModel, Workload]:
    """The model resolved once (:func:`~effbench.zoo.spec.resolve_model` at the workload's scale) and the workload."""
    from ..zoo.spec import resolve_model

    w = memory_workload(input_size, fields)
    return resolve_model(model, scale=w.scale, deploy=deploy), w


def cuda_device(device: str | torch.device | None, workload: Workload) -> torch.device:
    """The device a measured entry point runs on: ``device``, else the workload's when it is a CUDA one, else
    ``cuda``."""
    if device is None:
        device = workload.device if workload.device.startswith("cuda") else "cuda"
    return torch.device(device)

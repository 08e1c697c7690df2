"""Pre-flight memory check: refuse a forward whose predicted peak does not fit the free memory, before allocating.

The peak comes from :func:`effbench.memory.predict_memory` (fake tensors: no memory, no device). It models the CUDA
caching allocator; on CPU it approximates the peak of the same tensors (torch's CPU allocator does not round or
cache, but oneDNN convolutions take scratch buffers the prediction does not see). The check therefore asks for
``MARGIN`` (1.2) times the predicted peak plus the input, and refuses only when that exceeds the free memory
(:func:`effbench.base.env.available_memory`): a model that fits with less than 20 % to spare is refused rather
than left to swap or be killed by the OOM killer minutes later.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..base.env import available_memory
from ..base.errors import ModelError
from ..base.timeout import MeasurementTimeout

if TYPE_CHECKING:
    from .report import MemoryReport

__all__ = ["MARGIN", "MemoryWontFit", "check_fits"]

MARGIN = 1.2


class MemoryWontFit(ModelError):
    """The predicted peak of a forward exceeds the free memory of its device (sweep status ``oom``)."""

    status = "oom"


def check_fits(
    model: nn.Module,
    input_size: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
    what: str,
    predicted: MemoryReport | None = None,
) -> dict[str, object]:
    """Raise :class:`MemoryWontFit` with the figures when ``model`` on a ``1x3xHxW`` input would not fit.

    ``predicted`` is a prediction already made for ``model`` (:func:`~effbench.memory.predict_memory`); it is used
    when it is for this input shape and dtype, else the prediction runs here, on a copy of ``model``. Returns what
    was checked (``predicted_bytes``, ``available_bytes``, ``source``), or ``{"skipped": reason}`` when the
    prediction or the free memory cannot be had (the measurement then goes ahead unchecked).
    """
    from .predict import predict_memory

    free = available_memory(device)
    if free is None:
        return {"skipped": "free memory unknown on this system"}
    report = predicted if predicted is not None and _fits_input(predicted, input_size, dtype) else None
    if report is None:
        try:
            # on a copy: the fake forward must leave no trace (counters, hooks, caches) in the caller's model
            report = predict_memory(copy.deepcopy(model), input_size, dtype=dtype)
        except MeasurementTimeout:
            raise
        except Exception as exc:  # an op the fake-tensor trace cannot run: the real forward will tell
            return {"skipped": f"prediction failed: {type(exc).__name__}: {exc}"}
    need = int(report.peak_bytes * MARGIN)
    available, source = free
    if need > available:
        gib = 2**30
        raise MemoryWontFit(
            f"{what} at {input_size[0]}x{input_size[1]} on {device.type} needs a predicted "
            f"{report.peak_bytes / gib:.2f} GiB ({need / gib:.2f} GiB with the {MARGIN:g}x margin), but only "
            f"{available / gib:.2f} GiB is available ({source}); refused before allocating"
        )
    return {
        "predicted_bytes": int(report.peak_bytes),
        "available_bytes": available,
        "source": source,
        "margin": MARGIN,
    }


def _fits_input(report: MemoryReport, input_size: tuple[int, int], dtype: torch.dtype) -> bool:
    """Whether ``report`` predicts the check's forward: a ``1x3xHxW`` input in ``dtype``, the caching allocator."""
    return (
        tuple(report.input_shape) == (1, 3, *input_size)
        and report.dtype == str(dtype).replace("torch.", "")
        and report.device_model == "cuda"
    )

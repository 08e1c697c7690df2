"""Runtime measurement: the ``steady`` protocol (warm-up until settled, robust statistics), the NTIRE challenge's
``ntire`` protocol, CUDA graphs, energy through NVML and a calibrated roofline bound.

Public entry point: :func:`benchmark` (re-exported as ``effbench.benchmark``).
"""

from __future__ import annotations

from ..base.inputs import DTYPES, resolve_device
from .bench import OutOfMemory, benchmark
from .steady import WarmupRule, summarize
from .output_check import BadOutputError, NonFiniteOutputError, check_output

__all__ = [
    "DTYPES",
    "BadOutputError",
    "NonFiniteOutputError",
    "OutOfMemory",
    "WarmupRule",
    "benchmark",
    "check_output",
    "resolve_device",
    "summarize",
]

"""Runtime measurement: the ``steady`` protocol (warm-up until settled, robust statistics), the NTIRE challenge's
``ntire`` protocol, CUDA graphs, energy through NVML and a calibrated roofline bound.

Public entry point: :func:`benchmark` (re-exported as ``effbench.benchmark``): a model, a
:class:`~effbench.base.measurement.Workload` (or a size) and :class:`BenchOptions`; it returns a
:class:`BenchmarkResult`.
"""

from __future__ import annotations

from ..base.inputs import DTYPES, resolve_device
from .bench import BenchOptions, OutOfMemory, benchmark
from .output_check import BadOutputError, NonFiniteOutputError, check_output
from .result import BenchmarkResult
from .steady import TimingTarget, WarmupRule, summarize

__all__ = [
    "DTYPES",
    "BadOutputError",
    "BenchOptions",
    "BenchmarkResult",
    "NonFiniteOutputError",
    "OutOfMemory",
    "TimingTarget",
    "WarmupRule",
    "benchmark",
    "check_output",
    "resolve_device",
    "summarize",
]

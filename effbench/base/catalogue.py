"""The metric catalogue: one :class:`Metric` per key of a result document's ``metrics``.

Every reader of results takes what it needs to know about a metric from here: the report table (title, unit, rounding,
which way is better, the footnote under a dash), markdown and HTML (headers, the units line, deltas), the CI gate
(deterministic metrics fail on any growth, measured ones go through a statistical test; the threshold each is checked
against) and the NTIRE scores (which way each ranked metric is better). The producers' typed results
(:class:`~effbench.counting.Profile`, :class:`~effbench.memory.MemoryReport`,
:class:`~effbench.timing.bench.BenchmarkResult`, :class:`~effbench.quality.evaluate.Evaluation`) return ``.metrics()`` dicts whose
keys are catalogue keys.

Where registrations live: the built-in metrics are registered below, in the order of the report's columns (the
FMEN paper's Table 4, then the rest), each naming its producer. They are not registered beside their result types
because every measurement package imports torch on import, and reading the catalogue (``effbench report``,
``effbench gate``) must not. Metrics from outside effbench register where they are produced: a plugin module calls
:func:`register_metric` on import and is found by :func:`effbench.base.plugins.load_plugins`, which
:func:`metrics` and :func:`metric` call (the discovery call).

To add a metric, touch at most these files:

1. the producer's result type, so that its ``.metrics()`` returns the new key;
2. this file (built-in) or the producer's own module (plugin): one ``register_metric(Metric(...))``.

Tables, markdown, HTML, the gate and the scores then show, gate and rank it with no further edit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "DIRECTIONS",
    "Metric",
    "columns",
    "interval",
    "lookup",
    "metric",
    "metrics",
    "number",
    "register_metric",
]

KINDS = ("deterministic", "measured")
DIRECTIONS = ("lower", "higher", None)


@dataclass(frozen=True)
class Metric:
    """What one metric is and how results show it.

    ``key``: its key in a result document's ``metrics``. ``title``: the column header. ``unit``: the unit of the
    displayed value (stored value / ``scale``), e.g. ``"K"`` for params stored as a count with ``scale=1e3``.
    ``better``: ``"lower"``, ``"higher"`` or ``None`` (not ranked). ``kind``: ``"deterministic"`` (the same model
    gives the same number; the gate fails on any growth) or ``"measured"`` (noisy; the gate tests samples).
    ``fmt``: the format spec of the displayed value (``".2f"``; ``""`` for text and structured values).

    Report: ``column`` is the table column it fills (``None``: not a column); ``suffix`` follows a cell's value
    (default ``unit``); ``missing`` is the footnote under a dash; ``always_shown`` keeps the column in every table
    (else it appears when a result of the table carries it). A column may be filled from ``sources`` (other metric
    keys, first present wins), each source naming its ``origin`` (``"measured"``) and, when a table mixes sources,
    the ``fallback_note`` on cells filled by a later one. ``name``: how sentences (deltas, gate checks) call it
    (default: ``title``). ``gate``: the threshold the gate checks it against (``None``: not gated).
    """

    key: str
    title: str
    unit: str = ""
    better: str | None = None
    kind: str = "deterministic"
    fmt: str = ".2f"
    scale: float = 1.0
    column: str | None = None
    suffix: str | None = None
    missing: str | None = None
    always_shown: bool = False
    sources: tuple[str, ...] = ()
    origin: str | None = None
    fallback_note: str | None = None
    name: str | None = None
    gate: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.key):
            raise ValueError(f"metric key {self.key!r}: use lower-case letters, digits and underscores")
        if self.kind not in KINDS:
            raise ValueError(
                f"metric {self.key!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}"
            )
        if self.better not in DIRECTIONS:
            raise ValueError(
                f"metric {self.key!r}: better must be 'lower', 'higher' or None, not {self.better!r}"
            )
        if not self.scale > 0:
            raise ValueError(f"metric {self.key!r}: scale must be positive, got {self.scale}")

    @property
    def label(self) -> str:
        """The metric in a sentence (``"params"``, ``"memory (measured)"``)."""
        return self.name or self.title

    @property
    def cell_suffix(self) -> str:
        return self.unit if self.suffix is None else self.suffix

    @property
    def decimals(self) -> int:
        """Digits after the point in the displayed value (from ``fmt``; 0 when it names none)."""
        m = re.search(r"\.(\d+)", self.fmt)
        return int(m.group(1)) if m else 0

    @property
    def missing_note(self) -> str:
        if self.missing:
            return self.missing
        return f"{self.label.lower()} {'not counted' if self.kind == 'deterministic' else 'not measured'}"

    def display(self, value: float | None, unit: bool = True) -> str:
        """A displayed value (already divided by ``scale``) with its suffix; ``-`` when missing."""
        if value is None:
            return "-"
        return format(value, self.fmt) + (self.cell_suffix if unit else "")


def number(value: Any) -> float | None:
    """A stored metric value as a float: a statistics dict gives its median (else mean); text, lists, booleans,
    NaN and ``None`` give ``None``."""
    if isinstance(value, Mapping):
        value = value.get("median", value.get("mean"))
    if value is None or isinstance(value, (list, dict, str, bool)):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def interval(value: Any) -> tuple[float, float] | None:
    """The 95 % interval of a stored statistics dict (``ci_low``, ``ci_high``); ``None`` when it has none."""
    if not isinstance(value, Mapping):
        return None
    low, high = number(value.get("ci_low")), number(value.get("ci_high"))
    return None if low is None or high is None else (low, high)


def lookup(stored: Mapping[str, Any], m: Metric) -> tuple[float | None, Metric | None]:
    """The value of ``m`` in a result's ``metrics`` (stored units) and the metric it was read from.

    A metric with ``sources`` takes the first source present; ``(None, None)`` when none is.
    """
    for key in m.sources or (m.key,):
        v = number(stored.get(key))
        if v is not None:
            return v, metric(key)
    return None, None


_REGISTRY: dict[str, Metric] = {}


def register_metric(m: Metric) -> Metric:
    """Add ``m`` to the catalogue; a key registered already raises ``ValueError`` naming it."""
    if m.key in _REGISTRY:
        raise ValueError(
            f"metric {m.key!r} is already registered ({_REGISTRY[m.key].title!r}); pick another key"
        )
    for key in m.sources:
        if key not in _REGISTRY:
            raise ValueError(f"metric {m.key!r}: source {key!r} is not registered")
    _REGISTRY[m.key] = m
    return m


def metrics() -> tuple[Metric, ...]:
    """Every registered metric (plugins loaded), in registration order."""
    from .plugins import load_plugins

    load_plugins()
    return tuple(_REGISTRY.values())


def metric(key: str) -> Metric:
    """The metric registered under ``key``; ``KeyError`` naming the known keys otherwise."""
    if key not in _REGISTRY:
        from .plugins import load_plugins

        load_plugins()
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(_REGISTRY)}") from None


def columns() -> tuple[Metric, ...]:
    """The metrics that are report columns, in column order."""
    return tuple(m for m in metrics() if m.column)


# ------------------------------------------------------------------------------------------ built-in metrics
# Table 4 of the FMEN paper, in its column order.

# counting.Profile
register_metric(
    Metric(
        "params",
        "Params",
        "K",
        "lower",
        fmt=".0f",
        scale=1e3,
        column="params_k",
        always_shown=True,
        name="params",
        gate="params",
    )
)
register_metric(
    Metric(
        "flops",
        "FLOPs",
        "G",
        "lower",
        fmt=",.2f",
        scale=1e9,
        column="flops_g",
        always_shown=True,
        gate="flops",
    )
)
# timing.BenchmarkResult
register_metric(
    Metric(
        "runtime_ms",
        "Runtime",
        "ms",
        "lower",
        "measured",
        column="runtime_ms",
        always_shown=True,
        missing="runtime not measured",
        name="runtime",
        gate="runtime",
    )
)
register_metric(
    Metric(
        "peak_memory_measured_bytes",
        "Memory (measured)",
        "MiB",
        "lower",
        scale=2**20,
        origin="measured",
        name="memory (measured)",
        gate="memory",
    )
)
# memory.MemoryReport
register_metric(
    Metric(
        "peak_memory_predicted_bytes",
        "Memory (predicted)",
        "MiB",
        "lower",
        scale=2**20,
        origin="predicted",
        fallback_note="predicted (no measured peak in this result)",
        name="memory (predicted)",
        gate="memory",
    )
)
register_metric(
    Metric(
        "peak_memory_reserved_predicted_bytes",
        "Reserved (predicted)",
        "MiB",
        "lower",
        scale=2**20,
        origin="predicted",
        name="reserved memory (predicted)",
    )
)
# the report's Memory column: measured where a result has it, else predicted
register_metric(
    Metric(
        "peak_memory_bytes",
        "Memory",
        "MiB",
        "lower",
        scale=2**20,
        column="memory_mib",
        missing="no peak memory (neither measured nor predicted)",
        always_shown=True,
        sources=("peak_memory_measured_bytes", "peak_memory_predicted_bytes"),
        name="memory",
    )
)
# counting.Profile
register_metric(
    Metric(
        "activations",
        "Activations",
        "M",
        "lower",
        scale=1e6,
        column="activations_m",
        always_shown=True,
        name="activations",
        gate="activations",
    )
)
register_metric(
    Metric(
        "convs",
        "Convs",
        "",
        "lower",
        fmt=".0f",
        column="convs",
        always_shown=True,
        name="convs",
        gate="convs",
    )
)
# quality.Evaluation, timing.BenchmarkResult (with a data set)
register_metric(
    Metric(
        "psnr",
        "PSNR",
        "dB",
        "higher",
        column="psnr_db",
        suffix="",
        always_shown=True,
        missing="PSNR not measured (no quality run in these results)",
    )
)

# counting.Profile
register_metric(Metric("macs", "MACs", "G", "lower", fmt=",.2f", scale=1e9, gate="flops"))
# quality.Evaluation
register_metric(Metric("ssim", "SSIM", "", "higher", fmt=".4f"))
# memory.MemoryReport: where the predicted peak is, and the allocated bytes after each op
register_metric(Metric("peak_memory_where", "Predicted peak, in words", fmt=""))
register_metric(Metric("peak_memory_at", "Predicted peak, in C x H x W units", fmt=""))
register_metric(Metric("memory_timeline", "Predicted memory timeline", "B", fmt=""))
# timing.BenchmarkResult
register_metric(
    Metric("peak_memory_above_inputs_bytes", "Memory above inputs (measured)", "MiB", "lower", scale=2**20)
)
register_metric(
    Metric("device_memory_held_before_bytes", "Device memory held before the benchmark", "MiB", scale=2**20)
)
register_metric(Metric("ntire_memory_mib", "Memory (NTIRE script)", "MiB", "lower"))
register_metric(Metric("energy_j_per_image", "Energy", "mJ", "lower", "measured", scale=1e-3, name="energy"))
register_metric(Metric("power_w_mean", "Power", "W", kind="measured", fmt=".1f"))
register_metric(Metric("energy_loop_images", "Images in the energy loop", fmt=".0f"))
register_metric(Metric("images", "Images timed", fmt=".0f"))
register_metric(Metric("psnr_protocol", "PSNR protocol", fmt=""))
register_metric(Metric("roofline", "Roofline bound", fmt=""))
register_metric(Metric("roofline_error", "Roofline failure", fmt=""))
# sweep worker: CUDA peak of memory.measure_cuda_memory (the forward-only peak of the benchmark kept beside it)
register_metric(
    Metric("peak_memory_forward_bytes", "Memory of one forward (measured)", "MiB", "lower", scale=2**20)
)
register_metric(Metric("peak_memory_measured_source", "Measured peak from", fmt=""))
# timing.breakdown
register_metric(Metric("op_time", "Time per operator", fmt=""))
# timing.projection: a projected runtime on a named GPU (never a measurement), with its interval
register_metric(Metric("runtime_projected_ms", "Runtime PROJECTED", "ms", "lower", name="projected runtime"))
register_metric(Metric("runtime_projected_low_ms", "Runtime PROJECTED, interval low", "ms"))
register_metric(Metric("runtime_projected_high_ms", "Runtime PROJECTED, interval high", "ms"))
register_metric(Metric("runtime_projected_gpu", "GPU of the projection", fmt=""))
register_metric(Metric("runtime_projection", "Runtime projection", fmt=""))
# backends: timing.BenchmarkResult under a deployment backend or a reduced precision
register_metric(Metric("export_seconds", "Export / compile time", "s", "lower", "measured", fmt=".2f"))
register_metric(Metric("artifact_bytes", "Exported file size", "MiB", "lower", fmt=".2f", scale=2**20))
register_metric(Metric("equivalence_psnr_db", "PSNR vs eager fp32", "dB", "higher", fmt=".1f"))
register_metric(Metric("equivalence_max_abs_diff", "Max abs diff vs eager fp32", "", "lower", fmt=".2e"))

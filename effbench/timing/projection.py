"""Projected runtime on a GPU that is not here: a per-op cost model in GPU-spec-normalised terms, fitted on
published runtimes, applied to one shapes-only trace of the model.

1. :func:`record_trace`: one shapes-only forward (counting's replay: meta, then fake tensors, a real CPU forward
   only for data-dependent models), every non-view ATen operator recorded with its kind, FLOPs, bytes moved and
   the CUDA kernels eager PyTorch launches for it (:class:`ProjectionTrace`).
2. :func:`trace_features`: the trace summed per cost term, each term in seconds on a given GPU
   (:mod:`effbench.timing.gpus`): ``FLOPs / peak FLOP/s`` for convolutions and matmuls, ``bytes / bandwidth`` for
   the traffic, ``kernels x launch overhead``, and the share of the first image's start-up the protocol averages
   in. Because every term is normalised by the GPU's own figures, one set of constants serves every GPU.
3. :class:`CostModel`: ``time = sum(coefficient x term)`` with non-negative coefficients (inverse efficiencies:
   1.0 means at the published peak), fitted by :func:`fit_cost_model` to minimise the relative error, with an
   interval from its leave-one-out residuals. The packaged fit (:func:`load_cost_model`) was made on the NTIRE
   2022 table (Titan Xp) by ``reports/projection/validate.py``.
4. :class:`Protocol`: what the harness times (image sets at their mean-equivalent sizes, the first image paying the
   start-up, fp32, ``cudnn.benchmark``); :func:`steady_protocol` for one size in steady state.

The trace is :mod:`effbench.timing.op_trace`, the protocol :mod:`effbench.timing.projection_protocol` (both
re-exported here); this module holds the cost terms, the fit and the projection. Every figure it produces is a
projection: :class:`Projection` carries ``label = "projection"``, the GPU, the fit it came from and the interval,
and every place that shows it says so.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from torch import nn

from ..base.errors import UsageError
from .gpus import GpuSpec, gpu_spec
from .op_trace import OpRecord, ProjectionTrace, record_trace, record_trace_near, tiled_flops
from .projection_protocol import ImageSetSize, Protocol, image_set, steady_protocol

__all__ = [
    "TERMS",
    "CostModel",
    "ImageSetSize",
    "OpRecord",
    "ProjectionTrace",
    "Projection",
    "Protocol",
    "fit_cost_model",
    "image_set",
    "load_cost_model",
    "nnls",
    "project",
    "project_model",
    "record_trace",
    "record_trace_near",
    "spearman",
    "steady_protocol",
    "tiled_flops",
    "trace_features",
]

#: the cost terms, in the order of a fit's coefficients
TERMS = (
    "conv_flops",  # dense k x k convolutions (k > 1): tile-quantised FLOPs (tiled_flops) / peak
    "conv1x1_flops",  # dense 1 x 1 convolutions: tile-quantised FLOPs / peak
    "grouped_bytes",  # grouped and depthwise convolutions: bytes / bandwidth (their arithmetic is negligible)
    "matmul_flops",  # mm, bmm, addmm, attention: FLOPs / peak
    "conv_bytes",  # the traffic of the dense convolutions and matmuls: bytes / bandwidth
    "other_bytes",  # every other operator (element-wise, reductions, copies, resampling): bytes / bandwidth
    "launches",  # kernels launched x the GPU's launch overhead
    "startup",  # the share of one image of the run that pays CUDA / cuDNN start-up (no warm-up in the harness)
)


def trace_features(
    trace: ProjectionTrace | Mapping[str, float], gpu: str | GpuSpec, protocol: Protocol
) -> dict[str, float]:
    """The cost terms (:data:`TERMS`) of a trace (or of its :meth:`ProjectionTrace.totals`) in seconds on ``gpu``
    (``startup``: a share of one start-up, no unit), under ``protocol``'s dtype and TF32 setting."""
    spec = gpu_spec(gpu)
    tot = trace.totals() if isinstance(trace, ProjectionTrace) else trace
    peak = spec.peak_flops_per_s(protocol.dtype, tf32=protocol.tf32)  # convolutions: cuDNN's TF32 setting
    mm_peak = spec.peak_flops_per_s(protocol.dtype, tf32=protocol.matmul_tf32)
    bw = spec.bytes_per_s

    def get(key: str) -> float:
        return float(tot.get(key, 0.0))

    return {
        "conv_flops": get("conv_tiled_flops") / peak,
        "conv1x1_flops": get("conv1x1_tiled_flops") / peak,
        "grouped_bytes": get("grouped_bytes") / bw,
        "matmul_flops": get("matmul_flops") / mm_peak,
        "conv_bytes": (get("conv_bytes") + get("conv1x1_bytes") + get("matmul_bytes")) / bw,
        "other_bytes": get("other_bytes") / bw,
        "launches": get("kernels") * spec.launch_overhead_us * 1e-6,
        "startup": protocol.startup_share,
    }


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Non-negative least squares ``min ||a x - b||, x >= 0`` (Lawson and Hanson's active-set method)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    tol = 1e-10 * max(1.0, float(np.abs(a).max(initial=0.0))) * max(m, n)
    for _ in range(max_iter):
        if passive.all() or (w[~passive] <= tol).all():
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = float(np.min(x[neg] / (x[neg] - z[neg])))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""

    def ranks(v: Sequence[float]) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    if len(a) != len(b) or len(a) < 2:
        raise ValueError("spearman needs two sequences of the same length, at least 2")
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class Projection:
    """A projected runtime (ms) with its interval: always a projection, never a measurement."""

    runtime_ms: float
    low_ms: float
    high_ms: float
    gpu: str
    protocol: str
    fit: str  #: what the cost model was fitted on
    interval: str  #: what the interval is
    terms_ms: Mapping[str, float] = field(default_factory=dict)  #: each term's share of the projection
    trace_device: str = "meta"
    label: str = "projection"
    caveats: tuple[
        str, ...
    ] = ()  #: where the protocol leaves the fitted data (less certain than the interval)

    def metrics(self) -> dict[str, Any]:
        """The leaderboard's columns: ``runtime_projected_ms`` and its ``_low_ms`` / ``_high_ms``."""
        return {
            "runtime_projected_ms": self.runtime_ms,
            "runtime_projected_low_ms": self.low_ms,
            "runtime_projected_high_ms": self.high_ms,
            "runtime_projected_gpu": self.gpu,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "runtime_ms": self.runtime_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "gpu": self.gpu,
            "protocol": self.protocol,
            "fit": self.fit,
            "interval": self.interval,
            "terms_ms": dict(self.terms_ms),
            "trace_device": self.trace_device,
            "caveats": list(self.caveats),
        }

    def text(self) -> str:
        """One line, labelled as a projection."""
        return (
            f"projected runtime on {self.gpu}: {self.runtime_ms:.2f} ms ({self.low_ms:.2f} to {self.high_ms:.2f}, "
            f"{self.interval}) [projection, not a measurement; fit: {self.fit}]"
            + "".join(f"; caveat: {c}" for c in self.caveats)
        )


@dataclass(frozen=True)
class CostModel:
    """``time = sum(coefficients[t] x term t)`` (:data:`TERMS`), with the ratio quantiles of measured /
    projected (from leave-one-out residuals) that make the interval."""

    coefficients: Mapping[str, float]
    ratio_low: float  #: measured / projected at the interval's lower quantile
    ratio_high: float
    coverage: float  #: the interval's nominal coverage (0.8: 10th to 90th percentile)
    fitted_on: str
    cudnn_benchmark: bool = False
    residuals: tuple[float, ...] = ()  #: leave-one-out measured / projected ratios

    def time_s(self, features: Mapping[str, float]) -> float:
        """Seconds for the terms of :func:`trace_features` (the start-up at the fitted constant)."""
        return float(sum(self.coefficients.get(t, 0.0) * features[t] for t in TERMS))

    def terms_ms(self, features: Mapping[str, float], protocol: Protocol) -> dict[str, float]:
        """Each term's milliseconds under ``protocol``: its own start-up when it gives one, else the fitted one."""
        terms = {t: self.coefficients.get(t, 0.0) * features[t] * 1e3 for t in TERMS}
        if protocol.startup_s is not None:
            terms["startup"] = protocol.startup_s * features["startup"] * 1e3
        return terms

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "coefficients": dict(self.coefficients),
            "ratio_low": self.ratio_low,
            "ratio_high": self.ratio_high,
            "coverage": self.coverage,
            "fitted_on": self.fitted_on,
            "cudnn_benchmark": self.cudnn_benchmark,
            "residuals": list(self.residuals),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostModel:
        unknown = set(d["coefficients"]) - set(TERMS)
        if unknown:
            raise ValueError(f"cost model: unknown terms {', '.join(sorted(unknown))}")
        return cls(
            {k: float(v) for k, v in d["coefficients"].items()},
            float(d["ratio_low"]),
            float(d["ratio_high"]),
            float(d["coverage"]),
            str(d["fitted_on"]),
            bool(d.get("cudnn_benchmark", False)),
            tuple(float(r) for r in d.get("residuals", ())),
        )

    def project(self, trace: ProjectionTrace, gpu: str | GpuSpec, protocol: Protocol) -> Projection:
        """The projected runtime of ``trace`` under ``protocol`` on ``gpu``."""
        spec = gpu_spec(gpu)
        if tuple(trace.input_size) != tuple(protocol.size):
            raise UsageError(
                f"the trace is at {trace.input_size[0]}x{trace.input_size[1]} but the protocol times "
                f"{protocol.size[0]}x{protocol.size[1]}: trace at protocol.size"
            )
        if trace.dtype != protocol.dtype:
            raise UsageError(f"the trace is {trace.dtype} but the protocol times {protocol.dtype}")
        feats = trace_features(trace, spec, protocol)
        terms = self.terms_ms(feats, protocol)
        t = sum(terms.values())
        pct = round(self.coverage * 100)
        caveats = []
        if trace.traced_size is not None:
            th, tw = trace.traced_size
            caveats.append(
                f"the model refuses {trace.input_size[0]}x{trace.input_size[1]}: traced at {th}x{tw}, "
                f"FLOPs and bytes scaled by pixels (x{trace.pixel_scale:.3f})"
            )
        if protocol.cudnn_benchmark != self.cudnn_benchmark:
            caveats.append(
                f"the fit's data were timed with cudnn.benchmark={self.cudnn_benchmark}, this protocol sets "
                f"{protocol.cudnn_benchmark}: outside the fitted data"
            )
        if protocol.dtype != "fp32":
            caveats.append(
                f"{protocol.dtype}: the fit's data are fp32; its peak is the GPU's published {protocol.dtype} one"
            )
        return Projection(
            t,
            t * self.ratio_low,
            t * self.ratio_high,
            spec.gpu,
            protocol.describe(),
            self.fitted_on,
            f"{pct}% interval from the fit's leave-one-out residuals",
            terms,
            trace.device,
            caveats=tuple(caveats),
        )


def _ratio_quantiles(ratios: Sequence[float], coverage: float) -> tuple[float, float]:
    tail = (1.0 - coverage) / 2.0
    logs = np.log(np.asarray(ratios, dtype=float))
    return float(math.exp(np.quantile(logs, tail))), float(math.exp(np.quantile(logs, 1.0 - tail)))


def _solve(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    # relative least squares: each row divided by its measured time, times its weight
    scale = (w / y)[:, None]
    return nnls(x * scale, w.copy())


def fit_cost_model(
    samples: Sequence[tuple[Mapping[str, float], float]],
    *,
    fitted_on: str,
    measured: Sequence[tuple[Mapping[str, float], float]] = (),
    measured_weight: float = 0.5,
    terms: Iterable[str] = TERMS,
    coverage: float = 0.8,
    cudnn_benchmark: bool = False,
) -> tuple[CostModel, list[float]]:
    """Fit non-negative coefficients of ``terms`` to ``(features, seconds)`` samples (published runtimes),
    minimising the relative squared error; returns the model and each sample's leave-one-out projection (seconds).

    ``measured``: more ``(features, seconds)`` rows from a lent GPU (gpu_check's measurements), always in the fit
    with ``measured_weight`` each (a model measured at several sizes and on several GPUs is not that many
    independent entries), never left out: they pin what the published table barely constrains (the per-kernel
    cost of small, launch-bound forwards). The interval is the ``coverage`` quantile range of the samples'
    leave-one-out measured / projected ratios.
    """
    terms = tuple(terms)
    unknown = set(terms) - set(TERMS)
    if unknown:
        raise UsageError(f"unknown cost terms {', '.join(sorted(unknown))}; known: {', '.join(TERMS)}")
    if len(samples) < len(terms) + 2:
        raise UsageError(
            f"a fit of {len(terms)} terms needs at least {len(terms) + 2} samples, got {len(samples)}"
        )
    if measured and not measured_weight > 0:
        raise UsageError(f"measured_weight {measured_weight}: must be positive")
    rows = list(samples) + list(measured)
    x = np.array([[f[t] for t in terms] for f, _ in rows], dtype=float)
    y = np.array([s for _, s in rows], dtype=float)
    if (y <= 0).any():
        raise UsageError("every measured time must be positive")
    w = np.array([1.0] * len(samples) + [float(measured_weight)] * len(measured))
    theta = _solve(x, y, w)
    loo = []
    for i in range(len(samples)):
        keep = np.arange(len(y)) != i
        loo.append(float(x[i] @ _solve(x[keep], y[keep], w[keep])))
    ratios = [yi / max(p, 1e-12) for yi, p in zip(y, loo)]
    low, high = _ratio_quantiles(ratios, coverage)
    model = CostModel(
        dict(zip(terms, (float(v) for v in theta))),
        low,
        high,
        coverage,
        fitted_on,
        cudnn_benchmark,
        tuple(float(r) for r in ratios),
    )
    return model, loo


@functools.lru_cache(maxsize=4)
def load_cost_model(name: str = "ntire2022-titan-xp") -> CostModel:
    """A packaged fit (``effbench/data/projection/<name>.json``)."""
    path = resources.files("effbench") / "data" / "projection" / f"{name}.json"
    if not path.is_file():
        raise UsageError(f"no packaged cost model {name!r}")
    return CostModel.from_dict(json.loads(path.read_text()))


def project(
    model: nn.Module,
    gpu: str | GpuSpec,
    protocol: Protocol,
    *,
    cost_model: CostModel | None = None,
) -> Projection:
    """Trace ``model`` once at the protocol's size and project its runtime on ``gpu``."""
    cm = cost_model or load_cost_model()
    trace = record_trace_near(model, protocol.size, protocol.dtype)
    return cm.project(trace, gpu, protocol)


def project_model(
    model: nn.Module,
    gpu: str | GpuSpec,
    size: tuple[int, int],
    *,
    protocol: str = "steady",
    images: int = 10,
    dtype: str = "fp32",
    cudnn_benchmark: bool = False,
    cost_model: CostModel | None = None,
) -> Projection:
    """Project any model at ``size`` on ``gpu``: ``protocol="steady"`` (one warm forward) or ``"ntire"``
    (``images`` images of that size timed one by one, no warm-up: the first pays the start-up)."""
    if protocol == "steady":
        proto = steady_protocol(size, cudnn_benchmark=cudnn_benchmark, dtype=dtype)
    elif protocol == "ntire":
        if images < 1:
            raise UsageError(f"--images {images}: the ntire protocol times at least one image")
        one = ImageSetSize(f"{size[0]}x{size[1]}", images, (int(size[0]), int(size[1])), "synthetic images")
        proto = Protocol((one,), warmup_images=0, cudnn_benchmark=cudnn_benchmark, dtype=dtype, name="ntire")
    else:
        raise UsageError(f"protocol {protocol!r}: choose steady or ntire")
    return project(model, gpu, proto, cost_model=cost_model)

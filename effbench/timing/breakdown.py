"""Where the time of one forward goes: :mod:`torch.profiler` self times per ATen operator, grouped by kind.

The kind of each operator comes from one table (:data:`OP_KINDS`, operator -> kind); an operator missing from it
is ``other`` and keeps its name in ``ops``. Convolutions are also broken down by layer shape with their FLOPs
(2 per multiply-accumulate, from the profiler's own counter), so a throughput difference between layer widths
shows up as GFLOP/s. On CUDA the times are device (kernel) times; on the CPU they are the operators' self CPU
times. Profiling adds overhead, so use shares and differences, not the absolute sum, as a runtime.
"""

from __future__ import annotations

import copy
import statistics
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..base.inputs import num_threads

if TYPE_CHECKING:
    from torch.autograd.profiler_util import FunctionEventAvg

__all__ = ["KINDS", "OP_KINDS", "conv_label", "median_breakdown", "op_kind", "op_time_breakdown"]

#: Kinds in report order.
KINDS = ("conv", "elementwise", "reduction", "resample", "concat", "copy", "framework", "other")

_ELEMENTWISE = (
    "add",
    "add_",
    "sub",
    "sub_",
    "mul",
    "mul_",
    "div",
    "div_",
    "pow",
    "sqrt",
    "rsqrt",
    "neg",
    "abs",
    "relu",
    "relu_",
    "leaky_relu",
    "leaky_relu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "gelu",
    "silu",
    "hardtanh",
    "clamp",
    "clamp_",
    "clamp_min",
    "clamp_min_",
    "prelu",
    "_prelu_kernel",
    "threshold",
    "where",
    "exp",
    "log",
    "addcmul",
    "addcdiv",
    "lerp",
    "maximum",
    "minimum",
    "reciprocal",
    "elu",
    "softplus",
    "hardsigmoid",
    "hardswish",
    "fill_",
    "zero_",
    "add_relu",
    "rsub",
)
_REDUCTION = (
    "mean",
    "sum",
    "std",
    "var",
    "var_mean",
    "std_mean",
    "amax",
    "amin",
    "max",
    "min",
    "norm",
    "max_pool2d",
    "max_pool2d_with_indices",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "_adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "softmax",
    "_softmax",
    "mkldnn_max_pool2d",
    "mkldnn_adaptive_avg_pool2d",
)
_RESAMPLE = (
    "upsample_bilinear2d",
    "upsample_nearest2d",
    "upsample_bicubic2d",
    "_upsample_bilinear2d_aa",
    "_upsample_nearest_exact2d",
    "pixel_shuffle",
    "pixel_unshuffle",
    "grid_sampler_2d",
    "interpolate",
)
_CONCAT = ("cat", "_cat", "stack", "split", "split_with_sizes", "chunk")
_COPY = ("copy_", "contiguous", "clone", "to", "_to_copy", "_copy_from", "_copy_from_and_resize")
_FRAMEWORK = (
    "empty",
    "empty_strided",
    "empty_like",
    "zeros",
    "zeros_like",
    "ones_like",
    "resize_",
    "as_strided",
    "as_strided_",
    "view",
    "_unsafe_view",
    "reshape",
    "slice",
    "select",
    "expand",
    "permute",
    "t",
    "transpose",
    "unsqueeze",
    "squeeze",
    "detach",
    "alias",
    "lift_fresh",
    "_reshape_alias",
    "narrow",
    "set_",
    "result_type",
    "item",
    "_local_scalar_dense",
    "is_nonzero",
    "unbind",
    "flatten",
    "_nnpack_available",
    "_has_compatible_shallow_copy_type",
)
_CONV = (
    "conv2d",
    "convolution",
    "_convolution",
    "mkldnn_convolution",
    "cudnn_convolution",
    "_slow_conv2d_forward",
    "thnn_conv2d",
    "_nnpack_spatial_convolution",
    "slow_conv_dilated2d",
    "_conv_depthwise2d",
    "conv_depthwise2d",
    "cudnn_convolution_relu",
    "cudnn_convolution_add_relu",
    "mkldnn_convolution_pointwise",
    "miopen_convolution",
    "conv_transpose2d",
    "convolution_overrideable",
    "linear",
    "addmm",
    "mm",
    "bmm",
    "matmul",
)

#: ATen operator (profiler name) -> kind. One table: add a row to classify a new operator.
OP_KINDS: dict[str, str] = {
    **{f"aten::{n}": "elementwise" for n in _ELEMENTWISE},
    **{f"aten::{n}": "reduction" for n in _REDUCTION},
    **{f"aten::{n}": "resample" for n in _RESAMPLE},
    **{f"aten::{n}": "concat" for n in _CONCAT},
    **{f"aten::{n}": "copy" for n in _COPY},
    **{f"aten::{n}": "framework" for n in _FRAMEWORK},
    **{f"aten::{n}": "conv" for n in _CONV},
}


def op_kind(name: str) -> str:
    """The kind of profiler operator ``name`` (``other`` when it is not in :data:`OP_KINDS`)."""
    return OP_KINDS.get(name, "other")


def conv_label(conv: dict[str, Any]) -> str:
    """``"Cin->Cout kxk"`` for one row of ``op_time_breakdown(...)["convs"]``."""
    w = conv.get("weight") or []
    return f"{w[1]}->{w[0]} {w[2]}x{w[3]}" if len(w) == 4 else "?"


def _conv_rate(convs: list[dict[str, Any]]) -> float | None:
    """GFLOP/s over all convolution rows."""
    ms, gflops = sum(c["ms"] for c in convs), sum(c["gflops"] for c in convs)
    return gflops / (ms / 1e3) if ms > 0 and gflops > 0 else None


def _attr(evt: FunctionEventAvg, *names: str) -> float:
    for n in names:  # torch < 2.5 says "cuda", later versions "device"
        v = getattr(evt, n, None)
        if v is not None:
            return float(v)
    return 0.0


def op_time_breakdown(
    model: nn.Module,
    input_size: tuple[int, int],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    forwards: int = 3,
    threads: int | None = None,
    in_channels: int = 3,
) -> dict[str, Any]:
    """Profile ``forwards`` forward passes of a copy of ``model`` (after one unprofiled warm-up) on ``device``.

    Returns per forward, in ms: ``total_ms`` (sum of operator self times), ``kinds`` (kind -> ms),
    ``ops`` (operator -> ms and calls), and ``convs``: one row per convolution shape (input, weight) with its
    time, GFLOPs and GFLOP/s, plus ``conv_gflop_per_s`` over all convolutions.
    """
    from torch.profiler import ProfilerActivity, profile

    if forwards < 1:
        raise ValueError(f"forwards must be >= 1, got {forwards}")
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    h, w = input_size
    model = copy.deepcopy(model).to(device=dev, dtype=dtype).eval()  # the caller's model stays where it is
    x = torch.randn(1, in_channels, h, w, generator=torch.Generator().manual_seed(0)).to(
        device=dev, dtype=dtype
    )
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with num_threads(threads), torch.inference_mode():
        model(x)
        if cuda:
            torch.cuda.synchronize(dev)
        with profile(activities=activities, record_shapes=True, with_flops=True) as prof:
            for _ in range(forwards):
                model(x)
            if cuda:
                torch.cuda.synchronize(dev)

    def self_us(evt: FunctionEventAvg) -> float:
        if cuda:
            return _attr(evt, "self_device_time_total", "self_cuda_time_total")
        return _attr(evt, "self_cpu_time_total")

    def total_us(evt: FunctionEventAvg) -> float:
        if cuda:
            return _attr(evt, "device_time_total", "cuda_time_total")
        return _attr(evt, "cpu_time_total")

    ops: dict[str, dict[str, Any]] = {}
    kinds = dict.fromkeys(KINDS, 0.0)
    for evt in prof.key_averages():
        us = self_us(evt)
        if not evt.key.startswith("aten::") or (us <= 0 and evt.count == 0):
            continue
        kind = op_kind(evt.key)
        ms = us / 1e3 / forwards
        kinds[kind] += ms
        ops[evt.key] = {"kind": kind, "ms": ms, "calls": evt.count // forwards}

    by_shape: dict[tuple[tuple[int, ...], tuple[int, ...]], dict[str, Any]] = {}
    for evt in prof.key_averages(group_by_input_shape=True):
        if evt.key != "aten::conv2d":
            continue
        shapes = list(evt.input_shapes or [])
        key = (tuple(shapes[0]) if shapes else (), tuple(shapes[1]) if len(shapes) > 1 else ())
        row = by_shape.setdefault(
            key, {"input": list(key[0]), "weight": list(key[1]), "calls": 0, "ms": 0.0, "gflops": 0.0}
        )  # with and without bias: one row
        row["calls"] += evt.count // forwards
        row["ms"] += total_us(evt) / 1e3 / forwards
        row["gflops"] += float(evt.flops or 0) / 1e9 / forwards
    convs = sorted(by_shape.values(), key=lambda c: -c["ms"])
    for c in convs:
        c["gflop_per_s"] = c["gflops"] / (c["ms"] / 1e3) if c["ms"] > 0 else None
    return {
        "device": str(dev),
        "source": "torch.profiler self " + ("device (kernel)" if cuda else "CPU") + " time per ATen operator",
        "forwards": forwards,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "total_ms": sum(kinds.values()),
        "kinds": kinds,
        "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1]["ms"])),
        "convs": convs,
        "conv_gflop_per_s": _conv_rate(convs),
    }


def median_breakdown(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One breakdown from several of the same model (e.g. taken in interleaved passes): the median of each
    kind, operator and conv shape; ``total_ms`` is the sum of the kinds' medians."""
    if not parts:
        raise ValueError("no breakdowns to combine")

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    kinds = {k: med([p["kinds"].get(k, 0.0) for p in parts]) for k in KINDS}
    ops: dict[str, dict[str, Any]] = {}
    for name in {n for p in parts for n in p["ops"]}:
        first = next(p["ops"][name] for p in parts if name in p["ops"])
        ops[name] = {
            "kind": first["kind"],
            "calls": first["calls"],
            "ms": med([p["ops"].get(name, {}).get("ms", 0.0) for p in parts]),
        }
    convs = []
    keys = {(tuple(c["input"]), tuple(c["weight"])) for p in parts for c in p["convs"]}
    for key in keys:
        rows = [c for p in parts for c in p["convs"] if (tuple(c["input"]), tuple(c["weight"])) == key]
        ms, gflops = med([c["ms"] for c in rows]), rows[0]["gflops"]
        convs.append(
            {
                "input": list(key[0]),
                "weight": list(key[1]),
                "calls": rows[0]["calls"],
                "ms": ms,
                "gflops": gflops,
                "gflop_per_s": gflops / (ms / 1e3) if ms > 0 else None,
            }
        )
    convs.sort(key=lambda c: -c["ms"])
    return {
        **{k: parts[0][k] for k in ("device", "source", "threads") if k in parts[0]},
        "forwards": sum(p.get("forwards", 1) for p in parts),
        "passes": len(parts),
        "total_ms": sum(kinds.values()),
        "kinds": kinds,
        "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1]["ms"])),
        "convs": convs,
        "conv_gflop_per_s": _conv_rate(convs),
    }

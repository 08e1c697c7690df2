"""Roofline bound of a forward pass: ``max(FLOPs / peak FLOP/s, bytes moved / peak bandwidth)``.

- FLOPs: 2 x the MACs of ``effbench.profile(model, input_size, convention="full")``, else (a model it cannot
  profile) :class:`torch.utils.flop_counter.FlopCounterMode` (matmul and convolution FLOPs, 2 per
  multiply-accumulate); the source is recorded.
- Bytes moved (an estimate, a lower bound for an unfused eager run): the sum over every ATen operator executed of
  the bytes of its tensor inputs (weights included, each distinct tensor once per operator) plus its tensor outputs;
  view operators move nothing. Counted on the ``meta`` device, so no real memory or compute is needed.
- Peaks: calibrated on the device by a short microbenchmark, the best of a few runs of a large matmul and of a
  64-channel 3x3 convolution (compute), and of a large tensor copy (bandwidth: read + write bytes).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry as FLOP_RULES

__all__ = ["DEVICE_PEAKS", "calibrate_peaks", "count_traffic", "op_records", "op_roofline", "roofline"]

#: Published FP32 peaks (spec sheets) of devices that papers timed on, for :func:`op_roofline` without the device.
DEVICE_PEAKS: dict[str, dict[str, Any]] = {
    "gtx1080ti": {
        "name": "NVIDIA GeForce GTX 1080 Ti (3584 cores x 2 x 1.582 GHz; 352-bit GDDR5X at 11 Gbps)",
        "peak_flops_per_s": 11.34e12,
        "peak_bytes_per_s": 484e9,
    },
}


class _TrafficMode(TorchDispatchMode):
    """Records ``(aten op, FLOPs, bytes moved)`` for every non-view operator dispatched under it."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, float, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        if getattr(func, "is_view", False):
            return out
        seen: set[int] = set()
        moved = 0
        for t in tree_flatten((args, kwargs or {}))[0]:
            if isinstance(t, torch.Tensor) and id(t) not in seen:
                seen.add(id(t))
                moved += t.numel() * t.element_size()
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                moved += t.numel() * t.element_size()
        packet = func._overloadpacket
        # the formula filed by packet, or (torch 2.4, for a custom op) by overload
        rule = FLOP_RULES.get(packet) or FLOP_RULES.get(func)
        flops = rule(*args, **(kwargs or {}), out_val=out) if rule is not None else 0
        self.records.append((f"aten::{packet.__name__}", float(flops), moved))
        return out


def op_records(
    model: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype = torch.float32
) -> list[tuple[str, float, int]]:
    """``(aten op, FLOPs, bytes moved)`` of every operator of one forward, counted on ``meta``.

    FLOPs follow :mod:`torch.utils.flop_counter`'s rules (2 per multiply-accumulate; element-wise ops count 0).
    """
    meta = copy.deepcopy(model).to(device="meta", dtype=dtype)
    x = torch.empty(input_shape, device="meta", dtype=dtype)
    traffic = _TrafficMode()
    with torch.no_grad(), traffic:
        meta(x)
    return traffic.records


def count_traffic(
    model: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype = torch.float32, *, flops: bool = False
) -> dict[str, Any]:
    """Estimated bytes moved by one forward (and, with ``flops``, flop_counter's FLOPs), counted on ``meta``."""
    records = op_records(model, input_shape, dtype)
    out: dict[str, Any] = {"bytes_moved": sum(r[2] for r in records), "aten_ops": len(records)}
    if flops:
        out["flops"] = sum(r[1] for r in records)
    return out


def op_roofline(records: list[tuple[str, float, int]], peaks: dict[str, Any]) -> dict[str, Any]:
    """Per-operator roofline of an unfused (eager) forward: each op takes ``max(FLOPs / peak, bytes / bandwidth)``.

    ``peaks`` has ``peak_flops_per_s`` and ``peak_bytes_per_s`` (:func:`calibrate_peaks` or
    :data:`DEVICE_PEAKS`). Returns the summed bound ``bound_ms``, its ``compute_ms`` and ``memory_ms`` parts
    (ops limited by arithmetic / by traffic) and ``kinds_ms`` (per :data:`effbench.timing.breakdown.OP_KINDS`).
    """
    from .breakdown import op_kind

    flops_s, bytes_s = float(peaks["peak_flops_per_s"]), float(peaks["peak_bytes_per_s"])
    compute = memory = 0.0
    kinds: dict[str, float] = {}
    for name, flops, moved in records:
        t_c, t_m = flops / flops_s, moved / bytes_s
        if t_c >= t_m:
            compute += t_c
        else:
            memory += t_m
        kind = op_kind(name)
        kinds[kind] = kinds.get(kind, 0.0) + max(t_c, t_m) * 1e3
    return {
        "bound_ms": (compute + memory) * 1e3,
        "compute_ms": compute * 1e3,
        "memory_ms": memory * 1e3,
        "kinds_ms": kinds,
        "ops": len(records),
        "peak_flops_per_s": flops_s,
        "peak_bytes_per_s": bytes_s,
    }


def _best_ms(fn: Callable[[], Any], device: torch.device, runs: int = 5) -> float:
    fn()
    fn()
    best = float("inf")
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


@functools.lru_cache(maxsize=8)
def calibrate_peaks(device: str = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Measured peak FLOP/s (matmul and conv) and copy bandwidth (bytes/s) of ``device`` for ``dtype``."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    n = 4096 if cuda else 512
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    with torch.no_grad():
        mm_ms = _best_ms(lambda: torch.mm(a, b), dev)
        hw = 256 if cuda else 64
        x = torch.randn(1, 64, hw, hw, device=dev, dtype=dtype)
        w = torch.randn(64, 64, 3, 3, device=dev, dtype=dtype)
        conv_ms = _best_ms(lambda: torch.nn.functional.conv2d(x, w, padding=1), dev)
        numel = (256 if cuda else 16) * 2**20 // 4
        src = torch.empty(numel, device=dev, dtype=torch.float32).fill_(1.0)
        dst = torch.empty_like(src)
        copy_ms = _best_ms(lambda: dst.copy_(src), dev)
    mm = 2 * n**3 / (mm_ms * 1e-3)
    conv = 2 * 64 * 64 * 9 * hw * hw / (conv_ms * 1e-3)
    bw = 2 * numel * 4 / (copy_ms * 1e-3)
    return {
        "peak_flops_per_s": max(mm, conv),
        "matmul_flops_per_s": mm,
        "conv_flops_per_s": conv,
        "peak_bytes_per_s": bw,
        "calibration": f"best of 5: {n}x{n} matmul, 1x64x{hw}x{hw} 3x3 conv, {2 * numel * 4 >> 20} MiB copy",
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else None,
    }


def _profile_flops(model: nn.Module, size: tuple[int, int]) -> float | None:
    """2 x the ``full`` convention's MACs (real FLOPs), else its FLOPs when it counts no MAC; None when the model
    cannot be profiled or counts nothing."""
    from ..counting import profile

    try:
        prof = profile(model, size, convention="full", peak_memory=False)
    except Exception:
        return None
    if prof.macs > 0:
        return 2.0 * prof.macs
    return float(prof.flops) if prof.flops > 0 else None


def roofline(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    measured_ms: float | None = None,
) -> dict[str, Any]:
    """The roofline bound (ms) of one forward on ``device``, what limits it, and measured / bound."""
    flops = _profile_flops(model, (input_shape[-2], input_shape[-1]))
    source = "effbench.profile(convention='full'): 2 x macs"
    traffic = count_traffic(model, input_shape, dtype, flops=flops is None)
    if flops is None:
        flops, source = float(traffic["flops"]), "torch.utils.flop_counter"
    peaks = calibrate_peaks(str(device), dtype)
    t_compute = flops / peaks["peak_flops_per_s"]
    t_memory = traffic["bytes_moved"] / peaks["peak_bytes_per_s"]
    bound_ms = max(t_compute, t_memory) * 1e3
    out = {
        "flops": flops,
        "flops_source": source,
        "bytes_moved": traffic["bytes_moved"],
        "aten_ops": traffic["aten_ops"],
        "compute_ms": t_compute * 1e3,
        "memory_ms": t_memory * 1e3,
        "bound_ms": bound_ms,
        "limited_by": "compute" if t_compute >= t_memory else "memory",
        **{k: v for k, v in peaks.items() if v is not None},
    }
    if measured_ms is not None and bound_ms > 0:
        out["measured_over_bound"] = measured_ms / bound_ms
    return out

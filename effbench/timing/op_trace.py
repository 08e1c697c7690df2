"""The projection's trace of a model: one shapes-only forward (counting's replay: meta, then fake tensors, a real
CPU forward only for data-dependent models), every non-view ATen operator recorded with its kind, FLOPs, bytes
moved and the CUDA kernels eager PyTorch launches for it (:class:`ProjectionTrace`).
:mod:`effbench.timing.projection` turns a trace into a projected runtime."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.flop_counter import flop_registry as FLOP_RULES

from ..base.errors import ModelError, UsageError

if TYPE_CHECKING:
    from ..counting._records import OpCall

__all__ = [
    "TILE_IN",
    "TILE_OUT",
    "OpRecord",
    "ProjectionTrace",
    "record_trace",
    "record_trace_near",
    "tiled_flops",
]

_MATMUL = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "_scaled_dot_product_efficient_attention"}
_MATMUL |= {"_scaled_dot_product_flash_attention", "_scaled_dot_product_attention_math", "linear"}
_CONV = {"convolution", "_convolution", "conv2d", "cudnn_convolution", "mkldnn_convolution"}


@dataclass(frozen=True)
class OpRecord:
    """One ATen operator of the traced forward."""

    op: str  #: the ATen overload packet, e.g. ``convolution``
    kind: str  #: ``conv``, ``conv1x1``, ``grouped``, ``matmul`` or ``other``
    flops: float  #: 2 per multiply-accumulate (torch.utils.flop_counter), 0 for ops it does not count
    bytes: int  #: tensor inputs (each distinct tensor once) plus outputs
    kernels: int  #: CUDA kernels eager PyTorch launches for it (a convolution's bias add is one more)
    #: convolutions: (input channels per group, output channels, kernel height, kernel width, groups, stride)
    conv: tuple[int, ...] = ()


@dataclass(frozen=True)
class ProjectionTrace:
    """The operators of one forward at one input size."""

    input_size: tuple[int, int]
    dtype: str
    ops: tuple[OpRecord, ...]
    device: str  #: ``meta`` (shapes only) or ``cpu`` (the model needed real values)
    #: the size actually run when the model refuses ``input_size`` (:func:`record_trace_near`), and the pixel
    #: ratio input / traced its FLOPs and bytes are scaled by
    traced_size: tuple[int, int] | None = None
    pixel_scale: float = 1.0

    def totals(self) -> dict[str, float]:
        """FLOPs, bytes and kernels per kind, and overall; ``<kind>_tiled_flops``: convolution FLOPs with the
        channels rounded up to the GEMM tiles (:func:`tiled_flops`). FLOPs and bytes are scaled by
        :attr:`pixel_scale` (kernel counts do not depend on the size)."""
        out: dict[str, float] = {"flops": 0.0, "bytes": 0.0, "kernels": 0.0, "ops": float(len(self.ops))}
        for r in self.ops:
            out["flops"] += r.flops
            out["bytes"] += r.bytes
            out["kernels"] += r.kernels
            out[f"{r.kind}_flops"] = out.get(f"{r.kind}_flops", 0.0) + r.flops
            out[f"{r.kind}_bytes"] = out.get(f"{r.kind}_bytes", 0.0) + r.bytes
            if r.conv:
                key = f"{r.kind}_tiled_flops"
                out[key] = out.get(key, 0.0) + tiled_flops(r)
        if self.pixel_scale != 1.0:
            for k in out:
                if k.endswith(("flops", "bytes")):
                    out[k] *= self.pixel_scale
        return out


#: implicit-GEMM tile quantisation of a convolution: output channels (the GEMM's N) are computed in tiles of
#: TILE_OUT, input channels (its K, times the kernel area) in steps of TILE_IN; a 36-channel layer costs a
#: 64-channel layer's output tile. Chosen on the 2022 leave-one-out error (reports/projection/README.md).
TILE_OUT = 32
TILE_IN = 8


def tiled_flops(r: OpRecord) -> float:
    """A convolution's FLOPs with its channels rounded up to the GEMM tiles (:data:`TILE_OUT`, :data:`TILE_IN`)."""
    if not r.conv:
        return r.flops
    cin, cout = r.conv[0], r.conv[1]
    pad_out = math.ceil(cout / TILE_OUT) * TILE_OUT / cout
    pad_in = math.ceil(cin / TILE_IN) * TILE_IN / cin
    return r.flops * pad_out * pad_in


def _conv_kind(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, int]:
    weight = args[1]
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    groups = int(args[8]) if len(args) > 8 else int(kwargs.get("groups", 1))
    extra = 0 if bias is None else 1
    if groups > 1:
        return "grouped", 1 + extra
    if all(int(k) == 1 for k in weight.shape[2:]):
        return "conv1x1", 1 + extra
    return "conv", 1 + extra


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@functools.lru_cache(maxsize=4096)
def _is_view(overload: str) -> bool:
    namespace, name, *rest = overload.split(".")
    try:
        packet = getattr(getattr(torch.ops, namespace), name)
        return bool(getattr(getattr(packet, rest[0] if rest else "default"), "is_view", False))
    except (AttributeError, RuntimeError):
        return False


def _shapes(x: Any) -> Any:
    """Tensor metadata of a recorded op as ``torch.Size`` (what flop_counter's formulas take)."""
    from ..counting._trace import TensorMeta

    if isinstance(x, TensorMeta):
        return torch.Size(x.shape)
    if isinstance(x, (tuple, list)):
        return type(x)(_shapes(v) for v in x)
    if isinstance(x, dict):
        return {k: _shapes(v) for k, v in x.items()}
    return x


def _op_record(op: OpCall) -> OpRecord | None:
    from ..counting._trace import tensors_in

    if _is_view(op.overload):
        return None
    namespace, name = op.packet.split(".", 1)
    ins = tensors_in((op.args, op.kwargs))
    outs = tensors_in(op.output)
    moved = sum(t.nbytes for t in ins) + sum(t.nbytes for t in outs)
    flops = 0.0
    packet = getattr(getattr(torch.ops, namespace), name, None)
    overload = (op.overload.split(".")[2:] or ["default"])[0]
    # the formula filed by packet, or (torch 2.4, for a custom op) by overload
    rule = FLOP_RULES.get(packet) or FLOP_RULES.get(getattr(packet, overload, None))
    if rule is not None:
        try:
            flops = float(rule(*_shapes(op.args), **_shapes(op.kwargs), out_val=_shapes(op.output)))
        except Exception:  # a formula that wants more than shapes: the op's traffic still counts
            flops = 0.0
    kernels = 1
    conv: tuple[int, ...] = ()
    if name in _CONV:
        kind, kernels = _conv_kind(op.args, op.kwargs)
        w = op.args[1].shape
        groups = int(op.args[8]) if len(op.args) > 8 else int(op.kwargs.get("groups", 1))
        stride = op.args[3] if len(op.args) > 3 else op.kwargs.get("stride", (1,))
        conv = (int(w[1]), int(w[0]), *(int(k) for k in w[2:4]), groups, int(max(stride)))
    elif name in _MATMUL:
        kind = "matmul"
    else:
        kind = "other"
        if not outs or moved == 0:
            kernels = 0  # bookkeeping on sizes or scalars: no kernel
    return OpRecord(name, kind, flops, moved, kernels, conv)


def record_trace(model: nn.Module, size: tuple[int, int], dtype: str = "fp32") -> ProjectionTrace:
    """Every non-view ATen operator of one forward of ``model`` on a 1x3xHxW input (see :class:`OpRecord`).

    The forward is counting's shapes-only replay (:func:`effbench.counting._trace.record`: meta, then fake
    tensors, then a real CPU forward only for data-dependent models), which leaves the model as found.
    """
    from ..counting._trace import record

    if dtype not in _DTYPES:
        raise UsageError(f"dtype {dtype!r}: choose from {', '.join(_DTYPES)}")
    h, w = (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise UsageError(f"input size {h}x{w}: both sides must be positive")
    try:
        trace = record(model, (1, 3, h, w), _DTYPES[dtype])
    except ModelError:
        # a model that switches precision inside forward (x.half() against its own fp16 weights) runs with its
        # parameters' dtypes kept, as the harness runs it; its FLOPs still count at the protocol dtype's peak
        trace = record(model, (1, 3, h, w), _DTYPES[dtype], keep_dtypes=True)
    ops = tuple(r for r in map(_op_record, trace.ops) if r is not None)
    return ProjectionTrace((h, w), dtype, ops, trace.engine)


def record_trace_near(model: nn.Module, size: tuple[int, int], dtype: str = "fp32") -> ProjectionTrace:
    """:func:`record_trace` at ``size``; a model that refuses it (window attention that needs sides divisible by
    its window, as NTIRE 2024's CRAFT does at W=510) is traced at the nearest size with both sides rounded up to a
    multiple of 8, 16, 32 or 64, its FLOPs and bytes scaled to ``size``'s pixels (a convolutional network's cost
    is linear in pixels). The first failure is raised when every size fails."""
    h, w = int(size[0]), int(size[1])
    try:
        return record_trace(model, (h, w), dtype)
    except ModelError as first:
        tried = {(h, w)}
        for m in (8, 16, 32, 64):
            near = (-(-h // m) * m, -(-w // m) * m)
            if near in tried:
                continue
            tried.add(near)
            try:
                t = record_trace(model, near, dtype)
            except ModelError:
                continue
            scale = (h * w) / (near[0] * near[1])
            return dataclasses.replace(t, input_size=(h, w), traced_size=near, pixel_scale=scale)
        raise first

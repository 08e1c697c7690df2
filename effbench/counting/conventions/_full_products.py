"""The ``full`` convention's rules for convolutions, matrix products, fused attention, FFTs and torchvision's
deformable convolution: the ops that count MACs (see :mod:`effbench.counting.conventions.full` for the table of
costs)."""

from __future__ import annotations

import math

import torch

from .._records import OpCall, TensorMeta
from . import ZERO, Cost, arg, out
from ._rules import RuleTable

__all__ = ["PRODUCTS"]

PRODUCTS = RuleTable()


# --- convolution and matrix products ------------------------------------------------------------------------------


@PRODUCTS.op(
    "aten.convolution", "aten._convolution", "aten.convolution_overrideable", "aten.mkldnn_convolution"
)
def _conv_cost(op: OpCall) -> Cost:
    x, w, b = arg(op, 0), arg(op, 1), arg(op, 2)
    o = out(op)
    per_element = math.prod(w.shape[1:])  # (C_in/groups) * prod(kernel) or (C_out/groups) * prod(kernel)
    transposed = bool(arg(op, 6))
    macs = (x.numel if transposed else o.numel) * per_element
    bias = o.numel if b is not None else 0
    return Cost(macs=macs, flops=2 * macs + bias, activations=o.numel, convs=1)


def _matmul_cost(macs: int, o_numel: int, added: bool) -> Cost:
    return Cost(macs=macs, flops=2 * macs + (o_numel if added else 0), activations=o_numel)


@PRODUCTS.op("aten.mm")
def _mm(op: OpCall) -> Cost:
    a, b = arg(op, 0), arg(op, 1)
    return _matmul_cost(a.shape[0] * a.shape[1] * b.shape[1], out(op).numel, False)


@PRODUCTS.op("aten.addmm")
def _addmm(op: OpCall) -> Cost:
    a, b = arg(op, 1), arg(op, 2)
    return _matmul_cost(a.shape[0] * a.shape[1] * b.shape[1], out(op).numel, True)


@PRODUCTS.op("aten.bmm")
def _bmm(op: OpCall) -> Cost:
    a, b = arg(op, 0), arg(op, 1)
    return _matmul_cost(a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], out(op).numel, False)


@PRODUCTS.op("aten.baddbmm")
def _baddbmm(op: OpCall) -> Cost:
    a, b = arg(op, 1), arg(op, 2)
    return _matmul_cost(a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], out(op).numel, True)


@PRODUCTS.op("aten.mv", "aten.dot", "aten.vdot")
def _mv(op: OpCall) -> Cost:
    return _matmul_cost(arg(op, 0).numel, out(op).numel, False)


@PRODUCTS.op("aten.addmv")
def _addmv(op: OpCall) -> Cost:
    return _matmul_cost(arg(op, 1).numel, out(op).numel, True)


# --- FFTs ----------------------------------------------------------------------------------------------------------

# A complex transform of N points costs 5 N log2 N FLOPs (the radix-2 Cooley-Tukey count that FFTW and benchFFT
# quote); a real-input (r2c) or real-output (c2r) transform of N real points half of it, 2.5 N log2 N. N is the
# product of the transformed sizes (a 2-D transform of H x W points: 5 HW log2(HW), its row and column passes
# together), times the number of transforms in the batch. A scaled transform (``norm`` "ortho", or "forward" /
# "backward" on the side that divides) adds 1 FLOP per real output value (2 per complex one).


def _fft_cost(op: OpCall, x: TensorMeta, per_point: float) -> Cost:
    rank = len(x.shape)
    dims = arg(op, 1)
    dims = dims if isinstance(dims, (list, tuple)) else [dims]
    points = math.prod(x.shape[d + rank if d < 0 else d] for d in dims)
    if points < 1:
        return ZERO
    transforms = x.numel // points
    flops = round(per_point * points * math.log2(points)) * transforms if points > 1 else 0
    if arg(op, 2):  # normalization: 0 none, 1 by 1/sqrt(n), 2 by 1/n
        o = out(op)
        flops += o.numel * (2 if o.dtype.is_complex else 1)
    return Cost(flops=flops)


@PRODUCTS.op("aten._fft_c2c")
def _fft_c2c(op: OpCall) -> Cost:
    return _fft_cost(op, arg(op, 0), 5.0)


@PRODUCTS.op("aten._fft_r2c")
def _fft_r2c(op: OpCall) -> Cost:
    return _fft_cost(op, arg(op, 0), 2.5)


@PRODUCTS.op("aten._fft_c2r")
def _fft_c2r(op: OpCall) -> Cost:
    return _fft_cost(op, out(op), 2.5)  # N: the real output's points


# --- attention -----------------------------------------------------------------------------------------------------


@PRODUCTS.op(
    "aten._scaled_dot_product_flash_attention_for_cpu",
    "aten._scaled_dot_product_flash_attention",
    "aten._scaled_dot_product_efficient_attention",
    "aten._scaled_dot_product_cudnn_attention",
    "aten._scaled_dot_product_fused_attention_overrideable",
)
def _fused_attention(op: OpCall) -> Cost:
    """A fused attention kernel (a real forward on a CPU or GPU) counts what its math path, the decomposition a
    meta trace records, counts: q and k each scaled by sqrt(scale) (1 per element), QK^T and AV (2 per MAC), a
    mask added (1 per score; a boolean or causal mask first made a bias, 1 per mask element), the softmax (5
    per score)."""
    q, k, v = arg(op, 0), arg(op, 1), arg(op, 2)
    heads = math.prod(q.shape[:-2])
    length, e, s, ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    scores = heads * length * s
    macs = scores * (e + ev)
    bias = op.kwargs.get("attn_mask", op.kwargs.get("attn_bias"))
    if bias is None and op.packet.endswith(("efficient_attention", "cudnn_attention")):
        bias = arg(op, 3)  # (query, key, value, attn_bias, ...)
    causal = bool(op.kwargs.get("is_causal")) or any(a is True for a in op.args[3:7])
    flops = q.numel + k.numel + 2 * macs + 5 * scores
    if causal:  # a boolean L x S mask turned into an additive bias (a where), then added
        flops += length * s + scores
    elif isinstance(bias, TensorMeta):
        flops += scores + (bias.numel if bias.dtype == torch.bool else 0)
    return Cost(macs=macs, flops=flops, activations=scores + heads * length * ev)


@PRODUCTS.op("torchvision.deform_conv2d")
def _deform_conv(op: OpCall) -> Cost:
    """torchvision's deformable convolution (``input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
    dil_h, dil_w, n_weight_grps, n_offset_grps, use_mask``): the convolution's multiply-adds (2 FLOPs each, + 1
    per output element for the bias), and each input value it reads sampled bilinearly at its offset (7 FLOPs;
    + 1 when a modulation mask scales it)."""
    x, w = arg(op, 0), arg(op, 1)
    o = out(op)
    macs = o.numel * math.prod(w.shape[1:])
    sampled = o.shape[0] * math.prod(o.shape[2:]) * x.shape[1] * math.prod(w.shape[2:])
    bias = arg(op, 4)
    flops = 2 * macs + (o.numel if isinstance(bias, TensorMeta) and bias.numel else 0)
    flops += (8 if arg(op, 13) else 7) * sampled
    return Cost(macs=macs, flops=flops, activations=o.numel, convs=1)

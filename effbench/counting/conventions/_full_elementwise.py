"""The ``full`` convention's rules for elementwise ops, reductions, pooling, norms, interpolation, arithmetic on
real and complex values, and sorting and selection (see :mod:`effbench.counting.conventions.full` for the table
of costs)."""

from __future__ import annotations

import math

from .._records import OpCall, TensorMeta, tensors_in
from . import Cost, Rule, arg, out
from ._rules import RuleTable

__all__ = ["ELEMENTWISE"]

ELEMENTWISE = RuleTable()


# --- elementwise ---------------------------------------------------------------------------------------------------


def _per_output(k: int) -> Rule:
    def rule(op: OpCall) -> Cost:
        return Cost(flops=k * out(op).numel)

    rule.__doc__ = f"{k} FLOP(s) per output element"
    return rule


ELEMENTWISE.op(
    "aten.floor_divide",
    "aten.reciprocal",
    "aten.sqrt",
    "aten.rsqrt",
    "aten.exp",
    "aten.exp2",
    "aten.expm1",
    "aten.log",
    "aten.log2",
    "aten.log10",
    "aten.log1p",
    "aten.pow",
    "aten.square",
    "aten.maximum",
    "aten.minimum",
    "aten.fmax",
    "aten.fmin",
    "aten.clamp",
    "aten.clamp_min",
    "aten.clamp_max",
    "aten.clip",
    "aten.relu",
    "aten.threshold",
    "aten.sign",
    "aten.sgn",
    "aten.floor",
    "aten.ceil",
    "aten.round",
    "aten.trunc",
    "aten.frac",
    "aten.fmod",
    "aten.remainder",
    "aten.eq",
    "aten.ne",
    "aten.lt",
    "aten.le",
    "aten.gt",
    "aten.ge",
    "aten.where",
    "aten.logical_not",
    "aten.logical_and",
    "aten.logical_or",
    "aten.sin",
    "aten.cos",
    "aten.atan2",
    "aten.erf",
    "aten.hypot",
    "aten.xlogy",
    "aten.sigmoid_backward",
    "aten.relu6",
    "aten.bitwise_and",
    "aten.bitwise_or",
    "aten.bitwise_not",
    "aten.isnan",
    "aten.nan_to_num",
)(_per_output(1))
ELEMENTWISE.op(
    "aten.leaky_relu", "aten.prelu", "aten._prelu_kernel", "aten.hardtanh", "aten.addcmul", "aten.addcdiv"
)(_per_output(2))
ELEMENTWISE.op("aten.hardsigmoid", "aten.softplus", "aten.elu", "aten.celu", "aten.selu", "aten.lerp")(
    _per_output(3)
)
ELEMENTWISE.op("aten.sigmoid", "aten.hardswish", "aten.log_sigmoid_forward")(_per_output(4))
ELEMENTWISE.op("aten.silu", "aten.tanh")(_per_output(5))
ELEMENTWISE.op("aten.gelu", "aten.mish")(_per_output(8))
ELEMENTWISE.op(
    "aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax", "aten._safe_softmax"
)(_per_output(5))
ELEMENTWISE.op(
    "aten.tan",
    "aten.asin",
    "aten.acos",
    "aten.atan",
    "aten.sinh",
    "aten.cosh",
    "aten.asinh",
    "aten.acosh",
    "aten.atanh",
    "aten.erfc",
    "aten.erfinv",
    "aten.logit",
    "aten.sinc",
    "aten.angle",
    "aten.isinf",
    "aten.signbit",
    "aten.logical_xor",
    "aten.bitwise_xor",
    "aten.hardshrink",
    "aten.softshrink",
)(_per_output(1))


# --- reductions, pooling, norms, interpolation -------------------------------------------------------------------


def _per_input(k: int, per_out: int = 0) -> Rule:
    def rule(op: OpCall) -> Cost:
        x = tensors_in(op.args)[0]
        return Cost(flops=k * x.numel + per_out * out(op).numel)

    return rule


ELEMENTWISE.op(
    "aten.sum",
    "aten.amax",
    "aten.amin",
    "aten.max",
    "aten.min",
    "aten.prod",
    "aten.argmax",
    "aten.argmin",
    "aten.cumsum",
    "aten.cumprod",
    "aten.any",
    "aten.all",
    "aten.logsumexp",
    "aten.adaptive_max_pool2d",
    "aten.adaptive_max_pool1d",
    "aten.adaptive_max_pool3d",
)(_per_input(1))
ELEMENTWISE.op(
    "aten.mean", "aten._adaptive_avg_pool2d", "aten._adaptive_avg_pool3d", "aten.adaptive_avg_pool1d"
)(_per_input(1, 1))
ELEMENTWISE.op("aten.var", "aten.std", "aten.var_mean", "aten.std_mean")(_per_input(3, 1))
ELEMENTWISE.op("aten.linalg_vector_norm", "aten.norm")(_per_input(2))


@ELEMENTWISE.op(
    "aten.max_pool2d_with_indices",
    "aten.max_pool2d",
    "aten.max_pool3d_with_indices",
    "aten.max_pool1d",
    "aten.avg_pool2d",
    "aten.avg_pool1d",
    "aten.avg_pool3d",
    "aten.max_pool1d_with_indices",
)
def _pool(op: OpCall) -> Cost:
    kernel = arg(op, 1)
    k = math.prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel) ** (len(out(op).shape) - 2)
    return Cost(flops=k * out(op).numel)


@ELEMENTWISE.op(
    "aten._native_batch_norm_legit_no_training",
    "aten.native_batch_norm",
    "aten._native_batch_norm_legit",
    "aten.batch_norm",
    "aten._batch_norm_with_update",
    "aten._batch_norm_no_update",
)
def _batch_norm(op: OpCall) -> Cost:
    n = tensors_in(op.args)[0].numel
    training = op.packet in ("aten._native_batch_norm_legit", "aten._batch_norm_with_update") or (
        op.packet == "aten.native_batch_norm" and bool(arg(op, 5))
    )
    return Cost(flops=(7 if training else 2) * n)


@ELEMENTWISE.op("aten.native_layer_norm", "aten.native_group_norm", "aten.layer_norm", "aten.group_norm")
def _norm(op: OpCall) -> Cost:
    n = tensors_in(op.args)[0].numel
    weight = arg(op, 2) if op.packet.endswith("layer_norm") else arg(op, 1)
    return Cost(flops=(7 if weight is not None else 5) * n)


ELEMENTWISE.op("aten.upsample_linear1d")(_per_output(3))
ELEMENTWISE.op("aten.upsample_bilinear2d", "aten._upsample_bilinear2d_aa")(_per_output(7))


# grid_sample, per output element (one channel of one sampled point): bilinear 7 (4 mul, 3 add), nearest 0 (a
# gather), bicubic 31 (as upsample_bicubic2d); per sampled point (shared by the channels): 4 to map the grid's
# two coordinates to pixels (a mul and an add each), plus the interpolation weights -- bilinear 8 (2
# fractions, 2 complements, 4 products), nearest 2 (rounding), bicubic 2 fractions and 4 cubic coefficients of
# 6 FLOPs per axis (50). Padding modes (clamping, reflection) are not counted.
_GRID_PER_VALUE = {0: 7, 1: 0, 2: 31}
_GRID_PER_POINT = {0: 4 + 8, 1: 4 + 2, 2: 4 + 2 + 2 * 4 * 6}


@ELEMENTWISE.op("aten.grid_sampler_2d", "aten.grid_sampler")
def _grid_sample(op: OpCall) -> Cost:
    o, grid = out(op), arg(op, 1)
    mode = arg(op, 2) if isinstance(arg(op, 2), int) else 0
    points = math.prod(grid.shape[:-1])
    return Cost(flops=_GRID_PER_VALUE.get(mode, 7) * o.numel + _GRID_PER_POINT.get(mode, 12) * points)


ELEMENTWISE.op("aten.upsample_trilinear3d")(_per_output(15))
ELEMENTWISE.op("aten.upsample_bicubic2d", "aten._upsample_bicubic2d_aa")(_per_output(31))


# --- arithmetic on real and complex values -------------------------------------------------------------------------

# FLOPs per output element with two complex operands: add/sub 2, mul 6 (4 mul, 2 add), div 11 (6 mul, 3 add,
# 2 div); with one real operand: add/sub 1 (the real part only), mul 2, complex / real 2 (real / complex is a
# complex division). Real operands: 1. neg of a complex value 2, abs 4 (2 mul, 1 add, 1 sqrt).
_COMPLEX_BOTH = {"add": 2, "sub": 2, "rsub": 2, "mul": 6, "div": 11, "true_divide": 11}
_COMPLEX_ONE = {"add": 1, "sub": 1, "rsub": 1, "mul": 2, "div": 2, "true_divide": 2}


def _complex(x: object) -> bool:
    return isinstance(x, complex) or (isinstance(x, TensorMeta) and x.dtype.is_complex)


@ELEMENTWISE.op("aten.add", "aten.sub", "aten.rsub", "aten.mul", "aten.div", "aten.true_divide")
def _arithmetic(op: OpCall) -> Cost:
    n = out(op).numel
    a, b = arg(op, 0), arg(op, 1)
    if not (_complex(a) or _complex(b)):
        return Cost(flops=n)
    name = op.packet.split(".", 1)[1].rstrip("_")
    if (_complex(a) and _complex(b)) or (name in ("div", "true_divide") and _complex(b)):
        return Cost(flops=_COMPLEX_BOTH[name] * n)
    return Cost(flops=_COMPLEX_ONE[name] * n)


@ELEMENTWISE.op("aten.neg", "aten.abs")
def _neg_abs(op: OpCall) -> Cost:
    n = out(op).numel
    if _complex(arg(op, 0)):
        return Cost(flops=(2 if op.packet.startswith("aten.neg") else 4) * n)
    return Cost(flops=n)


ELEMENTWISE.zero(
    "aten.complex",
    "aten.polar",
    "aten.real",
    "aten.imag",
    "aten.conj",
    "aten._conj",
    "aten.conj_physical",
    "aten.resolve_conj",
    "aten.resolve_neg",
    "aten._neg_view",
    # random fills (counted 0, as rand/randn/normal/uniform above)
    "aten.exponential",
    "aten.cauchy",
    "aten.geometric",
    "aten.log_normal",
    "aten.random",
    "aten.randint",
    "aten.randint_like",
    "aten.randperm",
    "aten.multinomial",
    "aten.poisson",
    "aten.tril",
    "aten.triu",
    "aten.masked_scatter",
    "aten.index_copy",
    "aten.take",
    "aten.take_along_dim",
    "aten.nonzero",
    "aten.masked_select",
    "aten.eye",
    "aten.one_hot",
    "aten.slice_scatter",
    "aten.select_scatter",
    "aten.diagonal_scatter",
    "aten.as_strided_scatter",
    "aten.unfold_copy",
    "aten.alias_copy",
    "aten.view_copy",
    "aten.permute_copy",
    "aten.expand_copy",
    "aten.t_copy",
    "aten.transpose_copy",
    "aten.squeeze_copy",
    "aten.unsqueeze_copy",
    "aten.slice_copy",
    "aten.select_copy",
    "aten.split_copy",
    "aten.split_with_sizes_copy",
    "aten.unbind_copy",
    "aten.detach_copy",
    "aten.fill_diagonal",
)


# --- sorting and selection -----------------------------------------------------------------------------------------


@ELEMENTWISE.op("aten.sort", "aten.argsort")
def _sort(op: OpCall) -> Cost:
    """n ceil(log2 m) comparisons: n input elements sorted along a dimension of m."""
    x = arg(op, 0)
    dim = op.kwargs.get("dim", -1)
    for a in op.args[1:3]:
        if isinstance(a, int) and not isinstance(a, bool):
            dim = a
            break
    m = x.shape[dim] if x.shape else 1
    return Cost(flops=x.numel * math.ceil(math.log2(m)) if m > 1 else 0)


@ELEMENTWISE.op("aten.topk")
def _topk(op: OpCall) -> Cost:
    """n max(1, ceil(log2 k)) comparisons (a heap of the k best): n input elements, k kept."""
    x, k = arg(op, 0), int(arg(op, 1))
    return Cost(flops=x.numel * max(1, math.ceil(math.log2(k))) if k > 1 else x.numel)


ELEMENTWISE.op("aten.kthvalue", "aten.median", "aten.nanmedian", "aten.mode", "aten.nansum")(_per_input(1))
ELEMENTWISE.op("aten.aminmax")(_per_input(2))


@ELEMENTWISE.op("aten.scatter_add", "aten.index_add", "aten.scatter_reduce")
def _scatter_add(op: OpCall) -> Cost:
    """1 per source element added into the output (``self, dim, index, source``)."""
    src = arg(op, 3)
    return Cost(flops=src.numel if isinstance(src, TensorMeta) else out(op).numel)


ELEMENTWISE.op("aten.logcumsumexp", "aten.cummax", "aten.cummin")(_per_input(3))

"""Convention ``full`` (the default): every aten op that does arithmetic is counted, functional calls included.

MACs count multiply-accumulates of convolutions and matrix products only. FLOPs count everything, with these
documented per-element costs (n = output elements unless stated):

==========================================  ==========================================================
op                                          FLOPs
==========================================  ==========================================================
convolution (any, functional included)      2 x MACs (+ n for the bias)
mm / bmm / addmm / baddbmm / mv / dot       2 x MACs (+ n for the added term)
add sub mul div neg abs pow sqrt exp ...    1 per output element (comparisons, clamp, relu, where too)
leaky_relu, prelu, hardtanh, addcmul/div    2
hardsigmoid, softplus, elu, lerp            3
sigmoid, hardswish                          4
silu, tanh                                  5
gelu, mish                                  8
softmax / log_softmax                       5 per element (max, subtract, exp, sum, divide)
sum / amax / amin / prod / argmax / cumsum  1 per *input* element
mean                                        1 per input element + 1 per output element
var / std                                   3 per input element + 1 per output element
vector norm                                 2 per input element
max_pool / avg_pool                         prod(kernel) per output element
adaptive_avg_pool                           1 per input element + 1 per output element
adaptive_max_pool                           1 per input element
batch_norm (eval / train)                   2 / 7 per element
layer_norm / group_norm                     5 per element (+2 with affine)
upsample nearest                            0 (a gather; its bytes are known)
upsample (bi)linear / bicubic / trilinear   3 (linear), 7 (bilinear), 31 (bicubic), 15 (trilinear)
grid_sampler_2d                             7 per output element
views, reshapes, cat, stack, pad, pixel     0 (data movement; the output bytes are reported)
shuffle, copies, slicing, indexing, fills
==========================================  ==========================================================

An op that is in neither table is listed in ``unknown_ops`` (and counted 0), never silently dropped.
Activations: output elements of every convolution and matrix product. #conv: every convolution op.
"""

from __future__ import annotations

import math

from .._trace import OpCall, tensors_in
from . import ZERO, Convention, Cost, arg, out, register_convention


class Full(Convention):
    name = "full"
    description = "every arithmetic aten op counted, functional calls included (FLOPs = 2 x MACs + the rest)"
    order = 0

    def zero(self, *packets: str) -> None:
        """Declare ops that move data but do no arithmetic (counted 0 FLOPs, bytes reported)."""
        self.op(*packets)(_data_movement)


def _data_movement(op: OpCall) -> Cost:
    return ZERO


FULL = register_convention(Full())

FULL.zero(
    # views and reshapes
    "aten.view",
    "aten._unsafe_view",
    "aten.reshape",
    "aten.as_strided",
    "aten.alias",
    "aten.expand",
    "aten.expand_as",
    "aten.permute",
    "aten.transpose",
    "aten.t",
    "aten.unsqueeze",
    "aten.squeeze",
    "aten.flatten",
    "aten.unflatten",
    "aten.view_as",
    "aten.unbind",
    "aten.split",
    "aten.split_with_sizes",
    "aten.chunk",
    "aten.slice",
    "aten.select",
    "aten.narrow",
    "aten.detach",
    "aten.lift_fresh",
    "aten.view_as_real",
    "aten.view_as_complex",
    "aten.unfold",
    "aten.movedim",
    "aten.diagonal",
    # data movement and creation
    "aten.cat",
    "aten.stack",
    "aten.clone",
    "aten.copy",
    "aten._to_copy",
    "aten.contiguous",
    "aten.to",
    "aten.pixel_shuffle",
    "aten.pixel_unshuffle",
    "aten.channel_shuffle",
    "aten.native_channel_shuffle",
    "aten.constant_pad_nd",
    "aten.pad",
    "aten.reflection_pad1d",
    "aten.reflection_pad2d",
    "aten.reflection_pad3d",
    "aten.replication_pad1d",
    "aten.replication_pad2d",
    "aten.replication_pad3d",
    "aten.roll",
    "aten.flip",
    "aten.repeat",
    "aten.repeat_interleave",
    "aten.tile",
    "aten.index",
    "aten.index_select",
    "aten.gather",
    "aten.scatter",
    "aten.index_put",
    "aten.masked_fill",
    "aten.im2col",
    "aten.col2im",
    "aten.upsample_nearest1d",
    "aten.upsample_nearest2d",
    "aten.upsample_nearest3d",
    "aten._upsample_nearest_exact1d",
    "aten._upsample_nearest_exact2d",
    "aten._upsample_nearest_exact3d",
    "aten.empty",
    "aten.empty_like",
    "aten.empty_strided",
    "aten.new_empty",
    "aten.new_empty_strided",
    "aten.zeros",
    "aten.zeros_like",
    "aten.new_zeros",
    "aten.ones",
    "aten.ones_like",
    "aten.new_ones",
    "aten.full",
    "aten.full_like",
    "aten.new_full",
    "aten.fill",
    "aten.zero",
    "aten.arange",
    "aten.linspace",
    "aten.scalar_tensor",
    "aten.rand",
    "aten.randn",
    "aten.rand_like",
    "aten.randn_like",
    "aten.bernoulli",
    "aten.normal",
    "aten.uniform",
    "aten.dropout",
    "aten.native_dropout",
    "aten.set_",
    "aten.resize",
    "aten._local_scalar_dense",
    "aten.item",
    "aten.sym_size",
    "aten.sym_stride",
    "aten.sym_numel",
    "aten.sym_storage_offset",
    "aten.is_same_size",
    "aten.is_nonzero",
    "aten.equal",
    "prim.device",
    "prim.layout",
    "aten.lift",
    "aten._has_compatible_shallow_copy_type",
)


# --- convolution and matrix products ------------------------------------------------------------------------------


@FULL.op("aten.convolution", "aten._convolution", "aten.convolution_overrideable", "aten.mkldnn_convolution")
def _conv(op: OpCall) -> Cost:
    x, w, b = arg(op, 0), arg(op, 1), arg(op, 2)
    o = out(op)
    per_element = math.prod(w.shape[1:])  # (C_in/groups) * prod(kernel) or (C_out/groups) * prod(kernel)
    transposed = bool(arg(op, 6))
    macs = (x.numel if transposed else o.numel) * per_element
    bias = o.numel if b is not None else 0
    return Cost(macs=macs, flops=2 * macs + bias, activations=o.numel, convs=1)


def _matmul_cost(macs: int, o_numel: int, added: bool) -> Cost:
    return Cost(macs=macs, flops=2 * macs + (o_numel if added else 0), activations=o_numel)


@FULL.op("aten.mm")
def _mm(op: OpCall) -> Cost:
    a, b = arg(op, 0), arg(op, 1)
    return _matmul_cost(a.shape[0] * a.shape[1] * b.shape[1], out(op).numel, False)


@FULL.op("aten.addmm")
def _addmm(op: OpCall) -> Cost:
    a, b = arg(op, 1), arg(op, 2)
    return _matmul_cost(a.shape[0] * a.shape[1] * b.shape[1], out(op).numel, True)


@FULL.op("aten.bmm")
def _bmm(op: OpCall) -> Cost:
    a, b = arg(op, 0), arg(op, 1)
    return _matmul_cost(a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], out(op).numel, False)


@FULL.op("aten.baddbmm")
def _baddbmm(op: OpCall) -> Cost:
    a, b = arg(op, 1), arg(op, 2)
    return _matmul_cost(a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], out(op).numel, True)


@FULL.op("aten.mv", "aten.dot", "aten.vdot")
def _mv(op: OpCall) -> Cost:
    return _matmul_cost(arg(op, 0).numel, out(op).numel, False)


@FULL.op("aten.addmv")
def _addmv(op: OpCall) -> Cost:
    return _matmul_cost(arg(op, 1).numel, out(op).numel, True)


# --- elementwise ---------------------------------------------------------------------------------------------------


def _per_output(k: int):
    def rule(op: OpCall) -> Cost:
        return Cost(flops=k * out(op).numel)

    rule.__doc__ = f"{k} FLOP(s) per output element"
    return rule


FULL.op(
    "aten.add",
    "aten.sub",
    "aten.rsub",
    "aten.mul",
    "aten.div",
    "aten.true_divide",
    "aten.floor_divide",
    "aten.neg",
    "aten.abs",
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
FULL.op(
    "aten.leaky_relu", "aten.prelu", "aten._prelu_kernel", "aten.hardtanh", "aten.addcmul", "aten.addcdiv"
)(_per_output(2))
FULL.op("aten.hardsigmoid", "aten.softplus", "aten.elu", "aten.celu", "aten.selu", "aten.lerp")(
    _per_output(3)
)
FULL.op("aten.sigmoid", "aten.hardswish", "aten.log_sigmoid_forward")(_per_output(4))
FULL.op("aten.silu", "aten.tanh")(_per_output(5))
FULL.op("aten.gelu", "aten.mish")(_per_output(8))
FULL.op("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax")(_per_output(5))


# --- reductions, pooling, norms, interpolation -------------------------------------------------------------------


def _per_input(k: int, per_out: int = 0):
    def rule(op: OpCall) -> Cost:
        x = tensors_in(op.args)[0]
        return Cost(flops=k * x.numel + per_out * out(op).numel)

    return rule


FULL.op(
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
FULL.op("aten.mean", "aten._adaptive_avg_pool2d", "aten._adaptive_avg_pool3d", "aten.adaptive_avg_pool1d")(
    _per_input(1, 1)
)
FULL.op("aten.var", "aten.std", "aten.var_mean", "aten.std_mean")(_per_input(3, 1))
FULL.op("aten.linalg_vector_norm", "aten.norm")(_per_input(2))


@FULL.op(
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


@FULL.op(
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


@FULL.op("aten.native_layer_norm", "aten.native_group_norm", "aten.layer_norm", "aten.group_norm")
def _norm(op: OpCall) -> Cost:
    n = tensors_in(op.args)[0].numel
    weight = arg(op, 2) if op.packet.endswith("layer_norm") else arg(op, 1)
    return Cost(flops=(7 if weight is not None else 5) * n)


FULL.op("aten.upsample_linear1d")(_per_output(3))
FULL.op(
    "aten.upsample_bilinear2d", "aten._upsample_bilinear2d_aa", "aten.grid_sampler_2d", "aten.grid_sampler"
)(_per_output(7))
FULL.op("aten.upsample_trilinear3d")(_per_output(15))
FULL.op("aten.upsample_bicubic2d", "aten._upsample_bicubic2d_aa")(_per_output(31))

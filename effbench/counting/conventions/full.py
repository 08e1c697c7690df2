"""Convention ``full`` (the default): every aten op that does arithmetic is counted, functional calls included.

MACs count multiply-accumulates of convolutions and matrix products only. FLOPs count everything, with these
documented per-element costs (n = output elements unless stated):

==========================================  ==========================================================
op                                          FLOPs
==========================================  ==========================================================
convolution (any, functional included)      2 x MACs (+ n for the bias)
mm / bmm / addmm / baddbmm / mv / dot       2 x MACs (+ n for the added term)
add sub mul div neg abs pow sqrt exp ...    1 per output element (comparisons, clamp, relu, where too)
complex add/sub, mul, div, abs              2, 6, 11, 4 (one real operand: add/sub 1, mul 2)
leaky_relu, prelu, hardtanh, addcmul/div    2
hardsigmoid, softplus, elu, lerp            3
sigmoid, hardswish                          4
silu, tanh                                  5
gelu, mish                                  8
softmax / log_softmax / _safe_softmax       5 per element (max, subtract, exp, sum, divide)
fused attention kernels (SDPA on CPU/GPU)   as the math path: q, k scaled (1 per element), QK^T and AV
                                            (2 x MACs), mask added (1 per score; bool/causal mask
                                            made a bias: + 1 per mask element), softmax (5 per score)
FFT: _fft_c2c / _fft_r2c, _fft_c2r          5 N log2 N / 2.5 N log2 N per transform of N points
                                            (+ 1 per real output value when normalised, 2 per complex)
sum / amax / amin / prod / argmax / cumsum  1 per *input* element
mean                                        1 per input element + 1 per output element
var / std                                   3 per input element + 1 per output element
vector norm                                 2 per input element
sort / topk                                 n ceil(log2 m) / n max(1, ceil(log2 k)) comparisons
max_pool / avg_pool                         prod(kernel) per output element
adaptive_avg_pool                           1 per input element + 1 per output element
adaptive_max_pool                           1 per input element
batch_norm (eval / train)                   2 / 7 per element
layer_norm / group_norm                     5 per element (+2 with affine)
upsample nearest                            0 (a gather; its bytes are known)
upsample (bi)linear / bicubic / trilinear   3 (linear), 7 (bilinear), 31 (bicubic), 15 (trilinear)
grid_sampler_2d                             per value 7 / 0 / 31 (bilinear / nearest / bicubic), per
                                            sampled point 12 / 6 / 54 (coordinates and weights)
torchvision deform_conv2d                   2 x MACs (+ bias) + 7 per sampled input value (+1 masked)
a custom op (torch.library)                 its torch.utils.flop_counter.register_flop_formula formula
                                            (e.g. a selective scan: 9 B L D N)
views, reshapes, cat, stack, pad, pixel     0 (data movement; the output bytes are reported)
shuffle, copies, slicing, indexing, fills,
complex views, random fills
==========================================  ==========================================================

An op that is in neither table is listed in ``unknown_ops`` (and counted 0), never silently dropped.
Activations: output elements of every convolution and matrix product. #conv: every convolution op.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .._records import OpCall, TensorMeta, tensors_in
from . import ZERO, Convention, Cost, Rule, arg, out, register_convention


class Full(Convention):
    name = "full"
    description = "every arithmetic aten op counted, functional calls included (FLOPs = 2 x MACs + the rest)"
    order = 0

    def zero(self, *packets: str) -> None:
        """Declare ops that move data but do no arithmetic (counted 0 FLOPs, bytes reported)."""
        self.op(*packets)(_data_movement)

    def op_rule(self, packet: str) -> Rule | None:
        """This convention's rule, else the formula registered for the op with
        :func:`torch.utils.flop_counter.register_flop_formula` (custom ops defined with :mod:`torch.library`)."""
        return super().op_rule(packet) or registered_formula(packet)


def registered_formula(packet: str) -> Rule | None:
    """A rule applying the ``torch.utils.flop_counter`` formula registered for the op ``packet`` (``"mylib.scan"``),
    or ``None``. The formula gets the shapes of the arguments and of the output (``out_shape``), as
    :class:`~torch.utils.flop_counter.FlopCounterMode` gives them; a formula registered with ``get_raw=True``
    gets meta tensors of those shapes. Its result counts as FLOPs (MACs and activations 0: a formula does not
    say them)."""
    from torch.utils import flop_counter

    registry = flop_counter.flop_registry
    if len(registry) != _FORMULAS_SEEN[0]:  # registrations since the last look: index them by name again
        _FORMULAS.clear()
        for target, formula in registry.items():
            name = getattr(target, "_qualified_op_name", None)
            if isinstance(name, str):
                _FORMULAS[name.replace("::", ".")] = formula
        _FORMULAS_SEEN[0] = len(registry)
    formula = _FORMULAS.get(packet)
    if formula is None:
        return None
    raw = not hasattr(formula, "__wrapped__")  # shape-wrapped formulas keep the original as __wrapped__

    def rule(op: OpCall) -> Cost:
        convert = _as_meta_tensor if raw else _as_shape
        args = tuple(_tree(convert, a) for a in op.args)
        kwargs = {k: _tree(convert, v) for k, v in op.kwargs.items()}
        output = _tree(convert, op.output)
        if raw:
            flops = formula(*args, out_val=output, **kwargs)
        else:
            flops = formula.__wrapped__(*args, out_shape=output, **kwargs)
        return Cost(flops=int(flops))

    return rule


_FORMULAS: dict[str, Callable[..., int]] = {}
_FORMULAS_SEEN = [-1]


def _as_shape(t: TensorMeta) -> torch.Size:
    return torch.Size(t.shape)


def _as_meta_tensor(t: TensorMeta) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def _tree(convert: Callable[[TensorMeta], Any], x: Any) -> Any:
    if isinstance(x, TensorMeta):
        return convert(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_tree(convert, v) for v in x) if type(x) in (list, tuple) else x
    if isinstance(x, dict):
        return {k: _tree(convert, v) for k, v in x.items()}
    return x


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
FULL.op(
    "aten.leaky_relu", "aten.prelu", "aten._prelu_kernel", "aten.hardtanh", "aten.addcmul", "aten.addcdiv"
)(_per_output(2))
FULL.op("aten.hardsigmoid", "aten.softplus", "aten.elu", "aten.celu", "aten.selu", "aten.lerp")(
    _per_output(3)
)
FULL.op("aten.sigmoid", "aten.hardswish", "aten.log_sigmoid_forward")(_per_output(4))
FULL.op("aten.silu", "aten.tanh")(_per_output(5))
FULL.op("aten.gelu", "aten.mish")(_per_output(8))
FULL.op("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax", "aten._safe_softmax")(
    _per_output(5)
)
FULL.op(
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
FULL.op("aten.upsample_bilinear2d", "aten._upsample_bilinear2d_aa")(_per_output(7))


# grid_sample, per output element (one channel of one sampled point): bilinear 7 (4 mul, 3 add), nearest 0 (a
# gather), bicubic 31 (as upsample_bicubic2d); per sampled point (shared by the channels): 4 to map the grid's
# two coordinates to pixels (a mul and an add each), plus the interpolation weights -- bilinear 8 (2
# fractions, 2 complements, 4 products), nearest 2 (rounding), bicubic 2 fractions and 4 cubic coefficients of
# 6 FLOPs per axis (50). Padding modes (clamping, reflection) are not counted.
_GRID_PER_VALUE = {0: 7, 1: 0, 2: 31}
_GRID_PER_POINT = {0: 4 + 8, 1: 4 + 2, 2: 4 + 2 + 2 * 4 * 6}


@FULL.op("aten.grid_sampler_2d", "aten.grid_sampler")
def _grid_sample(op: OpCall) -> Cost:
    o, grid = out(op), arg(op, 1)
    mode = arg(op, 2) if isinstance(arg(op, 2), int) else 0
    points = math.prod(grid.shape[:-1])
    return Cost(flops=_GRID_PER_VALUE.get(mode, 7) * o.numel + _GRID_PER_POINT.get(mode, 12) * points)


FULL.op("aten.upsample_trilinear3d")(_per_output(15))
FULL.op("aten.upsample_bicubic2d", "aten._upsample_bicubic2d_aa")(_per_output(31))


# --- arithmetic on real and complex values -------------------------------------------------------------------------

# FLOPs per output element with two complex operands: add/sub 2, mul 6 (4 mul, 2 add), div 11 (6 mul, 3 add,
# 2 div); with one real operand: add/sub 1 (the real part only), mul 2, complex / real 2 (real / complex is a
# complex division). Real operands: 1. neg of a complex value 2, abs 4 (2 mul, 1 add, 1 sqrt).
_COMPLEX_BOTH = {"add": 2, "sub": 2, "rsub": 2, "mul": 6, "div": 11, "true_divide": 11}
_COMPLEX_ONE = {"add": 1, "sub": 1, "rsub": 1, "mul": 2, "div": 2, "true_divide": 2}


def _complex(x: object) -> bool:
    return isinstance(x, complex) or (isinstance(x, TensorMeta) and x.dtype.is_complex)


@FULL.op("aten.add", "aten.sub", "aten.rsub", "aten.mul", "aten.div", "aten.true_divide")
def _arithmetic(op: OpCall) -> Cost:
    n = out(op).numel
    a, b = arg(op, 0), arg(op, 1)
    if not (_complex(a) or _complex(b)):
        return Cost(flops=n)
    name = op.packet.split(".", 1)[1].rstrip("_")
    if (_complex(a) and _complex(b)) or (name in ("div", "true_divide") and _complex(b)):
        return Cost(flops=_COMPLEX_BOTH[name] * n)
    return Cost(flops=_COMPLEX_ONE[name] * n)


@FULL.op("aten.neg", "aten.abs")
def _neg_abs(op: OpCall) -> Cost:
    n = out(op).numel
    if _complex(arg(op, 0)):
        return Cost(flops=(2 if op.packet.startswith("aten.neg") else 4) * n)
    return Cost(flops=n)


FULL.zero(
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


@FULL.op("aten._fft_c2c")
def _fft_c2c(op: OpCall) -> Cost:
    return _fft_cost(op, arg(op, 0), 5.0)


@FULL.op("aten._fft_r2c")
def _fft_r2c(op: OpCall) -> Cost:
    return _fft_cost(op, arg(op, 0), 2.5)


@FULL.op("aten._fft_c2r")
def _fft_c2r(op: OpCall) -> Cost:
    return _fft_cost(op, out(op), 2.5)  # N: the real output's points


# --- attention -----------------------------------------------------------------------------------------------------


@FULL.op(
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


# --- sorting and selection -----------------------------------------------------------------------------------------


@FULL.op("aten.sort", "aten.argsort")
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


@FULL.op("aten.topk")
def _topk(op: OpCall) -> Cost:
    """n max(1, ceil(log2 k)) comparisons (a heap of the k best): n input elements, k kept."""
    x, k = arg(op, 0), int(arg(op, 1))
    return Cost(flops=x.numel * max(1, math.ceil(math.log2(k))) if k > 1 else x.numel)


FULL.op("aten.kthvalue", "aten.median", "aten.nanmedian", "aten.mode", "aten.nansum")(_per_input(1))
FULL.op("aten.aminmax")(_per_input(2))


@FULL.op("aten.scatter_add", "aten.index_add", "aten.scatter_reduce")
def _scatter_add(op: OpCall) -> Cost:
    """1 per source element added into the output (``self, dim, index, source``)."""
    src = arg(op, 3)
    return Cost(flops=src.numel if isinstance(src, TensorMeta) else out(op).numel)


FULL.op("aten.logcumsumexp", "aten.cummax", "aten.cummin")(_per_input(3))


@FULL.op("torchvision.deform_conv2d")
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

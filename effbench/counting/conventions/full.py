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

from collections.abc import Callable
from typing import Any

import torch

from .._records import OpCall, TensorMeta
from . import Convention, Cost, Rule, register_convention
from ._full_elementwise import ELEMENTWISE
from ._full_products import PRODUCTS
from ._rules import data_movement


class Full(Convention):
    name = "full"
    description = "every arithmetic aten op counted, functional calls included (FLOPs = 2 x MACs + the rest)"
    order = 0

    def zero(self, *packets: str) -> None:
        """Declare ops that move data but do no arithmetic (counted 0 FLOPs, bytes reported)."""
        self.op(*packets)(data_movement)

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
            # an op's packet (torch >= 2.5), or each of its overloads (torch 2.4 registers a formula per overload)
            op_packet = getattr(target, "overloadpacket", target)
            name = getattr(op_packet, "_qualified_op_name", None)
            if isinstance(name, str) and (op_packet is target or name.replace("::", ".") not in _FORMULAS):
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


# the rules by op family (_full_products: convolutions, matrix products, attention, FFTs; _full_elementwise: the rest)
PRODUCTS.register_into(FULL)
ELEMENTWISE.register_into(FULL)

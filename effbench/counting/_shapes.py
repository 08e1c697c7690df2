"""Output shapes computed directly on the meta engine for ops whose meta kernels are slow Python decompositions
(activations, upsampling, convolution, binary arithmetic, cat, pixel shuffle, reductions): :data:`SHAPE_FNS` maps
an op packet to ``fn(func, *args, **kwargs)`` giving a tensor of the same shape, dtype and device as the op would
(anything it does not cover goes to the op itself)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._ops import OpOverload, OpOverloadPacket

__all__ = ["SHAPE_FNS"]


def _same_shape(func: OpOverload, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    if func._schema.is_mutable:  # in-place variant: the result is the input
        return x
    if x.is_contiguous():
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)  # empty_like on meta costs 10x more
    return torch.empty_like(x)


def _upsample(
    func: OpOverload, x: torch.Tensor, output_size: Sequence[int] | None = None, *args: Any, **kwargs: Any
) -> torch.Tensor:
    spatial = x.dim() - 2
    if output_size is None:  # the .vec overloads: (input, output_size, [align_corners,] scale_factors)
        factors = kwargs.get("scale_factors", args[-1] if args else None)
        output_size = [math.floor(float(x.shape[i + 2]) * float(f)) for i, f in enumerate(factors)]
    return torch.empty(
        (*x.shape[:2], *[int(s) for s in output_size[:spatial]]), dtype=x.dtype, device=x.device
    )


def _convolution(
    func: OpOverload,
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
    *args: Any,
) -> torch.Tensor:
    k = w.shape[2:]
    if transposed:
        c_out = w.shape[1] * groups
        spatial = [
            (x.shape[i + 2] - 1) * stride[i]
            - 2 * padding[i]
            + dilation[i] * (k[i] - 1)
            + output_padding[i]
            + 1
            for i in range(len(k))
        ]
    else:
        c_out = w.shape[0]
        spatial = [
            (x.shape[i + 2] + 2 * padding[i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1
            for i in range(len(k))
        ]
    if (not transposed and x.shape[1] != w.shape[1] * groups) or min(spatial) <= 0:
        return func(
            x, w, bias, stride, padding, dilation, transposed, output_padding, groups, *args
        )  # its error
    return torch.empty((x.shape[0], c_out, *spatial), dtype=x.dtype, device=x.device)


# Ops whose meta kernels are Python decompositions (tens of ms each at any size): their output shapes are computed
# directly on the meta engine. Same shape, dtype and device as the op itself would give.
SHAPE_FNS: dict[OpOverloadPacket, Callable[..., torch.Tensor]] = {}
for _name in (
    "leaky_relu",
    "leaky_relu_",
    "hardtanh",
    "hardtanh_",
    "elu",
    "elu_",
    "gelu",
    "gelu_",
    "silu",
    "silu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "relu",
    "relu_",
    "hardswish",
    "hardswish_",
    "hardsigmoid",
    "hardsigmoid_",
    "mish",
    "mish_",
    "softplus",
    "relu6",
    "selu",
    "celu",
):
    _packet = getattr(torch.ops.aten, _name, None)
    if _packet is not None:
        SHAPE_FNS[_packet] = _same_shape
for _name in (
    "upsample_bilinear2d",
    "upsample_nearest2d",
    "upsample_bicubic2d",
    "upsample_nearest1d",
    "upsample_linear1d",
    "upsample_nearest3d",
    "upsample_trilinear3d",
    "_upsample_nearest_exact2d",
    "_upsample_bilinear2d_aa",
    "_upsample_bicubic2d_aa",
):
    _packet = getattr(torch.ops.aten, _name, None)
    if _packet is not None:
        SHAPE_FNS[_packet] = _upsample


if hasattr(torch.ops.aten, "convolution"):
    SHAPE_FNS[torch.ops.aten.convolution] = _convolution


def _binary(func: OpOverload, a: torch.Tensor, b: object, *args: Any, **kwargs: Any) -> torch.Tensor:
    """add / sub / mul / div of contiguous meta tensors (or a tensor and a scalar): broadcast shape, promoted
    dtype, contiguous like the op's own output. Anything else (other layouts, devices, casts an in-place op
    refuses) goes to the op itself."""
    if isinstance(b, torch.Tensor):
        if not (a.is_contiguous() and b.is_contiguous()) or (b.device != a.device and b.dim() != 0):
            return func(a, b, *args, **kwargs)
        shape = a.shape if a.shape == b.shape or b.dim() == 0 else torch.broadcast_shapes(a.shape, b.shape)
    elif isinstance(b, (int, float, bool)) and a.is_contiguous():
        shape = a.shape
    else:
        return func(a, b, *args, **kwargs)
    dtype = torch.result_type(a, b)
    if (
        func.overloadpacket in _TRUE_DIVISIONS
        and kwargs.get("rounding_mode") is None
        and not (dtype.is_floating_point or dtype.is_complex)
    ):
        dtype = torch.get_default_dtype()
    if func._schema.is_mutable:
        if shape != a.shape or not torch.can_cast(dtype, a.dtype):
            return func(a, b, *args, **kwargs)  # its error
        return a
    return torch.empty(shape, dtype=dtype, device=a.device)


_TRUE_DIVISIONS = frozenset(getattr(torch.ops.aten, n) for n in ("div", "div_") if hasattr(torch.ops.aten, n))
for _name in ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "pow", "pow_"):
    _packet = getattr(torch.ops.aten, _name, None)
    if _packet is not None:
        SHAPE_FNS[_packet] = _binary


def _cat(
    func: OpOverload, tensors: Sequence[torch.Tensor], dim: int = 0, *args: Any, **kwargs: Any
) -> torch.Tensor:
    """cat of contiguous meta tensors of one dtype and rank; anything else goes to the op itself."""
    first = tensors[0] if len(tensors) else None
    if (
        first is None
        or args
        or kwargs
        or any(
            t.dim() != first.dim() or t.dtype != first.dtype or not t.is_meta or not t.is_contiguous()
            for t in tensors
        )
    ):
        return func(tensors, dim, *args, **kwargs)
    d = dim + first.dim() if dim < 0 else dim
    shape = list(first.shape)
    if not 0 <= d < len(shape) or any(
        t.shape[:d] != first.shape[:d] or t.shape[d + 1 :] != first.shape[d + 1 :] for t in tensors
    ):
        return func(tensors, dim)  # its error
    shape[d] = sum(t.shape[d] for t in tensors)
    return torch.empty(shape, dtype=first.dtype, device=first.device)


if hasattr(torch.ops.aten, "cat"):
    SHAPE_FNS[torch.ops.aten.cat] = _cat


def _pixel_shuffle(func: OpOverload, x: torch.Tensor, factor: int, *args: Any, **kwargs: Any) -> torch.Tensor:
    """pixel_shuffle / pixel_unshuffle of a contiguous meta tensor (their meta kernel imports sympy on first use)."""
    r = int(factor)
    c, h, w = (x.shape[-3], x.shape[-2], x.shape[-1]) if x.dim() >= 3 else (0, 0, 0)
    if func.overloadpacket is torch.ops.aten.pixel_shuffle:
        ok, shape = r > 0 and c % (r * r) == 0, (c // (r * r), h * r, w * r) if r > 0 else ()
    else:
        ok, shape = r > 0 and h % r == 0 and w % r == 0, (c * r * r, h // r, w // r) if r > 0 else ()
    if args or kwargs or x.dim() < 3 or not ok or not x.is_contiguous():
        return func(x, factor, *args, **kwargs)
    return torch.empty((*x.shape[:-3], *shape), dtype=x.dtype, device=x.device)


for _name in ("pixel_shuffle", "pixel_unshuffle"):
    _packet = getattr(torch.ops.aten, _name, None)
    if _packet is not None:
        SHAPE_FNS[_packet] = _pixel_shuffle


def _reduction(func: OpOverload, *args: Any, **kwargs: Any) -> torch.Tensor:
    """mean / sum / std / var / amax / amin of a floating meta tensor over some dimensions (their meta kernels
    are Python decompositions: ~0.5 ms a call); any other overload or input goes to the op itself."""
    x = args[0]
    form = (func.overloadpacket, func._overloadname)
    if form not in _REDUCTION_FORMS or not x.is_floating_point() or len(args) > 3:
        return func(*args, **kwargs)
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if isinstance(dim, int):
        dim = [dim]
    rank = x.dim()
    if rank == 0 or (dim is not None and any(not -rank <= d < rank for d in dim)):
        return func(*args, **kwargs)  # its result, or its error
    reduced = set(range(rank)) if not dim else {d % rank for d in dim}
    if keepdim:
        shape = [1 if i in reduced else n for i, n in enumerate(x.shape)]
    else:
        shape = [n for i, n in enumerate(x.shape) if i not in reduced]
    return torch.empty(shape, dtype=kwargs.get("dtype") or x.dtype, device=x.device)


_REDUCTION_FORMS: set[tuple[OpOverloadPacket, str]] = set()
for _name, _overload in (
    ("mean", "dim"),
    ("sum", "dim_IntList"),
    ("std", "correction"),
    ("var", "correction"),
    ("amax", "default"),
    ("amin", "default"),
):
    _packet = getattr(torch.ops.aten, _name, None)
    if _packet is not None and _overload in _packet.overloads():
        _REDUCTION_FORMS.add((_packet, _overload))
        SHAPE_FNS[_packet] = _reduction

"""Record one forward pass as a :class:`OpTrace`: module calls, torch-function calls and aten ops with their shapes.

The forward runs on meta tensors (or under :class:`~torch._subclasses.fake_tensor.FakeTensorMode`), so no
arithmetic is done and no memory is allocated: a 1920x1080 input costs as much as a 64x64 one. Three recorders run at once:

- :class:`~effbench.base.modules.ModuleStack` (global module forward pre/post hooks, removed on exit) keeps the
  stack of qualified module names and records every module call with its output shape;
- a :class:`~torch.overrides.TorchFunctionMode` records the outermost torch-level call (``F.interpolate``,
  ``torch.matmul``, ``Tensor.__add__``...), the level at which the JIT tracer (and so fvcore) names operators;
- a :class:`~torch.utils._python_dispatch.TorchDispatchMode` records every aten op (functional calls included).

Nothing is left on the user's model: no attributes, no per-module hooks, no change of ``requires_grad``,
device or dtype. The meta engine puts meta copies of the parameters and buffers in the modules' tables for the
forward (the fake engine, when another dtype is asked for, passes fake copies with
:func:`torch.func.functional_call`), plain tensor attributes (``self.mean = torch.Tensor(...)``) get meta
stand-ins, and all of it, with whatever the forward does to the model (``self.mean = self.mean.type_as(x)``)
is undone after every engine (:func:`effbench.base.model_code.left_as_found`). The forward runs under
:func:`~effbench.base.model_code.running_model_code`: its prints go to stderr and, without CUDA, its CUDA calls
stay on the tensor's device (``OpTrace.cuda_redirects``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..base.errors import ModelError
from ..base.model_code import (
    cuda_redirects,
    data_dependent_errors,
    left_as_found,
    redirect_cuda,
    replace_tensor_attributes,
    running_model_code,
)
from ..base.modules import Frame, ModuleStack


class TensorMeta:
    """Shape and dtype of a tensor seen during the trace (the tensor itself is not kept). A slotted class, not a
    dataclass: one is made for every tensor of every op."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorMeta) and self.shape == other.shape and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __repr__(self) -> str:
        return f"TensorMeta(shape={self.shape}, dtype={self.dtype})"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


_SCALARS = frozenset({int, float, bool, str, type(None), torch.Size, torch.dtype, torch.device})


def _meta(x: Any) -> Any:
    """Replace every tensor in a nest of tuples/lists/dicts by its :class:`TensorMeta` (a hand-rolled tree map:
    this runs for every op, and pytree's generality costs more than the ops themselves). A list or tuple of
    scalars only (strides, paddings) is kept as it is."""
    kind = type(x)
    if kind in _SCALARS:
        return x
    if isinstance(x, torch.Tensor):
        return TensorMeta(tuple(x.shape), x.dtype)
    if kind is tuple or kind is list:
        for v in x:
            if type(v) not in _SCALARS:
                return tuple(_meta(v) for v in x) if kind is tuple else [_meta(v) for v in x]
        return x
    if isinstance(x, (tuple, list)):
        return tuple(_meta(v) for v in x) if isinstance(x, tuple) else [_meta(v) for v in x]
    if isinstance(x, dict):
        return {k: _meta(v) for k, v in x.items()} if x else x
    return x


def tensors_in(tree: Any) -> list[TensorMeta]:
    """Every :class:`TensorMeta` in a nested structure of args/outputs, in order."""
    if type(tree) is TensorMeta:
        return [tree]
    found: list[TensorMeta] = []
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, TensorMeta):
            found.append(x)
        elif isinstance(x, (tuple, list)):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
    return found


def _lazy(field_name: str, index: int) -> property:
    """A field holding what the forward gave (tensors included) until first read, then its TensorMeta tree: most
    recorded arguments are never read by any rule, and converting them all cost more than the forward. Bit
    ``index`` of ``_raw`` says the field is not converted yet."""
    slot, bit = "_" + field_name, 1 << index

    def get(self: _Recorded) -> Any:
        if self._raw & bit:
            setattr(self, slot, _meta(getattr(self, slot)))
            self._raw &= ~bit
        return getattr(self, slot)

    def put(self: _Recorded, value: Any) -> None:
        setattr(self, slot, value)
        self._raw &= ~bit

    return property(get, put)


class _Recorded:
    """Base of the recorded calls: :attr:`_LAZY` fields are settled (made TensorMeta trees) when first read, by
    :meth:`settle`, or at once when recorded with ``raw=False`` (the real engine: its tensors hold memory)."""

    __slots__ = ("_raw",)
    _LAZY: tuple[str, ...] = ()

    def _keep_raw(self, field_name: str, value: Any) -> None:
        """Store ``value`` as it is in a lazy field (converted when first read)."""
        setattr(self, "_" + field_name, value)
        self._raw |= 1 << self._LAZY.index(field_name)

    def settle(self) -> None:
        """Turn the tensors of the lazy fields into :class:`TensorMeta` now (shapes as they are at this moment)."""
        if self._raw:
            for i, f in enumerate(self._LAZY):
                if self._raw & (1 << i):
                    setattr(self, "_" + f, _meta(getattr(self, "_" + f)))
            self._raw = 0

    def __repr__(self) -> str:
        fields = [f for f in self.__slots__ if not f.startswith("_")] + list(self._LAZY)
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in fields)})"


class ModuleCall(_Recorded):
    """One ``module(...)`` call. ``module`` is kept for the module-level rules (kernel size, channels...);
    ``inputs`` (the positional args) and ``output`` are trees of :class:`TensorMeta`."""

    __slots__ = ("name", "module", "in_model", "_inputs", "_output")
    _LAZY = ("inputs", "output")
    inputs = _lazy("inputs", 0)
    output = _lazy("output", 1)

    def __init__(
        self,
        name: str,
        module: nn.Module,
        in_model: bool,
        inputs: Any = None,
        output: Any = None,
        raw: bool = False,
    ) -> None:
        self._raw = 0b11 if raw else 0
        self.name, self.module, self.in_model = name, module, in_model
        self._inputs, self._output = inputs, output


class FunctionCall(_Recorded):
    """One outermost torch-level call (e.g. ``interpolate``, ``matmul``, ``__add__``)."""

    __slots__ = ("func", "name", "_args", "_kwargs", "_output", "module")
    _LAZY = ("args", "kwargs", "output")
    args = _lazy("args", 0)
    kwargs = _lazy("kwargs", 1)
    output = _lazy("output", 2)

    def __init__(
        self,
        func: Callable[..., Any],
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        output: Any,
        module: str,
        raw: bool = False,
    ) -> None:
        self._raw = 0b111 if raw else 0
        self.func, self.name, self.module = func, name, module
        self._args, self._kwargs, self._output = args, kwargs, output


class OpCall(_Recorded):
    """One aten op: ``packet`` is e.g. ``"aten.convolution"``, ``overload`` e.g. ``"aten.convolution.default"``;
    ``function`` the index into ``OpTrace.functions`` of the enclosing torch-level call (-1 if none)."""

    __slots__ = ("packet", "overload", "_args", "_kwargs", "_output", "module", "function", "flow")
    _LAZY = ("args", "kwargs", "output")
    args = _lazy("args", 0)
    kwargs = _lazy("kwargs", 1)
    output = _lazy("output", 2)

    def __init__(
        self,
        packet: str,
        overload: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        output: Any,
        module: str,
        function: int,
        raw: bool = False,
    ) -> None:
        self._raw = 0b111 if raw else 0
        self.packet, self.overload, self.module, self.function = packet, overload, module, function
        self._args, self._kwargs, self._output = args, kwargs, output
        self.flow: Flow | None = None


# What an op read and wrote, by tensor identity (``id`` of the tensor object while the forward ran): the keys of
# its tensor arguments, of its tensor outputs, of the arguments its schema says it writes (``Tensor(a!)``), and
# the key of the tensor its output is a view of (``Tensor(a)`` returned) or ``None``.
Flow = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int | None]


@dataclass
class OpTrace:
    """Everything one forward pass did, in shapes only."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: torch.dtype
    params: int
    modules: list[ModuleCall] = field(default_factory=list)
    functions: list[FunctionCall] = field(default_factory=list)
    ops: list[OpCall] = field(default_factory=list)
    engine: str = "fake"  # "meta", "fake" (shapes only) or "real" (fallback for data-dependent models)
    cuda_redirects: dict[str, int] = field(default_factory=dict)  # model code's CUDA calls kept on the CPU
    # identity keys (see ``Flow``) of the returned tensor and of the forward's inputs: the input, the parameters
    # and buffers it saw (what the JIT tracer makes graph inputs)
    output_key: int = 0
    state_keys: frozenset[int] = frozenset()

    def live_ops(self) -> bytearray:
        """1 for each op of :attr:`ops` that a JIT trace keeps after dead-code elimination, 0 for the others.

        An op is live when one of its outputs reaches the returned tensor through live ops (tensor identity: an
        in-place op continues its tensor), or when it writes (``Tensor(a!)`` in its schema) to memory that a live
        tensor views or is viewed by, or to an input of the forward (the input, a parameter, a buffer). The JIT
        tracer does not see ``.data``: ``p.data = w`` links nothing, and ``p.data`` reads as a new tensor (the
        ops recorded while it is read take no input), so a tensor computed only to be put into a parameter with
        ``p.data = w`` (or copied into ``p.data``) is dead, as the JIT's DCE (alias analysis,
        ``writesToAlias``) drops it. One pass forward to follow
        views to the tensor they view, one pass backward marking what is live; like the JIT's DCE, a write is
        live only if the tensor it writes is used by a live op after it.
        """
        ops = self.ops
        alive = bytearray(len(ops))
        base: dict[int, int] = {}  # view key -> key of the tensor whose memory it is
        written: dict[int, tuple[int, ...]] = {}  # op index -> bases of the tensors it writes
        read: dict[int, tuple[int, ...]] = {}  # op index -> bases of its inputs, where one is a view
        for i, op in enumerate(ops):
            flow = op.flow
            if flow is None:
                continue
            ins, outs, writes, view = flow
            if base:
                bases = tuple(base.get(k, k) for k in ins)
                if bases != ins:
                    read[i] = bases
            if writes:
                written[i] = tuple(base.get(k, k) for k in writes)
            if view is not None:
                root = base.get(view, view)
                for k in outs:
                    base[k] = root
            elif base:
                for k in outs:
                    if k not in ins:
                        base.pop(k, None)  # a new tensor (its key may be a dead tensor's)
        live = {self.output_key}
        live_bases = {base.get(self.output_key, self.output_key)}
        state = self.state_keys
        for i in range(len(ops) - 1, -1, -1):
            flow = ops[i].flow
            if flow is None:
                continue
            ins, outs, writes, view = flow
            if not any(k in live for k in outs):
                w = written.get(i)
                if w is None or not any(k in live_bases or k in state for k in w):
                    continue
            alive[i] = 1
            for k in outs:
                if k not in ins:
                    live.discard(k)  # made here: earlier ops cannot have read it
            live.update(ins)
            live_bases.update(read.get(i, ins))
        return alive

    def settle(self) -> None:
        """Turn every recorded tensor not read yet into its :class:`TensorMeta` (and drop the tensor)."""
        for calls in (self.modules, self.functions, self.ops):
            for c in calls:
                c.settle()


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", None)
    if name is None:  # property getters (Tensor.shape) and other descriptors
        name = getattr(getattr(func, "__objclass__", None), "__name__", "") + "." + str(func)
    return name


_DATA = torch._C.TensorBase.data  # the descriptor of Tensor.data


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        rec = self.rec
        if rec.redirects is not None:  # model code's CUDA requests, on a host without CUDA
            func, args, kwargs = redirect_cuda(func, args, kwargs, rec.redirects)
        if getattr(func, "__name__", None) == "__get__":  # attribute reads (x.shape, x.device): most calls
            if getattr(func, "__self__", None) is not _DATA:
                return func(*args, **kwargs)
            rec.untraced += (
                1  # x.data: a tensor the JIT tracer does not see made from x (see OpTrace.live_ops)
            )
            try:
                return func(*args, **kwargs)
            finally:
                rec.untraced -= 1
        outer = rec.current_function
        index = len(rec.trace.functions)
        rec.current_function = index
        # Reserve the slot before running so nested ops point at it.
        call = FunctionCall(func, _func_name(func), (), {}, None, rec.module_name())
        rec.trace.functions.append(call)
        try:
            out = func(*args, **kwargs)
        finally:
            rec.current_function = outer
        if isinstance(out, (torch.Tensor, tuple, list)) and not isinstance(
            out, torch.Size
        ):  # skip .size() etc.
            call._args, call._kwargs, call._output, call._raw = args, kwargs, out, 0b111
            if not rec.lazy:
                call.settle()
        return out


class _DispatchRecorder(TorchDispatchMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """No dynamo-disable wrapper around :meth:`__torch_dispatch__`: the wrapper imports torch._dynamo on
        the first op (~2 s) and adds a Python frame to every op; nothing here is compiled."""
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        known = _OVERLOADS.get(func)
        if known is None:
            packet = func.overloadpacket
            known = _OVERLOADS[func] = (
                packet._qualified_op_name.replace("::", "."),
                str(func),  # slow (the schema is formatted): once per overload
                _SHAPE_FNS.get(packet),
                *_aliasing(func),
            )
        shape_fn = known[2]
        if shape_fn is not None and _first_is_meta(args):
            out = shape_fn(func, *args, **kwargs)
        else:
            out = func(*args, **kwargs)
        rec = self.rec
        call = OpCall(known[0], known[1], args, kwargs, out, rec.module_name(), rec.current_function, True)
        call.flow = _flow(args, kwargs, out, known[3], known[4])
        if rec.untraced and call.flow is not None:  # made by x.data: new to the JIT, read from nothing
            call.flow = ((), call.flow[1], (), None)
        if not rec.lazy:
            call.settle()
        elif func in _RESHAPES_IN_PLACE:  # tensors recorded so far may change shape: take their shapes now
            rec.trace.settle()
        rec.trace.ops.append(call)
        return out


def _aliasing(func: Any) -> tuple[tuple[int | str, ...], int]:
    """From an op's schema: the arguments it writes (positions, or names for keyword-only ones such as ``out``)
    and the position of the argument its first output is a view of (-1 if none)."""
    writes: list[int | str] = []
    view = -1
    schema = func._schema
    for i, a in enumerate(schema.arguments):
        info = a.alias_info
        if info is not None and info.is_write:
            writes.append(a.name if a.kwarg_only else i)
    ret = schema.returns[0].alias_info if schema.returns else None
    if ret is not None and not ret.is_write:
        sources = [
            (i, set(a.alias_info.before_set))
            for i, a in enumerate(schema.arguments)
            if a.alias_info is not None and not a.alias_info.is_write
        ]
        # split/chunk/unbind return Tensor(a)[]: the set is on the list's elements, the list's own is empty
        matching = [i for i, names in sources if names & set(ret.before_set)] or [i for i, _ in sources]
        view = matching[0] if matching else -1
    return tuple(writes), view


def _keys(tree: Any) -> tuple[int, ...]:
    """Identity keys of the tensors among an op's arguments or outputs (one level of lists, as for ``cat``)."""
    if isinstance(tree, torch.Tensor):
        return (id(tree),)
    keys: list[int] = []
    for x in tree if isinstance(tree, (tuple, list)) else ():
        if isinstance(x, torch.Tensor):
            keys.append(id(x))
        elif isinstance(x, (tuple, list)):
            keys.extend(id(t) for t in x if isinstance(t, torch.Tensor))
    return tuple(keys)


def _flow(
    args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, writes: tuple[int | str, ...], view: int
) -> Flow | None:
    """The op's :data:`Flow`, or ``None`` when it neither reads nor makes a tensor."""
    ins = _keys(args)
    if kwargs:
        ins += _keys(tuple(kwargs.values()))
    outs = _keys(out)
    if not ins and not outs:
        return None
    written: tuple[int, ...] = ()
    if writes:
        found: list[int] = []
        for w in writes:
            t = kwargs.get(w) if isinstance(w, str) else (args[w] if w < len(args) else kwargs.get(str(w)))
            found.extend(_keys(t if isinstance(t, (tuple, list)) else (t,)))
        written = tuple(found)
    source = args[view] if 0 <= view < len(args) else None
    return ins, outs, written, id(source) if isinstance(source, torch.Tensor) else None


def _first_is_meta(args: tuple[Any, ...]) -> bool:
    """The op's first argument is a meta tensor (or a list of them, as for cat)."""
    a = args[0] if args else None
    if isinstance(a, (list, tuple)):
        a = a[0] if a else None
    return isinstance(a, torch.Tensor) and a.is_meta


# In-place ops that change a tensor's shape or storage: shapes recorded lazily before one are taken first.
_RESHAPES_IN_PLACE = frozenset(
    getattr(getattr(torch.ops.aten, name), overload)
    for name in (
        "resize_",
        "resize_as_",
        "set_",
        "as_strided_",
        "squeeze_",
        "unsqueeze_",
        "transpose_",
        "t_",
        "swapdims_",
        "swapaxes_",
    )
    if hasattr(torch.ops.aten, name)
    for overload in getattr(torch.ops.aten, name).overloads()
)

# op overload -> (packet name "aten.add", overload name "aten.add.Tensor", meta shape function or None, the
# arguments it writes, the argument its output views: see _aliasing)
_OVERLOADS: dict[Any, tuple[str, str, Callable[..., Any] | None, tuple[int | str, ...], int]] = {}


def _same_shape(func: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    if func._schema.is_mutable:  # in-place variant: the result is the input
        return x
    if x.is_contiguous():
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)  # empty_like on meta costs 10x more
    return torch.empty_like(x)


def _upsample(func: Any, x: torch.Tensor, output_size: Any = None, *args: Any, **kwargs: Any) -> torch.Tensor:
    spatial = x.dim() - 2
    if output_size is None:  # the .vec overloads: (input, output_size, [align_corners,] scale_factors)
        factors = kwargs.get("scale_factors", args[-1] if args else None)
        output_size = [math.floor(float(x.shape[i + 2]) * float(f)) for i, f in enumerate(factors)]
    return torch.empty(
        (*x.shape[:2], *[int(s) for s in output_size[:spatial]]), dtype=x.dtype, device=x.device
    )


def _convolution(
    func: Any,
    x: torch.Tensor,
    w: torch.Tensor,
    bias: Any,
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
_SHAPE_FNS: dict[Any, Callable[..., torch.Tensor]] = {}
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
        _SHAPE_FNS[_packet] = _same_shape
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
        _SHAPE_FNS[_packet] = _upsample


if hasattr(torch.ops.aten, "convolution"):
    _SHAPE_FNS[torch.ops.aten.convolution] = _convolution


def _binary(func: Any, a: torch.Tensor, b: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
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
        _SHAPE_FNS[_packet] = _binary


def _cat(func: Any, tensors: Sequence[torch.Tensor], dim: int = 0, *args: Any, **kwargs: Any) -> torch.Tensor:
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
    _SHAPE_FNS[torch.ops.aten.cat] = _cat


def _pixel_shuffle(func: Any, x: torch.Tensor, factor: int, *args: Any, **kwargs: Any) -> torch.Tensor:
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
        _SHAPE_FNS[_packet] = _pixel_shuffle


def _reduction(func: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
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


_REDUCTION_FORMS: set[tuple[Any, str]] = set()
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
        _SHAPE_FNS[_packet] = _reduction


class _Recorder:
    """The shared trace, the enclosing torch-level call and the module stack (:class:`ModuleStack`);
    ``redirects`` counts the CUDA requests kept on the tensor's device (``None`` where CUDA exists)."""

    def __init__(self, model: nn.Module, trace: OpTrace, redirects: Counter[str] | None = None) -> None:
        self.trace = trace
        self.modules = ModuleStack(model, on_enter=self._enter, on_exit=self._exit)
        self.current_function = -1
        self.untraced = (
            0  # > 0 while Tensor.data is read (its ops make a tensor the JIT tracer does not link)
        )
        self.redirects = redirects
        # Tensors are kept until read (shapes-only engines: they hold no memory), else converted at once.
        self.lazy = trace.engine != "real"

    def module_name(self) -> str:
        """Qualified name of the innermost model module being called ("" for the model itself)."""
        return self.modules.current_in_model

    def _enter(self, frame: Frame, args: Any) -> ModuleCall:
        call = ModuleCall(frame.name, frame.module, frame.in_model, args, None, raw=True)
        if not self.lazy:
            call.settle()
        self.trace.modules.append(call)
        return call

    def _exit(self, frame: Frame, output: Any) -> None:
        call = frame.data
        if self.lazy:
            call._keep_raw("output", output)
        else:
            call.output = _meta(output)


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a torch logger that reports (and re-raises) a failing op: our own error message names the cause."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _run(
    model: nn.Module,
    make_input: Callable[[], torch.Tensor],
    recorder: _Recorder,
    param_overrides: dict[str, torch.Tensor] | None,
) -> Any:
    x = make_input()
    state = {id(x)}
    state.update(id(t) for t in model.parameters())
    state.update(id(t) for t in model.buffers())
    if param_overrides:
        state.update(id(t) for t in param_overrides.values())
    recorder.trace.state_keys = frozenset(state)
    with recorder.modules, _FunctionRecorder(recorder), _DispatchRecorder(recorder), torch.no_grad():
        if param_overrides:
            return torch.func.functional_call(model, param_overrides, (x,), strict=False, tie_weights=True)
        return model(x)


def as_module(model: Any) -> Any:
    """The eager module behind a ``torch.compile``'d module (its ``_orig_mod``: the compiled graph runs the same
    ops, and counting it would count what dynamo does with the recorders) or a ``torch.export`` program (its
    ``.module()``, whose graph calls the exported aten ops); anything else as it is."""
    # Looked up where already imported only (importing dynamo takes seconds): a model cannot be one otherwise.
    dynamo = sys.modules.get("torch._dynamo.eval_frame")
    optimized = getattr(dynamo, "OptimizedModule", None)
    while optimized is not None and isinstance(model, optimized):
        model = model._orig_mod
    export = sys.modules.get("torch.export")
    program = getattr(export, "ExportedProgram", None)
    if program is not None and isinstance(model, program):
        model = model.module()
    return model


def record(
    model: nn.Module,
    input_shape: Sequence[int],
    dtype: torch.dtype = torch.float32,
    name: str | None = None,
    *,
    keep_dtypes: bool = False,
    real_input: Callable[[tuple[int, ...], torch.dtype, torch.device], torch.Tensor] | None = None,
    force_real: bool = False,
) -> OpTrace:
    """Run ``model`` once on a shapes-only input of ``input_shape`` and return what it did.

    Engines, tried in turn: ``meta`` (meta-device copies of the parameters and buffers put in the modules'
    tables for the forward; the fastest), ``fake`` (:class:`FakeTensorMode`, for models that mix in
    tensors of their own device) and, only when control flow depends on tensor values, ``real`` (a real forward
    on a zero input, or on ``real_input(shape, dtype, device)``; ``force_real`` skips the other two). The input is
    ``dtype``; floating parameters and buffers are cast to it, unless ``keep_dtypes`` (as the model has them: fp16
    parameters, ``x.half()`` inside ``forward``). Raises :class:`ModelError` naming the model when the forward
    fails or does not return a tensor.
    """
    model = as_module(model)
    label = name or type(model).__name__
    shape = tuple(int(s) for s in input_shape)
    try:
        device = next(iter(model.parameters())).device
    except StopIteration:
        device = torch.device("cpu")
    params = _param_count(model)

    def attempt(engine: str) -> tuple[OpTrace, Any]:
        trace = OpTrace(input_shape=shape, output_shape=(), dtype=dtype, params=params, engine=engine)
        rec = _Recorder(model, trace, redirects)
        if engine == "meta":  # floating tensors in ``dtype`` (a no-op where they all have it) unless kept
            _swap_to_meta(model, None if keep_dtypes else dtype)
            replace_tensor_attributes(model, lambda t: t.to(device="meta"), snapshot.tensor_attributes())
            return trace, _run(model, lambda: torch.empty(shape, dtype=dtype, device="meta"), rec, None)
        snapshot.keep_values()  # the engines below run on the model's own tensors: copy them first
        tensors = _named_tensors(model)
        cast = not keep_dtypes and any(t.is_floating_point() and t.dtype != dtype for _, t in tensors)
        if engine == "fake":
            from torch._subclasses.fake_tensor import FakeTensorMode

            with _quiet("torch._subclasses.fake_tensor"), FakeTensorMode(allow_non_fake_inputs=True) as mode:
                overrides = None
                if cast:
                    overrides = {
                        k: (mode.from_tensor(t).to(dtype) if t.is_floating_point() else t) for k, t in tensors
                    }
                return trace, _run(
                    model, lambda: torch.empty(shape, dtype=dtype, device=device), rec, overrides
                )
        overrides = None
        if cast:
            overrides = {k: (t.to(dtype) if t.is_floating_point() else t) for k, t in tensors}
        fill = real_input or (lambda s, d, dev: torch.zeros(s, dtype=d, device=dev))
        return trace, _run(model, lambda: fill(shape, dtype, device), rec, overrides)

    def restored(engine: str) -> tuple[OpTrace, Any]:
        try:
            return attempt(engine)
        except BaseException:
            snapshot.restore()  # the next engine starts from the model as found (left_as_found: after the last)
            raise

    try:
        # No copy of the tensors for the meta engine (its forward sees meta stand-ins only), one torch-function
        # mode for the recording and the CUDA redirects.
        with running_model_code(model, redirect=False) as guard, left_as_found(model, False) as snapshot:
            redirects = None if torch.cuda.is_available() else guard.cuda_redirects
            if force_real:
                trace, out = restored("real")
            else:
                try:
                    trace, out = restored("meta")
                except Exception:
                    try:
                        trace, out = restored("fake")
                    except data_dependent_errors():
                        trace, out = restored("real")
    except ModelError:
        raise
    except Exception as exc:
        hw = "x".join(map(str, shape))
        raise ModelError(
            f"model {label!r} failed in forward on a {hw} input: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ModelError(
            f"model {label!r} returned {type(out).__name__}, not a tensor (effbench counts single-image SR models)"
        )
    trace.output_shape = tuple(int(s) for s in out.shape)
    trace.output_key = id(out)
    trace.cuda_redirects = cuda_redirects(model)
    return trace


def _swap_to_meta(model: nn.Module, dtype: torch.dtype | None) -> None:
    """Put meta copies of every parameter and buffer into the modules' own tables (tied ones stay tied; floating
    ones cast to ``dtype`` unless ``None``). Cheaper than :func:`torch.func.functional_call` (a Python swap per
    tensor, twice); the :func:`~effbench.base.model_code.left_as_found` around the trace puts the originals back."""
    made: dict[int, torch.Tensor] = {}
    for m in model.modules():
        for table in (m._parameters, m._buffers):
            for k, t in table.items():
                if t is None:
                    continue
                new = made.get(id(t))
                if new is None:
                    cast = dtype if dtype is not None and t.is_floating_point() else t.dtype
                    new = made[id(t)] = torch.empty_like(t, device="meta", dtype=cast)
                table[k] = new


def _named_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and buffers, tied ones once (``functional_call`` re-ties them)."""
    return list(model.named_parameters()) + list(model.named_buffers())

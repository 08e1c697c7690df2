"""What :func:`~effbench.counting._trace.record` keeps of one forward pass: the module, torch-function and aten op
calls (:class:`ModuleCall`, :class:`FunctionCall`, :class:`OpCall`, their tensors as :class:`TensorMeta` shapes)
in an :class:`OpTrace`, and the trace's liveness pass (:meth:`OpTrace.live_ops`: the ops a JIT trace keeps after
dead-code elimination)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Flow", "FunctionCall", "ModuleCall", "OpCall", "OpTrace", "TensorMeta", "tensors_in", "to_meta"]


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


def to_meta(x: Any) -> Any:
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
                return tuple(to_meta(v) for v in x) if kind is tuple else [to_meta(v) for v in x]
        return x
    if isinstance(x, (tuple, list)):
        return tuple(to_meta(v) for v in x) if isinstance(x, tuple) else [to_meta(v) for v in x]
    if isinstance(x, dict):
        return {k: to_meta(v) for k, v in x.items()} if x else x
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
            setattr(self, slot, to_meta(getattr(self, slot)))
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
                    setattr(self, "_" + f, to_meta(getattr(self, "_" + f)))
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


# What an op read and wrote, by tensor identity (a key per tensor object, unique for the whole forward:
# ``_trace.TensorKeys``, never a freed tensor's ``id`` given to a new one): the keys of its tensor arguments, of
# its tensor outputs, of the arguments its schema says it writes (``Tensor(a!)``), and the key of the tensor its
# output is a view of (``Tensor(a)`` returned) or ``None``.
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

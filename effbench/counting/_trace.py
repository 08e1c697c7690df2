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

The records themselves and the trace's liveness pass are in :mod:`effbench.counting._records`; the shape functions
that spare the meta engine its slow decompositions in :mod:`effbench.counting._shapes`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload
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
from ._records import (
    Flow,
    FunctionCall,
    ModuleCall,
    OpCall,
    OpTrace,
    TensorMeta,
    tensors_in,
    to_meta,
)
from ._shapes import SHAPE_FNS

__all__ = [
    "FunctionCall",
    "ModuleCall",
    "OpCall",
    "OpTrace",
    "TensorMeta",
    "as_module",
    "record",
    "tensors_in",
]


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
                SHAPE_FNS.get(packet),
                *_aliasing(func),
            )
        shape_fn = known[2]
        if shape_fn is not None and _first_is_meta(args):
            out = shape_fn(func, *args, **kwargs)
        else:
            out = func(*args, **kwargs)
        rec = self.rec
        call = OpCall(known[0], known[1], args, kwargs, out, rec.module_name(), rec.current_function, True)
        call.flow = _flow(rec.keys, args, kwargs, out, known[3], known[4])
        if rec.untraced and call.flow is not None:  # made by x.data: new to the JIT, read from nothing
            call.flow = ((), call.flow[1], (), None)
        if not rec.lazy:
            call.settle()
        elif func in _RESHAPES_IN_PLACE:  # tensors recorded so far may change shape: take their shapes now
            rec.trace.settle()
        rec.trace.ops.append(call)
        return out


def _aliasing(func: OpOverload) -> tuple[tuple[int | str, ...], int]:
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


class TensorKeys:
    """Identity keys of the tensors a forward pass sees, unique for the whole trace: a tensor keeps its key while
    it lives, and a tensor made later gets a new one. ``id()`` alone is not such a key: a tensor freed during the
    forward (the dead branch of a score only converted to an int) gives its id to the next tensor Python makes,
    which the liveness pass would then take for the freed one (counted one run, not the next)."""

    __slots__ = ("_seen", "_made")

    def __init__(self) -> None:
        self._seen: dict[int, tuple[weakref.ref[torch.Tensor], int]] = {}  # id -> (the tensor, its key)
        self._made = 0  # keys given so far

    def __call__(self, tensor: torch.Tensor) -> int:
        """The key of ``tensor``: the same while it lives, never one a freed tensor had."""
        seen = self._seen
        i = id(tensor)
        entry = seen.get(i)
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        key = self._made
        self._made = key + 1
        seen[i] = (weakref.ref(tensor), key)
        return key

    def keys(self, tree: Any) -> tuple[int, ...]:
        """Keys of the tensors among an op's arguments or outputs (one level of lists, as for ``cat``)."""
        if isinstance(tree, torch.Tensor):
            return (self(tree),)
        keys: list[int] = []
        for x in tree if isinstance(tree, (tuple, list)) else ():
            if isinstance(x, torch.Tensor):
                keys.append(self(x))
            elif isinstance(x, (tuple, list)):
                keys.extend(self(t) for t in x if isinstance(t, torch.Tensor))
        return tuple(keys)


def _flow(
    keys: TensorKeys,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    out: Any,
    writes: tuple[int | str, ...],
    view: int,
) -> Flow | None:
    """The op's :data:`Flow` (its tensors' ``keys``), or ``None`` when it neither reads nor makes a tensor."""
    ins = keys.keys(args)
    if kwargs:
        ins += keys.keys(tuple(kwargs.values()))
    outs = keys.keys(out)
    if not ins and not outs:
        return None
    written: tuple[int, ...] = ()
    if writes:
        found: list[int] = []
        for w in writes:
            t = kwargs.get(w) if isinstance(w, str) else (args[w] if w < len(args) else kwargs.get(str(w)))
            found.extend(keys.keys(t if isinstance(t, (tuple, list)) else (t,)))
        written = tuple(found)
    source = args[view] if 0 <= view < len(args) else None
    return ins, outs, written, keys(source) if isinstance(source, torch.Tensor) else None


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
_OVERLOADS: dict[
    OpOverload, tuple[str, str, Callable[..., torch.Tensor] | None, tuple[int | str, ...], int]
] = {}


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
        self.keys = TensorKeys()  # the identity keys of OpCall.flow, OpTrace.output_key and state_keys

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
            call.output = to_meta(output)


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
    key = recorder.keys
    state = {key(x)}
    state.update(key(t) for t in model.parameters())
    state.update(key(t) for t in model.buffers())
    if param_overrides:
        state.update(key(t) for t in param_overrides.values())
    recorder.trace.state_keys = frozenset(state)
    with recorder.modules, _FunctionRecorder(recorder), _DispatchRecorder(recorder), torch.no_grad():
        if param_overrides:
            out = torch.func.functional_call(model, param_overrides, (x,), strict=False, tie_weights=True)
        else:
            out = model(x)
    if isinstance(out, torch.Tensor):
        recorder.trace.output_key = key(out)
    return out


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

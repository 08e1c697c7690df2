"""Record every storage allocation and free of one eager forward pass at the dispatch level.

The same recorder serves the fake replay (tensors under ``FakeTensorMode``: no arithmetic, no memory) and the real
CPU replay (real tensors), so that the two can be compared. It tracks *storages*, not tensors: an op output whose
storage is already live (a view, an in-place op, ``out=``) allocates nothing; a storage is freed when its last
reference dies, which a ``StorageWeakRef`` (a weak reference to the C++ ``StorageImpl``) reports. Frees are
collected before every op, so they land between the op that last held the storage and the next allocation, as in
eager execution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch._ops import OpOverload
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..base.modules import ModuleStack
from .conv_signature import ConvSignature, conv_call


@dataclass
class StorageRec:
    """One storage seen during the replay."""

    sid: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    kind: str  # "parameter", "buffer", "input", "external" or "activation"
    name: str  # parameter/buffer name, "input", or the producing module
    producer_op: int | None = None  # op index that allocated it (activations)
    free_before: int | None = None  # index of the first op after its free; None: alive at the end
    uses: list[int] = field(default_factory=list)  # op indices that read or wrote it


@dataclass
class OpRec:
    """One aten op of the forward pass."""

    index: int
    name: str  # e.g. "aten.convolution.default"
    module: str  # qualified name of the innermost module ("" for the model itself)
    module_stack: tuple[str, ...]
    inputs: list[int]  # storage ids read (tensor arguments)
    outputs: list[int]  # storage ids the op allocated (new storages)
    aliases: list[int]  # storage ids the op returned without allocating (views, in-place)
    frees_before: list[int] = field(
        default_factory=list
    )  # storages freed between the previous op and this one
    conv: tuple[ConvSignature, tuple[int, ...]] | None = None  # a convolution's signature and input shape


@dataclass
class StorageTrace:
    """The record of one forward pass: resident storages, ops, the output's storages."""

    storages: list[StorageRec]
    ops: list[OpRec]
    resident: list[
        int
    ]  # sids allocated before the forward (parameters, buffers, input; external found later)
    output: list[int]  # sids alive at the end (the output and anything else kept)
    modules: dict[str, str]  # qualified name -> class name
    leaves: set[str] = field(default_factory=set)  # modules without children
    output_shape: tuple[int, ...] | None = None  # the forward's output shape, when it returns one tensor
    output_requires_grad: bool = False  # autograd recorded a graph to the output (what it saves stays alive)


_LIFT_FRESH = {torch.ops.aten.lift_fresh.default, torch.ops.aten.lift_fresh_copy.default}
_CONVOLUTION = torch.ops.aten.convolution.default


class StorageTracker(TorchDispatchMode):
    """A dispatch mode recording allocations and frees of storages on one device."""

    def __init__(self, device: torch.device, modules: ModuleStack) -> None:
        super().__init__()
        self.device = device
        self.modules = modules
        self.storages: list[StorageRec] = []
        self.ops: list[OpRec] = []
        self.resident: list[int] = []
        self._by_key: dict[int, tuple[StorageWeakRef, int]] = {}  # StorageImpl address -> (weak ref, sid)
        self._watch: dict[int, int] = {}  # activation storages to poll for frees: key -> sid
        self._pending_frees: list[int] = []

    # -- storages -----------------------------------------------------------------------------------------------
    def _key(self, t: torch.Tensor) -> tuple[int, torch.UntypedStorage] | None:
        if t.device != self.device:
            return None
        st = t.untyped_storage()
        return st._cdata, st

    def lookup(self, t: torch.Tensor) -> int | None:
        """The storage id of a tensor, if its storage is tracked and alive."""
        k = self._key(t)
        if k is None:
            return None
        entry = self._by_key.get(k[0])
        if entry is None or entry[0].expired():
            return None
        return entry[1]

    def register(self, t: torch.Tensor, kind: str, name: str, producer_op: int | None = None) -> int | None:
        """Track the storage of ``t`` (a no-op returning the known id if it is already tracked)."""
        known = self.lookup(t)
        if known is not None:
            return known
        k = self._key(t)
        if k is None:
            return None
        key, st = k
        nbytes = st.nbytes()
        if nbytes == 0:
            return None
        sid = len(self.storages)
        self.storages.append(
            StorageRec(sid, int(nbytes), tuple(t.shape), t.dtype, kind, name, producer_op=producer_op)
        )
        self._by_key[key] = (StorageWeakRef(st), sid)
        if kind == "activation":
            self._watch[key] = sid
        else:  # parameters, buffers, the input, and tensors made before the forward that it meets
            self.resident.append(sid)
        return sid

    def collect_frees(self) -> list[int]:
        """Storages whose last reference died since the previous call."""
        dead = [key for key in self._watch if self._by_key[key][0].expired()]
        freed = []
        for key in dead:
            sid = self._watch.pop(key)
            del self._by_key[key]
            self.storages[sid].free_before = len(self.ops)
            freed.append(sid)
        return freed

    def alive_activations(self) -> list[int]:
        return [sid for key, sid in self._watch.items() if not self._by_key[key][0].expired()]

    # -- dispatch -----------------------------------------------------------------------------------------------
    def __torch_dispatch__(
        self,
        func: OpOverload,
        types: tuple[type, ...],
        args: tuple[object, ...] = (),
        kwargs: dict[str, object] | None = None,
    ) -> object:
        kwargs = kwargs or {}
        freed = self.collect_frees()
        index = len(self.ops)
        module = self.modules.current
        inputs: list[int] = []
        fresh = (
            func in _LIFT_FRESH
        )  # the argument is a constant just made (torch.tensor, from_numpy): not external
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor):
                sid = self.lookup(t)
                if (
                    sid is None and not fresh and self._key(t) is not None
                ):  # made before the forward, not a buffer
                    sid = self.register(t, "external", module or "<model>")
                if sid is not None and sid not in inputs:
                    inputs.append(sid)
        out = func(*args, **kwargs)
        if not any(isinstance(t, torch.Tensor) for t in tree_leaves(out)):
            return out  # metadata queries (e.g. prim.device on fake tensors) allocate nothing and are not recorded
        outputs: list[int] = []
        aliases: list[int] = []
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                sid = self.lookup(t)
                if sid is not None:
                    if sid not in aliases and sid not in outputs:
                        aliases.append(sid)
                    continue
                sid = self.register(t, "activation", module or "<model>", producer_op=index)
                if sid is not None:
                    outputs.append(sid)
        for sid in set(inputs) | set(aliases) | set(outputs):
            self.storages[sid].uses.append(index)
        conv = conv_call(args) if func is _CONVOLUTION else None
        self.ops.append(
            OpRec(index, str(func), module, self.modules.path(), inputs, outputs, aliases, freed, conv)
        )
        return out


def _resident_order(model: nn.Module) -> Iterable[tuple[str, torch.Tensor, str]]:
    """Parameters and buffers in the order ``model.to(device)`` allocates them (children first, as ``_apply``)."""
    seen: set[int] = set()

    def visit(m: nn.Module, prefix: str) -> Iterable[tuple[str, torch.Tensor, str]]:
        for cname, child in m.named_children():
            yield from visit(child, f"{prefix}{cname}.")
        for pname, p in m._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield f"{prefix}{pname}", p, "parameter"
        for bname, b in m._buffers.items():
            if b is not None and id(b) not in seen:
                seen.add(id(b))
                yield f"{prefix}{bname}", b, "buffer"

    yield from visit(model, "")


def record_forward(
    model: nn.Module,
    make_input: Callable[[], torch.Tensor],
    replace: dict[int, torch.Tensor] | None,
    device: torch.device,
    grad: bool = False,
) -> StorageTrace:
    """Run one forward of ``model`` under :class:`StorageTracker` and return the trace.

    ``replace`` maps ``id(tensor)`` of the model's parameters and buffers to stand-ins (fake tensors) that are
    swapped in through :func:`torch.func.functional_call`; ``None`` runs the model as it is. The forward runs
    under ``torch.no_grad()``, or with autograd on when ``grad`` (what autograd saves for a backward stays alive
    until the output dies, as in a harness that forgets ``no_grad``).
    """
    modules = ModuleStack(model)
    tracker = StorageTracker(device, modules)
    state = None
    if replace is not None:
        state = {n: replace[id(t)] for n, t in model.named_parameters(remove_duplicate=False)}
        state.update(
            {n: replace[id(t)] for n, t in model.named_buffers(remove_duplicate=False) if t is not None}
        )
    for name, t, kind in _resident_order(model):
        tracker.register(replace[id(t)] if replace is not None else t, kind, name)
    x = make_input()
    tracker.register(x, "input", "input")
    with torch.set_grad_enabled(grad), modules, tracker:
        if state is None:
            out = model(x)
        else:
            out = torch.func.functional_call(model, state, (x,))
        del x
        tracker.collect_frees()
    output = []
    for t in tree_leaves(out):
        if isinstance(t, torch.Tensor):
            sid = tracker.lookup(t)
            if sid is not None and sid not in output:
                output.append(sid)
    alive = [s for s in tracker.alive_activations() if s not in output]
    output_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    requires_grad = any(isinstance(t, torch.Tensor) and t.requires_grad for t in tree_leaves(out))
    del out
    return StorageTrace(
        tracker.storages,
        tracker.ops,
        tracker.resident,
        output + alive,
        dict(modules.types),
        set(modules.leaves),
        output_shape,
        requires_grad,
    )

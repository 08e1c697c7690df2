"""Guards around running other people's model code: importing, building and tracing a model must not break the
measurement, and a measurement must leave the model as it found it.

- :func:`left_as_found` snapshots every parameter, buffer and plain tensor attribute (a tensor in a module's
  ``__dict__``, also inside a list, tuple or dict there) with its values, device, dtype and ``requires_grad``,
  the module tree and the training flags, and puts all of it back on exit, also when the block raises. A forward
  that reassigns ``self.mean = self.mean.type_as(x)`` under a meta trace leaves the original tensor in place.
- :func:`tensor_attributes` / :func:`replace_tensor_attributes` find and swap those plain tensor attributes (the
  shapes-only replays give them meta or fake stand-ins; :func:`left_as_found` restores the originals).
- :func:`running_model_code` routes what model code prints to stderr (so ``--json`` output stays clean) and, on a
  host without CUDA, keeps ``.cuda()``, ``.to("cuda")``, ``nn.Module.cuda()`` and factory calls with a CUDA
  ``device=`` on the tensor's own device (CPU for new tensors), counting what it redirected;
  :func:`cuda_redirects` tells whether a model was built or traced that way. Never active where CUDA exists.
- :func:`data_dependent_errors`: what a shapes-only replay raises on value-dependent code (the cue to fall back
  to a real forward).
"""

from __future__ import annotations

import contextlib
import operator
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

_MODULE_SLOTS = frozenset({"_parameters", "_buffers", "_modules"})
# What every nn.Module keeps in its __dict__ (hook tables, flags): never a user's tensor, so never looked into.
_MODULE_INTERNALS = frozenset(vars(nn.Module())) | _MODULE_SLOTS


_PLAIN = frozenset({int, float, bool, str, type(None)})


def _holds_tensor(value: Any) -> bool:
    # Called on every attribute of every module, mostly ints and tuples of ints: the checks run in C where they can.
    kind = type(value)
    if kind in _PLAIN:
        return False
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return not all(map(_PLAIN.__contains__, map(type, value))) and any(
            isinstance(v, torch.Tensor) for v in value
        )
    if isinstance(value, dict):
        return any(isinstance(v, torch.Tensor) for v in value.values())
    return False


def _shallow(value: Any) -> Any:
    """A copy of a container's membership (its tensors are the same objects), the value itself otherwise."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _members(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    return [v for v in items if isinstance(v, torch.Tensor)]


def tensor_attributes(model: nn.Module) -> Iterator[tuple[nn.Module, str, Any]]:
    """``(module, name, value)`` for every attribute of every module of ``model`` that is a tensor, or a list,
    tuple or dict holding tensors, and is neither a parameter, a buffer nor a submodule."""
    for m in model.modules():
        for k, v in list(vars(m).items()):
            if k not in _MODULE_INTERNALS and _holds_tensor(v):
                yield m, k, v


def replace_tensor_attributes(
    model: nn.Module,
    convert: Callable[[torch.Tensor], torch.Tensor],
    found: Iterable[tuple[nn.Module, str, Any]] | None = None,
) -> None:
    """Set every plain tensor attribute of ``model`` (see :func:`tensor_attributes`, or ``found``: what a
    :class:`ModelSnapshot` of it saw) to ``convert(tensor)``; containers are rebuilt with their tensors
    converted. Undo it with :func:`left_as_found` around the use."""
    for m, k, v in list(tensor_attributes(model) if found is None else found):
        if isinstance(v, torch.Tensor):
            new: Any = convert(v)
        elif isinstance(v, dict):
            new = {kk: convert(t) if isinstance(t, torch.Tensor) else t for kk, t in v.items()}
        else:
            new = type(v)(convert(t) if isinstance(t, torch.Tensor) else t for t in v)  # type: ignore[call-arg]
        object.__setattr__(m, k, new)


@dataclass
class _TensorState:
    """A tensor as found: its metadata, an alias of its data (no copy) and, once :meth:`keep_values` ran, a copy
    of its values. A ``t.data = ...`` reassignment is undone with the alias; an in-place write needs the copy."""

    tensor: torch.Tensor
    version: int
    device: torch.device
    dtype: torch.dtype
    shape: torch.Size
    ptr: int
    requires_grad: bool
    data: torch.Tensor
    copy: torch.Tensor | None = None

    @classmethod
    def of(cls, t: torch.Tensor) -> _TensorState:
        d = t.detach()
        ptr = 0 if d.is_meta else d.data_ptr()
        return cls(t, t._version, t.device, t.dtype, t.shape, ptr, t.requires_grad, d)

    def keep_values(self) -> None:
        if self.copy is None:
            self.copy = self.data.clone()

    def changed(self) -> bool:
        t = self.tensor
        if t._version != self.version or t.device != self.device or t.dtype != self.dtype:
            return True
        return t.shape != self.shape or (not t.is_meta and t.data_ptr() != self.ptr)

    def _swapped(self) -> bool:
        """The tensor holds other data than the alias (``t.data = ...``; a write in place keeps the storage)."""
        t = self.tensor
        if t.device != self.data.device or t.dtype != self.data.dtype or t.shape != self.data.shape:
            return True
        return not t.is_meta and t.data_ptr() != self.ptr

    def restore(self) -> None:
        t = self.tensor
        if self.changed():
            if self.copy is not None:
                source = self.copy.clone()  # the copy stays apart, so restoring again restores again
            elif self._swapped() or self.data.is_meta:
                # swapped (t.data = ...): the alias holds the storage as found (meta tensors hold no values)
                source = self.data
            else:
                raise RuntimeError(
                    f"a tensor of shape {tuple(self.shape)} was written in place where no copy of it was kept "
                    "(left_as_found(copy_values=False) around code that writes the model's own tensors)"
                )
            with torch.no_grad():
                t.data = source
            self.version, self.ptr = t._version, 0 if t.is_meta else t.data_ptr()
        if t.requires_grad != self.requires_grad and t.is_leaf:
            t.requires_grad_(self.requires_grad)


@dataclass
class _ModuleState:
    module: nn.Module
    training: bool
    slots: dict[str, dict[str, Any]]  # _parameters, _buffers, _modules: name -> object
    attributes: dict[str, Any]  # tensor-holding attributes: name -> (shallow copy of) value


@dataclass
class ModelSnapshot:
    """What :func:`left_as_found` puts back."""

    modules: list[_ModuleState] = field(default_factory=list)
    tensors: list[_TensorState] = field(default_factory=list)
    watching: bool = True  # the tensors' states are taken (else only at keep_values)

    def keep_values(self) -> None:
        """Copy the values of every tensor now (once), so that in-place writes after this are undone too; a
        snapshot taken without watching its tensors takes their states first (from the structure as found)."""
        if not self.watching:
            self._watch()
        for t in self.tensors:
            t.keep_values()

    def _watch(self) -> None:
        seen: set[int] = set()
        for s in self.modules:
            found = [*s.slots["_parameters"].values(), *s.slots["_buffers"].values()]
            for v in s.attributes.values():
                found.extend(_members(v))
            for t in found:
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    self.tensors.append(_TensorState.of(t))
        self.watching = True

    @classmethod
    def of(cls, model: nn.Module, watch_tensors: bool = True) -> ModelSnapshot:
        """The model's structure (submodules, parameter and buffer tables, tensor attributes, training flags)
        and, with ``watch_tensors``, each tensor's state (undoing ``t.data = ...`` and device or dtype moves)."""
        snap = cls(watching=False)
        for m in model.modules():
            d = vars(m)
            slots = {k: dict(d[k]) for k in _MODULE_SLOTS}
            attributes = {
                k: _shallow(v) for k, v in d.items() if k not in _MODULE_INTERNALS and _holds_tensor(v)
            }
            snap.modules.append(_ModuleState(m, m.training, slots, attributes))
        if watch_tensors:
            snap._watch()
        return snap

    def tensor_attributes(self) -> Iterator[tuple[nn.Module, str, Any]]:
        """The plain tensor attributes as found (what :func:`tensor_attributes` gave then), without a new walk."""
        for s in self.modules:
            for k, v in s.attributes.items():
                yield s.module, k, v

    def restore(self) -> None:
        for s in self.modules:
            m = s.module
            for slot, content in s.slots.items():
                current = vars(m)[slot]
                if list(current) != list(content) or not all(
                    map(operator.is_, current.values(), content.values())
                ):
                    current.clear()
                    current.update(content)
            attributes = vars(m)
            for k in attributes.keys() - _MODULE_INTERNALS - s.attributes.keys():
                if _holds_tensor(attributes[k]):
                    del attributes[k]  # a tensor attribute the block added
            for k, v in s.attributes.items():
                object.__setattr__(m, k, _shallow(v))
            if m.training != s.training:
                m.training = s.training
        for t in self.tensors:
            t.restore()


@contextlib.contextmanager
def left_as_found(model: nn.Module, copy_values: bool = True) -> Iterator[ModelSnapshot]:
    """Run a block that uses ``model`` and put every parameter, buffer, plain tensor attribute, submodule and
    training flag back as it was on exit (also on an exception): same objects, same values, same device.

    ``copy_values=False`` copies no tensor and watches none up front, for a block that cannot reach the model's
    own tensors (a shapes-only replay with stand-ins in the modules' tables): the structure is put back all
    the same, and the block calls ``snapshot.keep_values()`` before any code that could reach them."""
    snap = ModelSnapshot.of(model, watch_tensors=copy_values)
    if copy_values:
        snap.keep_values()
    try:
        yield snap
    finally:
        snap.restore()


# -- running model code ------------------------------------------------------------------------------------------

_FACTORIES = frozenset(
    getattr(torch, n)
    for n in (
        "empty",
        "zeros",
        "ones",
        "full",
        "rand",
        "randn",
        "randint",
        "randperm",
        "arange",
        "linspace",
        "logspace",
        "eye",
        "tensor",
        "as_tensor",
        "empty_like",
        "zeros_like",
        "ones_like",
        "full_like",
        "rand_like",
        "randn_like",
        "randint_like",
        "from_numpy",
        "scalar_tensor",
    )
    if hasattr(torch, n)
)


def _is_cuda(device: object) -> bool:
    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device.split(":")[0] == "cuda"
    return False


def _same_tensor(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return t


def redirect_cuda(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], redirects: Counter[str]
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The call to make instead of ``func(*args, **kwargs)`` on a host without CUDA: a CUDA request kept on the
    tensor's own device (new tensors: CPU) and counted in ``redirects``; any other call unchanged. For a
    :class:`~torch.overrides.TorchFunctionMode` that already sees every call (the counting trace's recorder)."""
    if func is torch.Tensor.cuda:
        redirects["Tensor.cuda"] += 1
        return _same_tensor, args, kwargs
    if func is torch.Tensor.to:
        if any(_is_cuda(a) for a in args[1:]) or _is_cuda(kwargs.get("device")):
            redirects["Tensor.to(cuda)"] += 1
            own = args[0].device
            args = tuple(own if _is_cuda(a) else a for a in args)
            if "device" in kwargs:
                kwargs = {**kwargs, "device": own}
    elif func in _FACTORIES and _is_cuda(kwargs.get("device")):
        redirects[f"{func.__name__}(device=cuda)"] += 1
        kwargs = {**kwargs, "device": "cpu"}
    return func, args, kwargs


class _CudaRedirect(TorchFunctionMode):
    """Keeps CUDA requests on the tensor's own device (new tensors: CPU), counting them by call."""

    def __init__(self, redirects: Counter[str]) -> None:
        super().__init__()
        self.redirects = redirects

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        func, args, kwargs = redirect_cuda(func, args, kwargs or {}, self.redirects)
        return func(*args, **kwargs)


_REDIRECTED: weakref.WeakKeyDictionary[nn.Module, Counter[str]] = weakref.WeakKeyDictionary()


@dataclass
class ModelCodeGuard:
    """What :func:`running_model_code` saw: ``cuda_redirects`` counts the CUDA requests kept on the CPU."""

    cuda_redirects: Counter[str] = field(default_factory=Counter)
    models: list[nn.Module] = field(default_factory=list)

    def attach(self, model: nn.Module) -> nn.Module:
        """Remember this block's redirects against ``model`` when it ends (see :func:`cuda_redirects`)."""
        self.models.append(model)
        return model


@contextlib.contextmanager
def running_model_code(model: nn.Module | None = None, redirect: bool = True) -> Iterator[ModelCodeGuard]:
    """Run model code (import, constructor, checkpoint load, forward): its prints go to stderr and, when
    ``torch.cuda.is_available()`` is False, its CUDA requests stay on the CPU (or the tensor's own device, e.g.
    meta during a trace). On exit the redirects are remembered against ``model`` and every attached model.

    ``redirect=False``: the caller's own torch-function mode applies :func:`redirect_cuda` with
    ``guard.cuda_redirects`` (one mode on every call instead of two)."""
    guard = ModelCodeGuard(models=[] if model is None else [model])
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        if redirect and not torch.cuda.is_available():
            stack.enter_context(_CudaRedirect(guard.cuda_redirects))
        try:
            yield guard
        finally:
            if guard.cuda_redirects:
                for m in guard.models:
                    _REDIRECTED.setdefault(m, Counter()).update(guard.cuda_redirects)


def data_dependent_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a shapes-only (fake) replay raises when the model's control flow or output shapes depend
    on tensor values (``.item()``, ``nonzero``, ``if x.max() > 0``): only a real forward can run such a model."""
    from torch._subclasses import fake_tensor

    names = ("DataDependentOutputException", "DynamicOutputShapeException", "UnsupportedOperatorException")
    errs: list[type[BaseException]] = [getattr(fake_tensor, n) for n in names if hasattr(fake_tensor, n)]
    try:
        from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

        errs.append(GuardOnDataDependentSymNode)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def cuda_redirects(model: nn.Module) -> dict[str, int]:
    """The CUDA requests of ``model``'s code that :func:`running_model_code` kept on the CPU, by call (empty
    when none, and always where CUDA exists)."""
    return dict(_REDIRECTED.get(model, {}))

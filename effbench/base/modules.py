"""One module-stack hook for every tracer: which module of the model is running right now.

:class:`ModuleStack` registers global forward pre/post hooks (``torch.nn.modules.module``), so nothing is attached
to the model itself, and removes them on exit. It keeps the stack of running modules with their qualified names,
plus the model's module types and leaf set. Modules called during the forward that are not part of the model
(built on the fly) get the name ``parent.<TypeName>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.modules import module as _module


@dataclass
class Frame:
    """One running ``module(...)`` call; ``data`` is what the ``on_enter`` callback returned for it."""

    module: nn.Module
    name: str
    in_model: bool
    data: Any = None


class ModuleStack:
    """Context manager tracking the running module of ``model`` through global forward hooks.

    ``on_enter(frame, args)`` runs when a module is entered (its return value is kept as ``frame.data``);
    ``on_exit(frame, output)`` when it returns. The post hook runs even when the forward raises (``always_call``
    where torch has it), and pops the frame of the module that returned.
    """

    def __init__(
        self,
        model: nn.Module,
        on_enter: Callable[[Frame, Any], Any] | None = None,
        on_exit: Callable[[Frame, Any], None] | None = None,
    ) -> None:
        self.names: dict[int, str] = {}
        self.types: dict[str, str] = {}
        self.leaves: set[str] = set()
        for name, mod in model.named_modules(remove_duplicate=False):
            if id(mod) in self.names:
                continue  # a shared module keeps its first name
            self.names[id(mod)] = name
            self.types[name] = type(mod).__name__
            if next(mod.children(), None) is None:
                self.leaves.add(name)
        self.stack: list[Frame] = []
        self._on_enter = on_enter
        self._on_exit = on_exit
        self._handles: list[Any] = []

    @property
    def current(self) -> str:
        """Qualified name of the innermost running module ("" for the model itself or outside any module)."""
        return self.stack[-1].name if self.stack else ""

    @property
    def current_in_model(self) -> str:
        """Qualified name of the innermost running module that belongs to the model."""
        for frame in reversed(self.stack):
            if frame.in_model:
                return frame.name
        return ""

    def path(self) -> tuple[str, ...]:
        """The names of the running modules, outermost first."""
        return tuple(f.name for f in self.stack)

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        name = self.names.get(id(module))
        in_model = name is not None
        if name is None:
            kind = type(module).__name__
            name = f"{self.current}.<{kind}>" if self.current else f"<{kind}>"
            self.types.setdefault(name, kind)
        frame = Frame(module, name, in_model)
        if self._on_enter is not None:
            frame.data = self._on_enter(frame, args)
        self.stack.append(frame)

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        while self.stack:
            frame = self.stack.pop()
            if frame.module is module:
                if self._on_exit is not None:
                    self._on_exit(frame, output)
                break

    def __enter__(self) -> ModuleStack:
        self._handles = [_module.register_module_forward_pre_hook(self._pre)]
        try:
            self._handles.append(_module.register_module_forward_hook(self._post, always_call=True))
        except TypeError:  # torch without always_call
            self._handles.append(_module.register_module_forward_hook(self._post))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self.stack.clear()

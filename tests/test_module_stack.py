"""effbench.base.modules.ModuleStack: the one module-stack hook of the counting and memory tracers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as module_mod

from effbench.base.modules import ModuleStack


class _Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.ReLU()(self.conv(x))  # a module built on the fly: not part of the model


class _Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _Inner()
        self.again = self.body  # shared: keeps its first name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.again(self.body(x))


def test_names_types_and_leaves_of_the_running_modules() -> None:
    model = _Outer()
    seen: list[tuple[str, bool, tuple[str, ...]]] = []
    stack = ModuleStack(model, on_enter=lambda f, args: seen.append((f.name, f.in_model, stack.path())))
    with stack:
        model(torch.zeros(1, 3, 4, 4))
    assert seen[:4] == [
        ("", True, ()),
        ("body", True, ("",)),
        ("body.conv", True, ("", "body")),
        ("body.<ReLU>", False, ("", "body")),
    ]
    assert [name for name, _, _ in seen].count("body") == 2 and "again" not in [n for n, _, _ in seen]
    assert stack.types["body"] == "_Inner" and stack.types["body.<ReLU>"] == "ReLU"
    assert stack.leaves == {"body.conv"}
    assert stack.stack == []


def test_current_in_model_skips_modules_built_on_the_fly() -> None:
    model = _Outer()
    at_relu: list[tuple[str, str]] = []

    def enter(frame, args):
        if not frame.in_model:
            at_relu.append((stack.current, stack.current_in_model))

    stack = ModuleStack(model, on_enter=enter)
    with stack:
        model(torch.zeros(1, 3, 4, 4))
    assert at_relu[0] == ("body", "body")


def test_on_exit_sees_the_output_and_hooks_are_removed_even_when_forward_raises() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 1))
    shapes: dict[str, tuple[int, ...]] = {}
    before = (len(module_mod._global_forward_pre_hooks), len(module_mod._global_forward_hooks))
    with ModuleStack(model, on_exit=lambda f, out: shapes.__setitem__(f.name, tuple(out.shape))):
        model(torch.zeros(1, 3, 4, 4))
    assert shapes == {"0": (1, 2, 4, 4), "": (1, 2, 4, 4)}
    stack = ModuleStack(model)
    try:
        with stack:
            model(torch.zeros(1, 5, 4, 4))  # wrong channel count
    except RuntimeError:
        pass
    assert stack.stack == []
    assert (len(module_mod._global_forward_pre_hooks), len(module_mod._global_forward_hooks)) == before

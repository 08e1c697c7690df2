"""Name the ATen op and the module behind a failed export or compile.

The op comes from the exception's text (``aten::fft_rfft2``, ``aten.special_erfcx.default``); the module from one
eager forward under :class:`~effbench.base.modules.ModuleStack` that notes which module of the model first calls
that op, seen both as a torch function and as a dispatched ATen op (so composite ops such as ``fft_rfft2`` are found).
"""

from __future__ import annotations

import re
import traceback
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..base.modules import ModuleStack
from .registry import ExportError

__all__ = ["failed_op", "module_calling", "export_failure"]

_OP = re.compile(r"aten(?:::|\.)([A-Za-z_][A-Za-z0-9_]*)")


def failed_op(exc: BaseException) -> str | None:
    """The first ATen op named in ``exc``'s message, its causes' or its traceback (``aten::name``)."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    texts.append("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for text in texts:
        m = _OP.search(text)
        if m:
            return f"aten::{m.group(1)}"
    return None


def module_calling(model: nn.Module, example: torch.Tensor, op: str) -> tuple[str, str] | None:
    """``(qualified name, type)`` of the model's module that first runs ``op`` (``aten::name``) on ``example``,
    ``("", type)`` for the model's own forward; None when the op is not called or the forward fails."""
    name = op.split("::")[-1]
    found: list[str] = []

    def hit(func_name: str, stack: ModuleStack) -> None:
        if not found and func_name == name:
            found.append(stack.current_in_model)

    with ModuleStack(model) as stack:

        class Functions(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                hit(getattr(func, "__name__", ""), stack)
                return func(*args, **(kwargs or {}))

        class Dispatch(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                hit(func._schema.name.split("::")[-1], stack)
                return func(*args, **(kwargs or {}))

        try:
            with torch.no_grad(), Functions(), Dispatch():
                model(example)
        except Exception:
            return None
    if not found:
        return None
    return found[0], stack.types.get(found[0], type(model).__name__)


def export_failure(what: str, model: nn.Module, example: torch.Tensor, exc: BaseException) -> ExportError:
    """An :class:`ExportError` for ``exc`` raised by ``what`` (e.g. ``ONNX export``), naming op and module."""
    first = (str(exc).strip().splitlines() or [""])[0]
    op = failed_op(exc)
    where = ""
    if op is not None:
        mod = module_calling(model, example, op)
        where = f" at {op}"
        if mod is not None:
            where += f" in module {mod[0] or '(the model itself)'} ({mod[1]})"
    return ExportError(f"{what} failed{where}: {type(exc).__name__}: {first}")

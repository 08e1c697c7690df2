"""The backend registry and what a backend returns (:class:`Prepared`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..base.errors import ModelError, UsageError

__all__ = [
    "Backend",
    "BackendUnavailable",
    "ExportError",
    "Prepared",
    "backend_names",
    "get_backend",
    "prepare",
    "register_backend",
]


class BackendUnavailable(ModelError):
    """The backend cannot run here (a package or execution provider is missing); the message says which."""

    status = "error"


class ExportError(ModelError):
    """Exporting or compiling the model failed; the message names the op and module where it can."""

    status = "error"


@dataclass
class Prepared:
    """A model ready to run under one backend: ``fn(x)`` takes and returns tensors on the cell's device.

    ``export_seconds`` is the export or compile time (for ``compile`` it includes the first call, which is when
    torch.compile compiles); ``artifact_bytes`` the size of the exported file (ONNX) where there is one.
    """

    backend: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    export_seconds: float | None = None
    artifact_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_module(self, model: nn.Module) -> nn.Module:
        """An ``nn.Module`` calling :attr:`fn` that owns ``model``'s parameters (for code that toggles their
        ``requires_grad`` or puts it in eval mode, like the NTIRE protocol)."""
        return _Runner(model, self.fn)


class _Runner(nn.Module):
    def __init__(self, model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)


PrepareFn = Callable[[nn.Module, torch.Tensor], Prepared]


@dataclass(frozen=True)
class Backend:
    """A registered backend: ``prepare(model, example)`` with the model and example on the cell's device and
    in its dtype."""

    name: str
    help: str
    prepare: PrepareFn


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, help: str) -> Callable[[PrepareFn], PrepareFn]:
    """Decorator registering ``prepare(model, example) -> Prepared`` as backend ``name``."""

    def deco(fn: PrepareFn) -> PrepareFn:
        if name in _BACKENDS and _BACKENDS[name].prepare is not fn:
            raise UsageError(f"backend {name!r} is registered twice")
        _BACKENDS[name] = Backend(name, help, fn)
        return fn

    return deco


def backend_names() -> list[str]:
    """The registered backends, ``eager`` first."""
    return sorted(_BACKENDS, key=lambda n: (n != "eager", n))


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a :class:`UsageError` listing the known ones otherwise."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}: use {', '.join(backend_names())}") from None


def prepare(model: nn.Module, example: torch.Tensor, backend: str = "eager") -> Prepared:
    """Prepare ``model`` (in eval mode, on ``example``'s device and dtype) under ``backend``, once."""
    return get_backend(backend).prepare(model, example)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0

"""The backend registry and what a backend returns (:class:`Prepared`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.inputs import DTYPES

__all__ = [
    "Backend",
    "BackendUnavailable",
    "ExportError",
    "Prepared",
    "backend_names",
    "dtype_names",
    "get_backend",
    "model_dtype",
    "prepare",
    "register_backend",
    "register_quantisation",
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


class QuantiseFn(Protocol):
    """A post-training quantisation: the fp32 ``model`` and ``example`` (values in ``0..data_range``), calibrated
    on the LR images of the ``calibration`` folders, prepared to return fp32 outputs."""

    def __call__(
        self,
        model: nn.Module,
        example: torch.Tensor,
        data_range: float = 1.0,
        *,
        calibration: Sequence[str | Path] = (),
    ) -> Prepared: ...


_QUANTISATIONS: dict[tuple[str, str], QuantiseFn] = {}


def register_quantisation(backend: str, dtype: str) -> Callable[[QuantiseFn], QuantiseFn]:
    """Decorator registering ``quantise(model, example, data_range, *, calibration) -> Prepared`` as backend
    ``backend``'s post-training quantisation to ``dtype`` (``int8``): it takes the fp32 model and input (values
    in ``0..data_range``) and the folders of its calibration images, and returns fp32 outputs."""

    def deco(fn: QuantiseFn) -> QuantiseFn:
        if dtype in DTYPES:
            raise UsageError(f"{dtype} is a torch dtype, not a quantisation")
        _QUANTISATIONS[(backend, dtype)] = fn
        return fn

    return deco


def dtype_names() -> list[str]:
    """The dtypes a cell may ask for: torch's (``fp32``, ``fp16``, ``bf16``), then the quantisations."""
    return [*DTYPES, *sorted({d for _, d in _QUANTISATIONS})]


def model_dtype(backend: str, dtype: str) -> torch.dtype:
    """The torch dtype the model and its input take for ``dtype`` under ``backend``: fp32 for a quantisation,
    which the backend does itself; a :class:`UsageError` for an unknown dtype or a quantisation ``backend``
    does not offer."""
    if dtype in DTYPES:
        return DTYPES[dtype]
    offered = sorted(b for b, d in _QUANTISATIONS if d == dtype)
    if not offered:
        raise UsageError(f"unknown dtype {dtype!r}: use {', '.join(dtype_names())}")
    if backend not in offered:
        raise UsageError(
            f"{dtype} is a post-training quantisation that backend {backend} does not offer: use --backend "
            f"{' or '.join(offered)}"
        )
    return torch.float32


def prepare(
    model: nn.Module,
    example: torch.Tensor,
    backend: str = "eager",
    dtype: str = "fp32",
    data_range: float = 1.0,
    *,
    calibration: Sequence[str | Path] = (),
) -> Prepared:
    """Prepare ``model`` (in eval mode, on ``example``'s device and dtype) under ``backend``, once; a quantised
    ``dtype`` (``int8``) is the backend's post-training quantisation of the fp32 model, calibrated on the LR
    images of the ``calibration`` folders (inputs in ``0..data_range``); other dtypes ignore ``calibration``."""
    get_backend(backend)
    model_dtype(backend, dtype)
    quantise = _QUANTISATIONS.get((backend, dtype))
    if quantise is None:
        return get_backend(backend).prepare(model, example)
    return quantise(model, example, data_range, calibration=calibration)


_T = TypeVar("_T")


def timed(fn: Callable[[], _T]) -> tuple[_T, float]:
    """``fn()`` and the seconds it took."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0

"""``compile``: ``torch.compile`` (inductor); compiled on the first call, which :class:`Prepared` times."""

from __future__ import annotations

import torch
from torch import nn

from .diagnostics import export_failure
from .registry import Prepared, register_backend, timed


@register_backend("compile", "torch.compile (inductor), compiled once on the example input")
def prepare_compile(model: nn.Module, example: torch.Tensor) -> Prepared:
    fn = torch.compile(model)
    try:
        with torch.inference_mode():
            _, seconds = timed(lambda: fn(example))
    except Exception as exc:
        raise export_failure("torch.compile", model, example, exc) from exc
    return Prepared("compile", fn, export_seconds=seconds, details={"compiler": "inductor"})

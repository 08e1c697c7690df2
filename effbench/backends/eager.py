"""``eager``: the model as PyTorch runs it (the reference every other backend is compared with)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import Prepared, register_backend


@register_backend("eager", "PyTorch eager mode")
def prepare_eager(model: nn.Module, example: torch.Tensor) -> Prepared:
    return Prepared("eager", model)

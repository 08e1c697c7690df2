"""An attention block to add to the paper's Table 2 (README: ``effbench study attention --attention
Mine=examples/my_blocks.py:Gate``): called as ``Gate(n_feats, **kwargs)``, it maps features to features of the
same shape."""

from __future__ import annotations

import torch
from torch import nn


class Gate(nn.Module):
    """A pixel-wise sigmoid gate: ``x * sigmoid(conv_k(x))``."""

    def __init__(self, c: int, k: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))

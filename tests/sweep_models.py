"""User models for the timing and sweep tests (loaded through ``tests/sweep_models.py:Name`` specs).

Cheap x-``scale`` upsamplers (nearest neighbour) plus a 1x1 convolution so that they have parameters, and
deliberately broken variants: one raises, one returns the wrong shape, one returns NaN.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F


class Nearest(nn.Module):
    """A working x``scale`` model: 1x1 convolution then nearest upsampling."""

    sleep_s = 0.0

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return F.interpolate(self.conv(x), scale_factor=self.scale, mode="nearest")


class Sleep20ms(Nearest):
    """Sleeps 20 ms per forward and does nothing else worth timing: the timer must read 20 ms."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.020)
        n, c, h, w = x.shape
        return x.new_zeros(n, c, h * self.scale, w * self.scale)


class SlowA(Nearest):
    sleep_s = 0.05


class SlowB(Nearest):
    sleep_s = 0.05


class SlowC(Nearest):
    sleep_s = 0.05


class Raises(Nearest):
    """Fails in forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model always fails")


class WrongShape(Nearest):
    """Upsamples x2 whatever the scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode="nearest")


class NaNOutput(Nearest):
    """Returns NaN everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * float("nan")


class Hangs(Nearest):
    """Sleeps far longer than any sensible per-cell timeout."""

    sleep_s = 600.0

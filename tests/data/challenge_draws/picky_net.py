"""A test entry that routes by its input's mean and refuses values outside an image's range (as a model converting
a statistic of its input to an int can fail on what uninitialised memory holds)."""

import torch
from torch import nn


class PickyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.narrow = nn.Conv2d(3, 48, 3, padding=1)
        self.wide = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 48, 3, padding=1))
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.abs().max() > 255):
            raise ValueError("input out of range")
        branch = self.wide if bool(x.mean() > 0.25) else self.narrow
        return self.shuffle(branch(x))

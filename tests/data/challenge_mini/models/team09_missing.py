import effbench_no_such_package  # noqa: F401
import torch.nn as nn


class MissingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, 1, 1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        return self.up(self.conv(x))

import torch.nn as nn

from .blocks import Block


class PkgNet(nn.Module):
    def __init__(self, channels=8, blocks=2, scale=4):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, 1, 1)
        self.body = nn.Sequential(*[Block(channels) for _ in range(blocks)])
        self.tail = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        return self.tail(self.body(self.head(x)))

import torch.nn as nn


class DataDepNet(nn.Module):
    """Control flow on a tensor's value (aten._local_scalar_dense)."""

    def __init__(self, channels=8, scale=4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, 1, 1)
        self.extra = nn.Conv2d(channels, channels, 3, 1, 1)
        self.up = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        f = self.conv(x)
        # a Python branch on a tensor's value (aten._local_scalar_dense); always taken, whatever the input (the
        # organisers' hook tool feeds an uninitialised torch.FloatTensor, which may hold NaN)
        if f.new_ones(1).sum().item() > 0:
            f = self.extra(f)
        return self.up(f)

import torch.nn as nn


class SameNet(nn.Module):
    """padding='same' convolutions: fvcore sees aten::_convolution_mode and counts them 0."""

    def __init__(self, channels=8, scale=4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding="same")
        self.mid = nn.Conv2d(channels, channels, 5, padding="same")
        self.up = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        return self.up(self.mid(self.conv(x)))

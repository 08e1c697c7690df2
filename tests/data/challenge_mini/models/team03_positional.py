import torch.nn as nn


class PosNet(nn.Module):
    def __init__(self, in_channels, channels, scale, blocks=1):
        super().__init__()
        layers = [nn.Conv2d(in_channels, channels, 3, 1, 1)]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 1), nn.GELU()]
        layers += [nn.Conv2d(channels, in_channels * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

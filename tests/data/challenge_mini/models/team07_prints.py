import torch.nn as nn

print("team07: importing the model file")


class PrintNet(nn.Module):
    def __init__(self, channels=8, scale=4):
        super().__init__()
        print("team07: building PrintNet")
        self.conv = nn.Conv2d(3, channels, 3, 1, 1)
        self.up = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x):
        print("team07: forward", tuple(x.shape))
        return self.up(self.conv(x))

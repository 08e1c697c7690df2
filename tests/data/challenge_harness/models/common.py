from torch import nn


class Plain(nn.Module):
    """conv(3 -> 64) -> ReLU -> conv(64 -> 48) -> PixelShuffle(4): x4 SR with known tensor sizes."""

    def __init__(self, channels=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        return self.shuffle(self.conv2(self.act(self.conv1(x))))

import torch
import torch.nn as nn


class RepConv(nn.Module):
    """Train form: a 3x3 and a 1x1 branch; `fuse()` folds them into one 3x3 convolution."""

    def __init__(self, feats):
        super().__init__()
        self.conv3 = nn.Conv2d(feats, feats, 3, 1, 1)
        self.conv1 = nn.Conv2d(feats, feats, 1)
        self.fused = None

    def fuse(self):
        fused = nn.Conv2d(self.conv3.in_channels, self.conv3.out_channels, 3, 1, 1)
        with torch.no_grad():
            fused.weight.copy_(self.conv3.weight + nn.functional.pad(self.conv1.weight, (1, 1, 1, 1)))
            fused.bias.copy_(self.conv3.bias + self.conv1.bias)
        self.fused = fused
        del self.conv3, self.conv1

    def forward(self, x):
        if self.fused is not None:
            return self.fused(x)
        return self.conv3(x) + self.conv1(x)


class RepNet(nn.Module):
    def __init__(self, feats=8, img_range=255.0):
        super().__init__()
        self.img_range = img_range
        self.head = nn.Conv2d(3, feats, 3, 1, 1)
        self.body = nn.Sequential(RepConv(feats), nn.ReLU(), RepConv(feats))
        self.tail = nn.Sequential(nn.Conv2d(feats, 3 * 16, 3, 1, 1), nn.PixelShuffle(4))

    def repa(self):
        for m in self.modules():
            if isinstance(m, RepConv):
                m.fuse()

    def forward(self, x):
        f = self.head(x * self.img_range)
        return self.tail(f + self.body(f))

import torch.nn as nn


class Base(nn.Module):
    def __init__(self, feats=8, img_range=255.0):
        super().__init__()
        self.img_range = img_range
        self.head = nn.Conv2d(3, feats, 3, 1, 1)
        self.tail = nn.Sequential(nn.Conv2d(feats, 3 * 16, 3, 1, 1), nn.PixelShuffle(4))

    def forward(self, x):
        return self.tail(self.head(x * self.img_range))

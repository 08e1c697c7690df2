import torch.nn as nn
from models.common import Upsampler, conv3


class CommonNet(nn.Module):
    def __init__(self, channels=8, scale=4):
        super().__init__()
        self.head = conv3(3, channels)
        self.body = nn.Sequential(conv3(channels, channels), nn.ReLU(inplace=True), conv3(channels, channels))
        self.tail = Upsampler(channels, scale)

    def forward(self, x):
        f = self.head(x)
        return self.tail(f + self.body(f))

import torch
from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
from torch import nn


class ScanNet(nn.Module):
    """A selective state-space scan over the pixels of a feature map (mamba_ssm's CUDA kernel)."""

    def __init__(self, channels=16, state=8):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.proj = nn.Conv2d(channels, channels + 2 * state, 1)
        self.A_log = nn.Parameter(torch.zeros(channels, state))
        self.D = nn.Parameter(torch.ones(channels))
        self.state = state
        self.tail = nn.Conv2d(channels, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        y = self.head(x)
        b, c, h, w = y.shape
        p = self.proj(y).flatten(2)
        delta, bb, cc = p.split([c, self.state, self.state], dim=1)
        s = selective_scan_fn(
            y.flatten(2), delta, -torch.exp(self.A_log), bb, cc, self.D, delta_softplus=True
        )
        return self.shuffle(self.tail(s.view(b, c, h, w) + y))

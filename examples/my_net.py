"""A small x4 super-resolution network to try effbench on your own model (README: ``examples/my_net.py:Net``).

Three 3x3 convs, a residual body with a gating attention applied as a functional conv (``F.conv2d`` with a
weight held by the module: the official counters miss it, ``effbench profile --compare-conventions`` shows how
much), and a PixelShuffle tail. Inputs in [0, 1].

``python examples/my_net.py w.pth`` writes this network's (random, seeded) weights as a checkpoint, which
``effbench challenge check ... --weights w.pth`` loads.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """``c`` feature channels, ``blocks`` residual blocks, x``scale`` upsampling."""

    def __init__(self, c: int = 32, blocks: int = 2, scale: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(blocks))
        self.gate = nn.Parameter(torch.randn(c, c, 1, 1) * 0.1)  # applied with F.conv2d in forward
        self.tail = nn.Conv2d(c, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        res = feat
        for conv in self.body:
            res = F.relu(conv(res))
        res = res * torch.sigmoid(F.conv2d(res, self.gate))
        return self.up(self.tail(feat + res))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/my_net.py CHECKPOINT.pth")
    torch.manual_seed(0)
    torch.save(Net().state_dict(), sys.argv[1])
    print(f"wrote {sys.argv[1]}")

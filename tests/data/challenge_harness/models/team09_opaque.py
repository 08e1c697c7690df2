import numpy as np
import torch
from torch import nn


class OpaqueNet(nn.Module):
    """Its gate is computed outside PyTorch: an empty_like result filled in place by a compiled call (NumPy's
    copyto here, a C++ extension's kernel in the wild), which no trace of PyTorch ops sees."""

    def __init__(self, channels=16):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.tail = nn.Conv2d(channels, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        y = self.head(x)
        gate = torch.empty_like(y)
        np.copyto(gate.detach().numpy(), np.tanh(y.detach().numpy()))
        return self.shuffle(self.tail(y * gate))

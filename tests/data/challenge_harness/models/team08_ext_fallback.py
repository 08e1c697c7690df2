import torch
from torch import nn

try:  # the team's fused C++/CUDA kernel; without it the same function in PyTorch
    import team08_fused_attention_cuda as _fused

    HAS_FUSED = True
except ImportError:
    HAS_FUSED = False


def attention(q, k):
    if HAS_FUSED and q.is_cuda:
        out = torch.empty_like(q)
        _fused.forward(q, k, out)
        return out
    return q * torch.sigmoid(k)


class ExtFallbackNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.q = nn.Conv2d(channels, channels, 3, padding=1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.tail = nn.Conv2d(channels, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        y = self.head(x)
        return self.shuffle(self.tail(attention(self.q(y), self.k(y)) + y))

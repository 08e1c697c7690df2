from torch import nn
from torch.cuda.jiterator import _create_jit_fn

_gate = _create_jit_fn("template <typename T> T gate(T a, T b) { return a * (1.0f / (1.0f + ::expf(-b))); }")


class JiteratorNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.tail = nn.Conv2d(channels, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        y = self.head(x)
        return self.shuffle(self.tail(_gate(y, y)))

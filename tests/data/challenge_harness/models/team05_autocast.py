import torch
from models.common import Plain


class AutocastNet(Plain):
    """Runs its forward under CUDA autocast (fp16 activations on the GPU)."""

    def forward(self, x):
        with torch.cuda.amp.autocast():
            y = super().forward(x)
        return y.float()


class Fp32Net(Plain):
    """The same network without autocast."""

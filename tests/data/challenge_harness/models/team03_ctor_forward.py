import torch
from models.common import Plain


class CtorForwardNet(Plain):
    """Runs one CUDA forward at 128x128 in its constructor, with autograd on (as NTIRE SPAN-style entries do)."""

    def __init__(self):
        super().__init__()
        self.cuda()(torch.randn(1, 3, 128, 128).cuda())

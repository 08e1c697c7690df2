"""A test entry whose counts change from run to run on one input: it keeps the windows a hard Gumbel-softmax sample
picks (as NTIRE 2025's 16_SCMSR does) and mixes only those with a linear layer, so the number of windows mixed,
and the FLOPs, are a random draw. The sample also scales the output, so that the ops making it are live in
fvcore's trace (counted, whatever becomes of a tensor only converted to an int)."""

import torch
import torch.nn.functional as F
from torch import nn


class SampleNet(nn.Module):
    def __init__(self, channels: int = 4, window: int = 8) -> None:
        super().__init__()
        self.window = window
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.score = nn.Linear(channels, 2)
        self.mix = nn.Linear(channels * window * window, channels * window * window)
        self.tail = nn.Conv2d(channels, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        b, c, h, w = y.shape
        s = self.window
        n = (h // s) * (w // s)
        pooled = F.avg_pool2d(y, s).flatten(2).transpose(1, 2)  # b, windows, c
        keep = F.gumbel_softmax(self.score(pooled), hard=True, dim=-1)[..., 0]
        k = int(keep.sum())  # a random number of windows
        idx = torch.argsort(pooled.mean(-1), dim=1, descending=True)[:, :k, None]
        tokens = y.reshape(b, c, h // s, s, w // s, s).permute(0, 2, 4, 1, 3, 5).reshape(b, n, c * s * s)
        idx = idx.expand(-1, -1, tokens.shape[-1])
        tokens = (
            tokens.scatter(1, idx, self.mix(torch.gather(tokens, 1, idx))) * keep.mean()
        )  # the sample in use
        y = tokens.reshape(b, h // s, w // s, c, s, s).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)
        return self.shuffle(self.tail(y))

"""The building blocks several zoo architectures share (as timm's ``layers`` or BasicSR's ``arch_util``): written
once here, imported by the model files of :mod:`effbench.zoo.models`.

- :func:`conv`: a convolution with 'same' zero padding (EDSR's ``default_conv``, IMDN's and RFDN's
  ``conv_layer``);
- :func:`pixelshuffle_upsampler`: one 3x3 convolution to ``out_ch * scale**2`` channels and a pixel shuffle;
- :class:`DistillationNet`: the trunk IMDN and RFDN share (head, distillation blocks, fusion of every block's
  output, long skip, upsampler), each network giving its block.

Module names are those of the official code, so the official checkpoints keep loading as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["DistillationNet", "conv", "pixelshuffle_upsampler"]


def conv(
    in_ch: int,
    out_ch: int,
    kernel_size: int,
    stride: int = 1,
    *,
    bias: bool = True,
    padding: int | None = None,
) -> nn.Conv2d:
    """A convolution with 'same' zero padding (``kernel_size // 2`` unless ``padding`` is given) and a bias unless
    ``bias=False``."""
    pad = kernel_size // 2 if padding is None else padding
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=pad, bias=bias)


def pixelshuffle_upsampler(in_ch: int, out_ch: int, scale: int) -> nn.Sequential:
    """One 3x3 convolution to ``out_ch * scale**2`` channels, then a pixel shuffle of ``scale``."""
    return nn.Sequential(conv(in_ch, out_ch * scale**2, 3), nn.PixelShuffle(scale))


class DistillationNet(nn.Module):
    """The trunk of IMDN and RFDN: a 3x3 head (``fea_conv``), ``num_modules`` blocks named ``<prefix>1``..
    ``<prefix>n``, a 1x1 fusion of every block's output with LeakyReLU(0.05) (``c``), a 3x3 conv (``LR_conv``)
    plus a long skip from the head, and a conv + pixel-shuffle upsampler (``upsampler``).

    ``block(nf)`` builds one block; subclasses check their arguments and pass their block and its name prefix.
    """

    def __init__(
        self,
        block: Callable[[int], nn.Module],
        prefix: str,
        *,
        upscale: int,
        in_nc: int,
        nf: int,
        num_modules: int,
        out_nc: int,
    ) -> None:
        super().__init__()
        self.upscale = upscale
        self.num_modules = num_modules
        self.block_prefix = prefix
        self.fea_conv = conv(in_nc, nf, 3)
        for i in range(num_modules):
            self.add_module(f"{prefix}{i + 1}", block(nf))
        self.c = nn.Sequential(conv(nf * num_modules, nf, 1), nn.LeakyReLU(0.05, inplace=True))
        self.LR_conv = conv(nf, nf, 3)
        self.upsampler = pixelshuffle_upsampler(nf, out_nc, upscale)

    @property
    def blocks(self) -> list[nn.Module]:
        """The blocks in order."""
        return [getattr(self, f"{self.block_prefix}{i + 1}") for i in range(self.num_modules)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_fea = self.fea_conv(x)
        outs = []
        out = out_fea
        for block in self.blocks:
            out = block(out)
            outs.append(out)
        out_b = self.c(torch.cat(outs, dim=1))
        out_lr = self.LR_conv(out_b) + out_fea
        return self.upsampler(out_lr)

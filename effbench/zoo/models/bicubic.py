"""Bicubic upsampling as a zoo model: the 'Bicubic' rows of SR tables (MATLAB ``imresize(lr, s, 'bicubic')``)."""

from __future__ import annotations

import torch
from torch import nn

from effbench.base.imresize import imresize
from effbench.zoo.registry import register_model


class Bicubic(nn.Module):
    """Parameter-free x``scale`` upsampling through :func:`effbench.imresize` (MATLAB's bicubic kernel).

    Inputs ``(N, C, h, w)`` in ``[0, 255]``; the output is the float result, unrounded (the evaluation protocol
    clamps and rounds). ``quantize=True`` rounds and clamps to integers after each pass, as MATLAB does on
    ``uint8`` images (bit-identical to ``imresize`` on ``uint8``).
    """

    data_range = 255.0

    def __init__(self, scale: int = 4, quantize: bool = False):
        super().__init__()
        self.scale = int(scale)
        self.quantize = quantize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantize:
            q = torch.clamp(torch.floor(x.double() + 0.5), 0, 255).to(torch.uint8)
            return imresize(q, float(self.scale)).to(x.dtype)
        return imresize(x, float(self.scale))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, quantize={self.quantize}"


@register_model(
    "bicubic",
    reference=True,
    scales=(2, 3, 4),
    data_range=255.0,
    paper="Keys 1981; MATLAB imresize (the 'Bicubic' rows of FMEN Table 3)",
    description="MATLAB-compatible bicubic upsampling (0 parameters)",
)
def bicubic(scale: int = 4, deploy: bool = True, quantize: bool = True) -> nn.Module:
    """Bicubic upsampling (MATLAB imresize), 0 parameters, inputs in [0, 255].

    ``quantize=True`` (default) rounds the input and the intermediate pass to integers like MATLAB's
    ``imresize(uint8_lr, scale)``; ``quantize=False`` is plain float bicubic (differentiable).
    """
    del deploy  # nothing to re-parameterise
    return Bicubic(scale, quantize=quantize)

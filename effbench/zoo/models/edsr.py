"""EDSR (Lim et al., CVPRW 2017), the baseline configuration: 16 residual blocks, 64 features, res_scale 1.

Blocks first, network last: :class:`MeanShift` (the fixed RGB mean subtraction / addition as a 1x1 conv),
:class:`ResBlock` (RB: conv-ReLU-conv plus identity), :class:`PlainBlock` (PB: the same without the identity, the
block study's plain block), :class:`Upsampler`, then :class:`EDSR`. Module names follow the official code
(sanghyun-son/EDSR-PyTorch, ``src/model/edsr.py`` and ``common.py``), so the official checkpoints load as they are.

``edsr_baseline`` has 1,369,883 / 1,554,523 / 1,517,595 parameters (x2/x3/x4; Table 3 of the FMEN paper:
1370K / 1554K / 1518K), the two mean-shift convolutions (24 parameters, frozen) included. Inputs in [0, 255].
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from effbench.base.errors import UsageError
from effbench.zoo.layers import conv
from effbench.zoo.registry import PretrainedCfg, register_model

__all__ = ["DIV2K_RGB_MEAN", "EDSR", "MeanShift", "PlainBlock", "ResBlock", "Upsampler"]

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Conv2d):
    """Subtract (``sign=-1``) or add (``sign=1``) the data set's RGB mean, as a 1x1 convolution.

    ``weight = I / std`` and ``bias = sign * rgb_range * mean / std``. Frozen unless ``trainable`` (LatticeNet
    learns its mean-shift layers; EDSR keeps them fixed).
    """

    def __init__(
        self,
        rgb_range: float = 255.0,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
        rgb_std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        sign: int = -1,
        trainable: bool = False,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        if sign not in (-1, 1):
            raise ValueError(f"MeanShift: sign must be -1 or 1, got {sign}")
        std = torch.tensor(rgb_std, dtype=torch.float32)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1) / std.view(3, 1, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean, dtype=torch.float32) / std)
        for p in self.parameters():
            p.requires_grad = trainable


class PlainBlock(nn.Module):
    """PB: the residual block without its identity, ``res_scale * conv(relu(conv(x)))`` (same parameters)."""

    def __init__(self, n_feats: int = 64, kernel_size: int = 3, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(n_feats, n_feats, kernel_size), nn.ReLU(inplace=True), conv(n_feats, n_feats, kernel_size)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mul(self.res_scale)


class ResBlock(PlainBlock):
    """RB: ``x + res_scale * conv(relu(conv(x)))``, 3x3 convolutions with bias (a PB plus its skip)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = super().forward(x)
        res += x
        return res


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling: per factor 2, a 3x3 conv to 4x the features and a pixel shuffle; for 3, one 3x3
    conv to 9x and a pixel shuffle of 3. Scales: powers of two and 3."""

    def __init__(self, scale: int, n_feats: int) -> None:
        layers: list[nn.Module] = []
        if scale >= 1 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv(n_feats, 4 * n_feats, 3), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv(n_feats, 9 * n_feats, 3), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"Upsampler: scale must be a power of 2 or 3, got {scale}")
        super().__init__(*layers)


_BLOCKS: dict[str, type[nn.Module]] = {"rb": ResBlock, "pb": PlainBlock}


class EDSR(nn.Module):
    """EDSR: mean shift, 3x3 head, ``n_resblocks`` blocks and a 3x3 conv under a long skip, the upsampler and a
    3x3 conv to RGB, mean shift back. ``block='pb'`` swaps every residual block for a plain one (the long skip
    stays). Inputs in [0, ``rgb_range``]."""

    def __init__(
        self,
        upscale: int = 4,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        block: str = "rb",
        rgb_range: float = 255.0,
        n_colors: int = 3,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"EDSR: unknown block {block!r}; choose one of {', '.join(_BLOCKS)}")
        if n_resblocks < 0 or n_feats < 1:
            raise ValueError(f"EDSR: invalid n_resblocks={n_resblocks} or n_feats={n_feats}")
        self.upscale = upscale
        block_cls = _BLOCKS[block]
        self.sub_mean = MeanShift(rgb_range, sign=-1)
        self.head = nn.Sequential(conv(n_colors, n_feats, 3))
        self.body = nn.Sequential(
            *[block_cls(n_feats, 3, res_scale) for _ in range(n_resblocks)], conv(n_feats, n_feats, 3)
        )
        self.tail = nn.Sequential(Upsampler(upscale, n_feats), conv(n_feats, n_colors, 3))
        self.add_mean = MeanShift(rgb_range, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x)
        x = self.head(x)
        res = self.body(x)
        res += x
        x = self.tail(res)
        return self.add_mean(x)


_EDSR_FILES = {
    2: ("edsr_baseline_x2-1bc95232.pt", "1bc9523228fdc3b0a5ddb0d7062001e22b31bbb398ae09cfdefb97e8ee06e171"),
    3: ("edsr_baseline_x3-abf2a44e.pt", "abf2a44e7a137228efa42a4264a23e12603168d43ac7596b1adef40c649b9240"),
    4: ("edsr_baseline_x4-6b446fab.pt", "6b446fab734f4de74448d2fd1f3f990f5bae726e49dc7eff2ae9cefe444a1723"),
}


@register_model(
    "edsr_baseline",
    description="EDSR baseline: 16 residual blocks, 64 feats, res_scale 1, mean shift",
    scales=(2, 3, 4),
    data_range=255.0,
    paper="Lim et al., Enhanced Deep Residual Networks for Single Image Super-Resolution, CVPRW 2017",
    pretrained={
        s: PretrainedCfg(
            filename=fname,
            url=f"https://cv.snu.ac.kr/research/EDSR/models/{fname}",
            sha256=sha,
            key_layout=None,
            source="sanghyun-son/EDSR-PyTorch, src/model/edsr.py (official download addresses)",
            licence="MIT",
        )
        for s, (fname, sha) in _EDSR_FILES.items()
    },
)
def edsr_baseline(scale: int = 4, deploy: bool = True, **overrides: Any) -> nn.Module:
    """EDSR baseline (16 RBs, 64 features, res_scale 1); overrides: n_resblocks, n_feats, res_scale,
    block ('rb' residual, default, or 'pb' plain), rgb_range, n_colors. ``deploy`` is ignored."""
    try:
        return EDSR(upscale=scale, **overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"edsr_baseline: bad override ({exc})") from None

"""RLFN (Kong et al., "Residual Local Feature Network for Efficient Super-Resolution", CVPRW 2022): the NTIRE
2022 ESR runtime winner (team ByteESR, the paper's Table 4 'ByteESR'), x4, 46 channels, 4 RLFBs with ESA.

Structure of the submitted ``RLFN_cut`` (ofsoundof/NTIRE2022_ESR, models/team04_rlfn.py)::

    fea_conv 3x3 -> RLFB x 4 -> LR_conv 3x3 (+ fea) -> conv 3x3 + PixelShuffle

RLFB: three 3x3 convs (46 -> 48 -> 48 -> 46) each followed by LeakyReLU(0.05), a local residual, a 1x1 conv
``c5`` and ESA (1x1 to 16, strided 3x3 without padding, 7x7/3 max-pool, 3x3, bilinear upsampling, plus a 1x1
``conv_f`` shortcut, 1x1 back to 46, sigmoid gate). Input range [0, 255] (the challenge's ``data_range=255``).
ESA's pooling needs inputs of at least 15x15 pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effbench.zoo.registry import PretrainedCfg, register_model

__all__ = ["ESA", "RLFB", "RLFN", "rlfn"]

PAPER = (
    "F. Kong, M. Li, S. Liu, D. Liu, J. He, Y. Bai, F. Chen, L. Fu: Residual Local Feature Network for "
    "Efficient Super-Resolution. CVPR Workshops (NTIRE) 2022. arXiv:2205.07514"
)


class ESA(nn.Module):
    """Enhanced spatial attention as used by RLFN (no ``conv_max``/``conv3_`` layers, unlike RFDN's ESA)."""

    def __init__(self, n_feats: int, esa_channels: int = 16) -> None:
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(n_feats, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, n_feats, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        if min(c1.shape[-2:]) < 7:
            raise ValueError(f"RLFN's ESA needs inputs of at least 15x15 pixels, got {tuple(x.shape[-2:])}")
        c3 = self.conv3(F.max_pool2d(c1, kernel_size=7, stride=3))
        c3 = F.interpolate(c3, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * self.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class RLFB(nn.Module):
    """Residual local feature block: 3 x (3x3 conv, LeakyReLU 0.05), local residual, 1x1 conv, ESA."""

    def __init__(self, n_feats: int, mid_feats: int, esa_channels: int = 16) -> None:
        super().__init__()
        self.c1_r = nn.Conv2d(n_feats, mid_feats, 3, padding=1)
        self.c2_r = nn.Conv2d(mid_feats, mid_feats, 3, padding=1)
        self.c3_r = nn.Conv2d(mid_feats, n_feats, 3, padding=1)
        self.c5 = nn.Conv2d(n_feats, n_feats, 1)
        self.esa = ESA(n_feats, esa_channels)
        self.act = nn.LeakyReLU(0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """RLFN as submitted to NTIRE 2022 (``RLFN_cut``): ``n_blocks`` RLFBs named ``B1``..``Bn``."""

    data_range = 255.0

    def __init__(
        self,
        scale: int = 4,
        n_feats: int = 46,
        mid_feats: int = 48,
        n_blocks: int = 4,
        esa_channels: int = 16,
        n_colors: int = 3,
    ) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        self.n_blocks = n_blocks
        self.fea_conv = nn.Conv2d(n_colors, n_feats, 3, padding=1)
        for i in range(n_blocks):
            self.add_module(f"B{i + 1}", RLFB(n_feats, mid_feats, esa_channels))
        self.LR_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsampler = nn.Sequential(
            nn.Conv2d(n_feats, n_colors * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(x)
        out = fea
        for i in range(self.n_blocks):
            out = getattr(self, f"B{i + 1}")(out)
        return self.upsampler(self.LR_conv(out) + fea)


RLFN_CHECKPOINT = PretrainedCfg(
    filename="ntire22_team04_rlfn.pth",
    url="https://github.com/ofsoundof/NTIRE2022_ESR/raw/e95ba4a4/model_zoo/team04_rlfn.pth",
    sha256="ca81b7757708ce749ac3766589690db6c2729961d026c0137e7659924ec36622",
    source="ofsoundof/NTIRE2022_ESR @ e95ba4a4, model_zoo/team04_rlfn.pth",
    licence="MIT",
)


@register_model(
    "rlfn",
    scales=(4,),
    data_range=255.0,
    paper=PAPER,
    pretrained={4: RLFN_CHECKPOINT},
    description="RLFN (ByteESR, NTIRE 2022 runtime winner): 46 feats, 4 RLFBs with ESA",
)
def rlfn(scale: int = 4, deploy: bool = True, **overrides: object) -> RLFN:
    """RLFN_cut, the NTIRE 2022 ESR submission: 46 channels, 48 inside the RLFBs, 4 RLFBs, ESA with 16 channels.

    x4 params: 317,218, equal to the official checkpoint. ``deploy`` is ignored (one form only).
    """
    del deploy
    return RLFN(scale=scale, **overrides)  # type: ignore[arg-type]

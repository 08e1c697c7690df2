"""LatticeNet (Luo et al., ECCV 2020): lattice blocks with combination coefficients and backward fusion.

Blocks first, network last: :class:`CC` (combination coefficient: channel attention from the mean and the
standard deviation), :class:`LatticeBlock` (two butterfly-style units whose branches are mixed by CCs, then a
1x1 compression), then :class:`LatticeNet` (RGB mean shift, two 3x3 head convs, 4 lattice blocks, the backward
feature fusion of their outputs, a two-conv sub-pixel tail, mean shift back). Module names follow the official
code (ymff0592/super-resolution, ``model/latticenet.py``), so its checkpoints load as they are.

The official mean-shift layers are trained (their checkpoint values are not the identity and the DIV2K mean);
they are ordinary parameters here and count towards the 756,196 / 764,851 / 776,968 parameters (x2/x3/x4).
Inputs in [0, 255].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from effbench.base.errors import UsageError
from effbench.zoo.registry import PretrainedCfg, register_model

from .edsr import MeanShift

__all__ = ["CC", "LatticeBlock", "LatticeNet"]


def _squeeze_excite(channels: int, reduction: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels // reduction, 1, padding=0, bias=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels // reduction, channels, 1, padding=0, bias=True),
        nn.Sigmoid(),
    )


class CC(nn.Module):
    """Combination coefficient: ``(sigmoid-SE(mean(x)) + sigmoid-SE(std(x))) / 2``, one weight per channel.

    The standard deviation is the unbiased one (``torch.std``) over the spatial positions, as in the official
    code. Returns the (N, C, 1, 1) coefficients, not the weighted input.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"CC: {channels} channels cannot be squeezed by reduction {reduction}")
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_mean = _squeeze_excite(channels, reduction)
        self.conv_std = _squeeze_excite(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ca_mean = self.conv_mean(self.avg_pool(x))
        b, c = x.shape[:2]
        ca_std = torch.std(x.reshape(b, c, -1), dim=2, keepdim=True).view(b, c, 1, 1)
        ca_var = self.conv_std(ca_std)
        return (ca_mean + ca_var) / 2.0


def _conv_stack(n_feats: int, n_diff: int) -> nn.Sequential:
    """Three 3x3 convs (n_feats -> n_feats - n_diff -> n_feats - n_diff -> n_feats), each + LeakyReLU(0.05)."""
    mid = n_feats - n_diff
    return nn.Sequential(
        nn.Conv2d(n_feats, mid, kernel_size=3, padding=1, bias=True),
        nn.LeakyReLU(0.05),
        nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=True),
        nn.LeakyReLU(0.05),
        nn.Conv2d(mid, n_feats, kernel_size=3, padding=1, bias=True),
        nn.LeakyReLU(0.05),
    )


class LatticeBlock(nn.Module):
    """Lattice block: two lattice units, each a conv stack whose output and input are cross-combined by CCs.

    With ``F1 = stack0(x)``: ``P1 = x + CC(F1) * F1`` and ``Q1 = F1 + CC(x) * x``; with ``F2 = stack1(P1)``:
    ``P3 = F2 + CC(Q1) * Q1`` and ``Q3 = Q1 + CC(F2) * F2``; the output is ``conv1x1(cat(P3, Q3))``.
    """

    def __init__(self, n_feats: int = 64, n_diff: int = 16) -> None:
        super().__init__()
        if not 0 <= n_diff < n_feats:
            raise ValueError(
                f"LatticeBlock: need 0 <= n_diff < n_feats, got n_diff={n_diff}, n_feats={n_feats}"
            )
        self.conv_block0 = _conv_stack(n_feats, n_diff)
        self.fea_ca1 = CC(n_feats)
        self.x_ca1 = CC(n_feats)
        self.conv_block1 = _conv_stack(n_feats, n_diff)
        self.fea_ca2 = CC(n_feats)
        self.x_ca2 = CC(n_feats)
        self.compress = nn.Conv2d(2 * n_feats, n_feats, kernel_size=1, padding=0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_feature_shot = self.conv_block0(x)
        fea_ca1 = self.fea_ca1(x_feature_shot)
        x_ca1 = self.x_ca1(x)
        p1z = x + fea_ca1 * x_feature_shot
        q1z = x_feature_shot + x_ca1 * x

        x_feat_long = self.conv_block1(p1z)
        fea_ca2 = self.fea_ca2(q1z)
        p3z = x_feat_long + fea_ca2 * q1z
        x_ca2 = self.x_ca2(x_feat_long)
        q3z = q1z + x_ca2 * x_feat_long

        return self.compress(torch.cat((p3z, q3z), 1))


def _tdm(n_feats: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(n_feats, n_feats // 2, kernel_size=1, padding=0, bias=True), nn.ReLU())


class LatticeNet(nn.Module):
    """LatticeNet with 4 lattice blocks and backward fusion.

    Backward fusion: starting from the last block, ``out = cat(T(prev), L(res_k))`` through 1x1 convs + ReLU that
    halve the channels (``T_tdm*`` on the running fusion, ``L_tdm*`` on the earlier block outputs), added to the
    head features before the tail. Inputs in [0, ``rgb_range``].
    """

    NUM_BLOCKS = 4

    def __init__(
        self,
        upscale: int = 4,
        n_feats: int = 64,
        n_diff: int = 16,
        rgb_range: float = 255.0,
        n_colors: int = 3,
    ) -> None:
        super().__init__()
        if upscale < 1 or n_feats < 2 or n_feats % 2:
            raise ValueError(f"LatticeNet: invalid upscale={upscale} or n_feats={n_feats} (must be even)")
        self.upscale = upscale
        self.sub_mean = MeanShift(rgb_range, sign=-1, trainable=True)
        self.conv1 = nn.Conv2d(n_colors, n_feats, kernel_size=3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(n_feats, n_feats, kernel_size=3, padding=1, bias=True)
        for i in range(self.NUM_BLOCKS):
            self.add_module(f"body_unit{i + 1}", LatticeBlock(n_feats, n_diff))
        for i in range(self.NUM_BLOCKS - 1):
            self.add_module(f"T_tdm{i + 1}", _tdm(n_feats))
            self.add_module(f"L_tdm{i + 1}", _tdm(n_feats))
        self.tail = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, kernel_size=3, padding=1, bias=True),
            nn.Conv2d(n_feats, n_colors * upscale**2, kernel_size=3, padding=1, bias=True),
            nn.PixelShuffle(upscale),
        )
        self.add_mean = MeanShift(rgb_range, sign=1, trainable=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x)
        x = self.conv1(x)
        x = self.conv2(x)

        res1 = self.body_unit1(x)
        res2 = self.body_unit2(res1)
        res3 = self.body_unit3(res2)
        res4 = self.body_unit4(res3)

        out_tdm1 = torch.cat((self.T_tdm1(res4), self.L_tdm1(res3)), 1)
        out_tdm2 = torch.cat((self.T_tdm2(out_tdm1), self.L_tdm2(res2)), 1)
        out_tdm3 = torch.cat((self.T_tdm3(out_tdm2), self.L_tdm3(res1)), 1)

        out = self.tail(out_tdm3 + x)
        return self.add_mean(out)


_LATTICE_SHA = {
    2: "ac9e517e8952a1c96ef83ef7a327233a28f99f95c413f32ab62e3c7e4f59f8c4",
    3: "b1abeb84b02bfb1e186e6b2a1ee58167654285839909912f302b307ae75d1005",
    4: "abee214c6fb7a68cf9e781fe2cc5434cf49f53bba719fe58e6c69f71aa604436",
}
_LATTICE_URL = (
    "https://github.com/ymff0592/super-resolution/raw/78532dc4b0113eb8159f6f5c1ab667e89bea41f4/premodel/"
    "LatticeNet_x{s}.pt"
)


@register_model(
    "latticenet",
    description="LatticeNet: 64 feats, 4 lattice blocks, backward fusion, RGB mean shift",
    scales=(2, 3, 4),
    data_range=255.0,
    paper="Luo et al., LatticeNet: Towards Lightweight Image Super-Resolution with Lattice Block, ECCV 2020",
    pretrained={
        s: PretrainedCfg(
            filename=f"LatticeNet_x{s}.pt",
            url=_LATTICE_URL.format(s=s),
            sha256=sha,
            key_layout=None,
            source="ymff0592/super-resolution, premodel/",
            licence="none stated",
        )
        for s, sha in _LATTICE_SHA.items()
    },
)
def latticenet(scale: int = 4, deploy: bool = True, **overrides: Any) -> nn.Module:
    """LatticeNet (64 features, 4 lattice blocks, backward fusion, RGB mean shift); overrides: n_feats, n_diff,
    rgb_range, n_colors. ``deploy`` is ignored."""
    try:
        return LatticeNet(upscale=scale, **overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"latticenet: bad override ({exc})") from None

"""IMDN: the information multi-distillation network (Hui et al., ACM MM 2019), and the NTIRE 2022 baseline.

Two architectures of the same family live here, blocks first and networks last:

- :class:`CCA` (contrast-aware channel attention) and :class:`IMDB` (information multi-distillation block, with
  CCA) make :class:`IMDN`, the network of the IMDN paper (``imdn``: nf=64, 6 IMDBs, x2/x3/x4). Its module names
  follow the official code (Zheng222/IMDN, ``model/architecture.py``), so the official checkpoints load after
  the DataParallel ``module.`` prefix is dropped.
- :class:`IMDBlockNTIRE` (the simplified IMDB of KAIR, without CCA) makes :class:`IMDNNtire`, the baseline of the
  NTIRE 2022 efficient SR challenge (``imdn_ntire``: nc=64, nb=8, x4). Its checkpoint uses the sequential
  ``model.N`` layout of KAIR; :func:`ntire_imdn_layout` maps it onto our named modules.

Both take inputs in [0, 1].
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from effbench.base.errors import UsageError
from effbench.zoo.layers import DistillationNet, conv, pixelshuffle_upsampler
from effbench.zoo.registry import PretrainedCfg, register_model
from effbench.zoo.weights import StateDict, register_key_layout

__all__ = [
    "CCA",
    "IMDB",
    "IMDN",
    "IMDBlockNTIRE",
    "IMDNNtire",
    "contrast",
    "ntire_imdn_layout",
]


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over the spatial dimensions (population variance), shape (N, C, 1, 1)."""
    if x.dim() != 4:
        raise ValueError(f"contrast() expects an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    area = x.size(2) * x.size(3)
    mean = x.sum(3, keepdim=True).sum(2, keepdim=True) / area
    variance = (x - mean).pow(2).sum(3, keepdim=True).sum(2, keepdim=True) / area
    return variance.pow(0.5)


class CCA(nn.Module):
    """Contrast-aware channel attention: ``x * sigmoid(W2 relu(W1 (std(x) + mean(x))))``.

    The channel statistic is the sum of the per-channel standard deviation (contrast) and mean; two 1x1
    convolutions squeeze the channels by ``reduction`` and expand them back.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"CCA: {channels} channels cannot be squeezed by reduction {reduction}")
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, padding=0, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1, padding=0, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = contrast(x) + self.avg_pool(x)
        return x * self.conv_du(y)


class IMDB(nn.Module):
    """Information multi-distillation block (the ``IMDModule`` of the official code).

    Three 3x3 conv + LeakyReLU(0.05) steps each keep a quarter of the channels (distilled) and pass the rest on;
    a fourth 3x3 conv gives the last quarter; the concatenation goes through CCA and a 1x1 fusion conv, plus the
    block input.
    """

    def __init__(self, channels: int = 64, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled = int(channels * distillation_rate)
        self.remaining = channels - self.distilled
        if self.distilled < 1:
            raise ValueError(
                f"IMDB: {channels} channels leave no distilled channel at rate {distillation_rate}"
            )
        self.c1 = conv(channels, channels, 3)
        self.c2 = conv(self.remaining, channels, 3)
        self.c3 = conv(self.remaining, channels, 3)
        self.c4 = conv(self.remaining, self.distilled, 3)
        self.act = nn.LeakyReLU(0.05, inplace=True)
        self.c5 = conv(self.distilled * 4, channels, 1)
        self.cca = CCA(self.distilled * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        d4 = self.c4(r3)
        out = torch.cat([d1, d2, d3, d4], dim=1)
        return self.c5(self.cca(out)) + x


class IMDN(DistillationNet):
    """IMDN (Hui et al. 2019): 3x3 head, ``num_modules`` IMDBs, 1x1 fusion of all block outputs with LeakyReLU,
    3x3 conv plus a long skip from the head, and a conv + pixel-shuffle upsampler (the trunk of
    :class:`~effbench.zoo.layers.DistillationNet`). Inputs in [0, 1]."""

    def __init__(
        self, upscale: int = 4, in_nc: int = 3, nf: int = 64, num_modules: int = 6, out_nc: int = 3
    ) -> None:
        if upscale < 1 or num_modules < 1 or nf < 1:
            raise ValueError(f"IMDN: invalid upscale={upscale}, nf={nf} or num_modules={num_modules}")
        super().__init__(
            IMDB, "IMDB", upscale=upscale, in_nc=in_nc, nf=nf, num_modules=num_modules, out_nc=out_nc
        )


class IMDBlockNTIRE(nn.Module):
    """The simplified IMDB of KAIR used by the NTIRE 2022 baseline: the IMDB without CCA.

    ``x + conv1x1(cat(d1, d2, d3, conv4(r3)))`` where each of conv1..conv3 is a 3x3 conv + LeakyReLU.
    """

    def __init__(self, channels: int = 64, d_rate: float = 0.25, negative_slope: float = 0.05) -> None:
        super().__init__()
        self.d_nc = int(channels * d_rate)
        self.r_nc = channels - self.d_nc
        if self.d_nc < 1:
            raise ValueError(
                f"IMDBlockNTIRE: {channels} channels leave no distilled channel at rate {d_rate}"
            )
        self.conv1 = conv(channels, channels, 3)
        self.conv2 = conv(self.r_nc, channels, 3)
        self.conv3 = conv(self.r_nc, channels, 3)
        self.conv4 = conv(self.r_nc, self.d_nc, 3)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.conv1x1 = conv(self.d_nc * 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.d_nc, self.r_nc)
        d1, r1 = torch.split(self.act(self.conv1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.conv2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.conv3(r2)), split, dim=1)
        d4 = self.conv4(r3)
        return x + self.conv1x1(torch.cat((d1, d2, d3, d4), dim=1))


class IMDNNtire(nn.Module):
    """The NTIRE 2022 efficient-SR baseline IMDN (KAIR's ``IMDN``): 3x3 head, ``nb`` simplified IMDBs and a
    3x3 conv inside one long skip, then a conv + pixel-shuffle upsampler. Inputs in [0, 1]."""

    def __init__(self, upscale: int = 4, in_nc: int = 3, nc: int = 64, nb: int = 8, out_nc: int = 3) -> None:
        super().__init__()
        if upscale < 1 or nb < 1 or nc < 1:
            raise ValueError(f"IMDNNtire: invalid upscale={upscale}, nc={nc} or nb={nb}")
        self.upscale = upscale
        self.head = conv(in_nc, nc, 3)
        self.body = nn.Sequential(*[IMDBlockNTIRE(nc) for _ in range(nb)])
        self.body_conv = conv(nc, nc, 3)
        self.upsampler = pixelshuffle_upsampler(nc, out_nc, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = x + self.body_conv(self.body(x))
        return self.upsampler(x)


_NTIRE_BODY = re.compile(r"^model\.1\.sub\.(\d+)\.(.+)$")


@register_key_layout("ntire_model_n")
def ntire_imdn_layout(sd: StateDict) -> StateDict:
    """Map KAIR's sequential ``model.N`` keys of the NTIRE 2022 IMDN baseline onto :class:`IMDNNtire`.

    ``model.0`` is the head, ``model.1.sub.<i>`` the blocks (``conv1.0`` etc. are conv + activation
    sequentials) and, for the last index, the body conv; ``model.2`` is the upsampler conv.
    """
    out: StateDict = {}
    for key, value in sd.items():
        if key.startswith("model.0."):
            out["head." + key[len("model.0.") :]] = value
        elif key.startswith("model.2."):
            out["upsampler.0." + key[len("model.2.") :]] = value
        elif m := _NTIRE_BODY.match(key):
            index, rest = m.groups()
            if rest in ("weight", "bias"):  # the plain conv closing the body
                out[f"body_conv.{rest}"] = value
            else:
                rest = re.sub(r"^(conv[123])\.0\.", r"\1.", rest)
                out[f"body.{index}.{rest}"] = value
        else:
            out[key] = value  # left as is: strict loading will name it
    return out


def _build(cls: type[nn.Module], name: str, **kwargs: Any) -> nn.Module:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name}: bad override ({exc})") from None


_IMDN_URL = (
    "https://github.com/Zheng222/IMDN/raw/f8a43074c7c8ea33ea7c33ce43a698c086007fd0/checkpoints/IMDN_x{s}.pth"
)
_IMDN_SHA = {
    2: "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1",
    3: "11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028",
    4: "e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714",
}


@register_model(
    "imdn",
    description="IMDN: nf=64, 6 IMDBs with contrast-aware channel attention (CCA)",
    scales=(2, 3, 4),
    data_range=1.0,
    paper="Hui et al., Lightweight Image Super-Resolution with Information Multi-distillation Network, ACM MM 2019",
    pretrained={
        s: PretrainedCfg(
            filename=f"IMDN_x{s}.pth",
            url=_IMDN_URL.format(s=s),
            sha256=sha,
            key_layout="module_prefix",
            source="Zheng222/IMDN, checkpoints/",
            licence="none stated",
        )
        for s, sha in _IMDN_SHA.items()
    },
)
def imdn(scale: int = 4, deploy: bool = True, **overrides: Any) -> nn.Module:
    """IMDN (nf=64, 6 IMDBs with CCA); overrides: nf, num_modules, in_nc, out_nc. ``deploy`` is ignored."""
    return _build(IMDN, "imdn", upscale=scale, **overrides)


@register_model(
    "imdn_ntire",
    description="NTIRE 2022 baseline IMDN: nc=64, 8 simplified IMDBs (no CCA)",
    scales=(4,),
    data_range=1.0,
    paper="Li et al., NTIRE 2022 Challenge on Efficient Super-Resolution: Methods and Results, CVPRW 2022 "
    "(baseline: IMDN, Hui et al. 2019, as simplified in KAIR)",
    pretrained={
        4: PretrainedCfg(
            filename="ntire22_imdn_baseline.pth",
            url="https://github.com/ofsoundof/NTIRE2022_ESR/raw/main/model_zoo/imdn_baseline.pth",
            sha256="115b4cc557eba9daaf1a6543c4858014c7e2a410655aafef7c8348ae54acc203",
            key_layout="ntire_model_n",
            source="ofsoundof/NTIRE2022_ESR, model_zoo/imdn_baseline.pth",
            licence="MIT",
        )
    },
)
def imdn_ntire(scale: int = 4, deploy: bool = True, **overrides: Any) -> nn.Module:
    """The NTIRE 2022 baseline IMDN (nc=64, nb=8, no CCA); overrides: nc, nb, in_nc, out_nc."""
    return _build(IMDNNtire, "imdn_ntire", upscale=scale, **overrides)

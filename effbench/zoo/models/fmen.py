"""FMEN and FMEN-S (Du et al., "Fast and Memory-Efficient Network Towards Efficient Image Super-Resolution",
CVPRW 2022), in their train-time and deploy forms, plus the block variants of the paper's block study.

Structure (both models; official code NJU-Jet/FMEN ``train_fmen.py`` / ``test_fmen.py``)::

    head conv -> warm-up conv [-> warm-up HFAB] -> [ERB -> HFAB] x down_blocks -> lr conv -(+ head)-> conv, PixelShuffle

* Input range [0, 255], no RGB mean shift (the official code has none; NTIRE 2022 evaluated it with
  ``data_range=255``). LeakyReLU slope 0.1 everywhere.
* **ERB** = RRRB -> LeakyReLU -> RRRB. Train form: an **RRRB** is 1x1 expand (C -> 2C), unpadded 3x3 on the
  expanded feature padded with the 1x1 conv's *bias* (not zeros), plus the inner identity, 1x1 reduce (2C -> C),
  plus the outer identity. Deploy form: one zero-padded 3x3 conv (``rep_conv``); the fold is exact.
* **HFAB** (high-frequency attention block): BN -> 3x3 squeeze (C -> mid) -> LeakyReLU -> ERBs -> LeakyReLU ->
  BN -> 3x3 excitate (mid -> C) -> BN -> sigmoid, times the input. Each BN output is padded with the BN's shift so
  that merging the BN into the neighbouring conv is exact. Deploy form: squeeze/excitate are plain 3x3 convs.

Module names follow the authors' code (``head``, ``warmup``, ``ERBs``, ``HFABs``, ``lr_conv``, ``tail``; RRRB
``expand_conv``/``fea_conv``/``reduce_conv`` -> ``rep_conv``; HFAB ``bn1``/``bn2``/``bn3``), so both the
authors' train-form and deploy-form state dicts load without renaming.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from effbench.zoo.registry import PretrainedCfg, register_model
from effbench.zoo.reparam import (
    Reparameterizable,
    bn_shift,
    conv3x3_from,
    fold_bn_into_conv,
    fold_rrrb,
    pad_with,
)
from effbench.zoo.weights import register_key_layout

__all__ = ["RRRB", "ERB", "HFAB", "RB", "PB", "FMEN", "ERBBackbone", "make_block", "fmen", "fmen_s"]

LRELU_SLOPE = 0.1
PAPER = (
    "Z. Du, D. Liu, J. Liu, J. Tang, G. Wu, L. Fu: Fast and Memory-Efficient Network Towards Efficient "
    "Image Super-Resolution. CVPR Workshops (NTIRE) 2022. arXiv:2204.08397"
)


Activation = Callable[[torch.Tensor], torch.Tensor]


def _lrelu() -> Activation:
    """LeakyReLU(0.1) applied as a function, not a registered submodule, exactly as the official FMEN code (a
    module-level ``act``): hook-based counters such as the NTIRE 2022 tool therefore do not see it (Table 4)."""
    return functools.partial(F.leaky_relu, negative_slope=LRELU_SLOPE)


def _conv3x3(c_in: int, c_out: int, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, padding)


class RRRB(nn.Module, Reparameterizable):
    """Residual-in-residual re-parameterisable block; equivalent to one 3x3 conv (C -> C) in eval mode.

    Train form: ``reduce(fea(pad_b0(expand(x))) + expand(x)) + x`` with 1x1 ``expand`` (C -> ratio*C), unpadded
    3x3 ``fea`` and 1x1 ``reduce``; deploy form: ``rep_conv`` (zero-padded 3x3).
    """

    def __init__(self, n_feats: int, ratio: int = 2, deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        if deploy:
            self.rep_conv = _conv3x3(n_feats, n_feats)
        else:
            mid = ratio * n_feats
            self.expand_conv = nn.Conv2d(n_feats, mid, 1, 1, 0)
            self.fea_conv = nn.Conv2d(mid, mid, 3, 1, 0)
            self.reduce_conv = nn.Conv2d(mid, n_feats, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.rep_conv(x)
        e = self.expand_conv(x)
        out = self.fea_conv(pad_with(e, self.expand_conv.bias)) + e
        return self.reduce_conv(out) + x

    def fuse_(self) -> None:
        if self.deploy:
            return
        w, b = fold_rrrb(self.expand_conv, self.fea_conv, self.reduce_conv)
        self.rep_conv = conv3x3_from(w, b, self.expand_conv)
        del self.expand_conv, self.fea_conv, self.reduce_conv
        self.deploy = True


class ERB(nn.Module):
    """Enhanced residual block: RRRB -> LeakyReLU(0.1) -> RRRB. Deploy form = two plain 3x3 convs (a PB)."""

    def __init__(
        self, n_feats: int, ratio: int = 2, deploy: bool = False, act: Activation | None = None
    ) -> None:
        super().__init__()
        self.conv1 = RRRB(n_feats, ratio, deploy)
        self.act = act if act is not None else _lrelu()
        self.conv2 = RRRB(n_feats, ratio, deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x)))


class RB(nn.Module):
    """EDSR's residual block: conv3x3 -> act -> conv3x3, times ``res_scale``, plus the input (skip connection).

    ``act`` defaults to ReLU as in EDSR; FMEN's ``block="rb"`` passes LeakyReLU(0.1) so that only the skip differs
    from its ERB.
    """

    def __init__(self, n_feats: int, act: Activation | None = None, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = _conv3x3(n_feats, n_feats)
        self.act = act if act is not None else nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(n_feats, n_feats)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.act(self.conv1(x)))
        return out * self.res_scale + x if self.res_scale != 1.0 else out + x


class PB(nn.Module):
    """Plain block: an RB without its skip connection (conv3x3 -> act -> conv3x3); what an ERB becomes at deploy."""

    def __init__(self, n_feats: int, act: Activation | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(n_feats, n_feats)
        self.act = act if act is not None else nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(n_feats, n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x)))


BLOCKS = ("erb", "rb", "pb")


def make_block(
    kind: str, n_feats: int, *, ratio: int = 2, deploy: bool = True, act: Activation | None = None
) -> nn.Module:
    """One trunk block of the block study (paper Fig. 4-5, Table 1): ``"erb"``, ``"rb"`` or ``"pb"``.

    ``act`` defaults to LeakyReLU(0.1) (FMEN's activation) for every kind; pass ``nn.ReLU()`` for EDSR's blocks.
    ``deploy`` only matters for ERB (RB and PB have a single form).
    """
    act = act if act is not None else _lrelu()
    if kind == "erb":
        return ERB(n_feats, ratio, deploy, act=act)
    if kind == "rb":
        return RB(n_feats, act=act)
    if kind == "pb":
        return PB(n_feats, act=act)
    raise ValueError(f"unknown block {kind!r}; choose one of {', '.join(BLOCKS)}")


class HFAB(nn.Module, Reparameterizable):
    """High-frequency attention block (paper Sec. 3.4): a sequential attention branch re-weighting every pixel.

    Train form: ``x * sigmoid(bn3(excitate(padbn(bn2(act(ERBs(act(squeeze(padbn(bn1(x)))))))))))`` with unpadded
    3x3 ``squeeze`` (n_feats -> mid_feats) and ``excitate`` (mid_feats -> n_feats), each BN output padded with that
    BN's shift. Deploy form: BNs merged, ``x * sigmoid(excitate(act(ERBs(act(squeeze(x))))))`` with zero padding.
    As in the official code, the padding value comes from the running statistics also in training mode (where
    BN itself normalises with batch statistics); in eval mode the two forms are the same function.

    Args:
        n_feats: channels of the input (and of the attention map).
        up_blocks: number of ERBs inside the attention branch.
        mid_feats: channels inside the branch (the squeeze width).
        ratio: RRRB expand ratio of those ERBs.
        deploy: build the deploy form directly.
    """

    def __init__(
        self, n_feats: int, up_blocks: int = 1, mid_feats: int = 16, ratio: int = 2, deploy: bool = False
    ) -> None:
        super().__init__()
        self.deploy = deploy
        pad = 1 if deploy else 0
        if not deploy:
            self.bn1 = nn.BatchNorm2d(n_feats)
            self.bn2 = nn.BatchNorm2d(mid_feats)
            self.bn3 = nn.BatchNorm2d(n_feats)
        self.squeeze = _conv3x3(n_feats, mid_feats, pad)
        self.convs = nn.Sequential(*[ERB(mid_feats, ratio, deploy) for _ in range(up_blocks)])
        self.excitate = _conv3x3(mid_feats, n_feats, pad)
        self.act = _lrelu()
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Each step rebinds ``out`` so that only the tensors the official code keeps stay alive (the memory
        # analysis depends on it: peak = global residual + HFAB input + attention map + output, about 4 x CxHxW).
        if self.deploy:
            out = self.act(self.squeeze(x))
            out = self.act(self.convs(out))
            out = self.excitate(out)
        else:
            out = pad_with(self.bn1(x), bn_shift(self.bn1))
            out = self.act(self.squeeze(out))
            out = self.act(self.convs(out))
            out = pad_with(self.bn2(out), bn_shift(self.bn2))
            out = self.bn3(self.excitate(out))
        out = self.sigmoid(out)
        # In place, as the official inference code (``out *= x``); out of place when autograd needs the sigmoid.
        return out * x if out.requires_grad else out.mul_(x)

    def fuse_(self) -> None:
        """Merge bn1 into squeeze, bn2 and bn3 into excitate (the ERBs inside are fused by their own RRRBs)."""
        if self.deploy:
            return
        w, b = fold_bn_into_conv(self.squeeze.weight, self.squeeze.bias, self.bn1, bn_before_conv=True)
        squeeze = conv3x3_from(w, b, self.squeeze)
        w, b = fold_bn_into_conv(self.excitate.weight, self.excitate.bias, self.bn2, bn_before_conv=True)
        w, b = fold_bn_into_conv(w, b, self.bn3, bn_before_conv=False)
        excitate = conv3x3_from(w, b, self.excitate)
        self.squeeze, self.excitate = squeeze, excitate
        del self.bn1, self.bn2, self.bn3
        self.deploy = True


class FMEN(nn.Module):
    """Fast and Memory-Efficient Network (generic; see :func:`fmen` and :func:`fmen_s` for the paper's configs).

    Args:
        scale: upscaling factor (PixelShuffle).
        n_feats: trunk channels.
        mid_feats: channels inside the HFABs of the ERB-HFAB pairs.
        down_blocks: number of ERB-HFAB pairs.
        up_blocks: ERBs inside each HFAB: the warm-up HFAB first (when there is one), then one per pair.
        warmup_mid_feats: channels of the warm-up HFAB after the warm-up conv; ``None`` = no warm-up HFAB.
        backbone_ratio / attention_ratio: RRRB expand ratios in the trunk ERBs / in the HFABs' ERBs.
        block: trunk block, ``"erb"`` (FMEN), ``"rb"`` or ``"pb"`` (the block study, paper Fig. 5).
        deploy: ``True`` builds the deploy form (plain 3x3 convs, no BN); ``False`` the train-time form.
        n_colors: image channels.
    """

    data_range = 255.0

    def __init__(
        self,
        scale: int = 4,
        n_feats: int = 50,
        mid_feats: int = 16,
        down_blocks: int = 4,
        up_blocks: Sequence[int] = (2, 1, 1, 1, 1),
        warmup_mid_feats: int | None = 12,
        backbone_ratio: int = 2,
        attention_ratio: int = 2,
        block: str = "erb",
        deploy: bool = True,
        n_colors: int = 3,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {', '.join(BLOCKS)}")
        up_blocks = tuple(int(u) for u in up_blocks)
        n_hfab = down_blocks + (warmup_mid_feats is not None)
        if len(up_blocks) != n_hfab:
            raise ValueError(
                f"up_blocks needs {n_hfab} entries (warm-up HFAB first, then one per ERB-HFAB pair), "
                f"got {len(up_blocks)}: {up_blocks}"
            )
        if scale < 1 or n_feats < 1 or mid_feats < 1 or down_blocks < 0:
            raise ValueError("scale, n_feats and mid_feats must be positive and down_blocks >= 0")
        self.scale = scale
        self.deploy = deploy
        self.block = block
        self.down_blocks = down_blocks

        self.head = _conv3x3(n_colors, n_feats)
        warmup: list[nn.Module] = [_conv3x3(n_feats, n_feats)]
        if warmup_mid_feats is not None:
            warmup.append(HFAB(n_feats, up_blocks[0], warmup_mid_feats, attention_ratio, deploy))
        self.warmup = nn.Sequential(*warmup)
        off = n_hfab - down_blocks
        self.ERBs = nn.ModuleList(
            make_block(block, n_feats, ratio=backbone_ratio, deploy=deploy) for _ in range(down_blocks)
        )
        self.HFABs = nn.ModuleList(
            HFAB(n_feats, up_blocks[i + off], mid_feats, attention_ratio, deploy) for i in range(down_blocks)
        )
        self.lr_conv = _conv3x3(n_feats, n_feats)
        self.tail = nn.Sequential(_conv3x3(n_feats, n_colors * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        h = self.warmup(x)
        for erb, hfab in zip(self.ERBs, self.HFABs):
            h = erb(h)  # rebinding frees the ERB input before the HFAB runs, as in the official code
            h = hfab(h)
        h = self.lr_conv(h)
        h = h + x if h.requires_grad else h.add_(x)  # official: ``h += x``
        return self.tail(h)


class ERBBackbone(nn.Module):
    """The attention study's baseline (paper Sec. 4.4, Table 2): head conv -> ``n_blocks`` trunk blocks with an
    attention block after every ``every`` blocks -> lr conv (+ global residual) -> conv + PixelShuffle.

    ``attention`` is ``None`` (the plain baseline) or a factory ``attention(n_feats) -> nn.Module`` (e.g.
    ``functools.partial(HFAB, up_blocks=1, mid_feats=32, deploy=False)``, or a CCA / ESA block). With the defaults
    (15 ERBs, every 3) attention is applied 5 times, as in FMEN. Blocks and attention modules are listed in order
    in ``body``.
    """

    data_range = 255.0

    def __init__(
        self,
        scale: int = 4,
        n_feats: int = 64,
        n_blocks: int = 15,
        attention: Callable[[int], nn.Module] | None = None,
        every: int = 3,
        block: str = "erb",
        ratio: int = 2,
        deploy: bool = True,
        n_colors: int = 3,
    ) -> None:
        super().__init__()
        if n_blocks < 1 or every < 1:
            raise ValueError(f"n_blocks and every must be >= 1, got n_blocks={n_blocks}, every={every}")
        self.head = _conv3x3(n_colors, n_feats)
        body: list[nn.Module] = []
        for i in range(n_blocks):
            body.append(make_block(block, n_feats, ratio=ratio, deploy=deploy))
            if attention is not None and (i + 1) % every == 0:
                body.append(attention(n_feats))
        self.body = nn.Sequential(*body)
        self.lr_conv = _conv3x3(n_feats, n_feats)
        self.tail = nn.Sequential(_conv3x3(n_feats, n_colors * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(self.lr_conv(self.body(x)) + x)


# --- checkpoints -------------------------------------------------------------------------------------------------

_NTIRE22_URL = "https://github.com/ofsoundof/NTIRE2022_ESR/raw/e95ba4a4/model_zoo/team03_fmen.pth"
_NJU_URL = "https://github.com/NJU-Jet/FMEN/raw/a1def169d0e2c99ecebdb1b08bf567f329c3a566/test_weights.pt"

FMEN_S_CHECKPOINTS = (
    PretrainedCfg(
        filename="ntire22_team03_fmen.pth",
        url=_NTIRE22_URL,
        sha256="f20cde0828068c5f50d3b64aa82c8a363fe6abc8d536d1a9fd4d09899f019bea",
        key_layout="fmen_ntire22",
        source="ofsoundof/NTIRE2022_ESR @ e95ba4a4, model_zoo/team03_fmen.pth (the NTIRE 2022 ESR submission)",
        licence="MIT",
    ),
    PretrainedCfg(
        filename="FMEN_test_weights.pt",
        url=_NJU_URL,
        sha256="d5534eba1feacfdd4043d9175d3bf0730b1ab4c91ba5c3f40a2282cd496fb4a5",
        key_layout=None,
        source="NJU-Jet/FMEN @ a1def169, test_weights.pt (the authors' repository)",
        licence="Apache-2.0",
    ),
)


@register_key_layout("fmen_ntire22")
def fmen_ntire22_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NTIRE 2022 team03 layout (``basic_blocks.N`` / ``hfabs.N``) -> the authors' (``ERBs.N`` / ``HFABs.N``)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("basic_blocks."):
            k = "ERBs." + k.removeprefix("basic_blocks.")
        elif k.startswith("hfabs."):
            k = "HFABs." + k.removeprefix("hfabs.")
        out[k] = v
    return out


# --- zoo entries ---------------------------------------------------------------------------------------------------


@register_model(
    "fmen",
    scales=(2, 3, 4),
    data_range=255.0,
    paper=PAPER,
    has_deploy_form=True,
    description="FMEN: 64 feats, 5 ERB-HFAB pairs, HFAB mid 32 (paper Table 3)",
)
def fmen(scale: int = 4, deploy: bool = True, **overrides: object) -> FMEN:
    """FMEN, the paper's main model (Sec. 4.1): 64 trunk channels, 5 ERB-HFAB pairs, HFABs squeezing to 32.

    Config: head conv, warm-up conv, then 5 x (ERB, HFAB(mid 32)), lr conv, tail; the first HFAB holds 2 ERBs and
    the others 1, mirroring the official FMEN-S code (``up_blocks=[2, 1, ...]``), and there is no separate
    warm-up HFAB so that the network has exactly 5 HFABs (Sec. 4.4: "there are 5 HFABs in our network").
    Deploy-form params: 747,628 / 756,283 / 768,400 (x2/x3/x4) vs Table 3's 748K / 757K / 769K (<= 0.1% off).
    No FMEN checkpoint and no full-FMEN config were published; alternatives were rejected by their counts: the
    FMEN-S layout scaled to 64/32 gives 681K (4 pairs) or 811K (5 pairs) at x4, and a warm-up HFAB in place of the
    2-ERB HFAB matches the count but makes 6 HFABs.
    """
    cfg: dict[str, object] = dict(
        n_feats=64, mid_feats=32, down_blocks=5, up_blocks=(2, 1, 1, 1, 1), warmup_mid_feats=None
    )
    cfg.update(overrides)
    return FMEN(scale=scale, deploy=deploy, **cfg)  # type: ignore[arg-type]


@register_model(
    "fmen_s",
    scales=(4,),
    data_range=255.0,
    paper=PAPER,
    has_deploy_form=True,
    pretrained={4: FMEN_S_CHECKPOINTS},
    description="FMEN-S: 50 feats, warm-up HFAB + 4 ERB-HFAB pairs (NTIRE 2022 ESR)",
)
def fmen_s(scale: int = 4, deploy: bool = True, **overrides: object) -> FMEN:
    """FMEN-S, the NTIRE 2022 ESR entry (Sec. 4.5, Table 4): 50 channels everywhere except the HFABs.

    Config from the official code: head conv, warm-up conv + warm-up HFAB (mid 12, 2 ERBs), 4 x (ERB, HFAB(mid 16,
    1 ERB)), lr conv, tail. x4 deploy-form params: 341,066, equal to both official checkpoints.
    """
    cfg: dict[str, object] = dict(
        n_feats=50, mid_feats=16, down_blocks=4, up_blocks=(2, 1, 1, 1, 1), warmup_mid_feats=12
    )
    cfg.update(overrides)
    return FMEN(scale=scale, deploy=deploy, **cfg)  # type: ignore[arg-type]

"""Model factories for the studies' variants, and :func:`build_variant`, which builds any variant from its spec.

Every factory takes ``scale`` and returns a whole SR network (3-channel LR image in, 3-channel SR image out), so
that each variant runs through the sweep machinery like any zoo model.

* :func:`edsr_erb` - EDSR-baseline whose 16 residual blocks are ERBs (deploy form, ReLU), paper Table 1.
* :func:`attention_net` - the Table 2 baseline (15 ERBs, width 52, deploy form) with an attention block given by
  spec (zoo block class, ``file.py:Name`` or ``package.module:Name``) inserted after every 3 ERBs.
* :func:`plain_probe` / :func:`fusion_probe` - the Sec. 3.1 structures inside a 3x3 head and a 1x1 tail.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..base.errors import UsageError

__all__ = [
    "ATTENTION_WIDTH",
    "PlainFuse",
    "attention_net",
    "build_variant",
    "edsr_erb",
    "fusion_probe",
    "plain_probe",
    "resolve_attr",
]

#: Width of the Table 2 baseline. 15 deploy-form ERBs + head, lr conv and x4 tail (no warm-up conv) give
#: 279 C^2 + 491 C + 48 params: 779,996 at C = 52 (paper 779K, +0.13%); C = 51 gives 750,768 (-3.6%), C = 64
#: 1,174,256 (+51%). Alternatives, rejected: FMEN's extra warm-up conv gives 774,228 at C = 51 (-0.6%, farther
#: off) and 804,384 at C = 52; train-form ERBs (80 C^2 + 10 C each) give 770,948 at C = 25 (-1.0%), but the paper
#: counts FMEN (769K) in deploy form, so its baseline is counted the same way.
ATTENTION_WIDTH = 52


def resolve_attr(spec: str) -> Callable[..., nn.Module]:
    """The object named by ``file.py:Name`` or ``package.module:Name`` (a class or a factory)."""
    from ..zoo.spec import ModelSpec

    parsed = ModelSpec.parse(spec)
    if parsed.is_zoo:
        raise UsageError(f"an attention block is given as file.py:Name or package.module:Name, got {spec!r}")
    return parsed._resolve()


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_variant(spec: str, kwargs: Mapping[str, Any] | None = None, scale: int = 4) -> nn.Module:
    """Build one study variant in eval mode: a zoo name (``create_model(name, scale, **kwargs)``) or a
    ``file.py:Name`` / ``package.module:Name`` class or factory (called with ``kwargs``, plus ``scale`` when it
    takes one)."""
    from ..zoo.spec import ModelSpec

    kwargs = dict(kwargs or {})
    parsed = ModelSpec.parse(spec, kwargs=kwargs)
    if not parsed.is_zoo and "scale" not in kwargs and _takes(parsed._resolve(), "scale"):
        parsed = ModelSpec.parse(spec, kwargs={**kwargs, "scale": scale})
    return parsed.build(scale=scale)


def edsr_erb(scale: int = 4, n_resblocks: int = 16, n_feats: int = 64) -> nn.Module:
    """EDSR-baseline with every residual block replaced by an ERB in deploy form (RRRB -> ReLU -> RRRB, i.e. two
    3x3 convs with no skip), keeping EDSR's ReLU, long skip, mean shifts and upsampler (paper Sec. 4.2)."""
    from ..zoo.models.edsr import EDSR
    from ..zoo.models.fmen import ERB

    net = EDSR(upscale=scale, n_resblocks=n_resblocks, n_feats=n_feats, block="rb")
    for i in range(n_resblocks):
        net.body[i] = ERB(n_feats, deploy=True, act=nn.ReLU(inplace=True))
    return net.eval()


def attention_net(
    scale: int = 4,
    attention: str | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    n_feats: int = ATTENTION_WIDTH,
    n_blocks: int = 15,
    every: int = 3,
    block: str = "erb",
) -> nn.Module:
    """The attention study's network (paper Sec. 4.4): ``ERBBackbone`` with 15 deploy-form ERBs of ``n_feats``
    channels and, when ``attention`` is a spec, ``attention(n_feats, **attention_kwargs)`` after every ``every``
    blocks (5 blocks with the defaults)."""
    from ..zoo.models.fmen import ERBBackbone

    factory: Callable[[int], nn.Module] | None = None
    if attention is not None:
        cls = resolve_attr(attention)
        if not callable(cls):
            raise UsageError(f"attention block {attention!r} is not a class or a factory")
        extra = dict(attention_kwargs or {})

        def factory(c: int) -> nn.Module:
            return cls(c, **extra)

    return ERBBackbone(
        scale=scale,
        n_feats=n_feats,
        n_blocks=n_blocks,
        attention=factory,
        every=every,
        block=block,
        deploy=True,
    ).eval()


class PlainFuse(nn.Module):
    """The plain counterpart of an ``n``-feature fusion block with equal params and MACs: ``n - 1`` 3x3 convs
    (C -> C, in-place ReLU) then ``n`` chained 1x1 convs C -> C of which only the last has a bias.

    Params: ``(n-1)(9C^2 + C) + n C^2 + C``, the same as :class:`effbench.memory.FusionBlock` with ``n - 1`` convs
    (whose 1x1 fuse maps ``n C -> C``); MACs per pixel are equal too. Its peak is 2 x C x H x W at every conv."""

    def __init__(self, n: int, c: int = 64) -> None:
        super().__init__()
        if n < 2 or c < 1:
            raise ValueError(f"PlainFuse needs n >= 2 fused features and c >= 1, got n={n}, c={c}")
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(n - 1))
        self.act = nn.ReLU(inplace=True)
        self.fuse = nn.Sequential(*[nn.Conv2d(c, c, 1, bias=(i == n - 1)) for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.act(conv(x))
        for conv in self.fuse:  # rebinding x frees each feature (calling self.fuse(x) would keep x alive)
            x = conv(x)
        return x


class _Probe(nn.Module):
    """3x3 head (3 -> C), the structure under study, 1x1 tail (C -> 3 s^2) and PixelShuffle: an SR network."""

    data_range = 255.0

    def __init__(self, body: nn.Module, c: int, scale: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = body
        self.tail = nn.Sequential(nn.Conv2d(c, 3 * scale * scale, 1), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


def plain_probe(scale: int = 1, n: int = 2, c: int = 64) -> nn.Module:
    """:class:`PlainFuse` for ``n`` features inside a head and a tail (Sec. 3.1 plain topology)."""
    return _Probe(PlainFuse(n, c), c, scale).eval()


def fusion_probe(scale: int = 1, n: int = 2, c: int = 64) -> nn.Module:
    """``effbench.memory.fusion_block(n - 1, c)`` (``n`` features concatenated, 1x1 fuse) inside a head and a
    tail (Sec. 3.1 fusion structure)."""
    from ..memory import fusion_block

    if n < 2:
        raise ValueError(f"a fusion of n features needs n >= 2, got {n}")
    return _Probe(fusion_block(n - 1, c), c, scale).eval()

"""Structural re-parameterisation: turn a train-time model into its deploy form.

Each re-parameterisable block (FMEN's RRRB and HFAB, see ``effbench.zoo.models.fmen``) derives from
:class:`Reparameterizable` and implements :meth:`Reparameterizable.fuse_`, which rewrites that block *in place*
into its deploy form (plain 3x3 convolutions, BatchNorm merged) with exactly the same eval-mode function.
:func:`reparameterize` walks a module tree and fuses every such block; third-party blocks following the RepVGG
convention (a ``switch_to_deploy()`` method) are fused too.

The folding maths lives here as small pure functions (float64 internally, cast back to the parameters' dtype):
:func:`fold_bn_into_conv` (BN before or after a convolution), :func:`fold_rrrb` (1x1 expand -> 3x3 -> 1x1 reduce
with the inner and outer identities) and :func:`conv3x3_from`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = [
    "Reparameterizable",
    "reparameterize",
    "fold_bn_into_conv",
    "fold_rrrb",
    "conv3x3_from",
    "bn_scale_shift",
    "bn_shift",
    "pad_with",
    "is_deploy_form",
]


class Reparameterizable:
    """Mixin for blocks with a train-time and a deploy form.

    Subclasses set ``self.deploy`` and implement :meth:`fuse_`. After ``fuse_()`` the block's state-dict keys are
    those of the block built with ``deploy=True``.
    """

    deploy: bool

    def fuse_(self) -> None:
        """Rewrite this block in place into its deploy form (no-op when already deployed)."""
        raise NotImplementedError


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = scale * x + shift`` per channel (float64), from its running statistics."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{bn} has no running statistics (track_running_stats=False); it cannot be folded")
    mean = bn.running_mean.detach().double()
    var = bn.running_var.detach().double()
    std = torch.sqrt(var + bn.eps)
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / std
    return scale, beta - mean * scale


def bn_shift(bn: nn.BatchNorm2d) -> torch.Tensor:
    """The value eval-mode BN outputs for a zero input (its shift), in BN's own dtype: the padding value that makes
    "BN, then pad with this, then an unpadded conv" equal to "zero-padded conv on BN-folded weights"."""
    mean, var = bn.running_mean, bn.running_var
    if mean is None or var is None:
        raise ValueError(f"{bn} has no running statistics (track_running_stats=False)")
    shift = -mean * torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        shift = shift * bn.weight
    if bn.bias is not None:
        shift = shift + bn.bias
    return shift


def fold_bn_into_conv(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d, *, bn_before_conv: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge an eval-mode BatchNorm into a convolution; returns float64 ``(weight, bias)``.

    ``bn_before_conv=True``: ``conv(BN(x))`` where the BN output is padded with the BN shift (so the fold is exact
    at the borders too). ``False``: ``BN(conv(x))``.
    """
    w = weight.detach().double()
    b = (
        bias.detach().double()
        if bias is not None
        else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
    )
    scale, shift = bn_scale_shift(bn)
    if bn_before_conv:
        if scale.numel() != w.shape[1]:
            raise ValueError(f"BN has {scale.numel()} channels but the conv takes {w.shape[1]}")
        return w * scale.view(1, -1, 1, 1), b + torch.einsum("oiuv,i->o", w, shift)
    if scale.numel() != w.shape[0]:
        raise ValueError(f"BN has {scale.numel()} channels but the conv gives {w.shape[0]}")
    return w * scale.view(-1, 1, 1, 1), b * scale + shift


def fold_rrrb(expand: nn.Conv2d, fea: nn.Conv2d, reduce: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold FMEN's residual-in-residual block into one 3x3 kernel; returns float64 ``(weight, bias)``.

    The train form computes ``e = expand(x)`` (1x1), ``f = fea(pad(e, value=expand.bias)) + e`` (3x3, unpadded),
    ``y = reduce(f) + x`` (1x1). Padding ``e`` with the expand bias makes it equal to ``expand`` applied to the
    zero-padded ``x``, so the composite is exactly one zero-padded 3x3 convolution of ``x``.
    """
    for conv, k in ((expand, 1), (fea, 3), (reduce, 1)):
        if conv.kernel_size != (k, k) or conv.groups != 1 or conv.stride != (1, 1) or conv.dilation != (1, 1):
            raise ValueError(f"cannot fold {conv}: expected a plain {k}x{k} convolution")
    w0 = expand.weight.detach().double()[:, :, 0, 0]  # (M, C)
    w1 = fea.weight.detach().double().clone()  # (M, M, 3, 3)
    w2 = reduce.weight.detach().double()[:, :, 0, 0]  # (C, M)
    b0, b1, b2 = (_bias64(c) for c in (expand, fea, reduce))
    mid, n_in = w0.shape
    if w1.shape[:2] != (mid, mid) or w2.shape[1] != mid or w2.shape[0] != n_in:
        raise ValueError("RRRB convolutions do not chain: expected C->M (1x1), M->M (3x3), M->C (1x1)")
    idx = torch.arange(mid)
    w1[idx, idx, 1, 1] += 1.0  # inner identity: f = fea(e_padded) + e
    w01 = torch.einsum("omuv,mi->oiuv", w1, w0)
    b01 = b1 + torch.einsum("omuv,m->o", w1, b0)
    w = torch.einsum("cm,miuv->ciuv", w2, w01)
    b = w2 @ b01 + b2
    idx = torch.arange(n_in)
    w[idx, idx, 1, 1] += 1.0  # outer identity: y = reduce(f) + x
    return w, b


def _bias64(conv: nn.Conv2d) -> torch.Tensor:
    if conv.bias is None:
        return torch.zeros(conv.out_channels, dtype=torch.float64, device=conv.weight.device)
    return conv.bias.detach().double()


def conv3x3_from(weight: torch.Tensor, bias: torch.Tensor, like: nn.Conv2d | nn.Parameter) -> nn.Conv2d:
    """A zero-padded 3x3 ``nn.Conv2d`` holding ``weight``/``bias``, on the device and in the dtype of ``like``."""
    ref = like.weight if isinstance(like, nn.Conv2d) else like
    out_c, in_c, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"expected a 3x3 kernel, got {kh}x{kw}")
    conv = nn.Conv2d(in_c, out_c, 3, 1, 1, device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.to(ref.dtype))
        conv.bias.copy_(bias.to(ref.dtype))
    return conv


def pad_with(t: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Pad a (N, C, H, W) tensor by one pixel on every side with a per-channel ``value`` (C,) instead of zeros."""
    n, c, h, w = t.shape
    out = value.to(t.dtype).view(1, c, 1, 1).expand(n, c, h + 2, w + 2).clone()
    out[:, :, 1:-1, 1:-1] = t
    return out


def is_deploy_form(model: nn.Module) -> bool:
    """True when no re-parameterisable block of ``model`` is still in its train-time form."""
    return not any(isinstance(m, Reparameterizable) and not m.deploy for m in model.modules())


def reparameterize(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return the deploy form of ``model``: every :class:`Reparameterizable` block fused (and RepVGG-style blocks
    with ``switch_to_deploy()`` switched).

    By default works on a deep copy and leaves ``model`` untouched; ``inplace=True`` rewrites ``model`` itself
    and returns it. The train/eval mode is kept. A model without re-parameterisable blocks comes back unchanged
    (as a copy). Folding uses BatchNorm running statistics, i.e. the eval-mode function.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"reparameterize expects a torch.nn.Module, got {type(model).__name__}")
    out = model if inplace else copy.deepcopy(model)
    for module in list(out.modules()):
        if isinstance(module, Reparameterizable):
            module.fuse_()
        elif callable(getattr(module, "switch_to_deploy", None)):
            module.switch_to_deploy()
    if hasattr(out, "deploy") and isinstance(out.deploy, bool):
        out.deploy = True
    return out

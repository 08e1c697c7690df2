"""Stand-in for ``mamba_ssm.ops.triton.layernorm`` (effbench.base.stand_ins): its fused (Triton) layer and RMS
norms with an optional residual, in plain PyTorch ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RMSNorm", "layer_norm_fn", "rms_norm_fn"]


def layer_norm_fn(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    residual: Tensor | None = None,
    eps: float = 1e-6,
    prenorm: bool = False,
    residual_in_fp32: bool = False,
    is_rms_norm: bool = False,
    **kwargs: object,
) -> Tensor | tuple[Tensor, Tensor]:
    """Norm of ``x + residual`` (layer or RMS); with ``prenorm`` also that sum, which the next block adds."""
    if residual is not None:
        x = (x.float() + residual.float()) if residual_in_fp32 else x + residual
    res = x.float() if residual_in_fp32 else x
    if is_rms_norm:
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
        y = y + bias if bias is not None else y
    else:
        y = F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    return (y, res) if prenorm else y


def rms_norm_fn(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    residual: Tensor | None = None,
    prenorm: bool = False,
    residual_in_fp32: bool = False,
    eps: float = 1e-6,
    **kwargs: object,
) -> Tensor | tuple[Tensor, Tensor]:
    return layer_norm_fn(x, weight, bias, residual, eps, prenorm, residual_in_fp32, is_rms_norm=True)


class RMSNorm(nn.Module):
    def __init__(
        self, hidden_size: int, eps: float = 1e-5, device: object = None, dtype: object = None
    ) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype))
        self.register_parameter("bias", None)

    def forward(
        self, x: Tensor, residual: Tensor | None = None, prenorm: bool = False, residual_in_fp32: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        return rms_norm_fn(x, self.weight, self.bias, residual, prenorm, residual_in_fp32, self.eps)

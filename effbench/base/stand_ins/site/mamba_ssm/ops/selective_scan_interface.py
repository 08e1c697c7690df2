"""Stand-in for ``mamba_ssm.ops.selective_scan_interface`` (effbench.base.stand_ins)."""

from __future__ import annotations

from torch import Tensor

from effbench.base.stand_ins.ops import scan_reference, selective_scan

__all__ = ["selective_scan_fn", "selective_scan_ref"]


def selective_scan_fn(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """mamba_ssm's fused selective scan, as one custom op (counted by its FLOP formula)."""
    out, last = selective_scan(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus))
    return (out, last) if return_last_state else out


def selective_scan_ref(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """mamba_ssm's reference scan: plain PyTorch ops (counted op by op, as the real reference is)."""
    out, last = scan_reference(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus))
    return (out, last) if return_last_state else out

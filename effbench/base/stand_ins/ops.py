"""CPU stand-ins for CUDA-only kernels other people's models import: mamba_ssm's selective scan and selective
state update, causal_conv1d's convolution and its update, written here (reference semantics, run in plain
PyTorch) as ``torch.library`` custom ops ``effbench_stand_ins::*``.

Each op has a fake (shapes-only) implementation, so effbench's meta/fake traces replay it, and a FLOP formula
registered with :func:`torch.utils.flop_counter.register_flop_formula`, in that module's unit (FLOPs; a
multiply-add is 2): the selective scan counts ``9 B L D N`` (+ ``B D L`` for the skip term ``D``, + ``B D L`` for
the gate ``z``), as mamba_ssm's own ``flops_selective_scan_fn`` does; a state update is a scan of length 1; the
causal depthwise convolution counts ``2 B D L W`` (+ ``B D L`` for its bias). The real implementations loop over
the sequence (for correctness on small inputs, not speed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

__all__ = [
    "scan_reference",
    "causal_conv1d",
    "causal_conv1d_update",
    "selective_scan",
    "selective_state_update",
]

_LIB = "effbench_stand_ins"
_CHUNK = 32  # scan steps solved at once (memory: batch x D x 32 x 32 x N)


def _expand_group(t: Tensor, d: int) -> Tensor:
    """B/C of a scan as (batch, D, N, L): (batch, N, L) shared by every channel, or (batch, G, N, L) by groups."""
    if t.dim() == 3:
        return t.unsqueeze(1).expand(t.shape[0], d, t.shape[1], t.shape[2])
    return t.repeat_interleave(d // t.shape[1], dim=1)


def scan_reference(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> tuple[Tensor, Tensor]:
    """The selective scan in plain PyTorch ops (what mamba_ssm's ``selective_scan_ref`` computes): u, delta, z
    (batch, D, L); A (D, N); B, C (batch, [G,] N, L) or (D, N); D (D,); returns the output (batch, D, L) and the
    last state (batch, D, N)."""
    dtype = u.dtype
    u, delta = u.float(), delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[..., None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, d, length = u.shape
    n = A.shape[1]
    variable_b, variable_c = B.dim() >= 3, C.dim() >= 3
    b = _expand_group(B.float(), d) if variable_b else B.float()
    c = _expand_group(C.float(), d) if variable_c else C.float()
    x = u.new_zeros(batch, d, n)
    ys = []
    for s in range(0, length, _CHUNK):  # within a chunk: every step's decay from every earlier step at once
        e = min(s + _CHUNK, length)
        decay = torch.cumsum(delta[:, :, s:e, None] * A.float()[:, None, :], dim=2)  # (batch, D, T, N)
        bi = b[..., s:e].transpose(-1, -2) if variable_b else b[:, None, :]
        inputs = delta[:, :, s:e, None] * bi * u[:, :, s:e, None]  # (batch, D, T, N)
        gaps = decay[:, :, :, None, :] - decay[:, :, None, :, :]  # t, s -> decay from s to t
        steps = e - s
        causal = torch.ones(steps, steps, dtype=torch.bool, device=u.device).tril()
        weights = torch.where(causal[:, :, None], gaps, gaps.new_full((), float("-inf"))).exp()
        states = (weights * inputs[:, :, None, :, :]).sum(3) + decay.exp() * x[:, :, None, :]
        ci = c[..., s:e].transpose(-1, -2) if variable_c else c[:, None, :]
        ys.append((states * ci).sum(-1))
        x = states[:, :, -1]
    y = torch.cat(ys, dim=-1) if ys else u.new_zeros(batch, d, 0)
    if D is not None:
        y = y + u * D.float()[..., None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype), x.to(dtype)


@torch.library.custom_op(
    f"{_LIB}::selective_scan",
    mutates_args=(),
    schema="(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? delta_bias, "
    "bool delta_softplus) -> (Tensor, Tensor)",
)
def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> tuple[Tensor, Tensor]:
    """mamba_ssm's ``selective_scan_fn`` as one opaque op (:func:`scan_reference` inside)."""
    return scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@selective_scan.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus):  # type: ignore[no-untyped-def]
    return torch.empty_like(u), u.new_empty(u.shape[0], u.shape[1], A.shape[1])


@register_flop_formula(torch.ops.effbench_stand_ins.selective_scan)
def _scan_flops(u_shape, delta_shape, A_shape, B_shape, C_shape, D_shape, z_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    batch, d, length = u_shape
    n = A_shape[1]
    flops = 9 * batch * length * d * n
    if D_shape is not None:
        flops += batch * d * length
    if z_shape is not None:
        flops += batch * d * length
    return flops


@torch.library.custom_op(
    f"{_LIB}::selective_state_update",
    mutates_args=("state",),
    schema="(Tensor(a!) state, Tensor x, Tensor dt, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, "
    "Tensor? dt_bias, bool dt_softplus) -> Tensor",
)
def selective_state_update(
    state: Tensor,
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    dt_bias: Tensor | None,
    dt_softplus: bool,
) -> Tensor:
    """mamba_ssm's ``selective_state_update`` (one decoding step): state (batch, D, N) updated in place; x, dt,
    z (batch, D); A (D, N); B, C (batch, N); returns (batch, D)."""
    dt = dt.float()
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    da = torch.exp(dt[..., None] * A.float())
    new = state.float() * da + dt[..., None] * B.float()[:, None, :] * x.float()[..., None]
    state.copy_(new.to(state.dtype))
    y = (new * C.float()[:, None, :]).sum(-1)
    if D is not None:
        y = y + x.float() * D.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(x.dtype)


@selective_state_update.register_fake
def _(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus):  # type: ignore[no-untyped-def]
    return torch.empty_like(x)


@register_flop_formula(torch.ops.effbench_stand_ins.selective_state_update)
def _update_flops(
    state_shape, x_shape, dt_shape, A_shape, B_shape, C_shape, D_shape, z_shape, *args, **kwargs
) -> int:  # type: ignore[no-untyped-def]
    return _scan_flops((*x_shape, 1), None, A_shape, B_shape, C_shape, D_shape, z_shape)


@torch.library.custom_op(
    f"{_LIB}::causal_conv1d",
    mutates_args=(),
    schema="(Tensor x, Tensor weight, Tensor? bias, bool silu) -> Tensor",
)
def causal_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool) -> Tensor:
    """causal_conv1d's ``causal_conv1d_fn``: a depthwise convolution seeing only the past; x (batch, D, L),
    weight (D, W); SiLU after it when ``silu``."""
    width = weight.shape[-1]
    y = F.conv1d(x, weight.unsqueeze(1), bias, padding=width - 1, groups=x.shape[1])[..., : x.shape[-1]]
    return F.silu(y) if silu else y


@causal_conv1d.register_fake
def _(x, weight, bias, silu):  # type: ignore[no-untyped-def]
    return torch.empty_like(x)


@register_flop_formula(torch.ops.effbench_stand_ins.causal_conv1d)
def _conv_flops(x_shape, weight_shape, bias_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    batch, d, length = x_shape
    return 2 * batch * d * length * weight_shape[-1] + (batch * d * length if bias_shape is not None else 0)


@torch.library.custom_op(
    f"{_LIB}::causal_conv1d_update",
    mutates_args=("conv_state",),
    schema="(Tensor x, Tensor(a!) conv_state, Tensor weight, Tensor? bias, bool silu) -> Tensor",
)
def causal_conv1d_update(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None, silu: bool
) -> Tensor:
    """causal_conv1d's ``causal_conv1d_update`` (one step): conv_state (batch, D, W) shifted in place and ``x``
    (batch, D) appended; returns (batch, D)."""
    conv_state.copy_(torch.cat([conv_state[..., 1:], x.unsqueeze(-1)], dim=-1))
    y = (conv_state * weight).sum(-1)
    if bias is not None:
        y = y + bias
    return F.silu(y) if silu else y


@causal_conv1d_update.register_fake
def _(x, conv_state, weight, bias, silu):  # type: ignore[no-untyped-def]
    return torch.empty_like(x)


@register_flop_formula(torch.ops.effbench_stand_ins.causal_conv1d_update)
def _conv_update_flops(x_shape, conv_state_shape, weight_shape, bias_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    return _conv_flops((*x_shape, 1), weight_shape, bias_shape)

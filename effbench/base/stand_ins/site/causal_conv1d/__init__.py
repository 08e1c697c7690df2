"""effbench's CPU stand-in for causal_conv1d (effbench.base.stand_ins)."""

from __future__ import annotations

from torch import Tensor

from effbench.base.stand_ins.ops import causal_conv1d
from effbench.base.stand_ins.ops import causal_conv1d_update as _update

__version__ = "0.0+effbench.stand_in"
__all__ = ["causal_conv1d_fn", "causal_conv1d_update"]


def _silu(activation: str | None) -> bool:
    if activation not in (None, "silu", "swish"):
        raise NotImplementedError(
            f"causal_conv1d: activation must be None, 'silu' or 'swish', not {activation!r}"
        )
    return activation is not None


def causal_conv1d_fn(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    seq_idx: Tensor | None = None,
    activation: str | None = None,
    **kwargs: object,
) -> Tensor:
    """A depthwise convolution over the past only: x (batch, D, L), weight (D, W)."""
    if seq_idx is not None or kwargs.get("initial_states") is not None or kwargs.get("return_final_states"):
        raise NotImplementedError(
            "causal_conv1d stand-in: seq_idx, initial_states and final states are not supported"
        )
    return causal_conv1d(x, weight, bias, _silu(activation))


def causal_conv1d_update(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = None
) -> Tensor:
    """One step: ``conv_state`` (batch, D, W) shifted in place, ``x`` (batch, D) appended."""
    return _update(x, conv_state, weight, bias, _silu(activation))

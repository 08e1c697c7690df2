"""Stand-in for ``mamba_ssm.ops.triton.selective_state_update`` (effbench.base.stand_ins)."""

from __future__ import annotations

from torch import Tensor

from effbench.base.stand_ins.ops import selective_state_update as _update

__all__ = ["selective_state_update"]


def selective_state_update(
    state: Tensor,
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
) -> Tensor:
    """One step of the selective scan; ``state`` is updated in place."""
    return _update(state, x, dt, A, B, C, D, z, dt_bias, bool(dt_softplus))

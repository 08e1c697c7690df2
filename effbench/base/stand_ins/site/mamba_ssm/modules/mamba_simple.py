"""Stand-in for ``mamba_ssm.modules.mamba_simple`` (effbench.base.stand_ins): the Mamba block with the same
parameters (so checkpoints load) and mamba_ssm's non-fused path (causal depthwise convolution, projections,
the selective scan as one custom op)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

__all__ = ["Mamba"]


class Mamba(nn.Module):
    """``Mamba(d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", ...)``: (batch, L, d_model) ->
    (batch, L, d_model)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        use_fast_path: bool = True,
        layer_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.use_fast_path, self.layer_idx = use_fast_path, layer_idx
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias, **kw)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1, bias=conv_bias, **kw
        )
        self.activation = "silu"
        self.act = nn.SiLU()
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + d_state * 2, bias=False, **kw)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **kw)
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(
            torch.rand(self.d_inner, **kw) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner, device=device))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **kw)

    def forward(self, hidden_states: Tensor, inference_params: Any = None) -> Tensor:
        if inference_params is not None:
            raise NotImplementedError("the mamba_ssm stand-in runs whole sequences (no inference_params)")
        batch, length, _ = hidden_states.shape
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (batch, 2 d_inner, L)
        x, z = xz.chunk(2, dim=1)
        x = self.act(self.conv1d(x)[..., :length])
        x_dbl = self.x_proj(x.transpose(1, 2).reshape(batch * length, self.d_inner))
        dt, b, c = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.t()).reshape(batch, length, self.d_inner).transpose(1, 2)
        b = b.reshape(batch, length, self.d_state).transpose(1, 2)
        c = c.reshape(batch, length, self.d_state).transpose(1, 2)
        a = -torch.exp(self.A_log.float())
        y = selective_scan_fn(
            x, dt, a, b, c, self.D.float(), z=z, delta_bias=self.dt_proj.bias.float(), delta_softplus=True
        )
        return self.out_proj(y.transpose(1, 2))

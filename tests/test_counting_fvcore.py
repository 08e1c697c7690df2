"""Convention `fvcore` == fvcore.nn.FlopCountAnalysis(model, x).total() -- the NTIRE 2024-2026 counter -- for
every zoo model and scale at two input sizes (one odd), with fvcore itself run as the oracle."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import effbench
from effbench.counting import profile

fvcore_nn = pytest.importorskip("fvcore.nn")

SIZES = [(32, 32), (23, 17)]  # fvcore's cost grows with the size (a real forward): keep them small


def fvcore_total(model: nn.Module, hw: tuple[int, int], channels: int = 3) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    try:
        fa = fvcore_nn.FlopCountAnalysis(model, torch.rand(1, channels, *hw))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        return int(fa.total())
    finally:
        torch.set_num_threads(threads)


def ours(model: nn.Module, hw: tuple[int, int], channels: int = 3) -> int:
    p = profile(model, hw, convention="fvcore", channels=channels, peak_memory=False)
    assert p.flops == p.macs  # fvcore counts a fused multiply-add as one flop
    return p.flops


@pytest.mark.parametrize("name", effbench.list_models())
def test_equals_fvcore_on_every_zoo_model_scale_and_size(name: str) -> None:
    for scale in effbench.model_info(name).scales:
        model = effbench.create_model(name, scale=scale)
        for hw in SIZES:
            assert ours(model, hw) == fvcore_total(model, hw), (name, scale, hw)


class Mixed(nn.Module):
    """Ops fvcore counts at the torch level (linear on 3-D input, matmul, einsum, the norms, interpolation,
    adaptive pooling, grid_sample) next to ones it ignores (add, mul, sigmoid, leaky_relu, pixel_shuffle)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.ln = nn.LayerNorm(8)
        self.lin = nn.Linear(8, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.w = nn.Parameter(torch.randn(8, 8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.bn(self.conv(x)), 0.1)
        y = self.inorm(self.gn(self.up(y)))
        n, c, h, w = y.shape
        t = self.ln(y.flatten(2).transpose(1, 2))  # n, hw, c
        t = self.lin(t)
        a = torch.einsum("nqc,nkc->nqk", t, t).softmax(-1)
        t = a @ t + torch.matmul(t, self.lin.weight)
        y = t.transpose(1, 2).reshape(n, c, h, w) * torch.sigmoid(self.pool(y))
        y = F.conv2d(y, self.w) + F.interpolate(y, scale_factor=0.5, mode="nearest").repeat(1, 1, 2, 2)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        grid = torch.zeros(n, 4, 4, 2)
        y = y + F.grid_sample(y, grid, align_corners=False).mean()
        return F.pixel_shuffle(F.adaptive_avg_pool2d(y, (h, w)), 2)


@pytest.mark.parametrize("hw", SIZES)
def test_equals_fvcore_on_torch_level_ops(hw: tuple[int, int]) -> None:
    model = Mixed().eval()
    assert ours(model, hw, channels=4) == fvcore_total(model, hw, channels=4)


def test_fvcore_ignores_elementwise_work_that_full_counts() -> None:
    model = Mixed().eval()
    fv = profile(model, (16, 16), convention="fvcore", channels=4, peak_memory=False)
    full = profile(model, (16, 16), convention="full", channels=4, peak_memory=False)
    names = {r["name"] for r in full.by_op if r["flops"] > 0}
    assert {"leaky_relu", "sigmoid", "mul", "add"} <= names
    assert not {"leaky_relu", "sigmoid", "mul", "add"} & {r["name"] for r in fv.by_op if r["flops"] > 0}
    assert full.flops > 2 * fv.flops

"""Convention `fvcore` == fvcore.nn.FlopCountAnalysis(model, x).total() -- the NTIRE 2024-2026 counter -- for
every zoo model and scale at two input sizes (one odd), with fvcore itself run as the oracle."""

from __future__ import annotations

import logging
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import effbench
from effbench.base.plugins import import_file
from effbench.counting import compare_conventions, profile

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


class StringPadding(nn.Module):
    """``padding='same'`` / ``'valid'`` convolutions (fvcore: ``aten::_convolution_mode``, no handle, 0) beside a
    numeric one and a reflect-padded 'same' one (padded first, then a plain convolution fvcore counts)."""

    def __init__(self) -> None:
        super().__init__()
        self.same = nn.Conv2d(3, 8, 3, padding="same")
        self.plain = nn.Conv2d(8, 8, 3, padding=1)
        self.valid = nn.Conv2d(8, 8, (1, 3), padding="valid")
        self.reflect = nn.Conv2d(8, 8, 3, padding="same", padding_mode="reflect")
        self.w = nn.Parameter(torch.randn(8, 8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reflect(self.valid(self.plain(self.same(x))))
        return F.conv2d(y, self.w, padding="same") + F.conv2d(y, self.w, None, 1, "valid")


@pytest.mark.parametrize("hw", SIZES)
def test_string_padding_counts_zero_as_in_fvcore(hw: tuple[int, int]) -> None:
    model = StringPadding().eval()
    assert ours(model, hw) == fvcore_total(model, hw)
    fa = fvcore_nn.ActivationCountAnalysis(model, torch.rand(1, 3, *hw))
    fa.unsupported_ops_warnings(False)
    p = profile(model, hw, convention="fvcore", peak_memory=False)
    assert p.activations == fa.total()  # fvcore's ActivationCountAnalysis leaves them out too
    assert p.convs == 2 and "aten._convolution_mode" in p.unknown_ops


def test_compare_conventions_shows_the_string_padding_gap() -> None:
    model = StringPadding().eval()
    p = compare_conventions(model, (16, 16))
    assert p["full"].convs == 6 and p["fvcore"].convs == 2
    assert p["ntire2022"].convs == 4  # the hook tool counts nn.Conv2d modules, string padding or not
    plain_and_reflect = 8 * 8 * 9 * 16 * 16 + 8 * 8 * 9 * 16 * 14  # the two convolutions fvcore sees
    assert p["fvcore"].flops == plain_and_reflect
    assert p["ntire2022"].flops > p["fvcore"].flops


# NTIRE 2024 entries with padding='same' convolutions: FLOPs as the organisers' test_demo.py reports them
# (fvcore FlopCountAnalysis on a 1x3x256x256 input), the official numbers of their results.
NTIRE2024_SAME = {
    "team28_MSN.py:MSN": ({}, 4500392064),
    "team33_IFADNet.py:IFADNet": ({"deploy": True}, 9776555520),
    "team41_HARN.py:HARN": ({}, 9839672620),
    "team44_LSANet.py:LSANet": ({"deploy": True}, 8162797056),
}


@pytest.mark.shared
@pytest.mark.parametrize("entry", list(NTIRE2024_SAME))
def test_ntire2024_same_padding_entries_equal_the_official_flops(
    entry: str, shared_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = shared_dir / "challenges" / "ntire2024" / "models"
    if not models.is_dir():
        pytest.skip(f"the NTIRE 2024 repository is not at {models.parent}")
    pytest.importorskip("matplotlib")
    pytest.importorskip("einops")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # the shared folder is read-only
    file, name = entry.split(":")
    kwargs, official = NTIRE2024_SAME[entry]
    model = getattr(import_file(models / file, "effbench_ntire2024"), name)(**kwargs).eval()
    p = compare_conventions(model, (256, 256), conventions=["fvcore", "full"])
    assert p["fvcore"].flops == official
    assert p["full"].macs > official  # full counts the 'same' convolutions fvcore misses

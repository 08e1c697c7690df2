"""An independent re-implementation of the NTIRE 2022/2023 efficient-SR tool's algorithm (utils/model_summary.py of
ofsoundof/NTIRE2022_ESR): real forward hooks on ``model.modules()``, one real CPU forward per count, hooks removed
afterwards. Used as the oracle for effbench's ``ntire2022`` convention, which never runs a real forward."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

_FLOP_TYPES = (
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.BatchNorm2d,
    nn.Linear,
    nn.ReLU,
    nn.PReLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.ReLU6,
)


def official_counts(model: nn.Module, input_res: tuple[int, int, int]) -> dict[str, int]:
    """(params, flops, activations, convs) as the official tool prints them for ``1 x input_res``."""
    flops = {}
    acts = {}
    handles = []

    def conv_flops(m, inp, out):
        per_position = int(np.prod(m.kernel_size)) * m.in_channels * (m.out_channels // m.groups)
        flops[m] += per_position * int(out.shape[0] * np.prod(out.shape[2:]))

    def relu_flops(m, inp, out):
        flops[m] += int(out.numel())

    def linear_flops(m, inp, out):
        x = inp[0]
        if x.dim() == 1:
            flops[m] += int(x.shape[0] * out.shape[0])
        else:
            flops[m] += int(x.shape[0] * x.shape[1] * out.shape[1])

    def bn_flops(m, inp, out):
        n = out.shape[0] * m.num_features * int(np.prod(out.shape[2:]))
        flops[m] += int(n * (2 if m.affine else 1))

    def conv_acts(m, inp, out):
        acts[m][0] += int(out.numel())
        acts[m][1] += 1

    for m in model.modules():
        if isinstance(m, _FLOP_TYPES) and m not in flops:
            flops[m] = 0
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fn = conv_flops
            elif isinstance(m, (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)):
                fn = relu_flops
            elif isinstance(m, nn.Linear):
                fn = linear_flops
            else:
                fn = bn_flops
            handles.append(m.register_forward_hook(fn))
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m not in acts:
            acts[m] = [0, 0]
            handles.append(m.register_forward_hook(conv_acts))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny inputs: threads only add contention on shared CI cores
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_res))
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.remove()
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "flops": sum(flops.values()),
        "activations": sum(a for a, _ in acts.values()),
        "convs": sum(c for _, c in acts.values()),
    }


# ----------------------------------------------------------------------------------------------------------------------
# The tests: effbench's table-driven ntire2022 convention (shapes-only trace) == the hook tool (real forward).


import pytest  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import effbench  # noqa: E402
from effbench.counting import profile  # noqa: E402


def ours(model: nn.Module, hw: tuple[int, int]) -> dict[str, int]:
    p = profile(model, hw, convention="ntire2022", peak_memory=False)
    assert p.flops == p.macs  # the tool's "FLOPs" are multiply-accumulates
    return {"params": p.params, "flops": p.flops, "activations": p.activations, "convs": p.convs}


# Table 4 of the paper (x4, 256x256 input, the official tool): the integers behind the printed figures.
TABLE4 = {
    # name: (params, FLOPs, activations, convs), printed as 894K / 58.53G / 154.14M / 43 etc.
    "imdn_ntire": (893_936, 58_531_512_320, 154_140_672, 43),
    "e_rfdn": (433_448, 27_102_622_560, 112_034_240, 64),
    "rlfn": (317_218, 19_695_306_752, 80_045_184, 39),  # 'ByteESR'
    "fmen_s": (341_066, 22_280_011_776, 72_089_600, 34),
}
PRINTED = {
    "imdn_ntire": ("894K", "58.53G", "154.14M", 43),
    "e_rfdn": ("433K", "27.10G", "112.03M", 64),
    "rlfn": ("317K", "19.70G", "80.05M", 39),
    "fmen_s": ("341K", "22.28G", "72.09M", 34),
}


def _build(name: str) -> nn.Module:
    return effbench.create_model(name, scale=4)


@pytest.mark.parametrize("name", sorted(TABLE4))
def test_table4_at_256x256_under_ntire2022(name: str) -> None:
    if name not in effbench.list_models():
        pytest.skip(f"{name} is not in the zoo")
    got = ours(_build(name), (256, 256))
    params, flops, acts, convs = TABLE4[name]
    assert (got["params"], got["flops"], got["activations"], got["convs"]) == (params, flops, acts, convs)
    p, f, a, c = PRINTED[name]
    assert f"{round(got['params'] / 1e3)}K" == p
    assert f"{got['flops'] / 1e9:.2f}G" == f
    assert f"{got['activations'] / 1e6:.2f}M" == a
    assert got["convs"] == c


def test_fmen_s_applies_leaky_relu_as_a_function_like_the_official_code() -> None:
    """The official FMEN code applies a module-level LeakyReLU, invisible to the hook tool; a registered one would
    add its 20 calls' outputs (28,835,840 at 256x256) to the tool's FLOPs and break Table 4."""
    model = effbench.create_model("fmen_s", scale=4)
    assert not any(isinstance(m, nn.LeakyReLU) for m in model.modules())
    full = profile(model, (256, 256), convention="full", peak_memory=False)
    calls = {row["name"]: row["calls"] for row in full.by_op}
    assert calls["leaky_relu"] == 20  # the full convention still counts them


@pytest.mark.parametrize("name", effbench.list_models())
def test_equals_the_hook_tool_on_every_zoo_model(name: str) -> None:
    info = effbench.model_info(name)
    for scale in info.scales:
        model = effbench.create_model(name, scale=scale)
        assert ours(model, (20, 28)) == official_counts(model, (3, 20, 28)), (name, scale)


class _Quirks(nn.Module):
    """Everything the tool treats specially: transposed and grouped convs, BN with and without affine, a Linear on
    a 3-D input, PReLU/ELU/ReLU6, a module called twice, a module outside the model, a Conv2d subclass, Conv1d and
    Conv3d (not counted), and functional convs (not seen)."""

    class MyConv(nn.Conv2d):
        pass

    def __init__(self, outsider: nn.Module) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.group = nn.Conv2d(8, 12, 3, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(12)
        self.bn_plain = nn.BatchNorm2d(12, affine=False)
        self.prelu, self.elu, self.relu6 = nn.PReLU(12), nn.ELU(), nn.ReLU6()
        self.shared = self.MyConv(12, 12, 1)
        self.up = nn.ConvTranspose2d(12, 6, 4, stride=2, padding=1)
        self.lin = nn.Linear(6, 5)
        self.conv1d = nn.Conv1d(5, 5, 3, padding=1)
        self.conv3d = nn.Conv3d(1, 1, 3, padding=1)
        self.w = nn.Parameter(torch.randn(3, 5, 3, 3) * 0.1)
        self._outsider = [outsider]  # called in forward but not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu6(self.elu(self.prelu(self.bn_plain(self.bn(self.group(self.head(x)))))))
        y = self.shared(self.shared(y))
        y = self._outsider[0](self.up(y))  # N, 6, 2H, 2W
        n, c, h, w = y.shape
        t = self.lin(y.permute(0, 2, 3, 1).reshape(n, h * w, c))  # Linear on a 3-D input
        z = self.conv1d(t.transpose(1, 2)).reshape(n, 5, h, w)
        z = self.conv3d(z.unsqueeze(1)).squeeze(1)
        return F.conv2d(z, self.w, padding=1)


@pytest.mark.parametrize("hw", [(8, 8), (7, 13)])
def test_equals_the_hook_tool_on_its_quirks(hw: tuple[int, int]) -> None:
    model = _Quirks(outsider=nn.ReLU()).eval()
    expected = official_counts(model, (3, *hw))
    assert ours(model, hw) == expected
    assert expected["convs"] == 5  # head, group, shared twice, up; not Conv1d/Conv3d/F.conv2d


def test_transposed_conv_counts_output_elements() -> None:
    up = nn.ConvTranspose2d(4, 4, 2, stride=2)
    p = profile(up, (10, 10), convention="ntire2022", channels=4, peak_memory=False)
    assert p.macs == 2 * 2 * 4 * 4 * (20 * 20)  # the quirk: output positions, 4x the real cost
    assert profile(up, (10, 10), convention="full", channels=4, peak_memory=False).macs == 2 * 2 * 4 * 4 * 100

"""Memory prediction: hand-computed expectations (FMEN paper Sec. 3.1, Fig. 2) and the allocator model."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effbench.base.errors import ModelError, UsageError
from effbench.memory import (
    CachingAllocator,
    PlainAllocator,
    fusion_block,
    plain_stack,
    predict_memory,
    replay_memory_cpu,
    round_size,
)
from effbench.memory.structures import fig2_demo

MiB = 1 << 20
C, H, W = 8, 16, 16
FEAT = C * H * W * 4  # 8192 bytes, a multiple of 512: block sizes are exact


def features_at(report, index: int) -> float:
    """Feature memory alive after op ``index`` (parameters excluded), in units of C x H x W."""
    return (report.timeline[index]["live_bytes"] - report.decomposition["M_net"]) / report.feature_bytes


def param_blocks(model: nn.Module) -> int:
    return sum(round_size(p.numel() * p.element_size()) for p in model.parameters())


# --- Fig. 2 ------------------------------------------------------------------------------------------------------


def test_fig2a_plain_stack_peaks_at_twice_the_feature() -> None:
    """Plain topology: the peak is M_input + M_output = 2 x C x H x W, however many convs are stacked."""
    for n in (1, 3, 6):
        m = plain_stack(n, C)
        r = predict_memory(m, (H, W), channels=C, device_model="plain", donate_input=True)
        assert r.peak_bytes - param_blocks(m) == 2 * FEAT
        assert r.decomposition["M_input"] == FEAT and r.decomposition["M_output"] == FEAT
        assert r.decomposition["M_kept"] == 0
        assert r.decomposition["M_net"] == param_blocks(m)
        assert r.peak_op == "aten.convolution.default"


def test_fig2a_caller_held_input_is_kept_memory() -> None:
    """When the caller keeps the input (NTIRE protocol) it is M_kept at the second conv: 3x."""
    m = plain_stack(3, C)
    r = predict_memory(m, (H, W), channels=C, device_model="plain")
    assert r.peak_bytes - param_blocks(m) == 3 * FEAT
    assert r.peak_module == "convs.1"
    kept = [t for t in r.live_at_peak if t.role == "kept"]
    assert [t.kind for t in kept] == ["input"] and "held by the caller" in kept[0].why


def test_fig2b_fusion_three_x_at_second_conv_six_x_at_concat() -> None:
    """Fusion: 3x at the second 3x3 conv (its input kept for the concat), 2 x 3 = 6x at the concat of 3 features."""
    m = fusion_block(2, C)
    r = predict_memory(m, (H, W), channels=C, device_model="plain", donate_input=True)
    convs = [e["index"] for e in r.timeline if e["op"] == "aten.convolution.default"]
    cat = next(e["index"] for e in r.timeline if e["op"] == "aten.cat.default")
    assert features_at(r, convs[0]) == 2.0
    assert features_at(r, convs[1]) == 3.0
    assert features_at(r, cat) == 6.0
    assert r.peak_op == "aten.cat.default"
    assert r.decomposition["M_input"] == 3 * FEAT and r.decomposition["M_output"] == 3 * FEAT
    # at the second conv, the first feature is kept for the later concat
    r2 = predict_memory(m, (H, W), channels=C, device_model="plain", donate_input=False)
    assert features_at(r2, convs[1]) == 3.0


def test_fusion_with_n_features_is_at_least_2n_x() -> None:
    for n in (1, 3):
        r = predict_memory(fusion_block(n, C), (H, W), channels=C, device_model="plain", donate_input=True)
        assert r.peak_bytes - r.decomposition["M_net"] == 2 * (n + 1) * FEAT


def test_fig2_demo_rows() -> None:
    rows = fig2_demo(C, (H, W))
    assert [round(float(r["features_x"]), 6) for r in rows] == [2.0, 3.0, 2.0, 3.0, 6.0]


# --- residual, in-place, views, rounding -------------------------------------------------------------------------


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu_(self.conv1(x))) + x


def test_residual_block_input_is_kept_for_the_add() -> None:
    """RB (paper Sec. 3.3): the skip connection keeps the block input alive: 3x at the second conv, 1x of it M_kept."""
    m = ResBlock(C)
    r = predict_memory(m, (H, W), channels=C, device_model="plain")
    assert r.peak_module == "conv2"
    assert r.decomposition["M_kept"] == FEAT
    assert r.decomposition["M_input"] == FEAT and r.decomposition["M_output"] == FEAT
    (kept,) = [t for t in r.live_at_peak if t.role == "kept"]
    assert "residual add" in kept.why
    # the add itself allocates one more feature while the two inputs are alive: also 3x
    add = next(e for e in r.timeline if e["op"].startswith("aten.add"))
    assert add["live_bytes"] - r.decomposition["M_net"] == 3 * FEAT


class InplaceAndViews(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2  # the only allocation
        y.relu_()
        z = y.view(-1)
        z.add_(1)
        t = y.transpose(2, 3)
        return t[..., :4].unsqueeze(0)


def test_inplace_ops_and_views_allocate_nothing() -> None:
    r = predict_memory(InplaceAndViews(), (H, W), channels=C, device_model="plain")
    live = [e["live_bytes"] for e in r.timeline]
    assert live == [2 * FEAT] * len(live)  # input + the product, all along
    assert len(r.timeline) >= 5
    assert r.peak_bytes == 2 * FEAT


class ViewKeepsBase(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(C, 2 * C, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)  # 2 x FEAT
        d = a[:, :C]  # a view: keeps all of a alive
        del a
        return d * 3  # + FEAT


def test_a_view_keeps_its_base_storage_alive() -> None:
    m = ViewKeepsBase()
    r = predict_memory(m, (H, W), channels=C, device_model="plain", feature_shape=(C, H, W))
    assert r.peak_op == "aten.mul.Tensor"
    assert r.peak_bytes == param_blocks(m) + FEAT + 2 * FEAT + FEAT


class Odd(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :1].sum(dim=(2, 3), keepdim=True).expand(1, 3, 1, 43).contiguous()


def test_odd_sizes_are_rounded_to_512_bytes() -> None:
    """1x3x5x7 float32 is 420 B -> one 512 B block; a 3x43 float32 tensor is 516 B -> 1024 B."""
    r = predict_memory(Odd(), (5, 7), device_model="plain")
    sizes = {t.bytes: t.block_bytes for t in r.live_at_peak}
    assert sizes[420] == 512
    assert sizes[516] == 1024
    assert r.peak_bytes == 512 + 512 + 1024  # input, the 12-byte sum, the 516-byte output
    assert round_size(0) == 512 and round_size(512) == 512 and round_size(513) == 1024


class FunctionalConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 4, 3, 3))
        self.b = nn.Parameter(torch.zeros(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.w, self.b, padding=1), 2)


def test_functional_conv_model() -> None:
    """Input 1x4x8x8 (1 KiB), conv to 16 channels (4 KiB), pixel shuffle (4 KiB); weight 2304 B -> 2560, bias 512."""
    r = predict_memory(FunctionalConv(), (8, 8), channels=4, device_model="plain")
    assert [e["op"] for e in r.timeline] == ["aten.convolution.default", "aten.pixel_shuffle.default"]
    assert [e["live_bytes"] for e in r.timeline] == [1024 + 4096 + 3072, 1024 + 4096 + 4096 + 3072]
    assert r.peak_bytes == 12288 and r.peak_op == "aten.pixel_shuffle.default"
    assert r.decomposition["M_net"] == 3072


class CatFusion(nn.Module):
    """A distillation-style fusion: three features of different widths concatenated, then a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(C, C, 3, padding=1)
        self.c2 = nn.Conv2d(C, C // 2, 3, padding=1)
        self.c3 = nn.Conv2d(C // 2, C // 2, 3, padding=1)
        self.fuse = nn.Conv2d(2 * C, C, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.c1(x)
        b = self.c2(a)
        c = self.c3(b)
        return self.fuse(torch.cat([a, b, c], dim=1))


def test_cat_fusion_model() -> None:
    """At the concat: the caller's input 1 + a 1 + b 0.5 + c 0.5 + the concat output 2 = 5x. The peak comes after,
    at the 1x1 conv: a, b, c are still held by local variables, so 1 + 2 + 2 (concat) + 1 (output) = 6x."""
    m = CatFusion()
    r = predict_memory(m, (H, W), channels=C, device_model="plain", feature_shape=(C, H, W))
    cat = next(e for e in r.timeline if e["op"] == "aten.cat.default")
    assert cat["live_bytes"] - param_blocks(m) == 5 * FEAT
    assert r.peak_module == "fuse" and r.peak_bytes - param_blocks(m) == 6 * FEAT
    assert r.decomposition["M_input"] == 2 * FEAT and r.decomposition["M_output"] == FEAT
    assert r.decomposition["M_kept"] == 3 * FEAT
    held = [t for t in r.live_at_peak if "not used again" in t.why]
    assert sorted(t.producer for t in held) == ["c1", "c2", "c3"]


# --- fake replay == real CPU replay, model untouched -----------------------------------------------------------


@pytest.mark.parametrize(
    "model", [ResBlock(C), CatFusion(), ViewKeepsBase(), InplaceAndViews(), fusion_block(2, C)]
)
def test_fake_replay_equals_real_cpu_replay(model: nn.Module) -> None:
    a = predict_memory(model, (H, W), channels=C, device_model="plain")
    b = replay_memory_cpu(model, (H, W), channels=C)
    assert a.peak_bytes == b.peak_bytes
    assert [(e["op"], e["live_bytes"]) for e in a.timeline] == [
        (e["op"], e["live_bytes"]) for e in b.timeline
    ]


def test_the_model_is_left_untouched() -> None:
    m = CatFusion()
    before = {k: (v, v.clone()) for k, v in m.state_dict(keep_vars=True).items()}
    m.train()
    predict_memory(m, (H, W), channels=C)
    assert m.training
    after = m.state_dict(keep_vars=True)
    assert set(after) == set(before)
    for k, (obj, val) in before.items():
        assert after[k] is obj and torch.equal(after[k].detach(), val.detach())
        assert after[k].requires_grad == obj.requires_grad
    assert not m._forward_hooks and not m._forward_pre_hooks


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="device model"):
        predict_memory(plain_stack(1, C), (H, W), channels=C, device_model="tpu")
    with pytest.raises(UsageError, match="positive"):
        predict_memory(plain_stack(1, C), (0, W), channels=C)
    with pytest.raises(ModelError, match="fake tensors"):
        predict_memory(plain_stack(1, C), (H, W), channels=3)  # 3 channels into an 8-channel conv
    with pytest.raises(UsageError, match="nn.Module or a model spec"):
        predict_memory(42, (H, W))  # type: ignore[arg-type]


# --- the CUDA caching allocator model --------------------------------------------------------------------------


def test_caching_allocator_small_pool() -> None:
    a = CachingAllocator()
    h1 = a.malloc(100)
    a.malloc(1 << 20)  # exactly 1 MiB: still the small pool, same 2 MiB segment
    assert a.allocated == 512 + MiB and a.reserved == 2 * MiB
    a.free(h1)
    a.malloc(300)  # best fit: the freed 512-byte block
    assert a.allocated == 512 + MiB and a.reserved == 2 * MiB


def test_caching_allocator_large_pool_split_rules() -> None:
    a = CachingAllocator()
    h = a.malloc(3 * MiB // 2)  # < 10 MiB: a 20 MiB segment, split (18.5 MiB > 1 MiB left)
    assert (a.allocated, a.reserved) == (3 * MiB // 2, 20 * MiB)
    a.free(h)
    b = CachingAllocator()
    h = b.malloc(23 * MiB // 2)  # 11.5 MiB: a 12 MiB segment, 0.5 MiB left is not split: 12 MiB allocated
    assert (b.allocated, b.reserved) == (12 * MiB, 12 * MiB)
    b.free(h)
    b.malloc(11 * MiB)  # reuses the 12 MiB block whole (1 MiB left is not > 1 MiB)
    assert (b.allocated, b.reserved) == (12 * MiB, 12 * MiB)


def test_caching_allocator_merges_free_neighbours() -> None:
    a = CachingAllocator()
    h1, h2 = a.malloc(4 * MiB), a.malloc(4 * MiB)  # both from one 20 MiB segment
    assert a.reserved == 20 * MiB
    a.free(h1)
    a.free(h2)
    a.malloc(18 * MiB)  # fits only once the three free pieces have merged back into 20 MiB
    assert a.reserved == 20 * MiB
    assert a.allocated == 18 * MiB  # 2 MiB left over is > 1 MiB: the block is split


def test_plain_allocator_counts_rounded_blocks() -> None:
    p = PlainAllocator()
    h = p.malloc(1)
    p.malloc(1025)
    assert p.allocated == 512 + 1536
    p.free(h)
    assert (p.allocated, p.peak) == (1536, 2048)


def test_cuda_model_counts_unsplit_blocks() -> None:
    """A feature of 11.5 MiB gets a whole 12 MiB block on CUDA: the prediction exceeds the plain sum."""
    m = nn.Sequential(nn.Conv2d(23, 23, 1, bias=False))
    r = predict_memory(m, (256, 512), channels=23)  # 23 x 256 x 512 x 4 B = 11.5 MiB
    assert r.plain_peak_bytes == 23 * MiB + 2560  # input + output + the 2116-byte weight in a 2560-byte block
    assert r.peak_bytes == 24 * MiB + 2560
    assert r.decomposition["M_allocator"] == MiB


# --- the CLI -------------------------------------------------------------------------------------------------------


def test_cli_demo_fig2(capsys: pytest.CaptureFixture[str]) -> None:
    from effbench.cli import main

    assert main(["memory", "--demo", "fig2", "--size", "16x16"]) == 0
    out = capsys.readouterr().out
    assert "6.00 x CHW" in out and "3.00 x CHW" in out and "2.00 x CHW" in out


def test_cli_user_model_json_plot_and_compare(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from effbench.cli import main

    f = tmp_path / "net.py"
    f.write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, c=8):\n        super().__init__()\n"
        "        self.a = nn.Conv2d(3, c, 3, padding=1)\n        self.b = nn.Conv2d(c, c, 3, padding=1)\n"
        "    def forward(self, x):\n        h = self.a(x)\n        return self.b(h) + h\n"
    )
    png = tmp_path / "t.png"
    assert main(["memory", f"{f}:Net", "--size", "16x16", "--json", "--plot", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    # at the add: input 3 x 16 x 16 + h + b(h) + the sum, 4 B each
    assert doc["peak_bytes"] == 3072 + 3 * 8192 + doc["decomposition"]["M_net"]
    assert doc["peak_op"] == "aten.add.Tensor" and doc["peak_module"] == "" and doc["timeline"]
    assert png.stat().st_size > 1000
    assert main(["memory", f"{f}:Net", f"{f}:Net", "--size", "16x16", "--kwargs", '{"c": 8}']) == 0
    assert "peak ratio Net / Net = 1.000" in capsys.readouterr().out
    assert main(["memory", f"{f}:Net", "--forms", "train,eval"]) == 2
    assert main(["memory"]) == 2


# --- the CUDA measurement, exercised on the CPU with torch.cuda's counters stubbed ---------------------------------


def test_measure_cuda_memory_protocol_with_stubbed_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs the measurement code path (copy, warm + measured forward, workspace hooks) on the CPU: the counters are
    stubs, so only the bookkeeping is checked; the numbers themselves come from the GPU validation."""
    from effbench.memory import measure_cuda_memory

    calls: list[str] = []
    state = {"allocated": 0, "peak": 0}

    def reset(dev=None) -> None:
        calls.append("reset")
        state["peak"] = state["allocated"] + 4096  # each conv "uses" a 4 KiB workspace

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda dev=None: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev=None: state["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda dev=None: state["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset)
    monkeypatch.setattr(
        torch.cuda,
        "memory_stats",
        lambda dev=None: {"allocated_bytes.all.peak": 5, "requested_bytes.all.peak": 4},
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev=None: "stub")
    m = ResBlock(C)
    weight = m.conv1.weight
    d = measure_cuda_memory(m, (H, W), channels=C, device="cpu")
    assert m.conv1.weight is weight and not m.conv1._forward_hooks  # the user's model is untouched
    assert (
        calls[0] == "empty_cache" and calls.count("reset") == 1 + 2
    )  # once before the warm forward, once per conv
    assert d["measured_peak_bytes"] == 4096
    assert d["difference_bytes"] == 4096 - d["predicted_peak_bytes"]
    assert d["cudnn_workspace_by_module"] == {"conv1": 4096, "conv2": 4096}
    assert d["predicted_with_workspace_bytes"] == d["predicted_peak_bytes"] + 4096  # the peak is at conv2
    assert (d["allocated_peak_bytes"], d["requested_peak_bytes"]) == (5, 4)
    from effbench.memory.validate import to_markdown

    table = to_markdown([d, {"model": "broken", "input_shape": [1, 3, 4, 4], "error": "ValueError: x"}])
    assert f"| ResBlock | 1x{C}x{H}x{W} | 4,096 | {d['predicted_peak_bytes']:,} |" in table
    assert "| broken | 1x3x4x4 | error: ValueError: x |" in table
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="CUDA"):
        measure_cuda_memory(m, (H, W), channels=C)

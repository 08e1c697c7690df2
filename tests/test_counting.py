"""effbench.profile: the `full` convention's rules, the gap the official conventions leave on functional code, the
engine (size-independent, leaves nothing behind), bad input, and the `effbench profile` command."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import effbench
from effbench.base.errors import ModelError, UsageError
from effbench.cli import main
from effbench.counting import compare_conventions, profile


def prof(model: nn.Module, hw=(16, 16), convention: str = "full", **kw):
    return profile(model, hw, convention=convention, peak_memory=False, **kw)


# --- models of our own -----------------------------------------------------------------------------------------


class PlainConvs(nn.Module):
    """3 -> 8 -> 8 -> 3*4 convs and a pixel shuffle: x2."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.c3 = nn.Conv2d(8, 12, 3, padding=1)
        self.ps = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ps(self.c3(torch.relu(self.c2(self.c1(x)))))


class FunctionalConvs(nn.Module):
    """The same network with every conv a functional call on its own parameters (as re-parameterised models do in
    forward): the hook tool sees none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.b1 = nn.Parameter(torch.zeros(8))
        self.w2 = nn.Parameter(torch.randn(8, 8, 3, 3))
        self.w3 = nn.Parameter(torch.randn(12, 8, 3, 3))
        self.b3 = nn.Parameter(torch.zeros(12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.w1, self.b1, padding=1)
        y = torch.relu(F.conv2d(y, self.w2, padding=1))
        return F.pixel_shuffle(F.conv2d(y, self.w3, self.b3, padding=1), 2)


class Attention(nn.Module):
    """An attention-like block: sigmoid gate, elementwise mul/add, bilinear upsampling, max pooling, matmul."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.max_pool2d(self.conv(x), 2)  # N, c, H/2, W/2
        g = F.interpolate(g, size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = x * torch.sigmoid(g) + x
        n, c, h, w = y.shape
        q = y.flatten(2)  # n, c, hw
        a = torch.softmax(q @ q.transpose(1, 2), dim=-1)  # n, c, c
        return (a @ q).reshape(n, c, h, w)


def _conv_macs(cin: int, cout: int, k: int, h: int, w: int) -> int:
    return cin * cout * k * k * h * w


# --- the `full` convention -------------------------------------------------------------------------------------


def test_full_counts_conv_macs_bias_and_pixel_shuffle_bytes() -> None:
    h, w = 16, 12
    p = prof(PlainConvs(), (h, w))
    macs = _conv_macs(3, 8, 3, h, w) + _conv_macs(8, 8, 3, h, w) + _conv_macs(8, 12, 3, h, w)
    assert p.macs == macs
    bias = (8 + 12) * h * w
    relu = 8 * h * w
    assert p.flops == 2 * macs + bias + relu
    assert p.convs == 3
    assert p.activations == (8 + 8 + 12) * h * w
    assert p.params == sum(t.numel() for t in PlainConvs().parameters())
    assert p.input_shape == (1, 3, h, w) and p.output_shape == (1, 3, 2 * h, 2 * w)
    ops = {r["name"]: r for r in p.by_op}
    assert ops["pixel_shuffle"]["flops"] == 0
    assert ops["pixel_shuffle"]["bytes"] == 3 * 2 * h * 2 * w * 4  # its output, fp32
    assert p.unknown_ops == []


def test_full_documented_per_element_costs_on_an_attention_block() -> None:
    c, h, w = 4, 8, 6
    p = prof(Attention(c), (h, w), channels=c)
    ops = {r["name"]: r for r in p.by_op}
    n = c * h * w
    assert ops["sigmoid"]["flops"] == 4 * n
    assert ops["mul"]["flops"] == n and ops["add"]["flops"] == n
    assert ops["upsample_bilinear2d"]["flops"] == 7 * n
    assert ops["max_pool2d_with_indices"]["flops"] == 4 * (n // 4)  # 2x2 window per output element
    assert ops["_softmax"]["flops"] == 5 * c * c
    # two batched matmuls: (c x hw) @ (hw x c) and (c x c) @ (c x hw), each 2 FLOPs per MAC
    mm_macs = c * h * w * c + c * c * h * w
    assert ops["bmm"]["macs"] == mm_macs and ops["bmm"]["flops"] == 2 * mm_macs
    assert p.macs == mm_macs + _conv_macs(c, c, 1, h, w)


def test_full_counts_functional_convs_that_ntire2022_cannot_see() -> None:
    """The paper-era hook tool misses F.conv2d: a re-parameterised model looks free. `full` does not."""
    h, w = 16, 12
    plain, functional = PlainConvs(), FunctionalConvs()
    full = prof(functional, (h, w))
    assert full.macs == prof(plain, (h, w)).macs > 0
    assert full.convs == 3
    ntire = prof(functional, (h, w), "ntire2022")
    assert (ntire.macs, ntire.flops, ntire.activations, ntire.convs) == (0, 0, 0, 0)
    # ...while on the module version the hook tool sees the same convs
    assert prof(plain, (h, w), "ntire2022").macs == full.macs
    both = compare_conventions(functional, (h, w))
    assert both["full"].flops > 0 and both["ntire2022"].flops == 0
    assert both["fvcore"].macs == full.macs  # fvcore traces aten::_convolution, functional or not


def test_unknown_ops_are_listed_not_silently_zero() -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.bessel_j0(x)

    p = prof(Odd())
    assert p.unknown_ops == ["aten.special_bessel_j0"]


# --- the engine --------------------------------------------------------------------------------------------------


def test_counts_scale_exactly_with_input_size_up_to_1080p() -> None:
    small = prof(PlainConvs(), (64, 64))
    big = prof(PlainConvs(), (1080, 1920))
    assert big.macs * 64 * 64 == small.macs * 1080 * 1920
    assert big.output_shape == (1, 3, 2160, 3840)
    assert big.engine == "meta"


def _snapshot(model: nn.Module) -> list:
    snap = []
    for name, m in model.named_modules():
        snap.append(
            (
                name,
                sorted(vars(m)),
                m.training,
                len(m._forward_hooks),
                len(m._forward_pre_hooks),
                len(m._backward_hooks),
            )
        )
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        snap.append((name, t.device, t.dtype, t.requires_grad, t.data_ptr(), t.clone()))
    return snap


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, torch.Tensor):
                if not torch.equal(u, v):
                    return False
            elif u != v:
                return False
    return True


@pytest.mark.parametrize("convention", ["full", "ntire2022", "fvcore"])
def test_profiling_leaves_nothing_on_the_model(convention: str) -> None:
    from torch.nn.modules import module as module_mod

    model = nn.Sequential(PlainConvs(), nn.BatchNorm2d(3), Attention(3)).train()
    model[0].c2.weight.requires_grad_(False)
    before = _snapshot(model)
    n_global = (len(module_mod._global_forward_hooks), len(module_mod._global_forward_pre_hooks))
    profile(model, (8, 8), convention=convention, dtype=torch.float16)  # another dtype too
    compare_conventions(model, (8, 8))
    assert _same(before, _snapshot(model))
    assert (len(module_mod._global_forward_hooks), len(module_mod._global_forward_pre_hooks)) == n_global
    assert torch._C._is_torch_function_mode_enabled() is False


def test_falls_back_to_fake_then_real_tensors_when_needed() -> None:
    class MakesCpuTensors(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + torch.ones(1)  # a CPU tensor next to the input

    class DataDependent(MakesCpuTensors):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y if bool(y.sum() >= 0) else -y  # control flow on values

    a = prof(MakesCpuTensors(), (8, 8))
    b = prof(DataDependent(), (8, 8))
    assert a.engine == "fake" and b.engine == "real"
    assert a.macs == b.macs == _conv_macs(3, 3, 3, 8, 8)


def test_accepts_specs_and_checks_the_scale() -> None:
    p = profile("fmen_s", (32, 32), scale=4, convention="ntire2022")
    assert p.model == "fmen_s" and p.output_shape == (1, 3, 128, 128)
    assert p.peak_memory_bytes is None or p.peak_memory_bytes > 0
    with pytest.raises(ModelError, match="16x16 output for a 1x3x8x8 input: not x3"):
        profile(PlainConvs(), (8, 8), scale=3, peak_memory=False)


# --- bad input -----------------------------------------------------------------------------------------------------


class Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom in forward")


class ReturnsTuple(nn.Module):
    def forward(self, x: torch.Tensor):
        return x, x


class NeedsBigInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 7)  # no padding: needs at least 7x7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_bad_models_get_errors_naming_model_and_cause() -> None:
    with pytest.raises(ModelError, match=r"'Raises'.*boom in forward"):
        prof(Raises())
    with pytest.raises(ModelError, match=r"'ReturnsTuple' returned tuple, not a tensor"):
        prof(ReturnsTuple())
    with pytest.raises(ModelError, match=r"'NeedsBigInput' failed in forward on a 1x3x4x4 input"):
        prof(NeedsBigInput(), (4, 4))


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown convention 'ptflops'"):
        prof(PlainConvs(), convention="ptflops")
    with pytest.raises(UsageError, match="height must be positive"):
        prof(PlainConvs(), (0, 8))
    with pytest.raises(UsageError, match="nn.Module or a model spec"):
        profile(42)  # type: ignore[arg-type]


# --- the command -------------------------------------------------------------------------------------------------


@pytest.fixture()
def user_models(tmp_path: Path) -> Path:
    f = tmp_path / "user_models.py"
    f.write_text(
        textwrap.dedent(
            """
        import torch
        import torch.nn.functional as F
        from torch import nn

        class Functional(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.randn(12, 3, 3, 3))
            def forward(self, x):
                return F.pixel_shuffle(F.conv2d(x, self.w, padding=1), 2)

        class Broken(nn.Module):
            def forward(self, x):
                raise ValueError("this model is broken")
        """
        )
    )
    return f


def test_cli_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str], user_models: Path) -> None:
    rc = main(
        [
            "profile",
            f"{user_models}:Functional",
            "--scale",
            "2",
            "--size",
            "10x6",
            "--json",
            "--compare-conventions",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    for key in (
        "params",
        "flops",
        "macs",
        "activations",
        "convs",
        "peak_memory_bytes",
        "convention",
        "input_shape",
        "output_shape",
        "by_module",
        "by_op",
        "unknown_ops",
    ):
        assert key in doc
    assert doc["convention"] == "full" and doc["input_shape"] == [1, 3, 10, 6]
    assert doc["macs"] == 3 * 12 * 9 * 60 and doc["convs"] == 1
    assert doc["conventions"]["ntire2022"]["flops"] == 0  # the gap, visible in the report


def test_cli_tables_and_exit_codes(capsys: pytest.CaptureFixture[str], user_models: Path) -> None:
    assert (
        main(
            [
                "profile",
                f"{user_models}:Functional",
                "--scale",
                "2",
                "--size",
                "8",
                "--by-op",
                "--compare-conventions",
                "--no-memory",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "convolution" in out and "ntire2022" in out
    assert main(["profile", f"{user_models}:Broken", "--size", "8", "--no-memory"]) == 1
    assert "this model is broken" in capsys.readouterr().err
    assert main(["profile", "no_such_model"]) == 2
    assert main(["profile", "fmen_s", "--size", "8y8"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["profile", "fmen_s", "--convention", "ptflops"])
    assert exc.value.code == 2


def test_profile_is_exported_and_dict_round_trips() -> None:
    assert effbench.profile is profile
    p = prof(PlainConvs(), (4, 4))
    d = json.loads(json.dumps(p.to_dict()))
    assert d["flops"] == p.flops and d["by_module"][0]["name"] == ""
    frame = p.frame("module")
    assert set(frame["name"]) >= {"", "c1", "c2", "c3", "ps"}
    assert math.isclose(frame.set_index("name").loc["", "macs"], p.macs)

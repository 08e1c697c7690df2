"""Op conformance: a catalogue of ops, each in a one-op model, counted under every built-in convention and
compared with the real tool the convention mirrors.

- ``fvcore``: fvcore's own ``FlopCountAnalysis(model, x).total()``, integer for integer, and every op effbench
  lists as uncounted is one fvcore lists as unsupported.
- ``ntire2022``: the organisers' hook tool (``utils/model_summary.py`` of the NTIRE repositories in ../shared),
  loaded and called as their ``test_demo.py`` calls it (``get_model_flops``, ``get_model_activation``).
- ``full``: the formula docs/counting.md documents for the op, written out per case, cross-checked against the
  two counters that count part of it: ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add of
  convolutions and matrix products, plus registered formulas: so ``2 x MACs`` + those) and ptflops' aten
  backend (MACs + bias of convolution, mm, addmm and bmm: so ``FLOPs - MACs`` over those ops), each run on the
  real CPU model. ``full`` must leave no op of the catalogue unknown.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import math
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula

from effbench.counting import compare_conventions

N, C, H, W = 1, 4, 8, 12
SHAPE = (N, C, H, W)
NUMEL = N * C * H * W  # 384
PIXELS = H * W  # 96


class Op(nn.Module):
    """A model running one op: ``fn(self, x)``. ``anchor`` is the parameter the hook tool looks its device up
    from (``list(model.parameters())[-1]``); the op's own modules and parameters are ``members``."""

    def __init__(self, fn: Callable[[Op, torch.Tensor], torch.Tensor], **members: Any) -> None:
        super().__init__()
        self.fn = fn
        for k, v in members.items():
            setattr(self, k, v)
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


# -- a selective scan as a torch.library custom op with a registered formula (as a CPU stand-in of mamba_ssm's) --


@torch.library.custom_op(  # the schema spelled out: torch 2.4 cannot read postponed annotations
    "effbench_conformance::selective_scan",
    mutates_args=(),
    schema="(Tensor u, Tensor delta, Tensor a, Tensor b, Tensor c) -> Tensor",
)
def selective_scan(
    u: torch.Tensor, delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    """y[t] = C[t] . h[t], h[t] = exp(delta[t] A) h[t-1] + delta[t] B[t] u[t] (u, delta: B x D x L; A: D x N;
    B, C: B x N x L), run step by step."""
    batch, d, length = u.shape
    h = u.new_zeros(batch, d, a.shape[1])
    ys = []
    for t in range(length):
        da = torch.exp(delta[:, :, t, None] * a)
        h = da * h + (delta[:, :, t] * u[:, :, t])[..., None] * b[:, None, :, t]
        ys.append((h * c[:, None, :, t]).sum(-1))
    return torch.stack(ys, dim=-1)


@selective_scan.register_fake
def _(
    u: torch.Tensor, delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    return torch.empty_like(u)


@register_flop_formula(torch.ops.effbench_conformance.selective_scan)
def _selective_scan_flops(u_shape, delta_shape, a_shape, b_shape, c_shape, out_shape=None, **kwargs) -> int:
    """The Mamba authors' count for the selective scan: 9 B L D N."""
    batch, d, length = u_shape
    return 9 * batch * length * d * a_shape[1]


def _scan(m: Op, x: torch.Tensor) -> torch.Tensor:
    u = x.flatten(2)  # B x D x L
    bc = m.proj(x).flatten(2)  # B x 2N x L
    return selective_scan(u, u, m.a, bc[:, :3], bc[:, 3:]).view_as(x)


# -- the catalogue ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One op: ``build()`` makes the model, ``full`` is the FLOPs the documented formula gives for it on a
    1x4x8x12 input, ``extra_fcm`` what FlopCounterMode counts besides 2 x MACs (registered formulas);
    ``ptflops``: whether ptflops' aten backend sees the op (not a CPU kernel the trace decomposes);
    ``flop_counter``: whether FlopCounterMode has a formula for it (not for the CPU flash-attention kernel)."""

    name: str
    build: Callable[[], nn.Module]
    full: int
    extra_fcm: int = 0
    ptflops: bool = True
    flop_counter: bool = True


def conv_flops(out: int, per_output: int, bias: bool = True) -> int:
    """Documented: 2 FLOPs per multiply-add, one per output element and input it reads, + 1 per output element
    for the bias."""
    return 2 * out * per_output + (out if bias else 0)


def _conv(pad_mode: str = "zeros", **kw: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        return Op(lambda m, x: m.conv(x), conv=nn.Conv2d(4, 6, 3, padding_mode=pad_mode, **kw))

    return build


def _fft_flops(points: int, transforms: int, per_point: float) -> int:
    """Documented: 5 N log2 N per complex transform of N points, 2.5 N log2 N per real-input or real-output one."""
    return round(per_point * points * math.log2(points)) * transforms


def _heads(x: torch.Tensor) -> torch.Tensor:
    """1x4x8x12 -> 1 x 2 heads x 96 tokens x 2 channels."""
    return x.flatten(2).transpose(1, 2).reshape(1, PIXELS, 2, 2).transpose(1, 2)


def _attention(**kw: Any) -> Callable[[Op, torch.Tensor], torch.Tensor]:
    def fn(m: Op, x: torch.Tensor) -> torch.Tensor:
        q = _heads(x)
        extra = dict(kw)
        if extra.get("attn_mask") == "float":
            extra["attn_mask"] = torch.zeros(PIXELS, PIXELS, device=x.device)
        elif extra.get("attn_mask") == "bool":
            extra["attn_mask"] = torch.ones(PIXELS, PIXELS, dtype=torch.bool, device=x.device).tril()
        return F.scaled_dot_product_attention(q, q, q, **extra).transpose(1, 2).reshape(x.shape)

    return fn


SCORES = 2 * PIXELS * PIXELS  # 2 heads x 96 x 96
ATTENTION = NUMEL + NUMEL + 2 * SCORES * (2 + 2) + 5 * SCORES  # q, k scaled; QK^T, AV; softmax
UP = N * C * (2 * H) * (2 * W)  # x2 upsampling: 1536 output elements


def _grid(mode: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        grid = nn.Parameter(torch.rand(1, H, W, 2) * 2 - 1)
        return Op(lambda m, x: F.grid_sample(x, m.grid, mode=mode, align_corners=False), grid=grid)

    return build


def _act(module: nn.Module, per_element: int) -> Case:
    return Case(type(module).__name__, lambda: Op(lambda m, x: m.act(x), act=module), per_element * NUMEL)


CASES = [
    # convolutions: 6 x 8 x 12 outputs of 4 x 3 x 3 inputs each, whatever the padding mode
    Case("conv_zeros", _conv(padding=1), conv_flops(576, 36)),
    Case("conv_reflect", _conv("reflect", padding=1), conv_flops(576, 36)),
    Case("conv_replicate", _conv("replicate", padding=1), conv_flops(576, 36)),
    Case("conv_circular", _conv("circular", padding=1), conv_flops(576, 36)),
    Case("conv_same", _conv(padding="same"), conv_flops(576, 36)),
    Case("conv_groups", _conv(padding=1, groups=2), conv_flops(576, 18)),
    Case(
        "conv_depthwise",
        lambda: Op(lambda m, x: m.conv(x), conv=nn.Conv2d(4, 4, 3, padding=1, groups=4)),
        conv_flops(384, 9),
    ),
    Case("conv_dilated", _conv(padding=2, dilation=2), conv_flops(576, 36)),
    Case("conv_strided", _conv(padding=1, stride=2), conv_flops(6 * 4 * 6, 36)),
    Case(
        "conv_1x1_no_bias",
        lambda: Op(lambda m, x: m.conv(x), conv=nn.Conv2d(4, 6, 1, bias=False)),
        conv_flops(576, 4, bias=False),
    ),
    Case(  # transposed: every input element meets 6 x 4 x 4 weights; 6 x 16 x 24 outputs get a bias
        "conv_transposed",
        lambda: Op(lambda m, x: m.conv(x), conv=nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1)),
        2 * NUMEL * 96 + 6 * 16 * 24,
    ),
    Case(
        "conv1d",
        lambda: Op(lambda m, x: m.conv(x.flatten(2)).view(1, 6, H, W), conv=nn.Conv1d(4, 6, 3, padding=1)),
        conv_flops(576, 12),
    ),
    Case(
        "conv3d",
        lambda: Op(lambda m, x: m.conv(x.unsqueeze(2)).squeeze(2), conv=nn.Conv3d(4, 6, 3, padding=1)),
        conv_flops(576, 108),
    ),
    Case(
        "conv_functional",
        lambda: Op(
            lambda m, x: F.conv2d(x, m.weight, padding=1), weight=nn.Parameter(torch.rand(6, 4, 3, 3))
        ),
        conv_flops(576, 36, bias=False),
    ),
    # linear and matrix products
    Case(  # 96 tokens x 4 -> 8 features: 3072 multiply-adds + 768 bias adds
        "linear_tokens",
        lambda: Op(lambda m, x: m.fc(x.flatten(2).transpose(1, 2)), fc=nn.Linear(4, 8)),
        2 * PIXELS * 4 * 8 + PIXELS * 8,
    ),
    Case(
        "linear_flat",
        lambda: Op(lambda m, x: m.fc(x.flatten(1)), fc=nn.Linear(NUMEL, 10)),
        2 * NUMEL * 10 + 10,
    ),
    Case(
        "matmul",
        lambda: Op(lambda m, x: torch.matmul(x.flatten(2), x.flatten(2).transpose(1, 2))),
        2 * 4 * PIXELS * 4,
    ),
    Case(
        "matmul_operator",
        lambda: Op(lambda m, x: x.flatten(2).transpose(1, 2) @ x.flatten(2)),
        2 * PIXELS * 4 * PIXELS,
    ),
    Case(
        "bmm",
        lambda: Op(lambda m, x: torch.bmm(x.flatten(2), x.flatten(2).transpose(1, 2))),
        2 * 4 * PIXELS * 4,
    ),
    Case(
        "mm",
        lambda: Op(
            lambda m, x: torch.mm(x.flatten(1).view(4, PIXELS), m.w), w=nn.Parameter(torch.rand(PIXELS, 5))
        ),
        2 * 4 * PIXELS * 5,
    ),
    Case(
        "einsum",
        lambda: Op(lambda m, x: torch.einsum("bcn,bdn->bcd", x.flatten(2), x.flatten(2))),
        2 * 4 * PIXELS * 4,
    ),
    Case(  # one traced node fvcore has no handle for: 0 there, listed unsupported
        "tensordot",
        lambda: Op(lambda m, x: torch.tensordot(x.flatten(2), x.flatten(2), dims=([2], [2])).view(4, 4)),
        2 * 4 * PIXELS * 4,
    ),
    # attention (CPU): the decomposition a meta trace records, fused kernels counted alike
    Case("sdpa", lambda: Op(_attention()), ATTENTION, ptflops=False),
    Case("sdpa_scale", lambda: Op(_attention(scale=0.3)), ATTENTION, ptflops=False),
    Case("sdpa_float_mask", lambda: Op(_attention(attn_mask="float")), ATTENTION + SCORES, ptflops=False),
    Case(  # the boolean mask becomes a bias (a where over its 96 x 96 elements), then is added
        "sdpa_bool_mask",
        lambda: Op(_attention(attn_mask="bool")),
        ATTENTION + SCORES + PIXELS * PIXELS,
        ptflops=False,
    ),
    Case(
        "sdpa_causal",
        lambda: Op(_attention(is_causal=True)),
        ATTENTION + SCORES + PIXELS * PIXELS,
        ptflops=False,
    ),
    Case(
        "sdpa_fused_cpu_kernel",
        lambda: Op(
            lambda m, x: (
                torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(_heads(x), _heads(x), _heads(x))[0]
                .transpose(1, 2)
                .reshape(x.shape)
            )
        ),
        ATTENTION,
        ptflops=False,
        flop_counter=False,
    ),
    # softmax and its variants: 5 per element
    Case("softmax", lambda: Op(lambda m, x: x.softmax(-1)), 5 * NUMEL),
    Case("log_softmax", lambda: Op(lambda m, x: F.log_softmax(x, dim=1)), 5 * NUMEL),
    Case("softmax_module", lambda: Op(lambda m, x: m.sm(x), sm=nn.Softmax(dim=2)), 5 * NUMEL),
    # norms
    Case("batch_norm", lambda: Op(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(4).eval()), 2 * NUMEL),
    Case(
        "batch_norm_no_affine",
        lambda: Op(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(4, affine=False).eval()),
        2 * NUMEL,
    ),
    Case("layer_norm", lambda: Op(lambda m, x: m.ln(x), ln=nn.LayerNorm(W)), 7 * NUMEL),
    Case(
        "layer_norm_no_affine",
        lambda: Op(lambda m, x: m.ln(x), ln=nn.LayerNorm(W, elementwise_affine=False)),
        5 * NUMEL,
    ),
    Case("group_norm", lambda: Op(lambda m, x: m.gn(x), gn=nn.GroupNorm(2, 4)), 7 * NUMEL),
    Case("instance_norm", lambda: Op(lambda m, x: m.inorm(x), inorm=nn.InstanceNorm2d(4)), 7 * NUMEL),
    # interpolation, x2
    Case("upsample_nearest", lambda: Op(lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest")), 0),
    Case(
        "upsample_nearest_exact",
        lambda: Op(lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest-exact")),
        0,
    ),
    Case(
        "upsample_bilinear",
        lambda: Op(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear")),
        7 * UP,
    ),
    Case(
        "upsample_bilinear_aligned",
        lambda: Op(lambda m, x: F.interpolate(x, size=(16, 24), mode="bilinear", align_corners=True)),
        7 * UP,
    ),
    Case(
        "upsample_bilinear_antialias",
        lambda: Op(lambda m, x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)),
        7 * NUMEL // 4,
    ),
    Case(
        "upsample_bicubic", lambda: Op(lambda m, x: F.interpolate(x, scale_factor=2, mode="bicubic")), 31 * UP
    ),
    Case(  # area: adaptive average pooling, 1 per input + 1 per output element
        "downsample_area",
        lambda: Op(lambda m, x: F.interpolate(x, size=(4, 6), mode="area")),
        NUMEL + NUMEL // 4,
    ),
    Case(
        "upsample_module",
        lambda: Op(lambda m, x: m.up(x), up=nn.Upsample(scale_factor=2, mode="bilinear")),
        7 * UP,
    ),
    # grid_sample: per output value (7 bilinear, 0 nearest, 31 bicubic) + per sampled point (12, 6, 54)
    Case("grid_sample_bilinear", _grid("bilinear"), 7 * NUMEL + 12 * PIXELS),
    Case("grid_sample_nearest", _grid("nearest"), 6 * PIXELS),
    Case("grid_sample_bicubic", _grid("bicubic"), 31 * NUMEL + 54 * PIXELS),
    # pixel (un)shuffle: data movement
    Case("pixel_shuffle", lambda: Op(lambda m, x: F.pixel_shuffle(x, 2)), 0),
    Case("pixel_unshuffle", lambda: Op(lambda m, x: F.pixel_unshuffle(x, 2)), 0),
    # FFTs over the 8 x 12 = 96 points of each of the 4 channels
    Case(  # irfft2's default norm ('backward') divides its 384 real outputs by 96
        "rfft2_irfft2",
        lambda: Op(lambda m, x: torch.fft.irfft2(torch.fft.rfft2(x), s=(H, W))),
        2 * _fft_flops(PIXELS, 4, 2.5) + NUMEL,
    ),
    Case(  # a real input made complex first (a copy), one complex transform, 'ortho' scales 384 complex values
        "fft2_ortho",
        lambda: Op(lambda m, x: torch.fft.fft2(x, norm="ortho").abs()),
        _fft_flops(PIXELS, 4, 5.0) + 2 * NUMEL + 4 * NUMEL,
    ),
    Case(  # an FFT block: rfft2, a complex weight (6 FLOPs per complex product), irfft2 (no scaling: 'forward')
        "fft_block",
        lambda: Op(
            lambda m, x: torch.fft.irfft2(
                torch.fft.rfft2(x) * torch.view_as_complex(m.w), s=(H, W), norm="forward"
            ),
            w=nn.Parameter(torch.rand(C, H, W // 2 + 1, 2)),
        ),
        2 * _fft_flops(PIXELS, 4, 2.5) + 6 * C * H * (W // 2 + 1),
    ),
    # pooling
    Case("max_pool", lambda: Op(lambda m, x: F.max_pool2d(x, 2)), 4 * NUMEL // 4),
    Case("avg_pool", lambda: Op(lambda m, x: F.avg_pool2d(x, 3, stride=1, padding=1)), 9 * NUMEL),
    Case("adaptive_avg_pool", lambda: Op(lambda m, x: F.adaptive_avg_pool2d(x, 1)), NUMEL + C),
    Case("adaptive_max_pool", lambda: Op(lambda m, x: F.adaptive_max_pool2d(x, 1)), NUMEL),
    # activations: per element
    _act(nn.ReLU(), 1),
    _act(nn.LeakyReLU(0.1), 2),
    _act(nn.PReLU(4), 2),
    _act(nn.ELU(), 3),
    _act(nn.ReLU6(), 2),
    _act(nn.GELU(), 8),
    _act(nn.SiLU(), 5),
    _act(nn.Sigmoid(), 4),
    _act(nn.Tanh(), 5),
    _act(nn.Hardswish(), 4),
    _act(nn.Mish(), 8),
    _act(nn.Softplus(), 3),
    # elementwise
    Case("add", lambda: Op(lambda m, x: x + 1), NUMEL),
    Case("mul", lambda: Op(lambda m, x: x * x), NUMEL),
    Case("sub_div", lambda: Op(lambda m, x: (x - 1) / 2), 2 * NUMEL),
    Case("pow_sqrt_exp", lambda: Op(lambda m, x: x.pow(2).sqrt().exp()), 3 * NUMEL),
    Case("clamp_where", lambda: Op(lambda m, x: torch.where(x > 0, x, x.clamp(min=-1))), 3 * NUMEL),
    Case("mean", lambda: Op(lambda m, x: x - x.mean(dim=(2, 3), keepdim=True)), NUMEL + C + NUMEL),
    # a selective scan (a custom op with a registered formula): 9 B L D N, + its B/C projection
    Case(
        "selective_scan",
        lambda: Op(_scan, proj=nn.Conv2d(4, 6, 1), a=nn.Parameter(-torch.rand(4, 3))),
        9 * N * PIXELS * C * 3 + conv_flops(576, 4),
        extra_fcm=9 * N * PIXELS * C * 3,
    ),
]


# -- the real tools ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook_tool(shared_dir: Path) -> ModuleType:
    """The organisers' ``utils/model_summary.py`` (NTIRE 2024's copy of the 2022/2023 hook tool)."""
    path = shared_dir / "challenges" / "ntire2024" / "utils" / "model_summary.py"
    if not path.is_file():
        pytest.skip(f"the NTIRE hook tool is not at {path}")
    spec = importlib.util.spec_from_file_location("ntire_model_summary", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fvcore(model: nn.Module) -> tuple[int, set[str]]:
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    fa = FlopCountAnalysis(model, torch.rand(SHAPE))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    total = int(fa.total())
    return total, {k.replace("::", ".") for k in fa.unsupported_ops()}


def _flop_counter(model: nn.Module) -> int:
    # torch 2.4's register_flop_formula files a custom op's formula under each of its overloads, where that
    # torch's FlopCounterMode (looking ops up by packet) never finds it (pytorch#131770, fixed in 2.5): give
    # those formulas to FlopCounterMode by packet. Empty on later torch, which files them by packet.
    missed = {
        op.overloadpacket: formula.__wrapped__
        for op, formula in flop_registry.items()
        if isinstance(op, torch._ops.OpOverload)
        and op.overloadpacket not in flop_registry
        and hasattr(formula, "__wrapped__")  # the shape function register_flop_formula wrapped
    }
    with FlopCounterMode(display=False, custom_mapping=missed) as counter, torch.no_grad():
        model(torch.rand(SHAPE))
    return int(counter.get_total_flops())


@pytest.fixture(scope="module")
def ptflops_counter() -> Callable[..., Any]:
    """ptflops' ``get_model_complexity_info``. ptflops imports torchvision for a hook of its module backend and
    only expects an ImportError; PyPI's torchvision beside a CPU build of torch raises RuntimeError instead, so
    ptflops is then imported as where torchvision is absent (its aten backend does not use torchvision)."""
    try:
        from ptflops import get_model_complexity_info
    except ImportError as exc:
        pytest.skip(f"ptflops is not installed: {exc}")
    except Exception:
        for name in [m for m in sys.modules if m.split(".")[0] in ("torchvision", "ptflops")]:
            del sys.modules[name]
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "torchvision", None)
            from ptflops import get_model_complexity_info
    return get_model_complexity_info


def _ptflops(model: nn.Module, get_model_complexity_info: Callable[..., Any]) -> int:
    with redirect_stdout(io.StringIO()), torch.no_grad():
        macs, _ = get_model_complexity_info(
            model, SHAPE[1:], as_strings=False, print_per_layer_stat=False, backend="aten"
        )
    return int(macs)


def _ours(model: nn.Module, convention: str):
    return compare_conventions(model, (H, W), [convention], channels=C)[convention]


IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fvcore_convention_is_fvcore(case: Case) -> None:
    pytest.importorskip("fvcore")
    total, unsupported = _fvcore(case.build())
    ours = _ours(case.build(), "fvcore")
    assert ours.flops == total
    assert set(ours.unknown_ops) <= unsupported  # what effbench says fvcore skips, fvcore says it skips


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ntire2022_convention_is_the_hook_tool(case: Case, hook_tool: ModuleType) -> None:
    with redirect_stdout(io.StringIO()), torch.no_grad():
        flops = hook_tool.get_model_flops(case.build(), SHAPE[1:], False)
        activations, convs = hook_tool.get_model_activation(case.build(), SHAPE[1:])
    ours = _ours(case.build(), "ntire2022")
    assert (ours.flops, ours.activations, ours.convs) == (int(flops), int(activations), int(convs))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_full_is_the_documented_formula_and_agrees_with_flop_counter(case: Case) -> None:
    ours = _ours(case.build(), "full")
    assert ours.unknown_ops == []
    assert ours.flops == case.full
    # FlopCounterMode: 2 per multiply-add of convolutions and matrix products, and registered formulas
    assert _flop_counter(case.build()) == (2 * ours.macs + case.extra_fcm if case.flop_counter else 0)


@pytest.mark.parametrize("case", [c for c in CASES if c.ptflops], ids=[c.name for c in CASES if c.ptflops])
def test_full_agrees_with_ptflops_aten_backend(case: Case, ptflops_counter: Callable[..., Any]) -> None:
    ours = _ours(case.build(), "full")
    # ptflops' aten backend: MACs + bias adds of convolution, mm, addmm, bmm
    counted = [r for r in ours.by_op if r["name"] in ("convolution", "mm", "addmm", "bmm")]
    assert _ptflops(case.build(), ptflops_counter) == sum(r["flops"] - r["macs"] for r in counted)


def test_a_fused_attention_kernel_counts_as_the_math_path_a_meta_trace_records() -> None:
    from effbench.counting import profile_trace
    from effbench.counting._trace import record

    # the installed torch's math path softmax: _safe_softmax (torch >= 2.5: a row of -inf gives 0s, not nan),
    # _softmax before it (torch 2.4); both counted 5 per element, so the FLOPs are the same on either torch
    softmax = "_safe_softmax" if hasattr(torch.ops.aten, "_safe_softmax") else "_softmax"
    for case in ("sdpa", "sdpa_float_mask", "sdpa_bool_mask", "sdpa_causal"):
        model = next(c for c in CASES if c.name == case).build()
        meta = profile_trace(record(model, SHAPE), "full")
        assert meta.engine == "meta" and any(r["name"] == softmax for r in meta.by_op)
    fused = next(c for c in CASES if c.name == "sdpa_fused_cpu_kernel").build()
    real = profile_trace(record(fused, SHAPE, force_real=True), "full")
    assert [r["name"] for r in real.by_op if r["flops"]] == ["_scaled_dot_product_flash_attention_for_cpu"]
    assert real.flops == ATTENTION


def test_deformable_convolution_from_torchvision() -> None:
    try:
        from torchvision.ops import deform_conv2d
    except Exception as exc:  # PyPI's torchvision does not import beside a CPU build of torch
        pytest.skip(f"torchvision does not import here: {type(exc).__name__}: {exc}")
    offset = nn.Parameter(torch.zeros(1, 2 * 9, H, W))
    weight = nn.Parameter(torch.rand(6, 4, 3, 3))
    model = Op(lambda m, x: deform_conv2d(x, m.offset, m.weight, padding=1), offset=offset, weight=weight)
    ours = _ours(model, "full")
    assert ours.unknown_ops == []
    assert ours.macs == 576 * 36


# -- every form of a model -----------------------------------------------------------------------------------------


def _block() -> nn.Module:
    """Convolution, attention, an FFT and a custom op: one of each kind of op above."""
    conv = nn.Conv2d(4, 4, 3, padding=1)
    proj = nn.Conv2d(4, 6, 1)
    a = nn.Parameter(-torch.rand(4, 3))

    def fn(m: Op, x: torch.Tensor) -> torch.Tensor:
        y = m.conv(x) + _attention()(m, x)
        y = torch.fft.irfft2(torch.fft.rfft2(y), s=(H, W))
        return _scan(m, y)

    return Op(fn, conv=conv, proj=proj, a=a)


def test_a_compiled_model_counts_as_its_eager_module() -> None:
    eager = _block()
    compiled = torch.compile(eager)
    for convention in ("full", "fvcore", "ntire2022"):
        a, b = _ours(eager, convention), _ours(compiled, convention)
        assert (b.flops, b.macs, b.activations, b.convs, b.params) == (
            a.flops,
            a.macs,
            a.activations,
            a.convs,
            a.params,
        )
        assert [r["name"] for r in b.by_module] == [r["name"] for r in a.by_module]  # no _orig_mod prefix


def _export(model: nn.Module, args: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """``torch.export.export(model, args)``. torch 2.4's cannot export ``torch.fft.rfft2``: its pre-dispatch trace
    parses the op's schema text with torchgen, which splits ``int[1] dim=[-2, -1]`` at the comma ("illegal argument
    '-1]'", pytorch#135470; 2.13 exports it). There the program is exported without the pre-dispatch step (shown
    to work in that issue): the FFTs come as their aten kernels (_fft_r2c, _fft_c2r), the ops the eager model
    runs too."""
    try:
        return torch.export.export(model, args)
    except AssertionError as exc:
        if "illegal argument" not in str(exc):
            raise
    from torch.export._trace import _export

    return _export(model, args, strict=False, pre_dispatch=False)


def test_an_exported_program_can_be_profiled() -> None:
    from effbench.counting import profile

    eager = _block().eval()
    program = _export(eager, (torch.rand(SHAPE),))
    ours = profile(program, (H, W), channels=C)
    assert ours.unknown_ops == [] and ours.peak_memory_bytes
    assert ours.flops == _ours(eager, "full").flops

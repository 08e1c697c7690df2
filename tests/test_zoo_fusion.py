"""The fusion models of the zoo (IMDN, the NTIRE 2022 IMDN baseline, RFDN, E-RFDN, LatticeNet, EDSR-baseline):
parameter counts, the Mult-Adds of the FMEN paper's Table 3, output shapes, the official checkpoints (strict
loading, SHA-256 metadata, input ranges) and the reusable blocks of the attention and block studies."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import effbench
from effbench.base.errors import UsageError
from effbench.zoo.registry import model_info
from effbench.zoo.weights import KEY_LAYOUTS, read_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def zoo_module(name: str):
    """The module defining a zoo model (however the zoo package was imported)."""
    return sys.modules[type(effbench.create_model(name)).__module__]


def conv_mult_adds(model: nn.Module, lr_hw: tuple[int, int]) -> int:
    """Multiply-accumulates of every Conv2d call for one LR input, counted on the meta device (no compute)."""
    total = 0

    def hook(mod: nn.Conv2d, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += out[0].numel() * k

    model = model.to("meta")
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, *lr_hw, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total


ALL_MODELS = [
    ("imdn", 2),
    ("imdn", 3),
    ("imdn", 4),
    ("imdn_ntire", 4),
    ("rfdn", 2),
    ("rfdn", 3),
    ("rfdn", 4),
    ("e_rfdn", 4),
    ("latticenet", 2),
    ("latticenet", 3),
    ("latticenet", 4),
    ("edsr_baseline", 2),
    ("edsr_baseline", 3),
    ("edsr_baseline", 4),
]

# --- parameter counts ----------------------------------------------------------------------------------------------

# Exact: the official checkpoints hold exactly these many numbers.
EXACT_PARAMS = {
    ("imdn", 2): 694_404,
    ("imdn", 3): 703_059,
    ("imdn", 4): 715_176,
    ("imdn_ntire", 4): 893_936,
    ("e_rfdn", 4): 433_448,
    ("latticenet", 2): 756_196,
    ("latticenet", 3): 764_851,
    ("latticenet", 4): 776_968,
}

# Table 3 of the FMEN paper (thousands).
TABLE3_PARAMS = {
    ("edsr_baseline", 2): 1_370_000,
    ("edsr_baseline", 3): 1_554_000,
    ("edsr_baseline", 4): 1_518_000,
    ("rfdn", 2): 534_000,
    ("rfdn", 3): 541_000,
    ("rfdn", 4): 550_000,
}


@pytest.mark.parametrize(("name", "scale"), list(EXACT_PARAMS))
def test_params_equal_the_official_checkpoints(name: str, scale: int) -> None:
    assert n_params(effbench.create_model(name, scale)) == EXACT_PARAMS[name, scale]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_baseline_params_match_table3_within_half_percent(scale: int) -> None:
    params = n_params(effbench.create_model("edsr_baseline", scale))
    assert abs(params - TABLE3_PARAMS["edsr_baseline", scale]) / TABLE3_PARAMS["edsr_baseline", scale] < 0.005
    # 16 RBs of two 64->64 3x3 convs, head, body conv, upsampler, tail and the two frozen mean shifts
    assert params == {2: 1_369_883, 3: 1_554_523, 4: 1_517_595}[scale]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_rfdn_params_match_table3_once_esa_low_resolution_convs_are_left_out(scale: int) -> None:
    """The paper's RFDN (48 channels, 6 RFDBs, official block) has 566,364 / 572,859 / 581,952 parameters; Table 3's
    534K / 541K / 550K are met within 0.5% when ESA's four 3x3 convs (the low-resolution branch) are not counted
    (see models/rfdn.py: the Mult-Adds below single out this configuration)."""
    model = effbench.create_model("rfdn", scale)
    assert n_params(model) == {2: 566_364, 3: 572_859, 4: 581_952}[scale]
    esa_low_res = sum(
        n_params(conv)
        for esa in model.modules()
        if type(esa).__name__ == "ESA"
        for conv in (esa.conv2, esa.conv_max, esa.conv3, esa.conv3_)
    )
    assert esa_low_res == 6 * 4 * 1_308
    counted = n_params(model) - esa_low_res
    assert abs(counted - TABLE3_PARAMS["rfdn", scale]) / TABLE3_PARAMS["rfdn", scale] < 0.005


# --- Mult-Adds of Table 3 (HR output 1280x720) ---------------------------------------------------------------------

TABLE3_MULT_ADDS_G = {
    ("imdn", 2): 158.8,
    ("imdn", 3): 71.5,
    ("imdn", 4): 40.9,
    ("rfdn", 2): 123.0,
    ("rfdn", 3): 55.4,
    ("rfdn", 4): 31.6,
    ("latticenet", 2): 169.5,
    ("latticenet", 3): 76.3,
    ("latticenet", 4): 43.6,
    ("edsr_baseline", 2): 316.2,
    ("edsr_baseline", 3): 160.4,
    ("edsr_baseline", 4): 114.2,
}


@pytest.mark.parametrize(("name", "scale"), list(TABLE3_MULT_ADDS_G))
def test_conv_mult_adds_at_720p_output_match_table3(name: str, scale: int) -> None:
    """Convolution Mult-Adds for a 1280x720 output (LR 640x360, 427x240, 320x180) within 0.5% of Table 3."""
    lr = (math.ceil(720 / scale), math.ceil(1280 / scale))
    mult_adds = conv_mult_adds(effbench.create_model(name, scale), lr) / 1e9
    assert abs(mult_adds - TABLE3_MULT_ADDS_G[name, scale]) / TABLE3_MULT_ADDS_G[name, scale] < 0.005


@pytest.mark.parametrize(("name", "convs"), [("imdn_ntire", 43), ("e_rfdn", 64)])
def test_ntire_models_have_the_conv_count_of_table4(name: str, convs: int) -> None:
    """Table 4 counts 43 convolution calls in the NTIRE IMDN baseline and 64 in E-RFDN (256x256 input)."""
    calls: list[nn.Module] = []
    model = effbench.create_model(name).to("meta")
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda mod, args, out: calls.append(mod))
    with torch.no_grad():
        model(torch.empty(1, 3, 256, 256, device="meta"))
    assert len(calls) == convs


# --- shapes and inputs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scale"), ALL_MODELS)
def test_output_is_scale_times_an_odd_sized_input(name: str, scale: int) -> None:
    model = effbench.create_model(name, scale)
    info = model_info(name)
    x = torch.rand(1, 3, 17, 23) * info.data_range
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()


def test_registered_metadata() -> None:
    expect = {
        "imdn": ((2, 3, 4), 1.0),
        "imdn_ntire": ((4,), 1.0),
        "rfdn": ((2, 3, 4), 255.0),
        "e_rfdn": ((4,), 255.0),
        "latticenet": ((2, 3, 4), 255.0),
        "edsr_baseline": ((2, 3, 4), 255.0),
    }
    for name, (scales, data_range) in expect.items():
        info = model_info(name)
        assert (info.scales, info.data_range) == (scales, data_range), name
        assert info.paper and info.description, name


def test_rfdn_rejects_inputs_too_small_for_esa_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"at least 15x15.*got 12x40"):
        effbench.create_model("e_rfdn")(torch.rand(1, 3, 12, 40))


def test_bad_overrides_are_usage_errors_naming_the_problem() -> None:
    with pytest.raises(UsageError, match="n_blocks"):
        effbench.create_model("imdn", n_blocks=3)
    with pytest.raises(UsageError, match="unknown block 'xb'"):
        effbench.create_model("edsr_baseline", block="xb")
    with pytest.raises(UsageError, match="n_feats"):
        effbench.create_model("latticenet", n_feats=63)


def test_overrides_give_variants() -> None:
    assert n_params(effbench.create_model("rfdn", 4, nf=50, num_modules=4)) == 433_448  # = E-RFDN
    small = effbench.create_model("imdn", 4, nf=32, num_modules=2)
    assert len(small.blocks) == 2 and small.fea_conv.out_channels == 32


# --- official checkpoints -----------------------------------------------------------------------------------------

CHECKPOINTS = {
    "IMDN_x2.pth": ("imdn", 2),
    "IMDN_x3.pth": ("imdn", 3),
    "IMDN_x4.pth": ("imdn", 4),
    "ntire22_imdn_baseline.pth": ("imdn_ntire", 4),
    "RFDN_AIM.pth": ("e_rfdn", 4),
    "LatticeNet_x2.pt": ("latticenet", 2),
    "LatticeNet_x3.pt": ("latticenet", 3),
    "LatticeNet_x4.pt": ("latticenet", 4),
}


@pytest.mark.parametrize("filename", list(CHECKPOINTS))
def test_official_checkpoint_loads_strictly(filename: str, weights_cache: Path) -> None:
    name, scale = CHECKPOINTS[filename]
    (cfg,) = model_info(name).checkpoints(scale)
    assert cfg.filename == filename
    # the registered key layout alone maps every key onto the model, strict=True
    raw = read_state_dict(weights_cache / filename)
    sd = KEY_LAYOUTS[cfg.key_layout](raw) if cfg.key_layout else raw
    effbench.create_model(name, scale).load_state_dict(sd, strict=True)
    # and the zoo's loader (cache, SHA-256, strict) gives the same weights
    model = effbench.create_model(name, scale, pretrained=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, sd[key]), key


def test_registered_sha256_match_the_shared_sums(weights_dir: Path) -> None:
    sums = dict(
        reversed(line.split())
        for line in (weights_dir / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    for filename, (name, scale) in CHECKPOINTS.items():
        (cfg,) = model_info(name).checkpoints(scale)
        assert cfg.sha256 == sums[filename], filename


def test_every_scale_with_a_public_checkpoint_has_an_official_address() -> None:
    for name in ("imdn", "imdn_ntire", "e_rfdn", "latticenet", "edsr_baseline"):
        info = model_info(name)
        for scale in info.scales:
            (cfg,) = info.checkpoints(scale)
            assert cfg.url and cfg.url.startswith("https://") and cfg.url.endswith((".pt", ".pth")), (
                name,
                scale,
            )
            assert re.fullmatch(r"[0-9a-f]{64}", cfg.sha256 or ""), (name, scale)
    assert model_info("rfdn").pretrained == {}


def test_edsr_keys_follow_the_official_checkpoint_layout() -> None:
    """EDSR-PyTorch's files (not shipped here) name their tensors like this; the model loads them unmapped."""
    keys = set(effbench.create_model("edsr_baseline", 4).state_dict())
    for key in (
        "sub_mean.weight",
        "head.0.weight",
        "body.0.body.0.weight",
        "body.15.body.2.bias",
        "body.16.weight",
        "tail.0.0.weight",
        "tail.0.2.weight",
        "tail.1.weight",
        "add_mean.bias",
    ):
        assert key in keys
    assert len(keys) == 2 * (1 + 1 + 32 + 1 + 2 + 1 + 1)


def smooth_pattern(h: int, w: int) -> torch.Tensor:
    """A band-limited RGB image in [0.2, 0.8]: a few low-frequency sinusoids."""
    y = torch.linspace(0, 1, h).view(h, 1)
    x = torch.linspace(0, 1, w).view(1, w)
    r = 0.5 + 0.3 * torch.sin(2 * math.pi * (1.3 * x + 0.4 * y))
    g = 0.5 + 0.3 * torch.cos(2 * math.pi * (0.7 * x - 1.1 * y))
    b = 0.5 + 0.25 * torch.sin(2 * math.pi * (1.5 * x * y + 0.2))
    return torch.stack([r, g, b]).unsqueeze(0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / F.mse_loss(a, b).item())


@pytest.mark.parametrize("filename", list(CHECKPOINTS))
def test_pretrained_models_restore_a_smooth_image_at_their_registered_range(
    filename: str, weights_cache: Path
) -> None:
    """Fed in its registered data range, each official model super-resolves a smooth pattern at least as well as
    bicubic upsampling and above 45 dB (a wrong layer, layout or input range gives garbage: ~10-30 dB)."""
    name, scale = CHECKPOINTS[filename]
    model = effbench.create_model(name, scale, pretrained=True)
    rng = model_info(name).data_range
    hr = smooth_pattern(24 * scale, 30 * scale)
    lr = F.interpolate(hr, size=(24, 30), mode="bicubic", antialias=True, align_corners=False)
    bicubic = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    with torch.no_grad():
        sr = (model(lr * rng) / rng).clamp(0, 1)
    assert psnr(sr, hr) > max(45.0, psnr(bicubic, hr))


# --- the reusable blocks -------------------------------------------------------------------------------------------


def test_cca_and_esa_are_attention_masks_usable_in_another_backbone() -> None:
    """The attention study inserts CCA (IMDN) and ESA (RFDN) into a 50-channel backbone: each keeps the shape and
    only rescales features by a gate in (0, 1)."""
    cca_cls, esa_cls = zoo_module("imdn").CCA, zoo_module("e_rfdn").ESA
    x = torch.randn(2, 50, 20, 24)
    for block in (cca_cls(50), esa_cls(50)):
        with torch.no_grad():
            y = block(x)
        gate = y / x
        assert y.shape == x.shape
        assert ((gate >= 0) & (gate <= 1 + 1e-6)).all()
        assert gate.std() > 0  # a real, input-dependent gate


def test_cca_uses_the_contrast_plus_the_mean() -> None:
    cca = zoo_module("imdn").CCA(16, reduction=4)
    x = torch.randn(1, 16, 9, 11)
    stat = x.std(dim=(2, 3), unbiased=False, keepdim=True) + x.mean(dim=(2, 3), keepdim=True)
    with torch.no_grad():
        assert torch.allclose(cca(x), x * cca.conv_du(stat), atol=1e-6)


def test_plain_block_is_the_residual_block_without_its_skip() -> None:
    mod = zoo_module("edsr_baseline")
    rb, pb = mod.ResBlock(8), mod.PlainBlock(8)
    pb.load_state_dict(rb.state_dict(), strict=True)
    x = torch.randn(1, 8, 7, 9)
    with torch.no_grad():
        assert torch.allclose(pb(x), rb(x) - x, atol=1e-6)
    edsr_rb = effbench.create_model("edsr_baseline", 2)
    edsr_pb = effbench.create_model("edsr_baseline", 2, block="pb")
    assert n_params(edsr_pb) == n_params(edsr_rb)
    assert sum(isinstance(m, mod.PlainBlock) for m in edsr_pb.modules()) == 16


def test_lattice_block_combines_branches_with_coefficients() -> None:
    block = zoo_module("latticenet").LatticeBlock(32, 8)
    x = torch.randn(1, 32, 10, 12)
    with torch.no_grad():
        y = block(x)
        coeff = block.fea_ca1(x)
    assert y.shape == x.shape
    assert coeff.shape == (1, 32, 1, 1) and ((coeff > 0) & (coeff < 1)).all()

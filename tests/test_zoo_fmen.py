"""FMEN / FMEN-S: the paper's parameter counts, exact re-parameterisation, output shapes, the official checkpoints
and the block variants of the block and attention studies."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import effbench
from effbench.base.errors import CheckpointError
from effbench.zoo.reparam import Reparameterizable, is_deploy_form, reparameterize
from effbench.zoo.weights import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fmen_module():
    return type(effbench.create_model("fmen_s"))  # the FMEN class, however the zoo package was imported


def blocks_module():
    import sys

    return sys.modules[fmen_module().__module__]


# --- parameter counts (deploy form) ---------------------------------------------------------------------------------

TABLE3_FMEN = {2: 748_000, 3: 757_000, 4: 769_000}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fmen_params_match_table3_within_half_percent(scale: int) -> None:
    model = effbench.create_model("fmen", scale=scale)
    assert abs(n_params(model) - TABLE3_FMEN[scale]) / TABLE3_FMEN[scale] < 0.005


def test_fmen_s_params_match_the_ntire_checkpoint_exactly() -> None:
    assert n_params(effbench.create_model("fmen_s", scale=4)) == 341_066


def test_deploy_form_has_only_3x3_convs_and_no_bn() -> None:
    model = effbench.create_model("fmen_s")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert len(convs) == 34  # paper Table 4: FMEN-S has 34 convolutions


def test_train_form_has_bn_and_1x1_convs() -> None:
    model = effbench.create_model("fmen_s", deploy=False)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 15  # 3 per HFAB, 5 HFABs
    assert any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())
    assert not is_deploy_form(model)
    assert is_deploy_form(effbench.create_model("fmen_s"))


# --- re-parameterisation ----------------------------------------------------------------------------------------------


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Random conv weights (default init, seeded) and random BN statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            elif isinstance(m, nn.Conv2d):
                m.weight.copy_(
                    (torch.rand(m.weight.shape, generator=g) * 2 - 1) / (m.weight[0].numel() ** 0.5)
                )
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * 0.1)
    return model.eval()


ZOO_SCALES = [("fmen", 2), ("fmen", 3), ("fmen", 4), ("fmen_s", 4)]
SIZES = [(11, 13), (8, 8), (5, 17)]


@pytest.mark.parametrize(("name", "scale"), ZOO_SCALES)
def test_reparameterized_output_equals_train_form_float64(name: str, scale: int) -> None:
    torch.manual_seed(0)
    train = randomize_(effbench.create_model(name, scale=scale, deploy=False), seed=scale).double()
    deploy = reparameterize(train)
    for h, w in SIZES:
        x = torch.rand(2, 3, h, w, dtype=torch.float64) * 255
        with torch.no_grad():
            ref, out = train(x), deploy(x)
        assert out.shape == (2, 3, h * scale, w * scale)
        assert (out - ref).abs().max().item() < 1e-9


@pytest.mark.parametrize(("name", "scale"), ZOO_SCALES)
def test_reparameterized_output_equals_train_form_float32(name: str, scale: int) -> None:
    train = randomize_(effbench.create_model(name, scale=scale, deploy=False), seed=10 + scale)
    deploy = reparameterize(train)
    x = torch.rand(1, 3, 9, 14) * 255
    with torch.no_grad():
        ref, out = train(x), deploy(x)
    assert (out - ref).abs().max().item() < 1e-4 * (ref.max() - ref.min()).item()


@pytest.mark.parametrize(("name", "scale"), ZOO_SCALES)
def test_reparameterized_model_is_the_registered_deploy_model(name: str, scale: int) -> None:
    train = effbench.create_model(name, scale=scale, deploy=False)
    deploy = reparameterize(train)
    registered = effbench.create_model(name, scale=scale, deploy=True)
    assert n_params(deploy) == n_params(registered)
    registered.load_state_dict(deploy.state_dict(), strict=True)  # same keys, same shapes
    assert is_deploy_form(deploy) and deploy.deploy


def test_reparameterize_copies_by_default_and_can_work_in_place() -> None:
    train = effbench.create_model("fmen_s", deploy=False)
    before = {k: v.clone() for k, v in train.state_dict().items()}
    deploy = reparameterize(train)
    assert deploy is not train and not is_deploy_form(train)
    assert all(torch.equal(before[k], v) for k, v in train.state_dict().items())
    same = reparameterize(train, inplace=True)
    assert same is train and is_deploy_form(train)
    assert reparameterize(same).state_dict().keys() == same.state_dict().keys()  # idempotent


def test_reparameterize_rejects_non_modules() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        reparameterize({"not": "a model"})  # type: ignore[arg-type]


def test_rrrb_pads_with_the_expand_bias_so_the_border_is_exact() -> None:
    mod = blocks_module()
    rrrb = randomize_(mod.RRRB(6, ratio=2, deploy=False), seed=3).double()
    x = torch.randn(1, 6, 7, 5, dtype=torch.float64)
    fused = reparameterize(rrrb)
    assert isinstance(rrrb, Reparameterizable) and fused.deploy
    with torch.no_grad():
        assert torch.allclose(rrrb(x), fused(x), atol=1e-12, rtol=0)
        # zero padding instead of bias padding would break the border pixels
        e = rrrb.expand_conv(x)
        zero_pad = rrrb.reduce_conv(rrrb.fea_conv(nn.functional.pad(e, (1, 1, 1, 1))) + e) + x
    assert (zero_pad - fused(x))[..., 0, :].abs().max() > 1e-3


# --- shapes, variants -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scale"), ZOO_SCALES)
@pytest.mark.parametrize("deploy", [True, False])
def test_output_is_scale_times_input_for_odd_sizes(name: str, scale: int, deploy: bool) -> None:
    model = effbench.create_model(name, scale=scale, deploy=deploy)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 7, 9) * 255)
    assert out.shape == (1, 3, 7 * scale, 9 * scale)


@pytest.mark.parametrize("block", ["rb", "pb"])
def test_block_variants_have_the_same_params_as_the_deployed_erb(block: str) -> None:
    """Paper Sec. 4.2: PB, RB and ERB 'are of the same number of parameters' (ERB counted at inference)."""
    erb = effbench.create_model("fmen", scale=4)
    other = effbench.create_model("fmen", scale=4, block=block)
    assert n_params(other) == n_params(erb)
    names = {type(m).__name__ for m in other.ERBs}
    assert names == {block.upper()}
    with torch.no_grad():
        assert other(torch.rand(1, 3, 6, 5)).shape == (1, 3, 24, 20)


def test_rb_adds_the_skip_and_pb_does_not() -> None:
    mod = blocks_module()
    rb, pb = mod.RB(4), mod.PB(4)
    pb.load_state_dict(rb.state_dict())
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        assert torch.allclose(rb(x), pb(x) + x)


def test_unknown_block_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown block 'xb'"):
        effbench.create_model("fmen", block="xb")


def test_erb_backbone_inserts_attention_every_k_blocks() -> None:
    mod = blocks_module()
    hfab = functools.partial(mod.HFAB, up_blocks=1, mid_feats=8, deploy=False)
    net = mod.ERBBackbone(scale=4, n_feats=16, n_blocks=15, attention=hfab, every=3, deploy=False)
    kinds = [type(m).__name__ for m in net.body]
    assert kinds.count("ERB") == 15 and kinds.count("HFAB") == 5
    assert kinds[:4] == ["ERB", "ERB", "ERB", "HFAB"]
    randomize_(net, seed=1)
    fused = reparameterize(net.double())
    x = torch.rand(1, 3, 6, 7, dtype=torch.float64) * 255
    with torch.no_grad():
        assert (net(x) - fused(x)).abs().max() < 1e-9
    assert len(mod.ERBBackbone(n_blocks=15).body) == 15


# --- the official FMEN-S checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("filename", ["ntire22_team03_fmen.pth", "FMEN_test_weights.pt"])
def test_both_fmen_s_checkpoints_load_strictly_into_the_deploy_form(filename: str, weights_dir) -> None:
    model = load_checkpoint(effbench.create_model("fmen_s"), weights_dir / filename)
    sd = torch.load(weights_dir / filename, map_location="cpu", weights_only=True)
    assert sum(v.numel() for v in sd.values()) == n_params(model) == 341_066
    assert torch.equal(model.head.weight, sd["head.weight"])


def test_the_two_fmen_s_checkpoints_differ(weights_cache) -> None:
    a = effbench.create_model("fmen_s", pretrained=True)
    b = effbench.create_model("fmen_s", pretrained=True, weights="FMEN_test_weights.pt")
    assert not torch.equal(a.lr_conv.weight, b.lr_conv.weight)
    x = torch.rand(1, 3, 12, 12) * 255
    with torch.no_grad():
        ya, yb = a(x), b(x)
    # both are trained x4 models: outputs look like the input range, and they disagree a little
    assert 0 < (ya - yb).abs().mean() < 10
    assert -20 < ya.mean() < 275


def test_official_deploy_checkpoint_refuses_the_train_form(weights_cache) -> None:
    with pytest.raises(
        CheckpointError, match="deploy .*form.*ntire22_team03_fmen.pth|ntire22_team03_fmen.pth.*deploy"
    ):
        effbench.create_model("fmen_s", pretrained=True, deploy=False)


def test_no_checkpoint_for_fmen_is_a_clear_error() -> None:
    with pytest.raises(CheckpointError, match="no official checkpoint for fmen x4"):
        effbench.create_model("fmen", scale=4, pretrained=True)


# --- the official weights restore images (structure and [0,255] data range are right) --------------------------------


def _set5_x4_y_psnr(model: nn.Module, data_dir) -> float:
    """Mean Y-channel PSNR (BT.601, border 4) on Set5 x4 with the given MATLAB-bicubic LR images."""
    import numpy as np
    from PIL import Image

    def luma(img: np.ndarray) -> np.ndarray:
        return 16 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255

    scores = []
    for hr_path in sorted((data_dir / "Set5" / "HR").glob("*.png")):
        lr = np.asarray(
            Image.open(data_dir / "Set5" / "LR_bicubic" / "X4" / f"{hr_path.stem}x4.png").convert("RGB")
        )
        hr = np.asarray(Image.open(hr_path).convert("RGB")).astype(np.float64)
        with torch.no_grad():
            sr = model(torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float())
        sr = sr.clamp(0, 255).round()[0].permute(1, 2, 0).double().numpy()
        hr = hr[: sr.shape[0], : sr.shape[1]]
        err = (luma(sr) - luma(hr))[4:-4, 4:-4]
        scores.append(10 * np.log10(255.0**2 / np.mean(err**2)))
    return float(np.mean(scores))


@pytest.mark.parametrize("weights", [None, "FMEN_test_weights.pt"])
def test_pretrained_fmen_s_beats_bicubic_on_set5_by_over_3_5_db(weights, weights_cache, data_dir) -> None:
    """Set5 x4: bicubic gives 28.43 dB (data README); measured FMEN-S: 32.03 (NTIRE file) / 32.12 (authors')."""
    model = effbench.create_model("fmen_s", pretrained=True, weights=weights)
    assert _set5_x4_y_psnr(model, data_dir) > 31.9

"""Image quality on small synthetic images: MATLAB imresize, PSNR/SSIM and their protocols, data-set readers,
evaluate() and `effbench eval`. Runs in seconds; the reproduction of published tables is in
test_quality_tables.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from effbench.base.errors import ModelError, UsageError
from effbench.base.imresize import contributions
from effbench.cli import main
from effbench.quality import (
    DatasetError,
    crop_border,
    evaluate,
    imresize,
    make_lr,
    mod_crop,
    open_dataset,
    psnr,
    read_image,
    rgb_to_y,
    score,
    ssim,
    to_uint8,
)

RNG = np.random.default_rng(0)


def rand_u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


# ----------------------------------------------------------------------------------------------- imresize


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_imresize_identity_at_scale_one(dtype):
    img = rand_u8(13, 17, 3).astype(dtype)
    np.testing.assert_array_equal(imresize(img, 1.0), img)
    np.testing.assert_array_equal(imresize(img, size=(13, 17)), img)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2.0, 3.0, 4.0, 0.7, 1.6])
def test_imresize_keeps_constant_images_constant(scale):
    for value in (0, 1, 128, 255):
        img = np.full((24, 18, 3), value, np.uint8)
        out = imresize(img, scale)
        assert out.shape == (math.ceil(24 * scale - 1e-9), math.ceil(18 * scale - 1e-9), 3)
        assert (out == value).all()


def test_imresize_output_size_is_ceil_of_scale_times_size():
    assert imresize(rand_u8(10, 11), 1 / 3).shape == (4, 4)  # ceil(3.33), ceil(3.67)
    assert imresize(rand_u8(255, 12), 1 / 3).shape == (85, 4)  # 255 * (1/3) must not become 86
    assert imresize(rand_u8(5, 7), 2.5).shape == (13, 18)


def test_bicubic_x2_weights_are_keys_cubic_with_a_minus_half():
    # Upsampling by 2: output pixel 1 sits at input coordinate 0.75, between taps 0..3 (1-based, mirrored).
    weights, ind = contributions(8, 16, 2.0)
    np.testing.assert_allclose(weights[4], [-0.0234375, 0.2265625, 0.8671875, -0.0703125])
    np.testing.assert_array_equal(ind[4], [0, 1, 2, 3])
    # Symmetric padding (x2 x1 | x1 x2 ...): the first output pixel reads 1-based taps -1, 0, 1, 2 = x2, x1, x1, x2.
    np.testing.assert_array_equal(ind[0], [1, 0, 0, 1])
    np.testing.assert_allclose(weights.sum(1), 1.0)


def test_antialiasing_widens_the_kernel_when_downscaling():
    w_aa, _ = contributions(40, 10, 0.25, "cubic", True)
    w_plain, _ = contributions(40, 10, 0.25, "cubic", False)
    # 4/scale + 2 = 18 taps vs 4 + 2 = 6, less the two columns that are zero for every output pixel
    assert w_aa.shape[1] == 16 and w_plain.shape[1] == 4
    assert (w_aa[5] > 0).sum() > (w_plain[5] > 0).sum()


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2.0, 3.0])
def test_imresize_commutes_with_flips(scale):
    img = rand_u8(24, 36, 3)  # multiples of 2, 3, 4: the sampling grid is symmetric
    out = imresize(img, scale)
    np.testing.assert_array_equal(imresize(img[::-1], scale), out[::-1])
    np.testing.assert_array_equal(imresize(img[:, ::-1], scale), out[:, ::-1])


def test_imresize_float_commutes_with_transpose():
    img = RNG.random((24, 30))
    np.testing.assert_allclose(imresize(img.T, 1 / 3), imresize(img, 1 / 3).T, rtol=0, atol=1e-12)


def test_bicubic_upsampling_reproduces_linear_ramps_inside_the_image():
    ramp = np.add.outer(np.arange(16.0) * 3, np.arange(16.0) * 2)  # 3 y + 2 x
    up = imresize(ramp, 4.0)
    y, x = np.mgrid[0:64, 0:64]
    expected = 3 * ((y + 0.5) / 4 - 0.5) + 2 * ((x + 0.5) / 4 - 0.5)  # pixel centres mapped back
    np.testing.assert_allclose(up[8:-8, 8:-8], expected[8:-8, 8:-8], atol=1e-9)


def test_imresize_uint8_rounds_after_each_pass_like_matlab():
    img = rand_u8(40, 40)
    out = imresize(img, 1 / 4)
    rows = np.clip(np.floor(imresize(img.astype(np.float64), size=(10, 40)) + 0.5), 0, 255)
    both = np.clip(np.floor(imresize(rows, size=(10, 10)) + 0.5), 0, 255)
    np.testing.assert_array_equal(out, both.astype(np.uint8))
    one_shot = np.clip(np.floor(imresize(img.astype(np.float64), 1 / 4) + 0.5), 0, 255).astype(np.uint8)
    assert not np.array_equal(out, one_shot)  # rounding once at the end is not what MATLAB does


def test_imresize_torch_matches_numpy_and_keeps_gradients():
    img = rand_u8(20, 28, 3)
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    np.testing.assert_array_equal(imresize(t, 1 / 2)[0].permute(1, 2, 0).numpy(), imresize(img, 1 / 2))
    x = t.double().requires_grad_()
    y = imresize(x, 3.0)
    assert y.shape == (1, 3, 60, 84) and y.dtype == torch.float64
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    np.testing.assert_allclose(y[0].detach().permute(1, 2, 0).numpy(), imresize(img.astype(np.float64), 3.0))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros((4, 4)), 0), {}, "positive"),
        ((np.zeros((4, 4)), -2.0), {}, "positive"),
        ((np.zeros((4, 4)), 2.0), {"size": (8, 8)}, "exactly one"),
        ((np.zeros((4, 4)),), {}, "exactly one"),
        ((np.zeros(4), 2.0), {}, "(H, W)"),
        ((np.zeros((4, 4), np.int32), 2.0), {}, "uint8 or floating"),
        ((np.zeros((4, 4)), 2.0), {"kernel": "lanczos9"}, "unknown imresize kernel"),
        (([[1, 2]], 2.0), {}, "numpy array or a torch tensor"),
    ],
)
def test_imresize_rejects_bad_input(args, kwargs, match):
    with pytest.raises(UsageError, match=match):
        imresize(*args, **kwargs)


# ------------------------------------------------------------------------------------------------ metrics


def test_identical_images_have_infinite_psnr_and_unit_ssim():
    img = rand_u8(32, 32, 3)
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_a_known_mse():
    a = np.zeros((20, 20), np.uint8)
    b = a.copy()
    b[:10] = 4  # half the pixels off by 4: MSE = 8
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 8))
    assert psnr(a, b, peak=1.0) == pytest.approx(10 * math.log10(1 / 8))


def test_border_pixels_do_not_count():
    a = rand_u8(30, 30)
    b = a.copy()
    b[:3], b[:, -3:] = 255 - b[:3], 255 - b[:, -3:]
    assert psnr(a, b) < 20
    assert psnr(a, b, border=3) == math.inf
    assert ssim(a, b, border=3) == pytest.approx(1.0)
    assert crop_border(a, 3).shape == (24, 24)
    with pytest.raises(UsageError, match="too small"):
        psnr(a, b, border=15)


def test_ssim_of_flat_images_is_the_luminance_term():
    c1 = (0.01 * 255) ** 2
    a, b = np.full((16, 16), 100.0), np.full((16, 16), 110.0)
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))


def test_ssim_is_symmetric_and_drops_with_noise():
    a = rand_u8(48, 48).astype(np.float64)
    small = np.clip(a + RNG.normal(0, 5, a.shape), 0, 255)
    large = np.clip(a + RNG.normal(0, 40, a.shape), 0, 255)
    assert ssim(a, small) == pytest.approx(ssim(small, a))
    assert 1 > ssim(a, small) > ssim(a, large) > 0
    with pytest.raises(UsageError, match="11x11"):
        ssim(a[:10, :10], a[:10, :10])


def test_rgb_to_y_is_matlab_bt601():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(px)[0], [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    np.testing.assert_array_equal(rgb_to_y(px, round_to_uint8=True)[0], [16, 235, 81, 145, 41])
    grey = rand_u8(5, 6)
    np.testing.assert_array_equal(rgb_to_y(grey), rgb_to_y(np.repeat(grey[..., None], 3, 2)))


def test_to_uint8_scales_clamps_and_rounds_half_up():
    np.testing.assert_array_equal(to_uint8(np.array([-0.2, 0.5 / 255, 1.5 / 255, 1.3]), 1.0), [0, 1, 2, 255])
    np.testing.assert_array_equal(to_uint8(np.array([254.5, 300.0]), 255.0), [255, 255])


def test_paper_protocol_crops_scale_pixels_and_ntire_crops_four():
    hr = rand_u8(34, 35, 3)  # cropped to 32 x 32 at x4
    sr = mod_crop(hr, 4).copy()
    sr[3, 10] ^= 0xFF  # a pixel 3 rows from the edge: inside the NTIRE/x4 border, outside a x2 border
    assert score(sr, hr, 4, "paper")[0] == math.inf
    assert score(sr, hr, 4, "ntire")[0] == math.inf
    sr2 = mod_crop(hr, 2).copy()
    sr2[3, 10] ^= 0xFF
    assert score(sr2, hr, 2, "paper")[0] < math.inf
    sr[16, 16] = 255 - sr[16, 16]
    p_rgb, s_rgb = score(sr, hr, 4, "ntire")
    assert p_rgb == pytest.approx(psnr(sr, mod_crop(hr, 4), border=4)) and s_rgb < 1
    with pytest.raises(UsageError, match="does not match"):
        score(sr[:-4], hr, 4)
    with pytest.raises(UsageError, match="unknown protocol"):
        score(sr, hr, 4, "matlab")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ data sets


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def paired_set(tmp_path):
    root = tmp_path / "Tiny"
    for name, shape in (("a", (26, 30, 3)), ("g", (24, 24))):
        hr = rand_u8(*shape)
        _save(root / "HR" / f"{name}.png", hr)
        _save(root / "LR_bicubic" / "X2" / f"{name}x2.png", imresize(mod_crop(hr, 2), 1 / 2))
    return root


def test_paired_layout_reads_hr_and_given_lr(paired_set):
    ds = open_dataset(paired_set, 2)
    assert ds.layout == "paired" and ds.lr_source == "files" and len(ds) == 2
    a, g = ds[0], ds[1]
    assert a.name == "a" and a.hr.shape == (26, 30, 3) and a.lr.shape == (13, 15, 3)
    assert a.lr_path == paired_set / "LR_bicubic" / "X2" / "ax2.png"
    assert g.hr.shape == (24, 24, 3) and (g.hr[..., 0] == g.hr[..., 2]).all()  # grey replicated to RGB
    # No X3 folder: LR made with imresize from the HR image.
    ds3 = open_dataset(paired_set, 3)
    assert ds3.layout == "hr_only" and ds3[0].lr_path is None
    np.testing.assert_array_equal(ds3[0].lr, make_lr(ds3[0].hr, 3))


def test_hr_only_folder_makes_lr_with_imresize(tmp_path):
    hr = rand_u8(21, 22, 3)
    _save(tmp_path / "img.png", hr)
    s = open_dataset(tmp_path, 4)[0]
    assert s.lr.shape == (5, 5, 3)
    np.testing.assert_array_equal(s.lr, imresize(hr[:20, :20], 1 / 4))


@pytest.mark.parametrize("sub", ["", "X4"])
def test_div2k_layout(tmp_path, sub):
    hr = rand_u8(16, 20, 3)
    _save(tmp_path / "DIV2K_valid_HR" / "0801.png", hr)
    lr_dir = tmp_path / "DIV2K_valid_LR_bicubic" / sub if sub else tmp_path / "DIV2K_valid_LR"
    _save(lr_dir / "0801x4.png", make_lr(hr, 4))
    ds = open_dataset(tmp_path, 4)
    assert ds.layout == "div2k" and ds[0].lr_path == lr_dir / "0801x4.png"
    with pytest.raises(DatasetError, match="no LR images"):
        open_dataset(tmp_path, 2)


def test_missing_corrupt_or_missized_images_name_the_file(paired_set, tmp_path):
    (paired_set / "LR_bicubic" / "X2" / "gx2.png").unlink()
    with pytest.raises(DatasetError, match=r"gx2\.png"):
        open_dataset(paired_set, 2)
    bad = tmp_path / "broken" / "x.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DatasetError, match=r"broken/x\.png"):
        open_dataset(bad.parent, 2)[0]
    with pytest.raises(DatasetError, match="not found"):
        read_image(tmp_path / "nope.png")
    _save(paired_set / "LR_bicubic" / "X2" / "gx2.png", rand_u8(11, 12))
    with pytest.raises(DatasetError, match=r"gx2\.png: LR size"):
        open_dataset(paired_set, 2)[1]
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        open_dataset(tmp_path / "empty", 2)


# ------------------------------------------------------------------------------------------------ evaluate


class Nearest(nn.Module):
    """A toy SR model with inputs in [0, 1]."""

    data_range = 1.0

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.max() <= 1.0
        return torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")


def test_evaluate_scores_every_image_and_honours_the_data_range(paired_set, tmp_path):
    res = evaluate(Nearest(2), paired_set, 2, progress=False, save_dir=tmp_path / "sr")
    assert res["n_images"] == 2 and [r["name"] for r in res["images"]] == ["a", "g"]
    assert [r["grey"] for r in res["images"]] == [False, True]
    assert res["psnr"] == pytest.approx(np.mean([r["psnr"] for r in res["images"]]))
    ds = open_dataset(paired_set, 2)
    sr = np.repeat(np.repeat(ds[0].lr, 2, 0), 2, 1)
    assert res["images"][0]["psnr"] == pytest.approx(score(sr, ds[0].hr, 2)[0])
    np.testing.assert_array_equal(read_image(tmp_path / "sr" / "a.png"), sr)
    with pytest.raises(ModelError, match="failed"):  # fed [0, 255] inputs, the model's assert fires
        evaluate(Nearest(2), paired_set, 2, data_range=255.0, progress=False)


def test_evaluate_rejects_a_model_of_the_wrong_scale_and_bad_protocols(paired_set):
    with pytest.raises(ModelError, match="expected"):
        evaluate(Nearest(3), paired_set, 2, progress=False)
    with pytest.raises(UsageError, match="protocol"):
        evaluate(Nearest(2), paired_set, 2, protocol="y", progress=False)  # type: ignore[arg-type]


def test_bicubic_zoo_model_is_matlab_upsampling(paired_set):
    import effbench

    model = effbench.create_model("bicubic", 2)
    assert sum(p.numel() for p in model.parameters()) == 0
    assert effbench.model_info("bicubic").data_range == 255.0
    lr = open_dataset(paired_set, 2)[0].lr
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float()
    out = model(x)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out, imresize(lr, 2.0))  # quantize=True: bit-identical to uint8 imresize


def test_eval_command_json_and_errors(paired_set, capsys):
    assert main(["eval", "bicubic", "--dataset", str(paired_set), "--scale", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "bicubic" and out["n_images"] == 2 and out["protocol"] == "paper"
    assert 10 < out["psnr"] < 60
    assert main(["eval", "bicubic", "--dataset", str(paired_set), "--scale", "2", "--protocol", "ntire"]) == 0
    assert "ntire" in capsys.readouterr().out
    assert main(["eval", "bicubic", "--dataset", str(paired_set / "nope"), "--scale", "2"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["eval", "bicubic", "--dataset", str(paired_set), "--scale", "5"]) == 2

"""The power-spectrum study (FMEN paper Sec. 4.3) on synthetic inputs with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import effbench
from effbench.base.errors import ModelError, UsageError
from effbench.frequency import (
    PSDResult,
    high_share,
    normalised_curve,
    psd,
    resample_curve,
    select_modules,
    tile_boxes,
)

N = 64  # map size of the synthetic tests: rings 0..32


def grating(n: int, fy: int, fx: int, h: int | None = None) -> np.ndarray:
    """cos(2 pi (fy y / h + fx x / n)): a plane wave of fy, fx cycles per image."""
    h = h or n
    y, x = np.mgrid[:h, :n]
    return np.cos(2 * np.pi * (fy * y / h + fx * x / n))


# --- the spectrum of one map ----------------------------------------------------------------------------------


@pytest.mark.parametrize("r", [1, 4, 11, 20, 31])
def test_cosine_grating_of_radius_r_peaks_at_ring_r(r: int) -> None:
    assert int(np.argmax(normalised_curve(grating(N, 0, r)))) == r
    assert int(np.argmax(normalised_curve(grating(N, r, 0)))) == r


def test_oblique_grating_peaks_at_its_radial_frequency() -> None:
    # (3, 4) cycles per image: radial frequency 5; (12, 16): 20
    assert int(np.argmax(normalised_curve(grating(N, 3, 4)))) == 5
    assert int(np.argmax(normalised_curve(grating(N, 12, 16)))) == 20


def test_rings_are_physical_frequency_on_non_square_maps() -> None:
    # 48 x 96 map, R = 24 rings: a wave at half Nyquist peaks at ring 12 along either axis
    assert int(np.argmax(normalised_curve(grating(96, 0, 24, h=48)))) == 12  # 24 cycles / 96 px = 0.25 c/px
    assert int(np.argmax(normalised_curve(grating(96, 12, 0, h=48)))) == 12  # 12 cycles / 48 px


def test_curves_sum_to_one() -> None:
    rng = np.random.default_rng(1)
    for shape in [(N, N), (37, 50), (129, 64)]:
        c = normalised_curve(rng.random(shape) * 100 + 7)
        assert c.sum() == pytest.approx(1.0, abs=1e-12)
        assert len(c) == min(shape) // 2 + 1
        assert (c >= 0).all()


def test_white_noise_gives_a_flat_curve() -> None:
    """Tolerance: averaged over 4 maps of 256 x 256, every ring r >= 8 is within 25% of the flat value
    1 / (R + 1) (ring r has ~2 pi r bins of exponentially distributed power), and the high share is within
    0.02 of the flat share. A curve of ring *sums* instead of means would rise linearly and fail."""
    rng = np.random.default_rng(0)
    curve = np.mean([normalised_curve(rng.standard_normal((256, 256))) for _ in range(4)], axis=0)
    flat = 1.0 / len(curve)
    rel = curve[8:] / flat
    assert rel.min() > 0.75 and rel.max() < 1.25, (rel.min(), rel.max())
    n_rings = len(curve) - 1
    flat_high = (n_rings - n_rings // 2) / (n_rings + 1)
    assert high_share(curve) == pytest.approx(flat_high, abs=0.02)


def test_constant_map_puts_everything_in_ring_zero() -> None:
    c = normalised_curve(np.full((N, N), 3.0))
    assert c[0] == pytest.approx(1.0) and c[1:].sum() == pytest.approx(0.0, abs=1e-20)


def test_high_share_split() -> None:
    curve = np.full(33, 1 / 33)  # R = 32, rings 17..32 are above half Nyquist
    assert high_share(curve, 0.5) == pytest.approx(16 / 33)
    assert high_share(curve, 0.25) == pytest.approx(24 / 33)
    with pytest.raises(UsageError, match="split"):
        high_share(curve, 1.5)


def test_resampling_keeps_the_peak_frequency_and_the_sum() -> None:
    c = normalised_curve(grating(128, 0, 32))  # half Nyquist on 65 rings
    r = resample_curve(c, 32)
    assert len(r) == 33 and r.sum() == pytest.approx(1.0)
    assert int(np.argmax(r)) == 16


# --- blocks of a model ----------------------------------------------------------------------------------------


def _depthwise(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k.expand(c, 1, 3, 3), groups=c)


class Blur(nn.Module):
    """3 x 3 binomial low-pass, per channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = torch.tensor([1.0, 2.0, 1.0])
        return _depthwise(x, (k[:, None] * k[None, :] / 16).to(x))


class Sharpen(nn.Module):
    """x - Laplacian(x): gain 1 + (4 - 2 cos wy - 2 cos wx), rising with frequency."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).to(x)
        return x - _depthwise(x, lap)


class Toy(nn.Module):
    data_range = 255.0

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 8, 1)
        self.body = nn.Sequential(Blur(), Sharpen())
        self.tail = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


def _images(n: int = 3, size: int = N) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def toy_result():
    torch.manual_seed(0)
    model = Toy().eval()
    return model, psd(model, _images(), modules="body.*", progress=False)


def test_blurring_lowers_and_sharpening_raises_the_high_frequency_share(toy_result) -> None:
    _, res = toy_result
    blur, sharpen = res["body.0"], res["body.1"]
    # DC kept: ring 0 dominates, so the shares are small, but the 3x3 binomial blur (gain <= 1/4 above half
    # Nyquist on the axes) divides the high share several times and the Laplacian sharpener multiplies it
    assert blur.output_high < 0.5 * blur.input_high
    assert sharpen.output_high > 2 * sharpen.input_high
    assert not blur.strengthens_high and sharpen.strengthens_high
    assert blur.images_high_up == 0 and sharpen.images_high_up == 3


def test_without_dc_white_noise_images_show_large_share_changes() -> None:
    res = psd(Toy().eval(), _images(), modules="body.*", remove_mean=True, progress=False)
    blur, sharpen = res["body.0"], res["body.1"]
    assert blur.input_high > 0.4  # a 1x1 conv of white noise is white: flat share ~ 16/33
    assert blur.output_high < blur.input_high - 0.3
    assert sharpen.output_high > sharpen.input_high + 0.2
    assert blur.input_curve[0] == pytest.approx(0.0, abs=1e-12)
    for b in res.blocks:
        assert b.input_curve.sum() == pytest.approx(1.0) and b.output_curve.sum() == pytest.approx(1.0)
        assert b.input_low + b.input_high == pytest.approx(1.0)
        assert len(b.freqs) == N // 2 + 1 and b.freqs[-1] == 1.0
        assert b.input_map.shape == (N, N)


def test_hooks_are_removed_and_model_is_left_as_found(toy_result) -> None:
    model, _ = toy_result
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model.train()
    with pytest.raises(ModelError, match="Toy failed on image_0"):  # reflect padding of a 1 x 1 map fails
        psd(model, [torch.rand(3, 1, 1)], progress=False)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert model.training


class InPlace(nn.Module):
    """Zeroes its input in place and returns a copy of the original: the captured input must be the original."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        x.zero_()
        return y


def test_input_is_captured_before_the_block_runs() -> None:
    img = torch.from_numpy(grating(N, 0, 8)).float().expand(3, -1, -1)
    b = psd(nn.Sequential(nn.Identity(), InPlace()), [img.clone()], modules="1", progress=False)["1"]
    np.testing.assert_allclose(b.input_curve, b.output_curve)
    assert int(np.argmax(b.input_curve)) == 8


def test_tiles_average_per_tile_spectra() -> None:
    model = Toy().eval()
    img = _images(1, size=96)
    whole = psd(model, img, modules="body.1", progress=False)["body.1"]
    tiled = psd(model, img, modules="body.1", tile=48, progress=False)["body.1"]
    assert len(whole.freqs) == 49 and len(tiled.freqs) == 25
    assert tiled.input_map.shape == (96, 96)  # tiles stitched back for the map plot
    # a direct computation: the 4 tiles of the sharpened feature map, curves averaged
    x = torch.from_numpy(img[0]).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        feats = [model.body(model.head(x[:, :, y : y + 48, z : z + 48])) for y in (0, 48) for z in (0, 48)]
    expected = np.mean([normalised_curve(f[0].mean(0)) for f in feats], axis=0)
    np.testing.assert_allclose(tiled.output_curve, expected, rtol=1e-5, atol=1e-9)
    assert tiled.strengthens_high and whole.strengthens_high


def test_tile_boxes_cover_the_image_with_equal_tiles() -> None:
    boxes = tile_boxes(100, 70, 32)
    assert {(th, tw) for _, _, th, tw in boxes} == {(32, 32)}
    covered = np.zeros((100, 70), bool)
    for y, x, th, tw in boxes:
        covered[y : y + th, x : x + tw] = True
    assert covered.all()
    assert tile_boxes(20, 30, 64) == [(0, 0, 20, 30)]
    with pytest.raises(UsageError, match="tile"):
        tile_boxes(20, 30, 4)


def test_images_of_different_sizes_are_averaged_on_the_normalised_axis() -> None:
    imgs = [grating(64, 0, 16), grating(128, 0, 32)]  # both half Nyquist
    res = psd(
        nn.Sequential(nn.Identity(), nn.Identity()),
        [torch.tensor(i).float().expand(3, -1, -1) for i in imgs],
        modules="0",
        progress=False,
    )
    b = res["0"]
    assert len(b.freqs) == 33 and int(np.argmax(b.input_curve)) == 16


class HFAB(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.inner(x))


def test_default_selection_uses_the_family_table_then_body_blocks() -> None:
    fm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Conv2d(4, 4, 3), HFAB()), HFAB())
    chosen, desc = select_modules(fm)
    assert [n for n, _ in chosen] == ["1.1", "2"] and "HFAB" in desc
    chosen, desc = select_modules(Toy())
    assert [n for n, _ in chosen] == ["body.0", "body.1"]
    assert [n for n, _ in select_modules(Toy(), "Sharpen")[0]] == ["body.1"]
    assert [n for n, _ in select_modules(Toy(), r"re:body\.\d")[0]] == ["body.0", "body.1"]
    assert [n for n, _ in select_modules(Toy(), "body")[0]] == ["body"]  # outermost only
    with pytest.raises(UsageError, match="no module of Toy matches 'nope'"):
        select_modules(Toy(), "nope")


@pytest.mark.parametrize(
    "name, kind, count",
    [
        ("fmen_s", "HFAB", 5),
        ("fmen", "HFAB", 5),
        ("imdn", "CCA", 6),
        ("e_rfdn", "ESA", 4),
        ("latticenet", "LatticeBlock", 4),
    ],
)
def test_zoo_families_default_to_their_attention_blocks(name: str, kind: str, count: int) -> None:
    if name not in effbench.list_models():
        pytest.skip(f"{name} is not in the zoo")
    chosen, _ = select_modules(effbench.create_model(name, scale=4))
    assert [type(m).__name__ for _, m in chosen] == [kind] * count


def test_bad_inputs_raise_clear_errors(tmp_path) -> None:
    with pytest.raises(UsageError, match="split"):
        psd(Toy(), _images(1), split=0.0, progress=False)
    with pytest.raises(UsageError, match="data set folder not found"):
        psd(Toy(), tmp_path / "missing", progress=False)
    with pytest.raises(UsageError, match="no images"):
        psd(Toy(), tmp_path, progress=False)
    with pytest.raises(UsageError, match="single array"):
        psd(Toy(), _images(1)[0], progress=False)
    with pytest.raises(UsageError, match="preview=5"):
        psd(Toy(), _images(1), preview=5, progress=False)
    with pytest.raises(UsageError, match="device"):
        psd(Toy(), _images(1), device="nonsense", progress=False)


def test_top_level_export_and_json_document(toy_result, tmp_path) -> None:
    assert effbench.psd is psd
    _, res = toy_result
    path = res.save_json(tmp_path / "r.json")
    doc = json.loads(path.read_text())
    assert doc["schema"] == "effbench.result/1" and doc["psd"]["n_images"] == 3
    blocks = {b["name"]: b for b in doc["psd"]["blocks"]}
    assert blocks["body.1"]["strengthens_high"] is True
    assert sum(blocks["body.0"]["output_curve"]) == pytest.approx(1.0)
    back = PSDResult.load(path)
    assert [b.name for b in back.blocks] == ["body.0", "body.1"]
    np.testing.assert_allclose(back["body.1"].output_curve, res["body.1"].output_curve)
    assert back["body.1"].output_high == pytest.approx(res["body.1"].output_high)
    frame = res.to_frame()
    assert list(frame["name"]) == ["body.0", "body.1"]

"""The base layer's shared chores (sizes, images, uint8 rounding) and the layering rules around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import effbench
from effbench.base.errors import UsageError
from effbench.base.images import (
    DatasetError,
    list_images,
    make_lr,
    mod_crop,
    read_image,
    to_tensor,
    to_uint8,
    write_image,
)
from effbench.base.imresize import imresize
from effbench.base.inputs import check_size, parse_size, resolve_dtype
from effbench.quality import super_resolve
from effbench.timing.image_pairs import ImagePair
from effbench.timing.ntire import evaluate_psnr

PACKAGE = Path(effbench.__file__).parent

# ------------------------------------------------------------------------------------------------ uint8 rounding


def test_to_uint8_rounds_halves_up_as_matlab_not_to_even() -> None:
    halves = np.array([0.5, 1.5, 2.5, 3.5, 254.5])
    assert np.round(halves).tolist() == [0, 2, 2, 4, 254]  # banker's rounding: what this rule must not do
    assert to_uint8(halves, 255.0).tolist() == [1, 2, 3, 4, 255]


def test_to_uint8_clamps_scales_and_moves_tensors_to_hwc() -> None:
    assert to_uint8(np.array([-3.0, 0.2, 0.998, 7.0]), 1.0).tolist() == [0, 51, 254, 255]
    out = torch.zeros(1, 3, 2, 5)
    out[0, 1] = 10.5
    img = to_uint8(out.half(), 255.0)
    assert img.shape == (2, 5, 3) and img.dtype == np.uint8
    assert img[..., 1].tolist() == [[11] * 5] * 2 and img[..., [0, 2]].max() == 0


class Constant(nn.Module):
    """An x2 'model' whose every output pixel is ``value`` (an exact tie for the uint8 rounding)."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return torch.full((n, c, 2 * h, 2 * w), self.value, dtype=x.dtype, device=x.device)


def test_the_psnr_paths_of_quality_and_timing_round_the_same_way() -> None:
    lr = np.zeros((6, 7, 3), dtype=np.uint8)
    sr = super_resolve(Constant(2.5), lr, 2)
    assert (sr == 3).all()  # 2.5 rounds up, as MATLAB's im2uint8 does
    hr = np.full((12, 14, 3), 3, dtype=np.uint8)
    assert evaluate_psnr(
        Constant(2.5), [ImagePair("a", lr, hr)], torch.device("cpu"), data_range=255.0, scale=2
    )["psnr"] == float("inf")


def test_to_tensor_is_the_inverse_of_to_uint8() -> None:
    img = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    for data_range in (1.0, 255.0):
        t = to_tensor(img, data_range)
        assert t.shape == (1, 3, 4, 6) and t.dtype == torch.float32 and float(t.max()) <= data_range
        np.testing.assert_array_equal(to_uint8(t, data_range), img)


# ------------------------------------------------------------------------------------------------ sizes and dtypes


@pytest.mark.parametrize(
    ("text", "size"),
    [("256x256", (256, 256)), ("256", (256, 256)), ("270x480", (270, 480)), ("270X480", (270, 480))],
)
def test_parse_size_reads_hxw_or_a_square_side(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0x5", "-3", "axb", "1x2x3", ""])
def test_parse_size_rejects_bad_text_naming_it(text: str) -> None:
    with pytest.raises(UsageError, match=f"bad size {text!r}"):
        parse_size(text)


def test_check_size_names_the_bad_dimension() -> None:
    assert check_size(64) == (64, 64)
    assert check_size((270, 480), batch=2, channels=1) == (270, 480)
    for size, kw, what in [
        ((0, 8), {}, "height"),
        ((8, -1), {}, "width"),
        ((8, 8), {"batch": 0}, "batch"),
        ((8, 8), {"channels": 0}, "channels"),
    ]:
        with pytest.raises(UsageError, match=f"{what} must be positive"):
            check_size(size, **kw)
    with pytest.raises(UsageError, match=r"\(H, W\)"):
        check_size("big")  # type: ignore[arg-type]


def test_resolve_dtype_names_the_choices() -> None:
    assert resolve_dtype("bf16") is torch.bfloat16
    with pytest.raises(UsageError, match="unknown dtype 'fp64': use fp32, fp16, bf16"):
        resolve_dtype("fp64")


# ------------------------------------------------------------------------------------------------ image files


def test_write_then_read_gives_the_same_pixels(tmp_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    path = write_image(tmp_path / "sub" / "a.png", img)
    back = read_image(path)
    assert back.dtype == np.uint8 and back.flags.writeable
    np.testing.assert_array_equal(back, img)


def test_read_image_replicates_grey_and_names_a_missing_or_16_bit_file(tmp_path: Path) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_image(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.repeat(grey[:, :, None], 3, axis=2))
    with pytest.raises(DatasetError, match=r"image not found: .*nope\.png"):
        read_image(tmp_path / "nope.png")
    Image.fromarray(np.zeros((3, 3), dtype=np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DatasetError, match=r"deep\.png: I;16"):
        read_image(tmp_path / "deep.png")
    with pytest.raises(UsageError, match="uint8"):
        write_image(tmp_path / "f.png", np.zeros((2, 2, 3)))


def test_list_images_keeps_image_files_only_sorted(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.jpg", "c.txt", "d.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "e.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "d.webp"]
    with pytest.raises(DatasetError, match="not found"):
        list_images(tmp_path / "missing")


def test_make_lr_is_matlab_imresize_of_the_mod_cropped_image() -> None:
    hr = np.random.default_rng(2).integers(0, 256, (10, 9, 3), dtype=np.uint8)
    lr = make_lr(hr, 4)
    assert lr.shape == (2, 2, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, imresize(mod_crop(hr, 4), 1 / 4))
    with pytest.raises(UsageError, match="smaller than the scale x4"):
        make_lr(hr[:3], 4)


def test_the_packages_share_one_image_reader_and_one_rounding() -> None:
    import effbench.frequency.sources as frequency_data
    import effbench.quality as quality
    import effbench.timing.image_pairs as timing_data

    assert quality.read_image is read_image and quality.to_uint8 is to_uint8 and quality.make_lr is make_lr
    assert timing_data.read_image is read_image and frequency_data.read_image is read_image


@pytest.mark.parametrize("bad", ["16", (16.5, 8), (True, 4), (1, 2, 3), None])
def test_check_size_refuses_text_fractions_bools_and_wrong_lengths(bad) -> None:
    with pytest.raises(UsageError, match="input size must be"):
        check_size(bad)


def test_check_size_takes_whole_numbers_of_any_integer_type() -> None:
    import numpy as np

    assert check_size((np.int64(3), 4.0)) == (3, 4) and check_size(5) == (5, 5)

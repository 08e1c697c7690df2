"""Image pairs for the timing protocols: DIV2K layout, any LR/HR folder pair, or synthetic images.

Layouts found in a data set folder ``DIR`` (``s`` is the scale):
- DIV2K as the NTIRE scripts read it: ``DIR/DIV2K_valid_LR/0801x4.png`` with ``DIR/DIV2K_valid_HR/0801.png``
  (2022-2024), ``DIR/DIV2K_LSDIR_valid_LR`` + ``_HR`` (2025-2026), any ``*_{split}_LR`` + ``*_{split}_HR``;
- benchmark packs: ``DIR/HR/name.png`` with ``DIR/LR_bicubic/X{s}/name x{s}.png`` (Set5, Set14 here);
- any folder pair ``DIR/LR`` + ``DIR/HR`` (LR stems may carry an ``x{s}`` suffix);
- ``DIR`` itself holding LR images only (timing without PSNR).
Images are RGB uint8 arrays (H, W, 3); grey images are replicated to three channels, as the NTIRE script does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.errors import UsageError
from ..base.images import list_images, read_image

__all__ = ["ImagePair", "find_pairs", "synthetic_pairs"]


@dataclass(frozen=True)
class ImagePair:
    """One LR image (path or array) and its optional HR reference."""

    name: str
    lr: Path | np.ndarray
    hr: Path | np.ndarray | None = None

    def lr_array(self) -> np.ndarray:
        return self.lr if isinstance(self.lr, np.ndarray) else read_image(self.lr)

    def hr_array(self) -> np.ndarray | None:
        if self.hr is None:
            return None
        return self.hr if isinstance(self.hr, np.ndarray) else read_image(self.hr)


def _stem(path: Path, scale: int) -> str:
    return re.sub(rf"(?i)[_-]?x{scale}$", "", path.stem)


def _pair_folders(lr_dir: Path, hr_dir: Path | None, scale: int) -> list[ImagePair]:
    lrs = list_images(lr_dir)
    if not lrs:
        raise UsageError(f"no images in {lr_dir}")
    hrs = {p.stem: p for p in list_images(hr_dir)} if hr_dir is not None and hr_dir.is_dir() else {}
    pairs = []
    for lr in lrs:
        stem = _stem(lr, scale)
        pairs.append(ImagePair(stem, lr, hrs.get(stem)))
    if hrs and any(p.hr is None for p in pairs):
        missing = [p.name for p in pairs if p.hr is None][:5]
        raise UsageError(f"LR images without an HR match in {hr_dir}: {', '.join(missing)}")
    return pairs


def find_pairs(root: str | Path, scale: int = 4, split: str = "valid") -> list[ImagePair]:
    """The LR/HR pairs of a data set folder (layouts in the module docstring); a clear error when none fit."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"data set folder not found: {root}")
    for lr_dir in sorted(
        root.glob(f"*_{split}_LR")
    ):  # DIV2K_valid_LR (2022-24), DIV2K_LSDIR_valid_LR (2025-26)
        if lr_dir.is_dir():
            return _pair_folders(lr_dir, lr_dir.with_name(lr_dir.name[:-3] + "_HR"), scale)
    for lr_dir in (root / "LR_bicubic" / f"X{scale}", root / f"LR_bicubic/x{scale}", root / f"X{scale}"):
        if lr_dir.is_dir():
            return _pair_folders(lr_dir, root / "HR", scale)
    if (root / "LR").is_dir():
        return _pair_folders(root / "LR", root / "HR", scale)
    if list_images(root):
        return _pair_folders(root, None, scale)
    raise UsageError(
        f"no LR images found in {root}: expected *_{split}_LR/ + *_{split}_HR/, HR/ + LR_bicubic/X{scale}/, "
        "LR/ + HR/, or a folder of LR images"
    )


def synthetic_pairs(
    n: int, size: tuple[int, int], scale: int = 4, seed: int = 0, with_hr: bool = False
) -> Iterator[ImagePair]:
    """``n`` random RGB uint8 LR images of ``size`` (H, W) (HR = nearest upsampling when ``with_hr``)."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(n):
        lr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1) if with_hr else None
        yield ImagePair(f"synthetic_{i:04d}", lr, hr)

"""SR test sets on disk: HR images paired with their LR images, or LR images made with :func:`imresize`.

Three layouts are recognised (``open_dataset`` picks one):

- ``paired``: ``ROOT/HR/<name>.png`` + ``ROOT/LR_bicubic/X<s>/<name>x<s>.png`` (Set5/Set14 benchmark packs;
  ``LR_bicubic/x<s>`` and ``LR/X<s>`` are accepted too);
- ``div2k``: ``ROOT/<X>_HR/<name>.png`` + ``ROOT/<X>_LR.../<name>x<s>.png`` or ``ROOT/<X>_LR.../X<s>/<name>x<s>.png``
  (DIV2K / NTIRE, e.g. ``DIV2K_valid_HR/0801.png`` + ``DIV2K_valid_LR/0801x4.png``);
- ``hr_only``: ``ROOT/HR/*.png`` or images directly in ``ROOT`` (B100, Urban100): the LR image is MATLAB's
  ``imresize(modcrop(HR, s), 1/s, 'bicubic')``, reproduced exactly by :func:`effbench.base.imresize`.

Images are returned as ``uint8`` ``(H, W, 3)`` RGB; grey images are replicated into three channels (the usual
convention of SR test code), alpha channels dropped. A missing, unreadable or mis-sized image raises
:class:`DatasetError` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base.errors import UsageError
from ..base.images import IMAGE_EXTENSIONS, DatasetError, list_images, make_lr, read_image

__all__ = ["Sample", "SRDataset", "open_dataset"]


@dataclass(frozen=True)
class Sample:
    """One test image: its name, the HR image (uncropped) and the LR input, both ``uint8`` ``(H, W, 3)``."""

    name: str
    hr: np.ndarray
    lr: np.ndarray
    hr_path: Path
    lr_path: Path | None  # None when the LR image was made with imresize


def _find_lr(folder: Path, stem: str, scale: int) -> Path | None:
    for name in (f"{stem}x{scale}", f"{stem}_x{scale}", f"{stem}X{scale}", stem):
        for ext in IMAGE_EXTENSIONS:
            p = folder / f"{name}{ext}"
            if p.is_file():
                return p
    return None


class SRDataset(Sequence[Sample]):
    """An ordered list of HR/LR pairs at one scale; images are read lazily, one :class:`Sample` per index."""

    def __init__(self, root: Path, scale: int, layout: str, pairs: list[tuple[Path, Path | None]]):
        self.root = root
        self.scale = scale
        self.layout = layout
        self.pairs = pairs

    @property
    def name(self) -> str:
        """Display name: the root folder's name (``Set5``, ``DIV2K`` ...)."""
        return self.root.name

    @property
    def lr_source(self) -> str:
        """``"files"`` when LR images are read from disk, ``"imresize"`` when made from the HR images."""
        return "imresize" if self.layout == "hr_only" else "files"

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        hr_path, lr_path = self.pairs[index]
        hr = read_image(hr_path)
        if hr.shape[0] < self.scale or hr.shape[1] < self.scale:
            raise DatasetError(
                f"{hr_path}: image of size {hr.shape[:2]} is smaller than the scale x{self.scale}"
            )
        if lr_path is None:
            lr = make_lr(hr, self.scale)
        else:
            lr = read_image(lr_path)
            want = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
            if lr.shape[:2] != want:
                raise DatasetError(
                    f"{lr_path}: LR size {lr.shape[:2]} is not the HR size {hr.shape[:2]} // {self.scale} = {want}"
                )
        return Sample(hr_path.stem, hr, lr, hr_path, lr_path)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"SRDataset({str(self.root)!r}, scale={self.scale}, layout={self.layout!r}, images={len(self)})"
        )


def _paired(hr_dir: Path, lr_dir: Path, scale: int) -> list[tuple[Path, Path | None]]:
    pairs: list[tuple[Path, Path | None]] = []
    for hr in list_images(hr_dir):
        lr = _find_lr(lr_dir, hr.stem, scale)
        if lr is None:
            raise DatasetError(f"no LR image for {hr}: expected {lr_dir / f'{hr.stem}x{scale}{hr.suffix}'}")
        pairs.append((hr, lr))
    return pairs


def open_dataset(root: str | Path, scale: int) -> SRDataset:
    """Open a test set folder at one scale, detecting its layout (see the module docstring)."""
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise UsageError(f"scale must be a positive integer, got {scale!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data set folder not found: {root}")

    hr_dir = root / "HR"
    if hr_dir.is_dir():
        for lr_dir in (
            root / "LR_bicubic" / f"X{scale}",
            root / "LR_bicubic" / f"x{scale}",
            root / "LR" / f"X{scale}",
        ):
            if lr_dir.is_dir():
                pairs, layout = _paired(hr_dir, lr_dir, scale), "paired"
                break
        else:
            pairs, layout = [(p, None) for p in list_images(hr_dir)], "hr_only"
    else:
        hr_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.upper().endswith("_HR"))
        if len(hr_dirs) > 1:
            raise DatasetError(
                f"{root}: several HR folders ({', '.join(p.name for p in hr_dirs)}); give one set"
            )
        if hr_dirs:
            prefix = hr_dirs[0].name[: -len("_HR")]
            lr_pattern = re.compile(re.escape(prefix) + r"_LR", re.IGNORECASE)
            lr_dirs = sorted(p for p in root.iterdir() if p.is_dir() and lr_pattern.match(p.name))
            candidates = [c for d in lr_dirs for c in (d / f"X{scale}", d / f"x{scale}", d) if c.is_dir()]
            lr_dir = next((c for c in candidates if any(c.glob(f"*x{scale}.*"))), None)
            if lr_dir is None:
                raise DatasetError(
                    f"{root}: found {hr_dirs[0].name} but no LR images '<name>x{scale}.png' in a {prefix}_LR* folder"
                )
            pairs, layout = _paired(hr_dirs[0], lr_dir, scale), "div2k"
        else:
            pairs, layout = [(p, None) for p in list_images(root)], "hr_only"
    if not pairs:
        raise DatasetError(
            f"no images found in {root} (looked for HR/, *_HR/ and images in the folder itself)"
        )
    return SRDataset(root, scale, layout, pairs)

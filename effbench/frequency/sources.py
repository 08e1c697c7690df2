"""Inputs of the frequency analysis: data set folders (HR-only or with LR) and in-memory images."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..base.errors import UsageError
from ..base.images import IMAGE_EXTENSIONS, list_images, make_lr, read_image, to_tensor


@dataclass(frozen=True)
class InputSource:
    """A lazily loaded list of model inputs: ``load(i)`` gives a 1 x 3 x H x W float tensor in model range."""

    names: list[str]
    load: Callable[[int], Tensor]
    description: str

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[tuple[str, Tensor]]:
        for i, name in enumerate(self.names):
            yield name, self.load(i)


def dataset_inputs(
    path: str | Path, *, scale: int, data_range: float, lr: bool = False, max_images: int | None = None
) -> InputSource:
    """Model inputs from a data set folder.

    Layouts, in this order: ``DIR/LR_bicubic/X{scale}/`` (given LR images); ``DIR/HR/`` (HR images, LR made
    with :func:`effbench.base.images.make_lr`); ``DIR`` holding images itself (HR, or already LR with ``lr=True``).
    Pixel values are mapped from 0..255 to 0..``data_range``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UsageError(f"data set folder not found: {root}")
    if max_images is not None and max_images < 1:
        raise UsageError(f"max_images must be >= 1, got {max_images}")
    lr_dir = root / "LR_bicubic" / f"X{scale}"
    if lr_dir.is_dir() and list_images(lr_dir):
        files, given_lr, where = list_images(lr_dir), True, f"{lr_dir} (given LR x{scale})"
    elif (root / "HR").is_dir():
        files, given_lr, where = list_images(root / "HR"), lr, f"{root / 'HR'}"
    else:
        files, given_lr, where = list_images(root), lr, str(root)
    if not files:
        raise UsageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {where}")
    if max_images is not None:
        files = files[:max_images]
    if not given_lr:
        where += f" (HR; LR x{scale} made with effbench.imresize)"

    def load(i: int) -> Tensor:
        arr = read_image(files[i])
        if not given_lr:
            arr = make_lr(arr, scale)
        return to_tensor(arr, data_range)

    return InputSource([f.name for f in files], load, where)


def array_inputs(images: Sequence[np.ndarray | Tensor], *, data_range: float) -> InputSource:
    """Model inputs from in-memory images.

    ``uint8`` arrays/tensors (H x W x 3, H x W, or 3 x H x W) are mapped from 0..255 to 0..``data_range``;
    float ones are taken as they are (already in the model's range). 2-D images are repeated to 3 channels;
    a 4-D tensor must have batch size 1.
    """
    tensors: list[Tensor] = []
    for i, img in enumerate(images):
        t = torch.as_tensor(np.asarray(img)) if not isinstance(img, Tensor) else img.detach()
        is_uint8 = t.dtype == torch.uint8
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise UsageError(
                    f"image {i}: a 4-D tensor must have batch size 1, got shape {tuple(t.shape)}"
                )
            t = t[0]
        if t.ndim == 2:
            t = t.unsqueeze(0).expand(3, -1, -1)
        elif t.ndim == 3 and t.shape[0] not in (1, 3) and t.shape[-1] in (1, 3):
            t = t.permute(2, 0, 1)
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise UsageError(f"image {i}: expected H x W, H x W x 3 or 3 x H x W, got shape {tuple(t.shape)}")
        if t.shape[0] == 1:
            t = t.expand(3, -1, -1)
        if not (is_uint8 or torch.is_floating_point(t)):
            raise UsageError(f"image {i}: dtype {t.dtype} is neither uint8 nor floating point")
        t = t.to(torch.float32)
        if is_uint8:
            t = t * (data_range / 255.0)
        tensors.append(t.unsqueeze(0).contiguous())
    if not tensors:
        raise UsageError("no images given")
    return InputSource(
        [f"image_{i}" for i in range(len(tensors))], lambda i: tensors[i], f"{len(tensors)} arrays"
    )

"""Images as every measurement sees them: RGB ``uint8`` ``(H, W, 3)`` arrays, read, written, made LR and converted.

- :func:`read_image` / :func:`write_image` / :func:`list_images` (one list of extensions, :data:`IMAGE_EXTENSIONS`);
- :func:`make_lr`: the benchmark LR image, MATLAB's ``imresize(modcrop(hr, s), 1/s, 'bicubic')``;
- :func:`to_tensor` / :func:`to_uint8`: between images and model tensors in ``[0, data_range]``; the way back
  rounds as MATLAB's ``im2uint8`` does (clamp, then half away from zero), the one rounding rule of effbench.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UsageError
from .imresize import imresize

__all__ = [
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "as_array",
    "is_grey",
    "list_images",
    "make_lr",
    "mod_crop",
    "read_image",
    "to_tensor",
    "to_uint8",
    "write_image",
]

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".webp")


class DatasetError(UsageError):
    """A data set folder or one of its images is missing, unreadable or inconsistent (names the path)."""


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder`` (by extension, case-insensitive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _raw_mode(im: Any) -> str:
    """The raw (on-disk) pixel layout of an opened, not yet loaded image, e.g. ``"RGB;16B"`` for 16-bit RGB."""
    tiles = getattr(im, "tile", None) or []
    if not tiles:
        return ""
    args = tiles[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def read_image(path: str | Path) -> np.ndarray:
    """Read an 8-bit image as a writable ``uint8`` ``(H, W, 3)`` RGB array; grey is replicated, alpha dropped.
    Images of more than 8 bits per channel (16-bit grey or colour, 32-bit, float) are refused alike, as are images
    beyond PIL's decompression-bomb limit; each refusal is a :class:`DatasetError` naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            raw = _raw_mode(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F") or ";16" in raw or ";32" in raw:
                raise DatasetError(
                    f"{path}: {raw or im.mode}: more than 8 bits per channel is not supported: "
                    "effbench reads 8-bit images; convert it to 8 bits"
                )
            im.load()
            if im.mode in ("L", "LA", "1"):
                grey = np.asarray(im.convert("L"))
                return np.repeat(grey[:, :, None], 3, axis=2)
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except DatasetError:
        raise
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"{path}: too large to read safely ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc or type(exc).__name__}") from exc


def is_grey(path: str | Path) -> bool:
    """Whether an image file is stored as a single grey channel."""
    from PIL import Image

    with Image.open(path) as im:
        return im.mode in ("L", "LA", "1")


def write_image(path: str | Path, img: np.ndarray) -> Path:
    """Write a ``uint8`` ``(H, W, 3)`` or ``(H, W)`` image (format from the extension); creates the folder."""
    from PIL import Image

    path = Path(path)
    a = np.asarray(img)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise UsageError(f"write_image needs a uint8 (H, W, 3) or (H, W) image, got {a.dtype} {a.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale`` (MATLAB ``modcrop``)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The benchmark LR image of a ``uint8`` HR image: MATLAB ``imresize(modcrop(hr, scale), 1/scale, 'bicubic')``."""
    h, w = hr.shape[:2]
    if h < scale or w < scale:
        raise UsageError(f"an HR image of {h} x {w} is smaller than the scale x{scale}")
    return imresize(mod_crop(hr, scale), 1 / scale)


def as_array(img: np.ndarray | torch.Tensor) -> np.ndarray:
    """A numpy image, ``(H, W, C)`` for colour; tensors in ``C x H x W`` or ``1 x C x H x W`` are moved to HWC
    (half precision becomes float32)."""
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3):
            t = t.permute(1, 2, 0)
        return t.numpy()
    if not isinstance(img, np.ndarray):
        raise UsageError(f"expected a numpy array or torch tensor image, got {type(img).__name__}")
    return img


def to_uint8(img: np.ndarray | torch.Tensor, data_range: float = 255.0) -> np.ndarray:
    """``[0, data_range]`` -> ``uint8`` ``[0, 255]`` as MATLAB's ``im2uint8``: scale in float64, clamp, round half
    away from zero (``floor(x + 0.5)`` on the clamped values, so 0.5 -> 1 and 2.5 -> 3). ``uint8`` passes through."""
    a = as_array(img)
    if a.dtype == np.uint8:
        return a
    a = np.clip(a.astype(np.float64) * (255.0 / data_range), 0.0, 255.0)
    return np.floor(a + 0.5).astype(np.uint8)


def to_tensor(
    img: np.ndarray,
    data_range: float = 255.0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``uint8`` ``(H, W, 3)`` -> ``1 x 3 x H x W`` in ``[0, data_range]`` on ``device`` (``uint2tensor4``)."""
    a = np.ascontiguousarray(img, dtype=np.uint8)
    t = torch.from_numpy(a if a.flags.writeable else a.copy()).permute(2, 0, 1).float()
    return t.div(255.0 / data_range).unsqueeze(0).to(device=device, dtype=dtype)

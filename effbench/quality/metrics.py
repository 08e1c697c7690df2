"""PSNR and SSIM as SR papers compute them.

Two protocols:

- ``"paper"`` (Table 3 of FMEN, and most EISR papers): the SR image is clamped and rounded to ``uint8``, the HR
  image cropped to a multiple of the scale, both converted to the Y channel of MATLAB's ``rgb2ycbcr``
  (``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, kept in floating point as BasicSR and the IMDN/RFDN
  test code do: rounding Y to ``uint8`` as MATLAB's ``rgb2ycbcr`` does costs about 0.09 dB at x2 and misses the
  published numbers), ``scale`` pixels cropped from every border, then PSNR (peak 255) and SSIM (Wang et al.: Gaussian window 11x11,
  sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering, mean of the SSIM map).
- ``"ntire"`` (NTIRE 2022 efficient SR challenge): PSNR on the RGB ``uint8`` images with a 4-pixel border;
  SSIM here is the mean over the three channels of the same SSIM.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from ..base.errors import UsageError
from ..base.images import as_array, mod_crop

__all__ = ["rgb_to_y", "crop_border", "psnr", "ssim", "score", "SCORE_PROTOCOLS"]

Protocol = Literal["paper", "ntire"]
SCORE_PROTOCOLS: tuple[str, ...] = ("paper", "ntire")
NTIRE_BORDER = 4


def rgb_to_y(img: np.ndarray, *, round_to_uint8: bool = False) -> np.ndarray:
    """Y of MATLAB's ``rgb2ycbcr`` (BT.601, 16..235) for an ``(H, W, 3)`` image in ``[0, 255]``, as float64.

    ``round_to_uint8=True`` mimics MATLAB, whose ``rgb2ycbcr`` returns ``uint8`` for ``uint8`` input; the default
    keeps the unrounded float (BasicSR; this reproduces the published tables). ``(H, W)`` or ``(H, W, 1)`` images are taken as grey (R = G = B).
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.stack([a, a, a], axis=-1)
    if a.ndim == 3 and a.shape[2] == 3:
        y = 16.0 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0
    else:
        raise UsageError(f"rgb_to_y needs an (H, W, 3) or (H, W) image, got shape {a.shape}")
    return np.clip(np.floor(y + 0.5), 0, 255) if round_to_uint8 else y


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on every side."""
    if border < 0:
        raise UsageError(f"border must be >= 0, got {border}")
    if border == 0:
        return img
    if img.shape[0] <= 2 * border or img.shape[1] <= 2 * border:
        raise UsageError(f"image of size {img.shape[:2]} is too small for a border of {border}")
    return img[border:-border, border:-border]


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise UsageError(f"images differ in shape: {a.shape} vs {b.shape}")


def psnr(
    img1: np.ndarray | torch.Tensor, img2: np.ndarray | torch.Tensor, *, border: int = 0, peak: float = 255.0
) -> float:
    """PSNR in dB of two same-shape images in ``[0, peak]`` after cropping ``border`` pixels; ``inf`` if equal."""
    a = crop_border(as_array(img1).astype(np.float64), border)
    b = crop_border(as_array(img2).astype(np.float64), border)
    _check_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of the two leading axes (the Gaussian is symmetric: no flip needed)."""
    n = len(g)
    h, w = t.shape[0] - n + 1, t.shape[1] - n + 1
    rows = sum(g[k] * t[k : k + h] for k in range(n))
    return sum(g[k] * rows[:, k : k + w] for k in range(n))


def _ssim_map_mean(a: np.ndarray, b: np.ndarray, peak: float) -> np.ndarray:
    """Mean SSIM over the spatial axes; trailing axes (channels) are kept."""
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    g = _gaussian_window()
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    s11 = _filter_valid(a * a, g) - mu1 * mu1
    s22 = _filter_valid(b * b, g) - mu2 * mu2
    s12 = _filter_valid(a * b, g) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2))
    return ssim_map.mean(axis=(0, 1))


def ssim(
    img1: np.ndarray | torch.Tensor, img2: np.ndarray | torch.Tensor, *, border: int = 0, peak: float = 255.0
) -> float:
    """SSIM (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, 'valid' filtering) after cropping ``border`` pixels.

    ``(H, W)`` images give the SSIM of one channel; ``(H, W, C)`` images the mean over channels (as BasicSR).
    """
    a = crop_border(as_array(img1).astype(np.float64), border)
    b = crop_border(as_array(img2).astype(np.float64), border)
    _check_pair(a, b)
    if a.shape[0] < 11 or a.shape[1] < 11:
        raise UsageError(
            f"SSIM needs images of at least 11x11 pixels after the border crop, got {a.shape[:2]}"
        )
    return float(np.mean(_ssim_map_mean(a, b, peak)))


def score(sr: np.ndarray, hr: np.ndarray, scale: int, protocol: Protocol = "paper") -> tuple[float, float]:
    """``(psnr, ssim)`` of an SR ``uint8`` RGB image against its HR image under a protocol.

    The HR image is cropped to a multiple of ``scale`` first; the SR image must have that cropped size.
    """
    if protocol not in SCORE_PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; choose from {', '.join(SCORE_PROTOCOLS)}")
    hr = mod_crop(hr, scale)
    if sr.shape != hr.shape:
        raise UsageError(
            f"SR image shape {sr.shape} does not match the HR image cropped to x{scale}: {hr.shape}"
        )
    if protocol == "paper":
        y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
        return psnr(y_sr, y_hr, border=scale), ssim(y_sr, y_hr, border=scale)
    return psnr(sr, hr, border=NTIRE_BORDER), ssim(sr, hr, border=NTIRE_BORDER)

"""Image quality: MATLAB-compatible ``imresize``, PSNR/SSIM under the paper's and NTIRE's protocols, test-set
readers and :func:`evaluate` (a model over a test set)."""

from __future__ import annotations

from ..base.images import DatasetError, make_lr, mod_crop, read_image, to_uint8
from ..base.imresize import imresize
from .datasets import Sample, SRDataset, open_dataset
from .evaluate import evaluate, super_resolve
from .metrics import SCORE_PROTOCOLS, crop_border, psnr, rgb_to_y, score, ssim

__all__ = [
    "SCORE_PROTOCOLS",
    "DatasetError",
    "Sample",
    "SRDataset",
    "crop_border",
    "evaluate",
    "imresize",
    "make_lr",
    "mod_crop",
    "open_dataset",
    "psnr",
    "read_image",
    "rgb_to_y",
    "score",
    "ssim",
    "super_resolve",
    "to_uint8",
]

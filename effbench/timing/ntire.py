"""The ``ntire`` protocol, as the NTIRE Efficient SR challenge's ``test_demo.py`` (2022 onwards) measures.

Faithful points: model in eval mode with every parameter ``requires_grad=False`` and no ``no_grad``;
``cudnn.benchmark = False``; ``torch.cuda.empty_cache()`` once at the start; per image the LR image is moved to
the device first, then CUDA event record, forward, record, ``torch.cuda.synchronize()``, elapsed milliseconds;
the runtime is the mean over images with no warm-up (the first image's set-up cost is part of the figure); the
peak memory is ``max_memory_allocated() / 1024**2`` read after the loop and never reset (so run it in a fresh
process, as the sweep does, to match the official number); PSNR in RGB on uint8 images with a border of
``scale`` pixels (4 at x4), HR cropped to a multiple of the scale. On CPU the timer is ``perf_counter``.
One departure: the SR output goes to ``uint8`` by effbench's one rounding rule (:func:`effbench.base.images.to_uint8`,
MATLAB's half away from zero), where the script's ``tensor2uint`` uses numpy's half-to-even; they differ on exact
ties only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..base.images import mod_crop, to_tensor, to_uint8
from ..quality import psnr, super_resolve
from .image_pairs import ImagePair
from .output_check import check_output
from .steady import summarize

__all__ = ["evaluate_psnr", "run_ntire"]


def _rgb_psnr(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """The challenge's PSNR: RGB ``uint8``, HR cropped to a multiple of ``scale``, a border of ``scale`` pixels."""
    return psnr(sr, mod_crop(hr, scale), border=scale)


@torch.enable_grad()  # the official script never disables autograd
def run_ntire(
    model: nn.Module,
    pairs: Iterable[ImagePair],
    device: torch.device,
    *,
    data_range: float,
    scale: int | None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Run the challenge protocol over ``pairs`` (grad mode on, as the script runs); returns metrics in the result
    schema's ``metrics`` form, with the ``scale`` its first output showed."""
    model.eval()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad = False
    cuda = device.type == "cuda"
    prev_bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    samples: list[float] = []
    psnrs: list[float] = []
    n_hr = 0
    try:
        if cuda:
            torch.cuda.empty_cache()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
        for i, pair in enumerate(pairs):
            lr_img = pair.lr_array()
            x = to_tensor(lr_img, data_range, device, dtype)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if cuda:
                start.record()
                out = model(x)
                end.record()
                torch.cuda.synchronize()
                samples.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                out = model(x)
                samples.append((time.perf_counter() - t0) * 1e3)
            if i == 0:
                scale = check_output(out, x, scale)
            hr = pair.hr_array()
            if hr is not None:
                n_hr += 1
                psnrs.append(_rgb_psnr(to_uint8(out[0].permute(1, 2, 0), data_range), hr, scale or 1))
            del out, x
        if not samples:
            raise ValueError("the ntire protocol got no images")
        peak = torch.cuda.max_memory_allocated(device) if cuda else None
    finally:
        torch.backends.cudnn.benchmark = prev_bench
        for p, flag in flags:
            p.requires_grad = flag
    stats = summarize(samples)
    stats.update(
        {
            "mean": sum(samples) / len(samples),
            "first_call": samples[0],
            "official": "mean",
            "samples": samples,
        }
    )
    metrics: dict[str, Any] = {"runtime_ms": stats, "images": len(samples), "scale": scale}
    if peak is not None:
        metrics["peak_memory_measured_bytes"] = int(peak)
        metrics["ntire_memory_mib"] = peak / 1024**2
    if psnrs:
        metrics["psnr"] = sum(psnrs) / len(psnrs)
        metrics["psnr_protocol"] = f"RGB uint8, border {scale}, {n_hr} images"
    return metrics


def evaluate_psnr(
    model: nn.Module,
    pairs: Iterable[ImagePair],
    device: torch.device,
    *,
    data_range: float,
    scale: int,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """Mean PSNR over the pairs that have an HR image (same conversion and border as the challenge), untimed:
    each image through :func:`effbench.quality.super_resolve`, as :func:`effbench.quality.evaluate` does."""
    values = []
    for pair in pairs:
        hr = pair.hr_array()
        if hr is None:
            continue
        sr = super_resolve(model, pair.lr_array(), scale, data_range, device, dtype=dtype)
        values.append(_rgb_psnr(sr, hr, scale))
    if not values:
        return {}
    return {
        "psnr": sum(values) / len(values),
        "psnr_protocol": f"RGB uint8, border {scale}, {len(values)} images",
    }

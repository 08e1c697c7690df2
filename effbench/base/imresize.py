"""A MATLAB-compatible ``imresize``: the bicubic (and bilinear) resize that made the classic SR benchmark packs.

What MATLAB does, and what this module reproduces bit for bit on ``uint8`` images:

- kernel: Keys' cubic with ``a = -0.5`` (4 taps), or the triangle for ``"linear"`` (2 taps);
- when downscaling with antialiasing the kernel is stretched by ``1/scale`` (``h(x) = scale * k(scale * x)``,
  width ``4/scale``);
- output pixel ``i`` (1-based) maps to input coordinate ``u = i/scale + 0.5 * (1 - 1/scale)``; taps are
  ``floor(u - width/2) + 0 .. ceil(width) + 1``, weights ``h(u - tap)`` normalised to sum to one, taps outside
  the image mirrored symmetrically (``1..n, n..1``), all-zero tap columns dropped;
- the dimension with the smaller scale factor is resized first (rows first when both are equal);
- each pass accumulates in double precision, and for ``uint8`` input its result is rounded half away from zero
  and saturated to ``0..255`` *before* the next pass (MATLAB's ``imresizemex`` returns the input class);
- the output size is ``ceil(scale * size)``.

Float inputs are resized without any rounding, in their own precision (float64 for numpy).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TypeVar, overload

import numpy as np
import torch

from .errors import UsageError

__all__ = ["imresize", "contributions", "cubic_kernel"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_KERNELS = {"cubic": 4.0, "bicubic": 4.0, "linear": 2.0, "bilinear": 2.0, "triangle": 2.0}


def cubic_kernel(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5``, written as MATLAB writes it."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (1 < absx) & (absx <= 2)
    )


def _triangle_kernel(x: np.ndarray) -> np.ndarray:
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


@lru_cache(maxsize=256)
def contributions(
    in_length: int, out_length: int, scale: float, kernel: str = "cubic", antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(out_length, taps)`` (float64) and 0-based source indices ``(out_length, taps)`` of one pass.

    Follows the steps of MATLAB's ``contributions`` sub-function (see the module docstring).
    """
    kernel_fn = cubic_kernel if _KERNELS[kernel] == 4.0 else _triangle_kernel
    kernel_width = _KERNELS[kernel]
    if scale < 1 and antialiasing:

        def h(x: np.ndarray) -> np.ndarray:
            return scale * kernel_fn(scale * x)

        kernel_width = kernel_width / scale
    else:
        h = kernel_fn
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    ind = left + np.arange(taps, dtype=np.float64)[None, :]
    weights = h(u - ind)
    weights = weights / np.sum(weights, axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    ind = mirror[np.mod(ind.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    weights, ind = weights[:, keep], ind[:, keep]
    weights.setflags(write=False)
    ind.setflags(write=False)
    return weights, ind


def _numpy_path_ok(x: torch.Tensor) -> bool:
    """The numpy fast path is for plain CPU tensors outside any dispatch mode: fake/meta tensors, autograd and
    effbench's own tracers (counting, memory replay) must see the torch ops."""
    if type(x) is not torch.Tensor or x.device.type != "cpu" or x.requires_grad:
        return False
    if x.dtype not in (torch.float32, torch.float64):
        return False
    try:
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        return _get_current_dispatch_mode() is None
    except ImportError:  # pragma: no cover - older torch
        return True


def _resize_dim(
    x: torch.Tensor, dim: int, out_length: int, scale: float, kernel: str, antialiasing: bool
) -> torch.Tensor:
    # int(): under jit tracing (fvcore) a size is a traced scalar, which must not reach numpy or the cache key
    weights, ind = contributions(int(x.shape[dim]), int(out_length), float(scale), kernel, antialiasing)
    view = [1] * x.dim()
    view[dim] = out_length
    if _numpy_path_ok(x):
        # numpy: single-threaded elementwise work, much faster than torch's thread pool on these small ops
        a = x.numpy()
        wn = weights.astype(a.dtype, copy=False)
        out_np = np.take(a, ind[:, 0], axis=dim) * wn[:, 0].reshape(view)
        for p in range(1, wn.shape[1]):  # accumulate tap by tap, in MATLAB's order (no fused multiply-add)
            term = np.take(a, ind[:, p], axis=dim)
            term *= wn[:, p].reshape(view)
            out_np += term
        return torch.from_numpy(out_np)
    w = torch.from_numpy(np.ascontiguousarray(weights)).to(device=x.device, dtype=x.dtype)
    idx = torch.from_numpy(np.ascontiguousarray(ind)).to(device=x.device)
    out = x.index_select(dim, idx[:, 0]) * w[:, 0].reshape(view)
    for p in range(1, w.shape[1]):
        out = out + x.index_select(dim, idx[:, p]) * w[:, p].reshape(view)
    return out


def _output_length(length: int, scale: float) -> int:
    # ceil(scale * length), tolerant of the float error in e.g. 255 * (1/3)
    return max(1, math.ceil(scale * length - 1e-9))


@overload
def imresize(
    image: np.ndarray,
    scale: float | None = ...,
    *,
    size: tuple[int, int] | None = ...,
    kernel: str = ...,
    antialiasing: bool = ...,
) -> np.ndarray: ...
@overload
def imresize(
    image: torch.Tensor,
    scale: float | None = ...,
    *,
    size: tuple[int, int] | None = ...,
    kernel: str = ...,
    antialiasing: bool = ...,
) -> torch.Tensor: ...


def imresize(
    image: np.ndarray | torch.Tensor,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    kernel: str = "cubic",
    antialiasing: bool = True,
) -> np.ndarray | torch.Tensor:
    """Resize like MATLAB's ``imresize(image, scale, 'bicubic')`` (or ``imresize(image, size)``).

    ``image``: a numpy array ``(H, W)`` or ``(H, W, C)``, or a torch tensor ``(..., H, W)`` (e.g. ``NCHW``).
    ``uint8`` input gives ``uint8`` output identical to MATLAB's (rounded after each pass); float input gives
    float output of the same dtype, unrounded and unclipped (torch tensors stay differentiable).
    Give exactly one of ``scale`` (e.g. ``1/4`` to make an x4 LR image, ``4`` to upsample) and ``size=(H, W)``.
    """
    if kernel not in _KERNELS:
        raise UsageError(f"unknown imresize kernel {kernel!r}; choose from {', '.join(sorted(_KERNELS))}")
    is_numpy = isinstance(image, np.ndarray)
    if not is_numpy and not isinstance(image, torch.Tensor):
        raise UsageError(f"imresize takes a numpy array or a torch tensor, not {type(image).__name__}")
    if is_numpy:
        if image.ndim not in (2, 3):
            raise UsageError(f"imresize: numpy images must be (H, W) or (H, W, C), got shape {image.shape}")
        dims = (0, 1)
    else:
        if image.dim() < 2:
            raise UsageError(f"imresize: tensors must be (..., H, W), got shape {tuple(image.shape)}")
        dims = (image.dim() - 2, image.dim() - 1)
    in_size = (image.shape[dims[0]], image.shape[dims[1]])
    if min(in_size) < 1:
        raise UsageError(f"imresize: empty image of size {in_size}")
    if (scale is None) == (size is None):
        raise UsageError("imresize: give exactly one of scale and size")
    if scale is not None:
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise UsageError(f"imresize: scale must be a positive number, got {scale!r}")
        scales = (float(scale), float(scale))
        out_size = (_output_length(in_size[0], scales[0]), _output_length(in_size[1], scales[1]))
    else:
        assert size is not None
        if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
            raise UsageError(f"imresize: size must be two positive integers (H, W), got {size!r}")
        out_size = (int(size[0]), int(size[1]))
        scales = (out_size[0] / in_size[0], out_size[1] / in_size[1])

    dtype = image.dtype
    is_uint8 = dtype == np.uint8 if is_numpy else dtype == torch.uint8
    if is_numpy:
        if not (is_uint8 or np.issubdtype(dtype, np.floating)):
            raise UsageError(f"imresize: numpy images must be uint8 or floating point, got {dtype}")
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))
    else:
        if not (is_uint8 or image.is_floating_point()):
            raise UsageError(f"imresize: tensors must be uint8 or floating point, got {dtype}")
        x = image.to(torch.float64) if is_uint8 else image

    order = sorted(range(2), key=lambda i: scales[i])  # smaller scale first; stable: rows first on ties
    for i in order:
        if out_size[i] == in_size[i] and scales[i] == 1.0:
            continue  # MATLAB skips a dimension whose scale is one
        x = _resize_dim(x, dims[i], out_size[i], scales[i], kernel, antialiasing)
        if is_uint8:
            x = torch.clamp(torch.floor(x + 0.5), 0, 255)

    if is_numpy:
        out = x.numpy()
        return out.astype(np.uint8) if is_uint8 else out.astype(dtype, copy=False)
    return x.to(torch.uint8) if is_uint8 else x

"""Output checks run on a model's first forward: shape and finiteness, with the sweep status each maps to."""

from __future__ import annotations

import torch

from ..base.errors import ModelError

__all__ = ["BadOutputError", "NonFiniteOutputError", "check_output"]


class BadOutputError(ModelError):
    """The model returned something other than a (N, C, H*s, W*s) tensor (sweep status ``bad_output``)."""

    status = "bad_output"


class NonFiniteOutputError(ModelError):
    """The model's output holds NaN or infinite values (sweep status ``nan_output``)."""

    status = "nan_output"


def check_output(out: object, x: torch.Tensor, scale: int | None) -> int:
    """Check a super-resolution output against its input; returns the scale (inferred when ``scale`` is None)."""
    if not isinstance(out, torch.Tensor):
        raise BadOutputError(f"the model returned {type(out).__name__}, not a tensor")
    n, c, h, w = x.shape
    if out.dim() != 4 or out.shape[0] != n or out.shape[1] != c:
        raise BadOutputError(
            f"output shape {tuple(out.shape)} does not fit input {tuple(x.shape)}: "
            f"expected ({n}, {c}, H*s, W*s)"
        )
    oh, ow = out.shape[-2:]
    if scale is None:
        if oh % h or ow % w or oh // h != ow // w:
            raise BadOutputError(
                f"output shape {tuple(out.shape)} is not an integer upscaling of {tuple(x.shape)}"
            )
        scale = oh // h
    elif (oh, ow) != (h * scale, w * scale):
        raise BadOutputError(
            f"output shape {tuple(out.shape)} for input {tuple(x.shape)} at x{scale}: "
            f"expected ({n}, {c}, {h * scale}, {w * scale})"
        )
    if not bool(torch.isfinite(out).all()):
        bad = int((~torch.isfinite(out)).sum())
        raise NonFiniteOutputError(f"the output holds {bad} NaN/inf values out of {out.numel()}")
    return scale

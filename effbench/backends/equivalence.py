"""Does a backend's output still match eager fp32? PSNR and max abs difference on one seeded input."""

from __future__ import annotations

import math

import torch

from ..base.errors import ModelError

__all__ = ["DEFAULT_THRESHOLD_DB", "CollapsedOutputError", "check_equivalence"]

DEFAULT_THRESHOLD_DB = 30.0


class CollapsedOutputError(ModelError):
    """The output of an exported or reduced-precision model has collapsed against eager fp32 (NaN/inf, constant,
    or a PSNR below the threshold); sweep status ``bad_output``, the figure in the message."""

    status = "bad_output"


def check_equivalence(
    out: torch.Tensor,
    reference: torch.Tensor,
    data_range: float = 1.0,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    what: str = "the output",
) -> dict[str, float]:
    """``equivalence_psnr_db`` (``inf`` when identical) and ``equivalence_max_abs_diff`` of ``out`` against the
    eager fp32 ``reference``; raises :class:`CollapsedOutputError` when ``out`` is not finite, constant where the
    reference is not, of another shape, or below ``threshold_db``."""
    if not isinstance(out, torch.Tensor) or out.shape != reference.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CollapsedOutputError(f"{what} has shape {got}, eager fp32 gives {tuple(reference.shape)}")
    out = out.detach().float().cpu()
    ref = reference.detach().float().cpu()
    bad = int((~torch.isfinite(out)).sum())
    if bad:
        raise CollapsedOutputError(
            f"{what} collapsed: {bad} of {out.numel()} values are NaN or infinite (eager fp32 has none)"
        )
    if float(out.std()) == 0.0 and float(ref.std()) > 0.0:
        raise CollapsedOutputError(
            f"{what} collapsed: constant {float(out.flatten()[0]):.4g} (eager fp32 varies, std {float(ref.std()):.4g})"
        )
    diff = out - ref
    max_abs = float(diff.abs().max())
    mse = float(diff.pow(2).mean())
    psnr = math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)
    if psnr < threshold_db:
        raise CollapsedOutputError(
            f"{what} differs from eager fp32: PSNR {psnr:.2f} dB < {threshold_db:g} dB (max abs diff {max_abs:.4g})"
        )
    return {"equivalence_psnr_db": psnr, "equivalence_max_abs_diff": max_abs}

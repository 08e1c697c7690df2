"""A study's time comparisons measured in this process: each baseline and its variants timed in interleaved
rounds and profiled in interleaved passes (:func:`time_groups_interleaved`), and the per-operator roofline
estimates that explain them (:func:`roofline_estimates`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .definitions import Study, Variant
from .native_stderr import native_stderr_to

__all__ = ["device_peaks", "roofline_estimates", "time_groups_interleaved"]


def roofline_estimates(
    study: Study,
    models: dict[str, nn.Module | str],
    size: tuple[int, int],
    device_peaks: dict[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """Per variant, the per-operator roofline (:func:`effbench.timing.roofline.op_roofline`) on the paper's GPU at
    the paper's size (``paper``, from published peaks) and on the measuring device at the study's size
    (``ours``, from the peaks calibrated in the variant's cell). Static: ``models`` (:func:`build_variants`)
    are traced on ``meta``."""
    from ..timing.roofline import DEVICE_PEAKS, op_records, op_roofline

    paper_peaks = DEVICE_PEAKS.get(study.paper_device or "")
    out: dict[str, dict[str, Any]] = {}
    for v in study.variants:
        model = models.get(v.name)
        if not isinstance(model, torch.nn.Module):
            out[v.name] = {"error": str(model)}
            continue
        try:
            est: dict[str, Any] = {}
            if paper_peaks and study.paper_size:
                est["paper"] = op_roofline(op_records(model, (1, 3, *study.paper_size)), paper_peaks)
            if device_peaks:
                est["ours"] = op_roofline(op_records(model, (1, 3, *size)), device_peaks)
            out[v.name] = est
        except Exception as exc:  # an estimate is an explanation, never a reason to lose the measurements
            out[v.name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def device_peaks(docs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    for doc in docs.values():
        rl = doc.get("metrics", {}).get("roofline")
        if isinstance(rl, dict) and rl.get("peak_flops_per_s") and rl.get("peak_bytes_per_s"):
            return {k: rl[k] for k in ("peak_flops_per_s", "peak_bytes_per_s", "calibration") if k in rl}
    return None


def time_groups_interleaved(
    study: Study,
    models: dict[str, nn.Module | str],
    docs: dict[str, dict[str, Any]],
    device: str,
    size: tuple[int, int],
    rounds: int,
    threads: int | None,
    profile_passes: int = 5,
    log: Path | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, Any]]:
    """For each baseline, its variants and itself timed in interleaved rounds in this process
    (:func:`effbench.timing.paired.time_interleaved`), then profiled in ``profile_passes`` interleaved passes
    (``op_time``: the median :func:`~effbench.timing.breakdown.op_time_breakdown` per variant); keyed by the
    baseline's name. Variants whose sweep cell failed are left out; a group that fails records its error.
    What the profiler writes to stderr goes to ``log`` (default: the null device), not to the terminal."""
    from ..timing.breakdown import median_breakdown, op_time_breakdown
    from ..timing.paired import time_interleaved

    groups: dict[str, list[Variant]] = {}
    for v in study.variants:
        if (
            v.baseline
            and docs.get(v.name, {}).get("status") == "ok"
            and isinstance(models.get(v.name), torch.nn.Module)
        ):
            groups.setdefault(v.baseline, []).append(v)
    out: dict[str, dict[str, Any]] = {}
    for base, members in groups.items():
        if base not in [m.name for m in members] or len(members) < 2:
            continue
        group = {m.name: models[m.name] for m in members}
        try:
            out[base] = time_interleaved(
                group, size, device=device, dtype=dtype, rounds=rounds, threads=threads
            )
        except Exception as exc:  # the sweep's measurements stand without it
            out[base] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        try:  # the profiler's split, in interleaved passes too: drift would otherwise swamp a few-% difference
            names = list(group)
            parts: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            with native_stderr_to(log or Path(os.devnull)):
                for p in range(profile_passes):
                    for i in range(len(names)):
                        n = names[(p + i) % len(names)]
                        parts[n].append(
                            op_time_breakdown(
                                group[n], size, device=device, dtype=dtype, forwards=1, threads=threads
                            )
                        )
            out[base]["op_time"] = {n: median_breakdown(parts[n]) for n in names}
        except Exception as exc:
            out[base]["op_time_error"] = f"{type(exc).__name__}: {exc}"
    return out

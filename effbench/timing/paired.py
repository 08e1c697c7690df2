"""Interleaved (paired) timing of several models: the change of one against another, robust to drift.

On a shared machine the speed drifts over seconds (other jobs, clocks, caches), so two models timed one after the
other in separate processes can differ by 10-30 % for no reason of their own. :func:`time_interleaved` times all
models in rounds, one sample of each per round in a rotating order, so every pair of samples in a round was taken
within a few forwards of each other; :func:`paired_change` takes the median over rounds of the per-round ratio.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..base.inputs import num_threads
from .steady import make_timer

__all__ = ["paired_change", "time_interleaved"]


def time_interleaved(
    models: Mapping[str, nn.Module],
    input_size: tuple[int, int],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    rounds: int = 10,
    warmup: int = 2,
    threads: int | None = None,
    min_sample_ms: float = 20.0,
    best_of: int | None = None,
    in_channels: int = 3,
) -> dict[str, Any]:
    """Time every model once per round for ``rounds`` rounds, in an order that rotates by one each round.

    Each model runs ``warmup`` untimed forwards first. A CPU sample is the fastest of ``best_of`` forwards
    (default 3: interruptions by other jobs only ever add time); a CUDA sample is as many back-to-back forwards
    as last ``min_sample_ms`` (as in the steady protocol), divided by their number (``best_of`` default 1).
    Returns ``samples_ms`` (name -> one time per round, ms per forward), ``rounds`` and ``calls_per_sample``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not models:
        raise ValueError("no models to time")
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    best_of = best_of if best_of is not None else (1 if cuda else 3)
    if best_of < 1:
        raise ValueError(f"best_of must be >= 1, got {best_of}")
    h, w = input_size
    x = torch.rand(1, in_channels, h, w, generator=torch.Generator().manual_seed(0)).to(
        device=dev, dtype=dtype
    )
    timer = make_timer(dev)
    names = list(models)
    with num_threads(threads), torch.inference_mode():
        nets = {n: copy.deepcopy(m).to(device=dev, dtype=dtype).eval() for n, m in models.items()}
        calls = dict.fromkeys(names, 1)
        for n in names:
            for _ in range(warmup):
                nets[n](x)
            if cuda:
                ms, _ = timer(lambda n=n: nets[n](x))
                calls[n] = max(1, math.ceil(min_sample_ms / max(ms, 1e-3)))
        samples: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            for i in range(len(names)):
                n = names[(r + i) % len(names)]
                fwd = lambda n=n: nets[n](x)  # noqa: E731
                samples[n].append(
                    min((timer(fwd, calls[n]) if cuda else timer(fwd))[0] for _ in range(best_of))
                )
    return {
        "samples_ms": samples,
        "rounds": rounds,
        "best_of": best_of,
        "calls_per_sample": calls,
        "device": str(dev),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "order": "rotating",
    }


def paired_change(samples_ms: Mapping[str, list[float]], baseline: str, variant: str) -> dict[str, float]:
    """Change (%) of ``variant`` vs ``baseline``: the median over rounds of ``t_variant / t_baseline - 1``.

    ``noise_pct`` is about two standard errors of that median (IQR / 1.349 as the spread, x 1.2533 / sqrt(n) for
    the median), the margin below which a change is not told apart from zero.
    """
    base, var = samples_ms[baseline], samples_ms[variant]
    ratios = [100.0 * (v / b - 1.0) for b, v in zip(base, var) if b > 0]
    if not ratios:
        raise ValueError(f"no paired samples of {variant!r} and {baseline!r}")
    n = len(ratios)
    if n >= 2:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        noise = 2.0 * 1.2533 * ((q3 - q1) / 1.349) / math.sqrt(n)
    else:
        noise = float("inf")
    return {"change_pct": statistics.median(ratios), "noise_pct": noise, "rounds": n}

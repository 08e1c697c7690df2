"""An entry's counts under a year's rules: one trace, each metric under the convention of the year's tool, and
every convention's figures from the same trace (what the year's tool leaves out, against ``full``).

Parameters stay in the model's own dtypes (fp16 parameters, ``x.half()`` inside ``forward``) and the input is fp32,
as the harness feeds it. A model whose forward depends on the input's values (routing, early exits: the trace
needs a real forward) is counted on several inputs as the organisers' tools draw them: the hook tool's
uninitialised ``torch.FloatTensor`` (zeros, what a fresh allocation holds) and fvcore's ``torch.rand`` (several
seeds, as many as fit in :data:`DRAW_SECONDS` after the first). Its counts are then marked ``input_dependent``
with each metric's range over the draws; the value given is the median of the draws of the metric's own tool
(fvcore's: the torch.rand draws; the hook tool's: the zero input).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["INPUT_DRAWS", "year_counts"]

#: torch.rand draws counted for a model whose counts depend on the input's values (fvcore's input); after the
#: first one, only when it counted differently from the zero input, and only while they fit in DRAW_SECONDS
INPUT_DRAWS = 3
#: the time the draws after the first may take, judged by how long the first took (some such entries run
#: for tens of seconds per forward on a CPU); how many were made is recorded
DRAW_SECONDS = 30.0
_METRICS = ("flops", "macs", "activations", "convs")


def _rand(seed: int) -> Any:
    def make(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(shape, generator=gen, dtype=dtype).to(device)

    return make


def year_counts(
    model: nn.Module,
    label: str,
    counting: Mapping[str, str],
    size: Sequence[int],
    scale: int = 4,
    draws: int = INPUT_DRAWS,
    force_real: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(counts, profiles)``: ``counts`` holds ``params`` and each other metric of ``counting`` (metric ->
    convention) on a 1x3x``size`` input, plus ``counting``, ``counting_input``, ``trace_engine``,
    ``by_convention`` and ``uncounted_ops`` (ops the FLOPs convention has no rule for); for a model whose counts
    depend on the input's values also ``input_dependent`` (True), ``ranges`` (metric -> [min, max]) and
    ``input_draws`` (each draw's figures). ``profiles`` maps each convention (``full`` included) to its
    :class:`~effbench.counting.profile.Profile` on the first trace. ``force_real``: a real forward only (a
    model the shapes-only replays cannot run)."""
    from ..counting.profile import profile_trace, trace_model

    trace, _ = trace_model(
        model, tuple(size), scale=scale, label=label, keep_dtypes=True, force_real=force_real
    )
    conventions = sorted({*counting.values(), "full"})
    profiles = {c: profile_trace(trace, c, label) for c in conventions}
    counts: dict[str, Any] = {"params": int(trace.params)}
    for metric, conv in counting.items():
        if metric != "params":
            counts[metric] = int(getattr(profiles[conv], metric))
    counts["counting"] = dict(counting)
    counts["counting_input"] = list(trace.input_shape)
    counts["trace_engine"] = trace.engine
    counts["by_convention"] = {c: {k: int(getattr(p, k)) for k in _METRICS} for c, p in profiles.items()}
    if "flops" in counting:
        counts["uncounted_ops"] = sorted(profiles[counting["flops"]].unknown_ops)
    if trace.engine == "real" and draws > 0:
        counts.update(_input_draws(model, label, counting, size, scale, draws, profiles))
    return counts, profiles


def _input_draws(
    model: nn.Module,
    label: str,
    counting: Mapping[str, str],
    size: Sequence[int],
    scale: int,
    draws: int,
    zeros: Mapping[str, Any],
) -> dict[str, Any]:
    """The counts of a value-dependent model on ``draws`` torch.rand inputs beside the zero input's."""
    from ..counting.profile import profile_trace, trace_model

    figures: dict[str, dict[str, dict[str, int]]] = {
        "zeros": {c: {k: int(getattr(p, k)) for k in _METRICS} for c, p in zeros.items()}
    }
    started = time.perf_counter()
    for seed in range(draws):
        elapsed = time.perf_counter() - started
        if seed >= 1 and elapsed + elapsed / seed > DRAW_SECONDS:
            break  # the next draw would not fit: the range is over the draws made (input_draws says which)
        trace, _ = trace_model(
            model,
            tuple(size),
            scale=scale,
            label=label,
            keep_dtypes=True,
            force_real=True,
            real_input=_rand(seed),
        )
        figures[f"rand{seed}"] = {
            c: {k: int(getattr(profile_trace(trace, c, label), k)) for k in _METRICS} for c in zeros
        }
        if seed == 0 and figures["rand0"] == figures["zeros"]:
            break  # a value-dependent forward whose counts are not: no range to find
    out: dict[str, Any] = {"input_draws": figures}
    ranges: dict[str, list[int]] = {}
    values: dict[str, int] = {}
    for metric, conv in counting.items():
        if metric == "params":
            continue
        seen = [f[conv][metric] for f in figures.values()]
        ranges[metric] = [min(seen), max(seen)]
        # the tool's own input: fvcore draws torch.rand; the hook tool reads an uninitialised tensor (zeros in
        # a fresh allocation; a reused one holds anything, which the range covers)
        own = [f[conv][metric] for name, f in figures.items() if (name != "zeros") == (conv == "fvcore")]
        values[metric] = int(statistics.median_low(own))
    out["input_dependent"] = any(lo != hi for lo, hi in ranges.values())
    if out["input_dependent"]:
        out["ranges"] = ranges
        out.update(values)
    return out

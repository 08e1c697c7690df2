"""An entry's counts under a year's rules: one shapes-only trace, each metric under the convention of the year's
tool, and every convention's figures from the same trace (what the year's tool leaves out, against ``full``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

__all__ = ["year_counts"]


def year_counts(
    model: nn.Module, label: str, counting: Mapping[str, str], size: Sequence[int], scale: int = 4
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(counts, profiles)``: ``counts`` holds ``params`` and each other metric of ``counting`` (metric ->
    convention) on a 1x3x``size`` input, plus ``counting``, ``counting_input``, ``trace_engine``,
    ``by_convention`` and ``uncounted_ops`` (ops the FLOPs convention has no rule for); ``profiles`` maps each
    convention (``full`` included) to its :class:`~effbench.counting.profile.Profile`."""
    from ..counting.profile import profile_trace, trace_model

    trace, _ = trace_model(model, tuple(size), scale=scale, label=label)
    profiles = {c: profile_trace(trace, c, label) for c in sorted({*counting.values(), "full"})}
    counts: dict[str, Any] = {"params": int(trace.params)}
    for metric, conv in counting.items():
        if metric != "params":
            counts[metric] = int(getattr(profiles[conv], metric))
    counts["counting"] = dict(counting)
    counts["counting_input"] = list(trace.input_shape)
    counts["trace_engine"] = trace.engine
    counts["by_convention"] = {
        c: {k: int(getattr(p, k)) for k in ("flops", "macs", "activations", "convs")}
        for c, p in profiles.items()
    }
    if "flops" in counting:
        counts["uncounted_ops"] = sorted(profiles[counting["flops"]].unknown_ops)
    return counts, profiles

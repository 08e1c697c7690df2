"""A year's runtime protocol as a projection protocol, and the projected runtime of an entry on the year's GPU
(:mod:`effbench.timing.projection`): what ``--parts projection``, ``challenge check`` and the validation in
``reports/projection/`` share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..timing.gpus import GpuSpec, gpu_spec
from ..timing.projection import Projection, Protocol, image_set, load_cost_model, record_trace_near
from .years import year_rules

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_projection", "check_projection_lines", "project_entry", "year_gpu", "year_protocol"]


def year_protocol(year: int) -> Protocol:
    """The year's harness timing (its validation and test sets, no warm-up, its ``cudnn.benchmark``) as a
    :class:`~effbench.timing.projection.Protocol`.

    Where the year publishes its baseline's valid and test averages separately, the first image's start-up is
    read from them: the valid run pays it once and the test run does not, so start-up = (valid - test x the sets'
    pixel ratio) x the valid images (2024: 0.99 s; the organisers' results.json records 1.03 s for the first
    image). Otherwise (2022) the cost model's fitted constant stands.
    """
    rules = year_rules(year)
    rt = rules.runtime
    sets = tuple(image_set(s) for s in rt.sets)
    pub = rules.baseline.published
    startup, source = None, ""
    if rt.warmup_images == 0 and len(sets) == 2 and "runtime_valid_ms" in pub and "runtime_test_ms" in pub:
        valid, test = sets
        ratio = (valid.size[0] * valid.size[1]) / (test.size[0] * test.size[1])
        startup = max(0.0, (pub["runtime_valid_ms"] - pub["runtime_test_ms"] * ratio) * valid.count * 1e-3)
        source = (
            f"from the {rules.baseline.model} baseline's published {pub['runtime_valid_ms']} ms valid / "
            f"{pub['runtime_test_ms']} ms test"
        )
    return Protocol(
        sets,
        warmup_images=rt.warmup_images,
        cudnn_benchmark=rt.cudnn_benchmark,
        name=f"NTIRE {year} ESR",
        startup_s=startup,
        startup_source=source,
    )


def year_gpu(year: int, gpu: str | None = None) -> GpuSpec:
    """``gpu`` when given, else the GPU the year's organisers timed on; a year whose GPU is not known needs
    ``--gpu``."""
    if gpu:
        return gpu_spec(gpu)
    device = year_rules(year).runtime.device
    try:
        return gpu_spec(device)
    except UsageError:
        raise UsageError(f"NTIRE {year}: the organisers' GPU is {device!r}; name one with --gpu") from None


def project_entry(model: nn.Module, year: int, gpu: str | None = None) -> Projection:
    """The projected runtime of ``model`` under the year's protocol on ``gpu`` (default: the year's GPU)."""
    protocol = year_protocol(year)
    spec = year_gpu(year, gpu)
    trace = record_trace_near(model, protocol.size, protocol.dtype)
    return load_cost_model().project(trace, spec, protocol)


def check_projection(
    model: nn.Module,
    baseline: nn.Module,
    year: int,
    gpu: str | None = None,
    counts: dict[str, Any] | None = None,
    baseline_counts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``challenge check``'s projection: the entry and the baseline projected under the year's protocol on the
    year's GPU (or ``gpu``), their ratio, and for a score year the projected score with the entry's interval
    (the baseline's projection held: the two share the cost model, so much of its error cancels in the ratio).
    """
    from dataclasses import asdict

    from .scores import projected_score

    entry = project_entry(model, year, gpu)
    base = project_entry(baseline, year, gpu)
    ratio = entry.runtime_ms / base.runtime_ms
    out: dict[str, Any] = {
        "label": "projection",
        "gpu": entry.gpu,
        "entry": entry.as_dict(),
        "baseline": base.as_dict(),
        "ratio": ratio,
        "ratio_low": entry.low_ms / base.runtime_ms,
        "ratio_high": entry.high_ms / base.runtime_ms,
    }
    rules = year_rules(year)
    published = rules.baseline.published.get("runtime_ms")
    if published:
        out["baseline_published_ms"] = published
    if rules.score.kind == "score" and counts and baseline_counts:
        b = {"runtime": 1.0, "flops": baseline_counts["flops"], "params": baseline_counts["params"]}
        score = projected_score(
            {"runtime": ratio, "flops": counts["flops"], "params": counts["params"]},
            b,
            year,
            runtime_interval=(out["ratio_low"], out["ratio_high"]),
        )
        out["score"] = asdict(score)
    return out


def check_projection_lines(proj: dict[str, Any]) -> list[str]:
    """The projection's lines of the check page, each saying it is a projection."""
    e, b = proj["entry"], proj["baseline"]
    lines = [
        f"PROJECTED runtime on {proj['gpu']} (not measured; {e['interval']}, fit: {e['fit']}): "
        f"{e['runtime_ms']:.2f} ms ({e['low_ms']:.2f} to {e['high_ms']:.2f}); the baseline projects to "
        f"{b['runtime_ms']:.2f} ms"
        + (f" (published: {proj['baseline_published_ms']:.2f} ms)" if "baseline_published_ms" in proj else "")
        + f"; projected ratio x{proj['ratio']:.3f} (x{proj['ratio_low']:.3f} to x{proj['ratio_high']:.3f}).",
    ]
    if "score" in proj:
        s = proj["score"]
        lines.append(
            f"PROJECTED score on {proj['gpu']}: {s['score']:.4f} ({s['low']:.4f} to {s['high']:.4f}), from the "
            "projected runtime ratio."
        )
    return lines

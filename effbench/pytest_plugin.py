"""pytest plugin (entry point ``pytest11: effbench``): profile and benchmark your own model in your test suite.

Fixtures:

- ``effbench_profile(model, input_size=(64, 64), ...) -> dict``: static metrics (params, FLOPs, MACs,
  activations, convs, predicted peak memory) from :func:`effbench.profile`; when the test also uses
  pytest-benchmark's ``benchmark`` fixture, they are recorded in its ``extra_info``.
- ``effbench_bench(model, input_size=(64, 64), rounds=20, ...)``: times ``model(x)`` under ``torch.no_grad()``
  with ``benchmark.pedantic`` (so the samples land in pytest-benchmark's storage and
  ``--benchmark-compare-fail=median:5%`` works) and records the static metrics in ``extra_info``; then
  ``effbench gate --baseline .benchmarks/.../0001_x.json --current .benchmarks/.../0002_y.json`` also gates
  params/FLOPs/memory.

This module is imported by every pytest run once effbench is installed, so it imports nothing heavy at import
time (no torch): the fixtures import what they need when used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from torch import nn

    from effbench.zoo.spec import ModelSpec

    #: what the fixtures take: a module, a zoo name or file spec, or a spec
    ModelLike = nn.Module | str | ModelSpec

_KEYS = ("params", "flops", "macs", "activations", "convs")


def static_metrics(
    model: ModelLike, input_size: int | Sequence[int] = (64, 64), channels: int = 3, convention: str = "full"
) -> dict[str, Any]:
    """Params, FLOPs, MACs, activations, convs and predicted peak memory of ``model`` for a 1xCxHxW input."""
    from effbench.base.inputs import check_size
    from effbench.counting import profile

    h, w = check_size(input_size, channels=channels)

    p = profile(model, (h, w), convention=convention, channels=channels)
    out: dict[str, Any] = {k: int(getattr(p, k)) for k in _KEYS}
    if p.peak_memory_bytes is not None:
        out["peak_memory_predicted_bytes"] = int(p.peak_memory_bytes)
    out["convention"] = p.convention
    out["input_shape"] = [1, channels, h, w]
    return out


@pytest.fixture
def effbench_profile(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    """Returns ``profile(model, input_size=(64, 64), channels=3, convention="full") -> dict`` of static metrics;
    recorded into ``benchmark.extra_info`` when the test uses pytest-benchmark's ``benchmark`` fixture."""

    def _profile(
        model: ModelLike,
        input_size: int | Sequence[int] = (64, 64),
        channels: int = 3,
        convention: str = "full",
    ) -> dict[str, Any]:
        metrics = static_metrics(model, input_size, channels, convention)
        if "benchmark" in request.fixturenames:
            request.getfixturevalue("benchmark").extra_info.update(metrics)
        return metrics

    return _profile


@pytest.fixture
def effbench_bench(benchmark: Any) -> Callable[..., Any]:
    """Returns ``bench(model, input_size=(64, 64), channels=3, rounds=20, warmup_rounds=3, iterations=1,
    profile=True)``: times the model's forward with ``benchmark.pedantic`` and returns its output."""

    def _bench(
        model: nn.Module,
        input_size: int | Sequence[int] = (64, 64),
        channels: int = 3,
        rounds: int = 20,
        warmup_rounds: int = 3,
        iterations: int = 1,
        profile: bool = True,
    ) -> Any:
        import torch

        from effbench.base.inputs import check_size

        h, w = check_size(input_size, channels=channels)
        if rounds < 2:
            raise ValueError("rounds must be >= 2 for a significance test to be possible")
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        x = torch.rand(1, channels, h, w, device=device)
        model.eval()
        if profile:
            benchmark.extra_info.update(static_metrics(model, (h, w), channels))
        benchmark.extra_info["device"] = device.type

        def step() -> Any:
            with torch.no_grad():
                y = model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return y

        return benchmark.pedantic(step, rounds=rounds, warmup_rounds=warmup_rounds, iterations=iterations)

    return _bench

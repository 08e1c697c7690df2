"""Benchmark your own super-resolution model inside your test suite with effbench's pytest plugin.

Installed with effbench (entry point ``pytest11: effbench``), the plugin gives two fixtures:

- ``effbench_bench(model, input_size=(64, 64), rounds=20)``: times the forward pass with pytest-benchmark
  (``benchmark.pedantic``) and records params/FLOPs/activations/convs/predicted memory in ``extra_info``;
- ``effbench_profile(model, input_size)``: the static metrics alone, as a dict.

Save a baseline, then compare every later run against it::

    pytest docs/examples/test_my_model.py --benchmark-save=base --benchmark-save-data
    pytest docs/examples/test_my_model.py --benchmark-save=pr --benchmark-save-data \\
        --benchmark-compare=0001 --benchmark-compare-fail=median:5%
    # runtime with a significance test, plus params/FLOPs/memory from extra_info:
    effbench gate --baseline .benchmarks/*/0001_base.json --current .benchmarks/*/0002_pr.json
"""

from __future__ import annotations

import torch
from torch import nn


class TinySR(nn.Module):
    """A small x2 super-resolution network: conv body and pixel shuffle."""

    def __init__(self, channels: int = 16, blocks: int = 4, scale: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
                                    for _ in range(blocks)])
        self.tail = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)) + self.head(x))


def test_tiny_sr_speed(effbench_bench) -> None:
    out = effbench_bench(TinySR(), input_size=(32, 32), rounds=20)
    assert out.shape == (1, 3, 64, 64)


def test_tiny_sr_budget(effbench_profile) -> None:
    m = effbench_profile(TinySR(), input_size=(32, 32))
    assert m["params"] < 20_000  # a hard budget, checked on every run

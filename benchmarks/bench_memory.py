"""Speed of the memory predictor: under a second per zoo model at a 1920x1080 LR input (issue 4).

The input is the full 1920x1080 image fed to the model as its LR input (1 x 3 x 1080 x 1920), with the CUDA
caching-allocator model (warm + measured forward). The replay never touches pixel data, so its cost depends on the
number of ops, not on the input size; the first call in a process also pays FakeTensorMode's one-time set-up, which
the warm-up round absorbs.

Run: ``python -m pytest benchmarks/bench_memory.py``
"""

from __future__ import annotations

import pytest

from effbench.memory import predict_memory
from effbench.zoo.registry import create_model, list_models, model_info

SIZE = (1080, 1920)
MODELS = list_models()


@pytest.mark.parametrize("name", MODELS)
def test_predict_memory_1920x1080(benchmark, name: str) -> None:
    model = create_model(name, scale=model_info(name).scales[-1])
    report = benchmark.pedantic(predict_memory, args=(model, SIZE), rounds=3, iterations=1, warmup_rounds=1)
    assert report.peak_bytes > 3 * 1080 * 1920 * 4
    assert benchmark.stats["median"] < 1.0, f"{name}: {benchmark.stats['median']:.2f} s per prediction"

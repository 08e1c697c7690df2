"""The pytest plugin: a user's test suite benchmarks its model with ``effbench_bench``, the samples and static
metrics land in pytest-benchmark's storage, ``--benchmark-compare-fail`` catches a slowdown, and ``effbench gate``
reads the saved files and catches the slowdown (with its significance test) and the parameter increase."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import time
import torch
from torch import nn

BLOCKS = {blocks}
DELAY_S = {delay}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(BLOCKS)])

    def forward(self, x):
        if DELAY_S:
            time.sleep(DELAY_S)
        return self.body(x)


def test_speed(effbench_bench):
    torch.set_num_threads(1)
    out = effbench_bench(Net(), input_size=(16, 16), channels=8, rounds=8, warmup_rounds=1)
    assert out.shape == (1, 8, 16, 16)


def test_budget(effbench_profile, benchmark):
    m = effbench_profile(Net(), input_size=16, channels=8)
    assert m["params"] == BLOCKS * (8 * 8 * 9 + 8) and m["convs"] == BLOCKS
    benchmark.pedantic(lambda: None, rounds=2)
"""


@pytest.fixture
def restore_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_plugin_records_into_pytest_benchmark_storage_and_gates(
    pytester: pytest.Pytester, restore_threads, tmp_path: Path
) -> None:
    from torch import nn

    from effbench.ci.gate import gate
    from effbench.pytest_plugin import static_metrics

    # pytester runs in-process and unloads the modules each run imported; import torch's lazily loaded
    # tracing modules once here so that they are not registered twice.
    static_metrics(nn.Conv2d(8, 8, 3, padding=1), 16, channels=8)
    store = tmp_path / "store"
    common = ["-p", "no:cacheprovider", f"--benchmark-storage={store}", "--benchmark-save-data", "-q"]
    pytester.makepyfile(test_user=USER_TESTS.format(blocks=3, delay=0))
    r = pytester.runpytest(*common, "--benchmark-save=base")
    r.assert_outcomes(passed=2)
    (base,) = store.rglob("0001_base.json")
    saved = {b["name"]: b for b in json.loads(base.read_text())["benchmarks"]}
    info = saved["test_speed"]["extra_info"]
    assert info["params"] == 3 * (8 * 8 * 9 + 8) and info["convs"] == 3 and info["flops"] > 0
    assert len(saved["test_speed"]["stats"]["data"]) == 8
    assert saved["test_budget"]["extra_info"]["convs"] == 3  # effbench_profile fed the benchmark fixture

    # one more conv and a 20 ms sleep per forward: pytest-benchmark's own comparison fails the run...
    pytester.makepyfile(test_user=USER_TESTS.format(blocks=4, delay=0.02))
    r = pytester.runpytest(
        *common, "--benchmark-save=bigger", "--benchmark-compare=0001", "--benchmark-compare-fail=median:100%"
    )
    assert r.ret != 0
    assert "Performance has regressed" in r.stdout.str() + r.stderr.str()
    # ...and effbench gate reads both saved files and fails on runtime, params and FLOPs
    (bigger,) = store.rglob("0002_bigger.json")
    res = gate(base, bigger)
    assert res.exit_code == 1
    failed = {(c.model.split("::")[-1], c.metric) for c in res.regressions}
    assert {("test_speed", "params"), ("test_speed", "FLOPs"), ("test_speed", "runtime")} <= failed


def test_plugin_module_imports_cheaply() -> None:
    import subprocess
    import sys

    code = (
        "import sys, effbench.pytest_plugin; "
        "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""Executors on a 40-cell device-free sweep -- run with ``python -m pytest benchmarks/bench_executors.py -q -s``.

Eight zoo models x five sizes, static metrics and predicted memory only (``--no-timing``), run three times into
fresh folders: the local executor one cell at a time, the local executor with ``--jobs 2``, and Ray on a local
2-CPU cluster (started first, not timed). Prints, per executor, the wall time, the wall time per cell, the time a
cell spends measuring (its ``cell_seconds``) and the per-cell overhead: the time a slot spends on a cell beyond
that (process start, imports, model build, the executor's own work), ``wall x slots / cells - cell_seconds``.
Targets, with the same figures everywhere: ``--jobs 2`` at least 1.25x faster than the sequential run, and Ray with
2 CPUs at most 1.5x slower than it. With the VM's second core free both come near 2x (1.80x and 1.78x measured);
when other processes keep that core busy, the speed-up shrinks and Ray's own daemons (GCS, raylet, workers) compete
with the cells (1.36x and 0.95x in such a run; docs/distributed.md has both runs), so the targets are what holds on a shared 2-core machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from effbench.base.results import load_results
from effbench.sweep import Cell, run_sweep
from effbench.sweep.executors import get_executor
from effbench.zoo.registry import list_models, model_info

MIN_JOBS_SPEEDUP = 1.25
MAX_RAY_SLOWDOWN = 1.5
SIZES = ((32, 32), (48, 48), (64, 64), (80, 80), (96, 96))


def _cells() -> list[Cell]:
    models = [n for n in list_models() if not model_info(n).reference and 4 in model_info(n).scales][:8]
    return [Cell(m, 4, size, timing=False) for m in models for size in SIZES]


def _sweep(cells: list[Cell], out: Path, executor_name: str, **options) -> dict:
    t0 = time.perf_counter()
    summary = run_sweep(cells, out, progress=False, executor=get_executor(executor_name, **options))
    wall = time.perf_counter() - t0
    assert summary["final"] == {"ok": len(cells)}, summary["final"]
    docs = load_results([out / "cells"])
    return {
        "wall": wall,
        "cell_seconds": sum(d["cell_seconds"] for d in docs) / len(docs),
        "figures": {d["cell_id"]: d["metrics"] for d in docs},
    }


def test_jobs_2_at_least_1_25x_faster_and_ray_at_most_1_5x_slower_than_sequential_on_40_device_free_cells(
    benchmark, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    cells = _cells()
    assert len(cells) == 40
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:

        def run() -> dict[str, dict]:
            return {
                "local": _sweep(cells, tmp_path / "local", "local"),
                "local --jobs 2": _sweep(cells, tmp_path / "jobs2", "local", jobs=2),
                "ray (2 CPUs)": _sweep(cells, tmp_path / "ray", "ray"),
            }

        runs = benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        ray.shutdown()
    slots = {"local": 1, "local --jobs 2": 2, "ray (2 CPUs)": 2}
    print(f"\n{len(cells)} device-free cells (8 zoo models x 5 sizes, static + predicted memory)")
    print(
        f"{'executor':<16} {'wall s':>8} {'s/cell':>8} {'in-cell s':>10} {'overhead s/cell':>16} {'speed-up':>9}"
    )
    base = runs["local"]["wall"]
    for name, r in runs.items():
        overhead = r["wall"] * slots[name] / len(cells) - r["cell_seconds"]
        benchmark.extra_info[name] = {"wall_s": r["wall"], "overhead_s_per_cell": overhead}
        print(
            f"{name:<16} {r['wall']:>8.1f} {r['wall'] / len(cells):>8.2f} {r['cell_seconds']:>10.2f} "
            f"{overhead:>16.2f} {base / r['wall']:>8.2f}x"
        )
    for name in ("local --jobs 2", "ray (2 CPUs)"):
        assert runs[name]["figures"] == runs["local"]["figures"], f"{name} measured other figures"
    jobs_speedup = base / runs["local --jobs 2"]["wall"]
    assert jobs_speedup >= MIN_JOBS_SPEEDUP, f"--jobs 2: only {jobs_speedup:.2f}x faster"
    ray_slowdown = runs["ray (2 CPUs)"]["wall"] / base
    assert ray_slowdown <= MAX_RAY_SLOWDOWN, f"ray: {ray_slowdown:.2f}x slower than sequential"

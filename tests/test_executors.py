"""Executors (effbench.sweep.executors): local ``--jobs``, a real local Ray cluster on loopback and submitit's
local executor run the same cell processes, so they give the same figures; every result says which executor ran
it and where; a Ray worker killed mid-cell is retried once, then recorded as ``error``, never lost or doubled;
``--resume`` after a cluster restart reruns only what is missing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sweep_runs import MODELS, cell_starts

from effbench.base.errors import UsageError
from effbench.base.results import load_results
from effbench.cli import main as cli_main
from effbench.sweep import Cell, SweepConfig, run_sweep
from effbench.sweep.executors import get_executor, timed_device
from effbench.sweep.executors.local import LocalExecutor
from effbench.sweep.runner import SweepTerminated
from effbench.sweep.worker import measure_cell

ray = pytest.importorskip("ray", reason="ray is in the test extras: pip install -e '.[test]'")

SIZES = ("8x8", "8x12", "12x8")
SWEEP_MODELS = (f"{MODELS}:Nearest", f"{MODELS}:Sleep20ms")


def _docs(out: Path) -> dict[str, dict]:
    return {d["cell_id"]: d for d in load_results([out / "cells"])}


def _figures(docs: dict[str, dict]) -> dict[str, dict]:
    """Per cell: its static and predicted-memory figures."""
    return {cid: d["metrics"] for cid, d in docs.items()}


def _argv(out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--models",
        *SWEEP_MODELS,
        "--sizes",
        *SIZES,
        "--no-timing",
        "--no-report",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


# ------------------------------------------------------------------------------------ choosing and scheduling


def test_an_option_of_another_executor_or_an_unknown_executor_is_a_usage_error():
    with pytest.raises(UsageError, match="--address is for --executor ray"):
        get_executor("local", address="auto")
    with pytest.raises(UsageError, match="--jobs is for --executor local"):
        get_executor("ray", jobs=2)
    with pytest.raises(UsageError, match="--slurm-partition is for --executor submitit"):
        get_executor("ray", slurm_partition="gpu")
    with pytest.raises(UsageError, match="unknown executor 'dask'"):
        get_executor("dask")
    with pytest.raises(UsageError, match="--jobs must be a positive integer"):
        get_executor("local", jobs=0)


def test_no_timing_cells_are_one_per_model_scale_and_size_and_refuse_what_needs_a_run():
    cfg = SweepConfig(
        models=list(SWEEP_MODELS), sizes=[(8, 8), (8, 12)], devices=["cpu", "cpu"], timing=False
    )
    cells = cfg.cells()
    assert len(cells) == 4 and all(c.device_free and c.cell_id.endswith("_static") for c in cells)
    assert not Cell(f"{MODELS}:Nearest").device_free
    with pytest.raises(UsageError, match="drop --no-static, --breakdown"):
        SweepConfig(models=[f"{MODELS}:Nearest"], timing=False, static=False, breakdown=True).cells()


def test_a_device_free_cell_counts_and_predicts_without_timing_and_a_failing_model_is_an_error():
    doc = measure_cell(Cell(f"{MODELS}:Nearest", 4, (8, 8), timing=False))
    assert doc["status"] == "ok" and doc["protocol"] is None
    assert doc["metrics"]["flops"] > 0 and doc["metrics"]["peak_memory_predicted_bytes"] > 0
    assert "runtime_ms" not in doc["metrics"]
    broken = measure_cell(Cell(f"{MODELS}:Raises", 4, (8, 8), timing=False))
    assert broken["status"] == "error" and "this model always fails" in broken["error"]


def _cell(device: str | None) -> SimpleNamespace:
    return SimpleNamespace(device=device or "cpu", device_free=device is None, threads=None)


def test_local_jobs_pack_device_free_cells_but_never_two_timed_cells_on_a_device_and_a_timed_cpu_cell_alone():
    ex = LocalExecutor(jobs=3)

    def nxt(pending, running):
        return ex._next(pending, [SimpleNamespace(cell=c) for c in running])

    free, cpu, cuda = _cell(None), _cell("cpu"), _cell("cuda")
    assert nxt([free, free], [free]) == 0  # device-free cells side by side
    assert nxt([free], [free, free, free]) is None  # at most jobs at once
    assert nxt([cuda, free], [cuda]) == 1  # the GPU is busy: the device-free cell overtakes
    assert nxt([_cell("cuda:1")], [cuda]) == 0  # another GPU is free
    assert nxt([cpu, free], [free]) == 1  # a timed CPU cell waits for an empty machine
    assert nxt([cpu], []) == 0
    assert nxt([free, cuda], [cpu]) is None  # and nothing starts beside it
    assert LocalExecutor(jobs=3, allow_shared_cpu=True)._next([free], [SimpleNamespace(cell=cpu)]) == 0
    assert timed_device(cuda) == "cuda:0" and timed_device(free) is None


def test_ray_resources_gpu_cells_take_a_whole_gpu_and_timed_cpu_cells_a_whole_node():
    from effbench.sweep.executors.ray_executor import RayExecutor

    node = "ab" * 28
    nodes = iter([(node, 16)])
    ex = RayExecutor(gpu_type="H100")
    assert ex._options(_cell(None), nodes) == {"num_cpus": 1}
    assert ex._options(_cell("cuda"), nodes) == {"num_cpus": 1, "num_gpus": 1, "accelerator_type": "H100"}
    opts = ex._options(_cell("cpu"), nodes)
    assert opts["num_cpus"] == 16 and opts["scheduling_strategy"].node_id == node
    assert RayExecutor(allow_shared_cpu=True)._options(_cell("cpu"), nodes) == {"num_cpus": 1}


SLOW_INIT = """
import time
from pathlib import Path
from torch import nn


class SlowInit(nn.Module):
    def __init__(self, scale=4):
        super().__init__()
        with open({log!r}, "a") as f:
            f.write(f"start {{time.time()}}\\n")
        time.sleep(1.5)
        with open({log!r}, "a") as f:
            f.write(f"end {{time.time()}}\\n")
        self.conv = nn.Conv2d(3, 3, 1)
        self.scale = scale

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=self.scale)
"""


@pytest.mark.slow
def test_jobs_2_runs_two_device_free_cells_at_the_same_time(tmp_path: Path):
    log = tmp_path / "times.log"
    (tmp_path / "slow_init.py").write_text(SLOW_INIT.format(log=str(log)))
    spec = f"{tmp_path / 'slow_init.py'}:SlowInit"
    cells = [Cell(spec, 4, (8, w), timing=False) for w in (8, 12)]
    summary = run_sweep(cells, tmp_path / "out", progress=False, executor=get_executor("local", jobs=2))
    assert summary["final"] == {"ok": 2}
    starts = sorted(float(ln.split()[1]) for ln in log.read_text().splitlines() if ln.startswith("start"))
    ends = sorted(float(ln.split()[1]) for ln in log.read_text().splitlines() if ln.startswith("end"))
    assert starts[1] < ends[0]  # the second cell began before the first one ended


# ------------------------------------------------------------------------------------------- a real Ray cluster


def _start_ray() -> None:
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )


@pytest.fixture(scope="module")
def ray_cluster():
    _start_ray()
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def swept(ray_cluster, tmp_path_factory):
    """The 6-cell device-free sweep, once with the local executor (--jobs 2), once with --executor ray."""
    root = tmp_path_factory.mktemp("swept")
    assert cli_main(_argv(root / "local", "--jobs", "2")) == 0
    assert cli_main(_argv(root / "ray", "--executor", "ray")) == 0
    return root


@pytest.mark.slow
def test_a_ray_sweep_gives_the_local_figures_and_every_result_names_its_executor_and_node(swept: Path):
    local, remote = _docs(swept / "local"), _docs(swept / "ray")
    assert len(remote) == 6 and set(remote) == set(local)
    assert _figures(remote) == _figures(local)
    for d in remote.values():  # both figures are there (Sleep20ms counts no FLOPs: it runs no layer)
        assert d["metrics"]["params"] == 12 and d["metrics"]["peak_memory_predicted_bytes"] > 0
        assert d["metrics"]["flops"] > 0 or "Sleep20ms" in d["cell_id"]
    node_ids = {n["NodeID"] for n in ray.nodes()}
    for d in remote.values():
        assert d["status"] == "ok" and d["env"]["executor"] == "ray"
        assert d["env"]["node"]["hostname"] and d["env"]["node"]["ray_node_id"] in node_ids
    assert {d["env"]["executor"] for d in local.values()} == {"local"}
    assert len(cell_starts(swept / "ray")) == 6  # the driver brought every cell's runs.log line home
    assert all((swept / "ray" / "logs" / f"{cid}.log").exists() for cid in remote)


VICTIMS = """
import os
import time
from pathlib import Path
from torch import nn


def _ray_worker():  # the Ray worker running this task: the parent of the cell's supervisor (effbench.base.procs)
    stat = Path(f"/proc/{{os.getppid()}}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


class Victim(nn.Module):
    kills = 0

    def __init__(self, scale=4):
        super().__init__()
        mark = Path({marks!r}) / type(self).__name__
        if (mark.read_text().count("\\n") if mark.exists() else 0) < self.kills:
            with open(mark, "a") as f:
                f.write(f"{{_ray_worker()}} {{os.getpid()}}\\n")  # the Ray worker running this task, the cell
            time.sleep(120)
        self.conv = nn.Conv2d(3, 3, 1)
        self.scale = scale

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=self.scale)


class KilledOnce(Victim):
    kills = 1


class KilledTwice(Victim):
    kills = 2


class Hangs(Victim):
    kills = 99
"""


def _kill_workers(marks: Path, stop: threading.Event) -> None:
    """SIGKILL the Ray worker of every cell attempt that announces itself in ``marks``."""
    killed: set[int] = set()
    while not stop.is_set():
        for mark in marks.iterdir():
            for pid in (int(line.split()[0]) for line in mark.read_text().splitlines()):
                if pid not in killed:
                    killed.add(pid)
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


@pytest.mark.slow
def test_a_ray_worker_killed_mid_cell_is_retried_once_then_recorded_as_error_never_lost_or_doubled(
    ray_cluster, tmp_path: Path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "victims.py").write_text(VICTIMS.format(marks=str(marks)))
    once, twice = (
        Cell(f"{tmp_path / 'victims.py'}:{n}", 4, (8, 8), timing=False) for n in ("KilledOnce", "KilledTwice")
    )
    stop = threading.Event()
    killer = threading.Thread(target=_kill_workers, args=(marks, stop), daemon=True)
    killer.start()
    try:
        summary = run_sweep([once, twice], tmp_path / "out", progress=False, executor=get_executor("ray"))
    finally:
        stop.set()
        killer.join()
    assert summary["ran"] == 2 and summary["final"] == {"ok": 1, "error": 1}
    files = sorted(p.name for p in (tmp_path / "out" / "cells").iterdir())
    assert files == sorted([f"{once.cell_id}.json", f"{twice.cell_id}.json"])  # one result per cell
    ok = json.loads((tmp_path / "out" / "cells" / f"{once.cell_id}.json").read_text())
    assert ok["status"] == "ok" and ok["metrics"]["params"] == 12
    assert len(ok["env"]["node"]["lost_attempts"]) == 1  # retried once, then ok
    err = json.loads((tmp_path / "out" / "cells" / f"{twice.cell_id}.json").read_text())
    assert (
        err["status"] == "error" and "lost 2 times" in err["error"] and "WorkerCrashedError" in err["error"]
    )


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


@pytest.mark.slow
def test_sigterm_of_a_ray_sweep_keeps_the_finished_cells_and_cancels_the_outstanding_tasks(
    ray_cluster, tmp_path: Path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "victims.py").write_text(VICTIMS.format(marks=str(marks)))
    fast = Cell(f"{MODELS}:Nearest", 4, (8, 8), timing=False)
    hangs = [Cell(f"{tmp_path / 'victims.py'}:Hangs", 4, (8, w), timing=False) for w in (8, 12)]
    out = tmp_path / "out"

    def terminate_when_fast_is_done_and_a_cell_hangs() -> None:
        while not ((out / "cells" / f"{fast.cell_id}.json").exists() and (marks / "Hangs").exists()):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_fast_is_done_and_a_cell_hangs, daemon=True).start()
    with pytest.raises(SweepTerminated):
        run_sweep([fast, *hangs], out, progress=False, executor=get_executor("ray"))
    assert [p.name for p in (out / "cells").iterdir()] == [f"{fast.cell_id}.json"]
    hung = [int(line.split()[1]) for line in (marks / "Hangs").read_text().splitlines()]
    deadline = time.monotonic() + 15
    while any(map(_alive, hung)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, hung)), "a cancelled task's cell process is still running"


@pytest.mark.slow
def test_resume_after_the_cluster_restarts_reruns_only_the_missing_cells(swept: Path):
    out = swept / "ray"
    before = _docs(out)
    gone = sorted(before)[:2]
    for cid in gone:
        (out / "cells" / f"{cid}.json").unlink()
    starts_before = len(cell_starts(out))
    ray.shutdown()  # the cluster goes down ...
    _start_ray()  # ... and comes back (the module fixture shuts this one down)
    assert cli_main(_argv(out, "--executor", "ray", "--resume")) == 0
    after = _docs(out)
    assert set(after) == set(before)
    assert sorted(cid for cid, _ in cell_starts(out)[starts_before:]) == gone
    assert all(
        after[c]["created"] == before[c]["created"] for c in before if c not in gone
    )  # kept, not rerun
    assert _figures(after) == _figures(before)


# ------------------------------------------------------------------------------------------------- submitit


@pytest.mark.slow
def test_submitit_local_executor_gives_the_local_figures_and_names_its_job(swept: Path, tmp_path: Path):
    pytest.importorskip("submitit")
    from effbench.sweep.executors.submitit_executor import SubmititExecutor

    cells = [
        Cell(f"{MODELS}:Nearest", 4, (8, 8), timing=False),
        Cell(f"{MODELS}:Nearest", 4, (8, 12), timing=False),
    ]
    summary = run_sweep(cells, tmp_path / "out", progress=False, executor=SubmititExecutor(cluster="local"))
    assert summary["final"] == {"ok": 2}
    docs, local = _docs(tmp_path / "out"), _docs(swept / "local")
    for cid, d in docs.items():
        assert d["metrics"] == local[cid]["metrics"]
        assert d["env"]["executor"] == "submitit" and d["env"]["node"]["job_id"]

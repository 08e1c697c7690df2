"""Issue 25, processes: a cell owns everything it starts. An entry whose constructor forks, and starts a child in a
session of its own, leaves nothing running after `effbench run` (local and Ray executors) or `effbench challenge
--jobs 2`; the result names what was killed. Ray's SIGTERM handler does not replace effbench's (rc 143, table
written). Resume reruns a cell measured under other settings, and lists every rerun cell, missing ones included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_runs import MODELS, ROOT, cell_starts, run_argv

from effbench.base.procs import become_subreaper, child_pids, kill_descendants

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers are Linux's")

_FORKS = '''
import os, subprocess, sys, time
from torch import nn
from torch.nn import functional as F


class Forks(nn.Module):
    """Forks a child that sleeps for ever, and starts one more in a new session; both write their PID down."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 1)
        pid = os.fork()
        if pid == 0:
            while True:
                time.sleep(1000)
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"], start_new_session=True)
        with open(PIDS, "a") as f:
            f.write(f"{pid}\\n{p.pid}\\n")

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=self.scale, mode="nearest")
'''


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _forking_model(tmp_path: Path) -> tuple[str, Path]:
    pids = tmp_path / "pids.txt"
    f = tmp_path / "forks.py"
    f.write_text(f"PIDS = {str(pids)!r}\n" + _FORKS)
    return f"{f}:Forks", pids


def _escaped(pids: Path) -> list[int]:
    """The PIDs the model started that are still running (killed here, so a failing test leaves none)."""
    started = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    alive = [p for p in started if _alive(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    return alive


def _check_killed_recorded(doc: dict, n: int) -> None:
    killed = doc.get("killed_processes") or []
    assert len(killed) >= n, doc
    assert any(k["how"] == "left running in a session of its own" for k in killed), killed
    assert all({"pid", "command", "how"} <= set(k) for k in killed)


def test_kill_descendants_finds_a_grandchild_in_a_new_session_after_its_parent_exited():
    def run_child():
        if os.fork() == 0:  # the child: a grandchild in its own session, then exit at once
            subprocess.Popen(["sleep", "1000"], start_new_session=True)
            os._exit(0)

    # in a forked helper, so that this test process does not become a subreaper
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            assert become_subreaper()
            run_child()
            time.sleep(0.5)
            orphans = child_pids()
            killed = kill_descendants()
            code = 0 if orphans and {k["pid"] for k in killed} >= set(orphans) and not child_pids() else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(helper, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.slow
def test_a_forking_cell_leaves_nothing_running_after_effbench_run_and_the_result_says_what_was_killed(
    tmp_path: Path,
):
    spec, pids = _forking_model(tmp_path)
    out = tmp_path / "out"
    done = subprocess.run(run_argv(out, [spec]), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _escaped(pids) == [] and len(pids.read_text().split()) == 2
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert doc["status"] == "ok"
    _check_killed_recorded(doc, 2)


@pytest.mark.slow
def test_a_forking_entry_leaves_nothing_after_effbench_challenge_jobs_2(tmp_path: Path):
    spec, pids = _forking_model(tmp_path)
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        '[challenge]\nname = "forks"\nyear = 2024\n\n'
        f'[[entry]]\nname = "forks"\nmodel = "{spec}"\n\n'
        f'[[entry]]\nname = "nearest"\nmodel = "{ROOT / MODELS}:Nearest"\n'
    )
    out = tmp_path / "lb"
    done = subprocess.run(
        [sys.executable, "-m", "effbench", "challenge", str(manifest), "--out", str(out), "--jobs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _escaped(pids) == [] and len(pids.read_text().split()) == 2
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("forks-*.json")]
    _check_killed_recorded(doc, 2)


@pytest.mark.slow
def test_a_timed_out_cell_that_forked_leaves_nothing_either(tmp_path: Path):
    spec, pids = _forking_model(tmp_path)
    hang = tmp_path / "forks.py"
    hang.write_text(
        hang.read_text() + "\n\nclass ForksThenHangs(Forks):\n    def forward(self, x):\n"
        "        time.sleep(1000)\n"
    )
    out = tmp_path / "out"
    argv = run_argv(out, [f"{hang}:ForksThenHangs"], "--timeout", "20")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert _escaped(pids) == []
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert doc["status"] == "timeout"
    _check_killed_recorded(doc, 2)  # its fork and its new-session child (the cell process was killed)


# ----------------------------------------------------------------------------------------------- Ray


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _ray_available(), reason="ray is not installed (pip install 'effbench[ray]')")
def test_a_forking_cell_under_the_ray_executor_leaves_nothing_after_the_run(tmp_path: Path):
    spec, pids = _forking_model(tmp_path)
    out = tmp_path / "out"
    argv = run_argv(out, [spec], "--executor", "ray")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _escaped(pids) == [] and len(pids.read_text().split()) == 2
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    _check_killed_recorded(doc, 2)


@pytest.mark.slow
@pytest.mark.skipif(not _ray_available(), reason="ray is not installed (pip install 'effbench[ray]')")
def test_sigterm_under_the_ray_executor_exits_143_with_the_table_written(tmp_path: Path):
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time\nfrom torch import nn\n\n\nclass SlowInit(nn.Module):\n"
        "    def __init__(self, scale: int = 4) -> None:\n        super().__init__()\n        time.sleep(300)\n"
    )
    out = tmp_path / "out"
    argv = run_argv(out, [f"{MODELS}:Nearest", f"{slow}:SlowInit"], "--executor", "ray")
    runner = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 400
        while len(list((out / "cells").glob("*.json"))) < 1 or len(cell_starts(out)) < 1:
            assert time.monotonic() < deadline, "the first cell never finished"
            assert runner.poll() is None, runner.communicate()
            time.sleep(0.5)
        time.sleep(3)  # the slow cell is running on a Ray worker now
        runner.send_signal(signal.SIGTERM)
        stdout, stderr = runner.communicate(timeout=120)
    finally:
        runner.kill()
    assert runner.returncode == 143, stdout + stderr
    assert "terminated (SIGTERM)" in stderr
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and "Nearest" in rows[1]


@pytest.mark.slow
def test_a_forking_cell_under_the_submitit_executor_leaves_nothing_either(tmp_path: Path):
    pytest.importorskip("submitit")
    from effbench.sweep import Cell, run_sweep
    from effbench.sweep.executors.submitit_executor import SubmititExecutor

    spec, pids = _forking_model(tmp_path)
    out = tmp_path / "out"
    cell = Cell(spec, 4, (8, 8), timing=False)
    summary = run_sweep([cell], out, progress=False, executor=SubmititExecutor(cluster="local"))
    assert summary["final"] == {"ok": 1}
    assert _escaped(pids) == [] and len(pids.read_text().split()) == 2
    _check_killed_recorded(json.loads((out / "cells" / f"{cell.cell_id}.json").read_text()), 2)


# ----------------------------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_resume_reruns_a_cell_measured_under_other_settings_naming_the_difference(tmp_path: Path, capsys):
    from effbench.cli import main

    out = tmp_path / "out"
    base = run_argv(out, [f"{MODELS}:Nearest"])[3:]
    assert main(base) == 0
    argv = [*base[: base.index("--repeats") + 1], "3", *base[base.index("--repeats") + 2 :]]
    assert main([*argv, "--resume"]) == 0  # repeats 2 -> 3: rerun, with the difference named
    said = capsys.readouterr().out
    assert "resume: reran Nearest" in said and "measured under other settings: repeats 2 -> 3" in said
    starts = [cid for cid, _ in cell_starts(out)]
    assert len(starts) == 2 and starts[0] == starts[1]
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert doc["cell"]["repeats"] == 3 and doc["metrics"]["runtime_ms"]["repeats"] >= 3
    assert main([*argv, "--resume"]) == 0  # the same settings: nothing runs
    assert "ran 0 cells, skipped 1" in capsys.readouterr().out and len(cell_starts(out)) == 2


@pytest.mark.slow
def test_resume_lists_a_missing_cell_it_runs(tmp_path: Path, capsys):
    from effbench.cli import main

    out = tmp_path / "out"
    assert main([*run_argv(out, [f"{MODELS}:Nearest"])[3:], "--resume"]) == 0
    said = capsys.readouterr().out
    assert "resume: reran Nearest" in said and "(was missing)" in said and len(cell_starts(out)) == 1

"""Faults injected into sweeps and into the readers of their results, one test per fault class: concurrent
runners on one output folder, a stale lock, SIGKILL and SIGTERM of the runner, an OOM-killed cell, resume after
failed / timed-out / empty / truncated cells, duplicated cells, and corrupt result files given to report, score
and gate. Each asserts the exit code, the message, and that no finished result is lost or duplicated."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sweep_runs import MODELS, ROOT, cell_starts, run_argv, sweep_cell

from effbench.base.results import (
    UnreadableResultError,
    load_results,
    new_result,
    validate_result,
    write_json_atomic,
)
from effbench.cli import main
from effbench.sweep import Cell, SweepConfig, run_sweep
from effbench.sweep import cell_process as runner_mod
from effbench.sweep.lock import LOCK_NAME, LockHeldError, OutputLock
from effbench.sweep.supervise import OomEvidence, death_reason

LOCKED_RC = 3


# ----------------------------------------------------------------------------------------------- helpers


def _alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _slow_model(tmp_path: Path) -> str:
    """A model file whose constructor sleeps a minute: its cell is reliably mid-run when the runner is killed."""
    f = tmp_path / "slow_model.py"
    f.write_text(
        "import time\nfrom torch import nn\n\n\nclass SlowInit(nn.Module):\n"
        "    def __init__(self, scale: int = 4) -> None:\n        super().__init__()\n"
        "        time.sleep(60)\n"
    )
    return f"{f}:SlowInit"


def _cli_cell(name: str) -> Cell:
    """The cell ``effbench run`` makes of :func:`sweep_runs.run_argv`'s settings for the model ``name`` (a stored
    result is this cell's only when measured under exactly its settings)."""
    cfg = SweepConfig(
        models=[f"{MODELS}:{name}"], sizes=[(8, 8)], devices=["cpu"], repeats=2, threads=1, static=False
    )
    (cell,) = cfg.cells()
    return cell


def _ok_doc(cell: Cell, **fields) -> dict:
    return cell.new_result(metrics={"params": 12, "runtime_ms": {"median": 1.0}}, **fields)


def _fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for ``python -m effbench.sweep.worker CELL_JSON OUT_JSON``: no torch, fast."""
    f = tmp_path / "fake-python"
    f.write_text(
        f"#!{sys.executable}\nimport json, os, sys\ncell = json.loads(sys.argv[3])\nout = sys.argv[4]\n"
        "log = os.path.join(os.path.dirname(os.path.dirname(out)), 'runs.log')\n"
        "cid = os.path.basename(out)[:-5]\n"
        "open(log, 'a').write(f'2000-01-01T00:00:00 start {cid} pid={os.getpid()}\\n')\n" + body
    )
    f.chmod(0o755)
    return str(f)


_WRITES_OK = (
    "doc = {'schema': 'effbench.result/1', 'model': cid.split('-')[0], 'spec': cell['spec'],\n"
    "       'status': 'ok', 'error': None, 'metrics': {'params': 12}, 'cell_id': cid,\n"
    "       'created': '2001-01-01T00:00:00+00:00'}\n"
    "json.dump(doc, open(out, 'w'))\n"
)


# ----------------------------------------------------------------------------------------------- the lock


def test_a_second_runner_on_a_locked_out_refuses_naming_the_holder_and_finished_cells_stay(tmp_path: Path):
    out = tmp_path / "out"
    cell = sweep_cell("Nearest")
    write_json_atomic(out / "cells" / f"{cell.cell_id}.json", _ok_doc(cell))
    before = (out / "cells" / f"{cell.cell_id}.json").read_text()
    with OutputLock(out, command="the first runner"):
        done = subprocess.run(
            run_argv(out, [f"{MODELS}:Nearest"]), cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == LOCKED_RC, done.stdout + done.stderr
    assert f"PID {os.getpid()} on host {socket.gethostname()}" in done.stderr and "--wait" in done.stderr
    assert "Traceback" not in done.stderr and cell_starts(out) == []  # nothing ran, nothing was overwritten
    assert (out / "cells" / f"{cell.cell_id}.json").read_text() == before
    assert not (out / LOCK_NAME).exists()  # released by its holder


def test_wait_waits_for_the_holder_then_runs_and_a_bounded_wait_gives_up(tmp_path: Path):
    out = tmp_path / "out"
    cell = _cli_cell("Nearest")
    write_json_atomic(out / "cells" / f"{cell.cell_id}.json", _ok_doc(cell))
    holder = OutputLock(out, command="the first runner")
    holder.acquire()
    with pytest.raises(LockHeldError, match=rf"PID {os.getpid()} .*after waiting 0.3 s"):
        OutputLock(out, wait=0.3).acquire()
    waiter = subprocess.Popen(
        run_argv(out, [f"{MODELS}:Nearest"], "--resume", "--wait", "60"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = waiter.stderr.readline()  # the runner says it waits, and does: it is still running
        time.sleep(0.5)
        assert "waiting for the lock" in said and f"PID {os.getpid()}" in said and waiter.poll() is None
        holder.release()
        stdout, stderr = waiter.communicate(timeout=120)
    finally:
        holder.release()
        waiter.kill()
    assert waiter.returncode == 0, stdout + stderr
    assert "skipped 1 finished" in stdout and cell_starts(out) == []


def test_a_stale_lock_of_a_dead_runner_is_taken_over_and_said_so(tmp_path: Path, capfd):
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "cells").mkdir(parents=True)
    (out / LOCK_NAME).write_text(
        json.dumps(
            {
                "pid": dead.pid,
                "host": socket.gethostname(),
                "started": "2000-01-01T00:00:00+00:00",
                "command": "effbench run",
            }
        )
    )
    summary = run_sweep(
        [sweep_cell("Nearest")], out, progress=False, python=_fake_python(tmp_path, _WRITES_OK)
    )
    err = capfd.readouterr().err
    assert "taking over the stale lock" in err and f"PID {dead.pid} on host {socket.gethostname()}" in err
    assert summary["final"] == Counter(ok=1) and not (out / LOCK_NAME).exists()


# ----------------------------------------------------------------------------------------------- killing the runner


def test_sigkill_of_the_runner_leaves_no_cell_process_within_5_s(tmp_path: Path):
    out = tmp_path / "out"
    runner = subprocess.Popen(
        run_argv(out, [_slow_model(tmp_path)]), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(lambda: cell_starts(out), 60, "the cell process to start")
        ((_, cell_pid),) = cell_starts(out)
        assert _alive(cell_pid)
        runner.kill()  # SIGKILL: the runner runs no clean-up at all
        runner.wait()
        t0 = time.monotonic()
        _wait_for(lambda: not _alive(cell_pid), 5, f"cell process {cell_pid} to die with its runner")
        assert time.monotonic() - t0 < 5
        with OutputLock(out):  # the kernel dropped the dead runner's lock
            pass
    finally:
        runner.kill()
        for _, pid in cell_starts(out):  # a failed run of this test must not leave its orphan behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_of_the_runner_kills_the_cell_keeps_finished_cells_writes_the_table_rc_143(tmp_path: Path):
    out = tmp_path / "out"
    runner = subprocess.Popen(
        run_argv(out, [f"{MODELS}:Raises", _slow_model(tmp_path)]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: len(cell_starts(out)) == 2, 90, "the second (slow) cell to start")
        (first, _), (slow, cell_pid) = cell_starts(out)
        first_doc = json.loads((out / "cells" / f"{first}.json").read_text())
        runner.send_signal(signal.SIGTERM)
        stdout, stderr = runner.communicate(timeout=30)
    finally:
        runner.kill()
    assert runner.returncode == 143, stdout + stderr
    assert "terminated (SIGTERM)" in stderr and "Traceback" not in stderr
    assert not _alive(cell_pid)
    assert (
        json.loads((out / "cells" / f"{first}.json").read_text()) == first_doc
    )  # finished cell kept as it was
    assert not (out / "cells" / f"{slow}.json").exists()  # the killed cell is unfinished, not a fake failure
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and first_doc["model"] in rows[1]  # header + the one finished cell
    assert not (out / LOCK_NAME).exists()


# ----------------------------------------------------------------------------------------------- how cells die


def test_a_cell_killed_by_the_oom_killer_is_recorded_as_oom(tmp_path: Path, monkeypatch):
    counts = iter([{"memory.events": 4}, {"memory.events": 5}])
    monkeypatch.setattr(runner_mod, "oom_kill_count", lambda: next(counts))
    suicide = _fake_python(tmp_path, "os.kill(os.getpid(), 9)\n")
    summary = run_sweep([sweep_cell("Nearest")], tmp_path / "out", progress=False, python=suicide)
    (doc,) = load_results([tmp_path / "out" / "cells"])
    assert doc["status"] == "oom" and summary["status"] == Counter(oom=1)
    assert "signal 9" in doc["error"] and "OOM-kill counter went up" in doc["error"]


def test_a_sigkill_without_oom_evidence_says_died_with_signal_9_and_nothing_of_memory():
    status, what = death_reason(-9, OomEvidence({"/proc/vmstat": 3}, {"/proc/vmstat": 3}, 10 << 20, 8 << 30))
    assert status == "error" and "died with signal 9" in what and "memory" not in what
    status, what = death_reason(-9, OomEvidence({}, {}, peak_rss=int(7.8 * 2**30), limit=8 << 30))
    assert status == "oom" and "97% of the 8.00 GiB memory limit" in what
    assert death_reason(-11, OomEvidence({"x": 0}, {"x": 1}))[0] == "error"  # a segfault is not an OOM kill


# ----------------------------------------------------------------------------------------------- honest resume


def _seed(out: Path) -> dict[str, Cell]:
    """One cell per state: ok, error, timeout, empty {}, truncated JSON, wrong schema, never run."""
    names = ["Nearest", "Raises", "Hangs", "SlowA", "SlowB", "SlowC", "WrongShape"]
    cells = {n: sweep_cell(n) for n in names}
    path = {n: out / "cells" / f"{c.cell_id}.json" for n, c in cells.items()}
    write_json_atomic(path["Nearest"], _ok_doc(cells["Nearest"]))
    write_json_atomic(
        path["Raises"], _ok_doc(cells["Raises"], status="error", error="this model always fails")
    )
    write_json_atomic(path["Hangs"], _ok_doc(cells["Hangs"], status="timeout", error="no result after 8 s"))
    path["SlowA"].write_text("{}")
    path["SlowB"].write_text(json.dumps(_ok_doc(cells["SlowB"]))[:80])
    write_json_atomic(path["SlowC"], {**_ok_doc(cells["SlowC"]), "schema": "effbench.result/0"})
    return cells


def test_resume_reruns_exactly_the_failed_timed_out_empty_truncated_and_missing_cells(tmp_path: Path):
    out = tmp_path / "out"
    cells = _seed(out)
    ok_before = (out / "cells" / f"{cells['Nearest'].cell_id}.json").read_text()
    summary = run_sweep(
        list(cells.values()), out, resume=True, progress=False, python=_fake_python(tmp_path, _WRITES_OK)
    )
    started = Counter(cid for cid, _ in cell_starts(out))
    assert started == Counter({cells[n].cell_id: 1 for n in cells if n != "Nearest"})
    assert (out / "cells" / f"{cells['Nearest'].cell_id}.json").read_text() == ok_before
    why = summary["rerun"]
    assert why[cells["Raises"].cell_id].startswith("error") and why[cells["Hangs"].cell_id].startswith(
        "timeout"
    )
    assert "empty" in why[cells["SlowA"].cell_id] and "not valid JSON" in why[cells["SlowB"].cell_id]
    assert (
        "effbench.result/0" in why[cells["SlowC"].cell_id] and why[cells["WrongShape"].cell_id] == "missing"
    )
    assert summary["skipped"] == 1 and summary["final"] == Counter(ok=7)
    assert len((out / "results.csv").read_text().strip().splitlines()) == 1 + 7


def test_resume_keep_failed_reruns_only_unfinished_cells(tmp_path: Path):
    out = tmp_path / "out"
    cells = _seed(out)
    summary = run_sweep(
        list(cells.values()),
        out,
        resume="keep-failed",
        progress=False,
        python=_fake_python(tmp_path, _WRITES_OK),
    )
    assert Counter(cid for cid, _ in cell_starts(out)) == Counter(
        {cells[n].cell_id: 1 for n in ("SlowA", "SlowB", "SlowC", "WrongShape")}
    )
    assert summary["final"] == Counter(ok=5, error=1, timeout=1)
    with pytest.raises(ValueError, match="resume must be one of"):
        run_sweep(list(cells.values()), out, resume="everything", progress=False)


def test_run_exits_1_when_a_cell_of_the_sweep_is_not_ok_and_0_when_all_are(tmp_path: Path, capsys):
    out = tmp_path / "out"
    good, bad = _cli_cell("Nearest"), _cli_cell("Raises")
    write_json_atomic(out / "cells" / f"{good.cell_id}.json", _ok_doc(good))
    write_json_atomic(
        out / "cells" / f"{bad.cell_id}.json", _ok_doc(bad, status="error", error="always fails")
    )
    argv = run_argv(out, [f"{MODELS}:Nearest", f"{MODELS}:Raises"], "--resume=keep-failed")[3:]
    assert main(argv) == 1
    assert "1 of 2 cells are not ok (error 1)" in capsys.readouterr().err
    argv = run_argv(out, [f"{MODELS}:Nearest"], "--resume")[3:]
    assert main(argv) == 0 and cell_starts(out) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--resume", "sweep.toml"],
            "'sweep.toml' is not a resume mode (rerun-failed, keep-failed); put CONFIG.toml",
        ),
        (["--wait", "sweep.toml"], "'sweep.toml' is not a number of seconds; put CONFIG.toml before --wait"),
        (["--wait", "-1"], "--wait: must be a non-negative number of seconds, got -1"),
    ],
)
def test_bad_resume_and_wait_values_are_refused_before_anything_runs(argv: list[str], message: str, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- unreadable results


def test_validate_result_names_what_is_wrong():
    good = _ok_doc(sweep_cell("Nearest"))
    assert validate_result(good) is None
    assert "expected an object" in validate_result([good])
    assert "empty" in validate_result({})
    assert "no 'schema'" in validate_result({"model": "x"})
    assert "no 'status'" in validate_result({k: v for k, v in good.items() if k != "status"})
    assert "'metrics' is a list" in validate_result({**good, "metrics": []})


def test_a_duplicated_cell_gives_one_row(tmp_path: Path, caplog):
    cell = sweep_cell("Nearest")
    old, new = (
        _ok_doc(cell, created="2020-01-01T00:00:00+00:00"),
        _ok_doc(cell, created="2021-01-01T00:00:00+00:00"),
    )
    write_json_atomic(tmp_path / "cells" / "a.json", new)
    write_json_atomic(tmp_path / "cells" / "b.json", old)
    with caplog.at_level(logging.WARNING, "effbench.results"):
        docs = load_results([tmp_path, tmp_path / "cells" / "a.json"])
    assert [d["created"] for d in docs] == [new["created"]]
    assert "appears twice" in caplog.text and "b.json" in caplog.text


def _corrupt_folder(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "results"
    models = [("RLFN", 13.54, 19.70e9, 0.317e6), ("Mine", 10.0, 10e9, 0.2e6)]
    for name, ms, flops, params in models:
        doc = new_result(
            name,
            scale=4,
            input_shape=[1, 3, 256, 256],
            device="cpu",
            dtype="fp32",
            metrics={
                "runtime_ms": {"median": ms, "samples": [ms] * 5},
                "flops": flops,
                "params": params,
                "psnr": 27.0,
            },
        )
        write_json_atomic(folder / f"{name}.json", doc)
    bad = folder / "truncated.json"
    bad.write_text(json.dumps(new_result("Gone", scale=4, metrics={"params": 1}))[:60])
    return folder, bad


@pytest.mark.parametrize("command", ["report", "score", "gate"])
def test_a_corrupt_result_file_is_named_and_skipped_or_with_strict_refused(
    command: str, tmp_path: Path, caplog, capsys
):
    folder, bad = _corrupt_folder(tmp_path)
    argv = {
        "report": ["report", str(folder), "--out", str(tmp_path / "rep"), "--no-figures", "--format", "md"],
        "score": ["score", str(folder), "--year", "2024", "--baseline", "RLFN"],
        "gate": ["gate", "--baseline", str(folder), "--current", str(folder)],
    }[command]
    with caplog.at_level(logging.WARNING, "effbench.results"):
        assert main(argv) == 0
    assert f"skipping unreadable results file {bad}" in caplog.text and "not valid JSON" in caplog.text
    out = capsys.readouterr().out
    assert "Mine" in (out if command != "report" else (tmp_path / "rep" / "report.md").read_text())
    assert main([*argv, "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"unreadable results file {bad}" in err and "JSONDecodeError" not in err
    with pytest.raises(UnreadableResultError, match="truncated.json"):
        load_results([folder], strict=True)


def test_the_cli_prints_the_skipped_file_on_stderr_without_a_traceback(tmp_path: Path):
    folder, bad = _corrupt_folder(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "effbench", "score", str(folder), "--year", "2024"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"skipping unreadable results file {bad}" in done.stderr and "Traceback" not in done.stderr

"""Process ownership: whatever a piece of model code starts is found and killed when that code is done.

A process that runs model code (a sweep cell's worker, a single command's child) may fork, or start a child in
a new session (``start_new_session=True``, ``setsid``) that a process-group kill does not reach. The owner of such
a process marks itself a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): every orphaned descendant
is then re-parented to the owner instead of to init, so that :func:`kill_descendants` finds them all, whatever
session or group they moved to, and kills them until none is left.

``python -m effbench.base.procs REPORT_JSON -- ARGV...`` is the supervisor every sweep and challenge cell runs
under (:mod:`effbench.sweep.supervise`): it runs ``ARGV`` in its own process group, waits for it, kills what it
left behind and writes ``{"worker_pid", "returncode", "killed"}`` to ``REPORT_JSON``; it exits with the worker's
code (128 + N for signal N). SIGTERM (from the runner,
or as the parent-death signal when the runner dies) makes it kill the worker and everything it started first.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["become_subreaper", "child_pids", "describe", "kill_descendants", "set_parent_death_signal"]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_LINUX = sys.platform.startswith("linux")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where the host does not allow it."""
    return _LINUX and _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def set_parent_death_signal(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux; a no-op elsewhere)."""
    if _LINUX:
        _libc().prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, pgrp, session, ...)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def child_pids(pid: int | None = None) -> list[int]:
    """The live or unreaped children of ``pid`` (default: this process), read from ``/proc``."""
    pid = os.getpid() if pid is None else pid
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(int(name))) is not None and int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def describe(pid: int) -> dict[str, Any]:
    """``{"pid", "command", "process_group", "session"}`` of a process (what a result records of one it killed)."""
    fields = _stat(pid)
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    info: dict[str, Any] = {"pid": pid, "command": cmd[:300]}
    if fields is not None:
        info["process_group"], info["session"] = int(fields[2]), int(fields[3])
    return info


def kill_descendants(exclude: Sequence[int] = (), timeout: float = 10.0) -> list[dict[str, Any]]:
    """SIGKILL every child of this process but ``exclude``, and, as a subreaper, every descendant re-parented to
    it as those die, until none is left (or ``timeout`` seconds pass); reap them. Returns what was killed
    (:func:`describe`, plus ``"how"``: why it was not caught by a process-group kill)."""
    me = os.getpid()
    killed: list[dict[str, Any]] = []
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [k for k in child_pids(me) if k not in exclude]
        if not kids:
            break
        for pid in kids:
            if pid not in seen:
                seen.add(pid)
                info = describe(pid)
                own = info.get("session") in (None, os.getsid(0))
                info["how"] = "left running" if own else "left running in a session of its own"
                killed.append(info)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
        for pid in kids:  # reap the dead without blocking: one stuck in the kernel must not hang us
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    return killed


def _supervise(report: Path, argv: list[str]) -> int:
    """The supervisor's body (see the module's docstring)."""
    become_subreaper()
    state: dict[str, Any] = {"worker_pid": None, "returncode": None, "killed": [], "terminated": False}

    def write() -> None:
        tmp = report.with_name(f".{report.name}.tmp")
        try:
            tmp.write_text(json.dumps(state))
            os.replace(tmp, report)
        except OSError:  # a full disk: the exit status still says how the worker ended
            tmp.unlink(missing_ok=True)

    def terminate(signum: int, frame: FrameType | None) -> None:
        state["terminated"] = True
        if state["worker_pid"] is not None:
            try:  # its descendants are re-parented to us and killed with the rest below
                os.kill(state["worker_pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which tells us with SIGTERM

    def preexec() -> None:
        os.setpgid(0, 0)
        set_parent_death_signal(signal.SIGKILL)

    worker = subprocess.Popen(argv, preexec_fn=preexec)
    state["worker_pid"] = worker.pid
    write()
    if state["terminated"]:
        terminate(signal.SIGTERM, None)
    rc = worker.wait()
    state["returncode"] = rc
    state["killed"] = kill_descendants()  # its descendants were re-parented to us when it ended
    write()
    return rc if rc >= 0 else 128 - rc


def main(argv: list[str] | None = None) -> int:
    """``python -m effbench.base.procs REPORT_JSON -- ARGV...``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m effbench.base.procs REPORT_JSON -- ARGV...", file=sys.stderr)
        return 2
    return _supervise(Path(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main())

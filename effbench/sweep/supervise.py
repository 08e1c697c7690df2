"""Supervised cell processes: nothing they start outlives them, they die with their runner, and a kernel OOM
kill is told from other deaths.

A cell process runs under a small supervisor (``python -m effbench.base.procs``, :mod:`effbench.base.procs`), in
a session of its own: the supervisor is a child subreaper, so every process the cell starts (forked, in its
process group or in a new session) is re-parented to it when orphaned, and after the cell ends, however it ended,
the supervisor kills whatever is left and reports what (the result's ``killed_processes``). On Linux the
supervisor gets SIGTERM when the runner dies (``prctl(PR_SET_PDEATHSIG)``) and the cell SIGKILL when the
supervisor dies, so that even a SIGKILL of the runner, which runs no clean-up, takes the cell down with it.

A cell that dies of SIGKILL the runner did not send was most likely killed by the OOM killer; it is recorded as
``oom`` when the kernel's OOM-kill counters (the cgroup's ``memory.events`` / ``memory.oom_control`` and the
system's ``/proc/vmstat``) went up while it ran, or when its peak resident memory reached 90% of the memory limit.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OomEvidence",
    "death_reason",
    "kill_group",
    "memory_limit_bytes",
    "oom_kill_count",
    "peak_rss_bytes",
    "read_report",
    "start_supervised",
]

_PR_SET_PDEATHSIG = 1
_NEAR_LIMIT = 0.9


def _pdeathsig_preexec(parent: int, sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get ``sig`` when ``parent`` dies (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child only calls into it

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the runner died between fork and prctl: nobody would reap us
            os._exit(1)

    return preexec


def start_supervised(
    argv: Sequence[str], *, log: IO[str], env: dict[str, str], report: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` under the cell supervisor (``python -m effbench.base.procs``) in a new session, output to
    ``log``: the supervisor owns everything ``argv`` starts (a subreaper), kills what is left when it ends and
    writes what it killed to ``report`` (:func:`read_report`); it gets SIGTERM if this process dies."""
    preexec = _pdeathsig_preexec(os.getpid(), signal.SIGTERM) if sys.platform.startswith("linux") else None
    return subprocess.Popen(
        [sys.executable, "-m", "effbench.base.procs", str(report), "--", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=preexec,
    )


def read_report(report: Path) -> dict[str, Any]:
    """What the supervisor wrote: ``worker_pid``, ``returncode`` (None until the worker ended) and ``killed``
    (what the cell left running, killed after it); ``{}`` before it wrote anything."""
    try:
        return json.loads(report.read_text())
    except (OSError, ValueError):
        return {}


def kill_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a supervised cell now: SIGTERM its supervisor, which kills the cell and everything it started, and
    reap it; past ``grace`` seconds, SIGKILL the supervisor's process group."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _cgroup_dirs() -> list[tuple[str, Path]]:
    """(version, folder) of this process's memory cgroup, most specific first."""
    dirs: list[tuple[str, Path]] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return dirs
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            base = Path("/sys/fs/cgroup")
            dirs += [("v2", base / rel.lstrip("/")), ("v2", base)]
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory")
            dirs += [("v1", base / rel.lstrip("/")), ("v1", base)]
    return [(v, d) for v, d in dict.fromkeys(dirs) if d.is_dir()]


def _read_key(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            words = line.split()  # "oom_kill 3", "MemTotal:   24683772 kB"
            if len(words) >= 2 and words[0] == key:
                return int(words[1])
    except (OSError, ValueError):
        return None
    return None


def oom_kill_count() -> dict[str, int]:
    """The OOM-kill counters this process can read, by source (cgroup files and ``/proc/vmstat``)."""
    counts: dict[str, int] = {}
    for version, d in _cgroup_dirs():
        f = d / ("memory.events" if version == "v2" else "memory.oom_control")
        if (n := _read_key(f, "oom_kill")) is not None:
            counts.setdefault(str(f), n)
    if (n := _read_key(Path("/proc/vmstat"), "oom_kill")) is not None:
        counts["/proc/vmstat"] = n
    return counts


def memory_limit_bytes() -> int | None:
    """The memory a process here may use: the tightest cgroup limit, else the machine's RAM."""
    limits = []
    for version, d in _cgroup_dirs():
        try:
            text = (d / ("memory.max" if version == "v2" else "memory.limit_in_bytes")).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # v1 writes a huge number, v2 "max", for no limit
            limits.append(int(text))
    total = _read_key(Path("/proc/meminfo"), "MemTotal:")
    if total is not None:
        limits.append(total * 1024)
    return min(limits) if limits else None


def peak_rss_bytes(pid: int) -> int | None:
    """The peak resident memory of a live process (``VmHWM``), None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class OomEvidence:
    """What was seen of memory while a cell ran: OOM counters before and after, its peak RSS, the limit."""

    before: dict[str, int]
    after: dict[str, int]
    peak_rss: int | None = None
    limit: int | None = None

    def reason(self) -> str | None:
        """Why this looks like an OOM kill, or None when nothing says so."""
        grew = [src for src, n in self.after.items() if n > self.before.get(src, n)]
        if grew:
            return f"the kernel's OOM-kill counter went up while the cell ran ({', '.join(grew)})"
        if self.peak_rss is not None and self.limit and self.peak_rss >= _NEAR_LIMIT * self.limit:
            return (
                f"its peak resident memory {self.peak_rss / 2**30:.2f} GiB reached "
                f"{self.peak_rss / self.limit:.0%} of the {self.limit / 2**30:.2f} GiB memory limit"
            )
        return None


def death_reason(returncode: int, evidence: OomEvidence) -> tuple[str, str]:
    """``(status, sentence)`` for a cell process that exited with ``returncode`` (< 0: killed by a signal)."""
    if returncode >= 0:
        return "error", f"the cell process exited with code {returncode} and wrote no result"
    sig = -returncode
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    what = f"the cell process died with signal {sig} ({name})"
    if sig == signal.SIGKILL and (why := evidence.reason()):
        return "oom", f"{what}, not sent by effbench: killed for memory (out of memory): {why}"
    return "error", what

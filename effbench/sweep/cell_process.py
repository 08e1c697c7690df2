"""One cell of a sweep as a supervised process: :class:`CellProcess` (``python -m WORKER CELL_JSON OUT_JSON``),
what a cell must offer to be run (:class:`SweepCell`) and how a result file left by a cell is read
(:func:`cell_state`). Every executor (:mod:`effbench.sweep.executors`) starts its cells through :class:`CellProcess`,
so a result does not depend on which executor ran it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..base.results import validate_result
from .supervise import (
    OomEvidence,
    death_reason,
    kill_group,
    memory_limit_bytes,
    oom_kill_count,
    peak_rss_bytes,
    read_report,
    start_supervised,
)

__all__ = ["CellProcess", "SweepCell", "cell_state"]

_PKG_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_POLL_S = 0.2


class SweepCell(Protocol):
    """What the runner, the executors and the progress bar need of a cell: a sweep's
    :class:`~effbench.sweep.config.Cell`, a challenge's entry cell or any other kind.

    :attr:`worker` is the module its process runs (``python -m WORKER CELL_JSON OUT_JSON``), :attr:`cell_id` names
    its result file, :attr:`label` is what the progress bar shows, :attr:`device` where it is timed and
    :attr:`device_free` whether it times nothing (executors run such cells side by side); :meth:`to_dict` is the
    JSON its process gets and :meth:`new_result` a result document for it (a failure the runner records)."""

    worker: ClassVar[str]

    @property
    def cell_id(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def device(self) -> str: ...

    @property
    def device_free(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...

    def new_result(self, **fields: Any) -> dict[str, Any]: ...


def cell_state(path: Path) -> tuple[str, str | None]:
    """``(status, reason)`` of a cell result file: its status when it is a valid document, else ``missing`` or
    ``unreadable`` with the reason."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "missing", None
    except OSError as exc:
        return "unreadable", str(exc)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return "unreadable", f"not valid JSON ({exc})"
    problem = validate_result(doc)
    return ("unreadable", problem) if problem else (doc["status"], doc.get("error"))


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _failure_doc(cell: SweepCell, status: str, error: str) -> dict[str, Any]:
    return cell.new_result(convention=None, status=status, error=error)


def _stamp(path: Path) -> tuple[int, int] | None:
    """Identity of the file at ``path`` (inode, mtime): an atomic rewrite changes it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    parts = [_PKG_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


class CellProcess:
    """One supervised cell process (``python -m WORKER CELL_JSON OUT/cells/<cell_id>.json``, output in
    ``OUT/logs/<cell_id>.log``), started at construction and then :meth:`poll` ed until it ends or its
    ``timeout`` passes (it is killed then). :attr:`failure` is its failure document when it left no valid result;
    :attr:`killed` lists the processes it left running, killed after it (:mod:`effbench.base.procs`)."""

    def __init__(self, cell: SweepCell, out: Path, timeout: float | None, python: str) -> None:
        self.cell = cell
        self.result = out / "cells" / f"{cell.cell_id}.json"
        self.failure: dict[str, Any] | None = None
        self.killed: list[dict[str, Any]] = []
        self._timeout = timeout
        # a rerun: the old document must not pass for the new one, nor be lost if interrupted
        self._old = _stamp(self.result)
        self._oom_before = oom_kill_count()
        self._peak: int | None = None
        self._worker: int | None = None
        self._log = out / "logs" / f"{cell.cell_id}.log"
        self._report = out / "logs" / f".{cell.cell_id}.procs.json"
        self._report.unlink(missing_ok=True)
        self._logf = open(self._log, "w")
        try:
            self._proc = start_supervised(
                [python, "-m", cell.worker, json.dumps(cell.to_dict()), str(self.result)],
                log=self._logf,
                env=_child_env(),
                report=self._report,
            )
        except BaseException:
            self._logf.close()
            raise
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def wait_s(self) -> float:
        """How long to sleep before the next :meth:`poll` (never past the deadline)."""
        return (
            _POLL_S if self._deadline is None else max(0.0, min(_POLL_S, self._deadline - time.monotonic()))
        )

    def _ended(self) -> int:
        """The cell's exit status (negative: its signal), from the supervisor's report; records what it killed."""
        report = read_report(self._report)
        self._report.unlink(missing_ok=True)
        self.killed = list(report.get("killed") or [])
        rc = report.get("returncode")
        if rc is None:  # no report (the disk is full): the supervisor's code says 128 + N for signal N
            rc = self._proc.returncode
            return -(rc - 128) if rc > 128 else rc
        return int(rc)

    def poll(self) -> bool:
        """True once the process has ended (or was killed at its timeout); :attr:`failure` is then final."""
        if self._proc.poll() is None:
            if self._worker is None:
                self._worker = read_report(self._report).get("worker_pid")
            if self._worker is not None:
                self._peak = peak_rss_bytes(self._worker) or self._peak
            if self._deadline is None or time.monotonic() < self._deadline:
                return False
            self.kill()
            self.failure = _failure_doc(
                self.cell,
                "timeout",
                f"no result after {self._timeout:g} s (per-cell timeout); process killed",
            )
            return True
        self._logf.close()
        rc = self._ended()
        status, _ = cell_state(self.result)
        if _stamp(self.result) != self._old and status not in ("missing", "unreadable"):
            return True
        evidence = OomEvidence(self._oom_before, oom_kill_count(), self._peak, memory_limit_bytes())
        status, what = death_reason(rc, evidence)
        tail = _tail(self._log)
        if status == "error" and "out of memory" in tail.lower():
            status = "oom"
        self.failure = _failure_doc(self.cell, status, f"{what}; last output:\n{tail}" if tail else what)
        return True

    def document(self) -> dict[str, Any]:
        """The cell's result document once :meth:`poll` said it ended: its failure document or the one it wrote,
        with ``killed_processes`` when it left processes running."""
        doc = self.failure if self.failure is not None else json.loads(self.result.read_text())
        if self.killed:
            doc["killed_processes"] = [*(doc.get("killed_processes") or []), *self.killed]
        return doc

    def kill(self) -> None:
        """Kill the cell and everything it started (Ctrl-C, SIGTERM of the runner, its timeout)."""
        kill_group(self._proc)
        self._logf.close()
        self._ended()

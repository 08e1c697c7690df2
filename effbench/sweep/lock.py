"""An exclusive lock on a sweep's output folder: ``OUT/.effbench.lock``.

The lock is an ``fcntl.flock`` on that file, so the kernel drops it when its holder dies, however it dies. The
file's content says who holds it (PID, host, start time, command) and is what a refused runner reports. A lock
file left behind by a holder that was killed (SIGKILL, power loss) is free to take: the next runner takes it over
and says whose it was on stderr.

A runner that finds the folder locked either refuses at once (:class:`LockHeldError`, exit code 3) or, with
``wait``, polls until the holder is done or the wait runs out.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from ..base.errors import EffbenchError, UsageError, output_error

__all__ = ["LOCK_NAME", "LockHeldError", "OutputLock", "read_lock_info"]

LOCK_NAME = ".effbench.lock"
_POLL_S = 0.25


class LockHeldError(EffbenchError):
    """Another runner holds the output folder's lock (CLI exit code 3: busy, try again later or ``--wait``)."""

    exit_code = 3


def read_lock_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The holder description written in a lock file (``{}`` when it is empty or unreadable)."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict[str, Any]) -> str:
    if not info:
        return "an unknown process (the lock file names no holder)"
    text = f"PID {info.get('pid', '?')} on host {info.get('host', '?')}"
    if info.get("started"):
        text += f", since {info['started']}"
    if info.get("command"):
        text += f" ({info['command']})"
    return text


class OutputLock:
    """Hold ``OUT/.effbench.lock`` for the duration of a ``with`` block (released on every exit path).

    ``wait``: ``None`` refuses at once when the folder is locked; a number of seconds (``math.inf`` for no
    limit) polls until the lock is free or the wait is over, then refuses.
    """

    def __init__(
        self, out: str | os.PathLike[str], *, wait: float | None = None, command: str | None = None
    ) -> None:
        if wait is not None and (math.isnan(wait) or wait < 0):
            raise ValueError(f"wait must be a non-negative number of seconds, got {wait}")
        self.path = Path(out) / LOCK_NAME
        self.wait = wait
        self.command = command if command is not None else " ".join(sys.argv)
        self._fd: int | None = None

    def _try_once(self) -> int | None:
        """Open and flock the lock file without blocking; the locked descriptor, or None when it is held."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        try:  # the holder before us may have unlinked the file after we opened it: lock the file on disk
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try_once()
        return fd

    def acquire(self) -> None:
        """Take the lock (see the class docstring for ``wait``); raises :class:`LockHeldError` when refused."""
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--out {folder} is a file, not a folder: give a folder for the results")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"--out {folder}: a part of that path is a file, not a folder") from None
        except OSError as exc:
            raise output_error(exc, folder) or UsageError(
                f"--out {folder}: cannot create it ({exc})"
            ) from None
        deadline = None if self.wait is None else time.monotonic() + self.wait
        said_waiting = False
        while (fd := self._try_once()) is None:
            holder = _describe(read_lock_info(self.path))
            if deadline is None or time.monotonic() >= deadline:
                waited = "" if self.wait is None else f" after waiting {self.wait:g} s"
                raise LockHeldError(
                    f"{self.path.parent} is in use by another effbench runner: {holder}{waited}. "
                    f"Wait for it (--wait [SECONDS]) or use another --out."
                )
            if not said_waiting:
                print(
                    f"effbench: waiting for the lock on {self.path.parent} held by {holder}", file=sys.stderr
                )
                said_waiting = True
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
        previous = read_lock_info(self.path)
        if previous:  # a holder that released cleanly empties the file: this one died holding it
            print(
                f"effbench: taking over the stale lock on {self.path.parent} left by {_describe(previous)} "
                f"(that process is gone)",
                file=sys.stderr,
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": self.command,
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise output_error(exc, self.path) or exc from None
        self._fd = fd

    def release(self) -> None:
        """Drop the lock and remove the lock file (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiter re-checks the inode it locked
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

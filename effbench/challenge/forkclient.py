"""The command of a forked challenge cell: ``python -m effbench.challenge.forkclient CELL_JSON OUT_JSON``.

Imports no torch (it starts in milliseconds): it asks the cell's fork server
(:mod:`effbench.challenge.forkserver`, named by the cell's ``fork_server``) to fork the cell's worker with this
process's stdout and stderr, waits for it and exits as it did (its exit code, or its signal raised again), so
the supervisor and the runner see the outcome of a fresh cell process. When this process is killed, the forked
cell notices and exits with everything it started. Without a server to reach, it becomes the cell's worker
itself (``exec``), as a cell without a fork server runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m effbench.challenge.forkclient CELL_JSON OUT_JSON", file=sys.stderr)
        return 2
    path = json.loads(argv[0]).get("fork_server")
    if not path:
        print("forkclient: the cell names no fork_server", file=sys.stderr)
        return 2
    request = {"argv": argv, "client_pid": os.getpid(), "cwd": os.getcwd(), "env": dict(os.environ)}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:  # no server (it died, or was never started): be the cell's fresh process instead
        print(
            f"forkclient: no fork server at {path} ({exc}); running the cell in this process", file=sys.stderr
        )
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "effbench.challenge.entry_process", *argv])
    try:
        socket.send_fds(sock, [json.dumps(request).encode()], [sys.stdout.fileno(), sys.stderr.fileno()])
        reply = sock.makefile("rb")
        rc: int | None = None
        for line in reply:
            msg = json.loads(line)
            if "returncode" in msg:
                rc = int(msg["returncode"])
                break
    except OSError as exc:
        print(f"forkclient: the fork server at {path} failed: {exc}", file=sys.stderr)
        return 1
    if rc is None:
        print(f"forkclient: the fork server at {path} ended before the cell did", file=sys.stderr)
        return 1
    if rc < 0:  # the cell died of a signal: die of it too, so the runner reads the same death
        sys.stdout.flush()
        if -rc not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught: no handler to reset
            signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())

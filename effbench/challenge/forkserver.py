"""A warm process that forks challenge cells, so a cell stops paying for starting Python and importing torch.

Most of a static + memory cell used to be process start: a fresh interpreter importing torch, effbench's
counting and memory code and fvcore. :class:`ForkServer` starts one process (``python -m
effbench.challenge.forkserver SOCKET``) that imports all of that once and never runs a tensor op, then forks one
child per cell. Each entry still runs alone, in a process of its own:

- the sweep runner starts the cell as before (the supervisor ``effbench.base.procs``, a process group, the
  per-cell timeout), but the command is the light client ``python -m effbench.challenge.forkclient CELL OUT``
  (no torch import), which hands the server its cell, its stdout/stderr (``SCM_RIGHTS``) and its PID;
- the server forks; the child starts a new session (its own process group), becomes the subreaper of what it
  starts, watches the client and exits with everything it started when the client dies (the supervisor killing
  the cell at its timeout, the runner dying), else runs the cell's worker and kills what is left after it;
- the server sends the child's PID when it starts and its exit status when it ends; the client exits with that
  status (re-raising the child's signal), so the runner sees a fresh process's outcome: a crash, an OOM kill
  (SIGKILL) or a timeout of one entry touches no other.

An entry's model code is imported only in its own child: the server imports torch, effbench and the libraries a
finished cell reports it imported lazily (fake tensors, fvcore's tracer), never a model nor a stand-in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ForkServer", "serve"]

_READY = b"ready\n"
#: what the server imports once, before it forks any cell
_PRELOAD = (
    "torch",
    "torch.nn.functional",
    "torch._subclasses.fake_tensor",
    "torch.utils.flop_counter",
    "torch._dynamo",  # what a dispatch mode imports on first use (several seconds)
    "torch.fx.experimental.symbolic_shapes",
    "effbench.challenge.entry_process",
    "effbench.challenge.harness",
    "effbench.challenge.counts",
    # the registered measurements, in the registry's order of its built-in modules (a cell queries the table)
    "effbench.base.measurement",
    "effbench.counting.units",
    "effbench.memory.units",
    "effbench.timing.units",
    "effbench.challenge.units",
    "effbench.counting.profile",
    "effbench.counting.conventions",
    "effbench.memory",
    "effbench.memory.lifetime",
    "effbench.zoo.spec",
    "effbench.zoo.weights",
    "effbench.base.env",
    "effbench.base.stand_ins",
    "effbench.base.stand_ins.ops",
    "effbench.sweep.worker",
    "fvcore.nn",
    "numpy",
)


def _preload() -> None:
    import importlib

    for name in _PRELOAD:
        with contextlib.suppress(
            Exception
        ):  # an optional one (fvcore) missing: its cells import it themselves
            importlib.import_module(name)
    with contextlib.suppress(Exception):  # conventions register on first lookup: do it once here
        from ..counting.conventions import convention_names

        convention_names()


def _watch_client(client_pid: int) -> None:
    """In a forked cell: exit (with everything the cell started) as soon as the client that asked for it is gone."""

    def watch() -> None:
        while True:
            try:
                os.kill(client_pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            time.sleep(0.2)
        with contextlib.suppress(Exception):
            from ..base.procs import kill_descendants

            kill_descendants(timeout=2.0)
        os._exit(137)

    threading.Thread(target=watch, daemon=True).start()


def _run_child(
    request: dict[str, Any], fds: list[int], listener: socket.socket, preloaded: frozenset[str]
) -> None:
    """The forked cell's body; never returns."""
    code = 1
    try:
        listener.close()
        os.setsid()  # its own session and process group, as a fresh cell process
        for fd, target in zip(fds, (1, 2), strict=False):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from ..base.procs import become_subreaper, kill_descendants, set_parent_death_signal

        set_parent_death_signal(signal.SIGKILL)  # the server gone: nobody would reap us
        become_subreaper()
        _watch_client(int(request["client_pid"]))
        os.environ.update(request.get("env") or {})
        if request.get("cwd"):
            os.chdir(request["cwd"])
        from .entry_process import main

        try:
            code = int(main(list(request["argv"])) or 0)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        killed = kill_descendants(timeout=5.0)
        if killed:  # the result names what the cell left running, as a supervised cell's does
            from ..sweep.worker import record_killed

            record_killed(Path(request["argv"][1]), killed)
        _report_imports(request.get("modules_file"), preloaded)
    finally:
        os._exit(code)


def _library_roots() -> tuple[str, ...]:
    """Where the modules the server may import live: the standard library, installed packages, effbench (never
    an entry's repository, nor effbench's stand-ins for CUDA packages)."""
    import sysconfig

    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parents[1]))
    return tuple(sorted(roots))


def _report_imports(path: str | None, preloaded: frozenset[str]) -> None:
    """In a forked cell, after it ran: the library modules it imported that the server has not (lazy imports of
    torch's fake tensors, fvcore's tracer...), for the server to import before the next fork."""
    if not path:
        return
    roots = _library_roots()
    stand_ins = str(Path(__file__).resolve().parents[1] / "base" / "stand_ins" / "site")
    names = []
    for name, mod in list(sys.modules.items()):
        f = str(getattr(mod, "__file__", "") or "")
        if name not in preloaded and f.startswith(roots) and not f.startswith(stand_ins):
            names.append(name)
    with contextlib.suppress(OSError):
        Path(path).write_text("\n".join(names))


def _import_reported(path: Path) -> None:
    """In the server: import what a finished cell reported (:func:`_report_imports`)."""
    import importlib

    try:
        names = path.read_text().split()
        path.unlink()
    except OSError:
        return
    for name in names:
        if name not in sys.modules:
            with contextlib.suppress(BaseException):
                importlib.import_module(name)


def serve(path: str) -> int:
    """The server's loop (``python -m effbench.challenge.forkserver SOCKET``): preload, listen, fork per request,
    report each child's PID and exit status to its client. Ends on SIGTERM or when its parent dies."""
    from ..base.procs import set_parent_death_signal

    set_parent_death_signal(signal.SIGTERM)
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    children: dict[int, tuple[socket.socket, Path]] = {}
    sys.stdout.buffer.write(_READY)
    sys.stdout.flush()
    while not stop.is_set():
        for _key, _ in sel.select(timeout=0.05):
            conn, _addr = listener.accept()
            try:
                msg, fds, _flags, _ = socket.recv_fds(conn, 1 << 20, 4)
                request = json.loads(msg.decode())
            except (OSError, ValueError):
                conn.close()
                continue
            request["modules_file"] = f"{path}.{len(children)}.{time.monotonic_ns()}.modules"
            pid = os.fork()
            if pid == 0:
                sel.close()
                for c, _ in children.values():
                    c.close()
                _run_child(request, list(fds), listener, frozenset(sys.modules))
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            children[pid] = (conn, Path(request["modules_file"]))
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            entry = children.pop(pid, None)
            if entry is None:
                continue
            conn, modules = entry
            rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"returncode": rc}).encode() + b"\n")
            conn.close()
            _import_reported(modules)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    listener.close()
    with contextlib.suppress(OSError):
        os.unlink(path)
    return 0


class ForkServer:
    """``with ForkServer(out, env) as server: ...``: a running fork server for the cells writing to ``out``;
    :attr:`path` is its socket (give it to the cells: :class:`~effbench.challenge.cells.EntryCell`
    ``fork_server``). It stops when the block ends."""

    def __init__(self, out: str | Path, env: dict[str, str] | None = None) -> None:
        # one socket per output folder (which one runner at a time holds), the same on every run: a cell's
        # settings, which --resume compares, stay the same (and a Unix socket's path must stay short)
        digest = hashlib.sha1(str(Path(out).resolve()).encode()).hexdigest()[:16]
        self.path = str(Path(tempfile.gettempdir()) / f"effbench-fork-{digest}.sock")
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ForkServer:
        with contextlib.suppress(OSError):  # left by a runner that was killed
            os.unlink(self.path)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "effbench.challenge.forkserver", self.path],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=self._env,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # blocks until it has imported everything and listens
        if line != _READY:
            self.__exit__()
            raise RuntimeError(f"the challenge fork server did not start (it said {line!r})")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))

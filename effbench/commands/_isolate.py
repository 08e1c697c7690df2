"""Single commands run model code where it can be killed: :func:`run_isolated`.

``profile``, ``bench``, ``memory``, ``eval`` and ``psd`` run their work in a forked process, judged as sweep cells
are: a model that ends that process (``sys.exit``, ``os._exit``, a signal) is a
:class:`~effbench.base.errors.ModelExitedError` (exit code 6) whatever code it exited with; ``--timeout`` is a
hard limit (past it the process and everything it started are killed: exit code 4, even for a model that swallows
every exception); whatever the model left running is killed when the work ends and named on stderr.

The fork is supervised like a sweep cell (:mod:`effbench.base.procs`): a small supervisor process, a child
subreaper, forks the worker and kills what is left after it. The worker runs the command in a new thread (a
thread of a forked process gets a fresh OpenMP thread pool; the main thread's pool is the parent's and would hang)
and sends its outcome back through a pipe; its stdout and stderr come back through pipes too, into this process's
streams (so a ``--json`` document still goes to the real stdout). Without ``fork`` (Windows), or in a process
that has already initialised CUDA (a forked child cannot use it: a test session, a notebook), the work runs here
under the ``SIGALRM`` guard of :func:`effbench.base.timeout.time_limit` (a soft limit) and a ``sys.exit`` of the
model is still an error; the ``effbench`` command itself initialises nothing of CUDA before it forks.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..base.errors import EffbenchError, ModelExitedError
from ..base.procs import become_subreaper, kill_descendants, set_parent_death_signal
from ..base.timeout import MeasurementTimeout, time_limit
from ._output import Output

__all__ = ["run_isolated"]

_GRACE_S = 5.0


def run_isolated(work: Callable[[], int], *, what: str, timeout: float | None, output: Output) -> int:
    """Run ``work()`` (a command's body, returning its exit code) in a supervised forked process and return its
    code; its :class:`EffbenchError` is raised here, so is :class:`ModelExitedError` when the model's code ended
    the process, and :class:`MeasurementTimeout` ("``what`` timed out after N s") past ``timeout`` seconds.
    ``output`` is the command's (``args.output``): with ``json`` set, what the work writes to its ``document``
    comes out on this process's document stream and everything else it prints on stderr."""
    if not hasattr(os, "fork") or _cuda_initialised():
        return _in_process(work, what=what, timeout=timeout)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    for stream in (sys.stdout, sys.stderr, output.document):
        stream.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the supervisor; it never returns
        os.close(out_r)
        os.close(err_r)
        os.close(st_r)
        _supervisor(parent, work, output, out_w, err_w, st_w)
    for fd in (out_w, err_w, st_w):
        os.close(fd)
    try:
        messages = _pump(
            pid, out_r, err_r, st_r, output, None if timeout is None else time.monotonic() + timeout
        )
    except BaseException:  # Ctrl-C here, or a failure to copy the output: the work goes too
        _stop(pid)
        raise
    if messages is None:
        _stop(pid)
        raise MeasurementTimeout(f"{what} timed out after {timeout:g} s; it was killed")
    _wait(pid)
    return _outcome(messages, what)


def _cuda_initialised() -> bool:
    """True when this process has initialised CUDA (a forked child could not use it): the work runs here then."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _in_process(work: Callable[[], int], *, what: str, timeout: float | None) -> int:
    """The fallback without a fork (no ``fork``, or CUDA already initialised here): the ``SIGALRM`` guard (a soft
    limit), and a model's ``sys.exit`` still judged as an error."""
    try:
        with time_limit(timeout, what):
            return work()
    except SystemExit as exc:
        raise ModelExitedError(
            f"{what} did not finish: the model's code called sys.exit({exc.code!r}); a measurement that ends "
            "the process is not a success"
        ) from None


def _pump(
    pid: int, out_r: int, err_r: int, st_r: int, output: Output, deadline: float | None
) -> list[tuple[str, Any]] | None:
    """Copy the work's output into this process's streams until every pipe is closed; returns the messages
    received on the status pipe, or None when ``deadline`` passed first."""
    sinks = {out_r: output.document if output.json else sys.stdout, err_r: sys.stderr}
    status = bytearray()
    sel = selectors.DefaultSelector()
    for fd in (out_r, err_r, st_r):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    # UTF-8 decoded incrementally: a character split between two reads is not garbled
    decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in sinks}
    try:
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            for key, _ in sel.select(wait):
                fd = key.fd
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if fd == st_r:
                    status += chunk
                elif chunk or fd in decoders:
                    sinks[fd].write(decoders[fd].decode(chunk, final=not chunk))
                    sinks[fd].flush()
                if not chunk:
                    sel.unregister(fd)
                    os.close(fd)
    finally:
        for fd in list(sel.get_map()):
            sel.unregister(fd)
            os.close(fd)
        sel.close()
    messages = []
    for line in bytes(status).splitlines():
        kind, _, payload = line.partition(b" ")
        messages.append((kind.decode(), pickle.loads(bytes.fromhex(payload.decode()))))
    return messages


def _stop(pid: int) -> None:
    """Tell the supervisor to kill the work and what it started; SIGKILL it past a grace period."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + _GRACE_S
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # the worker dies with it (its parent-death signal)
    os.waitpid(pid, 0)


def _wait(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _outcome(messages: list[tuple[str, Any]], what: str) -> int:
    """The work's exit code, or its exception raised, from the worker's and the supervisor's messages."""
    worker = next((m for k, m in messages if k == "W"), None)
    report = next((m for k, m in messages if k == "S"), {})
    killed = report.get("killed") or []
    if killed:
        names = "; ".join(f"PID {k['pid']} ({k.get('command') or '?'}, {k['how']})" for k in killed)
        print(f"effbench: killed {len(killed)} process(es) the model left running: {names}", file=sys.stderr)
    if worker is None:
        code = report.get("returncode")
        how = f"with exit code {code}" if code is not None and code >= 0 else f"by signal {-(code or 0)}"
        raise ModelExitedError(
            f"{what} did not finish: the process running the model ended {how} (the model's code ended it, "
            "e.g. os._exit, or it was killed)"
        )
    kind, value = worker
    if kind == "return":
        return int(value)
    if kind == "exit":
        raise ModelExitedError(
            f"{what} did not finish: the model's code called sys.exit({value!r}); a measurement that ends "
            "the process is not a success"
        )
    if kind == "effbench":
        message, exit_code, exc = value
        if exc is not None:
            raise exc
        error = EffbenchError(message)
        error.exit_code = exit_code
        raise error
    if kind == "raise":
        raise value
    raise RuntimeError(value)  # "crash": an exception that could not be sent back; its traceback is on stderr


def _send(fd: int, kind: str, payload: object) -> None:
    data = f"{kind} ".encode() + pickle.dumps(payload).hex().encode() + b"\n"
    os.write(fd, data)


def _supervisor(
    parent: int, work: Callable[[], int], output: Output, out_w: int, err_w: int, st_w: int
) -> None:
    """Fork the worker, wait for it, kill what it left running, report; never returns."""
    try:
        become_subreaper()
        set_parent_death_signal(signal.SIGTERM)
        worker: list[int] = []

        def terminate(signum: int, frame: FrameType | None) -> None:
            for w in worker:
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent tells us with SIGTERM
        if os.getppid() != parent:  # the parent died before the parent-death signal was set
            os._exit(1)
        w = os.fork()
        if w == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            set_parent_death_signal(signal.SIGKILL)
            _worker(work, output, out_w, err_w, st_w)
        worker.append(w)
        os.close(out_w)
        os.close(err_w)
        _, status = os.waitpid(w, 0)
        report = {"returncode": os.waitstatus_to_exitcode(status), "killed": kill_descendants()}
        _send(st_w, "S", report)
    finally:
        os._exit(0)


def _worker(work: Callable[[], int], output: Output, out_w: int, err_w: int, st_w: int) -> None:
    """Run ``work`` in a new thread with stdout/stderr going to the pipes; send its outcome; never returns."""
    try:
        os.dup2(out_w, 1)  # output written below Python (C libraries, subprocesses) goes there too
        os.dup2(err_w, 2)
        out = io.TextIOWrapper(io.FileIO(out_w, "w"), line_buffering=True, errors="replace")
        err = io.TextIOWrapper(io.FileIO(err_w, "w"), line_buffering=True, errors="replace")
        output.document = out  # this process's copy of the command's output: its document goes to the pipe
        sys.stdout, sys.stderr = (err if output.json else out), err
        outcome: list[tuple[str, Any]] = []

        def body() -> None:
            try:
                outcome.append(("return", work()))
            except SystemExit as exc:
                outcome.append(("exit", exc.code))
            except EffbenchError as exc:
                outcome.append(("effbench", (str(exc), exc.exit_code, _portable(exc))))
            except BaseException as exc:  # a bug, not the model's error: its traceback is shown here
                if not isinstance(exc, KeyboardInterrupt):
                    import traceback

                    traceback.print_exc()
                portable = _portable(exc)
                outcome.append(("raise", portable) if portable else ("crash", f"{type(exc).__name__}: {exc}"))

        thread = threading.Thread(target=body, name="effbench-work", daemon=True)
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            outcome[:] = [("raise", KeyboardInterrupt())]
        for stream in (out, err):
            stream.flush()
        if outcome:
            _send(st_w, "W", outcome[0])
    finally:
        os._exit(0)


def _portable(exc: BaseException) -> BaseException | None:
    """``exc`` when it survives a pickle round trip (to be raised in the parent as it is), else None."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return None
    return exc

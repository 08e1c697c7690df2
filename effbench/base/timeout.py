"""A wall-clock limit on a measurement: :func:`time_limit` interrupts the block with :class:`MeasurementTimeout`.

The guard is ``SIGALRM`` (``setitimer``) in the main thread: the handler raises in whatever Python code runs when
the time is up, so a forward stuck in a Python loop, in ``time.sleep`` or between torch ops is interrupted (and
again every 0.5 s, should the code catch the exception and carry on). A
single native call (one huge convolution) is interrupted when it returns to Python, and code that swallows every
exception is never stopped: it is a soft limit. The hard limit is a process that can be killed: sweep cells are
killed by the runner (``effbench run --timeout``) and the single commands run their work in a forked process the
command kills at ``--timeout`` (``effbench/commands/_isolate.py``); this guard is their fallback where there is no
``fork``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .errors import ModelError, UsageError

__all__ = ["MeasurementTimeout", "positive_seconds", "time_limit"]


class MeasurementTimeout(ModelError):
    """A measurement ran past its ``--timeout`` (CLI exit code 4, sweep status ``timeout``)."""

    exit_code = 4
    status = "timeout"


def positive_seconds(text: str) -> float:
    """argparse ``type=`` for ``--timeout``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Run the block for at most ``seconds`` (``None``: no limit); past it raise ``MeasurementTimeout``
    ("``what`` timed out after N s"). Must be entered in the main thread (signals are delivered there)."""
    if seconds is None:
        yield
        return
    if not seconds > 0:
        raise UsageError(f"timeout must be positive, got {seconds}")
    if threading.current_thread() is not threading.main_thread():
        raise UsageError("a timeout can only be set in the main thread (it uses SIGALRM)")

    message = f"{what} timed out after {seconds:g} s"
    expired = False

    def expire(signum: int, frame: FrameType | None) -> None:
        nonlocal expired
        expired = True
        raise MeasurementTimeout(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)  # re-fires every 0.5 s should code swallow the first
    try:
        yield
    except MeasurementTimeout:
        raise
    except Exception as exc:  # code that wrapped our exception in its own (e.g. "forward failed: ...")
        if expired:
            raise MeasurementTimeout(message) from exc
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

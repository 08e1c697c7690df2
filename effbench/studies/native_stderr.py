"""File-descriptor plumbing: what native code writes to stderr (fd 2) sent to a log file for a while."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["native_stderr_to"]


@contextmanager
def native_stderr_to(log: Path) -> Iterator[None]:
    """Send everything written to file descriptor 2 meanwhile (by Python and by native code, e.g. kineto's
    ``USDT: ... profiler_start`` / ``profiler_stop`` lines at every torch.profiler pass) to the end of ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log.open("ab") as f:
            os.dup2(f.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)

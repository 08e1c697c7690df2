"""Where a ``--json`` command's document goes (torch-free: :mod:`effbench.cli` holds it around every command)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

__all__ = ["json_out", "json_stdout"]

_JSON_OUT: list[TextIO] = []


def json_out() -> TextIO:
    """Where a command's ``--json`` document goes: the real stdout, also while :func:`json_stdout` (which
    :mod:`effbench.cli` holds around every ``--json`` command) sends everything else printed to stderr."""
    return _JSON_OUT[-1] if _JSON_OUT else sys.stdout


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[TextIO]:
    """The stream a ``--json`` document goes to (the real stdout); while ``enabled``, everything else printed to
    stdout inside the block (model files, libraries) goes to stderr, so stdout holds exactly the document."""
    out = json_out()
    if not enabled:
        yield out
        return
    _JSON_OUT.append(out)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield out
    finally:
        _JSON_OUT.pop()

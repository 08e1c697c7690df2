"""Where a command's ``--json`` document goes, carried in the command's arguments (``args.output``), never in a
module-level variable (torch-free: :mod:`effbench.cli` sets it around every command)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Output", "json_out", "json_stdout", "output_of"]


@dataclass
class Output:
    """A command's output streams: ``document`` takes its ``--json`` document (the real stdout), ``json`` says
    whether one was asked for; while it was, everything else printed goes to stderr (:func:`json_stdout`).

    It travels in ``args.output``; a command that runs its work in a forked process
    (:func:`effbench.commands._isolate.run_isolated`) points the child's copy at the pipe back to the parent."""

    json: bool = False
    document: TextIO = field(default_factory=lambda: sys.stdout)


def output_of(args: argparse.Namespace) -> Output:
    """``args.output``; a command called without :func:`effbench.cli.main` gets one on its stdout (kept in
    ``args`` so that what runs the command and the command itself see the same one)."""
    output = getattr(args, "output", None)
    if not isinstance(output, Output):
        output = args.output = Output(bool(getattr(args, "json", False)), sys.stdout)
    return output


def json_out(args: argparse.Namespace) -> TextIO:
    """Where the command's ``--json`` document goes: the real stdout, also while :func:`json_stdout` sends
    everything else printed to stderr."""
    return output_of(args).document


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[Output]:
    """The command's :class:`Output`: its document goes to the real stdout; while ``enabled``, everything else
    printed to stdout inside the block (model files, libraries) goes to stderr, so stdout holds exactly the
    document."""
    output = Output(enabled, sys.stdout)
    if not enabled:
        yield output
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield output

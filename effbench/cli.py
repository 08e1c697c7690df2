"""The ``effbench`` command line. Each sub-command lives in ``effbench/commands/<name>.py`` and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are discovered automatically.

Exit codes: 0 success, 1 a model or measurement error (``effbench run``: any cell not ok; ``effbench challenge``:
any entry failed), 2 a usage error (unknown model, bad option), 3 an output folder locked by another runner, 4 a
measurement past its ``--timeout``, 5 results cannot be written (the device is full), 6 the model's code ended the
process measuring it (``sys.exit``, ``os._exit``, a signal), 7 the gate inconclusive (a runtime measured noisy or
on a loaded machine), 130 interrupted, 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .base.errors import EffbenchError


def _command_modules():
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{mod.name}")


def _with_default_actions(argv: list[str]) -> list[str]:
    """A command with ``ACTIONS`` and a ``DEFAULT_SUBCOMMAND`` (``effbench challenge MANIFEST``) gets that action
    inserted when the word after the command is not one of its actions or an option."""
    if len(argv) < 2 or argv[1].startswith("-"):
        return argv
    for module in _command_modules():
        if module.NAME == argv[0] and getattr(module, "DEFAULT_SUBCOMMAND", None):
            if argv[1] not in module.ACTIONS:
                return [argv[0], module.DEFAULT_SUBCOMMAND, *argv[1:]]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effbench", description="Efficiency benchmarking for efficient image super-resolution models."
    )
    parser.add_argument("--version", action="version", version=f"effbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:  # building the parser loads the plugins (a convention adds a --convention choice)
        parser = build_parser()
    except EffbenchError as exc:
        print(f"effbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    argv = _with_default_actions(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)  # argparse exits with 2 on usage errors
    from .commands._common import json_stdout

    try:
        with json_stdout(bool(getattr(args, "json", False))):  # stdout holds exactly a --json document
            return int(args._run(args) or 0)
    except EffbenchError as exc:
        print(f"effbench {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"effbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

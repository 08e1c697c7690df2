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
import ast
import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from . import commands
from .base.errors import EffbenchError


def _command_modules(only: str | None = None) -> Iterator[ModuleType]:
    """The command modules, imported: every one, or (``only``) just the one whose ``NAME`` is ``only``."""
    for mod, name, _ in _command_index():
        if only is None or name == only:
            yield importlib.import_module(f"{commands.__name__}.{mod}")


def _command_index() -> list[tuple[str, str, str]]:
    """``(module, NAME, HELP)`` of every command module, read from its source without importing it (importing
    a command imports what it measures with: torch, seconds), or imported where they are not plain strings."""
    found = []
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        consts: dict[str, str] = {}
        try:
            path = Path(commands.__path__[0]) / f"{mod.name}.py"
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                ):
                    if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                        consts[node.targets[0].id] = node.value.value
        except (OSError, SyntaxError):
            pass
        if "NAME" not in consts or "HELP" not in consts:
            module = importlib.import_module(f"{commands.__name__}.{mod.name}")
            consts = {"NAME": module.NAME, "HELP": module.HELP}
        found.append((mod.name, consts["NAME"], consts["HELP"]))
    return found


def _with_default_actions(argv: list[str]) -> list[str]:
    """A command with ``ACTIONS`` and a ``DEFAULT_SUBCOMMAND`` (``effbench challenge MANIFEST``) gets that action
    inserted when the word after the command is not one of its actions or an option; a command with a
    ``with_action(words)`` function (``effbench memory --demo fig2``) says itself which action its words imply."""
    for module in _command_modules(argv[0]) if argv else ():
        if callable(getattr(module, "with_action", None)):
            return [argv[0], *module.with_action(argv[1:])]
    if len(argv) < 2 or argv[1].startswith("-"):
        return argv
    for module in _command_modules(argv[0]):
        if getattr(module, "DEFAULT_SUBCOMMAND", None) and argv[1] not in module.ACTIONS:
            return [argv[0], module.DEFAULT_SUBCOMMAND, *argv[1:]]
    return argv


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``only``, the options of that command alone (the others are listed,
    from their sources, without being imported: ``effbench --help`` imports no command, ``effbench zoo`` only
    the zoo's)."""
    parser = argparse.ArgumentParser(
        prog="effbench", description="Efficiency benchmarking for efficient image super-resolution models."
    )
    from . import __version__  # the version string alone: effbench/__init__.py imports nothing eagerly

    parser.add_argument("--version", action="version", version=f"effbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod, name, help_text in _command_index():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(f"{commands.__name__}.{mod}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _command_word(argv: list[str]) -> str:
    """The command named on the command line ("" when none: the parser then only prints help or an error)."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return ""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # building the parser loads the plugins (a convention adds a --convention choice)
        parser = build_parser(only=_command_word(argv))
        argv = _with_default_actions(argv)
    except EffbenchError as exc:
        print(f"effbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)  # argparse exits with 2 on usage errors
    from .commands._output import json_stdout

    try:
        with json_stdout(
            bool(getattr(args, "json", False))
        ) as output:  # stdout holds exactly a --json document
            args.output = output  # the command writes its document to args.output.document
            return int(args._run(args) or 0)
    except EffbenchError as exc:
        print(f"effbench {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"effbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``effbench --help`` reads the commands from their sources: it imports no command module, so not torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from effbench.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("TORCH", "torch" in sys.modules, "COMMANDS", sorted(m for m in sys.modules if m.startswith("effbench.commands.")))
"""


def _probe(*argv: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    return out.stdout


def test_help_imports_neither_torch_nor_a_command_and_lists_every_command() -> None:
    out = _probe("--help")
    assert "TORCH False COMMANDS []" in out
    for f in sorted((ROOT / "effbench" / "commands").glob("[!_]*.py")):
        assert f"    {f.stem}" in out or f" {f.stem} " in out, f.stem


def test_a_command_imports_only_its_own_module() -> None:
    out = _probe("gate", "--help")
    assert "COMMANDS ['effbench.commands.gate']" in out
    assert "--baseline" in out

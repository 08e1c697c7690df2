"""One code style, held: the tree is `ruff format`-clean and `ruff check`-clean under pyproject.toml's settings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["effbench", "tests", "benchmarks", "scripts"]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff")
    cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*cmd, *args, *SOURCES], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def _needs_ruff() -> None:
    pytest.importorskip("ruff", reason="ruff is in the test extras: pip install -e '.[test]'")


def test_the_tree_is_ruff_format_clean() -> None:
    proc = _ruff("format", "--check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_the_tree_is_ruff_check_clean() -> None:
    proc = _ruff("check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]

"""Packaging: the wheel ships the zoo as ``effbench.models`` and installs no top-level ``models`` package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a wheel from a copy of the sources (the build leaves build/ and *.egg-info behind; not in the tree)."""
    pytest.importorskip("setuptools", minversion="77",
                        reason="building without isolation needs setuptools >= 77 (pyproject's build-system) here")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("effbench", "models"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(out.glob("effbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_ships_every_zoo_file_under_effbench_models(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    zoo_files = {p.name for p in (ROOT / "models").glob("*.py")}
    assert {"__init__.py", "fmen.py", "rlfn.py"} <= zoo_files
    for name in zoo_files:
        assert f"effbench/models/{name}" in names, f"effbench/models/{name} missing from {wheel.name}"


@pytest.mark.slow
def test_wheel_has_no_top_level_models_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert "models" not in tops
    assert tops <= {"effbench"} | {t for t in tops if t.endswith((".dist-info", ".data"))}, tops


@pytest.mark.slow
def test_wheel_declares_the_console_script_and_the_harness_modules(wheel: Path) -> None:
    zf = zipfile.ZipFile(wheel)
    names = set(zf.namelist())
    for module in ("effbench/cli.py", "effbench/registry.py", "effbench/reparam.py", "effbench/weights.py",
                   "effbench/commands/zoo.py"):
        assert module in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "effbench = effbench.cli:main" in zf.read(entry_points).decode()

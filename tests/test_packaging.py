"""Packaging: the wheel ships the zoo as ``effbench.zoo.models`` and installs no top-level ``models`` package."""

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
    pytest.importorskip(
        "setuptools",
        minversion="77",
        reason="building without isolation needs setuptools >= 77 (pyproject's build-system) here",
    )
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "effbench", src / "effbench", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(out.glob("effbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_ships_every_zoo_file_under_effbench_zoo_models(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    zoo_files = {p.name for p in (ROOT / "effbench" / "zoo" / "models").glob("*.py")}
    assert {"__init__.py", "fmen.py", "rlfn.py"} <= zoo_files
    for name in zoo_files:
        assert f"effbench/zoo/models/{name}" in names, f"effbench/zoo/models/{name} missing from {wheel.name}"


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
    for module in (
        "effbench/cli.py",
        "effbench/zoo/registry.py",
        "effbench/zoo/reparam.py",
        "effbench/zoo/weights.py",
        "effbench/commands/zoo.py",
    ):
        assert module in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "effbench = effbench.cli:main" in zf.read(entry_points).decode()


_IMPORT_ZOO = "import effbench.zoo.models.fmen as m, effbench, sys; print(m.__file__); print(type(sys.meta_path[-1]).__name__)"


@pytest.mark.slow
def test_the_zoo_imports_from_an_installed_wheel_with_no_finder(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    proc = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); " + _IMPORT_ZOO],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(p for p in sys.path if "site-packages" in p)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0].startswith(str(site)), proc.stdout
    assert not any(p.name == "_zoo.py" for p in (ROOT / "effbench").rglob("*.py"))


def test_the_zoo_imports_from_a_source_checkout_with_no_finder(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ZOO],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == str(ROOT / "effbench" / "zoo" / "models" / "fmen.py")
    assert "Zoo" not in proc.stdout.splitlines()[1]


@pytest.mark.slow
def test_wheel_ships_the_gpu_workspace_profiles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "effbench" / "data" / "gpu_profiles").glob("*.json")}
    assert "nvidia-h200.json" in shipped
    for name in shipped:
        assert f"effbench/data/gpu_profiles/{name}" in names, f"{name} missing from {wheel.name}"

"""Extending effbench from one file: a model (and, in their own tests, a convention and a metric) defined in a
temporary module outside the package shows up in the commands once the module is named in ``EFFBENCH_PLUGINS``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TOY_MODEL = textwrap.dedent("""
    from torch import nn

    from effbench.zoo.registry import register_model


    class ToyNet(nn.Module):
        def __init__(self, scale: int = 4, width: int = 8) -> None:
            super().__init__()
            self.body = nn.Conv2d(3, width, 3, padding=1)
            self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
            self.up = nn.PixelShuffle(scale)

        def forward(self, x):
            return self.up(self.tail(self.body(x)))


    @register_model("toy_net", scales=(2, 4), data_range=1.0, paper="a test", description="a toy model from a plugin")
    def toy_net(scale: int = 4, deploy: bool = True, **kw):
        return ToyNet(scale, **kw)
""")


def _effbench(args: list[str], plugins: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EFFBENCH_PLUGINS=plugins)
    return subprocess.run(
        [sys.executable, "-m", "effbench", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def toy_plugin(tmp_path: Path) -> Path:
    path = tmp_path / "toy_plugin.py"
    path.write_text(TOY_MODEL)
    return path


def test_a_model_in_one_temporary_file_appears_in_effbench_zoo(toy_plugin: Path, tmp_path: Path) -> None:
    proc = _effbench(["zoo"], str(toy_plugin), tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next((ln for ln in proc.stdout.splitlines() if "toy_net" in ln), None)
    assert line is not None, proc.stdout
    assert "a toy model from a plugin" in line or "toy" in line


def test_a_plugin_model_is_profiled_by_name(toy_plugin: Path, tmp_path: Path) -> None:
    proc = _effbench(["profile", "toy_net", "--size", "16x16", "--json"], str(toy_plugin), tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    doc = doc[0] if isinstance(doc, list) else doc
    # 3*8*9 + 8  +  8*48*9 + 48
    assert doc["params"] == 3 * 8 * 9 + 8 + 8 * 48 * 9 + 48


def test_a_plugin_named_by_module_path_is_imported(toy_plugin: Path, tmp_path: Path) -> None:
    env_path = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "effbench", "zoo"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ, EFFBENCH_PLUGINS="toy_plugin", PYTHONPATH=env_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "toy_net" in proc.stdout


def test_a_missing_plugin_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    proc = _effbench(["zoo"], str(tmp_path / "nope.py"), tmp_path)
    assert proc.returncode == 2
    assert "nope.py" in proc.stderr and "EFFBENCH_PLUGINS" in proc.stderr


def test_a_command_is_one_file_in_the_commands_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import effbench.commands
    from effbench.cli import main

    (tmp_path / "toy_hello.py").write_text(
        textwrap.dedent("""
        NAME = "toy-hello"
        HELP = "say hello (a toy command)"


        def add_arguments(parser):
            parser.add_argument("--who", default="world")


        def run(args):
            print(f"hello {args.who}")
            return 0
    """)
    )
    monkeypatch.setattr(effbench.commands, "__path__", [*effbench.commands.__path__, str(tmp_path)])
    assert main(["toy-hello", "--who", "effbench"]) == 0
    assert capsys.readouterr().out == "hello effbench\n"


def test_installed_plugins_are_looked_up_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from effbench.base import plugins

    calls = []
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: calls.append(group) or [])
    plugins._entry_point_names.cache_clear()
    try:
        for _ in range(3):
            plugins.load_plugins()
        assert calls == [plugins.ENTRY_POINT_GROUP]
    finally:
        plugins._entry_point_names.cache_clear()

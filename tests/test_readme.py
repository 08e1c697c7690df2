"""The README's commands run as written, in order, on a fresh clone (issue 26).

Every line of the README's ``bash`` blocks is a command (``&&`` chains several); comments after ``#`` are the
README's. The default run checks that each ``effbench`` command parses (a renamed option fails here) and that the
files it names ship with the repository; the slow test runs them all, in the README's order, in an empty folder
holding a copy of ``examples/`` (what a clone has), as a user would. Not run: ``pip install`` (the environment is
installed; ``.ci/run`` installs on a fresh clone) and ``python -m pytest`` (this suite; ``.ci/run`` runs it). A
command that needs CUDA is skipped without one; one that needs ``../shared`` (data sets, checkpoints, the NTIRE
organisers' repository) is skipped without it, saying so. Checkpoints come from ``../shared/weights`` through
``EFFBENCH_WEIGHTS_DIR``, as the README says to do offline; ``NTIRE2024_ESR/``, the organisers' repository the
README says to clone, is ``../shared/challenges/ntire2024``. ``effbench gate`` on two runs of unchanged code may
say PASS (0) or INCONCLUSIVE (7, a noisy or loaded machine), never FAIL.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SHARED

from effbench.ci.gate import EXIT_INCONCLUSIVE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NTIRE2024 = SHARED / "challenges" / "ntire2024"


def readme_lines(text: str | None = None) -> list[str]:
    """The command lines of the README's ``bash`` blocks, in order, without their trailing comments."""
    text = README.read_text() if text is None else text
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def segments(line: str) -> list[str]:
    """The commands of a line: its ``&&`` chain."""
    return [s.strip() for s in line.split("&&")]


def not_run(segment: str) -> str | None:
    """Why a command is not run by the test, or None."""
    if segment.startswith("python -m pip install"):
        return "installs: the environment is installed, .ci/run installs on a fresh clone"
    if segment.startswith("python -m pytest"):
        return "the test suite itself: .ci/run runs it"
    return None


def needs(line: str) -> str | None:
    """Why a line cannot run on this machine (no CUDA, no ../shared), or None."""
    import torch

    if re.search(r"--devices? cuda", line) and not torch.cuda.is_available():
        return "needs CUDA"
    if "../shared" in line and not SHARED.is_dir():
        return f"needs ../shared ({SHARED} not found)"
    if "NTIRE2024_ESR" in line and not NTIRE2024.is_dir():
        return f"needs the NTIRE 2024 organisers' repository ({NTIRE2024} not found)"
    if (
        "--pretrained" in line
        and not (SHARED / "weights").is_dir()
        and not os.environ.get("EFFBENCH_WEIGHTS_DIR")
    ):
        return "needs the official checkpoints (offline: EFFBENCH_WEIGHTS_DIR)"
    return None


def allowed_exits(segment: str) -> set[int]:
    """The exit statuses a command may end with: the gate's verdict on unchanged code is pass or inconclusive."""
    return {0, EXIT_INCONCLUSIVE} if segment.startswith("effbench gate") else {0}


LINES = readme_lines()


def test_the_readme_has_its_commands():
    assert len(LINES) >= 15
    assert any(line.endswith("effbench run --out effbench-results") for line in LINES)  # the main job
    assert "python -m pytest -q" in {s for line in LINES for s in segments(line)}  # what .ci/run runs


def test_the_readme_lines_are_found_as_a_user_reads_them():
    text = "x\n```bash\neffbench zoo   # the models\n# a comment\na && b\n```\n```python\nnot this\n```\n"
    assert readme_lines(text) == ["effbench zoo", "a && b"]


@pytest.fixture(scope="module")
def parser():
    from effbench.cli import build_parser

    return build_parser()


@pytest.mark.parametrize("line", LINES, ids=lambda s: s[:60])
def test_each_effbench_command_parses_and_its_files_ship(line: str, parser):
    from effbench.cli import _with_default_actions

    for seg in segments(line):
        words = shlex.split(seg)
        if words[0] == "effbench":
            if words[1:] in (["--version"], ["--help"]):
                continue
            try:
                parser.parse_args(_with_default_actions(words[1:]))
            except SystemExit as exc:
                pytest.fail(f"{seg!r} does not parse (exit {exc.code})")
        for word in words:
            path = word.split(":")[0].split("=")[-1]
            if path.startswith("examples/"):
                assert (ROOT / path).is_file(), f"{seg!r} names {path}, which the repository lacks"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty folder beside ``shared`` holding what a fresh clone has that the commands use (``examples/``)."""
    top = tmp_path_factory.mktemp("readme")
    work = top / "clone"
    shutil.copytree(ROOT / "examples", work / "examples")
    if SHARED.is_dir():
        (top / "shared").symlink_to(SHARED)
    if NTIRE2024.is_dir():
        (work / "NTIRE2024_ESR").symlink_to(NTIRE2024)
    return work


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.parametrize("line", LINES, ids=lambda s: s[:60])
def test_each_readme_command_runs_as_written(line: str, clone: Path):
    why = needs(line)
    if why:
        pytest.skip(why)
    env = dict(os.environ)
    if (SHARED / "weights").is_dir():
        env["EFFBENCH_WEIGHTS_DIR"] = str(SHARED / "weights")
    ran = 0
    for seg in segments(line):
        if not_run(seg):
            continue
        proc = subprocess.run(
            ["bash", "-c", seg], cwd=clone, env=env, capture_output=True, text=True, timeout=1200
        )
        assert proc.returncode in allowed_exits(seg), (
            f"{seg!r} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
        ran += 1
    if not ran:
        pytest.skip("; ".join(dict.fromkeys(filter(None, (not_run(s) for s in segments(line))))))

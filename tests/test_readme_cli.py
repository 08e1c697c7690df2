"""What a new user meets in the first hour (issue 26): ``--version``, a did-you-mean for a class name in a file,
a one-line error for a Ray address with no cluster, and the example model the README uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from effbench import __version__
from effbench.base.errors import UsageError
from effbench.cli import main
from effbench.zoo.spec import resolve_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "my_net.py"


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"effbench {__version__}\n"


def test_a_mistyped_class_name_in_a_file_gets_a_did_you_mean():
    with pytest.raises(UsageError, match=r"has no attribute 'Nett'; did you mean 'Net'\?"):
        resolve_model(f"{EXAMPLE}:Nett")
    with pytest.raises(UsageError, match=r"has no attribute 'Model'; it defines Net$"):
        resolve_model(f"{EXAMPLE}:Model")


def test_the_cli_says_it_in_one_line(capsys):
    assert main(["profile", f"{EXAMPLE}:Nett", "--size", "16x16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith("did you mean 'Net'?")


def test_the_example_network_is_x4_and_writes_its_checkpoint(tmp_path):
    net = resolve_model(f"{EXAMPLE}:Net").model
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "w.pth")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    state = torch.load(tmp_path / "w.pth", weights_only=True)
    assert set(state) == set(net.state_dict())


def test_a_ray_address_with_no_cluster_is_a_one_line_error(tmp_path):
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # no cluster named anywhere
    proc = subprocess.run(
        [sys.executable, "-m", "effbench", "run", "--models", f"{EXAMPLE}:Net", "--sizes", "8x8"]
        + ["--devices", "cpu", "--repeats", "2", "--no-static", "--no-report", "--out", str(tmp_path / "o")]
        + ["--executor", "ray", "--address", "auto"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr
    assert err[0].startswith(
        "effbench run: error: --executor ray --address auto: no Ray cluster to connect to"
    )


def test_comparing_two_models_memory_is_concise_unless_details_are_asked(capsys):
    assert main(["memory", "e_rfdn", "fmen_s", "--size", "32x32"]) == 0
    brief = capsys.readouterr().out.splitlines()
    assert len(brief) <= 30 and any(line.startswith("peak ratio e_rfdn / fmen_s = ") for line in brief)
    assert sum(line.startswith("in words: ") for line in brief) == 2
    assert not any(line.startswith("per-module peaks") for line in brief)
    assert main(["memory", "e_rfdn", "fmen_s", "--size", "32x32", "--details"]) == 0
    full = capsys.readouterr().out.splitlines()
    assert len(full) > 2 * len(brief) and sum(line.startswith("per-module peaks") for line in full) == 2


def _helps():
    import argparse

    from effbench.cli import build_parser

    def walk(name, parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for sub_name, sub in action.choices.items():
                    yield f"{name} {sub_name}".strip(), "(command)", helps.get(sub_name)
                    yield from walk(f"{name} {sub_name}".strip(), sub)
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield name, "/".join(action.option_strings) or action.dest, action.help

    yield from walk("", build_parser())


def test_every_help_text_is_there_and_in_one_style():
    """Every command and option has a help text: lower-case first word (unless an acronym or a name), no final
    full stop, as argparse's own texts."""
    bad = []
    for command, option, text in _helps():
        if not text:
            bad.append(f"effbench {command} {option}: no help")
        elif (text[0].isupper() and not text.split()[0].isupper()) or text.rstrip().endswith("."):
            bad.append(f"effbench {command} {option}: {text[:60]!r}")
    assert not bad, "\n".join(bad)

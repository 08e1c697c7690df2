"""The options several commands share are declared once (effbench/commands/_options.py; tests/test_structure.py
checks that no command declares them itself): each command's ``--device`` default is the one its table lists."""

from __future__ import annotations

from effbench.cli import build_parser
from effbench.commands._options import DEVICE_DEFAULTS


def _subparser(command: str, action: str | None = None):
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    if action is not None:
        sub = next(a for a in sub._actions if getattr(a, "choices", None) and action in a.choices).choices[
            action
        ]
    return sub


def test_every_device_default_is_the_one_the_table_lists() -> None:
    expected = {"bench": "auto", "eval": "cpu", "psd": "cpu", "study": "cpu", "challenge": "cpu"}
    expected |= {"challenge check": "cpu", "memory calibrate": "cuda"}
    assert dict(DEVICE_DEFAULTS) == expected  # the defaults the commands had before they were declared once
    for key, default in DEVICE_DEFAULTS.items():
        command, _, action = key.partition(" ")
        if action or command == "challenge":  # `effbench challenge MANIFEST` is its `run` action
            parser = _subparser(command, action or "run")
        else:
            parser = _subparser(command)
        (device,) = [a for a in parser._actions if "--device" in a.option_strings]
        assert device.default == default, key

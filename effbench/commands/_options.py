"""Options several commands share, declared here once: ``--json`` (:func:`add_json`) and ``--device``
(:func:`add_device`).

Where ``--device`` defaults differ, on purpose, they are listed in :data:`DEVICE_DEFAULTS` and nowhere else:
``bench`` times a model where it runs fastest (``auto``: CUDA when present); ``memory calibrate`` measures a GPU's
allocator (``cuda``); every other command (``eval``, ``psd``, ``study``, ``challenge`` and ``challenge check``)
runs on the CPU unless told (``cpu``), so that its figures do not depend on which machine has a GPU.
"""

from __future__ import annotations

import argparse
from types import MappingProxyType

__all__ = ["DEVICE_DEFAULTS", "add_device", "add_json"]

#: the default ``--device`` of every command that has one (the command and, for sub-actions, the action)
DEVICE_DEFAULTS = MappingProxyType(
    {
        "bench": "auto",
        "challenge": "cpu",
        "challenge check": "cpu",
        "eval": "cpu",
        "memory calibrate": "cuda",
        "psd": "cpu",
        "study": "cpu",
    }
)

#: the commands whose --device also takes ``auto`` (CUDA when present)
_TAKES_AUTO = frozenset({"bench", "memory calibrate", "study"})


def add_json(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json``: print ``what`` as one JSON document on stdout (everything else printed goes to stderr; the
    document's stream is ``args.output``, :mod:`effbench.commands._output`)."""
    parser.add_argument(
        "--json", action="store_true", help=f"print {what} as JSON on stdout (and nothing else there)"
    )


def add_device(parser: argparse.ArgumentParser, command: str, used_for: str = "") -> None:
    """``--device``, with ``command``'s default from :data:`DEVICE_DEFAULTS`; ``used_for`` says what runs there
    (e.g. "runtime and quality")."""
    default = DEVICE_DEFAULTS[command]
    what = f"where {used_for} runs: " if used_for else ""
    choices = (
        "cpu, cuda, cuda:N or auto (cuda when present)" if command in _TAKES_AUTO else "cpu, cuda or cuda:N"
    )
    parser.add_argument("--device", default=default, help=f"{what}{choices}; default {default}")

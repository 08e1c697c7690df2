"""Options several commands share, declared here once: ``--json`` (:func:`add_json`), ``--device``
(:func:`add_device`) and ``--calibration`` (:func:`add_calibration`, :func:`calibration_from_args`).

Where ``--device`` defaults differ, on purpose, they are listed in :data:`DEVICE_DEFAULTS` and nowhere else:
``bench`` times a model where it runs fastest (``auto``: CUDA when present); ``memory calibrate`` measures a GPU's
allocator (``cuda``); every other command (``eval``, ``psd``, ``study``, ``challenge`` and ``challenge check``)
runs on the CPU unless told (``cpu``), so that its figures do not depend on which machine has a GPU.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from types import MappingProxyType

__all__ = ["DEVICE_DEFAULTS", "add_calibration", "add_device", "add_json", "calibration_from_args"]

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


def _folders(text: str) -> list[str]:
    folders = [f.strip() for f in text.split(",") if f.strip()]
    if not folders:
        raise argparse.ArgumentTypeError("name at least one folder of LR images")
    return folders


def add_calibration(parser: argparse.ArgumentParser) -> None:
    """``--calibration FOLDER[,FOLDER]``: the LR images an ``int8`` dtype is calibrated on (read with
    :func:`calibration_from_args`)."""
    parser.add_argument(
        "--calibration",
        type=_folders,
        default=None,
        metavar="FOLDER[,FOLDER]",
        help="int8: calibrate on the LR images of these folders (e.g. Set5/LR_bicubic/X4,Set14/LR_bicubic/X4; "
        "recorded in each result and, in a sweep, in the cell's id); default: the folders in "
        "EFFBENCH_CALIBRATION (os.pathsep-separated)",
    )


def calibration_from_args(args: argparse.Namespace, configured: Sequence[str] = ()) -> tuple[str, ...]:
    """The calibration folders a command measures with: ``--calibration``, else ``configured`` (a sweep's TOML),
    else the folders in ``EFFBENCH_CALIBRATION``. The variable is read here, in the command layer, and nowhere
    below it: what measures gets the folders as an argument."""
    from ..backends.quantise import CALIBRATION_ENV, calibration_folders

    if args.calibration:
        return tuple(args.calibration)
    if configured:
        return tuple(configured)
    return calibration_folders(os.environ.get(CALIBRATION_ENV))

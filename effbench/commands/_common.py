"""Argument helpers shared by every sub-command that takes a model spec."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from ..base.timeout import positive_seconds
from ..zoo.spec import ModelSpec, ResolvedModel, resolve_model


def add_model_arguments(parser: argparse.ArgumentParser, *, multiple: bool = False) -> None:
    """SPEC (zoo name, file.py:Name or package.module:Name) plus --scale/--kwargs/--weights/--pretrained/--train-form."""
    parser.add_argument(
        "spec",
        nargs="+" if multiple else None,
        metavar="SPEC",
        help="zoo name, path/to/file.py:ClassOrFactory, or package.module:attr",
    )
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    parser.add_argument("--kwargs", default=None, help="JSON keyword arguments for the model's constructor")
    parser.add_argument("--weights", default=None, help="checkpoint file to load")
    parser.add_argument("--pretrained", action="store_true", help="load the official checkpoint (zoo models)")
    parser.add_argument(
        "--train-form",
        action="store_true",
        help="use the train-time form of re-parameterisable models (default: deploy form)",
    )


def add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: the limit on a command that runs a model (:func:`effbench.base.timeout.time_limit`)."""
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop with exit code 4 if the measurement takes longer",
    )


def model_from_args(
    args: argparse.Namespace, spec: str | None = None, *, deploy: bool | None = None
) -> ResolvedModel:
    """The model named on the command line, built once, with its identity (``deploy`` overrides --train-form)."""
    return resolve_model(
        ModelSpec.parse(spec if spec is not None else args.spec, kwargs=args.kwargs, weights=args.weights),
        scale=args.scale,
        pretrained=args.pretrained,
        deploy=not args.train_form if deploy is None else deploy,
    )


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[TextIO]:
    """The stream a ``--json`` document goes to (the real stdout); while ``enabled``, everything else printed to
    stdout inside the block (model files, libraries) goes to stderr, so stdout holds exactly the document."""
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr) if enabled else contextlib.nullcontext():
        yield out

"""Argument helpers shared by every sub-command that takes a model spec."""

from __future__ import annotations

import argparse

from ..base.errors import UsageError
from ..zoo.spec import ModelSpec, ResolvedModel, resolve_model


def add_model_arguments(parser: argparse.ArgumentParser, *, multiple: bool = False) -> None:
    """SPEC (zoo name, file.py:Name or package.module:Name) plus --scale/--kwargs/--weights/--pretrained/--train-form."""
    parser.add_argument("spec", nargs="+" if multiple else None, metavar="SPEC",
                        help="zoo name, path/to/file.py:ClassOrFactory, or package.module:attr")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    parser.add_argument("--kwargs", default=None, help="JSON keyword arguments for the model's constructor")
    parser.add_argument("--weights", default=None, help="checkpoint file to load")
    parser.add_argument("--pretrained", action="store_true", help="load the official checkpoint (zoo models)")
    parser.add_argument("--train-form", action="store_true",
                        help="use the train-time form of re-parameterisable models (default: deploy form)")


def spec_from_args(args: argparse.Namespace, spec: str | None = None) -> ModelSpec:
    return ModelSpec.parse(spec if spec is not None else args.spec, kwargs=args.kwargs, weights=args.weights)


def model_from_args(args: argparse.Namespace, spec: str | None = None, *, deploy: bool | None = None
                    ) -> ResolvedModel:
    """The model named on the command line, built once, with its identity (``deploy`` overrides --train-form)."""
    return resolve_model(spec_from_args(args, spec), scale=args.scale, pretrained=args.pretrained,
                         deploy=not args.train_form if deploy is None else deploy)


def parse_size(text: str) -> tuple[int, int]:
    """'256x256' or '256' -> (H, W)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        if len(parts) == 1:
            h = w = int(parts[0])
        elif len(parts) == 2:
            h, w = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise UsageError(f"bad size {text!r}: expected HxW, e.g. 256x256") from None
    if h <= 0 or w <= 0:
        raise UsageError(f"bad size {text!r}: height and width must be positive")
    return h, w

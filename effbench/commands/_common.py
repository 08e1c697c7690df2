"""Argument helpers shared by every sub-command that takes a model spec."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..base.timeout import positive_seconds
from ..zoo.spec import ModelSpec, ResolvedModel, resolve_model

if TYPE_CHECKING:
    from ..sweep.executors import Executor


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


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """--executor/--jobs/--address/--allow-shared-cpu/--gpu-type/--slurm-partition: what runs a sweep's cells
    (:mod:`effbench.sweep.executors`); every default is None, so a TOML value is only overridden when given."""
    from ..sweep.executors import EXECUTORS

    group = parser.add_argument_group("executors (docs/distributed.md)")
    group.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="what runs the cells: local processes (default), tasks on a Ray cluster, or Slurm array jobs "
        "through submitit",
    )
    group.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="local: up to N cells at once (device-free ones; timed cells stay one per device, a timed CPU "
        "cell alone); default 1",
    )
    group.add_argument(
        "--address", default=None, help="ray: the cluster to join (e.g. auto, ray://HOST:10001, HOST:6379)"
    )
    group.add_argument(
        "--allow-shared-cpu",
        action="store_true",
        default=None,
        help="a timed CPU cell may share its machine (node) with other cells instead of running alone",
    )
    group.add_argument(
        "--gpu-type", default=None, help="ray: timed CUDA cells ask for this accelerator type (e.g. H100)"
    )
    group.add_argument("--slurm-partition", default=None, metavar="P", help="submitit: the Slurm partition")


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor the :func:`add_executor_arguments` options ask for (default: local, one cell at a time)."""
    from ..sweep.executors import get_executor

    return get_executor(
        args.executor or "local",
        jobs=args.jobs or 1,
        address=args.address,
        allow_shared_cpu=bool(args.allow_shared_cpu),
        gpu_type=args.gpu_type,
        slurm_partition=args.slurm_partition,
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

"""``effbench eval``: PSNR/SSIM of a model on test sets, per image and mean."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

from ..base.errors import UsageError
from ._common import add_model_arguments, add_timeout_argument, model_from_args
from ._isolate import run_isolated
from ._options import add_device, add_json
from ._output import json_out

if TYPE_CHECKING:
    from ..quality.evaluate import Evaluation

NAME = "eval"
HELP = "PSNR/SSIM of a model on SR test sets (paper protocol: Y channel, border = scale; or NTIRE: RGB, border 4)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="DIR",
        help="test set folder (HR + LR_bicubic/X<s>, HR only, or DIV2K layout); repeatable",
    )
    parser.add_argument(
        "--protocol",
        choices=("paper", "ntire"),
        default="paper",
        help="paper: PSNR/SSIM on Y, border = scale (default); ntire: RGB, border 4",
    )
    parser.add_argument(
        "--data-range",
        type=float,
        default=None,
        help="model input range (default: the model's metadata, e.g. 1 for IMDN, 255 for FMEN)",
    )
    add_device(parser, "eval")
    parser.add_argument(
        "--save", default=None, metavar="DIR", help="write SR images to DIR/<dataset>/<name>.png"
    )
    parser.add_argument("--per-image", action="store_true", help="print every image's scores")
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable images (listed in the result) instead of stopping at the first",
    )
    add_json(parser, "the results")
    add_timeout_argument(parser)


def _fmt(v: float, digits: int) -> str:
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    return run_isolated(
        lambda: _run(args), what=f"eval of {args.spec}", timeout=args.timeout, output=args.output
    )


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..quality import evaluate
    from ..quality.datasets import open_dataset
    from ..quality.evaluate import EvaluationStopped

    if args.scale < 1:
        raise UsageError(f"--scale must be a positive integer, got {args.scale}")
    datasets = [open_dataset(d, args.scale) for d in args.dataset]  # fail fast on a bad folder
    resolved = model_from_args(args)
    name = resolved.name
    results: list[Evaluation] = []
    stopped: EvaluationStopped | None = None
    for ds in datasets:
        save = Path(args.save) / ds.name if args.save else None
        try:
            res = evaluate(
                resolved,
                ds,
                args.scale,
                protocol=args.protocol,
                data_range=args.data_range,
                device=args.device,
                save_dir=save,
                progress=True,
                skip_bad=args.skip_bad,
            )
        except EvaluationStopped as exc:  # show what was scored, then fail with the image's path
            res, stopped = exc.partial, exc
        results.append(res)
        if stopped is not None:
            break
    _show(args, name, results)
    if stopped is not None:
        raise stopped
    return 0


def _show(args: argparse.Namespace, name: str, results: list[Evaluation]) -> None:
    from rich.console import Console
    from rich.table import Table

    if args.json:
        docs = [res.to_dict() for res in results]
        json.dump(docs if len(docs) > 1 else docs[0], json_out(args), indent=2, default=str)
        json_out(args).write("\n")
        return
    out = Console()
    what = "Y, border = scale" if args.protocol == "paper" else "RGB, border 4"
    table = Table(title=f"{name} x{args.scale} ({args.protocol} protocol: {what})")
    for col in ("data set", "images", "LR", "PSNR (dB)", "SSIM"):
        table.add_column(col, justify="left" if col in ("data set", "LR") else "right")
    for res in results:
        if args.per_image:
            for img in res["images"]:
                table.add_row(f"  {img['name']}", "", "", _fmt(img["psnr"], 3), _fmt(img["ssim"], 4))
        table.add_row(
            res["dataset"],
            str(res["n_images"]),
            res["lr_source"],
            _fmt(res["psnr"], 3),
            _fmt(res["ssim"], 4),
            style="bold",
        )
    out.print(table)
    for res in results:
        for bad in res.get("skipped", []):
            out.print(f"skipped {bad['path']}: {bad['error']}")

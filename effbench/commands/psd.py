"""``effbench psd``: power spectra of the inputs and outputs of a model's blocks (the FMEN paper's Fig. 6-8)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..base.errors import UsageError
from ._common import add_model_arguments, add_timeout_argument, model_from_args
from ._isolate import run_isolated
from ._options import add_device, add_json
from ._output import json_out

NAME = "psd"
HELP = "frequency analysis: power spectra of block inputs/outputs over a data set (FMEN paper Fig. 6-8)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="DIR",
        help="image folder: DIR/LR_bicubic/X<scale>, DIR/HR or DIR itself (HR unless --lr)",
    )
    parser.add_argument("--lr", action="store_true", help="the images in DIR are LR model inputs already")
    parser.add_argument(
        "--modules",
        default=None,
        metavar="PATTERN",
        help="blocks to analyse: comma-separated globs on qualified or class names, or re:REGEX "
        "(default: the family's blocks, e.g. every HFAB of FMEN)",
    )
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="use the first N images")
    parser.add_argument("--tile", type=int, default=None, metavar="N", help="run the model on N x N LR tiles")
    parser.add_argument(
        "--split",
        type=float,
        default=0.5,
        help="high/low frequency split as a fraction of Nyquist (default 0.5)",
    )
    parser.add_argument(
        "--remove-mean",
        action="store_true",
        help="subtract each map's mean before the FFT (curves without the DC term)",
    )
    add_device(parser, "psd")
    parser.add_argument(
        "--preview",
        type=int,
        default=0,
        metavar="I",
        help="index of the image whose average maps are plotted (default 0)",
    )
    parser.add_argument(
        "--linear", action="store_true", help="linear y axis in the curve plot (default: log)"
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default psd-<model>)")
    add_json(parser, "the document (instead of a table)")
    add_timeout_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    return run_isolated(
        lambda: _run(args), what=f"psd of {args.spec}", timeout=args.timeout, output=args.output
    )


def _run(args: argparse.Namespace) -> int:
    from ..frequency import PSDOptions, psd

    if args.max_images is not None and args.max_images < 1:
        raise UsageError(f"--max-images must be >= 1, got {args.max_images}")
    options = PSDOptions(
        split=args.split,
        tile=args.tile,
        preview=args.preview,
        remove_mean=args.remove_mean,
        max_images=args.max_images,
        lr=args.lr,
    )
    res = psd(
        model_from_args(args),
        args.dataset,
        modules=args.modules,
        options=options,
        device=args.device,
        progress=not (args.no_progress or args.json),
        scale=args.scale,
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", res.model)
    out = Path(args.out) if args.out else Path(f"psd-{safe}")
    doc = res.to_dict()
    json_path = res.save_json(out / f"psd_{safe}_x{args.scale}.json")
    res.plot_curves(out / f"psd_{safe}_x{args.scale}_curves.png", log=not args.linear)
    res.plot_maps(out / f"psd_{safe}_x{args.scale}_maps.png")
    if args.json:
        json.dump(doc, json_out(args), indent=2, default=float)
        json_out(args).write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{res.model} x{args.scale}: share of PSD above {args.split:g} x Nyquist, "
        f"{len(res.images)} images ({res.source})"
    )
    for col in ("block", "class", "input high", "output high", "gain (pt)", "images up", "high up"):
        table.add_column(col, justify="left" if col in ("block", "class") else "right")
    for b in res.blocks:
        table.add_row(
            b.name,
            b.kind,
            f"{100 * b.input_high:.3g}%",
            f"{100 * b.output_high:.3g}%",
            f"{100 * b.high_gain:+.3g}",
            f"{b.images_high_up}/{b.n_images}",
            "yes" if b.strengthens_high else "no",
        )
    console = Console()
    console.print(table)
    console.print(f"wrote {json_path} and the curve/map plots in {out}")
    return 0

"""``effbench baseline save|update RESULTS... [--file baseline.json]``: manage the CI gate's baseline file."""

from __future__ import annotations

import argparse

NAME = "baseline"
HELP = "save or update the CI gate's baseline file (one JSON list of result documents)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("save", "update"),
        help="save: write the file from RESULTS (overwrites); update: merge RESULTS into it",
    )
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="result JSON files or sweep folders")
    parser.add_argument(
        "--file", default="effbench-baseline.json", help="baseline file (default: effbench-baseline.json)"
    )


def run(args: argparse.Namespace) -> int:
    from ..ci.baseline import save_baseline, update_baseline

    if args.action == "save":
        p = save_baseline(args.results, args.file)
        print(f"baseline written: {p}")
    else:
        p, replaced, added = update_baseline(args.results, args.file)
        print(f"baseline updated: {p} ({replaced} replaced, {added} added)")
    return 0

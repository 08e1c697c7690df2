"""``effbench report RESULTS... [--out DIR] [--baseline MODEL] [--format md,csv,json,html]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.errors import UsageError

NAME = "report"
HELP = "render a Table 4-style report (markdown, CSV, JSON, HTML, figures) from result files or sweep folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="result JSON files or sweep folders")
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: report/ beside the results: a sweep folder's report/, or next to its cells/)",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="MODEL",
        help="model to compare every other model against, in %% (e.g. E-RFDN)",
    )
    parser.add_argument(
        "--format",
        default="md,csv,json,html",
        help="comma-separated subset of md,csv,json,html (default: all)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the matplotlib figures")
    parser.add_argument("--title", default="effbench report", help="report title")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error at an unreadable results file (default: skip it with a warning)",
    )


def default_out(results: list[str]) -> Path:
    """``report/`` beside the first results path: inside a sweep folder, beside a ``cells/`` folder (the sweep's
    own), or in the folder holding a results file."""
    first = Path(results[0])
    base = first if first.is_dir() else first.parent
    if base.name == "cells":
        base = base.parent
    return base / "report"


def run(args: argparse.Namespace) -> int:
    from ..base.results import load_results
    from ..report.render import render_report

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    if not formats:
        raise UsageError("--format is empty; choose from md,csv,json,html")
    try:
        docs = load_results(args.results, strict=args.strict)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out else default_out(args.results)
    paths = render_report(
        docs, out, baseline=args.baseline, formats=formats, figures=not args.no_figures, title=args.title
    )
    for p in paths:
        print(p)
    md = [p for p in paths if p.suffix == ".md"]
    if md:
        print()
        print(md[0].read_text())
    return 0

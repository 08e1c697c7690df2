"""``effbench score RESULTS... --year 2022|2023|2024|2025|2026 [--baseline MODEL]``: NTIRE ESR scores."""

from __future__ import annotations

import argparse

from ..base.errors import UsageError

NAME = "score"
HELP = "Score results under an NTIRE Efficient SR challenge year's rules (2022-2023 ranks, 2024-2026 scores)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="result JSON files or sweep folders")
    parser.add_argument("--year", type=int, required=True, choices=(2022, 2023, 2024, 2025, 2026))
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="MODEL",
        help="model normalising the 2024+ scores (default: the year's baseline: RLFN 2024, "
        "EFDN 2025, SPAN 2026)",
    )
    parser.add_argument("--csv", default=None, metavar="FILE", help="also write the score table as CSV")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error at an unreadable results file (default: skip it with a warning)",
    )


def run(args: argparse.Namespace) -> int:
    from ..base.results import load_results
    from ..report.scores import compute_scores, scores_markdown

    try:
        docs = load_results(args.results, strict=args.strict)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    frame = compute_scores(docs, args.year, baseline=args.baseline)
    print(scores_markdown(frame))
    if args.csv:
        frame.to_csv(args.csv, index=False)
    return 0

"""``effbench score RESULTS... --year YEAR [--baseline MODEL]``: NTIRE ESR scores under a year's rules
(:mod:`effbench.challenge.years`)."""

from __future__ import annotations

import argparse

from ..base.errors import UsageError

NAME = "score"
HELP = "score results under an NTIRE Efficient SR challenge year's rules (2022-2023 ranks, 2024-2026 scores)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="result JSON files or sweep folders")
    from ..challenge.years import challenge_years, year_rules

    years = challenge_years()
    rules = [year_rules(y) for y in years]
    parser.add_argument(
        "--year",
        type=int,
        required=True,
        choices=years,
        help="challenge year: "
        + "; ".join(f"{r.year} {r.score.kind}s, {r.baseline.model} baseline" for r in rules),
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="MODEL",
        help="model normalising a score year's terms (default: the year's baseline: "
        + ", ".join(f"{r.baseline.model} {r.year}" for r in rules if r.score.kind == "score")
        + ")",
    )
    parser.add_argument("--csv", default=None, metavar="FILE", help="also write the score table as CSV")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error at an unreadable results file (default: skip it with a warning)",
    )


def run(args: argparse.Namespace) -> int:
    from ..base.results import load_results
    from ..challenge.scores import compute_scores, scores_markdown

    try:
        docs = load_results(args.results, strict=args.strict)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    frame = compute_scores(docs, args.year, baseline=args.baseline)
    print(scores_markdown(frame))
    if args.csv:
        frame.to_csv(args.csv, index=False)
    return 0

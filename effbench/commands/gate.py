"""``effbench gate --baseline BASE --current CUR [--runtime 5%] [--memory 0%] [--flops 0%] [--params 0%]``.

Exit codes: 0 pass, 1 regression, 2 usage error or missing data, 7 inconclusive (a runtime measured on a noisy or
loaded machine; see :mod:`effbench.ci.gate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "gate"
HELP = (
    "CI regression gate: compare current results with a baseline per model and metric "
    "(exit 0 pass, 1 regression, 2 usage error or missing data, 7 inconclusive: noisy or loaded machine)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        required=True,
        metavar="BASE",
        help="baseline: sweep folder, saved results JSON or pytest-benchmark JSON",
    )
    parser.add_argument(
        "--current", required=True, metavar="CUR", help="current results (same kinds as BASE)"
    )
    parser.add_argument("--runtime", default="5%", help="allowed runtime slowdown (default 5%%)")
    parser.add_argument("--memory", default="0%", help="allowed peak-memory increase (default 0%%)")
    parser.add_argument("--flops", default="0%", help="allowed FLOPs/MACs increase (default 0%%)")
    parser.add_argument("--params", default="0%", help="allowed parameter increase (default 0%%)")
    parser.add_argument("--activations", default="0%", help="allowed activations increase (default 0%%)")
    parser.add_argument("--convs", default="0%", help="allowed increase in the number of convs (default 0%%)")
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="significance level of the runtime test (default 0.05)"
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of the CPUs other processes may take while a runtime is measured before its check is "
        "inconclusive (default 0.25)",
    )
    parser.add_argument(
        "--summary",
        default=None,
        metavar="FILE",
        help="write the markdown summary here too (e.g. $GITHUB_STEP_SUMMARY)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error at an unreadable results file (default: skip it with a warning)",
    )


def run(args: argparse.Namespace) -> int:
    from ..ci.gate import MAX_OTHER_CPU, gate, load_for_gate, parse_percent

    thresholds = {
        k: parse_percent(getattr(args, k))
        for k in ("runtime", "memory", "flops", "params", "activations", "convs")
    }
    base, cur = (load_for_gate(p, strict=args.strict) for p in (args.baseline, args.current))
    result = gate(
        base,
        cur,
        thresholds=thresholds,
        alpha=args.alpha,
        max_other_cpu=MAX_OTHER_CPU if args.max_load is None else args.max_load,
    )
    text = result.markdown()
    print(text)
    if args.summary:
        p = Path(args.summary)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a") as f:  # append: GitHub's step summary file may already hold other steps' output
            f.write(text)
    return result.exit_code

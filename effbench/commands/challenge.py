"""``effbench challenge``: a whole NTIRE ESR challenge's entries, judged by that year's rules.

- ``effbench challenge init REPO --year Y [-o MANIFEST]``: draft a manifest from an organisers' repository;
- ``effbench challenge [run] MANIFEST --out DIR [--parts static,memory,runtime,quality] [--device D]
  [--dataset FOLDER] [--resume] [--timeout S] [--compare-conventions]``: every entry as sweep cells, then
  ``DIR/leaderboard.{json,csv,md,html}``; exit code 0 when every entry was measured ok (or skipped by the
  manifest), 1 when any entry failed (each named on stderr), 2 a usage error, 3 DIR locked by another runner;
- ``effbench challenge check --year Y SPEC [--weights W] [--data-range R] [--dataset D] [--repo REPO]``: a participant's
  pre-submission check with the projected score against the year's baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..base.errors import UsageError
from ..base.inputs import parse_size
from ..base.timeout import positive_seconds
from ._common import add_executor_arguments, executor_from_args
from ._options import add_calibration, add_device, add_json, calibration_from_args
from ._output import json_out

NAME = "challenge"
HELP = "run a whole NTIRE ESR challenge's entries under that year's rules (init, run, check)"
ACTIONS = ("init", "run", "check")
DEFAULT_SUBCOMMAND = "run"


def _year(text: str) -> int:
    from ..challenge.years import year_rules

    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a year: {text!r}") from None
    try:
        year_rules(year)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return year


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    init = sub.add_parser(
        "init", help="draft a manifest from an organisers' repository (models/, model_zoo/)"
    )
    init.add_argument(
        "repo", metavar="REPO", help="the challenge repository (test_demo.py, models/, model_zoo/)"
    )
    init.add_argument("--year", type=_year, required=True, help="the challenge year (2022-2026)")
    init.add_argument(
        "-o",
        "--output",
        dest="manifest_out",  # args.output is the command's Output (effbench.commands._output)
        default=None,
        metavar="MANIFEST",
        help="write the manifest here (default: stdout)",
    )

    run = sub.add_parser("run", help="measure every entry of a manifest and write the leaderboard (default)")
    run.add_argument("manifest", metavar="MANIFEST", help="the challenge manifest (TOML)")
    run.add_argument("--out", required=True, metavar="DIR", help="output folder (cells, logs, leaderboard)")
    run.add_argument(
        "--parts",
        default="static,memory",
        help="what to measure: static (params, FLOPs, #Acts, #Conv), memory (predicted), projection (runtime "
        "PROJECTED on the year's GPU, device-free), runtime, quality (PSNR; needs --dataset), or a registered "
        "measurement's name (a plugin's); default static,memory",
    )
    run.add_argument(
        "--gpu",
        default=None,
        metavar="NAME",
        help="the GPU the runtime is PROJECTED on (titan-xp, gtx-1080-ti, rtx-3090, rtx-a6000, a100, h100, h200; "
        "default: the year's organisers' GPU) for --parts projection",
    )
    add_device(run, "challenge", "runtime and quality")
    run.add_argument("--dataset", default=None, metavar="FOLDER", help="the validation images (LR/HR)")
    run.add_argument(
        "--backend",
        default="eager",
        help="deployment backend of the runtime/quality cells (eager, compile, onnxruntime, tensorrt)",
    )
    run.add_argument(
        "--dtype", default="fp32", help="dtype of the runtime/quality cells (fp32, fp16, bf16, int8)"
    )
    add_calibration(run)
    run.add_argument(
        "--resume", action="store_true", help="keep the entries already measured in DIR, rerun the rest"
    )
    run.add_argument(
        "--compare-conventions",
        action="store_true",
        help="show beside the year's counts what the full convention counts (e.g. padding='same' convs)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds per entry cell: a cell past it is killed and its entry recorded as timeout (exit code 1)",
    )
    add_executor_arguments(run)

    check = sub.add_parser("check", help="a participant's check of one model against the year's rules")
    check.add_argument(
        "spec", metavar="SPEC", help="the model (file.py:Class, package.module:Class, zoo name)"
    )
    check.add_argument(
        "--year", type=_year, required=True, help="the challenge year whose rules apply (2022-2026)"
    )
    check.add_argument("--weights", default=None, metavar="FILE", help="the checkpoint to load strictly")
    check.add_argument("--kwargs", default=None, metavar="JSON", help="constructor keyword arguments (JSON)")
    check.add_argument(
        "--data-range",
        type=float,
        default=None,
        metavar="R",
        help="input range: 1 or 255 (default: the model's)",
    )
    check.add_argument(
        "--dataset", default=None, metavar="FOLDER", help="validation images for the PSNR check"
    )
    add_device(check, "challenge check", "the side-by-side timing")
    check.add_argument(
        "--rounds", type=int, default=None, metavar="N", help="interleaved timing rounds (default: adaptive)"
    )
    check.add_argument(
        "--size",
        default=None,
        metavar="HxW",
        help="LR size of the side-by-side timing (default: the year's counting input)",
    )
    check.add_argument(
        "--baseline",
        default=None,
        metavar="SPEC",
        help="the baseline to time against (default: the year's, from the zoo)",
    )
    check.add_argument(
        "--repo",
        default=None,
        metavar="REPO",
        help="the organisers' repository: SPEC's imports resolve from it (models/...) and the runtime is timed "
        "against their own baseline code (default: the zoo's copy of the year's baseline)",
    )
    check.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="run the model tile by tile (N x N tiles, overlap 32)",
    )
    add_json(check, "the check")
    check.add_argument(
        "--gpu",
        default=None,
        metavar="NAME",
        help="the GPU the runtime is PROJECTED on (titan-xp, gtx-1080-ti, rtx-3090, rtx-a6000, a100, h100, h200; "
        "default: the year's organisers' GPU)",
    )


def run(args: argparse.Namespace) -> int:
    return {"init": _init, "run": _run, "check": _check}[args.action](args)


def _init(args: argparse.Namespace) -> int:
    from ..challenge.draft import draft_manifest

    draft = draft_manifest(args.repo, args.year)
    for note in draft.unresolved:
        print(f"effbench challenge init: to fill in: {note}", file=sys.stderr)
    if args.manifest_out:
        Path(args.manifest_out).write_text(draft.text)
        n = len(draft.challenge.entries)
        print(f"wrote {args.manifest_out}: {n} entries, {len(draft.unresolved)} to fill in", file=sys.stderr)
    else:
        sys.stdout.write(draft.text)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..challenge.manifest import load_manifest
    from ..challenge.run import RunOptions, run_challenge

    challenge = load_manifest(args.manifest)
    summary = run_challenge(
        challenge,
        args.out,
        parts=args.parts,
        device=args.device,
        dataset=args.dataset,
        backend=args.backend,
        dtype=args.dtype,
        gpu=args.gpu,
        progress=not args.no_progress,
        compare_conventions=args.compare_conventions,
        executor=executor_from_args(args),
        options=RunOptions(resume=args.resume, timeout=args.timeout, calibration=calibration_from_args(args)),
    )
    rows = summary["leaderboard"]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(
        f"{len(rows)} entries: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        file=sys.stderr,
    )
    for path in summary["written"]:
        print(path)
    failed = [r for r in rows if r["status"] not in ("ok", "skipped")]
    if failed:
        print(
            f"effbench challenge: {len(failed)} of {len(rows)} entries failed "
            f"({', '.join(r['name'] + ': ' + r['status'] for r in failed)}); exit code 1",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _check(args: argparse.Namespace) -> int:
    import json

    from ..challenge.check import CheckOptions, check_entry, check_markdown

    report = check_entry(
        args.spec,
        args.year,
        weights=args.weights,
        kwargs=args.kwargs,
        data_range=args.data_range,
        dataset=args.dataset,
        device=args.device,
        rounds=args.rounds,
        baseline=args.baseline,
        repo=args.repo,
        timing_size=None if args.size is None else parse_size(args.size),
        options=CheckOptions(tile=args.tile, gpu=args.gpu),
    )
    if args.json:
        print(json.dumps(report, indent=2, default=str), file=json_out(args))
    else:
        print(check_markdown(report))
    return 0 if report["passed"] else 1

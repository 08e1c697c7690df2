"""``effbench study NAME``: run one of the FMEN paper's efficiency studies and write its report beside the paper's."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from ..backends import backend_names, dtype_names
from ..base.errors import UsageError
from ._common import add_executor_arguments, executor_from_args
from ._options import add_calibration, add_device, calibration_from_args

NAME = "study"
HELP = (
    "run a paper study (blocks: Table 1, attention: Table 2, fusion: Sec. 3.1) and report it beside the paper"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..studies import STUDIES

    parser.add_argument("name", choices=sorted(STUDIES), help="which study")
    add_device(parser, "study")
    parser.add_argument(
        "--backend",
        choices=backend_names(),
        default="eager",
        help="deployment backend of every variant's cell (default: eager; others skip the interleaved rounds)",
    )
    parser.add_argument(
        "--dtype", choices=dtype_names(), default="fp32", help="dtype of every variant's cell (default: fp32)"
    )
    add_calibration(parser)
    parser.add_argument("--size", default=None, help="LR input size HxW (default: the study's, 128x128)")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per variant (default: 10)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds per baseline group for the paired time change (default: --repeats, "
        "at least 5)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per variant process (default on CPU: 1, the steadiest for comparisons)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per variant before it is killed")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: studies/NAME)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=SPEC[@JSON]",
        help="add a row: a whole network by spec (zoo name, file.py:Name, package.module:Name), "
        "optional JSON kwargs after '@'; compared with the study's baseline",
    )
    parser.add_argument(
        "--attention",
        action="append",
        default=[],
        metavar="LABEL=SPEC[@JSON]",
        help="attention study: add a row with this block (called as SPEC(n_feats, **JSON)) after "
        "every 3 ERBs of the baseline",
    )
    parser.add_argument("--only", nargs="+", default=None, metavar="LABEL", help="run only these rows")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: re-render the report from the cells already in --out",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_executor_arguments(parser)


def _split(text: str, flag: str) -> tuple[str, str, dict[str, object]]:
    label, sep, rest = text.partition("=")
    if not sep or not label or not rest:
        raise UsageError(f"{flag} takes LABEL=SPEC[@JSON], got {text!r}")
    spec, at, js = rest.partition("@")
    kwargs: dict[str, object] = {}
    if at:
        try:
            kwargs = json.loads(js)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{flag} {label}: kwargs are not valid JSON ({exc}): {js!r}") from None
        if not isinstance(kwargs, dict):
            raise UsageError(f"{flag} {label}: kwargs must be a JSON object, got {js!r}")
    return label, spec, kwargs


def run(args: argparse.Namespace) -> int:
    from ..base.inputs import parse_size
    from ..studies import StudySettings, Variant, attention_variant, get_study, run_study
    from ..studies.verdicts import time_basis_words

    study = get_study(args.name)  # a frozen value: the rows added here are this run's only
    for text in args.variant:
        label, spec, kwargs = _split(text, "--variant")
        study = study.adding(Variant(label, spec, kwargs, baseline=study.default_baseline))
    for text in args.attention:
        if study.name != "attention":
            raise UsageError("--attention applies to the attention study only")
        label, spec, kwargs = _split(text, "--attention")
        study = study.adding(attention_variant(label, spec, **kwargs))
    if args.only:
        study = study.only(args.only)
    command = None
    if sys.argv[1:2] == ["study"] and not args.render_only:
        command = "effbench study " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    settings = StudySettings(
        device=args.device,
        size=parse_size(args.size) if args.size else None,
        repeats=args.repeats,
        threads=args.threads,
        rounds=args.rounds,
        timeout=args.timeout,
        backend=args.backend,
        dtype=args.dtype,
        calibration=calibration_from_args(args),
    )
    doc = run_study(
        study,
        settings,
        args.out,
        executor=executor_from_args(args),
        progress=not args.no_progress,
        command=command,
        render_only=args.render_only,
    )
    for r in doc["rows"]:
        basis = time_basis_words(r)
        print(
            f"{r['variant']:<22} {r['status']:<8} params {r['params'] or 0:>10,}  "
            f"time {r['time_ms'] or float('nan'):9.2f} ms (own process)  "
            + (f"verdict on {basis}: " if basis else "")
            + r["verdict"]
        )
    for f in doc["files"]:
        print(f"wrote {f}")
    bad = [r["variant"] for r in doc["rows"] if r["status"] != "ok"]
    if bad:
        print(f"not measured: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0

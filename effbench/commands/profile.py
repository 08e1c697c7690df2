"""``effbench profile SPEC``: params, FLOPs/MACs, activations, #conv and predicted peak memory of a model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, TextIO

from ..base.errors import UsageError
from ..base.inputs import parse_size
from ..counting.conventions import convention_names
from ..counting.profile import DEFAULT_CONVENTION
from ._common import add_model_arguments, add_timeout_argument, model_from_args
from ._isolate import run_isolated
from ._options import add_json
from ._output import json_out

if TYPE_CHECKING:
    from ..counting import Profile

NAME = "profile"
HELP = "count params, FLOPs/MACs, activations and convolutions under a counting convention"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--size", default="256x256", help="input size HxW (default 256x256)")
    names = convention_names()
    parser.add_argument(
        "--convention",
        default=DEFAULT_CONVENTION,
        choices=names,
        help=f"counting convention: {', '.join(names)} (default: {DEFAULT_CONVENTION}, every arithmetic op)",
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--channels", type=int, default=3, help="input channels (default 3)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--by-module", action="store_true", help="also print the per-module breakdown")
    group.add_argument("--by-op", action="store_true", help="also print the per-operator breakdown")
    parser.add_argument(
        "--compare-conventions",
        action="store_true",
        help="print the totals under every convention side by side (one trace)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory prediction")
    add_json(parser, "the profile (instead of tables)")
    add_timeout_argument(parser)


def _human(n: float | int | None, unit: str = "") -> str:
    """Counts with decimal prefixes (K, M, G, T); bytes (``unit="B"``) in binary MiB, as every effbench output."""
    if n is None:
        return "-"
    if unit == "B":
        return f"{n / 2**20:.2f} MiB"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n}{(' ' + unit) if unit else ''}"


def run(args: argparse.Namespace) -> int:
    return run_isolated(
        lambda: _run_here(args), what=f"profile of {args.spec}", timeout=args.timeout, output=args.output
    )


def _run_here(args: argparse.Namespace) -> int:
    return _run(args, json_out(args))


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from ..counting import compare_conventions, profile

    h, w = parse_size(args.size)
    if args.batch <= 0 or args.channels <= 0:
        raise UsageError("--batch and --channels must be positive")
    model = model_from_args(args)
    shape = {"scale": args.scale, "batch": args.batch, "channels": args.channels}
    others = None
    if args.compare_conventions:  # one trace for every convention
        names = dict.fromkeys((*convention_names(), args.convention))
        others = compare_conventions(
            model, (h, w), conventions=list(names), peak_memory=not args.no_memory, **shape
        )
        prof = others[args.convention]
    else:
        prof = profile(model, (h, w), convention=args.convention, peak_memory=not args.no_memory, **shape)

    if args.json:
        doc = prof.to_dict(breakdowns=True)
        doc["spec"] = model.identity.spec
        doc["scale"] = args.scale
        if others is not None:
            doc["conventions"] = {k: p.to_dict(breakdowns=False) for k, p in others.items()}
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0
    _print_tables(prof, others, args)
    return 0


def _print_tables(prof: Profile, others: dict[str, Profile] | None, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)  # pipes and logs: do not truncate numbers
    shape_in = "x".join(map(str, prof.input_shape))
    shape_out = "x".join(map(str, prof.output_shape))
    t = Table(title=f"{prof.model} x{args.scale}  {shape_in} -> {shape_out}  (convention: {prof.convention})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("exact", justify="right")
    for label, value, unit in (
        ("params", prof.params, ""),
        ("MACs", prof.macs, ""),
        ("FLOPs", prof.flops, ""),
        ("activations", prof.activations, ""),
        ("convs", prof.convs, ""),
        ("peak memory (predicted)", prof.peak_memory_bytes, "B"),
    ):
        t.add_row(label, _human(value, unit), "-" if value is None else f"{value:,}")
    console.print(t)
    if prof.unknown_ops:
        console.print(f"[yellow]ops without a counting rule (counted 0):[/] {', '.join(prof.unknown_ops)}")
    if prof.memory_error:
        console.print(f"[yellow]peak memory not predicted:[/] {prof.memory_error}")
    if others is not None:
        c = Table(title="the same trace under each convention")
        for col in ("convention", "MACs", "FLOPs", "activations", "convs", "FLOPs vs full"):
            c.add_column(col, justify="right")
        base = others["full"].flops if "full" in others else None
        for name, p in others.items():
            ratio = f"{p.flops / base:.3f}" if base else "-"
            c.add_row(name, f"{p.macs:,}", f"{p.flops:,}", f"{p.activations:,}", str(p.convs), ratio)
        console.print(c)
    if args.by_module or args.by_op:
        rows = prof.by_module if args.by_module else prof.by_op
        b = Table(title="per module (inclusive)" if args.by_module else "per operator")
        calls = "ops" if args.by_module else "calls"  # a module row sums the ops run inside it
        for col in ("name", "type", calls, "MACs", "FLOPs", "activations", "convs", "output bytes"):
            b.add_column(col, justify="left" if col in ("name", "type") else "right")
        for r in rows:
            b.add_row(
                r["name"] or "(model)",
                r["kind"],
                str(r["calls"]),
                f"{r['macs']:,}",
                f"{r['flops']:,}",
                f"{r['activations']:,}",
                str(r["convs"]),
                f"{r['bytes']:,}",
            )
        console.print(b)

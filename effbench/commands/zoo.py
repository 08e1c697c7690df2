"""``effbench zoo``: the model zoo as a table (or JSON): scales, deploy-form params per scale, input data range and
which official checkpoints are in the weights cache, downloadable, or absent."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..zoo.cache import checkpoint_status, weights_dir
from ..zoo.index import zoo_records
from ..zoo.registry import PretrainedCfg
from ._options import add_json
from ._output import json_out

NAME = "zoo"
HELP = "list the model zoo: scales, params per scale, data range, checkpoint availability"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_json(parser, "the zoo (instead of a table)")
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        default=None,
        help="only this zoo model (repeatable); unknown names exit with code 2",
    )


def zoo_entries(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One JSON-ready record per zoo model, each checkpoint with its status in this host's cache."""
    entries = zoo_records(names)
    for entry in entries:
        for cks in entry["checkpoints"].values():
            for c in cks:
                c["status"] = checkpoint_status(PretrainedCfg(**c))
    return entries


def _ckpt_cell(entry: dict[str, Any]) -> str:
    parts = []
    for scale, cks in entry["checkpoints"].items():
        if not cks:
            parts.append(f"x{scale}: none")
            continue
        states = [c["status"] for c in cks]
        best = "cached" if "cached" in states else ("downloadable" if "downloadable" in states else "none")
        extra = f" ({states.count('cached')} of {len(cks)} files cached)" if len(cks) > 1 else ""
        parts.append(f"x{scale}: {best}{extra}")
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    entries = zoo_entries(args.model)  # unknown names raise UnknownModelError (exit 2)
    if args.json:
        json.dump({"weights_dir": str(weights_dir()), "models": entries}, json_out(args), indent=2)
        json_out(args).write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="effbench model zoo", caption=f"weights cache: {weights_dir()}")
    table.add_column("name", style="bold")
    table.add_column("scales")
    table.add_column("params (deploy form)", justify="right")
    table.add_column("range")
    table.add_column("checkpoint")
    table.add_column("description")
    for e in entries:
        table.add_row(
            e["name"] + (" *" if e["has_deploy_form"] else ""),
            " ".join(f"x{s}" for s in e["scales"]),
            "\n".join(f"x{s}: {n:,}" for s, n in e["params"].items()),
            "[0,1]" if e["data_range"] == 1.0 else f"[0,{e['data_range']:g}]",
            _ckpt_cell(e),
            e["description"],
        )
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(
        "* has a train-time form (deploy=False / --train-form) re-parameterisable into the deploy form"
    )
    return 0

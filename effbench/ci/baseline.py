"""The baseline file of the CI gate: one JSON list of result documents (schema effbench.result/1), one per
model and measurement conditions. ``save`` writes it from results; ``update`` merges new results into it,
replacing the entries of the same model and conditions and keeping the others."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from ..base.identity import result_key
from ..base.results import SCHEMA, load_results, write_json_atomic
from ..report.table import group_key, merge_by_model


def _key(doc: dict[str, Any]) -> str:
    """The model (by :func:`result_key`, as :func:`merge_by_model` groups) and its measurement conditions."""
    return json.dumps([result_key(doc), list(group_key(doc))], default=list)


def _collect(results: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    if not results:
        raise UsageError("no results given")
    try:
        docs = load_results(results)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if not docs:
        raise UsageError(f"no effbench results (schema {SCHEMA}) in {', '.join(map(str, results))}")
    return merge_by_model(docs)


def save_baseline(results: Sequence[str | os.PathLike[str]], path: str | os.PathLike[str]) -> Path:
    """Write the baseline file from result files/folders (overwrites)."""
    docs = sorted(_collect(results), key=_key)
    return write_json_atomic(path, [{k: v for k, v in d.items() if not k.startswith("_")} for d in docs])


def update_baseline(
    results: Sequence[str | os.PathLike[str]], path: str | os.PathLike[str]
) -> tuple[Path, int, int]:
    """Merge results into an existing baseline file: returns (path, entries replaced, entries added)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"baseline file not found: {p} (create it with `effbench baseline save`)")
    old = {_key(d): d for d in load_results([p])}
    new = _collect(results)
    replaced = sum(1 for d in new if _key(d) in old)
    for d in new:
        old[_key(d)] = {k: v for k, v in d.items() if not k.startswith("_")}
    write_json_atomic(p, [old[k] for k in sorted(old)])
    return p, replaced, len(new) - replaced

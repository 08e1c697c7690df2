"""The challenge leaderboard: one row per manifest entry from its cells' result documents, scored and ranked
under the year's rules, written as JSON, CSV, markdown and HTML.

Row fields: ``name``, ``status``, ``error``, ``baseline``, ``params``, ``flops``, ``activations``, ``convs`` (each
under the year's convention), ``memory_predicted_mib`` (at the year's memory input), where measured
``runtime_ms`` (the protocol's mean), ``memory_mib`` (``max_memory_allocated`` over the run) and ``psnr_db``, then
``eligible`` (PSNR at or above the year's threshold; None when unknown), the score terms, ``score`` and ``rank``
(score years), or the tracks' ranks (rank years); ``flops_full``/``activations_full``/``convs_full`` give what the
``full`` convention counts (``--compare-conventions`` shows them); ``note``: what the manifest says the figures rest on (a
guess of ``challenge init``, a checkpoint not found). A metric of the catalogue that is a report column and that
none of these shows (a plugin measurement's, run as a part: ``--parts static,toy``) is a row field and a column
under its key.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.results import load_results, write_json_atomic
from ..report.text import fmt, md_table

if TYPE_CHECKING:
    from ..base.catalogue import Metric
    from .manifest import Challenge

__all__ = ["build_leaderboard", "leaderboard_markdown", "write_leaderboard"]

_MIB = 1024**2
# statuses that say the entry never got measured: they outrank a part's own failure in the row's status
_BUILD_STATUSES = ("skipped", "missing_package", "needs_cuda", "checkpoint_error")
#: the catalogue's report columns the leaderboard's own columns show (Mem: measured, else predicted)
_SHOWN = frozenset({"params", "flops", "activations", "convs", "runtime_ms", "peak_memory_bytes", "psnr"})


def _extra_metrics() -> tuple[Metric, ...]:
    """The catalogue's report columns the leaderboard does not show by its own columns (a plugin's)."""
    from ..base.catalogue import columns

    return tuple(m for m in columns() if m.key not in _SHOWN)


def _merge(docs: list[dict[str, Any]]) -> tuple[str, str | None, dict[str, Any], dict[str, Any]]:
    """(status, error, metrics, identity) of one entry from its cells' documents."""
    metrics: dict[str, Any] = {}
    identity: dict[str, Any] = {}
    statuses = [(d["status"], d.get("error")) for d in docs]
    for d in sorted(docs, key=lambda d: d.get("created", "")):
        metrics.update(d.get("metrics") or {})
        identity = d.get("identity") or identity
    bad = [s for s in statuses if s[0] != "ok"]
    bad.sort(key=lambda s: 0 if s[0] in _BUILD_STATUSES else 1)
    status, error = bad[0] if bad else ("ok", None)
    return status, error, metrics, identity


def _row(
    name: str, docs: list[dict[str, Any]], baseline: str | None, extra: tuple[Metric, ...] = ()
) -> dict[str, Any]:
    if not docs:
        return {"name": name, "status": "not_run", "error": "no result yet", "baseline": name == baseline}
    status, error, m, identity = _merge(docs)
    runtime = m.get("runtime_ms")
    by_conv = m.get("by_convention", {}).get("full", {})
    predicted = m.get("peak_memory_predicted_bytes")
    measured = m.get("peak_memory_measured_bytes")
    row = {
        "name": name,
        "status": status,
        "error": error,
        "baseline": name == baseline,
        "params": m.get("params"),
        "flops": m.get("flops"),
        "activations": m.get("activations"),
        "convs": m.get("convs"),
        "memory_predicted_mib": None if predicted is None else predicted / _MIB,
        # the harness's run (effbench.challenge.harness): where its peak is, and one no-grad forward beside it
        "memory_inference_mib": m.get("memory_inference_mib"),
        "memory_peak_stage": m.get("memory_peak_stage"),
        "input_dependent": m.get("input_dependent"),
        "ranges": m.get("ranges"),
        "draw_ranges": m.get("draw_ranges"),
        "changed_by_first_forward": m.get("changed_by_first_forward"),
        "as_built": m.get("as_built"),
        "counted_path_differs": m.get("counted_path_differs"),
        "stand_ins": m.get("stand_ins"),
        "runtime_ms": runtime.get("mean") if isinstance(runtime, dict) else runtime,
        # a projection (effbench.challenge.projection), never a measurement: shown labelled as one
        "runtime_projected_ms": m.get("runtime_projected_ms"),
        "runtime_projected_low_ms": m.get("runtime_projected_low_ms"),
        "runtime_projected_high_ms": m.get("runtime_projected_high_ms"),
        "runtime_projected_gpu": m.get("runtime_projected_gpu"),
        "memory_mib": None if measured is None else measured / _MIB,
        "psnr_db": m.get("psnr"),
        "flops_full": by_conv.get("flops"),
        "activations_full": by_conv.get("activations"),
        "convs_full": by_conv.get("convs"),
        "uncounted_ops": m.get("uncounted_ops"),
        "counting": m.get("counting"),
        "memory_input": m.get("memory_input"),
        "data_range": identity.get("data_range"),
        "model_key": identity.get("key"),
    }
    row.update({x.key: m[x.key] for x in extra if m.get(x.key) is not None and x.key not in row})
    return row


def build_leaderboard(challenge: Challenge, out: str | Path) -> list[dict[str, Any]]:
    """The leaderboard rows of ``challenge`` (a loaded manifest) from the cells in ``out``, in manifest order."""
    from .scores import score_leaderboard

    cells = Path(out) / "cells"
    docs = load_results([cells]) if cells.is_dir() else []
    by_entry: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        if d.get("entry") is not None and d.get("challenge_year") == challenge.year:
            by_entry.setdefault(d["entry"], []).append(d)
    extra = _extra_metrics() if docs else ()
    rows = [_row(e.name, by_entry.get(e.name, []), challenge.baseline, extra) for e in challenge.entries]
    for row, e in zip(rows, challenge.entries):  # what the manifest says the figures rest on
        notes = [getattr(e, "note", None)]
        if getattr(e, "weights_missing", False):
            notes.append(
                f"checkpoint {Path(e.weights).name} not found: counted with the constructor's weights"
            )
        row["note"] = "; ".join(n for n in notes if n) or None
    return score_leaderboard(rows, challenge.year, challenge.baseline)


_COLUMNS = [
    ("name", "Entry", None),
    ("status", "Status", None),
    ("params", "Params [M]", (1e6, ".4f")),
    ("flops", "FLOPs [G]", (1e9, ".4f")),
    ("activations", "Acts [M]", (1e6, ".4f")),
    ("convs", "Conv", (1, "d")),
    ("memory_predicted_mib", "Mem pred. [MiB]", (1, ".1f")),
    ("memory_inference_mib", "Mem infer. [MiB]", (1, ".1f")),
    ("runtime_ms", "Runtime [ms]", (1, ".2f")),
    ("memory_mib", "Mem [MiB]", (1, ".1f")),
    ("psnr_db", "PSNR [dB]", (1, ".2f")),
]
_FULL = [
    ("flops_full", "FLOPs full [G]", (1e9, ".4f")),
    ("activations_full", "Acts full [M]", (1e6, ".4f")),
    ("convs_full", "Conv full", (1, "d")),
]


def _columns(rows: list[dict[str, Any]], compare: bool) -> list[tuple[str, str, Any]]:
    cols = list(_COLUMNS)
    if _any(rows, "runtime_projected_ms"):  # after the measured runtime
        cols.insert(9, ("runtime_projected_ms", "Runtime PROJECTED [ms] (80% interval)", (1, ".2f")))
    if compare:
        cols[6:6] = _FULL
    for m in _extra_metrics():  # a plugin measurement's metrics, as the catalogue shows them
        if _any(rows, m.key):
            title = f"{m.title} [{m.unit}]" if m.unit else m.title
            cols.append((m.key, title, (m.scale, m.fmt) if m.fmt else None))
    score_cols = [
        k for k in ("score_runtime", "score_flops", "score_params", "score", "rank") if _any(rows, k)
    ]
    score_cols += sorted({k for r in rows for k in r if k.startswith("rank_") and _any(rows, k)})
    cols += [(k, k.replace("_", " ").capitalize(), (1, "d" if "rank" in k else ".4f")) for k in score_cols]
    return cols


def _any(rows: list[dict[str, Any]], key: str) -> bool:
    return any(r.get(key) is not None for r in rows)


def _cell(row: dict[str, Any], key: str, how: Any) -> str:
    v = row.get(key)
    if how is None:
        return "-" if v is None else str(v)
    div, spec = how
    if v is None or isinstance(v, bool):
        return "-"
    if not isinstance(v, (int, float)):  # a plugin's structured or text value
        return str(v)
    if key == "runtime_projected_ms" and row.get("runtime_projected_low_ms") is not None:
        return f"{fmt(v, spec)} ({fmt(row['runtime_projected_low_ms'], spec)}-{fmt(row['runtime_projected_high_ms'], spec)})"
    return fmt(int(v) if spec == "d" else v / div, spec)


def _notes(challenge: Challenge, rows: list[dict[str, Any]]) -> list[str]:
    from .years import year_rules

    rules = year_rules(challenge.year)
    counted = ", ".join(f"{k} by {v}" for k, v in rules.counting.items())
    h, w = rules.counting_input[-2:]
    mh, mw = rules.memory.largest_lr
    lines = [
        f"Counting on a 1x3x{h}x{w} input: {counted}. Predicted memory at {mh}x{mw} "
        f"({rules.memory.validation_set}'s largest LR image).",
    ]
    projected = [r for r in rows if r.get("runtime_projected_ms") is not None]
    if projected:
        from ..timing.projection import load_cost_model

        gpus = ", ".join(sorted({r.get("runtime_projected_gpu") or "?" for r in projected}))
        lines.append(
            f"Runtime PROJECTED: not measured; projected on {gpus} under the year's runtime protocol from a "
            f"shapes-only trace, by the cost model fitted on the {load_cost_model().fitted_on}; the interval "
            "is the fit's leave-one-out 80% range (effbench.timing.projection, reports/projection/)."
        )
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        lines.append(f"{r['name']}: {r['status']}: {(r.get('error') or '').splitlines()[0][:300]}")
    for r in rows:
        if r.get("uncounted_ops"):
            lines.append(f"{r['name']}: not counted by the FLOPs convention: {', '.join(r['uncounted_ops'])}")
    lines += [f"{r['name']}: {r['note']}" for r in rows if r.get("note")]  # what the figures rest on
    lines += _harness_notes(rows)
    return lines


def _harness_notes(rows: list[dict[str, Any]]) -> list[str]:
    """What the harness's semantics did to an entry's figures (effbench.challenge.harness)."""
    lines = []
    if _any(rows, "memory_inference_mib"):
        lines.append(
            "Mem pred.: what the harness's max_memory_allocated records over its run (construction with its "
            "forwards, the validation images with autograd as the harness runs them, dtypes and autocast as the "
            "model has them); Mem infer.: one no-grad forward of the largest validation image."
        )
    for r in rows:
        name = r["name"]
        if r.get("memory_peak_stage") and r["memory_peak_stage"] != "validation":
            lines.append(f"{name}: predicted memory peaks in {r['memory_peak_stage']}")
        if r.get("input_dependent"):
            ranges = ", ".join(f"{k} {lo:,}-{hi:,}" for k, (lo, hi) in (r.get("ranges") or {}).items())
            drawn = ", ".join(f"{k} {lo:,}-{hi:,}" for k, (lo, hi) in (r.get("draw_ranges") or {}).items())
            lines.append(
                f"{name}: input_dependent: counts depend on the input's values; over the draws: {drawn or ranges}"
                + (f"; one more run of the tools (99.9% prediction interval): {ranges}" if drawn else "")
            )
        if r.get("changed_by_first_forward") and r.get("as_built"):
            built = ", ".join(f"{k} {v:,}" for k, v in r["as_built"].items())
            lines.append(f"{name}: changes itself on its first forward; counted after it, as built: {built}")
        if r.get("counted_path_differs"):
            names = ", ".join(u["name"] for u in r["counted_path_differs"].get("unavailable", []))
            lines.append(f"{name}: counted_path_differs: counted without {names} (its own fallback path)")
        if r.get("stand_ins"):
            lines.append(
                f"{name}: CUDA-only {', '.join(r['stand_ins'])} run through effbench's CPU stand-ins"
            )
    return lines


def leaderboard_markdown(
    challenge: Challenge, rows: list[dict[str, Any]], *, compare_conventions: bool = False
) -> str:
    """The leaderboard as a markdown page: the table, then how it was counted and why entries failed."""
    cols = _columns(rows, compare_conventions)
    lines = [f"# {challenge.name}: leaderboard", ""]
    align = ["left", "left"] + ["right"] * (len(cols) - 2)
    body = [
        [_cell(r, k, how) + (" (baseline)" if k == "name" and r["baseline"] else "") for k, _, how in cols]
        for r in rows
    ]
    lines += md_table([t for _, t, _ in cols], body, align)
    lines += ["", *[f"- {n}" for n in _notes(challenge, rows)]]
    return "\n".join(lines) + "\n"


def _html(challenge: Challenge, rows: list[dict[str, Any]], compare: bool) -> str:
    cols = _columns(rows, compare)
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in cols)
    body = []
    for r in rows:
        cls = ' class="baseline"' if r["baseline"] else ""
        cells = "".join(f"<td>{html.escape(_cell(r, k, how))}</td>" for k, _, how in cols)
        body.append(f"<tr{cls}>{cells}</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in _notes(challenge, rows))
    title = html.escape(f"{challenge.name}: leaderboard")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
        "td:nth-child(-n+2){text-align:left}tr.baseline{background:#fff6d5}.notes{font-size:.85em;color:#555}"
        f"</style></head><body><h1>{title}</h1><table><tr>{head}</tr>{''.join(body)}</table>"
        f"<ul class='notes'>{notes}</ul></body></html>\n"
    )


def write_leaderboard(
    challenge: Challenge, rows: list[dict[str, Any]], out: str | Path, *, compare_conventions: bool = False
) -> list[Path]:
    """Write ``out/leaderboard.{json,csv,md,html}``; returns the paths."""
    out = Path(out)
    meta = {"challenge": challenge.name, "year": challenge.year, "baseline": challenge.baseline}
    paths = [out / f"leaderboard.{ext}" for ext in ("json", "csv", "md", "html")]
    write_json_atomic(paths[0], {**meta, "rows": rows})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    paths[1].write_text(buf.getvalue())
    paths[2].write_text(leaderboard_markdown(challenge, rows, compare_conventions=compare_conventions))
    paths[3].write_text(_html(challenge, rows, compare_conventions))
    return paths

"""The Table 4-style comparison: one row per model, the paper's units and rounding, best/second-best marks.

Table 4 of the FMEN paper reports Params in K, FLOPs in G, Runtime in ms, Memory in M (MiB, from
``torch.cuda.max_memory_allocated``), Activations in M, Convs as a count and PSNR in dB; the best value of each
column is red and the second best blue. Here best is **bold** and second best *italic*; lower is better except
PSNR. A metric that is missing is a dash with a footnote, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base.identity import ModelIdentity, display_names, result_key

MIB = 2**20


@dataclass(frozen=True)
class Column:
    """One table column: where its value comes from, its unit, its rounding and which way is better."""

    key: str  # frame column name, e.g. "params_k"
    title: str  # markdown header, e.g. "Params"
    unit: str  # suffix printed after the value ("K", "G", "ms", "M", "")
    decimals: int
    higher_is_better: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("params_k", "Params", "K", 0),
    Column("flops_g", "FLOPs", "G", 2),
    Column("runtime_ms", "Runtime", "ms", 2),
    Column("memory_mib", "Memory", "M", 2),
    Column("activations_m", "Activations", "M", 2),
    Column("convs", "Convs", "", 0),
    Column("psnr_db", "PSNR", "", 2, higher_is_better=True),
)

# Fields that make two results comparable in one table.
GROUP_FIELDS = ("device", "input_shape", "scale", "dtype", "protocol", "convention")


@dataclass
class TableRow:
    """One model's row: values in table units (``None`` when missing) and the footnotes attached to cells."""

    model: str
    values: dict[str, float | None]
    notes: dict[str, list[str]] = field(default_factory=dict)  # column key ("" = the row) -> footnote texts
    memory_source: str | None = None  # "measured" | "predicted" | None
    status: str = "ok"


@dataclass
class Table:
    """A comparison table of results measured under one set of conditions."""

    rows: list[TableRow]
    meta: dict[str, Any]  # device, device_name, input_shape, scale, protocol, convention, dtype
    columns: tuple[Column, ...] = COLUMNS

    def ranks(self) -> dict[str, dict[str, int]]:
        """Per column, model -> 1 (best) or 2 (second best), compared at the displayed rounding."""
        out: dict[str, dict[str, int]] = {}
        for col in self.columns:
            vals = {r.model: round(v, col.decimals) for r in self.rows if (v := r.values.get(col.key)) is not None}
            distinct = sorted(set(vals.values()), reverse=col.higher_is_better)
            marks: dict[str, int] = {}
            for place, target in enumerate(distinct[:2], start=1):
                for m, v in vals.items():
                    if v == target:
                        marks[m] = place
            # A single model (or all equal) is trivially "best": do not decorate a column without a contest.
            if len(vals) >= 2:
                out[col.key] = marks
        return out

    def frame(self):
        """The table as a pandas DataFrame in the paper's units (NaN where missing)."""
        import pandas as pd

        records = []
        for r in self.rows:
            rec: dict[str, Any] = {"method": r.model}
            for col in self.columns:
                v = r.values.get(col.key)
                rec[col.key] = float("nan") if v is None else v
            rec["memory_source"] = r.memory_source
            rec["status"] = r.status
            records.append(rec)
        return pd.DataFrame(records, columns=["method", *[c.key for c in self.columns], "memory_source", "status"])


def _metric(metrics: dict[str, Any], name: str) -> float | None:
    v = metrics.get(name)
    if isinstance(v, dict):
        v = v.get("median", v.get("mean"))
    if v is None or isinstance(v, (list, dict, str, bool)):
        return None
    v = float(v)
    return None if math.isnan(v) else v


def runtime_ms(metrics: dict[str, Any]) -> float | None:
    """Median runtime in ms from ``metrics['runtime_ms']`` (a stats dict or a plain number)."""
    return _metric(metrics, "runtime_ms")


def _shape_key(doc: dict[str, Any]) -> tuple | None:
    s = doc.get("input_shape")
    return tuple(s) if s else None


def group_key(doc: dict[str, Any]) -> tuple:
    """The measurement conditions of a result; results with equal keys go into one table."""
    return tuple(_shape_key(doc) if f == "input_shape" else doc.get(f) for f in GROUP_FIELDS)


def _device_name(doc: dict[str, Any]) -> str | None:
    env = doc.get("env") or {}
    return env.get("gpu_name") or env.get("cpu_model") or env.get("device_name")


def merge_by_model(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the results of one model measured under the same conditions (later documents win per metric).

    Sweeps may write a cell per metric family; the table wants one row per model.
    """
    merged: dict[tuple, dict[str, Any]] = {}
    for d in sorted(docs, key=lambda d: str(d.get("created") or "")):
        key = (result_key(d), group_key(d))
        if key not in merged:
            merged[key] = {**d, "metrics": dict(d.get("metrics") or {})}
            continue
        cur = merged[key]
        if d.get("status", "ok") == "ok" or cur.get("status", "ok") != "ok":
            cur["metrics"].update(d.get("metrics") or {})
            if d.get("status", "ok") != "ok" and not cur["metrics"]:
                cur["status"], cur["error"] = d.get("status"), d.get("error")
        else:  # a failed cell next to a good one: keep the good metrics, remember the failure
            cur.setdefault("_failures", []).append(f"{d.get('status')}: {d.get('error') or 'no message'}")
    return list(merged.values())


def split_groups(docs: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Results split by measurement conditions. Documents without an input shape (e.g. quality-only cells,
    measured on whole images) are folded into every group holding the same model and scale."""
    docs = list(docs)
    shaped = [d for d in docs if _shape_key(d) is not None]
    loose = [d for d in docs if _shape_key(d) is None]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for d in shaped:
        groups.setdefault(group_key(d), []).append(d)
    if not groups and loose:
        return [loose]
    out = []
    for key, members in groups.items():
        extra = []
        models = {(result_key(m), m.get("scale")) for m in members}
        for d in loose:
            if (result_key(d), d.get("scale")) in models:
                # take on the group's conditions so that merging puts it on the same row
                extra.append({**d, **dict(zip(GROUP_FIELDS, key, strict=True)), "input_shape": list(key[1])})
        out.append(members + extra)
    return out


def build_table(docs: Sequence[dict[str, Any]], order: Sequence[str] | None = None) -> Table:
    """Build the table of results measured under one set of conditions (see :func:`split_groups`)."""
    docs = merge_by_model(docs)
    names = display_names(ModelIdentity.of_result(d) for d in docs)
    rows: list[TableRow] = []
    mem_sources: set[str] = set()
    for d in docs:
        m = d.get("metrics") or {}
        status = d.get("status", "ok")
        notes: dict[str, list[str]] = {}
        values: dict[str, float | None] = {}
        p = _metric(m, "params")
        values["params_k"] = None if p is None else p / 1e3
        f = _metric(m, "flops")
        values["flops_g"] = None if f is None else f / 1e9
        values["runtime_ms"] = runtime_ms(m)
        measured, predicted = _metric(m, "peak_memory_measured_bytes"), _metric(m, "peak_memory_predicted_bytes")
        source = "measured" if measured is not None else ("predicted" if predicted is not None else None)
        mem = measured if measured is not None else predicted
        values["memory_mib"] = None if mem is None else mem / MIB
        if source:
            mem_sources.add(source)
        a = _metric(m, "activations")
        values["activations_m"] = None if a is None else a / 1e6
        values["convs"] = _metric(m, "convs")
        values["psnr_db"] = _metric(m, "psnr")
        if status != "ok":
            notes.setdefault("", []).append(f"{status}: {d.get('error') or 'no message'}")
        for fail in d.get("_failures", []):
            notes.setdefault("", []).append(f"a cell failed ({fail})")
        for col in COLUMNS:
            if values[col.key] is None and status == "ok":
                what = {"psnr_db": "PSNR not measured (no quality run in these results)",
                        "memory_mib": "no peak memory (neither measured nor predicted)",
                        "runtime_ms": "runtime not measured"}.get(col.key, f"{col.title.lower()} not counted")
                notes.setdefault(col.key, []).append(what)
        rows.append(TableRow(names[result_key(d)], values, notes, source, status))
    if order:
        pos = {name: i for i, name in enumerate(order)}
        rows.sort(key=lambda r: pos.get(r.model, len(pos)))
    first = docs[0] if docs else {}
    meta = {f: first.get(f) for f in GROUP_FIELDS}
    meta["device_name"] = next((n for d in docs if (n := _device_name(d))), None)
    meta["memory_sources"] = sorted(mem_sources)
    for r in rows:
        if r.memory_source == "predicted" and len(mem_sources) > 1:
            r.notes.setdefault("memory_mib", []).append("predicted (no measured peak in this result)")
    return Table(rows, meta)


def format_value(v: float | None, col: Column, unit: bool = True) -> str:
    """``894K``, ``58.53G``, ``50.86ms``, ``471.76M``, ``43``, ``29.13``; ``-`` when missing."""
    if v is None:
        return "-"
    text = f"{v:,.{col.decimals}f}" if col.key == "flops_g" and v >= 1000 else f"{v:.{col.decimals}f}"
    return text + (col.unit if unit else "")

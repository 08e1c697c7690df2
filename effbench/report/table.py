"""The Table 4-style comparison: one row per model, the paper's units and rounding, best/second-best marks.

Table 4 of the FMEN paper reports Params in K, FLOPs in G, Runtime in ms, Memory in M (MiB, from
``torch.cuda.max_memory_allocated``), Activations in M, Convs as a count and PSNR in dB; the best value of each
column is red and the second best blue. Here best is **bold** and second best *italic*. The columns, their units,
rounding and directions come from the metric catalogue (:mod:`effbench.base.catalogue`): Table 4's columns are in
every table, any other catalogued column appears when a result of the table carries it. A metric that is missing
is a dash with a footnote, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base.catalogue import Metric, columns, interval, lookup
from ..base.identity import ModelIdentity, display_names, result_key

MIB = 2**20

# Fields that make two results comparable in one table.
GROUP_FIELDS = ("device", "input_shape", "scale", "dtype", "protocol", "convention")


@dataclass
class TableRow:
    """One model's row: values in table units (``None`` when missing) and the footnotes attached to cells."""

    model: str
    values: dict[str, float | None]  # column key -> value in the column's unit
    notes: dict[str, list[str]] = field(default_factory=dict)  # column key ("" = the row) -> footnote texts
    # column filled from one of several metrics -> its origin
    sources: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    # column -> 95 % interval, table units
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Table:
    """A comparison table of results measured under one set of conditions."""

    rows: list[TableRow]
    meta: dict[str, Any]  # device, device_name, input_shape, scale, protocol, convention, dtype
    columns: tuple[Metric, ...]  # the catalogue metrics shown, in column order

    def has_intervals(self, col: Metric) -> bool:
        """True when every row with a value in ``col`` also has its 95 % interval (a measured metric)."""
        valued = [r for r in self.rows if r.values.get(col.column) is not None]
        return bool(valued) and all(col.column in r.intervals for r in valued)

    def cell_text(self, row: TableRow, col: Metric) -> str:
        """The displayed cell: the value, and ``±x%`` (half the 95 % interval, relative) where it has one."""
        v = row.values.get(col.column)
        text = col.display(v)
        iv = row.intervals.get(col.column)
        if v and iv:
            text += f" ±{100 * (iv[1] - iv[0]) / 2 / abs(v):.1f}%"
        return text

    def _interval_ranks(self, col: Metric) -> dict[str, int]:
        """Best (1) and second (2) by interval: a place is shared by every model whose interval overlaps that of the
        place's best value (a tie), and no place is given when one group would hold every model."""
        rows = sorted(
            (r for r in self.rows if r.values.get(col.column) is not None),
            key=lambda r: r.values[col.column],
            reverse=col.better == "higher",
        )
        marks: dict[str, int] = {}
        left = rows
        for place in (1, 2):
            if not left:
                break
            lo, hi = left[0].intervals[col.column]
            group = [r for r in left if r.intervals[col.column][0] <= hi and r.intervals[col.column][1] >= lo]
            if len(group) == len(rows):
                return {}
            marks.update({r.model: place for r in group})
            left = [r for r in left if r.model not in marks]
        return marks

    def ranks(self) -> dict[str, dict[str, int]]:
        """Per column, model -> 1 (best) or 2 (second best): by 95 % interval where the column has them (overlapping
        intervals share a place), otherwise compared at the displayed rounding."""
        out: dict[str, dict[str, int]] = {}
        for col in self.columns:
            if col.better is None:
                continue
            if self.has_intervals(col):
                if len(self.rows) >= 2:
                    out[col.column] = self._interval_ranks(col)
                continue
            vals = {
                r.model: round(v, col.decimals)
                for r in self.rows
                if (v := r.values.get(col.column)) is not None
            }
            distinct = sorted(set(vals.values()), reverse=col.better == "higher")
            marks: dict[str, int] = {}
            for place, target in enumerate(distinct[:2], start=1):
                for m, v in vals.items():
                    if v == target:
                        marks[m] = place
            # A single model (or all equal) is trivially "best": do not decorate a column without a contest.
            if len(vals) >= 2:
                out[col.column] = marks
        return out

    def frame(self):
        """The table as a pandas DataFrame in the paper's units (NaN where missing)."""
        import pandas as pd

        sourced = [c for c in self.columns if c.sources]
        names = ["method", *[c.column for c in self.columns], *[source_field(c) for c in sourced], "status"]
        records = []
        for r in self.rows:
            rec: dict[str, Any] = {"method": r.model}
            for col in self.columns:
                v = r.values.get(col.column)
                rec[col.column] = float("nan") if v is None else v
            for col in sourced:
                rec[source_field(col)] = r.sources.get(col.column)
            rec["status"] = r.status
            records.append(rec)
        return pd.DataFrame(records, columns=names)


def source_field(col: Metric) -> str:
    """The frame field naming where a column with several sources took each value (``memory_source``)."""
    return f"{col.label.lower()}_source"


def _shape_key(doc: dict[str, Any]) -> tuple | None:
    s = doc.get("input_shape")
    return tuple(s) if s else None


def group_key(doc: dict[str, Any]) -> tuple:
    """The measurement conditions of a result; results with equal keys go into one table. A deployment backend
    other than eager (:mod:`effbench.backends`) is one more condition; eager results keep their key as before."""
    key = tuple(_shape_key(doc) if f == "input_shape" else doc.get(f) for f in GROUP_FIELDS)
    backend = doc.get("backend")
    return key if backend in (None, "eager") else (*key, backend)


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
                extra.append({**d, **dict(zip((*GROUP_FIELDS, "backend"), key)), "input_shape": list(key[1])})
        out.append(members + extra)
    return out


def build_table(docs: Sequence[dict[str, Any]], order: Sequence[str] | None = None) -> Table:
    """Build the table of results measured under one set of conditions (see :func:`split_groups`)."""
    docs = merge_by_model(docs)
    names = display_names(ModelIdentity.of_result(d) for d in docs)
    shown = [
        c
        for c in columns()
        if c.always_shown or any(lookup(d.get("metrics") or {}, c)[0] is not None for d in docs)
    ]
    rows: list[TableRow] = []
    origins: dict[str, set[str]] = {c.column: set() for c in shown if c.sources}
    fallbacks: list[tuple[TableRow, str, str]] = []  # a cell filled by a later source: row, column, its note
    for d in docs:
        m = d.get("metrics") or {}
        status = d.get("status", "ok")
        notes: dict[str, list[str]] = {}
        values: dict[str, float | None] = {}
        sources: dict[str, str] = {}
        row = TableRow(names[result_key(d)], values, notes, sources, status)
        for col in shown:
            v, source = lookup(m, col)
            values[col.column] = None if v is None else v / col.scale
            iv = interval(m.get(source.key)) if source is not None else None
            if iv is not None:
                row.intervals[col.column] = (iv[0] / col.scale, iv[1] / col.scale)
            if col.sources and source is not None and source.origin:
                sources[col.column] = source.origin
                origins[col.column].add(source.origin)
                if source.key != col.sources[0] and source.fallback_note:
                    fallbacks.append((row, col.column, source.fallback_note))
            if v is None and status == "ok":
                notes.setdefault(col.column, []).append(col.missing_note)
        if status != "ok":
            notes.setdefault("", []).append(f"{status}: {d.get('error') or 'no message'}")
        for fail in d.get("_failures", []):
            notes.setdefault("", []).append(f"a cell failed ({fail})")
        rows.append(row)
    if order:
        pos = {name: i for i, name in enumerate(order)}
        rows.sort(key=lambda r: pos.get(r.model, len(pos)))
    first = docs[0] if docs else {}
    meta = {f: first.get(f) for f in GROUP_FIELDS}
    meta["backend"] = first.get("backend") or "eager"
    meta["device_name"] = next((n for d in docs if (n := _device_name(d))), None)
    for col in shown:
        if col.sources:
            meta[f"{source_field(col)}s"] = sorted(origins[col.column])
    for row, column, note in fallbacks:
        if len(origins[column]) > 1:  # the table mixes sources: say which cells took the fallback
            row.notes.setdefault(column, []).append(note)
    return Table(rows, meta, tuple(shown))

"""Runtime by deployment backend: one column per backend and dtype, the ranks under each and how they change.

Results of the same models under the same conditions (device, input, scale, protocol, convention) but different
backends or dtypes (:mod:`effbench.backends`) make one :class:`BackendComparison`: a :class:`~.table.Table` whose
columns are the runtime under each variant (``eager fp32``, ``onnxruntime fp32``, ``onnxruntime int8`` ...) and the
equivalence PSNR of each non-reference variant against eager fp32, with the runtime rank of every model under each
variant and the change of ranking from the reference (eager fp32) to each other variant, e.g.
``rank eager fp32 -> onnxruntime fp32: fmen_s 2 -> 1``.

Ranks here are competition places: models whose runtime intervals overlap share a place (``2=``), so a
change of rank is a change beyond the spread of the measurements.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base.catalogue import Metric, lookup, metric
from ..base.identity import ModelIdentity, display_names, result_key
from .markdown import render_table_markdown
from .table import (
    GROUP_FIELDS,
    Spread,
    Table,
    TableRow,
    _device_name,
    _shape_key,
    environment,
    merge_by_model,
    spread_of,
)
from .text import md_table

DTYPE_ORDER = ("fp32", "fp16", "bf16", "int8")
REFERENCE = ("eager", "fp32")
_CONDITIONS = tuple(f for f in GROUP_FIELDS if f != "dtype")


def variant_of(doc: dict[str, Any]) -> tuple[str, str]:
    """``(backend, dtype)`` of a result (``eager`` when it names no backend)."""
    return (doc.get("backend") or "eager", doc.get("dtype") or "fp32")


def variant_name(variant: tuple[str, str]) -> str:
    return " ".join(variant)


def _variant_order(v: tuple[str, str]) -> tuple:
    backend, dtype = v
    return (backend != "eager", backend, DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else 99, dtype)


def _slug(v: tuple[str, str]) -> str:
    return "_".join(v)


@dataclass
class BackendComparison:
    """The runtime of each model under each variant (``table``; columns ``runtime_ms_<backend>_<dtype>`` and
    ``equivalence_psnr_db_<backend>_<dtype>``), its ``ranks`` (variant -> model -> place, ``None`` when not
    measured), which places are shared (``shared``) and the ``reference`` variant the changes are from."""

    table: Table
    variants: list[tuple[str, str]]
    reference: tuple[str, str]
    ranks: dict[tuple[str, str], dict[str, int | None]]
    shared: dict[tuple[str, str], set[str]]

    def runtime_column(self, v: tuple[str, str]) -> Metric:
        return next(c for c in self.table.columns if c.column == f"runtime_ms_{_slug(v)}")

    def rank_text(self, v: tuple[str, str], model: str) -> str:
        """``2``, ``2=`` when shared with another model, ``-`` when not measured under ``v``."""
        r = self.ranks[v].get(model)
        if r is None:
            return "-"
        return f"{r}=" if model in self.shared[v] else str(r)

    def changes(self) -> list[str]:
        """Per non-reference variant: ``rank eager fp32 -> onnxruntime fp32: fmen_s 2 -> 1, rlfn 1 -> 2`` (the
        models whose place differs), ``no change`` when none does, and the models it could not measure."""
        ref = variant_name(self.reference)
        lines = []
        for v in self.variants:
            if v == self.reference:
                continue
            moved, missing = [], []
            for row in self.table.rows:
                a, b = self.ranks[self.reference].get(row.model), self.ranks[v].get(row.model)
                if b is None and a is not None:
                    missing.append(row.model)
                elif a is not None and a != b:
                    moved.append(
                        f"{row.model} {self.rank_text(self.reference, row.model)} -> {self.rank_text(v, row.model)}"
                    )
            text = f"rank {ref} -> {variant_name(v)}: " + (", ".join(moved) if moved else "no change")
            if missing:
                text += f" (not measured under {variant_name(v)}: {', '.join(missing)})"
            lines.append(text)
        return lines

    def record(self) -> dict[str, Any]:
        """The comparison for ``report.json``: conditions, variants, runtime and rank per model, the changes."""
        return {
            "conditions": {k: self.table.meta.get(k) for k in _CONDITIONS},
            "reference": variant_name(self.reference),
            "variants": [variant_name(v) for v in self.variants],
            "rows": [
                {
                    "method": r.model,
                    **{k: v for k, v in r.values.items()},
                    **{f"rank_{_slug(v)}": self.ranks[v].get(r.model) for v in self.variants},
                }
                for r in self.table.rows
            ],
            "changes": self.changes(),
        }


def _places(values: dict[str, float], spreads: dict[str, Spread | None]) -> tuple[dict[str, int], set[str]]:
    """Competition ranks, lowest value first: the models whose spread overlaps that of the place's lead share
    the place (equal values do without spreads); returns the places and the models sharing one."""
    order = sorted(values, key=lambda m: values[m])
    places: dict[str, int] = {}
    shared: set[str] = set()
    while len(places) < len(order):
        left = [m for m in order if m not in places]
        group = [m for m in left if _tied(left[0], m, values, spreads)]
        start = len(places) + 1
        places.update({m: start for m in group})
        if len(group) > 1:
            shared.update(group)
    return places, shared


def _tied(lead: str, m: str, values: dict[str, float], spreads: dict[str, Spread | None]) -> bool:
    a, b = spreads.get(lead), spreads.get(m)
    return a.overlaps(b) if a is not None and b is not None else values[m] == values[lead]


def backend_comparisons(docs: Sequence[dict[str, Any]]) -> list[BackendComparison]:
    """One comparison per set of conditions holding results of two or more backend/dtype variants."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for d in docs:
        if _shape_key(d) is None:
            continue
        key = tuple(_shape_key(d) if f == "input_shape" else d.get(f) for f in _CONDITIONS)
        groups.setdefault(key, []).append(d)
    out = []
    for members in groups.values():
        variants = sorted({variant_of(d) for d in members}, key=_variant_order)
        if len(variants) >= 2:
            out.append(_comparison(members, variants))
    return out


def _comparison(docs: list[dict[str, Any]], variants: list[tuple[str, str]]) -> BackendComparison:
    reference = REFERENCE if REFERENCE in variants else variants[0]
    runtime, equiv = metric("runtime_ms"), metric("equivalence_psnr_db")
    cols: list[Metric] = []
    for v in variants:
        cols.append(
            dataclasses.replace(
                runtime, title=variant_name(v), column=f"runtime_ms_{_slug(v)}", always_shown=False, suffix=""
            )
        )
        if v != REFERENCE:
            cols.append(
                dataclasses.replace(
                    equiv,
                    title=f"PSNR vs eager fp32 ({variant_name(v)})",
                    column=f"equivalence_psnr_db_{_slug(v)}",
                    suffix="",
                    better=None,  # a check, not a contest between models
                )
            )
    names = display_names(ModelIdentity.of_result(d) for d in docs)
    rows: dict[str, TableRow] = {}
    for v in variants:
        rt_col = f"runtime_ms_{_slug(v)}"
        for d in merge_by_model([d for d in docs if variant_of(d) == v]):
            name = names[result_key(d)]
            row = rows.setdefault(name, TableRow(name, {c.column: None for c in cols}))
            m = d.get("metrics") or {}
            value, source = lookup(m, runtime)
            status = d.get("status", "ok")
            if value is not None and status == "ok":
                row.values[rt_col] = value / runtime.scale
                sp = spread_of(m.get(source.key), runtime.scale) if source is not None else None
                if sp is not None:
                    row.intervals[rt_col] = sp
            else:
                row.notes.setdefault(rt_col, []).append(
                    f"{variant_name(v)}: {status}: {d.get('error') or 'runtime not measured'}"
                )
            if v != REFERENCE:
                psnr, _ = lookup(m, equiv)
                row.values[f"equivalence_psnr_db_{_slug(v)}"] = psnr
    first = docs[0]
    meta: dict[str, Any] = {f: first.get(f) for f in _CONDITIONS}
    meta["dtype"] = ", ".join(sorted({v[1] for v in variants}, key=lambda t: _variant_order(("", t))))
    meta["device_name"] = next((n for d in docs if (n := _device_name(d))), None)
    meta["environment"] = environment(docs)
    table = Table(list(rows.values()), meta, tuple(cols))
    ranks: dict[tuple[str, str], dict[str, int | None]] = {}
    shared: dict[tuple[str, str], set[str]] = {}
    for v in variants:
        col = f"runtime_ms_{_slug(v)}"
        vals = {r.model: x for r in table.rows if (x := r.values.get(col)) is not None}
        places, ties = _places(vals, {m: rows[m].intervals.get(col) for m in vals})
        ranks[v] = {r.model: places.get(r.model) for r in table.rows}
        shared[v] = ties
    return BackendComparison(table, variants, reference, ranks, shared)


def _title(c: BackendComparison) -> str:
    m = c.table.meta
    shape = "x".join(map(str, m.get("input_shape") or [])) or "?"
    return f"Runtime by backend · {m.get('device') or '?'} · {shape} · x{m.get('scale') or '?'}"


def _intro(c: BackendComparison) -> list[str]:
    return [
        "- Runtime (ms, median with its spread) of each model under each backend and dtype, timed by the same "
        "protocol; PSNR vs eager fp32 (dB): the equivalence check of the exported or reduced-precision model on "
        "a seeded input (inf: identical output).",
        f"- Rank by runtime under each variant (1 = fastest; `2=`: the runtime intervals overlap, a shared place); "
        f"changes from {variant_name(c.reference)}.",
    ]


def render_backends_markdown(c: BackendComparison) -> str:
    """The comparison as a markdown section: the runtime/equivalence table (conditions, marks, footnotes), the
    rank table and the ranking changes."""
    lines = [render_table_markdown(c.table, title=_title(c)).rstrip("\n"), ""] + _intro(c)
    lines += ["", "Rank by runtime:", ""]
    lines += md_table(
        ["Method", *(variant_name(v) for v in c.variants)],
        [[r.model, *(c.rank_text(v, r.model) for v in c.variants)] for r in c.table.rows],
        ["left"] + ["right"] * len(c.variants),
    )
    lines += [""] + [f"- {line}" for line in c.changes()]
    return "\n".join(lines) + "\n"


def render_backends_html(c: BackendComparison, table_id: str) -> str:
    """The comparison as an HTML section (the page's sortable, filterable table markup)."""
    from .html import table_html

    t = c.table
    ranks_table = (
        "<p>Rank by runtime:</p><table><thead><tr><th>Method</th>"
        + "".join(f"<th>{html.escape(variant_name(v))}</th>" for v in c.variants)
        + "</tr></thead><tbody>"
        + "".join(
            f"<tr><td>{html.escape(r.model)}</td>"
            + "".join(f"<td>{html.escape(c.rank_text(v, r.model))}</td>" for v in c.variants)
            + "</tr>"
            for r in t.rows
        )
        + "</tbody></table>"
    )
    changes = "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in c.changes()) + "</ul>"
    intro = "<ul>" + "".join(f"<li>{html.escape(x.removeprefix('- '))}</li>" for x in _intro(c)) + "</ul>"
    return "\n".join(
        [table_html(t, _title(c), table_id=table_id, sortable=False), intro, ranks_table, changes]
    )

"""Markdown rendering of a :class:`~effbench.report.table.Table`: header, marked cells, footnotes, deltas."""

from __future__ import annotations

from typing import Any

from ..base.catalogue import Metric
from .table import Table
from .text import md_table


def _in_db(col: Metric) -> bool:
    """Values in dB are logarithmic already: compare them by difference, not by percent."""
    return col.unit == "dB"


def _change(col: Metric, a: float | None, b: float | None) -> float | None:
    """``a`` against the baseline value ``b``: the difference in dB columns, else the percent change; None when
    either is missing (or ``b`` is 0 for a percentage)."""
    if a is None or b is None:
        return None
    if _in_db(col):
        return a - b
    return None if b == 0 else 100.0 * (a - b) / b


def units_line(table: Table) -> str:
    """``Units: Params K, ..., PSNR dB. **Bold**: best, ...`` for the table's columns (from the catalogue), with
    the units policy said once: K/M/G are decimal prefixes of counts, MiB is binary."""
    units = ", ".join(
        f"{c.title} {c.unit}" + (" (median)" if c.kind == "measured" else "") for c in table.columns if c.unit
    )
    higher = [c.title for c in table.columns if c.better == "higher"]
    rule = "lower is better" + (f" except {', '.join(higher)}" if higher else "")
    policy = "K, M, G: 10^3, 10^6, 10^9; MiB: 2^20 bytes"
    return f"- Units: {units} ({policy}). **Bold**: best, *italic*: second best ({rule})."


def spread_line(table: Table) -> str | None:
    """What the brackets after a measured value are (95 % interval of the median, or IQR), the sample counts and
    how ranks are given; None when no column has spreads."""
    spread = [c for c in table.columns if table.has_intervals(c)]
    if not spread:
        return None
    kinds: set[str] = set()
    counts: set[int] = set()
    for c in spread:
        k, n = table.spread_kinds(c)
        kinds |= k
        counts |= n
    what = " or ".join(
        {
            "95% CI": "[its 95 % interval]",
            "IQR": "(IQR: the interquartile range, too few samples for an interval)",
        }[k]
        for k in sorted(kinds)
    )
    n = ""
    if counts:
        n = f" of n = {min(counts)}" + (f"-{max(counts)}" if len(counts) > 1 else "") + " samples"
    return (
        f"- {', '.join(c.title for c in spread)}: median{n} {what}, rounded to two significant digits of the "
        "interval's half-width; best (bold) and second (italic) only where intervals separate (an interval that "
        "overlaps the next one's gets no mark)"
    )


def noisy_line(table: Table) -> str | None:
    """``- Noisy: 3 of 9 runtimes ...``: how many measured values stayed wider than their interval target (each
    marked ``(noisy)`` in the table); None when none is."""
    parts = []
    for c in table.columns:
        k, n = table.noisy_count(c)
        if k:
            parts.append(f"{k} of {n} {c.title.lower()}s")
    if not parts:
        return None
    return (
        f"- Noisy: {', '.join(parts)} (marked *(noisy)*) stayed wider than their interval target within the time "
        "budget: the machine was busy or the budget too short (rerun on a quiet machine, or with a larger --budget)"
    )


def environment_lines(table: Table) -> list[str]:
    """The environment block as markdown list lines (``- Environment:`` and one indented line per field)."""
    env = table.meta.get("environment") or []
    return ["- Environment:"] + [f"  - {k}: {v}" for k, v in env] if env else []


def describe_conditions(table: Table) -> list[str]:
    """The header lines naming device, protocol, input size and counting convention."""
    m = table.meta
    shape = m.get("input_shape")
    shape_txt = "x".join(map(str, shape)) if shape else "unknown"
    device = m.get("device") or "unknown device"
    if m.get("device_name"):
        device = f"{device} ({m['device_name']})"
    srcs = m.get("memory_sources") or []
    if srcs == ["measured"]:
        mem = "measured peak (max allocated)"
    elif srcs == ["predicted"]:
        mem = "predicted peak (effbench.predict_memory; no measured peak in these results)"
    elif srcs:
        mem = "measured peak where available, otherwise predicted (marked)"
    else:
        mem = "not available"
    scale = m.get("scale")
    output = ""
    if shape and len(shape) == 4 and isinstance(scale, int):
        output = f", output {shape[2] * scale}x{shape[3] * scale}"
    timing = f"; {m['timing']}" if m.get("timing") else ""
    return [
        f"- Device: {device}; dtype: {m.get('dtype') or 'unknown'}"
        + (f"; backend: {m['backend']}" if m.get("backend") not in (None, "eager") else ""),
        f"- Protocol: {m.get('protocol') or 'unspecified'}; input: {shape_txt} (x{scale or '?'}{output}){timing}",
        f"- FLOPs convention: {m.get('convention') or 'unspecified'}; Memory: {mem}",
        units_line(table),
        *([line] if (line := spread_line(table)) else []),
        *([line] if (line := noisy_line(table)) else []),
    ]


def deltas(table: Table, baseline: str) -> list[str]:
    """``"FMEN-S vs E-RFDN: params -21.2%, ..."`` for each model against the baseline row."""
    base = next((r for r in table.rows if r.model == baseline), None)
    if base is None:
        from ..base.errors import UsageError

        raise UsageError(
            f"baseline model {baseline!r} is not in the results; models: "
            f"{', '.join(r.model for r in table.rows)}"
        )
    lines = []
    for r in table.rows:
        if r is base:
            continue
        parts = []
        for col in table.columns:
            d = _change(col, r.values.get(col.column), base.values.get(col.column))
            if col.better is None or d is None:
                continue
            parts.append(f"{col.label} {d:+.2f} dB" if _in_db(col) else f"{col.label} {d:+.1f}%")
        lines.append(f"{r.model} vs {baseline}: " + (", ".join(parts) if parts else "no common metric"))
    return lines


def delta_records(table: Table, baseline: str) -> list[dict[str, Any]]:
    """The deltas as records (``<column>_pct`` per metric, ``<column>_delta`` for dB columns), for JSON output."""
    base = next((r for r in table.rows if r.model == baseline), None)
    if base is None:
        return []
    out = []
    for r in table.rows:
        rec: dict[str, Any] = {"method": r.model, "baseline": baseline}
        for col in table.columns:
            if col.better is not None:
                name = f"{col.column}_delta" if _in_db(col) else f"{col.column}_pct"
                rec[name] = _change(col, r.values.get(col.column), base.values.get(col.column))
        out.append(rec)
    return out


def render_table_markdown(table: Table, title: str | None = None, baseline: str | None = None) -> str:
    """The markdown table with header, bold/italic marks, footnote references and footnotes."""
    ranks = table.ranks()
    footnotes: list[str] = []

    def ref(text: str) -> str:
        if text not in footnotes:
            footnotes.append(text)
        return f"[^{footnotes.index(text) + 1}]"

    lines = [f"### {title}" if title else "### Efficiency comparison", ""]
    lines += describe_conditions(table) + environment_lines(table) + [""]
    rows = []
    for r in table.rows:
        cells = [r.model + "".join(ref(t) for t in r.notes.get("", []))]
        for c in table.columns:
            text = table.cell_text(r, c)
            mark = ranks.get(c.column, {}).get(r.model)
            if mark == 1:
                text = f"**{text}**"
            elif mark == 2:
                text = f"*{text}*"
            text += "".join(ref(t) for t in r.notes.get(c.column, []))
            cells.append(text)
        rows.append(cells)
    header = ["Method", *(c.title for c in table.columns)]
    lines += md_table(header, rows, ["left"] + ["right"] * len(table.columns))
    if footnotes:
        lines.append("")
        lines += [f"[^{i}]: {t}" for i, t in enumerate(footnotes, start=1)]
    if baseline:
        lines += ["", f"Deltas against {baseline}:", ""] + [f"- {t}" for t in deltas(table, baseline)]
    return "\n".join(lines) + "\n"

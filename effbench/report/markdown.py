"""Markdown rendering of a :class:`~effbench.report.table.Table`: header, marked cells, footnotes, deltas."""

from __future__ import annotations

from typing import Any

from .table import COLUMNS, Table, format_value

_DELTA_COLUMNS = ("params_k", "flops_g", "runtime_ms", "memory_mib", "activations_m", "convs")
_DELTA_NAMES = {"params_k": "params", "flops_g": "FLOPs", "runtime_ms": "runtime", "memory_mib": "memory",
                "activations_m": "activations", "convs": "convs"}


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
    return [
        f"- Device: {device}; dtype: {m.get('dtype') or 'unknown'}",
        f"- Protocol: {m.get('protocol') or 'unspecified'}; input: {shape_txt} (x{m.get('scale') or '?'})",
        f"- FLOPs convention: {m.get('convention') or 'unspecified'}; Memory: {mem}",
        "- Units: Params K, FLOPs G, Runtime ms (median), Memory MiB, Activations M, PSNR dB. "
        "**Bold**: best, *italic*: second best (lower is better except PSNR).",
    ]


def deltas(table: Table, baseline: str) -> list[str]:
    """``"FMEN-S vs E-RFDN: params -21.2%, ..."`` for each model against the baseline row."""
    base = next((r for r in table.rows if r.model == baseline), None)
    if base is None:
        from ..base.errors import UsageError

        raise UsageError(f"baseline model {baseline!r} is not in the results; models: "
                         f"{', '.join(r.model for r in table.rows)}")
    lines = []
    for r in table.rows:
        if r is base:
            continue
        parts = []
        for key in _DELTA_COLUMNS:
            a, b = r.values.get(key), base.values.get(key)
            if a is None or b is None or b == 0:
                continue
            parts.append(f"{_DELTA_NAMES[key]} {100.0 * (a - b) / b:+.1f}%")
        pa, pb = r.values.get("psnr_db"), base.values.get("psnr_db")
        if pa is not None and pb is not None:
            parts.append(f"PSNR {pa - pb:+.2f} dB")
        lines.append(f"{r.model} vs {baseline}: " + (", ".join(parts) if parts else "no common metric"))
    return lines


def delta_records(table: Table, baseline: str) -> list[dict[str, Any]]:
    """The deltas as records (percent per metric, dB for PSNR), for JSON output."""
    base = next((r for r in table.rows if r.model == baseline), None)
    if base is None:
        return []
    out = []
    for r in table.rows:
        rec: dict[str, Any] = {"method": r.model, "baseline": baseline}
        for key in _DELTA_COLUMNS:
            a, b = r.values.get(key), base.values.get(key)
            rec[f"{key}_pct"] = None if a is None or b is None or b == 0 else 100.0 * (a - b) / b
        pa, pb = r.values.get("psnr_db"), base.values.get("psnr_db")
        rec["psnr_db_delta"] = None if pa is None or pb is None else pa - pb
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
    lines += describe_conditions(table) + [""]
    lines.append("| Method | " + " | ".join(c.title for c in COLUMNS) + " |")
    lines.append("|:--|" + "|".join("--:" for _ in COLUMNS) + "|")
    for r in table.rows:
        name = r.model + "".join(ref(t) for t in r.notes.get("", []))
        cells = []
        for c in COLUMNS:
            text = format_value(r.values.get(c.key), c)
            mark = ranks.get(c.key, {}).get(r.model)
            if mark == 1:
                text = f"**{text}**"
            elif mark == 2:
                text = f"*{text}*"
            text += "".join(ref(t) for t in r.notes.get(c.key, []))
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if footnotes:
        lines.append("")
        lines += [f"[^{i}]: {t}" for i, t in enumerate(footnotes, start=1)]
    if baseline:
        lines += ["", f"Deltas against {baseline}:", ""] + [f"- {t}" for t in deltas(table, baseline)]
    return "\n".join(lines) + "\n"

"""A self-contained HTML page: the tables (best in bold, second in italics), footnotes, deltas and figures
embedded as inline SVG (or base64 PNG when no SVG was drawn)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from .markdown import deltas, describe_conditions
from .table import Table

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
td.best{font-weight:bold;color:#c00}td.second{font-style:italic;color:#0050c0}
.notes{font-size:0.85em;color:#555}figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}
"""


def _md_inline(text: str) -> str:
    """The few markdown marks our header lines use (``**bold**``, ``*italic*``), as HTML."""
    out = html.escape(text.removeprefix("- "))
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)


def table_html(table: Table, title: str, baseline: str | None = None) -> str:
    ranks = table.ranks()
    notes: list[str] = []

    def ref(t: str) -> str:
        if t not in notes:
            notes.append(t)
        return f"<sup>{notes.index(t) + 1}</sup>"

    out = [f"<h2>{html.escape(title)}</h2>", "<ul>"]
    out += [f"<li>{_md_inline(line)}</li>" for line in describe_conditions(table)]
    out.append(
        "</ul><table><tr><th>Method</th>"
        + "".join(f"<th>{html.escape(c.title)}</th>" for c in table.columns)
        + "</tr>"
    )
    for r in table.rows:
        cells = [f"<td>{html.escape(r.model)}{''.join(ref(t) for t in r.notes.get('', []))}</td>"]
        for c in table.columns:
            mark = ranks.get(c.column, {}).get(r.model)
            cls = {1: ' class="best"', 2: ' class="second"'}.get(mark, "")
            text = html.escape(table.cell_text(r, c))
            cells.append(f"<td{cls}>{text}{''.join(ref(t) for t in r.notes.get(c.column, []))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if notes:
        out.append('<ol class="notes">' + "".join(f"<li>{html.escape(t)}</li>" for t in notes) + "</ol>")
    if baseline:
        out.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in deltas(table, baseline)) + "</ul>")
    return "\n".join(out)


def _figure_html(path: Path) -> str:
    if path.suffix == ".svg":
        svg = path.read_text()
        start = svg.find("<svg")
        return f"<figure>{svg[start:]}<figcaption>{html.escape(path.stem)}</figcaption></figure>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(path.stem)}</figcaption></figure>"
    )


def render_html(
    sections: Sequence[tuple[str, Table]],
    figures: Sequence[Path],
    out_path: Path,
    baseline: str | None = None,
    title: str = "effbench report",
) -> Path:
    """Write one HTML file holding every table and every figure (SVG inline, else PNG as base64)."""
    by_stem: dict[str, Path] = {}
    for p in figures:  # prefer SVG
        if p.stem not in by_stem or p.suffix == ".svg":
            by_stem[p.stem] = p
    body = [f"<h1>{html.escape(title)}</h1>"]
    for name, t in sections:
        body.append(table_html(t, name, baseline if baseline in {r.model for r in t.rows} else None))
    body += [_figure_html(p) for p in by_stem.values()]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    out_path.write_text(page)
    return out_path

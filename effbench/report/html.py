"""A self-contained HTML page (no network): the markdown report's content (conditions, units, environment, tables
with best in bold and second in italics, footnotes, deltas, figures with captions), the tables sortable (click a
header, or ``#sort=runtime_ms`` / ``#sort=-psnr_db`` in the address) and filterable by model (the box above each
table, or ``&filter=fmen``), the figures inline as SVG whose markers show their numbers on hover.

The page's script records any script error in ``<pre id="errors">`` and marks each figure ``data-rendered="yes"``
once its SVG has a size, and the body ``data-ready="yes"`` when done, so a headless browser can check it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

from .figures import Figure
from .markdown import deltas, describe_conditions
from .table import Table

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
table.report th{cursor:pointer;user-select:none}table.report th[aria-sort=ascending]::after{content:" \\25B2"}
table.report th[aria-sort=descending]::after{content:" \\25BC"}
td.best{font-weight:bold;color:#c00}td.second{font-style:italic;color:#0050c0}
table.env td,table.env th{text-align:left;font-size:.9em;padding:2px 8px}
input.filter{margin:.4em 0;padding:3px 6px;width:18em}
.notes{font-size:.85em;color:#555}figure{margin:2em 0}figure svg{width:min(100%,880px);height:auto}
figcaption{font-size:.92em;color:#333;max-width:900px}.hover:hover{opacity:.7}
#errors{color:#c00}
"""

# Recorded before anything else runs: uncaught errors, failed resources and console.error calls.
_ERRORS = """
(function(){window.__errors=[];
var log=function(m){window.__errors.push(m);var e=document.getElementById('errors');
if(e){e.hidden=false;e.textContent=window.__errors.join('\\n');}};
window.addEventListener('error',function(ev){log('error: '+(ev.message||(ev.target&&ev.target.outerHTML)||ev));},true);
window.addEventListener('unhandledrejection',function(ev){log('unhandled rejection: '+ev.reason);});
var ce=console.error;console.error=function(){log('console.error: '+Array.prototype.join.call(arguments,' '));
ce.apply(console,arguments);};})();
"""

_SCRIPT = """
(function(){
function val(tr,key){var v=JSON.parse(tr.dataset.values)[key];
  return v===undefined||v===null?null:(typeof v==='string'?v.toLowerCase():v);}
function sortTable(table,key,desc){
  var keys=table.dataset.keys.split(','),ths=table.tHead.rows[0].cells,idx=keys.indexOf(key);
  for(var i=0;i<ths.length;i++){if(idx<0&&ths[i].textContent.trim().toLowerCase()===key){idx=i;}
    ths[i].removeAttribute('aria-sort');}
  if(idx<0){throw new Error('no column '+key+' to sort by');}
  key=keys[idx];
  var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var x=val(a,key),y=val(b,key);
    if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
    var c=x<y?-1:x>y?1:0;return desc?-c:c;});
  rows.forEach(function(r){body.appendChild(r);});
  ths[idx].setAttribute('aria-sort',desc?'descending':'ascending');
}
function filterTable(table,text){
  text=(text||'').toLowerCase();
  Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
    r.hidden=text!==''&&r.dataset.model.toLowerCase().indexOf(text)<0;});
}
var tables=document.querySelectorAll('table.report');
tables.forEach(function(table){
  var keys=table.dataset.keys.split(',');
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    th.title='click to sort';
    th.addEventListener('click',function(){
      sortTable(table,keys[i],th.getAttribute('aria-sort')==='ascending');});});
  var box=document.querySelector('input.filter[data-table="'+table.id+'"]');
  if(box){box.addEventListener('input',function(){filterTable(table,box.value);});}
});
var hash={};location.hash.replace(/^#/,'').split('&').forEach(function(kv){
  var p=kv.split('=');if(p[0]){hash[p[0]]=decodeURIComponent(p[1]||'');}});
tables.forEach(function(table){
  if(hash.sort){var d=hash.sort.charAt(0)==='-';sortTable(table,d?hash.sort.slice(1):hash.sort,d);}
  if(hash.filter){var box=document.querySelector('input.filter[data-table="'+table.id+'"]');
    if(box){box.value=hash.filter;}filterTable(table,hash.filter);}
});
document.querySelectorAll('figure.fig').forEach(function(f){
  var g=f.querySelector('svg,img'),r=g?g.getBoundingClientRect():null;
  var ok=r&&r.width>50&&r.height>50&&(g.tagName.toLowerCase()!=='svg'||g.querySelectorAll('path,text,use').length>5);
  f.dataset.rendered=ok?'yes':'no';
});
var errs=document.getElementById('errors');
if(window.__errors.length){errs.hidden=false;errs.textContent=window.__errors.join('\\n');}
document.body.dataset.ready='yes';
})();
"""


def _md_inline(text: str) -> str:
    """The few markdown marks our header lines use (``**bold**``, ``*italic*``), as HTML."""
    out = html.escape(text.removeprefix("- "))
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)


def table_html(
    table: Table, title: str, baseline: str | None = None, table_id: str = "t0", sortable: bool = True
) -> str:
    """One section: conditions, environment, the filter box, the sortable table, footnotes and deltas
    (``sortable=False``: a plain table, which the address's ``#sort=``/``&filter=`` leave alone)."""
    ranks = table.ranks()
    notes: list[str] = []

    def ref(t: str) -> str:
        if t not in notes:
            notes.append(t)
        return f"<sup>{notes.index(t) + 1}</sup>"

    out = [f"<h2>{html.escape(title)}</h2>", "<ul>"]
    out += [f"<li>{_md_inline(line)}</li>" for line in describe_conditions(table)]
    out.append("</ul>")
    env = table.meta.get("environment") or []
    if env:
        out.append('<table class="env"><caption style="text-align:left"><b>Environment</b></caption>')
        out += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in env]
        out.append("</table>")
    keys = ",".join(["model", *(c.column for c in table.columns)])
    box = f'<input type="search" class="filter" data-table="{table_id}" placeholder="filter models by name">'
    out.append(
        (box if sortable else "")
        + f'<table class="{"report" if sortable else "plain"}" id="{table_id}" data-keys="{keys}">'
        + "<thead><tr><th>Method</th>"
        + "".join(f"<th>{html.escape(c.title)}</th>" for c in table.columns)
        + "</tr></thead><tbody>"
    )
    for r in table.rows:
        name = html.escape(r.model)
        values: dict[str, str | float | None] = {"model": r.model, **r.values}
        cells = [f"<td>{name}{''.join(ref(t) for t in r.notes.get('', []))}</td>"]
        for c in table.columns:
            mark = ranks.get(c.column, {}).get(r.model)
            cls = {1: ' class="best"', 2: ' class="second"'}.get(mark, "")
            tip = table.spread_text(r, c) or r.sources.get(c.column)
            attrs = cls + (f' title="{html.escape(tip)}"' if tip else "")
            text = html.escape(table.cell_text(r, c))
            cells.append(f"<td{attrs}>{text}{''.join(ref(t) for t in r.notes.get(c.column, []))}</td>")
        data = html.escape(json.dumps(values))
        out.append(f'<tr data-model="{name}" data-values="{data}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if notes:
        out.append('<ol class="notes">' + "".join(f"<li>{html.escape(t)}</li>" for t in notes) + "</ol>")
    if baseline:
        out.append(
            f"<p>Deltas against {html.escape(baseline)}:</p><ul>"
            + "".join(f"<li>{html.escape(t)}</li>" for t in deltas(table, baseline))
            + "</ul>"
        )
    return "\n".join(out)


def _figure_html(fig: Figure, number: int) -> str:
    caption = f"<figcaption><b>Figure {number}: {html.escape(fig.title)}.</b> {html.escape(fig.caption)}</figcaption>"
    svg = fig.file(".svg")
    if svg is not None:
        text = svg.read_text()
        body = re.sub(r"<metadata>.*?</metadata>", "", text[text.find("<svg") :], count=1, flags=re.S)
    else:
        png = fig.file(".png")
        if png is None:
            return ""
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        body = f'<img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">'
    return f'<figure class="fig" data-stem="{html.escape(fig.stem)}">{body}{caption}</figure>'


def render_html(
    sections: Sequence[tuple[str, Table]],
    figures: Sequence[Figure],
    out_path: Path,
    baseline: str | None = None,
    title: str = "effbench report",
    extra: Sequence[str] = (),
) -> Path:
    """Write one HTML file holding every table, the ``extra`` sections (HTML, after the tables) and every figure
    (SVG inline, else PNG as base64)."""
    body = [f"<h1>{html.escape(title)}</h1>", '<pre id="errors" hidden></pre>']
    for i, (name, t) in enumerate(sections):
        body.append(table_html(t, name, baseline if baseline in {r.model for r in t.rows} else None, f"t{i}"))
    if extra:
        body.append("<h2>Runtime by backend</h2>")
        body += extra
    if figures:
        body.append("<h2>Figures</h2>")
        body += [_figure_html(f, i) for i, f in enumerate(figures, start=1)]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><script>{_ERRORS}</script></head><body>\n"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )
    out_path.write_text(page)
    return out_path

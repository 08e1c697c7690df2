"""``render_report``: results -> markdown, CSV, JSON and HTML tables plus figures in one folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from .backends import backend_comparisons, render_backends_html, render_backends_markdown
from .figures import Figure
from .markdown import delta_records, render_table_markdown
from .table import Table, build_table, split_groups

FORMATS = ("md", "csv", "json", "html")


def _load(results: Any) -> list[dict[str, Any]]:
    from ..base.results import load_results

    if isinstance(results, (str, os.PathLike)):
        return load_results([results])
    results = list(results)
    if results and all(isinstance(r, (str, os.PathLike)) for r in results):
        return load_results(results)
    if not all(isinstance(r, dict) for r in results):
        raise UsageError("results must be result documents (dicts) or paths to result files/folders")
    return results


def _variant(t: Table) -> tuple[str, str] | None:
    """The table's backend and dtype where they are not eager fp32 (tables of one model set under several
    backends or dtypes must not share a name or figure files)."""
    v = (t.meta.get("backend") or "eager", t.meta.get("dtype") or "fp32")
    return None if v == ("eager", "fp32") else v


def _section_name(t: Table) -> str:
    m = t.meta
    shape = "x".join(map(str, m.get("input_shape") or [])) or "?"
    v = _variant(t)
    return f"{m.get('device') or '?'} · {shape} · x{m.get('scale') or '?'} · {m.get('protocol') or '-'}" + (
        f" · {' '.join(v)}" if v else ""
    )


def _stem(t: Table) -> str:
    m = t.meta
    shape = "x".join(map(str, m.get("input_shape") or [])) or "noshape"
    v = _variant(t)
    return f"{m.get('device') or 'dev'}_{shape}_x{m.get('scale') or 0}" + (f"_{'_'.join(v)}" if v else "")


def render_report(
    results: Iterable[dict[str, Any]] | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    baseline: str | None = None,
    formats: Sequence[str] = FORMATS,
    figures: bool = True,
    title: str = "effbench report",
) -> list[Path]:
    """Render a Table 4-style report of result documents (or result files/folders) into ``out_dir``.

    Results measured under different conditions (device, input shape, scale, dtype, protocol, convention) get
    one table each. Writes ``report.md``, ``report.csv``, ``report.json``, ``report.html`` (as asked by
    ``formats``) and, with ``figures``, PNG+SVG figures; returns the paths written.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UsageError(f"unknown report format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    docs = _load(results)
    if not docs:
        raise UsageError("no effbench result documents found (schema effbench.result/1)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = split_groups(docs)
    tables = [build_table(g) for g in groups]
    if baseline and not any(baseline in {r.model for r in t.rows} for t in tables):
        raise UsageError(
            f"baseline model {baseline!r} is not in the results; models: "
            f"{', '.join(sorted({r.model for t in tables for r in t.rows}))}"
        )
    multi = len(tables) > 1
    written: list[Path] = []
    figs: list[Figure] = []
    if figures:
        from .figures import (
            breakdown_figure,
            comparison_figure,
            pareto_figures,
            psd_figures,
            timeline_figures,
        )

        for t in tables:
            suffix = f"_{_stem(t)}" if multi else ""
            figs += comparison_figure(t, out, stem=f"fig1_runtime_memory{suffix}")
            figs += pareto_figures(t, out, suffix=suffix)
        figs += timeline_figures(docs, out)
        figs += breakdown_figure(docs, out)
        figs += psd_figures(docs, out)
        written += [p for f in figs for p in f.paths]
    sections = [(_section_name(t) if multi else "Efficiency comparison", t) for t in tables]
    by_backend = backend_comparisons(docs)
    if "md" in formats:
        parts = [f"# {title}", ""]
        for name, t in sections:
            has_base = baseline if baseline in {r.model for r in t.rows} else None
            parts.append(render_table_markdown(t, title=name, baseline=has_base))
        if by_backend:
            parts += ["## Runtime by backend", ""] + [render_backends_markdown(c) for c in by_backend]
        shown = [(f, png) for f in figs if (png := f.file(".png"))]
        if shown:
            parts += ["## Figures", ""]
            for i, (f, png) in enumerate(shown, start=1):
                parts += [f"![{f.title}]({png.name})", "", f"*Figure {i}: {f.title}.* {f.caption}", ""]
        p = out / "report.md"
        p.write_text("\n".join(parts))
        written.append(p)
    frames = []
    for _name, t in sections:
        f = t.frame()
        for k in ("device", "device_name", "protocol", "convention", "scale", "dtype", "backend"):
            f[k] = t.meta.get(k)
        f["input_shape"] = "x".join(map(str, t.meta.get("input_shape") or []))
        frames.append(f)
    if "csv" in formats:
        import pandas as pd

        p = out / "report.csv"
        pd.concat(frames, ignore_index=True).to_csv(p, index=False, float_format="%.6g")
        written.append(p)
    if "json" in formats:
        from ..base.results import write_json_atomic

        doc = {
            "schema": "effbench.report/1",
            "tables": [
                {
                    "title": name,
                    "conditions": {k: v for k, v in t.meta.items()},
                    "rows": json.loads(f.to_json(orient="records")),
                    "ranks": t.ranks(),
                    "deltas": delta_records(t, baseline) if baseline else [],
                }
                for (name, t), f in zip(sections, frames)
            ],
            "figures": [p.name for f in figs for p in f.paths],
            "backends": [c.record() for c in by_backend],
        }
        written.append(write_json_atomic(out / "report.json", doc))
    if "html" in formats:
        from .html import render_html

        extra = [render_backends_html(c, f"b{i}") for i, c in enumerate(by_backend)]
        written.append(
            render_html(sections, figs, out / "report.html", baseline=baseline, title=title, extra=extra)
        )
    return written

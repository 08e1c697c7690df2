"""Figures with matplotlib (Agg), PNG and SVG, each with a caption saying what to read in it:

- the paper's Fig. 1 (runtime vs peak memory, marker area = params, the Pareto front drawn) and the Pareto views
  ``pareto_*`` (PSNR and FLOPs against runtime), from a :class:`~effbench.report.table.Table`, no two of the
  same axes; runtime spreads as error bars; labels placed so that they never overlap one another nor another
  model's marker;
- memory timelines as small multiples, one panel per model, the peak marked and annotated with what is alive
  there (``metrics["peak_memory_at"]``, the :meth:`~effbench.memory.MemoryReport.peak_summary` of the
  prediction); each annotation is wrapped and sized to fit inside its own panel, above every curve, at any
  number of models;
- the ``--breakdown`` time per operator kind (``metrics["op_time"]``) as one stacked bar per model;
- PSD curves.

Timelines, breakdowns and PSDs are drawn only when the results carry them:

- ``memory_timeline`` (top level or in ``metrics``): the timeline of :func:`effbench.predict_memory` (a list of
  ``{"index", "op", "allocated_bytes"}``), ``{"bytes": [...], "t": [...]}`` or a plain list of byte counts;
- ``psd`` (top level, as written by :func:`effbench.psd`): ``{"blocks": [{"name", "freqs", "input_curve",
  "output_curve"}, ...]}``; or ``metrics["psd"] = {"freq": [...], "power": [...]}`` (one radial PSD curve).

In the SVG every marker, bar and panel carries a ``<title>`` with its numbers (the HTML page shows it on hover).

This module draws the table's figures (Fig. 1 and the Pareto views); the timelines, breakdowns and PSDs are
:mod:`effbench.report.payload_figures`, what every figure shares :mod:`effbench.report.plotting` (both re-exported
here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .payload_figures import breakdown_figure, psd_figures, timeline_figures
from .plotting import Figure, place_labels, pyplot, save_figure
from .table import Table, TableRow

__all__ = [
    "Figure",
    "breakdown_figure",
    "comparison_figure",
    "pareto_figures",
    "pareto_front",
    "place_labels",
    "psd_figures",
    "timeline_figures",
]


def pareto_front(points: Sequence[tuple[str, float, float]], higher_y: bool = False) -> list[str]:
    """The names of the points no other point beats on both coordinates (x lower is better; y lower, or higher
    with ``higher_y``), ordered by x."""

    def beats(a: tuple[str, float, float], b: tuple[str, float, float]) -> bool:
        ya, yb = (-a[2], -b[2]) if higher_y else (a[2], b[2])
        return a[1] <= b[1] and ya <= yb and (a[1] < b[1] or ya < yb)

    front = [p for p in points if not any(beats(q, p) for q in points if q is not p)]
    return [p[0] for p in sorted(front, key=lambda p: p[1])]


def _conditions(table: Table) -> str:
    shape = table.meta.get("input_shape")
    return f"{table.meta.get('device') or '?'}, input {'x'.join(map(str, shape)) if shape else '?'}"


def _runtime_err(row: TableRow) -> tuple[float, float]:
    sp = row.intervals.get("runtime_ms")
    v = row.values["runtime_ms"] or 0.0
    return (v - sp.low, sp.high - v) if sp else (0.0, 0.0)


def _scatter(
    table: Table,
    y_col: str,
    ylabel: str,
    title: str,
    out_dir: Path,
    stem: str,
    formats: Sequence[str],
    front_higher: bool | None,
    area_by_params: bool = False,
) -> tuple[list[Path], list[str], list[str]] | None:
    """Runtime (x) against ``y_col``: markers with runtime error bars and non-overlapping labels, the Pareto
    front when ``front_higher`` is not None; returns (paths, models shown, models left out) or None with fewer
    than two models to show."""
    rows = [
        r for r in table.rows if r.values.get("runtime_ms") is not None and r.values.get(y_col) is not None
    ]
    if len(rows) < (1 if area_by_params else 2):
        return None
    missing = [r.model for r in table.rows if r not in rows]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    known = [r.values.get("params_k") for r in rows if r.values.get("params_k")]
    pmax = max(known) if known else 1.0
    pts, hovers, segments, colors = [], {}, [], []
    cols = {c.column: c for c in table.columns}
    for i, r in enumerate(rows):
        x, y, params = r.values["runtime_ms"], r.values[y_col], r.values.get("params_k")
        area = 60 + 1400 * (params / pmax) if area_by_params and params else 40
        lo, hi = _runtime_err(r)
        if lo or hi:
            segments.append(((x - lo, y), (x + hi, y)))
            ax.errorbar([x], [y], xerr=[[lo], [hi]], fmt="none", ecolor="0.3", elinewidth=0.8, capsize=2)
        art = ax.scatter([x], [y], s=area, alpha=0.5, edgecolors="black", linewidths=0.8, zorder=3)
        gid = f"{stem}-pt{i}"
        art.set_gid(gid)
        details = [r.model]
        for key in ("runtime_ms", y_col, "params_k"):
            col = cols.get(key)
            if col is not None and r.values.get(key) is not None:
                details.append(f"{col.title}: {table.spread_text(r, col) or col.display(r.values[key])}")
        hovers[gid] = "\n".join(details)
        pts.append((x, y, math.sqrt(area) / 2))
        rgb = art.get_facecolor()[0][:3]
        colors.append(tuple(0.6 * c for c in rgb))  # the marker's hue, dark enough to read
    if front_higher is not None:
        front = pareto_front([(r.model, r.values["runtime_ms"], r.values[y_col]) for r in rows], front_higher)
        by = {r.model: r for r in rows}
        fx = [by[m].values["runtime_ms"] for m in front]
        fy = [by[m].values[y_col] for m in front]
        segments += [((fx[i], fy[i]), (fx[i + 1], fy[i])) for i in range(len(fx) - 1)]
        segments += [((fx[i + 1], fy[i]), (fx[i + 1], fy[i + 1])) for i in range(len(fx) - 1)]
        ax.step(fx, fy, where="post", color="tab:red", lw=1.2, alpha=0.8, label="Pareto front", zorder=2)
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("Runtime (ms, median" + ("; bars: spread)" if any(r.intervals for r in rows) else ")"))
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} — {_conditions(table)}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(0.18)
    labels = [
        f"{r.model}\n{r.values['params_k']:.0f}K" if area_by_params and r.values.get("params_k") else r.model
        for r in rows
    ]
    place_labels(ax, pts, labels, segments, colors=colors)
    if missing:
        fig.text(0.01, -0.02, "Not shown (missing a value): " + ", ".join(missing), fontsize=7)
    paths = save_figure(fig, out_dir, stem, formats, hovers)
    plt.close(fig)
    return paths, [r.model for r in rows], missing


def comparison_figure(
    table: Table, out_dir: Path, stem: str = "fig1_runtime_memory", formats: Sequence[str] = ("png", "svg")
) -> list[Figure]:
    """Fig. 1 of the paper: runtime (x) against peak memory (y), marker area proportional to params, labelled,
    with the Pareto front (faster and smaller) as a red step line.

    Models lacking runtime or memory are left out (and named under the plot); ``[]`` when none has both.
    """
    srcs = table.meta.get("memory_sources") or []
    ylabel = "Peak memory (MiB" + (", predicted)" if srcs == ["predicted"] else ")")
    drawn = _scatter(
        table,
        "memory_mib",
        ylabel,
        "Runtime vs peak memory (marker area = params)",
        out_dir,
        stem,
        formats,
        False,
        area_by_params=True,
    )
    if drawn is None:
        return []
    paths, shown, _ = drawn
    front = pareto_front(
        [(r.model, r.values["runtime_ms"], r.values["memory_mib"]) for r in table.rows if r.model in shown]
    )
    caption = (
        "Runtime against peak memory, as in the paper's Fig. 1; marker area grows with the parameter count. "
        "Lower left is better: the red line joins the Pareto front, the models no other model beats on both "
        f"(faster and smaller); a model above and right of it is beaten on both by one on it. On the front "
        f"here: {', '.join(front)}."
    )
    return [Figure(stem, "Runtime vs peak memory (the paper's Fig. 1)", caption, paths)]


_PARETO = (
    # (stem, y column, y label, title, higher is better, what to read)
    (
        "pareto_psnr_runtime",
        "psnr_db",
        "PSNR (dB)",
        "PSNR vs runtime",
        True,
        "PSNR against runtime. The red line joins the Pareto front: the models no other model beats on both "
        "(faster and higher PSNR); every model below and right of it is beaten on both by one on it.",
    ),
    (
        "pareto_flops_runtime",
        "flops_g",
        "FLOPs (G)",
        "FLOPs vs runtime",
        False,
        "FLOPs against runtime: how the counted work turns into time. The red line is the Pareto front (fewer "
        "FLOPs and faster); a model far right of a model with similar FLOPs spends its time on something the "
        "FLOP count does not see (memory traffic, small or elementwise ops).",
    ),
)


def pareto_figures(
    table: Table, out_dir: Path, suffix: str = "", formats: Sequence[str] = ("png", "svg")
) -> list[Figure]:
    """The Pareto views ``pareto_psnr_runtime`` and ``pareto_flops_runtime`` (each drawn when two or more models
    have both values; memory against runtime is :func:`comparison_figure`'s), the front as a red step line."""
    out = []
    for stem, col, ylabel, title, higher, caption in _PARETO:
        drawn = _scatter(table, col, ylabel, title, out_dir, stem + suffix, formats, higher)
        if drawn is None:
            continue
        paths, shown, _ = drawn
        front = pareto_front(
            [(r.model, r.values["runtime_ms"], r.values[col]) for r in table.rows if r.model in shown], higher
        )
        out.append(Figure(stem + suffix, title, f"{caption} On the front here: {', '.join(front)}.", paths))
    return out

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
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .table import MIB, Table, TableRow

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


@dataclass
class Figure:
    """One drawn figure: its files (PNG, SVG), a title and a caption saying what to read in it."""

    stem: str
    title: str
    caption: str
    paths: list[Path] = field(default_factory=list)

    def file(self, suffix: str) -> Path | None:
        return next((p for p in self.paths if p.suffix == suffix), None)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, stem: str, formats: Sequence[str], hovers: dict[str, str]) -> list[Path]:
    """Save ``fig`` in each format; in the SVG, text stays text and each artist whose gid is a key of ``hovers``
    gets a ``<title>`` (its tooltip)."""
    plt = _pyplot()
    paths = []
    for fmt in formats:
        p = out_dir / f"{stem}.{fmt}"
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": stem}):
            fig.savefig(p, format=fmt, dpi=150, bbox_inches="tight")
        if fmt == "svg" and hovers:
            svg = p.read_text()
            for gid, text in hovers.items():
                svg = svg.replace(
                    f'<g id="{gid}">', f'<g id="{gid}" class="hover"><title>{html.escape(text)}</title>', 1
                )
            p.write_text(svg)
        paths.append(p)
    return paths


def _overlap(a, b) -> float:
    """The area two display-space boxes share (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(
    ax,
    points: Sequence[tuple[float, float, float]],
    labels: Sequence[str],
    segments: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
    fontsize: float = 7,
    colors: Sequence[Any] | None = None,
):
    """Label each point ``(x, y, marker radius in points)`` of ``ax`` so that no two labels overlap and no label
    covers another point's marker, the legend or a line of ``segments`` (data coordinates: error bars, the
    front): each label tries positions around its marker, nearest first, and takes the first free one inside the
    axes (else the one with the least overlap); a label set away from its marker gets a leader line. Returns the
    text artists, in the order of ``points``; ``colors`` gives each label its marker's colour."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    centres = ax.transData.transform([(x, y) for x, y, _ in points])
    markers = [
        Bbox.from_extents(cx - r * px, cy - r * px, cx + r * px, cy + r * px)
        for (cx, cy), (_, _, r) in zip(centres, points)
    ]
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    fixed = [legend.get_window_extent(renderer)] if legend is not None else []
    for a, b in segments:
        (x0, y0), (x1, y1) = ax.transData.transform([a, b])
        fixed.append(Bbox.from_extents(min(x0, x1) - 1, min(y0, y1) - 1, max(x0, x1) + 1, max(y0, y1) + 1))
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
    placed: list[Any] = []
    texts = []
    for i, ((x, y, r), label) in enumerate(zip(points, labels)):
        best = None
        for gap in (3, 10, 20, 34, 52):
            for dx, dy in directions:
                dist = r + gap
                norm = math.hypot(dx, dy)
                off = (dx / norm * dist, dy / norm * dist)
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                t = ax.annotate(
                    label, (x, y), xytext=off, textcoords="offset points", ha=ha, va=va, fontsize=fontsize
                )
                box = t.get_window_extent(renderer).expanded(1.04, 1.08)
                others = [m for j, m in enumerate(markers) if j != i]
                cost = sum(_overlap(box, b) for b in placed + others + fixed)
                if not (
                    frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                ):
                    cost += box.width * box.height
                t.remove()
                if best is None or cost < best[0]:
                    best = (cost, off, ha, va, box, gap)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        _, off, ha, va, box, gap = best
        arrow = {"arrowstyle": "-", "lw": 0.5, "color": "0.4"} if gap > 10 else None
        texts.append(
            ax.annotate(
                label,
                (x, y),
                xytext=off,
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=fontsize,
                arrowprops=arrow,
                color=colors[i] if colors is not None else None,
            )
        )
        placed.append(box)
    return texts


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
    plt = _pyplot()
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
    paths = _save(fig, out_dir, stem, formats, hovers)
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


def _timeline(value: Any) -> tuple[list[float], list[float]] | None:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if not all("allocated_bytes" in v for v in value):
            return None
        xs = [float(v.get("index", i)) for i, v in enumerate(value)]
        return xs, [float(v["allocated_bytes"]) / MIB for v in value]
    if isinstance(value, dict):
        ys = value.get("bytes") or value.get("allocated") or value.get("memory")
        xs = value.get("t") or value.get("step") or (list(range(len(ys))) if ys else None)
    elif isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        ys, xs = value, list(range(len(value)))
    else:
        return None
    if not ys or len(xs) != len(ys):
        return None
    return [float(x) for x in xs], [float(y) / MIB for y in ys]


def _peak_words(summary: Any, sentence: Any = None) -> str | None:
    """``"in warmup.1 (HFAB) at the sigmoid: 4.1 x CHW alive (input of ... 2.0, ...)"`` from a peak summary;
    without one, the start of the prediction's sentence (``peak_memory_where``, results written before the
    summary was recorded), up to what is alive at the peak."""
    if not isinstance(summary, dict) or "where" not in summary:
        if not isinstance(sentence, str):
            return None
        import textwrap

        head = sentence.split(" (C x H x W")[0].split(" MiB ", 1)[-1]
        return textwrap.fill(head, 48)
    parts = ", ".join(f"{why} {x:.1f}" for why, x in (summary.get("parts") or [])[:2])
    kind = f" ({summary['block_type']})" if summary.get("block_type") else ""
    return (
        f"in {summary['where']}{kind} at the {summary.get('op') or '?'}:\n"
        f"{summary.get('features_x', 0):.1f} x CHW of features alive" + (f"\n({parts})" if parts else "")
    )


def _fit_title(name: str, tail: str, width: int = 44) -> str:
    """``name`` and ``tail`` short enough for a panel's title: a long model name is cut with an ellipsis, the
    tail (the peak) is kept."""
    room = max(8, width - len(tail))
    return (name if len(name) <= room else name[: room - 1] + "…") + tail


NOTE_SIZES = (6.0, 5.5, 5.0, 4.5)  # points, largest first
NOTE_MAX_BAND = 0.6  # the share of a panel's height a note may take
NOTE_SLACK = 1.15  # a note must fit 15% larger than measured (another renderer, another font)


def _fit_note(ax, words: str, gid: str) -> float:
    """Put ``words`` in the top left of ``ax``, wrapped and sized so that its box lies inside the panel (the
    largest of :data:`NOTE_SIZES` and the widest wrapping that fit; a note too long for the smallest size is
    cut); returns the share of the panel's height it takes, from the top."""
    import textwrap

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pad = 4 * fig.dpi / 72.0  # the box's padding, in pixels

    def wrapped(width: int, lines: int | None = None) -> str:
        out = [w for para in words.split("\n") for w in textwrap.wrap(para, width) or [""]]
        if lines is not None and len(out) > lines:
            out = out[:lines]
            out[-1] = out[-1][: max(1, width - 1)] + "…"
        return "\n".join(out)

    text = ax.text(
        0.03,
        0.97,
        "",
        transform=ax.transAxes,
        va="top",
        ha="left",
        bbox={"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 2},
        clip_on=True,
    )
    text.set_in_layout(False)
    text.set_gid(gid)

    def fits() -> tuple[bool, Any]:
        box = text.get_window_extent(renderer)
        # room for another font: the SVG's text is set by the browser, whose fallback font may be wider
        ok = (
            box.x0 >= frame.x0
            and box.x0 + NOTE_SLACK * box.width + pad <= frame.x1
            and box.y1 <= frame.y1
            and NOTE_SLACK * box.height + pad <= NOTE_MAX_BAND * frame.height
        )
        return ok, box

    for size in NOTE_SIZES:
        text.set_fontsize(size)
        for width in (64, 56, 48, 42, 36, 30, 26, 22, 18):
            text.set_text(wrapped(width))
            ok, box = fits()
            if ok:
                return (NOTE_SLACK * box.height + 2 * pad) / frame.height
    for lines in range(8, 0, -1):  # still too long at the smallest size: cut it
        text.set_text(wrapped(18, lines))
        ok, box = fits()
        if ok:
            return (NOTE_SLACK * box.height + 2 * pad) / frame.height
    text.set_text("")
    return 0.0


def timeline_figures(
    docs: Sequence[dict[str, Any]], out_dir: Path, formats: Sequence[str] = ("png", "svg")
) -> list[Figure]:
    """The memory timelines as small multiples (one panel per model carrying ``memory_timeline``, a shared
    y axis), each with its peak marked and annotated from ``metrics['peak_memory_at']`` where the result has it."""
    curves: dict[str, tuple[list[float], list[float], dict[str, Any]]] = {}
    for d in docs:
        m = d.get("metrics") or {}
        tl = _timeline(d.get("memory_timeline") or m.get("memory_timeline"))
        if tl is not None:
            curves[str(d.get("model"))] = (*tl, m)
    if not curves:
        return []
    plt = _pyplot()
    n = len(curves)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), sharey=True, squeeze=False)
    hovers = {}
    notes: list[tuple[Any, str, str]] = []  # (axes, words, gid)
    for i, (ax, (name, (xs, ys, m))) in enumerate(zip(axes.flat, curves.items())):
        ax.step(xs, ys, where="post", lw=1)
        k = max(range(len(ys)), key=ys.__getitem__)
        ax.plot([xs[k]], [ys[k]], "o", color="tab:red", ms=4)
        ax.set_title(_fit_title(name, f": peak {ys[k]:.1f} MiB"), fontsize=8)
        words = _peak_words(m.get("peak_memory_at"), m.get("peak_memory_where"))
        if words:
            notes.append((ax, words, f"memory_timelines-note{i}"))
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=6)
        gid = f"memory_timelines-panel{i}"
        ax.patch.set_gid(gid)
        hovers[gid] = f"{name}: peak {ys[k]:.2f} MiB at step {xs[k]:.0f} of {len(xs)}" + (
            f"\n{m['peak_memory_where']}" if isinstance(m.get("peak_memory_where"), str) else ""
        )
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("allocated (MiB)", fontsize=7)
    for col in range(ncols):  # under the lowest panel drawn in each column
        [ax for ax in axes[:, col] if ax.get_visible()][-1].set_xlabel("step (operator)", fontsize=7)
    fig.tight_layout()
    # each note inside its own panel, in a band above every curve (the shared y axis leaves that band free)
    band = max((_fit_note(ax, words, gid) for ax, words, gid in notes), default=0.0)
    top = max(max(ys) for _, ys, _ in curves.values())
    axes[0, 0].set_ylim(0, 1.05 * top / (1.0 - min(band, 0.6)))
    paths = _save(fig, out_dir, "memory_timelines", formats, hovers)
    plt.close(fig)
    caption = (
        "Allocated memory after each operator of one forward, one panel per model on a shared axis; the red dot "
        "is the peak, and the box says where it is and what is alive there (in multiples of one C x H x W "
        "feature map). A peak far above the curve's plateau points at one block that keeps many maps alive."
    )
    return [Figure("memory_timelines", "Memory timelines", caption, paths)]


def breakdown_figure(
    docs: Sequence[dict[str, Any]], out_dir: Path, formats: Sequence[str] = ("png", "svg")
) -> list[Figure]:
    """The ``--breakdown`` results (``metrics['op_time']``) as one horizontal stacked bar per model: milliseconds
    per operator kind, conv GFLOP/s in the label; ``[]`` when no result has one."""
    rows = [(str(d.get("model")), (d.get("metrics") or {}).get("op_time")) for d in docs]
    rows = [(name, b) for name, b in rows if isinstance(b, dict) and isinstance(b.get("kinds"), dict)]
    if not rows:
        return []
    kinds = [
        k
        for k in dict.fromkeys(k for _, b in rows for k in b["kinds"])
        if any(b["kinds"].get(k) for _, b in rows)
    ]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.6))
    hovers = {}
    colors = plt.get_cmap("tab10")
    for j, kind in enumerate(kinds):
        left = [sum(b["kinds"].get(k, 0.0) for k in kinds[:j]) for _, b in rows]
        widths = [b["kinds"].get(kind, 0.0) for _, b in rows]
        bars = ax.barh(range(len(rows)), widths, left=left, color=colors(j % 10), label=kind)
        for i, (bar, (name, b)) in enumerate(zip(bars, rows)):
            gid = f"breakdown-{j}-{i}"
            bar.set_gid(gid)
            total = sum(b["kinds"].values()) or 1.0
            hovers[gid] = (
                f"{name}: {kind} {widths[i]:.2f} ms ({100 * widths[i] / total:.0f} % of {total:.2f} ms)"
            )
    labels = []
    for name, b in rows:
        rate = b.get("conv_gflop_per_s")
        labels.append(f"{name}\n{rate:.1f} GFLOP/s conv" if isinstance(rate, (int, float)) else name)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time per forward (ms, operator self time)")
    ax.set_title("Where the time goes, per operator kind", fontsize=9)
    ax.legend(
        fontsize=7,
        ncol=min(4, len(kinds)),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18 - 0.02 * len(rows)),
    )
    ax.grid(True, axis="x", alpha=0.3)
    paths = _save(fig, out_dir, "breakdown_op_time", formats, hovers)
    plt.close(fig)
    caption = (
        "Time per forward by operator kind (profiler self times; profiling adds overhead, so compare shares, not "
        "the sums, with the runtime column). Under each name: the convolutions' throughput in GFLOP/s; a model "
        "whose non-conv segments are long spends its time outside the FLOPs it is credited with."
    )
    return [Figure("breakdown_op_time", "Time per operator kind", caption, paths)]


def _psd_curves(doc: dict[str, Any]) -> dict[str, tuple[list[float], list[float], str]]:
    """label -> (freqs, power, line style) of every PSD curve a result carries."""
    out: dict[str, tuple[list[float], list[float], str]] = {}
    top = doc.get("psd")
    if isinstance(top, dict):
        for b in top.get("blocks") or []:
            f = b.get("freqs")
            for kind, style in (("input", "--"), ("output", "-")):
                curve = b.get(f"{kind}_curve")
                if f and curve and len(f) == len(curve):
                    out[f"{b.get('name')} {kind}"] = (list(map(float, f)), list(map(float, curve)), style)
    value = (doc.get("metrics") or {}).get("psd")
    if isinstance(value, dict) and "power" in value:
        f = value.get("freq") or list(range(len(value["power"])))
        out["psd"] = (list(map(float, f)), list(map(float, value["power"])), "-")
    return out


def psd_figures(
    docs: Sequence[dict[str, Any]], out_dir: Path, formats: Sequence[str] = ("png", "svg")
) -> list[Figure]:
    """One PSD plot (log power vs frequency) per model carrying PSD curves: block inputs dashed, outputs solid."""
    figures: list[Figure] = []
    for d in docs:
        curves = _psd_curves(d)
        if not curves:
            continue
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, (f, p, style) in curves.items():
            ax.plot(f, [math.log10(v) if v > 0 else float("nan") for v in p], style, label=name, lw=1)
        ax.set_xlabel("spatial frequency (cycles / pixel)")
        ax.set_ylabel("log10 power")
        ax.set_title(f"{d.get('model')}: power spectral density")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        stem = f"psd_{_slug(str(d.get('model')))}"
        paths = _save(fig, out_dir, stem, formats, {})
        plt.close(fig)
        caption = (
            f"Radial power spectra of {d.get('model')}'s feature maps, block inputs dashed and outputs solid: a "
            "block whose output lies above its input at high frequencies adds detail there."
        )
        figures.append(Figure(stem, f"{d.get('model')}: power spectral density", caption, paths))
    return figures


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)

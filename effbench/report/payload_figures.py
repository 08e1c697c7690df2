"""The figures drawn only when results carry what they need, beyond the table's columns:

- memory timelines as small multiples, one panel per model, the peak marked and annotated with what is alive
  there (``metrics["peak_memory_at"]``, the :meth:`~effbench.memory.MemoryReport.peak_summary` of the
  prediction); each annotation is wrapped and sized to fit inside its own panel, above every curve, at any
  number of models;
- the ``--breakdown`` time per operator kind (``metrics["op_time"]``) as one stacked bar per model;
- PSD curves.

What they read:

- ``memory_timeline`` (top level or in ``metrics``): the timeline of :func:`effbench.predict_memory` (a list of
  ``{"index", "op", "allocated_bytes"}``), ``{"bytes": [...], "t": [...]}`` or a plain list of byte counts;
- ``psd`` (top level, as written by :func:`effbench.psd`): ``{"blocks": [{"name", "freqs", "input_curve",
  "output_curve"}, ...]}``; or ``metrics["psd"] = {"freq": [...], "power": [...]}`` (one radial PSD curve).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .plotting import Figure, pyplot, save_figure, slug
from .table import MIB

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.transforms import Bbox

__all__ = ["breakdown_figure", "psd_figures", "timeline_figures"]


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


def _fit_note(ax: Axes, words: str, gid: str) -> float:
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

    def fits() -> tuple[bool, Bbox]:
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
    plt = pyplot()
    n = len(curves)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), sharey=True, squeeze=False)
    hovers = {}
    notes: list[tuple[Axes, str, str]] = []  # (axes, words, gid)
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
    paths = save_figure(fig, out_dir, "memory_timelines", formats, hovers)
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
    plt = pyplot()
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
    paths = save_figure(fig, out_dir, "breakdown_op_time", formats, hovers)
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
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, (f, p, style) in curves.items():
            ax.plot(f, [math.log10(v) if v > 0 else float("nan") for v in p], style, label=name, lw=1)
        ax.set_xlabel("spatial frequency (cycles / pixel)")
        ax.set_ylabel("log10 power")
        ax.set_title(f"{d.get('model')}: power spectral density")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        stem = f"psd_{slug(str(d.get('model')))}"
        paths = save_figure(fig, out_dir, stem, formats, {})
        plt.close(fig)
        caption = (
            f"Radial power spectra of {d.get('model')}'s feature maps, block inputs dashed and outputs solid: a "
            "block whose output lies above its input at high frequencies adds detail there."
        )
        figures.append(Figure(stem, f"{d.get('model')}: power spectral density", caption, paths))
    return figures

"""What every report figure shares: :class:`Figure` (its files, title and caption), matplotlib's pyplot on the
Agg backend (:func:`pyplot`), saving PNG and SVG with hover titles (:func:`save_figure`), labels placed so that
they never overlap (:func:`place_labels`) and file-name slugs."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

__all__ = ["Figure", "place_labels", "pyplot", "save_figure", "slug"]


@dataclass
class Figure:
    """One drawn figure: its files (PNG, SVG), a title and a caption saying what to read in it."""

    stem: str
    title: str
    caption: str
    paths: list[Path] = field(default_factory=list)

    def file(self, suffix: str) -> Path | None:
        return next((p for p in self.paths if p.suffix == suffix), None)


def pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(
    fig: MplFigure, out_dir: Path, stem: str, formats: Sequence[str], hovers: dict[str, str]
) -> list[Path]:
    """Save ``fig`` in each format; in the SVG, text stays text and each artist whose gid is a key of ``hovers``
    gets a ``<title>`` (its tooltip)."""
    plt = pyplot()
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


def _overlap(a: Bbox, b: Bbox) -> float:
    """The area two display-space boxes share (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(
    ax: Axes,
    points: Sequence[tuple[float, float, float]],
    labels: Sequence[str],
    segments: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
    fontsize: float = 7,
    colors: Sequence[Any] | None = None,
) -> list[Annotation]:
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
    placed: list[Bbox] = []
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


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)

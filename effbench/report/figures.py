"""Figures with matplotlib (Agg): the Fig. 1 comparison, memory timelines and PSD curves; PNG and SVG.

Timelines and PSDs are drawn only when the results carry them:

- ``memory_timeline`` (top level or in ``metrics``): the timeline of :func:`effbench.predict_memory` (a list of
  ``{"index", "op", "allocated_bytes"}``), ``{"bytes": [...], "t": [...]}`` or a plain list of byte counts;
- ``psd`` (top level, as written by :func:`effbench.psd`): ``{"blocks": [{"name", "freqs", "input_curve",
  "output_curve"}, ...]}``; or ``metrics["psd"] = {"freq": [...], "power": [...]}`` (one radial PSD curve).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .table import MIB, Table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        p = out_dir / f"{stem}.{fmt}"
        fig.savefig(p, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(p)
    return paths


def comparison_figure(
    table: Table, out_dir: Path, stem: str = "fig1_runtime_memory", formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Fig. 1 of the paper: runtime (x) against peak memory (y), marker area proportional to params, labelled.

    Models lacking runtime or memory are left out (and named in the caption); returns ``[]`` when fewer than
    one model has both.
    """
    pts = [
        (r.model, r.values["runtime_ms"], r.values["memory_mib"], r.values.get("params_k"))
        for r in table.rows
        if r.values.get("runtime_ms") is not None and r.values.get("memory_mib") is not None
    ]
    if not pts:
        return []
    missing = [r.model for r in table.rows if r.model not in {p[0] for p in pts}]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    known = [p[3] for p in pts if p[3]]
    pmax = max(known) if known else 1.0
    for name, rt, mem, params in pts:
        area = 60 + 1400 * (params / pmax) if params else 60
        ax.scatter(rt, mem, s=area, alpha=0.45, edgecolors="black", linewidths=0.8)
        label = f"{name}\n{params:.0f}K" if params else name
        ax.annotate(
            label, (rt, mem), textcoords="offset points", xytext=(0, 0), ha="center", va="center", fontsize=8
        )
    ax.set_xlabel("Runtime (ms, median)")
    srcs = table.meta.get("memory_sources") or []
    ax.set_ylabel("Peak memory (MiB" + (", predicted)" if srcs == ["predicted"] else ")"))
    shape = table.meta.get("input_shape")
    cond = f"{table.meta.get('device') or '?'}, input {'x'.join(map(str, shape)) if shape else '?'}"
    ax.set_title(f"Runtime vs peak memory (marker area = params) — {cond}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    if missing:
        fig.text(0.01, -0.02, "Not shown (no runtime or memory): " + ", ".join(missing), fontsize=7)
    paths = _save(fig, out_dir, stem, formats)
    plt.close(fig)
    return paths


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


def timeline_figures(
    docs: Sequence[dict[str, Any]], out_dir: Path, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """One memory-over-time plot per model that carries ``metrics['memory_timeline']``, plus an overlay."""
    curves = {}
    for d in docs:
        tl = _timeline(d.get("memory_timeline") or (d.get("metrics") or {}).get("memory_timeline"))
        if tl is not None:
            curves[str(d.get("model"))] = tl
    if not curves:
        return []
    plt = _pyplot()
    paths: list[Path] = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (xs, ys) in curves.items():
        ax.step(xs, ys, where="post", label=name)
    ax.set_xlabel("step (operator / allocation event)")
    ax.set_ylabel("allocated memory (MiB)")
    ax.set_title("Memory timelines")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    paths += _save(fig, out_dir, "memory_timelines", formats)
    plt.close(fig)
    for name, (xs, ys) in curves.items():
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.step(xs, ys, where="post")
        peak = max(ys)
        ax.axhline(peak, ls="--", lw=0.8, color="gray")
        ax.set_title(f"{name}: memory timeline (peak {peak:.2f} MiB)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("MiB")
        ax.grid(True, alpha=0.3)
        paths += _save(fig, out_dir, f"memory_timeline_{_slug(name)}", formats)
        plt.close(fig)
    return paths


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
) -> list[Path]:
    """One PSD plot (log power vs frequency) per model carrying PSD curves: block inputs dashed, outputs solid."""
    paths: list[Path] = []
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
        paths += _save(fig, out_dir, f"psd_{_slug(str(d.get('model')))}", formats)
        plt.close(fig)
    return paths


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)

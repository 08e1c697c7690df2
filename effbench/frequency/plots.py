"""Figures of the power-spectrum study: Fig. 6 (curves per block) and Fig. 8 (average maps) of the FMEN paper."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .block_psd import BlockPSD

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Spectra(Protocol):
    """What the figures read of a :class:`~effbench.frequency.result.PSDResult` (its blocks and the labels)."""

    model: str
    blocks: Sequence[BlockPSD]
    images: Sequence[str]
    remove_mean: bool
    preview_image: str | None


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo") and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    import sys

    return hasattr(sys, "ps1")


def _save(fig, path: str | Path | None, dpi: int = 130, palette: bool = False):
    """Save ``fig``; ``palette=True`` re-encodes a PNG with a 256-colour palette (image grids: ~3x smaller)."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        if palette and path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as im:
                q = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
            q.save(path, optimize=True)
    return fig


def plot_curves(result: Spectra, path: str | Path | None = None, log: bool = True) -> Figure:
    """One panel per block (shared y axis): input and output PSD curves in percent over normalised frequency,
    the split marked, the high-frequency shares in the legend. ``log``: logarithmic y axis (the default, since
    ring 0 holds most of the curve unless the mean was removed)."""
    plt = _pyplot()
    n = len(result.blocks)
    ncols = min(n, 5)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.2 * ncols + 0.6, 3.0 * nrows), sharey=True, squeeze=False
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    first = 1 if result.remove_mean else 0  # ring 0 is empty once the mean is removed
    for ax, b in zip(axes.flat, result.blocks):
        f = b.freqs[first:]
        ax.plot(
            f,
            100 * b.input_curve[first:],
            color="tab:blue",
            lw=1.4,
            label=f"input (high {100 * b.input_high:.3g}%)",
        )
        ax.plot(
            f,
            100 * b.output_curve[first:],
            color="tab:red",
            lw=1.4,
            label=f"output (high {100 * b.output_high:.3g}%)",
        )
        ax.axvline(b.split, color="0.5", ls=":", lw=1)
        ax.set_title(f"{b.name} ({b.kind})", fontsize=9)
        ax.set_xlabel("frequency (1 = Nyquist)")
        ax.set_xlim(0, 1)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("spectral density (% of sum)")
    dc = ", mean removed" if result.remove_mean else ""
    fig.suptitle(
        f"{result.model}: PSD of block inputs and outputs, {len(result.images)} images{dc}", fontsize=10
    )
    fig.tight_layout()
    return _save(fig, path)


def _norm(m: np.ndarray, clip: float = 0.5) -> np.ndarray:
    """Map the ``clip``-th..``100 - clip``-th percentiles to 0..1 (a few border pixels must not set the scale)."""
    lo, hi = (float(v) for v in np.percentile(m, [clip, 100 - clip]))
    return np.clip((m - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(m)


def plot_maps(result: Spectra, path: str | Path | None = None) -> Figure:
    """Two rows (input, output), one column per block: the channel-averaged maps of the preview image, each
    normalised for display to its 0.5..99.5 percentile range (outputs are much smaller than inputs, as the
    paper's Fig. 8 notes)."""
    plt = _pyplot()
    blocks = [b for b in result.blocks if b.input_map is not None]
    if not blocks:
        raise ValueError("the result holds no preview maps")
    n = len(blocks)
    h, w = blocks[0].input_map.shape
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 2.6 * 2 * h / w + 0.6), squeeze=False)
    for j, b in enumerate(blocks):
        for i, (m, label) in enumerate(((b.input_map, "input"), (b.output_map, "output"))):
            ax = axes[i][j]
            ax.imshow(_norm(m), cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{b.name}", fontsize=8)
            if j == 0:
                ax.set_ylabel(label)
    fig.suptitle(
        f"{result.model}: channel-averaged maps of {result.preview_image} (each normalised to its 0.5-99.5 percentiles)",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, path, dpi=80, palette=True)

"""Timeline plot: allocated bytes after every op of the measured forward, the peak annotated (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from .report import MemoryReport, op_word


def plot_timeline(reports: list[MemoryReport], path: str | Path, labels: list[str] | None = None) -> Path:
    """Write a PNG of the live-memory timeline of one or more reports, each peak marked and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        from ..base.errors import UsageError

        raise UsageError(f"--plot expects a .png file name, got {str(path)!r}")
    labels = labels or [r.model or f"model {i + 1}" for i, r in enumerate(reports)]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=120)
    for r, label in zip(reports, labels):
        xs = [e["index"] for e in r.timeline]
        ys = [e["allocated_bytes"] / 2**20 for e in r.timeline]
        (line,) = ax.plot(
            xs,
            ys,
            lw=1.2,
            drawstyle="steps-post",
            label=f"{label}: peak {r.peak_bytes / 2**20:.2f} MiB ({r.peak_x:.2f} x CHW)",
        )
        py = r.timeline[r.peak_op_index]["allocated_bytes"] / 2**20
        ax.plot([r.peak_op_index], [py], "o", color=line.get_color())
        where = r.peak_block or r.peak_module or "model"
        ax.annotate(
            f"{op_word(r.peak_op)} in {where}\n{r.peak_bytes / 2**20:.2f} MiB",
            (r.peak_op_index, py),
            textcoords="offset points",
            xytext=(8, 6),
            fontsize=8,
            color=line.get_color(),
        )
    top = max(r.peak_bytes for r in reports) / 2**20
    ax.set_ylim(0, top * 1.2)
    ax.set_xlabel("op index (measured forward)")
    ax.set_ylabel(f"allocated memory (MiB, device model: {reports[0].device_model})")
    shape = "x".join(str(d) for d in reports[0].input_shape)
    ax.set_title(f"Live memory per op, input {shape}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

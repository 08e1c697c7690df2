"""Collect the per-block shares of every psd_*.json below reports/psd into reports/psd/summary.md.

Besides the run's own split (0.5 x Nyquist), the gain in high-frequency share is recomputed from the stored
curves at splits 0.25 and 0.75, to show whether a verdict depends on where the split is put.
"""

from __future__ import annotations

from pathlib import Path

from effbench.frequency import PSDResult, high_share

HERE = Path(__file__).resolve().parent
SPLITS = (0.25, 0.75)


def main() -> None:
    lines = [
        "| run | images | DC | block | input high share | output high share | gain (pt) | images with gain "
        "| low suppressed, high strengthened | gain at 0.25 / 0.75 (pt) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in sorted(HERE.glob("*/psd_*.json")):
        res = PSDResult.load(f)
        dc = "removed" if res.remove_mean else "kept"
        for b in res.blocks:
            other = " / ".join(
                f"{100 * (high_share(b.output_curve, s) - high_share(b.input_curve, s)):+.3g}" for s in SPLITS
            )
            lines.append(
                f"| {f.parent.name} | {b.n_images} | {dc} | {b.name} | {100 * b.input_high:.3g}% "
                f"| {100 * b.output_high:.3g}% | {100 * b.high_gain:+.3g} | {b.images_high_up}/{b.n_images} "
                f"| {'yes' if b.strengthens_high else 'no'} | {other} |"
            )
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

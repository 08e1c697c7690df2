"""GPU validation of the memory predictor: predicted vs measured for every zoo model (issue 4).

Run on a machine with CUDA::

    python -m effbench.memory.validate --out reports/gpu/memory.md

For each zoo model (deploy form, largest scale) and each size (256x256 and 1920x1080 / scale by default) it runs
:func:`effbench.memory.measure_cuda_memory` and writes a Markdown table (and a JSON file beside it) with the
measured ``max_memory_allocated``, the prediction, their difference, the prediction with the measured cuDNN
workspaces, and ``memory_stats()`` requested vs allocated peaks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def validate_zoo(
    names: list[str] | None = None, full_hd: bool = True, sizes: list[tuple[int, int]] | None = None
) -> list[dict[str, Any]]:
    """Measure and predict every zoo model; one dict per (model, size) from :func:`measure_cuda_memory`."""
    from ..zoo.registry import create_model, list_models, model_info
    from .cuda import measure_cuda_memory

    rows = []
    for name in names or list_models():
        scale = model_info(name).scales[-1]
        todo = list(sizes or [(256, 256)])
        if full_hd:
            todo.append((1080 // scale, 1920 // scale))
        for size in todo:
            model = create_model(name, scale=scale)
            try:
                row = measure_cuda_memory(model, size, scale=scale)
            except Exception as exc:  # keep going: one failing model must not hide the others
                row = {"model": name, "input_shape": [1, 3, *size], "error": f"{type(exc).__name__}: {exc}"}
            row["model"] = name
            row["scale"] = scale
            rows.append(row)
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The validation table: one line per (model, size)."""
    env = next((r["env"] for r in rows if "env" in r), {})
    lines = [
        "# Peak memory: predicted vs measured",
        "",
        f"GPU {env.get('gpu')}, torch {env.get('torch')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, "
        f"cudnn.benchmark={env.get('cudnn_benchmark')}. Protocol: reset_peak_memory_stats, one warm forward, one "
        "measured forward, no_grad; measured = max_memory_allocated. Prediction: effbench.predict_memory "
        "(device_model='cuda'); 'with ws' adds each conv's measured cuDNN workspace.",
        "",
        "| model | input | measured B | predicted B | diff % | with ws B | diff with ws % | cuDNN ws max B "
        "| requested peak B | allocated peak B | predicted peak at |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        shape = "x".join(str(d) for d in r["input_shape"])
        if "error" in r:
            lines.append(f"| {r['model']} | {shape} | error: {r['error']} |||||||||")
            continue
        lines.append(
            f"| {r['model']} | {shape} | {r['measured_peak_bytes']:,} | {r['predicted_peak_bytes']:,} "
            f"| {r['difference_pct']:+.2f} | {r['predicted_with_workspace_bytes']:,} "
            f"| {r['difference_with_workspace_pct']:+.2f} | {r['cudnn_workspace_max_bytes']:,} "
            f"| {r['requested_peak_bytes'] or 0:,} | {r['allocated_peak_bytes'] or 0:,} "
            f"| {r['predicted_peak_module']} {r['predicted_peak_op']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports/gpu/memory.md", help="Markdown report (JSON written beside it)")
    p.add_argument("--models", default=None, help="comma-separated zoo names (default: all)")
    p.add_argument("--no-full-hd", action="store_true", help="skip the 1920x1080 / scale input")
    args = p.parse_args(argv)
    rows = validate_zoo(args.models.split(",") if args.models else None, full_hd=not args.no_full_hd)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(rows))
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2, default=str))
    print(to_markdown(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The GPU validation report: what ``scripts/gpu_check.py`` measured, as markdown and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .text import fmt, md_table

__all__ = ["render_gpu_figures", "render_gpu_markdown"]


def _size(r: dict[str, Any]) -> str:
    return f"{r['size'][0]}x{r['size'][1]}"


def _scaled(v: float | None, k: float) -> float | None:
    return None if v is None else v * k


def _first_line(text: str | None, n: int) -> str:
    return text.splitlines()[0][:n] if text else ""


def _status(r: dict[str, Any]) -> str:
    return f"{r.get('status')} {_first_line(r.get('error'), 80)}".rstrip()


def render_gpu_markdown(R: dict[str, Any]) -> str:
    """The GPU validation report (scripts/gpu_check.py's results document) as markdown."""
    env = R.get("env", {})
    L = [f"# effbench GPU validation: {env.get('gpu_name', R.get('device'))}", ""]
    L.append(
        f"Run {R['started']} for {R.get('seconds', 0):.0f} s; device `{R['device']}`; torch "
        f"{env.get('torch_version')}, CUDA {env.get('cuda_version')}, cuDNN {env.get('cudnn_version')}, driver "
        f"{env.get('gpu_driver')}; TF32 matmul {env.get('tf32_matmul')}, cuDNN TF32 {env.get('tf32_cudnn')}; "
        f"SM clock {env.get('gpu_clock_sm_mhz')}/{env.get('gpu_clock_sm_max_mhz')} MHz, "
        f"{env.get('gpu_temperature_c')} C, {env.get('gpu_power_w')} W. Dry run: {R['dry_run']}."
    )
    L.append("")
    L.append("## Parts")
    L += md_table(
        ["part", "status", "seconds", "error"],
        [
            [k, v["status"], fmt(v.get("seconds"), ".1f"), _first_line(v.get("error"), 120)]
            for k, v in R["parts"].items()
        ],
    )
    pk = R.get("peaks") or {}
    if pk:
        L += [
            "",
            f"Roofline peaks ({pk.get('calibration')}): {pk['peak_flops_per_s'] / 1e9:.1f} GFLOP/s "
            f"(matmul {pk['matmul_flops_per_s'] / 1e9:.1f}, conv {pk['conv_flops_per_s'] / 1e9:.1f}), copy "
            f"{pk['peak_bytes_per_s'] / 1e9:.1f} GB/s; TF32 {pk.get('tf32')}.",
        ]
    L += [
        "",
        "## Steady protocol (5 repeats of the whole measurement; run-to-run CV of the median)",
        "",
    ]
    L += md_table(
        [
            "model",
            "input HxW",
            "CUDA graphs",
            "median ms",
            "run-to-run CV %",
            "within-run CV %",
            "first call ms",
            "peak MiB",
            "mJ/image",
            "bound ms",
            "measured/bound",
            "status",
        ],
        [
            [
                r["model"],
                _size(r),
                "yes" if r.get("cuda_graphs") else "no",
                fmt(r.get("median_ms")),
                fmt(_scaled(r.get("run_to_run_cv"), 100), ".2f"),
                fmt(_scaled(r.get("within_run_cv"), 100), ".2f"),
                fmt(r.get("first_call_ms"), ".1f"),
                fmt(_scaled(r.get("peak_memory_bytes"), 2**-20), ".1f"),
                fmt(_scaled(r.get("energy_j_per_image"), 1e3), ".2f"),
                fmt(r.get("bound_ms")),
                fmt(r.get("measured_over_bound"), ".1f"),
                _status(r),
            ]
            for r in R["steady"]
        ],
    )
    for graphs in (False, True):
        cvs = [
            r["run_to_run_cv"]
            for r in R["steady"]
            if r.get("run_to_run_cv") is not None and bool(r.get("cuda_graphs")) == graphs
        ]
        if cvs:
            L += [
                "",
                f"Run-to-run CV of the steady median{' with CUDA graphs' if graphs else ''}: max "
                f"{max(cvs) * 100:.2f} % over {len(cvs)} model/size cells; under 1 % for "
                f"{sum(c < 0.01 for c in cvs)} of {len(cvs)}.",
            ]
    L += [
        "",
        "## NTIRE protocol (fresh process per model and size; mean over images, no warm-up)",
        "",
    ]
    L += md_table(
        [
            "model",
            "input HxW",
            "mean ms",
            "first image ms",
            "median ms",
            "images",
            "max_memory_allocated MiB",
            "PSNR",
            "status",
        ],
        [
            [
                r["model"],
                _size(r),
                fmt(r.get("mean_ms")),
                fmt(r.get("first_image_ms"), ".1f"),
                fmt(r.get("median_ms")),
                r.get("images", "-"),
                fmt(r.get("memory_mib"), ".1f"),
                fmt(r.get("psnr"), ".2f"),
                _status(r),
            ]
            for r in R["ntire"]
        ],
    )
    if R["ntire"]:
        L.append(f"\nImages: {next((r.get('dataset') for r in R['ntire'] if r.get('dataset')), '-')}.")
    L += [
        "",
        "## Peak memory: measured vs predicted",
        "",
        "Measured: max_memory_allocated after reset_peak_memory_stats, one warm and one measured forward under "
        "no_grad (cudnn.benchmark False). Predicted: effbench.predict_memory (device_model='cuda'). 'With ws' adds "
        "each conv's cuDNN workspace, measured in a separate forward, to the predicted live bytes at that conv.",
        "",
    ]
    L += md_table(
        [
            "model",
            "scale",
            "input HxW",
            "measured MiB",
            "predicted MiB",
            "diff %",
            "with ws MiB",
            "diff with ws %",
            "max ws MiB",
            "predicted peak at",
            "status",
        ],
        [
            [
                r["model"],
                f"x{r.get('scale', 4)}",
                _size(r),
                fmt(_scaled(r.get("measured_bytes"), 2**-20), ".2f"),
                fmt(_scaled(r.get("predicted_bytes"), 2**-20), ".2f"),
                fmt(r.get("error_pct"), ".2f"),
                fmt(_scaled(r.get("predicted_with_workspace_bytes"), 2**-20), ".2f"),
                fmt(r.get("difference_with_workspace_pct"), ".2f"),
                fmt(_scaled(r.get("cudnn_workspace_max_bytes"), 2**-20), ".2f"),
                r.get("predicted_peak_module") or "-",
                _status(r),
            ]
            for r in R["memory"]
        ],
    )
    hl = R.get("headline") or {}
    if hl.get("rows"):
        L += [
            "",
            "## Headline: FMEN-S vs E-RFDN (paper: -33 % runtime, -74 % peak memory)",
            "",
        ]
        p = hl["paper"]
        L += md_table(
            [
                "protocol",
                "input HxW",
                "FMEN-S ms",
                "E-RFDN ms",
                "runtime change",
                "FMEN-S MiB",
                "E-RFDN MiB",
                "memory change",
            ],
            [
                [
                    r["protocol"],
                    _size(r),
                    fmt(r["fmen_s_ms"]),
                    fmt(r["e_rfdn_ms"]),
                    f"{fmt(_scaled(r['runtime_change'], 100), '+.1f')} %",
                    fmt(r["fmen_s_mib"], ".1f"),
                    fmt(r["e_rfdn_mib"], ".1f"),
                    f"{fmt(_scaled(r['memory_change'], 100), '+.1f')} %",
                ]
                for r in hl["rows"]
            ]
            + [
                [
                    "paper",
                    "DIV2K valid",
                    p["fmen_s_ms"],
                    p["e_rfdn_ms"],
                    "-33.1 %",
                    p["fmen_s_mib"],
                    p["e_rfdn_mib"],
                    "-74.0 %",
                ]
            ],
        )
    ov = R.get("overhead")
    if ov:
        L += [
            "",
            f"Timing harness overhead on a {ov['work_ms']} ms CPU workload: median {ov['overhead_median_us']:.2f} us "
            f"per run = {ov['overhead_pct']:.4f} % (max {ov['overhead_max_us']:.1f} us).",
        ]
    L += [
        "",
        "Figures: runtime.png (steady median vs NTIRE mean), memory.png (measured vs predicted), cv.png "
        "(run-to-run CV).",
    ]
    return "\n".join(L) + "\n"


def render_gpu_figures(R: dict[str, Any], folder: Path) -> list[str]:
    """runtime.png, cv.png and memory.png of a GPU validation run; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ok = [r for r in R["steady"] if r.get("status") == "ok" and not r.get("cuda_graphs")]
    if ok:
        sizes = sorted({tuple(r["size"]) for r in ok})
        fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4), squeeze=False)
        for ax, size in zip(axes[0], sizes):
            rows = [r for r in ok if tuple(r["size"]) == size]
            names = [r["model"] for r in rows]
            xs = range(len(rows))
            ax.bar([x - 0.2 for x in xs], [r["median_ms"] for r in rows], 0.4, label="steady median")
            nt = {
                r["model"]: r.get("mean_ms")
                for r in R["ntire"]
                if tuple(r["size"]) == size and r.get("status") == "ok"
            }
            ax.bar([x + 0.2 for x in xs], [nt.get(n) or 0 for n in names], 0.4, label="NTIRE mean")
            ax.set_xticks(list(xs), names, rotation=45, ha="right")
            ax.set_ylabel("ms")
            ax.set_title(f"runtime, input {size[0]}x{size[1]}")
            ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "runtime.png", dpi=110)
        plt.close(fig)
        written.append("runtime.png")
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = [
            f"{r['model']}\n{r['size'][0]}x{r['size'][1]}" for r in ok if r.get("run_to_run_cv") is not None
        ]
        vals = [100 * r["run_to_run_cv"] for r in ok if r.get("run_to_run_cv") is not None]
        ax.bar(range(len(vals)), vals)
        ax.axhline(1.0, color="red", linestyle="--", label="1 %")
        ax.set_xticks(range(len(vals)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("run-to-run CV of the median (%)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "cv.png", dpi=110)
        plt.close(fig)
        written.append("cv.png")
    mem = [r for r in R["memory"] if r.get("measured_bytes") and r.get("predicted_bytes")]
    if mem:
        fig, ax = plt.subplots(figsize=(5, 5))
        x = [r["predicted_bytes"] / 2**20 for r in mem]
        y = [r["measured_bytes"] / 2**20 for r in mem]
        ax.scatter(x, y)
        for r, xi, yi in zip(mem, x, y):
            ax.annotate(f"{r['model']} {r['size'][0]}x{r['size'][1]}", (xi, yi), fontsize=6)
        lim = max(x + y) * 1.05
        ax.plot([0, lim], [0, lim], "k--", linewidth=0.8)
        ax.set_xlabel("predicted peak (MiB)")
        ax.set_ylabel("measured peak (MiB)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        fig.tight_layout()
        fig.savefig(folder / "memory.png", dpi=110)
        plt.close(fig)
        written.append("memory.png")
    return written

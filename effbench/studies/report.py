"""Render a study document (``study.json``) as markdown (paper beside ours, verdict per row) and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..report.text import md_table
from ..timing.breakdown import conv_label
from .verdicts import time_basis_words

__all__ = ["render_study_markdown", "render_png"]


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v / 2**20:.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}%"


def _paper_params(p: dict[str, Any]) -> str:
    return f"{p['params'] / 1e3:.0f}K" if "params" in p else "-"


def _paired_setting(doc: dict[str, Any]) -> str:
    groups = [g for g in (doc.get("paired") or {}).values() if g.get("samples_ms")]
    if not groups:
        return ""
    g = groups[0]
    return (
        f"; then each baseline with its variants in one process, {g['rounds']} interleaved rounds (best of "
        f"{g.get('best_of', 1)} forwards per sample) and {next(iter(g.get('op_time', {}).values()), {}).get('passes', 0)}"
        " interleaved profiler passes"
    )


def _paper_change(p: dict[str, Any]) -> str:
    if p.get("time_change_pct") is not None:
        return _pct(p["time_change_pct"])
    return {1: "slower", -1: "faster"}.get(int(p.get("time_direction", 0)), "-")


def _paired_cell(r: dict[str, Any]) -> str:
    if r.get("time_paired_change_pct") is None:
        return "-"
    return f"{r['time_paired_change_pct']:+.1f}% (+-{r['time_paired_noise_pct']:.1f})"


def _roofline_lines(doc: dict[str, Any]) -> list[str]:
    """Per-op roofline: the paper's GPU at the paper's size, and this device at the study's size."""
    rows = [
        r for r in doc["rows"] if r.get("roofline") and ("paper" in r["roofline"] or "ours" in r["roofline"])
    ]
    if not rows:
        return []
    from ..timing.roofline import DEVICE_PEAKS

    paper_dev = DEVICE_PEAKS.get(doc.get("paper_device") or "", {})
    ph, pw = doc.get("paper_size") or (0, 0)
    h, w = doc["size"]
    ours = next((r["roofline"]["ours"] for r in rows if "ours" in r["roofline"]), None)
    lines = [
        "",
        "## What a per-operator roofline predicts",
        "",
        "Each ATen operator of the forward (traced on `meta`) takes max(FLOPs / peak FLOP/s, bytes moved / "
        "bandwidth); the sum is the bound of an unfused eager run (`effbench.timing.roofline.op_roofline`). "
        "'memory-bound' is the part spent in operators limited by traffic (activations, adds, multiplies, "
        "pooling, resampling, concat).",
    ]
    if paper_dev:
        lines += [
            "",
            f"Paper's GPU: {paper_dev['name']}: {paper_dev['peak_flops_per_s'] / 1e12:.2f} TFLOP/s, "
            f"{paper_dev['peak_bytes_per_s'] / 1e9:.0f} GB/s (spec sheet), at {ph}x{pw}.",
        ]
    if ours:
        lines += [
            "",
            f"This device ({doc['device']}): {ours['peak_flops_per_s'] / 1e9:,.1f} GFLOP/s, "
            f"{ours['peak_bytes_per_s'] / 1e9:,.1f} GB/s, calibrated in each variant's process "
            f"({(doc.get('device_peaks') or {}).get('calibration', 'effbench.timing.roofline.calibrate_peaks')}"
            f"), at {h}x{w}.",
        ]

    def cols(est: dict[str, Any] | None) -> list[str]:
        if not est:
            return ["-", "-"]
        share = 100.0 * est["memory_ms"] / est["bound_ms"] if est["bound_ms"] else 0.0
        return [f"{est['bound_ms']:.2f}", f"{share:.1f}%"]

    table = []
    for r in rows:
        rl = r["roofline"]
        measured = r.get("time_paired_change_pct")
        if measured is None:
            measured = (
                r.get("time_min_change_pct")
                if r.get("time_basis") == "fastest run"
                else r.get("time_change_pct")
            )
        table.append(
            [
                r["variant"],
                *cols(rl.get("paper")),
                _pct(r.get("roofline_paper_change_pct")),
                _paper_change(r["paper"]),
            ]
            + [*cols(rl.get("ours")), _pct(r.get("roofline_ours_change_pct")), _pct(measured)]
        )
    header = ["variant", "paper GPU: bound ms", "memory-bound", "change", "paper's change"]
    header += ["this device: bound ms", "memory-bound", "change", "our measured change"]
    return [*lines, "", *md_table(header, table)]


def _time_breakdown_lines(doc: dict[str, Any]) -> list[str]:
    """The profiler's split of each variant's time by operator kind, and each variant's busiest convs."""
    from ..timing.breakdown import KINDS

    rows = [r for r in doc["rows"] if r.get("op_time")]
    if not rows:
        return []
    kinds = [k for k in KINDS if any(r["op_time"]["kinds"].get(k, 0.0) > 0 for r in rows)]
    where = "GPU kernel" if str(doc["device"]).startswith("cuda") else "CPU operator"
    ot = rows[0]["op_time"]
    lines = [
        "",
        "## Where the time goes (torch.profiler)",
        "",
        f"{where} self time per ATen operator, ms per forward, "
        + (
            f"the median of {ot['passes']} profiled forwards taken in passes interleaved with the variant's "
            "baseline group (as the paired timing)"
            if ot.get("passes")
            else f"the mean of {ot['forwards']} profiled forwards after one warm-up in the variant's own process"
        )
        + ", grouped by kind with `effbench.timing.breakdown.OP_KINDS`. "
        "Profiling adds overhead: read shares and differences. 'non-conv' is everything but convolutions: "
        "the memory-bound work.",
        "",
    ]
    header = ["variant", "profiled ms", *kinds, "non-conv share", "conv GFLOP/s"]
    header += ["change vs baseline: conv ms", "non-conv ms"]
    table = []
    for r in rows:
        o = r["op_time"]
        nonconv = (
            100.0 * (o["total_ms"] - o["kinds"].get("conv", 0.0)) / o["total_ms"] if o["total_ms"] else 0.0
        )
        sp = r.get("time_split")
        change = (
            [f"{sp['conv_change_ms']:+.2f}", f"{sp['nonconv_change_ms']:+.2f}"]
            if sp and r["baseline"] != r["variant"]
            else ["-", "-"]
        )
        table.append(
            [r["variant"], f"{o['total_ms']:.2f}", *(f"{o['kinds'].get(k, 0.0):.2f}" for k in kinds)]
            + [f"{nonconv:.1f}%", _num(o.get("conv_gflop_per_s"), "{:.1f}"), *change]
        )
    convs = [
        [
            r["variant"],
            conv_label(c),
            "x".join(str(d) for d in c.get("input", [])),
            c["calls"],
            f"{c['ms']:.2f}",
        ]
        + [_num(c.get("gflop_per_s"), "{:.1f}")]
        for r in rows
        for c in r["op_time"].get("convs", [])[:2]
    ]
    return [
        *lines,
        *md_table(header, table),
        "",
        "Busiest convolution shapes (Cin->Cout kxk at the input size shown; throughput from the profiler's "
        "FLOP count):",
        "",
        *md_table(["variant", "conv", "input", "calls", "ms", "GFLOP/s"], convs),
    ]


_MAIN_HEADER = (
    "variant",
    "params (paper)",
    "params (ours)",
    "GFLOPs",
    "convs",
    "peak mem predicted MiB",
    "peak mem measured MiB",
    "time ms (paper)",
    "time ms (ours, cv)",
    "change vs baseline (paper)",
    "change (ours, median)",
    "change (ours, fastest run)",
    "change (ours, paired)",
    "mem change predicted",
    "mem change measured",
)


def render_study_markdown(doc: dict[str, Any]) -> str:
    """The study report: setting, the paper-vs-ours table, verdicts, configuration notes, fusion formula table."""
    env = doc.get("env") or {}
    h, w = doc["size"]
    hw = env.get("gpu_name") or env.get("gpu") or env.get("cpu_model") or ""
    lines = [
        f"# Study `{doc['study']}`: {doc['title']}",
        "",
        f"Source: {doc['source']}. Paper setting: {doc['paper_setting']}.",
        "",
        f"Ours: device `{doc['device']}`{f' ({hw})' if hw else ''}, LR input {h}x{w}, "
        f"steady protocol, {doc['repeats']} timed forwards per variant, threads {doc.get('threads') or 'default'}"
        f", torch {env.get('torch_version') or env.get('torch', '?')}; each variant in a fresh process (effbench.sweep)"
        + _paired_setting(doc)
        + ".",
        "",
    ]
    if doc.get("command"):
        lines += [f"Command: `{doc['command']}`", ""]
    rows = doc["rows"]
    table = []
    for r in rows:
        p = r["paper"]
        t = "-" if r["time_ms"] is None else f"{r['time_ms']:.2f} ({100 * (r['time_cv'] or 0):.1f}%)"
        status = "" if r["status"] == "ok" else f" **{r['status']}**"
        table.append(
            [
                f"{r['variant']}{status}",
                _paper_params(p),
                _num(r["params"]),
                _num(r["flops"] and r["flops"] / 1e9, "{:.2f}"),
                _num(r["convs"]),
                _mib(r["mem_predicted_bytes"]),
                _mib(r["mem_measured_bytes"]),
                _num(p.get("time_ms"), "{:.2f}"),
                t,
                _paper_change(p),
                _pct(r.get("time_change_pct")),
                _pct(r.get("time_min_change_pct")),
                _paired_cell(r),
                _pct(r.get("mem_predicted_change_pct")),
                _pct(r.get("mem_measured_change_pct")),
            ]
        )
    lines += md_table(_MAIN_HEADER, table)
    lines += [
        "",
        "## Row by row: does our measurement agree with the paper?",
        "",
        "Time: direction agrees when the signs match beyond run noise, size when ours is within a factor 2 "
        "of the paper's change (a change under 3% counts as 'small'). The change judged is the paired one "
        "when there is one: each baseline and its variants timed again in one process, one forward of each "
        "per round in a rotating order, and the median over rounds of the per-round ratio (drift between "
        "the separate processes cancels); its noise is two standard errors of that median. Without it, the "
        "medians of the separate runs are compared, or their fastest runs when the combined cv exceeds 5%, "
        "and above 30% no verdict is given. Params: within 1%.",
        "",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"- **{r['variant']}**: not measured ({r['status']}: {r.get('error') or ''})")
        elif r["verdict"]:
            basis = time_basis_words(r)
            on = f"; time judged on {basis}" if basis else ""
            lines.append(f"- **{r['variant']}** (vs {r['baseline']}{on}): {r['verdict']}")
    lines += _roofline_lines(doc)
    lines += _time_breakdown_lines(doc)
    formula = doc.get("formula")
    if formula:
        lines += [
            "",
            "## The paper's formula (Sec. 3.1) against the predicted peak of the bare structures",
            "",
            f"C = {formula[0]['c']}, H x W = {h} x {w}; live features at the peak (parameters excluded), "
            "`effbench.predict_memory(block, channels=C, donate_input=True, device_model='plain')`.",
            "",
        ]
        header = ["variant", "params", "peak op", "predicted (x CHW)", "formula (x CHW)", "predicted bytes"]
        lines += md_table(
            [*header, "formula bytes", "exact"],
            (
                [f["variant"], f"{f['params']:,}", f"{f['peak_op']} ({f['peak_module'] or 'top level'})"]
                + [f"{f['predicted_x']:.2f}", f"{f['formula_x']:.0f}", f"{f['predicted_feature_bytes']:,}"]
                + [f"{f['formula_bytes']:,}", "yes" if f["exact"] else "**no**"]
                for f in formula
            ),
        )
        n_exact = sum(f["exact"] for f in formula)
        lines += ["", f"{n_exact} of {len(formula)} rows reproduce the formula exactly."]
    blocks = doc.get("block_memory")
    if blocks:
        lines += [
            "",
            "## Memory of one block (paper Sec. 3.3: the skip keeps one extra C x H x W alive)",
            "",
            f"C = {blocks[0]['c']}, H x W = {h} x {w}; `effbench.predict_memory(block, channels=C, "
            "donate_input=True, device_model='plain')`, live features at the peak, parameters excluded.",
            "",
        ]
        lines += md_table(
            ["block", "peak op", "predicted (x CHW)", "paper (x CHW)", "exact"],
            (
                [b["block"], f"{b['peak_op']} ({b['peak_module'] or 'top level'})", f"{b['predicted_x']:.2f}"]
                + ["-" if b["paper_x"] is None else b["paper_x"]]
                + ["-" if b["exact"] is None else ("yes" if b["exact"] else "**no**")]
                for b in blocks
            ),
        )
    lines += ["", "## Configuration", ""] + [f"- {n}" for n in doc.get("notes", [])]
    lines += ["", f"Study run time: {doc.get('seconds', 0):.0f} s.", ""]
    return "\n".join(lines)


def render_png(doc: dict[str, Any], path: str | Path) -> Path | None:
    """Bar chart of time changes (paper vs ours) for blocks/attention; peak memory vs N for fusion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    formula = doc.get("formula")
    fig, ax = plt.subplots(figsize=(7, 4))
    if formula:
        for topo, marker in (("plain", "o"), ("fusion", "s")):
            fs = [f for f in formula if f["topology"] == topo]
            if not fs:
                continue
            ax.plot(
                [f["n"] for f in fs],
                [f["predicted_x"] for f in fs],
                marker=marker,
                label=f"{topo}: predicted",
            )
            ax.plot(
                [f["n"] for f in fs], [f["formula_x"] for f in fs], "k:", marker="x", label=f"{topo}: paper"
            )
        ax.set_xticks(sorted({f["n"] for f in formula}))
        ax.set_xlabel("N (features fused)")
        ax.set_ylabel("peak live features (x C x H x W)")
        ax.set_title("Sec. 3.1: plain vs fusion peak memory")
    else:
        rows = [r for r in doc["rows"] if r.get("baseline") and r["baseline"] != r["variant"]]
        if not rows:
            plt.close(fig)
            return None
        xs = range(len(rows))
        where = f"{doc['device']}, {doc['size'][0]}x{doc['size'][1]}"
        nan = float("nan")

        def ours(r: dict[str, Any]) -> float:
            v = r.get("time_paired_change_pct")
            return (
                v
                if v is not None
                else (r.get("time_change_pct") if r.get("time_change_pct") is not None else nan)
            )

        paired = any(r.get("time_paired_change_pct") is not None for r in rows)
        series = [
            ([r["paper"].get("time_change_pct", nan) for r in rows], "paper (1080Ti)", None),
            (
                [r.get("roofline_paper_change_pct", nan) for r in rows],
                "roofline, GTX 1080 Ti at the paper's size",
                None,
            ),
            (
                [ours(r) for r in rows],
                f"ours, {'paired' if paired else 'median'} ({where})",
                [r.get("time_paired_noise_pct") or 0.0 for r in rows] if paired else None,
            ),
            (
                [r.get("roofline_ours_change_pct", nan) for r in rows],
                f"roofline, this device ({where})",
                None,
            ),
        ]
        width = 0.8 / len(series)
        for k, (vals, label, err) in enumerate(series):
            ax.bar(
                [x + (k - (len(series) - 1) / 2) * width for x in xs],
                [nan if v is None else v for v in vals],
                width=width,
                label=label,
                yerr=err,
                capsize=2 if err else 0,
            )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["variant"] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("time change vs baseline (%)")
        ax.set_title(doc["title"], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

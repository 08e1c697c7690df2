"""The comparison with the paper: per row, our change vs its baseline, the paper's figure, and a verdict with its
reasons (paired timing, per-operator roofline, profiler split, memory peaks)."""

from __future__ import annotations

import math
from typing import Any

from ..timing.breakdown import conv_label
from .definitions import Study, Variant

__all__ = ["NOISY_CV_PCT", "TOO_NOISY_CV_PCT", "analyse_study", "time_split"]

NOISY_CV_PCT = 5.0  #: above this combined cv (%) of two runtimes, verdicts compare fastest runs, not medians
TOO_NOISY_CV_PCT = 30.0  #: above this, no time verdict is given (even the fastest runs are disturbed)


def _pct(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return 100.0 * (a - b) / b


def _runtime(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    rt = doc.get("metrics", {}).get("runtime_ms")
    if not isinstance(rt, dict):
        return None, None
    return rt.get("median"), rt.get("cv")


def _runtime_min(doc: dict[str, Any]) -> float | None:
    rt = doc.get("metrics", {}).get("runtime_ms")
    return rt.get("min") if isinstance(rt, dict) else None


def _verdict_time(ours: float | None, paper: float | None, noise: float) -> tuple[str, bool | None]:
    """Compare our time change (%) with the paper's: direction (sign beyond noise) and size (factor 2)."""
    if ours is None or paper is None:
        return "", None
    if abs(paper) < 3.0:
        ok = abs(ours) <= max(3.0, noise)
        return (
            f"agrees: both small ({ours:+.1f}% vs {paper:+.1f}%)"
            if ok
            else f"disagrees: {ours:+.1f}% vs the paper's small {paper:+.1f}%"
        ), ok
    if abs(ours) <= noise:
        return f"inconclusive: {ours:+.1f}% is within run noise (+-{noise:.1f}%) vs {paper:+.1f}%", False
    if (ours > 0) != (paper > 0):
        return f"disagrees in direction: {ours:+.1f}% vs {paper:+.1f}%", False
    ratio = ours / paper
    if 0.5 <= ratio <= 2.0:
        return f"agrees: direction and size ({ours:+.1f}% vs {paper:+.1f}%)", True
    return f"direction agrees, size differs ({ours:+.1f}% vs {paper:+.1f}%, x{ratio:.2f})", False


def time_split(base: dict[str, Any] | None, var: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where a variant's time differs from its baseline's, from both ``op_time`` breakdowns (ms per forward)."""
    if not base or not var or not base.get("total_ms"):
        return None
    kinds = {k: var["kinds"].get(k, 0.0) - base["kinds"].get(k, 0.0) for k in base["kinds"]}
    nonconv = sum(v for k, v in kinds.items() if k != "conv")
    gf_base = sum(c["gflops"] for c in base.get("convs", []))
    gf_var = sum(c["gflops"] for c in var.get("convs", []))
    return {
        "base_total_ms": base["total_ms"],
        "total_change_ms": var["total_ms"] - base["total_ms"],
        "kind_change_ms": kinds,
        "conv_change_ms": kinds.get("conv", 0.0),
        "nonconv_change_ms": nonconv,
        "nonconv_share_base_pct": 100.0
        * (base["total_ms"] - base["kinds"].get("conv", 0.0))
        / base["total_ms"],
        "nonconv_share_pct": 100.0 * (var["total_ms"] - var["kinds"].get("conv", 0.0)) / var["total_ms"],
        "conv_gflops_change_pct": _pct(gf_var, gf_base),
        "conv_gflop_per_s": [base.get("conv_gflop_per_s"), var.get("conv_gflop_per_s")],
        "top_conv": [
            conv_label(base["convs"][0]) if base.get("convs") else None,
            conv_label(var["convs"][0]) if var.get("convs") else None,
        ],
        "top_conv_gflop_per_s": [
            base["convs"][0].get("gflop_per_s") if base.get("convs") else None,
            var["convs"][0].get("gflop_per_s") if var.get("convs") else None,
        ],
    }


def _why_split(split: dict[str, Any], device: str) -> list[str]:
    """The measured reasons: how much of the change is convolution and how much the rest, on this device."""
    base = split["base_total_ms"]
    kinds = sorted(
        ((k, v) for k, v in split["kind_change_ms"].items() if k != "conv" and abs(v) >= 0.005 * base),
        key=lambda kv: -abs(kv[1]),
    )
    parts = ", ".join(f"{k} {v:+.2f}" for k, v in kinds) or "each kind under 0.5%"
    where = "GPU kernel" if device.startswith("cuda") else "CPU operator"
    gf, tp = split["conv_gflops_change_pct"], split["conv_gflop_per_s"]
    conv = f"convs {split['conv_change_ms']:+.2f} ms ({100.0 * split['conv_change_ms'] / base:+.1f}%"
    conv += f" for {gf:+.1f}% conv FLOPs" if gf is not None else ""
    conv += f"; {tp[0]:.1f} -> {tp[1]:.1f} GFLOP/s)" if tp[0] and tp[1] else ")"
    out = [
        f"profiled ({where} time per forward): {split['total_change_ms']:+.2f} ms in all "
        f"({100.0 * split['total_change_ms'] / base:+.1f}%) = non-conv ops {split['nonconv_change_ms']:+.2f} ms "
        f"({100.0 * split['nonconv_change_ms'] / base:+.1f}% of the baseline's {base:.2f} ms: {parts}; non-conv "
        f"work is {split['nonconv_share_base_pct']:.1f}% of the baseline's time here) + {conv}"
    ]
    if tp[0] and tp[1] and abs(tp[1] / tp[0] - 1) > 0.05 and split["top_conv"][0] != split["top_conv"][1]:
        t0, t1 = split["top_conv_gflop_per_s"]
        out.append(
            f"the busiest convs differ in width ({split['top_conv'][0]} at {t0:.1f} GFLOP/s vs "
            f"{split['top_conv'][1]} at {t1:.1f}): the layer shape, not the FLOP count, sets the conv time"
        )
    return out


def _why_roofline(study: Study, row: dict[str, Any], device: str, size: tuple[int, int]) -> list[str]:
    """The roofline's reading: the paper's effect on the paper's GPU, and what the same model expects here."""
    from ..timing.roofline import DEVICE_PEAKS

    out = []
    paper, ours = row.get("roofline_paper_change_pct"), row.get("roofline_ours_change_pct")
    if paper is not None and study.paper_size:
        gpu = DEVICE_PEAKS[study.paper_device or ""]["name"].split(" (")[0]
        h, w = study.paper_size
        claim = row["paper"].get("time_change_pct")
        said = (
            f"{claim:+.1f}%"
            if claim is not None
            else ("slower" if row["paper"].get("time_direction", 0) > 0 else "faster")
        )
        out.append(f"a per-op roofline of the paper's {gpu} at {h}x{w} predicts {paper:+.1f}% (paper {said})")
    if ours is not None:
        peaks = (row.get("roofline") or {}).get("ours") or {}
        rate = ""
        if peaks:
            rate = (
                f" ({peaks['peak_flops_per_s'] / 1e9:,.0f} GFLOP/s, {peaks['peak_bytes_per_s'] / 1e9:,.0f} GB/s "
                "calibrated)"
            )
        out.append(
            f"the same model with this {'GPU' if device.startswith('cuda') else 'CPU'}'s peaks{rate} at "
            f"{size[0]}x{size[1]} predicts {ours:+.1f}%"
        )
    return out


def _why_time(
    study: Study,
    device: str,
    size: tuple[int, int],
    noise: float,
    flops_change: float | None,
    split: dict[str, Any] | None = None,
    roofline: list[str] | None = None,
) -> str:
    reasons = list(roofline or [])
    if split is not None:
        reasons += _why_split(split, device)
    elif flops_change is not None and abs(flops_change) > 3.0:
        reasons.append(
            f"this variant has {flops_change:+.1f}% FLOPs vs its baseline, which a compute-bound device "
            "turns into time directly"
        )
    if device == "cpu" and not roofline:
        reasons.append(
            "the paper timed an Nvidia 1080Ti, where memory-bound element-wise work (skip adds, "
            "attention multiplies, pooling, upsampling) weighs far more next to the convolutions than on "
            "a CPU"
        )
    if size[0] * size[1] < 300 * 300 and not roofline:
        reasons.append(
            f"{size[0]}x{size[1]} inputs are smaller than DIV2K-valid x4 LR images (about 510x350), "
            "which changes the share of fixed per-op costs"
        )
    if noise > NOISY_CV_PCT:
        reasons.append(f"the runs were noisy (combined cv {noise:.1f}%): the machine is shared")
    return "; ".join(reasons)


def _parts_text(at: dict[str, Any]) -> str:
    return ", ".join(f"{x:.2f}x {why}" for why, x in at["parts"])


def _why_same_peak(base: dict[str, Any] | None, var: dict[str, Any] | None) -> str:
    """Why two variants have the same whole-network peak, from what the memory predictor found alive there."""
    if not base or not var:
        return (
            "the whole-network peak lies where the two variants do not differ; see the block-level table for "
            "the blocks alone"
        )
    text = (
        f"the baseline peaks in {base['where']} ({base['block_type']}) at the {base['op']} with "
        f"{base['features_x']:.1f} x C x H x W alive ({_parts_text(base)}); this variant in {var['where']} "
        f"({var['block_type']}) at the {var['op']} with {var['features_x']:.1f} x C x H x W "
        f"({_parts_text(var)})"
    )
    held = [why for why, _ in var["parts"] if "Python reference" in why]
    kept = [why for why, _ in base["parts"] if "residual" in why]
    if held and len(kept) > len([why for why, _ in var["parts"] if "residual" in why]):
        text += (
            "; the feature the skip kept is gone, but the block's input stays alive while the block runs "
            "because the caller still holds it (eager Python: `h = block(h)` rebinds only after the call), "
            "so the saving shows only where a block's input is freed after its last use (the block-level "
            "table, an ahead-of-time memory plan)"
        )
    elif base["where"] == var["where"] and base["op"] == var["op"]:
        text += "; the peak is where the variants do not differ, so the skip's feature never reaches it"
    return text


def _fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}%"


def _paired(paired: dict[str, dict[str, Any]] | None, v: Variant) -> dict[str, float] | None:
    from ..timing.paired import paired_change

    group = (paired or {}).get(v.baseline or "")
    samples = (group or {}).get("samples_ms") or {}
    if v.baseline == v.name or v.name not in samples or v.baseline not in samples:
        return None
    return paired_change(samples, v.baseline, v.name)


def _paired_note(row: dict[str, Any], pc: dict[str, float]) -> str:
    return (
        f" [paired: median of {pc['rounds']} interleaved rounds, +-{pc['noise_pct']:.1f}%; the "
        f"separate runs' medians differ by {_fmt_pct(row.get('time_change_pct'))}]"
    )


def time_basis_words(row: dict[str, Any]) -> str | None:
    """Which measurement a row's time verdict uses, in words (``None``: the row has no time verdict): the paired
    rounds in one process, or the two separate processes' medians or fastest runs (the ``time_ms`` column)."""
    basis = row.get("time_basis")
    if basis == "paired":
        return f"paired rounds ({row.get('time_paired_rounds')} interleaved in one process)"
    if basis == "fastest run":
        return "separate processes (fastest runs)"
    if basis == "median":
        return "separate processes (medians)"
    return None


def _verdict_direction(
    study: Study,
    row: dict[str, Any],
    v: Variant,
    pc: dict[str, float] | None,
    noise: float,
    device: str,
    size: tuple[int, int],
) -> list[str]:
    """A claim of direction only (``paper["time_direction"]``: +1 slower, -1 faster than the baseline)."""
    ours = pc["change_pct"] if pc else row.get("time_change_pct")
    if ours is None:
        return []
    margin = pc["noise_pct"] if pc else max(noise, NOISY_CV_PCT)
    row["time_basis"] = "paired" if pc else "median"
    want = "slower" if v.paper["time_direction"] > 0 else "faster"
    if abs(ours) <= margin:
        text, ok = f"inconclusive: {ours:+.1f}% is within run noise (+-{margin:.1f}%) (paper: {want})", False
    elif (ours > 0) == (v.paper["time_direction"] > 0):
        text, ok = f"agrees in direction: {ours:+.1f}% (+-{margin:.1f}%) (paper: {want})", True
    else:
        text, ok = f"disagrees in direction: {ours:+.1f}% (+-{margin:.1f}%) (paper: {want})", False
    text += _paired_note(row, pc) if pc else " [separate processes: medians of the two runs]"
    row["time_agrees"] = ok
    if not ok:
        why = _why_time(
            study,
            device,
            size,
            margin,
            row.get("flops_change_pct"),
            row.get("time_split"),
            _why_roofline(study, row, device, size),
        )
        text += f" - why: {why}" if why else ""
    return ["time " + text]


def analyse_study(
    study: Study,
    docs: dict[str, dict[str, Any]],
    device: str,
    size: tuple[int, int],
    rooflines: dict[str, dict[str, Any]] | None = None,
    paired: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per variant: our metrics, the change vs its baseline, the paper's figures and the verdicts;
    ``rooflines`` (from :func:`roofline_estimates`) adds the roofline's predicted changes and uses them as reasons;
    ``paired`` (from :func:`time_groups_interleaved`) gives the drift-free change that the time verdict then uses."""
    rooflines = rooflines or {}
    rows = []
    for v in study.variants:
        doc = docs.get(v.name, {})
        m = doc.get("metrics", {})
        t, cv = _runtime(doc)
        # profiled in interleaved passes with its baseline group (drift cancels); else the cell's own profile
        group_ot = ((paired or {}).get(v.baseline or "") or {}).get("op_time") or {}
        row: dict[str, Any] = {
            "variant": v.name,
            "group": v.group,
            "spec": v.spec,
            "kwargs": v.kwargs,
            "baseline": v.baseline,
            "status": doc.get("status", "missing"),
            "error": doc.get("error"),
            "params": m.get("params"),
            "flops": m.get("flops"),
            "activations": m.get("activations"),
            "convs": m.get("convs"),
            "mem_predicted_bytes": m.get("peak_memory_predicted_bytes"),
            "mem_measured_bytes": m.get("peak_memory_measured_bytes"),
            "time_ms": t,
            "time_cv": cv,
            "paper": dict(v.paper),
            "op_time": group_ot.get(v.name, m.get("op_time")),
        }
        base = docs.get(v.baseline, {}) if v.baseline and v.baseline != v.name else None
        if base is not None:
            bt, bcv = _runtime(base)
            bm = base.get("metrics", {})
            row["time_change_pct"] = _pct(t, bt)
            row["time_min_change_pct"] = _pct(_runtime_min(doc), _runtime_min(base))
            row["flops_change_pct"] = _pct(m.get("flops"), bm.get("flops"))
            row["mem_predicted_change_pct"] = _pct(
                m.get("peak_memory_predicted_bytes"), bm.get("peak_memory_predicted_bytes")
            )
            row["mem_measured_change_pct"] = _pct(
                m.get("peak_memory_measured_bytes"), bm.get("peak_memory_measured_bytes")
            )
            noise = 100.0 * math.hypot(cv or 0.0, bcv or 0.0)
            row["time_noise_pct"] = noise
            if v.name in group_ot and v.baseline in group_ot:
                row["time_split"] = time_split(group_ot[v.baseline], group_ot[v.name])
                row["time_split"]["source"] = "interleaved passes"
            else:
                row["time_split"] = time_split(bm.get("op_time"), m.get("op_time"))
            for where in ("paper", "ours"):
                mine = rooflines.get(v.name, {}).get(where)
                theirs = rooflines.get(v.baseline, {}).get(where)
                if mine and theirs:
                    row[f"roofline_{where}_change_pct"] = _pct(mine["bound_ms"], theirs["bound_ms"])
        else:
            noise = 100.0 * (cv or 0.0)
        row["roofline"] = rooflines.get(v.name)
        verdicts: list[str] = []
        if "params" in v.paper and row["params"]:
            off = _pct(row["params"], v.paper["params"])
            row["params_off_pct"] = off
            verdicts.append(f"params {'within' if abs(off) <= 1.0 else 'NOT within'} 1% ({off:+.2f}%)")
        pc = _paired(paired, v)
        if pc is not None:
            row["time_paired_change_pct"], row["time_paired_noise_pct"] = pc["change_pct"], pc["noise_pct"]
            row["time_paired_rounds"] = pc["rounds"]
        if (
            "time_change_pct" in v.paper
            and v.baseline != v.name
            and (pc is not None or row.get("time_change_pct") is not None)
        ):
            # Best basis first: rounds interleaved in one process (drift cancels), else on a noisy machine
            # (combined cv > 5%) the fastest runs, else the medians of the two processes.
            fastest = pc is None and noise > NOISY_CV_PCT and row.get("time_min_change_pct") is not None
            if pc is not None:
                ours, row["time_basis"] = pc["change_pct"], "paired"
            else:
                ours = row["time_min_change_pct"] if fastest else row["time_change_pct"]
                row["time_basis"] = "fastest run" if fastest else "median"
            if pc is None and noise > TOO_NOISY_CV_PCT:
                text, ok = (
                    (
                        f"inconclusive: the runs are too noisy to judge (combined cv {noise:.0f}%; ours "
                        f"{ours:+.1f}% vs {v.paper['time_change_pct']:+.1f}%)"
                    ),
                    None,
                )
            elif pc is not None:
                text, ok = _verdict_time(ours, v.paper["time_change_pct"], pc["noise_pct"])
            else:
                text, ok = _verdict_time(ours, v.paper["time_change_pct"], NOISY_CV_PCT if fastest else noise)
            if pc is not None:
                text += _paired_note(row, pc)
            elif fastest:
                text += (
                    f" [separate processes: fastest runs; the medians differ by {row['time_change_pct']:+.1f}% "
                    f"with cv {noise:.1f}%]"
                )
            else:
                text += " [separate processes: medians of the two runs]"
            row["time_agrees"] = ok
            if not ok:
                why = _why_time(
                    study,
                    device,
                    size,
                    pc["noise_pct"] if pc else noise,
                    row.get("flops_change_pct"),
                    row.get("time_split"),
                    _why_roofline(study, row, device, size),
                )
                text += f" - why: {why}" if why else ""
            verdicts.append("time " + text)
        if "time_direction" in v.paper and "time_change_pct" not in v.paper and v.baseline != v.name:
            verdicts += _verdict_direction(study, row, v, pc, noise, device, size)
        mem_change = row.get("mem_measured_change_pct")
        mem_change = mem_change if mem_change is not None else row.get("mem_predicted_change_pct")
        if "mem_direction" in v.paper and mem_change is not None:
            src = "measured" if row.get("mem_measured_change_pct") is not None else "predicted"
            down = mem_change < 0
            want = "lower" if v.paper["mem_direction"] < 0 else "higher"
            if mem_change == 0:
                row["mem_agrees"] = None
                why = _why_same_peak(
                    bm.get("peak_memory_at") if base is not None else None, m.get("peak_memory_at")
                )
                text = f"memory: {src} whole-network peak unchanged (paper: {want}) - why: {why}"
            else:
                row["mem_agrees"] = down == (v.paper["mem_direction"] < 0)
                text = (
                    f"memory {'agrees' if row['mem_agrees'] else 'disagrees'}: {src} whole-network peak "
                    f"{mem_change:+.1f}% (paper: {want})"
                )
            verdicts.append(text)
        row["verdict"] = "; ".join(verdicts)
        rows.append(row)
    return rows

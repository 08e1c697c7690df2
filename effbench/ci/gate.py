"""The CI regression gate: compare current results against a baseline, per model and metric.

Which metrics are gated, against which threshold, and how, comes from the metric catalogue
(:mod:`effbench.base.catalogue`): every metric with a ``gate`` threshold is checked. Deterministic ones (params,
FLOPs/MACs, activations, convs, predicted and measured peak memory) fail on any increase beyond their threshold
(default 0%: any increase fails).

A measured metric (runtime) fails only when the slowdown is beyond the threshold (default 5%) *and* statistically
significant: with the recorded samples of both runs, a one-sided Mann-Whitney U test of H1 "current samples are stochastically larger than the
baseline samples scaled by (1 + threshold)" at level ``alpha`` (default 0.05), and the median ratio must exceed
1 + threshold. When only summary statistics are recorded (pytest-benchmark JSON saved without
``--benchmark-save-data``) a one-sided Welch t-test on the means (baseline scaled the same way) is used. A
percentile bootstrap 95% CI of the median ratio is reported next to each verdict.

A runtime measured on a noisy or loaded machine decides nothing: when either side's timing is flagged ``noisy``
(its median's interval stayed wider than its target, :mod:`effbench.timing.steady`) or other processes took more
than ``max_other_cpu`` (default 25 %) of the CPUs while it ran (``env.load.other_cpu_share``), the runtime check
is ``inconclusive`` with the reason, never ``fail``: rerun both on a quiet machine.

Exit codes: 0 pass, 1 regression (takes precedence), 2 missing data (a model or metric of the baseline absent
from the current results, or a runtime slowdown that cannot be tested for lack of repeats: no samples, or so
few that even complete separation is not significant at ``alpha``), 7 inconclusive (no regression, nothing
missing, but a runtime was measured on a noisy or loaded machine).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.catalogue import Metric, metric, metrics, number
from ..base.errors import UsageError
from ..base.identity import ModelIdentity, display_names, result_key
from ..base.stats import bootstrap_ratio_ci, mann_whitney_u, welch_t
from ..report.text import md_table

# percent: the default threshold of a measured (noisy) metric; deterministic ones get 0
MEASURED_THRESHOLD = 5.0
MIN_SAMPLES = 3
# the share of the CPUs other processes may take while a runtime is measured before the gate trusts it no more
MAX_OTHER_CPU = 0.25
EXIT_INCONCLUSIVE = 7  # 5 and 6 are taken (base.errors: results not written, model ended the process)


def gated(kind: str) -> tuple[Metric, ...]:
    """The catalogue's gated metrics of one kind (``"deterministic"`` or ``"measured"``; measured ones are gated
    as lower-is-better: the test asks whether the current samples are larger)."""
    return tuple(m for m in metrics() if m.gate and m.kind == kind)


def default_thresholds() -> dict[str, float]:
    """Threshold name -> default percent: 5% for a measured metric, 0% (any increase fails) otherwise."""
    out: dict[str, float] = {}
    for m in metrics():
        if m.gate:
            out[m.gate] = max(out.get(m.gate, 0.0), MEASURED_THRESHOLD if m.kind == "measured" else 0.0)
    return out


@dataclass
class Entry:
    """One measured model under one set of conditions, as the gate sees it."""

    label: str
    status: str = "ok"
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # deterministic metrics
    samples: dict[str, list[float]] = field(default_factory=dict)  # measured metric -> its samples
    # measured metric -> median, mean, std, n
    summaries: dict[str, dict[str, float]] = field(default_factory=dict)
    noisy: dict[str, str] = field(default_factory=dict)  # measured metric -> why its timing is flagged noisy
    other_cpu_share: float | None = None  # the CPU share other processes took while it was measured


@dataclass
class Check:
    """The verdict on one metric of one model."""

    model: str
    metric: str
    verdict: str  # "pass" | "fail" | "missing" | "inconclusive" | "new"
    base: str = "-"
    cur: str = "-"
    change_pct: float | None = None
    threshold_pct: float | None = None
    detail: str = ""


@dataclass
class GateResult:
    """All checks and the resulting exit code (0 pass, 1 regression, 2 missing data)."""

    checks: list[Check]
    alpha: float
    thresholds: dict[str, float]

    @property
    def regressions(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "fail"]

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "missing"]

    @property
    def inconclusive(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "inconclusive"]

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 2 missing data, :data:`EXIT_INCONCLUSIVE` (7) a runtime measured on a noisy or
        loaded machine; the first that applies in this order."""
        if self.regressions:
            return 1
        if self.missing:
            return 2
        return EXIT_INCONCLUSIVE if self.inconclusive else 0

    def markdown(self) -> str:
        """A summary for CI logs and job summaries."""
        verdict = {
            0: "PASS",
            1: "FAIL (regression)",
            2: "INCOMPLETE (missing data)",
            EXIT_INCONCLUSIVE: "INCONCLUSIVE (noisy or loaded machine: rerun both on a quiet one)",
        }[self.exit_code]
        models = sorted({c.model for c in self.checks})
        th = ", ".join(f"{k} {v:g}%" for k, v in self.thresholds.items())
        lines = [
            f"## effbench gate: {verdict}",
            "",
            f"{len(models)} model(s), {len(self.checks)} checks: {len(self.regressions)} regression(s), "
            f"{len(self.missing)} missing, {len(self.inconclusive)} inconclusive. Thresholds: {th}.",
            f"Runtime: fails when median ratio > 1 + threshold and a one-sided Mann-Whitney U test (current vs "
            f"baseline x (1 + threshold)) gives p < {self.alpha:g} (Welch's t on means when only summaries are "
            "recorded); inconclusive when either side's timing is noisy or was measured on a loaded machine.",
            "",
        ]
        order = {"fail": 0, "missing": 1, "inconclusive": 2, "new": 3, "pass": 4}
        mark = {
            "fail": "❌ fail",
            "missing": "⚠️ missing",
            "inconclusive": "❔ inconclusive",
            "new": "🆕 new",
            "pass": "✅ pass",
        }
        rows = [
            [
                c.model,
                c.metric,
                c.base,
                c.cur,
                "-" if c.change_pct is None else f"{c.change_pct:+.2f}%",
                "-" if c.threshold_pct is None else f"{c.threshold_pct:g}%",
                mark[c.verdict],
                c.detail,
            ]
            for c in sorted(self.checks, key=lambda c: (order[c.verdict], c.model, c.metric))
        ]
        header = ["Model", "Metric", "Baseline", "Current", "Change", "Threshold", "Verdict", "Detail"]
        lines += md_table(header, rows, ["left"] * 2 + ["right"] * 4 + ["left"] * 2)
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- loading


def _label(doc: dict[str, Any], name: str, with_conditions: bool) -> str:
    if not with_conditions:
        return name
    shape = "x".join(map(str, doc.get("input_shape") or [])) or "?"
    return f"{name} ({shape}, {doc.get('device') or '?'}, {doc.get('dtype') or '?'})"


def _num(v: Any) -> float | None:
    return None if isinstance(v, dict) else number(v)


def _from_result(doc: dict[str, Any], label: str) -> Entry:
    e = Entry(label, status=doc.get("status", "ok"), error=doc.get("error"))
    m = doc.get("metrics") or {}
    for g in gated("deterministic"):
        if (v := _num(m.get(g.key))) is not None:
            e.metrics[g.key] = v
    for g in gated("measured"):
        stats = m.get(g.key)
        if isinstance(stats, dict):
            e.samples[g.key] = [float(s) for s in stats.get("samples") or [] if _num(s) is not None]
            summary = {
                k2: v
                for k, k2 in (("median", "median"), ("mean", "mean"), ("std", "std"), ("repeats", "n"))
                if (v := _num(stats.get(k))) is not None
            }
        else:
            summary = {} if (v := _num(stats)) is None else {"median": v}
        if summary:
            e.summaries[g.key] = summary
        if isinstance(stats, dict) and stats.get("noisy"):
            e.noisy[g.key] = str(stats.get("noisy_reason") or "flagged noisy")
    share = ((doc.get("env") or {}).get("load") or {}).get("other_cpu_share")
    e.other_cpu_share = _num(share)
    return e


def _from_pytest_benchmark(bench: dict[str, Any]) -> Entry:
    """An entry of pytest-benchmark's JSON: its timings (seconds) as ``runtime_ms``, static metrics from
    ``extra_info``."""
    e = Entry(str(bench.get("fullname") or bench.get("name")))
    st = bench.get("stats") or {}
    data = st.get("data") or []
    iters = st.get("iterations") or 1
    if data:
        e.samples["runtime_ms"] = [1e3 * float(s) for s in data]
    summary = {
        k2: v if k == "rounds" else 1e3 * v
        for k, k2 in (("median", "median"), ("mean", "mean"), ("stddev", "std"), ("rounds", "n"))
        if (v := _num(st.get(k))) is not None
    }
    if iters != 1:
        summary["iterations"] = float(iters)
    if summary:
        e.summaries["runtime_ms"] = summary
    extra = bench.get("extra_info") or {}
    for g in gated("deterministic"):
        if (v := _num(extra.get(g.key))) is not None:
            e.metrics[g.key] = v
    return e


def load_for_gate(path: str | os.PathLike[str], *, strict: bool = False) -> dict[str, Entry]:
    """Read a sweep folder, a saved results JSON (one document or a list) or a pytest-benchmark JSON file.

    An unreadable results file is skipped with a warning naming it, or with ``strict`` refused (UsageError).
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"results not found: {p}")
    if p.is_file():
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise UsageError(f"{p} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("benchmarks"), list):
            entries = [_from_pytest_benchmark(b) for b in data["benchmarks"]]
            return {e.label: e for e in entries}
    from ..base.results import load_results

    docs = load_results([p], strict=strict)
    if not docs:
        raise UsageError(f"no effbench results (schema effbench.result/1) or pytest-benchmark data in {p}")
    from ..report.table import merge_by_model

    docs = merge_by_model(docs)
    names = display_names(ModelIdentity.of_result(d) for d in docs)
    keys = [result_key(d) for d in docs]
    out: dict[str, Entry] = {}
    for d, key in zip(docs, keys):
        label = _label(d, names[key], keys.count(key) > 1)
        out[label] = _from_result(d, label)
    return out


# --------------------------------------------------------------------------------------------- comparing


def _fmt(v: float, m: Metric) -> str:
    scale, unit = m.scale, m.unit
    if unit == "G" and abs(v) < 1e8:  # small models: MFLOPs read better than 0.012G
        scale, unit = 1e6, "M"
    x = v / scale
    return f"{x:.0f}{unit}" if scale == 1.0 else f"{x:.3f}{unit}" if x < 10 else f"{x:.2f}{unit}"


def _doubts(m: Metric, e: Entry, side: str, max_other_cpu: float) -> list[str]:
    """Why ``side``'s measurement of ``m`` cannot decide a verdict: its timing is noisy, its machine was loaded."""
    out = []
    if m.key in e.noisy:
        out.append(f"{side} is noisy ({e.noisy[m.key]})")
    if e.other_cpu_share is not None and e.other_cpu_share > max_other_cpu:
        out.append(
            f"{side} ran on a loaded machine (other processes used {e.other_cpu_share:.0%} of the CPUs, "
            f"more than {max_other_cpu:.0%})"
        )
    return out


def _measured_check(
    model: str, m: Metric, b: Entry, c: Entry, thr: float, alpha: float, max_other_cpu: float = MAX_OTHER_CPU
) -> Check | None:
    """A measured metric: fails when beyond the threshold and significantly larger, inconclusive when either side
    is noisy or was loaded (see the module docstring)."""
    bs, cs = b.samples.get(m.key, []), c.samples.get(m.key, [])
    bsum, csum = b.summaries.get(m.key, {}), c.summaries.get(m.key, {})
    if not bs and not bsum:
        return None
    limit = 1.0 + thr / 100.0
    chk = Check(model, m.label, "pass", threshold_pct=thr)
    if not cs and not csum:
        chk.verdict, chk.detail = "missing", f"no {m.label} in the current results"
        return chk
    if len(bs) >= MIN_SAMPLES and len(cs) >= MIN_SAMPLES:
        import numpy as np

        mb, mc = float(np.median(bs)), float(np.median(cs))
        if 1.0 / math.comb(len(bs) + len(cs), len(bs)) >= alpha:  # even total separation is not significant
            p, test = None, f"too few repeats (n={len(bs)}/{len(cs)}) for a test at alpha {alpha:g}"
        else:
            _, p = mann_whitney_u(cs, [x * limit for x in bs])
            lo, hi = bootstrap_ratio_ci(cs, bs)
            test = f"MWU p={p:.2g}, median ratio 95% CI [{lo:.3f}, {hi:.3f}], n={len(bs)}/{len(cs)}"
    else:
        sb, sc = bsum, csum
        mb = sb.get("median", sb.get("mean"))
        mc = sc.get("median", sc.get("mean"))
        if mb is None or mc is None:
            chk.verdict, chk.detail = "missing", f"{m.label} recorded on one side only"
            return chk
        if all(k in s for s in (sb, sc) for k in ("mean", "std", "n")) and sb["n"] >= 2 and sc["n"] >= 2:
            _, p = welch_t(
                sc["mean"], sc["std"], int(sc["n"]), sb["mean"] * limit, sb["std"] * limit, int(sb["n"])
            )
            test = f"Welch t p={p:.2g} (summaries only), n={int(sb['n'])}/{int(sc['n'])}"
            mb, mc = sb["mean"], sc["mean"]
        else:
            p, test = None, "no repeats recorded: significance cannot be tested"
    chk.base, chk.cur = f"{mb:.3f} {m.unit}".rstrip(), f"{mc:.3f} {m.unit}".rstrip()
    ratio = mc / mb if mb else math.inf
    chk.change_pct = 100.0 * (ratio - 1.0)
    if ratio <= limit:
        chk.detail = test
    elif p is None:
        chk.verdict, chk.detail = "missing", test
    elif p < alpha:
        chk.verdict, chk.detail = "fail", f"significant slowdown ({test})"
    else:
        chk.detail = f"slower but not significant ({test})"
    doubts = _doubts(m, b, "baseline", max_other_cpu) + _doubts(m, c, "current", max_other_cpu)
    if doubts and chk.verdict != "missing":
        chk.verdict = "inconclusive"
        chk.detail = f"{'; '.join(doubts)}; {chk.detail}"
    return chk


def gate(
    baseline: str | os.PathLike[str] | dict[str, Entry],
    current: str | os.PathLike[str] | dict[str, Entry],
    thresholds: dict[str, float] | None = None,
    alpha: float = 0.05,
    max_other_cpu: float = MAX_OTHER_CPU,
) -> GateResult:
    """Compare ``current`` against ``baseline`` (paths or :func:`load_for_gate` dicts); thresholds in percent.
    ``max_other_cpu``: the share of the CPUs other processes may have taken while a runtime was measured before
    its check is inconclusive."""
    defaults = default_thresholds()
    th = {**defaults, **(thresholds or {})}
    unknown = set(th) - set(defaults)
    if unknown:
        raise UsageError(f"unknown threshold(s) {', '.join(sorted(unknown))}; known: {', '.join(defaults)}")
    if any(v < 0 for v in th.values()):
        raise UsageError("thresholds must be >= 0 %")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 <= max_other_cpu <= 1:
        raise UsageError(f"max_other_cpu must be a share in [0, 1], got {max_other_cpu}")
    base = baseline if isinstance(baseline, dict) else load_for_gate(baseline)
    cur = current if isinstance(current, dict) else load_for_gate(current)
    checks: list[Check] = []
    for name, b in base.items():
        c = cur.get(name)
        if c is None:
            checks.append(Check(name, "(model)", "missing", detail="model absent from the current results"))
            continue
        if c.status != "ok":
            checks.append(Check(name, "(run)", "fail", detail=f"current run failed: {c.status}: {c.error}"))
            continue
        for k, bv in b.metrics.items():
            m = metric(k)
            if k not in c.metrics:
                checks.append(
                    Check(
                        name, m.label, "missing", _fmt(bv, m), detail="metric absent from the current results"
                    )
                )
                continue
            cv = c.metrics[k]
            change = 100.0 * (cv - bv) / bv if bv else (0.0 if cv == bv else math.inf)
            if m.better == "higher":  # a drop is the regression
                worse, word = cv < bv * (1.0 - th[m.gate] / 100.0), "decrease"
            else:
                worse, word = cv > bv * (1.0 + th[m.gate] / 100.0), "increase"
            verdict = "fail" if worse else "pass"
            detail = (
                f"{cv - bv:+,.0f} (deterministic: any {word} beyond the threshold fails)"
                if verdict == "fail"
                else ""
            )
            checks.append(Check(name, m.label, verdict, _fmt(bv, m), _fmt(cv, m), change, th[m.gate], detail))
        for m in gated("measured"):
            chk = _measured_check(name, m, b, c, th[m.gate], alpha, max_other_cpu)
            if chk is not None:
                checks.append(chk)
    for name in cur.keys() - base.keys():
        checks.append(Check(name, "(model)", "new", detail="not in the baseline"))
    return GateResult(checks, alpha, th)


def parse_percent(text: str) -> float:
    """``"5%"``, ``"5"`` or ``"0.5%"`` -> 5.0 / 5.0 / 0.5 (percent)."""
    t = text.strip().rstrip("%").strip()
    try:
        v = float(t)
    except ValueError:
        raise UsageError(f"bad threshold {text!r}: expected a percentage such as 5% or 0%") from None
    if v < 0 or math.isnan(v):
        raise UsageError(f"bad threshold {text!r}: must be >= 0%")
    return v

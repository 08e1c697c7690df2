"""NTIRE ESR scores and ranks under a year's rules (:mod:`.years`), with no per-year code: the score terms, their
weights and the tracks are the year's data.

Score years (2024-2026): ``Score_x = exp(exponent * x / x_baseline)`` for x in runtime, FLOPs and params, the final
score their weighted sum (lower is better; the baseline scores exp(2) = 7.3891 on every term); the main track ranks
by the final score, each sub-track by its term. Rank years (2022-2023): each track ranks entries by the sum of their
per-metric ranks. Entries below the year's validation PSNR threshold are scored but not ranked.

- :func:`compute_scores` / :func:`scores_markdown`: result documents -> a score table (``effbench score``);
- :func:`score_leaderboard`: the challenge leaderboard's rows, scored against the baseline row;
- :func:`projected_score`: one entry's score against a baseline, with an interval from a runtime-ratio interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..base.catalogue import Metric, lookup, metric
from ..base.errors import UsageError
from ..base.identity import ModelIdentity, display_names, result_key
from ..report.text import md_table
from .years import SCORED, ChallengeYear, ScoreRule, year_rules

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ScoreProjection",
    "competition_rank",
    "compute_scores",
    "projected_score",
    "score_leaderboard",
    "score_terms",
    "scores_markdown",
]

# what the challenge rules call each metric -> its catalogue key (memory: measured, else predicted)
RULE_METRICS = {
    "runtime": "runtime_ms",
    "flops": "flops",
    "params": "params",
    "activations": "activations",
    "memory": "peak_memory_bytes",
    "psnr": "psnr",
}


def score_terms(values: Mapping[str, float | None], base: Mapping[str, float], rule: ScoreRule) -> dict:
    """``{"score_runtime": ..., "score_flops": ..., "score_params": ...}``: each ``exp(exponent * x / x_base)``
    (None where ``values`` or ``base`` lacks x), then ``score_final``, their weighted sum (None unless every term
    is known)."""
    terms = {
        f"score_{k}": math.exp(rule.exponent * values[k] / base[k])
        if values.get(k) is not None and base.get(k)
        else None
        for k in rule.weights
    }
    known = None not in terms.values()
    terms["score_final"] = sum(w * terms[f"score_{k}"] for k, w in rule.weights.items()) if known else None
    return terms


@dataclass(frozen=True)
class ScoreProjection:
    """One entry's projected score: the terms, the final score and, from a runtime-ratio interval, its bounds."""

    terms: dict[str, float]
    score: float
    low: float | None = None
    high: float | None = None


def projected_score(
    entry: Mapping[str, float],
    baseline: Mapping[str, float],
    year: int,
    runtime_interval: tuple[float, float] | None = None,
) -> ScoreProjection:
    """The score of one entry under ``year``'s rules against ``baseline``.

    ``entry`` and ``baseline`` give ``runtime``, ``flops`` and ``params`` (the same units in both: only the ratios
    count). ``runtime_interval`` is a (low, high) interval of the entry/baseline runtime ratio (e.g. a confidence
    interval from paired rounds timed side by side); the score is monotone in it, so the bounds are the scores at
    its ends, the FLOPs and params terms held.
    """
    rules = year_rules(year)
    if rules.score.kind != "score":
        raise UsageError(
            f"NTIRE {year} ranks entries against each other ({', '.join(rules.score.tracks)} tracks); one entry "
            "has no score of its own"
        )
    for name, d in (("entry", entry), ("baseline", baseline)):
        missing = [k for k in SCORED if d.get(k) is None]
        if missing:
            raise UsageError(f"{name} lacks {', '.join(missing)}; a {year} score needs {', '.join(SCORED)}")
    for k in SCORED:
        if not baseline[k] > 0:
            raise UsageError(f"baseline {k} must be positive to normalise the score (got {baseline[k]!r})")
    terms = score_terms(entry, baseline, rules.score)
    score = terms.pop("score_final")
    if runtime_interval is None:
        return ScoreProjection(terms, score)
    lo, hi = sorted(runtime_interval)
    ends = [
        score_terms({**entry, "runtime": r * baseline["runtime"]}, baseline, rules.score)["score_final"]
        for r in (lo, hi)
    ]
    return ScoreProjection(terms, score, *ends)


def competition_rank(values: dict[str, float], better: str = "lower") -> dict[str, int]:
    """1 + the number of strictly better values (smaller, or larger with ``better="higher"``): ties share a rank
    ("1224" ranking)."""
    sign = -1.0 if better == "higher" else 1.0
    return {k: 1 + sum(1 for o in values.values() if sign * o < sign * v) for k, v in values.items()}


def _rank_column(rule: ScoreRule, track: str) -> str:
    # a score year's main track is *the* rank; every other track has its own column
    return "rank" if rule.kind == "score" and track == "main" else f"rank_{track}"


def _judge(
    entries: list[dict[str, Any]], rules: ChallengeYear, base: Mapping[str, float] | None
) -> list[dict]:
    """Per entry (rule-metric values under ``model``): eligibility, the score terms (score years, against
    ``base``) and every track's rank (sums of per-metric ranks for multi-metric tracks), in entry order."""
    rule = rules.score
    out: list[dict[str, Any]] = []
    for e in entries:
        ok, why = _eligibility(e.get("psnr"), rules)
        row: dict[str, Any] = {"eligible": ok, "note": why}
        if rule.kind == "score":
            row.update(score_terms(e, base or {}, rule))
        out.append(row)
    values = [{**e, **r} for e, r in zip(entries, out)]
    for track, keys in rule.tracks.items():
        ranked = [v for v in values if v["eligible"] is not False and all(v.get(k) is not None for k in keys)]
        summed = {v["model"]: 0 for v in ranked}
        for k in keys:
            for name, r in competition_rank({v["model"]: v[k] for v in ranked}).items():
                summed[name] += r
        rank = competition_rank(summed)
        for v, r in zip(values, out):
            if len(keys) > 1:
                r[f"rank_sum_{track}"] = summed.get(v["model"])
            r[_rank_column(rule, track)] = rank.get(v["model"])
    return out


def _eligibility(psnr: float | None, rules: ChallengeYear) -> tuple[bool | None, str]:
    p = rules.psnr
    if psnr is None:
        return None, "PSNR unknown"
    ok = psnr >= p.valid_threshold_db - 1e-9
    return ok, f"PSNR {psnr:.2f} {'>=' if ok else '<'} {p.valid_threshold_db:.2f} dB ({p.valid_set})"


def _find_baseline(
    entries: list[dict[str, Any]], rules: ChallengeYear, name: str | None
) -> dict[str, Any] | None:
    """The entry named ``name``, else the one carrying one of the year's baseline names (case and punctuation
    ignored: "RLFN" finds "rlfn")."""
    wanted = [name] if name else list(rules.baseline.names())
    for exact in (True, False):
        for w in wanted:
            hit = next(
                (e for e in entries if (e["model"] == w if exact else _norm(e["model"]) == _norm(w))), None
            )
            if hit is not None:
                return hit
    return None


def _rule_metric(name: str) -> Metric:
    return metric(RULE_METRICS[name])


def _counted(d: dict[str, Any], rules: ChallengeYear | None, key: str) -> tuple[float | None, str | None]:
    """``key`` (flops or activations) of a result under the year's convention where the result has it (a
    challenge cell's ``by_convention``), else (or with no ``rules``) as the result counted it; and the convention
    it is under."""
    m = d.get("metrics") or {}
    wanted = rules.counting.get(key) if rules is not None else None
    by_conv = m.get("by_convention") or {}
    if wanted in by_conv and by_conv[wanted].get(key) is not None:
        return float(by_conv[wanted][key]), wanted
    value = lookup(m, _rule_metric(key))[0]
    used = (m.get("counting") or {}).get(key) or d.get("convention")
    return value, (used if value is not None else None)


def _entries(docs: Sequence[dict[str, Any]], rules: ChallengeYear | None = None) -> list[dict[str, Any]]:
    from ..report.table import merge_by_model

    out = []
    merged = merge_by_model([d for d in docs if d.get("status", "ok") == "ok"])
    shown = display_names(ModelIdentity.of_result(d) for d in merged)
    for d in merged:
        m = d.get("metrics") or {}
        e = {
            "model": shown[result_key(d)],
            **{name: lookup(m, _rule_metric(name))[0] for name in RULE_METRICS},
        }
        e["flops"], e["flops_convention"] = _counted(d, rules, "flops")
        e["activations"], e["activations_convention"] = _counted(d, rules, "activations")
        out.append(e)
    names = [e["model"] for e in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UsageError(
            f"models measured under several conditions ({', '.join(sorted(dup))}); score one "
            "device/input size at a time"
        )
    return out


def compute_scores(docs: Sequence[dict[str, Any]], year: int, baseline: str | None = None) -> pd.DataFrame:
    """NTIRE ESR scores or track ranks of result documents under the rules of ``year``.

    ``baseline`` names the model (in ``docs``) whose runtime/FLOPs/params normalise a score year's terms; by
    default the year's baseline by any of its names. FLOPs and activations are taken under the year's counting
    convention where a result has them (challenge cells keep every convention's counts), else as the result
    counted them; ``frame.attrs["flops_conventions"]`` says which conventions the FLOPs are under (a sweep's are
    ``full``). Returns a pandas DataFrame, one row per model, sorted by the
    main track; ``eligible`` is False below the PSNR threshold, None when PSNR is unknown. Ineligible entries
    are scored but not ranked.
    """
    import pandas as pd

    rules = year_rules(year)
    entries = _entries(docs, rules)
    if not entries:
        raise UsageError("no successful results to score")
    base = None
    if rules.score.kind == "score":
        base = _find_baseline(entries, rules, baseline)
        if base is None:
            raise UsageError(
                f"baseline {baseline or rules.baseline.model!r} is not in the results (models: "
                f"{', '.join(e['model'] for e in entries)}); pass --baseline MODEL"
            )
        for key in SCORED:
            if not base[key]:
                raise UsageError(f"baseline {base['model']!r} has no {key}; cannot normalise scores")
    judged = _judge(entries, rules, base)
    rows = []
    for e, j in zip(entries, judged):
        row = {
            "model": e["model"],
            "runtime_ms": e["runtime"],
            "flops_g": _g(e["flops"]),
            "params_m": _m(e["params"]),
        }
        if rules.score.kind == "rank":
            memory = None if e["memory"] is None else e["memory"] / _rule_metric("memory").scale
            row.update(activations_m=_m(e["activations"]), memory_mib=memory)
        rows.append({**row, "psnr": e["psnr"], **j})
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        if col.startswith("rank"):
            frame[col] = frame[col].astype("Int64")
    main = _rank_column(rules.score, "main")
    used = {e["flops_convention"] or "unknown" for e in entries if e["flops"] is not None}
    frame.attrs.update(
        year=year, baseline=None if base is None else base["model"], flops_conventions=sorted(used)
    )
    order = [main, "score_final"] if rules.score.kind == "score" else [main]
    return frame.sort_values(order, na_position="last").reset_index(drop=True)


def score_leaderboard(rows: list[dict[str, Any]], year: int, baseline: str | None) -> list[dict[str, Any]]:
    """The challenge leaderboard's rows with ``eligible``, the score terms and ``score`` (score years) or the
    tracks' ranks (rank years) added, in the same order.

    ``rows`` carry ``name``, ``status``, ``params``, ``flops``, ``activations``, ``runtime_ms``, ``memory_mib`` and
    ``psnr_db``; ``baseline`` names the baseline row (else the row with ``baseline`` true, else one with the
    year's baseline names). Only ``ok`` rows are judged; without a baseline row a score year's terms stay None.
    """
    rules = year_rules(year)
    keys = {"runtime": "runtime_ms", "flops": "flops", "params": "params", "activations": "activations"}
    keys.update(memory="memory_mib", psnr="psnr_db")
    ok = [r for r in rows if r.get("status") == "ok"]
    entries = [{"model": r["name"], **{k: r.get(src) for k, src in keys.items()}} for r in ok]
    flagged = next((r["name"] for r in ok if r.get("baseline")), None)
    base = _find_baseline(entries, rules, baseline or flagged) if rules.score.kind == "score" else None
    judged = dict(zip((r["name"] for r in ok), _judge(entries, rules, base)))
    out = []
    for r in rows:
        j = dict(judged.get(r["name"], {}))
        j.pop("note", None)
        if "score_final" in j:
            j["score"] = j.pop("score_final")
        out.append({**r, **j})
    return out


def _norm(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _g(v: float | None) -> float | None:
    return None if v is None else v / 1e9


def _m(v: float | None) -> float | None:
    return None if v is None else v / 1e6


def scores_markdown(frame: pd.DataFrame) -> str:
    """The score table as markdown (4 decimals for scores, like the challenge README)."""
    import pandas as pd

    rules = year_rules(frame.attrs["year"])
    rule, p = rules.score, rules.psnr
    lines = [f"### NTIRE {rules.year} ESR ({rule.kind}-based)", ""]
    threshold = f"PSNR threshold {p.valid_threshold_db:.2f} dB on {p.valid_set}"
    if rule.kind == "score":
        w = rule.weights
        lines.append(
            f"Score_x = exp({rule.exponent:g} x / x_{frame.attrs['baseline']}); final = {w['runtime']} runtime + "
            f"{w['flops']} FLOPs + {w['params']} params (lower is better). {threshold}."
        )
    else:
        tracks = "; ".join(
            f"{t}: {' + '.join(_rule_metric(k).label for k in ms)}" for t, ms in rule.tracks.items()
        )
        lines.append(
            f"Tracks (rank = rank of the summed per-metric ranks): {tracks}. Ties share a rank. {threshold}."
        )
    year_conv = rules.counting["flops"]
    used = frame.attrs.get("flops_conventions") or []
    if used == [year_conv]:
        lines.append(f"FLOPs counted under the {rules.year} convention ({year_conv}).")
    elif used:
        lines.append(
            f"FLOPs counted under {', '.join(used)}, not the {rules.year} convention ({year_conv}): they differ "
            f"from the organisers' where the conventions do; `effbench challenge` counts under the year's."
        )
    if not (rule.verified and p.verified):
        lines.append(f"Not verified against the {rules.year} report: {rules.notes}")
    lines.append("")

    def cell(c: str, v: Any) -> str:
        if pd.isna(v):
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}" if c.startswith("score") else f"{v:.2f}" if c != "params_m" else f"{v:.3f}"
        return str(v)

    cols = list(frame.columns)
    align = ["left" if c in ("model", "note") else "right" for c in cols]
    lines += md_table(cols, ([cell(c, r[c]) for c in cols] for _, r in frame.iterrows()), align)
    return "\n".join(lines) + "\n"

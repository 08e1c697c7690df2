"""NTIRE Efficient Super-Resolution challenge scores, year by year.

2024-2026 (score-based; the challenge repositories Amazingren/NTIRE2024_ESR, NTIRE2025_ESR, NTIRE2026_ESR,
"How the Ranking Strategy Works")::

    Score_x     = exp(2 * x / x_baseline)        for x in runtime, FLOPs, params
    Score_Final = w_rt * Score_Runtime + w_fl * Score_FLOPs + w_pa * Score_Params

with weights 0.7/0.15/0.15 (2024, 2025) and 0.8/0.1/0.1 (2026); lower is better; the baseline scores exp(2) =
7.3891 on every term. Baselines: RLFN (2024), EFDN (2025), SPAN (2026). Entries below 26.90 dB on
DIV2K_LSDIR_valid (26.99 dB on the test set) are not ranked.

2022-2023 (rank-based; NTIRE 2022 ESR report, ofsoundof/NTIRE2022_ESR): the main track ranks by runtime; the
model-complexity track sums the ranks of params and FLOPs; the overall-performance track sums the ranks of
runtime, params, FLOPs, activations and memory. The 2022 threshold is 29.00 dB on DIV2K val (IMDN baseline).
2023 (RFDN baseline) kept the three tracks (2023 entrants report the "runtime", "parameters and FLOPs" and "overall"
tracks); its threshold is taken as 26.90 dB on DIV2K_LSDIR_valid. Not checked against the 2023 report: the 2023
README seen names only the RFDN baseline, and some entrants validated on DIV2K val (the 2022 rule: 29.00 dB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base.catalogue import Metric, lookup, metric
from ..base.errors import UsageError
from ..base.identity import ModelIdentity, display_names, result_key
from .text import md_table

# what the challenge rules call each metric -> its catalogue key (memory: measured, else predicted)
RULE_METRICS = {
    "runtime": "runtime_ms",
    "flops": "flops",
    "params": "params",
    "activations": "activations",
    "memory": "peak_memory_bytes",
    "psnr": "psnr",
}


@dataclass(frozen=True)
class Year:
    """The rules of one challenge year."""

    year: int
    kind: str  # "score" | "rank"
    baseline_model: str
    psnr_threshold: float
    psnr_dataset: str
    weights: tuple[float, float, float] | None = None  # runtime, FLOPs, params (score years)
    # the organisers' baseline numbers: runtime_ms, flops_g, params_m
    published: dict[str, float] | None = None
    tracks: dict[str, tuple[str, ...]] | None = None  # rank years: track -> summed metrics


_RANK_TRACKS = {
    "main": ("runtime",),
    "complexity": ("params", "flops"),
    "overall": ("runtime", "params", "flops", "activations", "memory"),
}


def _score_year(
    year: int,
    baseline: str,
    weights: tuple[float, float, float],
    runtime_ms: float,
    flops_g: float,
    params_m: float,
) -> Year:
    """A score-based year, with its baseline's published runtime, FLOPs and params; every one so far ranks entries
    at or above 26.90 dB on DIV2K_LSDIR_valid."""
    published = {"runtime_ms": runtime_ms, "flops_g": flops_g, "params_m": params_m}
    return Year(year, "score", baseline, 26.90, "DIV2K_LSDIR_valid", weights, published)


YEARS: dict[int, Year] = {
    2022: Year(2022, "rank", "IMDN", 29.00, "DIV2K val", tracks=_RANK_TRACKS),
    2023: Year(2023, "rank", "RFDN", 26.90, "DIV2K_LSDIR_valid", tracks=_RANK_TRACKS),
    2024: _score_year(2024, "RLFN", (0.7, 0.15, 0.15), 13.54, 19.70, 0.317),
    2025: _score_year(2025, "EFDN", (0.7, 0.15, 0.15), 16.69, 16.70, 0.276),
    2026: _score_year(2026, "SPAN", (0.8, 0.1, 0.1), 5.59, 9.83, 0.151),
}


def _rule_metric(name: str) -> Metric:
    return metric(RULE_METRICS[name])


def _entries(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    from .table import merge_by_model

    out = []
    merged = merge_by_model([d for d in docs if d.get("status", "ok") == "ok"])
    shown = display_names(ModelIdentity.of_result(d) for d in merged)
    for d in merged:
        m = d.get("metrics") or {}
        out.append(
            {
                "model": shown[result_key(d)],
                **{name: lookup(m, _rule_metric(name))[0] for name in RULE_METRICS},
            }
        )
    names = [e["model"] for e in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UsageError(
            f"models measured under several conditions ({', '.join(sorted(dup))}); score one "
            "device/input size at a time"
        )
    return out


def _eligibility(e: dict[str, Any], y: Year) -> tuple[bool | None, str]:
    if e["psnr"] is None:
        return None, "PSNR unknown"
    ok = e["psnr"] >= y.psnr_threshold - 1e-9
    return ok, f"PSNR {e['psnr']:.2f} {'>=' if ok else '<'} {y.psnr_threshold:.2f} dB ({y.psnr_dataset})"


def _row(e: dict[str, Any], y: Year, **extra: float | None) -> dict[str, Any]:
    """An entry's row in the challenge's units: model, runtime, FLOPs, params, ``extra``, PSNR, eligibility."""
    ok, why = _eligibility(e, y)
    return {
        "model": e["model"],
        "runtime_ms": e["runtime"],
        "flops_g": _g(e["flops"]),
        "params_m": _m(e["params"]),
        **extra,
        "psnr": e["psnr"],
        "eligible": ok,
        "note": why,
    }


def competition_rank(values: dict[str, float], better: str = "lower") -> dict[str, int]:
    """1 + the number of strictly better values (smaller, or larger with ``better="higher"``): ties share a rank
    ("1224" ranking)."""
    sign = -1.0 if better == "higher" else 1.0
    return {k: 1 + sum(1 for o in values.values() if sign * o < sign * v) for k, v in values.items()}


def compute_scores(docs: Sequence[dict[str, Any]], year: int, baseline: str | None = None):
    """NTIRE ESR scores or track ranks of result documents under the rules of ``year``.

    ``baseline`` names the model (in ``docs``) whose runtime/FLOPs/params normalise the 2024+ scores; by default
    the year's official baseline model by name. Returns a pandas DataFrame, one row per model, sorted by the
    main track; ``eligible`` is False below the PSNR threshold, None when PSNR is unknown. Ineligible entries
    are scored but not ranked.
    """
    import pandas as pd

    if year not in YEARS:
        raise UsageError(f"unknown NTIRE year {year}; choose from {', '.join(map(str, YEARS))}")
    y = YEARS[year]
    entries = _entries(docs)
    if not entries:
        raise UsageError("no successful results to score")
    rows = []
    if y.kind == "score":
        base_name = baseline or y.baseline_model
        base = next((e for e in entries if e["model"] == base_name), None)
        if base is None:  # zoo names are lower case with underscores: "RLFN" finds "rlfn"
            base = next((e for e in entries if _norm(e["model"]) == _norm(base_name)), None)
            base_name = base["model"] if base else base_name
        if base is None:
            raise UsageError(
                f"baseline {base_name!r} is not in the results (models: "
                f"{', '.join(e['model'] for e in entries)}); pass --baseline MODEL"
            )
        for key in ("runtime", "flops", "params"):
            if not base[key]:
                raise UsageError(f"baseline {base_name!r} has no {key}; cannot normalise scores")
        w_rt, w_fl, w_pa = y.weights or (0, 0, 0)
        for e in entries:
            row = _row(e, y)
            terms = {
                key: None if e[key] is None else math.exp(2.0 * e[key] / base[key])
                for key in ("runtime", "flops", "params")
            }
            row.update({f"score_{key}": v for key, v in terms.items()})
            row["score_final"] = (
                None
                if None in terms.values()
                else w_rt * terms["runtime"] + w_fl * terms["flops"] + w_pa * terms["params"]
            )
            rows.append(row)
        frame = pd.DataFrame(rows)
        ranked = frame[(frame["eligible"] != False) & frame["score_final"].notna()]  # noqa: E712
        rank = competition_rank(dict(zip(ranked["model"], ranked["score_final"])))
        frame["rank"] = frame["model"].map(rank).astype("Int64")
        frame.attrs.update(year=year, baseline=base_name, weights=y.weights)
        return frame.sort_values(["rank", "score_final"], na_position="last").reset_index(drop=True)

    # rank-based years
    for e in entries:
        memory = None if e["memory"] is None else e["memory"] / _rule_metric("memory").scale
        rows.append(_row(e, y, activations_m=_m(e["activations"]), memory_mib=memory))
    frame = pd.DataFrame(rows)
    eligible = [e for e, r in zip(entries, rows) if r["eligible"] is not False]
    for track, metrics in (y.tracks or {}).items():
        complete = [e for e in eligible if all(e[k] is not None for k in metrics)]
        summed = {e["model"]: 0.0 for e in complete}
        for k in metrics:
            better = _rule_metric(k).better or "lower"
            for name, r in competition_rank({e["model"]: e[k] for e in complete}, better).items():
                summed[name] += r
        track_rank = competition_rank(summed)
        if len(metrics) > 1:
            frame[f"rank_sum_{track}"] = frame["model"].map(summed)
        frame[f"rank_{track}"] = frame["model"].map(track_rank).astype("Int64")
    frame.attrs.update(year=year, tracks=y.tracks)
    return frame.sort_values("rank_main", na_position="last").reset_index(drop=True)


def _norm(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _g(v: float | None) -> float | None:
    return None if v is None else v / 1e9


def _m(v: float | None) -> float | None:
    return None if v is None else v / 1e6


def scores_markdown(frame) -> str:
    """The score table as markdown (4 decimals for scores, like the challenge README)."""
    import pandas as pd

    y = YEARS[frame.attrs["year"]]
    lines = [f"### NTIRE {y.year} ESR ({'score' if y.kind == 'score' else 'rank'}-based)", ""]
    if y.kind == "score":
        w = y.weights or (0, 0, 0)
        lines.append(
            f"Score_x = exp(2 x / x_{frame.attrs['baseline']}); final = {w[0]} runtime + {w[1]} FLOPs + "
            f"{w[2]} params (lower is better). PSNR threshold {y.psnr_threshold:.2f} dB on "
            f"{y.psnr_dataset}."
        )
    else:
        lines.append(
            "Tracks (rank = rank of the summed per-metric ranks): "
            + "; ".join(
                f"{t}: {' + '.join(_rule_metric(k).label for k in ms)}" for t, ms in (y.tracks or {}).items()
            )
            + ". Ties share a rank. PSNR "
            f"threshold {y.psnr_threshold:.2f} dB on {y.psnr_dataset}."
        )
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

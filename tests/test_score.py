"""NTIRE ESR scores: the published 2024 baseline arithmetic, a hand-computed 2026 case, PSNR eligibility, and the
rank-based tracks of 2022-2023."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from effbench.base.results import new_result, write_json_atomic
from effbench.challenge.scores import competition_rank, compute_scores, scores_markdown
from effbench.challenge.years import year_rules
from effbench.cli import main


def entry(
    name: str, runtime: float, flops_g: float, params_m: float, psnr: float | None = None, **extra
) -> dict:
    m = {"runtime_ms": {"median": runtime}, "flops": flops_g * 1e9, "params": params_m * 1e6, **extra}
    if psnr is not None:
        m["psnr"] = psnr
    return new_result(name, scale=4, input_shape=[1, 3, 256, 256], device="cuda", metrics=m)


def test_ntire2024_rlfn_against_itself_scores_exp2_on_every_term() -> None:
    # NTIRE2024_ESR README: Runtime_RLFN = 13.54 ms, FLOPs_RLFN = 19.67 G, Params_RLFN = 0.317 M ->
    # Score_Runtime = Score_FLOPs = Score_Params = Score_Final = 7.3891
    pub = year_rules(2024).baseline.published
    f = compute_scores([entry("rlfn", pub["runtime_ms"], pub["flops_g"], pub["params_m"], 26.96)], 2024)
    row = f.iloc[0]
    for col in ("score_runtime", "score_flops", "score_params", "score_final"):
        assert round(row[col], 4) == 7.3891
    assert row["eligible"] and row["rank"] == 1


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_score_year_gives_its_baseline_exp2(year: int) -> None:
    y = year_rules(year)
    pub = y.baseline.published
    f = compute_scores([entry(y.baseline.model, pub["runtime_ms"], pub["flops_g"], pub["params_m"])], year)
    assert f.iloc[0]["score_final"] == pytest.approx(math.exp(2))


def test_ntire2026_hand_computed_case() -> None:
    # SPAN baseline 7.74 ms / 9.83 G / 0.151 M (the final README). A model at 0.8x runtime, 0.8x FLOPs and 1.2x params:
    #   Score_Runtime = exp(2 * 0.8) = 4.9530, Score_FLOPs = 4.9530, Score_Params = exp(2 * 1.2) = 11.0232
    #   2026: 0.8 * 4.9530 + 0.1 * 4.9530 + 0.1 * 11.0232 = 5.5600   (2024/2025 weights would give 5.8636)
    docs = [
        entry("SPAN", 7.74, 9.83, 0.151, 26.94),
        entry("Mine", 0.8 * 7.74, 0.8 * 9.83, 1.2 * 0.151, 26.95),
    ]
    f = compute_scores(docs, 2026).set_index("model")
    assert f.loc["Mine", "score_runtime"] == pytest.approx(4.9530, abs=1e-4)
    assert f.loc["Mine", "score_params"] == pytest.approx(11.0232, abs=1e-4)
    assert f.loc["Mine", "score_final"] == pytest.approx(5.5600, abs=1e-4)
    assert f.loc["Mine", "rank"] == 1 and f.loc["SPAN", "rank"] == 2
    f25 = compute_scores(docs, 2025, baseline="SPAN").set_index("model")
    assert f25.loc["Mine", "score_final"] == pytest.approx(5.8636, abs=1e-4)


def test_below_psnr_threshold_is_flagged_and_not_ranked() -> None:
    docs = [
        entry("RLFN", 13.54, 19.70, 0.317, 26.96),
        entry("Fast", 6.0, 8.0, 0.1, 26.80),
        entry("Unknown", 12.0, 18.0, 0.3),
    ]
    f = compute_scores(docs, 2024).set_index("model")
    assert f.loc["Fast", "eligible"] == False  # noqa: E712  (26.80 < 26.90 dB on DIV2K_LSDIR_valid)
    assert f.loc["Fast", "score_final"] < f.loc["RLFN", "score_final"]  # scored, but...
    assert f.loc["Fast", "rank"] is __import__("pandas").NA  # ...not ranked
    assert f.loc["Unknown", "eligible"] is None and f.loc["Unknown", "rank"] == 1  # PSNR unknown: not flagged


def test_2022_rank_tracks_sum_ranks_with_ties() -> None:
    # runtime ranks A1 B2 C3; params A3 B1 C1 (tie); FLOPs A1 B2 C3 -> complexity sums A4 B3 C4 -> B1, A2, C2
    mem = {"peak_memory_measured_bytes": 100 * 2**20}
    docs = [
        entry("A", 10, 10, 0.3, 29.05, activations=50e6, **mem),
        entry("B", 20, 20, 0.2, 29.00, activations=40e6, **mem),
        entry("C", 30, 30, 0.2, 29.10, activations=30e6, **mem),
        entry("Low", 5, 5, 0.1, 28.50, activations=10e6, **mem),
    ]
    f = compute_scores(docs, 2022).set_index("model")
    assert list(f.loc[["A", "B", "C"], "rank_main"]) == [1, 2, 3]
    assert list(f.loc[["A", "B", "C"], "rank_sum_complexity"]) == [4, 3, 4]
    assert list(f.loc[["A", "B", "C"], "rank_complexity"]) == [2, 1, 2]
    # overall: runtime + params + FLOPs + activations + memory (all tie on memory: rank 1 each)
    assert list(f.loc[["A", "B", "C"], "rank_sum_overall"]) == [
        1 + 3 + 1 + 3 + 1,
        2 + 1 + 2 + 2 + 1,
        3 + 1 + 3 + 1 + 1,
    ]
    assert f.loc["Low", "eligible"] == False and f.loc["Low", "rank_main"] is __import__("pandas").NA  # noqa: E712


def test_competition_rank() -> None:
    assert competition_rank({"a": 1.0, "b": 2.0, "c": 2.0, "d": 3.0}) == {"a": 1, "b": 2, "c": 2, "d": 4}


def test_cli_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "r.json"
    write_json_atomic(f, [entry("RLFN", 13.54, 19.70, 0.317, 26.96), entry("X", 10, 15, 0.25, 26.95)])
    assert main(["score", str(f), "--year", "2024", "--csv", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "7.3891" in out and "0.7 runtime + 0.15 FLOPs + 0.15 params" in out
    assert (tmp_path / "s.csv").is_file()
    assert main(["score", str(f), "--year", "2026"]) == 2  # SPAN not in the results
    assert "SPAN" in capsys.readouterr().err
    assert main(["score", str(f), "--year", "2026", "--baseline", "RLFN"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["score", str(f), "--year", "2021"])
    assert exc.value.code == 2


def test_a_score_uses_the_years_flops_convention_or_says_which_it_used() -> None:
    # a challenge cell keeps every convention's counts: the year's (fvcore for 2025) is taken
    by_conv = {"full": {"flops": 20e9, "activations": 1}, "fvcore": {"flops": 16e9, "activations": 1}}
    base = entry("EFDN", 10.0, 20.0, 0.276, 27.0, by_convention=by_conv, counting={"flops": "fvcore"})
    f = compute_scores([base], 2025)
    assert f.iloc[0]["flops_g"] == pytest.approx(16.0)
    text = scores_markdown(f)
    assert "FLOPs counted under the 2025 convention (fvcore)." in text
    # a sweep's results are counted under `full` only: used as they are, and the table says so
    sweep = entry("EFDN", 10.0, 20.0, 0.276, 27.0)
    sweep["convention"] = "full"
    f = compute_scores([sweep], 2025)
    assert f.iloc[0]["flops_g"] == pytest.approx(20.0)
    assert "FLOPs counted under full, not the 2025 convention (fvcore)" in scores_markdown(f)

"""Each NTIRE ESR year's rules as data (effbench.challenge.years) and the scores read from them
(effbench.challenge.scores): the harness facts each year records, the 2023 fix, the published 2024 baseline against
the organisers' own recorded run, the score of one entry and its interval, and rank tracks on leaderboard rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from effbench.base.errors import UsageError
from effbench.base.results import new_result, write_json_atomic
from effbench.challenge.scores import projected_score, score_leaderboard, score_terms
from effbench.challenge.years import COUNTED, ScoreRule, challenge_years, year_rules
from effbench.cli import main
from effbench.counting.conventions import convention_names

EXP2 = math.exp(2)  # 7.3891: the baseline's own score on every term


def test_years_2022_to_2026_and_a_clear_error_for_any_other() -> None:
    assert challenge_years() == (2022, 2023, 2024, 2025, 2026)
    with pytest.raises(UsageError, match=r"2021.*valid years: 2022, 2023, 2024, 2025, 2026"):
        year_rules(2021)
    with pytest.raises(UsageError, match="valid years"):
        year_rules("twenty")  # type: ignore[arg-type]


@pytest.mark.parametrize("year", [2022, 2023, 2024, 2025, 2026])
def test_every_year_counts_each_metric_with_a_registered_convention_on_256x256(year: int) -> None:
    rules = year_rules(year)
    assert set(rules.counting) == set(COUNTED)
    assert set(rules.counting.values()) <= set(convention_names())
    assert rules.counting_input == (1, 3, 256, 256)


def test_the_hook_tool_counts_everything_until_2023_and_fvcore_counts_flops_from_2024() -> None:
    hook = dict.fromkeys(COUNTED, "ntire2022")
    assert dict(year_rules(2022).counting) == hook
    assert dict(year_rules(2023).counting) == hook  # the 2023 harness calls get_model_flops, not fvcore
    for year in (2024, 2025, 2026):
        assert dict(year_rules(year).counting) == {**hook, "flops": "fvcore"}


def test_2023_has_the_rfdn_baseline_of_its_harness_and_says_what_is_unverified() -> None:
    rules = year_rules(2023)
    assert (rules.baseline.model, rules.baseline.zoo, rules.baseline.data_range) == ("RFDN", "e_rfdn", 255.0)
    assert rules.memory.validation_set == "DIV2K_valid"  # select_dataset(mode="valid"): DIV2K 0801-0900
    assert not rules.score.verified and not rules.psnr.verified
    assert "Not verified" in rules.notes


@pytest.mark.parametrize(
    ("year", "model", "zoo", "weights"),
    [
        (2022, "IMDN", "imdn_ntire", None),
        (2024, "RLFN", "rlfn", (0.7, 0.15, 0.15)),
        (2025, "EFDN", None, (0.7, 0.15, 0.15)),
        (2026, "SPAN", None, (0.8, 0.1, 0.1)),
    ],
)
def test_baselines_and_weights(year: int, model: str, zoo: str | None, weights: tuple | None) -> None:
    rules = year_rules(year)
    assert (rules.baseline.model, rules.baseline.zoo) == (model, zoo)
    if weights is None:
        assert rules.score.kind == "rank"
        assert rules.score.tracks["overall"] == ("runtime", "params", "flops", "activations", "memory")
    else:
        assert rules.score.kind == "score"
        assert tuple(rules.score.weights[k] for k in ("runtime", "flops", "params")) == weights


@pytest.mark.parametrize("year", [2022, 2023, 2024, 2025, 2026])
def test_every_figure_and_year_names_its_source(year: int) -> None:
    rules = year_rules(year)
    assert rules.sources and all(s.startswith("https://") for s in rules.sources)
    assert set(rules.baseline.sources) == set(rules.baseline.published)
    assert all(rules.baseline.sources.values())
    assert all(p.largest_lr_source for p in rules.memory.parts)


@pytest.mark.parametrize("year", [2022, 2023, 2024])
def test_zoo_baselines_match_the_published_params_and_data_range(year: int) -> None:
    from effbench.zoo.registry import create_model, model_info

    b = year_rules(year).baseline
    params = sum(p.numel() for p in create_model(b.zoo, scale=4).parameters())
    assert round(params / 1e6, 3) == b.published["params_m"]
    assert model_info(b.zoo).data_range == b.data_range


def test_the_runtime_protocol_is_the_harness_loop() -> None:
    rt = year_rules(2024).runtime
    assert rt.per_image and rt.warmup_images == 0 and rt.cudnn_benchmark is False and rt.runs == 5
    assert rt.sets == ("DIV2K_LSDIR_valid", "DIV2K_LSDIR_test")
    assert "torch.cuda.Event" in rt.timer


def test_memory_is_predicted_at_the_largest_validation_image() -> None:
    assert year_rules(2022).memory.largest_lr == (510, 510)
    m = year_rules(2024).memory
    assert [p.name for p in m.parts] == [
        "LSDIR_valid",
        "DIV2K_valid",
    ]  # sorted(glob): 000001.png before 0801.png
    assert m.largest_lr == (510, 510) and m.largest_assumed  # inferred, and marked so
    assert "max_memory_allocated" in m.function


def test_psnr_rules() -> None:
    p = year_rules(2024).psnr
    assert (p.valid_threshold_db, p.valid_set, p.test_threshold_db) == (26.90, "DIV2K_LSDIR_valid", 26.99)
    assert (p.border, p.channels, p.quantised) == (4, "RGB", True)
    assert year_rules(2022).psnr.valid_threshold_db == 29.00


def test_2024_published_baseline_agrees_with_the_organisers_recorded_run(shared_dir: Path) -> None:
    f = shared_dir / "challenges" / "ntire2024" / "results.json"
    if not f.is_file():
        pytest.skip(f"{f} not found")
    run = json.loads(f.read_text())["00_RLFN_baseline"]
    pub = year_rules(2024).baseline.published
    assert round(run["flops"], 2) == pub["flops_g"] == 19.67  # fvcore on 1x3x256x256
    assert round(run["num_parameters"], 3) == pub["params_m"]
    assert round(run["activations"], 2) == pub["activations_m"] and run["num_conv"] == pub["convs"]
    assert round(run["valid_memory"], 2) == pub["memory_mib"]
    assert len(run["valid_runtime"]) == 200  # 100 LSDIR + 100 DIV2K validation images, one time each


def test_the_baseline_projects_exp2_under_2024_rules() -> None:
    b = year_rules(2024).baseline.published
    base = {"runtime": b["runtime_ms"], "flops": b["flops_g"], "params": b["params_m"]}
    p = projected_score(base, base, 2024, runtime_interval=(0.95, 1.05))
    assert p.score == pytest.approx(EXP2) and round(p.score, 4) == 7.3891
    assert all(v == pytest.approx(EXP2) for v in p.terms.values())
    assert p.low < p.score < p.high
    # only the runtime term moves: 0.7 * exp(2 * 0.95) + 0.3 * exp(2)
    assert p.low == pytest.approx(0.7 * math.exp(1.9) + 0.3 * EXP2)


def test_a_projected_score_is_the_weighted_exp_terms_of_the_ratios() -> None:
    base = {"runtime": 10.0, "flops": 20.0, "params": 0.3}
    entry = {"runtime": 5.0, "flops": 20.0, "params": 0.6}
    want24 = 0.7 * math.exp(1.0) + 0.15 * math.exp(2.0) + 0.15 * math.exp(4.0)
    want26 = 0.8 * math.exp(1.0) + 0.1 * math.exp(2.0) + 0.1 * math.exp(4.0)
    assert projected_score(entry, base, 2024).score == pytest.approx(want24)
    assert projected_score(entry, base, 2026).score == pytest.approx(want26)
    with pytest.raises(UsageError, match="ranks entries"):
        projected_score(entry, base, 2022)
    with pytest.raises(UsageError, match="lacks runtime"):
        projected_score({"flops": 1.0, "params": 1.0}, base, 2024)


def test_the_score_is_a_function_of_the_rule_data() -> None:
    rule = ScoreRule("score", {"runtime": 1.0, "flops": 0.0, "params": 0.0}, {}, 3.0, True, "a made-up year")
    terms = score_terms(
        {"runtime": 2.0, "flops": 1.0, "params": 1.0}, {"runtime": 4.0, "flops": 1, "params": 1}, rule
    )
    assert terms["score_final"] == pytest.approx(math.exp(1.5))
    with pytest.raises(ValueError, match="weighs exactly"):
        ScoreRule("score", {"runtime": 1.0}, {}, 2.0, True, "")


def _row(name: str, runtime: float | None, flops: float, params: float, psnr: float | None, **extra) -> dict:
    base = {"name": name, "status": "ok", "baseline": False, "runtime_ms": runtime, "flops": flops * 1e9}
    return {**base, "params": params * 1e6, "psnr_db": psnr, "activations": None, "memory_mib": None, **extra}


def test_leaderboard_rows_are_scored_against_the_baseline_row() -> None:
    rows = [
        _row("team00_rlfn", 13.54, 19.67, 0.317, 26.96, baseline=True),
        _row("fast", 6.77, 19.67, 0.317, 26.95),
        _row("low_psnr", 5.0, 10.0, 0.1, 26.50),
        {"name": "broken", "status": "needs_cuda", "error": "CUDA-only op", "baseline": False},
    ]
    out = {r["name"]: r for r in score_leaderboard(rows, 2024, "team00_rlfn")}
    assert out["team00_rlfn"]["score"] == pytest.approx(EXP2)
    assert out["fast"]["score"] == pytest.approx(0.7 * math.exp(1.0) + 0.3 * EXP2)
    assert (out["fast"]["rank"], out["team00_rlfn"]["rank"]) == (1, 2)
    assert out["low_psnr"]["eligible"] is False and out["low_psnr"]["rank"] is None
    assert out["broken"]["status"] == "needs_cuda" and "score" not in out["broken"]


def test_static_only_leaderboard_scores_flops_and_params_but_not_the_final() -> None:
    rows = [_row("base", None, 19.67, 0.317, None, baseline=True), _row("small", None, 9.835, 0.317, None)]
    out = {r["name"]: r for r in score_leaderboard(rows, 2024, None)}
    assert out["small"]["score_flops"] == pytest.approx(math.exp(1.0))
    assert (
        out["small"]["score_runtime"] is None
        and out["small"]["score"] is None
        and out["small"]["rank"] is None
    )
    assert out["small"]["rank_flops"] == 1 and out["base"]["rank_flops"] == 2


def test_rank_year_tracks_on_leaderboard_rows() -> None:
    # runtime A1 B2 C3; params A3 B1 C1; FLOPs A1 B2 C3 -> complexity sums A4 B3 C4 -> B1, A2, C2
    rows = [
        _row("A", 10, 10, 0.3, 29.05, activations=50e6, memory_mib=100),
        _row("B", 20, 20, 0.2, 29.00, activations=40e6, memory_mib=100),
        _row("C", 30, 30, 0.2, 29.10, activations=30e6, memory_mib=90),
    ]
    out = {r["name"]: r for r in score_leaderboard(rows, 2023, None)}
    assert [out[n]["rank_main"] for n in "ABC"] == [1, 2, 3]
    assert [out[n]["rank_sum_complexity"] for n in "ABC"] == [4, 3, 4]
    assert [out[n]["rank_complexity"] for n in "ABC"] == [2, 1, 2]
    # overall: runtime + params + FLOPs + activations + memory
    assert [out[n]["rank_sum_overall"] for n in "ABC"] == [
        1 + 3 + 1 + 3 + 2,
        2 + 1 + 2 + 2 + 2,
        3 + 1 + 3 + 1 + 1,
    ]
    assert "score" not in out["A"]


def test_cli_score_2023_uses_the_fixed_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def doc(name: str, runtime: float, psnr: float) -> dict:
        m = {"runtime_ms": {"median": runtime}, "flops": 27.1e9, "params": 0.433e6, "psnr": psnr}
        return new_result(name, scale=4, input_shape=[1, 3, 256, 256], device="cuda", metrics=m)

    f = tmp_path / "r.json"
    write_json_atomic(f, [doc("e_rfdn", 40.0, 29.04), doc("Mine", 30.0, 28.95)])
    assert main(["score", str(f), "--year", "2023"]) == 0
    out = capsys.readouterr().out
    assert "rank-based" in out and "29.00 dB on DIV2K_valid" in out and "Not verified" in out
    assert "PSNR 28.95 < 29.00 dB (DIV2K_valid)" in out

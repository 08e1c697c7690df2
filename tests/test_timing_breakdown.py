"""Where the time goes: the profiler's split of a forward by operator kind, and the conv throughput by shape."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effbench.studies import get_study
from effbench.studies.verdicts import analyse_study, time_split
from effbench.timing.breakdown import KINDS, OP_KINDS, conv_label, op_kind, op_time_breakdown


class _Mixed(nn.Module):
    """One op of every kind the studies meet: conv, activation, multiply, pooling, concat, pixel shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(16, 12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.leaky_relu(self.a(x), 0.1)
        g = torch.sigmoid(torch.nn.functional.adaptive_avg_pool2d(h, 1))
        return torch.nn.functional.pixel_shuffle(self.b(torch.cat([h, h * g], 1)), 2)


def test_every_kind_is_in_the_table_and_unknown_ops_are_other() -> None:
    assert set(OP_KINDS.values()) <= set(KINDS)
    assert op_kind("aten::mkldnn_convolution") == op_kind("aten::cudnn_convolution") == "conv"
    assert op_kind("aten::mul_") == "elementwise" and op_kind("aten::cat") == "concat"
    assert op_kind("aten::upsample_bilinear2d") == "resample" and op_kind("aten::std") == "reduction"
    assert op_kind("aten::something_new") == "other"


def test_the_kinds_add_up_to_the_profiled_time_and_conv_flops_are_exact() -> None:
    model = _Mixed().train()
    r = op_time_breakdown(model, (12, 10), forwards=2, threads=1)
    assert r["total_ms"] == pytest.approx(sum(r["kinds"].values()))
    assert r["total_ms"] == pytest.approx(sum(o["ms"] for o in r["ops"].values()))
    for kind in ("conv", "elementwise", "reduction", "resample", "concat"):
        assert r["kinds"][kind] > 0, kind
    assert {conv_label(c) for c in r["convs"]} == {"3->8 3x3", "16->12 1x1"}
    by_label = {conv_label(c): c for c in r["convs"]}
    assert by_label["3->8 3x3"]["gflops"] * 1e9 == pytest.approx(2 * 8 * 3 * 9 * 12 * 10)
    assert by_label["16->12 1x1"]["gflops"] * 1e9 == pytest.approx(2 * 12 * 16 * 12 * 10)
    assert all(c["calls"] == 1 for c in r["convs"]) and r["conv_gflop_per_s"] > 0
    assert model.training and next(model.parameters()).device.type == "cpu"  # the caller's model is untouched


def test_bad_forwards_is_refused() -> None:
    with pytest.raises(ValueError, match="forwards must be >= 1"):
        op_time_breakdown(_Mixed(), (8, 8), forwards=0)


def _ot(conv_ms: float, elementwise_ms: float, gflops: float, weight: list[int]) -> dict:
    kinds = dict.fromkeys(KINDS, 0.0) | {"conv": conv_ms, "elementwise": elementwise_ms}
    conv = {
        "input": [1, weight[1], 64, 64],
        "weight": weight,
        "calls": 30,
        "ms": conv_ms,
        "gflops": gflops,
        "gflop_per_s": gflops / (conv_ms / 1e3),
    }
    return {
        "total_ms": conv_ms + elementwise_ms,
        "kinds": kinds,
        "convs": [conv],
        "forwards": 5,
        "conv_gflop_per_s": gflops / (conv_ms / 1e3),
    }


def test_the_split_separates_memory_bound_work_from_the_convolutions() -> None:
    base, cca = _ot(100.0, 2.0, 5.0, [52, 52, 3, 3]), _ot(100.0, 14.0, 5.0, [52, 52, 3, 3])
    s = time_split(base, cca)
    assert s["nonconv_change_ms"] == pytest.approx(12.0) and s["conv_change_ms"] == pytest.approx(0.0)
    assert s["nonconv_share_base_pct"] == pytest.approx(100 * 2 / 102)
    assert time_split(None, cca) is None


def test_a_disagreement_is_explained_by_what_the_profiler_measured() -> None:
    """FMEN faster than the 52-wide baseline with the same FLOPs: the reason given is the conv width."""
    study = get_study("attention")

    def doc(ms: float, ot: dict) -> dict:
        return {
            "status": "ok",
            "metrics": {
                "params": 779_996,
                "flops": 10,
                "runtime_ms": {"median": ms, "cv": 0.01},
                "op_time": ot,
            },
        }

    docs = {
        "Baseline": doc(100.0, _ot(98.0, 2.0, 5.0, [52, 52, 3, 3])),
        "FMEN (HFAB)": doc(80.0, _ot(76.0, 4.0, 5.0, [64, 64, 3, 3])),
    }
    row = {r["variant"]: r for r in analyse_study(study, docs, "cpu", (64, 64))}["FMEN (HFAB)"]
    assert row["time_agrees"] is False
    assert "-20.00 ms in all" in row["verdict"] and "non-conv ops +2.00 ms" in row["verdict"]
    assert "convs -22.00 ms" in row["verdict"]
    assert "52->52 3x3" in row["verdict"] and "64->64 3x3" in row["verdict"]


def test_the_roofline_charges_each_op_its_slower_side() -> None:
    """A conv limited by arithmetic, an add limited by traffic: the bound is the sum of each op's max."""
    from effbench.timing.roofline import op_roofline

    peaks = {"peak_flops_per_s": 1e12, "peak_bytes_per_s": 1e11}
    rl = op_roofline([("aten::convolution", 2e9, 10_000_000), ("aten::add", 0.0, 30_000_000)], peaks)
    assert rl["compute_ms"] == pytest.approx(2.0) and rl["memory_ms"] == pytest.approx(0.3)
    assert rl["bound_ms"] == pytest.approx(2.3) and rl["kinds_ms"] == pytest.approx(
        {"conv": 2.0, "elementwise": 0.3}
    )


def test_op_records_count_conv_flops_and_every_byte_moved() -> None:
    from effbench.timing.roofline import op_records

    recs = op_records(_Mixed(), (1, 3, 12, 10))
    conv = [r for r in recs if r[0] == "aten::convolution"]
    assert [r[1] for r in conv] == [2 * 8 * 3 * 9 * 12 * 10, 2 * 12 * 16 * 12 * 10]
    x, w, b, y = 3 * 12 * 10, 8 * 3 * 9, 8, 8 * 12 * 10
    assert conv[0][2] == 4 * (x + w + b + y)
    assert {r[0] for r in recs} >= {"aten::cat", "aten::mul", "aten::sigmoid", "aten::pixel_shuffle"}


def test_on_the_papers_gpu_the_attention_blocks_cost_what_table2_says() -> None:
    """Table 2 on a GTX 1080 Ti: the roofline puts CCA within 2 points of the paper's +11.7%, ESA's +15.2% within a
    factor 1.5, both from memory-bound ops; on a CPU (a 50:1 FLOP-to-byte machine) the same model predicts a few %."""
    from effbench.studies.group_timing import roofline_estimates
    from effbench.studies.models_file import build_variants, write_models_file

    study = get_study("attention")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        specs = write_models_file(study, Path(tmp))
        cpu = {"peak_flops_per_s": 50e9, "peak_bytes_per_s": 12e9}
        est = roofline_estimates(study, build_variants(study, specs), (64, 64), cpu)
    base = est["Baseline"]["paper"]["bound_ms"]
    cca = 100 * (est["Baseline+CCA"]["paper"]["bound_ms"] / base - 1)
    esa = 100 * (est["Baseline+ESA"]["paper"]["bound_ms"] / base - 1)
    assert abs(cca - 11.7) < 2.0 and 15.2 / 1.5 < esa < 15.2 * 1.5
    assert est["Baseline+CCA"]["paper"]["compute_ms"] == pytest.approx(
        est["Baseline"]["paper"]["compute_ms"], rel=1e-3
    )
    cpu_cca = 100 * (est["Baseline+CCA"]["ours"]["bound_ms"] / est["Baseline"]["ours"]["bound_ms"] - 1)
    assert 0 < cpu_cca < cca / 2


def test_interleaved_rounds_cancel_drift_that_separate_runs_mistake_for_a_change() -> None:
    """The machine slows down 3x over the rounds; the variant is 10% slower in every round: paired says +10%."""
    from effbench.timing.paired import paired_change

    base = [10.0, 15.0, 20.0, 25.0, 30.0]
    var = [11.0, 16.5, 22.0, 27.5, 33.0]
    pc = paired_change({"a": base, "b": var}, "a", "b")
    assert pc["change_pct"] == pytest.approx(10.0) and pc["noise_pct"] == pytest.approx(0.0, abs=1e-9)
    assert pc["rounds"] == 5
    with pytest.raises(ValueError, match="no paired samples"):
        paired_change({"a": [], "b": []}, "a", "b")


def test_time_interleaved_takes_one_sample_of_each_model_per_round() -> None:
    from effbench.timing.paired import time_interleaved

    small, big = nn.Conv2d(3, 3, 1), nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(8)])
    r = time_interleaved({"small": small, "big": big}, (32, 32), rounds=4, warmup=1, threads=1)
    assert {k: len(v) for k, v in r["samples_ms"].items()} == {"small": 4, "big": 4}
    assert all(t > 0 for ts in r["samples_ms"].values() for t in ts)
    assert small.training  # copies were timed
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        time_interleaved({"small": small}, (8, 8), rounds=0)


def test_the_time_verdict_uses_the_paired_change_when_there_is_one() -> None:
    study = get_study("attention")
    docs = {
        "Baseline": {"status": "ok", "metrics": {"runtime_ms": {"median": 100.0, "cv": 0.2, "min": 90.0}}},
        "Baseline+CCA": {"status": "ok", "metrics": {"runtime_ms": {"median": 90.0, "cv": 0.2, "min": 85.0}}},
    }
    paired = {
        "Baseline": {
            "samples_ms": {
                "Baseline": [100.0, 150.0, 100.0, 120.0],
                "Baseline+CCA": [112.0, 168.0, 112.0, 134.4],
            }
        }
    }
    row = analyse_study(study, docs, "cpu", (64, 64), paired=paired)[1]
    assert row["time_basis"] == "paired" and row["time_paired_change_pct"] == pytest.approx(12.0)
    assert row["time_agrees"] is True and "interleaved rounds" in row["verdict"]
    assert row["time_change_pct"] == pytest.approx(-10.0)  # what two separate, drifting runs would have said


def test_the_median_of_interleaved_profiles_is_what_the_split_is_taken_from() -> None:
    from effbench.timing.breakdown import median_breakdown

    slow, fast, mid = (
        _ot(130.0, 3.0, 5.0, [52, 52, 3, 3]),
        _ot(90.0, 2.0, 5.0, [52, 52, 3, 3]),
        _ot(100.0, 2.5, 5.0, [52, 52, 3, 3]),
    )
    for p in (slow, fast, mid):
        p["ops"] = {"aten::mkldnn_convolution": {"kind": "conv", "ms": p["kinds"]["conv"], "calls": 30}}
    m = median_breakdown([slow, fast, mid])
    assert m["kinds"]["conv"] == 100.0 and m["kinds"]["elementwise"] == 2.5 and m["total_ms"] == 102.5
    assert m["convs"][0]["ms"] == 100.0 and m["conv_gflop_per_s"] == pytest.approx(50.0) and m["passes"] == 3
    with pytest.raises(ValueError, match="no breakdowns"):
        median_breakdown([])

    study = get_study("attention")
    docs = {
        n: {"status": "ok", "metrics": {"runtime_ms": {"median": 100.0, "cv": 0.01}}}
        for n in ("Baseline", "Baseline+CCA")
    }
    paired = {
        "Baseline": {
            "samples_ms": {"Baseline": [100.0] * 3, "Baseline+CCA": [103.0] * 3},
            "op_time": {"Baseline": m, "Baseline+CCA": _ot(100.0, 5.5, 5.0, [52, 52, 3, 3])},
        }
    }
    row = analyse_study(study, docs, "cpu", (64, 64), paired=paired)[1]
    assert row["time_split"]["source"] == "interleaved passes"
    assert row["time_split"]["nonconv_change_ms"] == pytest.approx(3.0)


def test_convs_of_one_shape_with_and_without_bias_are_one_row_with_both_counted() -> None:
    """The plain stack of the fusion study chains 1x1 convs, the last with a bias: all of them must count."""
    model = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.Conv2d(4, 4, 1, bias=False), nn.Conv2d(4, 4, 1))
    r = op_time_breakdown(model, (8, 8), forwards=2, threads=1, in_channels=4)
    assert len(r["convs"]) == 1 and r["convs"][0]["calls"] == 3
    assert r["convs"][0]["gflops"] * 1e9 == pytest.approx(3 * 2 * 4 * 4 * 8 * 8)

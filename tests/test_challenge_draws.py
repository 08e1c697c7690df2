"""The draws of the organisers' counting inputs for an entry whose counts depend on values
(effbench.challenge.counts): fvcore's torch.rand, the hook tool's uninitialised memory (zeros, a table of heap
addresses), a forward that draws random numbers itself; each metric's range is a prediction interval of one more
run of its tool (Student's t), reproducible from run to run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from effbench.challenge.counts import heap_pointers, prediction_interval, t_quantile, year_counts
from effbench.challenge.years import year_rules
from effbench.zoo.spec import ModelSpec

DATA = Path(__file__).parent / "data"


def _build(target: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return ModelSpec.from_dict({"target": str(DATA / target)}).build().eval()


def test_t_quantiles_are_the_tables() -> None:
    # two-sided 99.9% (0.9995) and 95% (0.975) points of Student's t, as printed in every table
    for df, t in ((1, 636.619), (2, 31.599), (3, 12.924), (4, 8.610), (9, 4.781), (30, 3.646)):
        assert t_quantile(0.9995, df) == pytest.approx(t, abs=1e-3)
    assert t_quantile(0.975, 5) == pytest.approx(2.5706, abs=1e-4)


def test_a_prediction_interval_widens_the_draws_and_is_them_when_they_agree() -> None:
    lo, hi = prediction_interval([10.0, 12.0, 14.0, 16.0], coverage=0.95)
    # mean 13, s = 2.582, t(0.975, 3) = 3.182, sqrt(1 + 1/4)
    assert (lo, hi) == pytest.approx((13 - 9.186, 13 + 9.186), abs=1e-3)
    assert prediction_interval([7, 7, 7]) == (7.0, 7.0)


def test_a_heap_table_is_pairs_of_16_byte_aligned_user_space_addresses() -> None:
    x = heap_pointers((1, 3, 8, 8), seed=3)
    assert x.dtype == torch.float32 and x.shape == (1, 3, 8, 8)
    assert torch.equal(x.view(torch.int32), heap_pointers((1, 3, 8, 8), seed=3).view(torch.int32))
    addresses = x.flatten().view(torch.int64).tolist()  # little-endian: low word, then high word
    assert len(set(addresses)) == 2 and addresses[0::2] == [addresses[0]] * 48
    for a in addresses:
        assert a % 16 == 0
        assert 0x5500 <= a >> 32 < 0x5700 or 0x7F00 <= a >> 32 < 0x8000
    highs = x.flatten()[1::2]
    assert bool(((highs > 0) & (highs < 1e-38)).all())  # the high words read as denormals
    assert {heap_pointers((4,), s).view(torch.int32)[0].item() for s in range(4)}.__len__() == 4


@pytest.mark.slow
def test_a_forward_that_samples_gets_a_range_holding_fvcore_runs_and_the_same_figures_every_time() -> None:
    from fvcore.nn import FlopCountAnalysis

    model = _build("challenge_draws/sample_net.py:SampleNet")
    counting = dict(year_rules(2025).counting)
    torch.manual_seed(7)
    counts, _ = year_counts(model, "SampleNet", counting, (256, 256), 4)
    after = torch.rand(4)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(4))  # the draws leave the caller's RNG as it was
    assert counts["input_dependent"] is True and counts["rng_in_forward"] is True
    rands = [n for n in counts["input_draws"] if n.startswith("rand")]
    assert len(rands) == 4  # fvcore's own draws, all made
    lo, hi = counts["ranges"]["flops"]
    dlo, dhi = counts["draw_ranges"]["flops"]
    assert lo < dlo < dhi < hi
    assert counts["activations"] == counts["draw_ranges"]["activations"][0]  # the hook tool's: no mixing conv
    for seed in range(8):  # fvcore as the harness calls it, the process's RNG wherever it happens to be
        torch.manual_seed(1000 + seed)
        analysis = FlopCountAnalysis(model, torch.rand(1, 3, 256, 256))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        assert lo <= analysis.total() <= hi
    again, _ = year_counts(model, "SampleNet", counting, (256, 256), 4)
    assert again["ranges"] == counts["ranges"] and again["flops"] == counts["flops"]


@pytest.mark.slow
def test_the_hook_tools_metrics_are_drawn_over_zeros_images_and_heap_tables() -> None:
    # RouteNet (tests/data/challenge_harness) picks an expert by its brightest tile: the hook tool's #Acts depend on
    # what its uninitialised input holds
    model = _build("challenge_harness/models/team02_route.py:RouteNet")
    counts, _ = year_counts(model, "RouteNet", dict(year_rules(2025).counting), (256, 256), 4)
    draws = counts["input_draws"]
    assert {"zeros", "rand0", "heap0"} <= set(draws)
    seen = [f["ntire2022"]["activations"] for f in draws.values() if "error" not in f]
    assert counts["draw_ranges"]["activations"] == [min(seen), max(seen)]
    fv = [f["fvcore"]["flops"] for n, f in draws.items() if n.startswith("rand")]
    assert counts["draw_ranges"]["flops"] == [min(fv), max(fv)]  # fvcore's: its torch.rand draws only
    assert counts["rng_in_forward"] is False


def test_a_draw_the_model_refuses_is_recorded_and_the_others_make_the_range() -> None:
    model = _build("challenge_draws/picky_net.py:PickyNet")
    counts, _ = year_counts(model, "PickyNet", dict(year_rules(2025).counting), (64, 64), 4)
    draws = counts["input_draws"]
    assert "input out of range" in draws["heap0"]["error"]  # a heap table's low words: far outside [0, 255]
    zeros, rand = draws["zeros"]["ntire2022"]["activations"], draws["rand0"]["ntire2022"]["activations"]
    assert zeros < rand  # the narrow branch on zeros, the wide one on torch.rand
    assert counts["input_dependent"] is True
    assert counts["draw_ranges"]["activations"] == [zeros, rand]
    assert counts["draw_ranges"]["flops"][0] == counts["draw_ranges"]["flops"][1]  # fvcore's: rand only
    assert counts["rng_in_forward"] is False

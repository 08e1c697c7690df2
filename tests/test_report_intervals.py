"""Runtimes with a 95 % interval: the table shows the interval as it is, ranks only where intervals separate and
marks the noisy ones."""

from __future__ import annotations

from effbench.base.results import new_result
from effbench.report.markdown import render_table_markdown
from effbench.report.table import build_table


def _doc(
    name: str, median: float, half: float | None, params: int = 1000, *, high: float | None = None, **flags
) -> dict:
    runtime = {"median": median, "repeats": 20, **flags}
    if half is not None:
        runtime.update(ci_low=median - half, ci_high=median + half if high is None else high)
    return new_result(
        name,
        name,
        scale=4,
        input_shape=[1, 3, 128, 128],
        device="cpu",
        dtype="fp32",
        protocol="steady",
        metrics={"params": params, "runtime_ms": runtime},
    )


def test_overlapping_intervals_get_no_mark_and_separated_ones_rank() -> None:
    # a and b overlap: neither is best; c is slower beyond both intervals, but second to no one
    table = build_table([_doc("a", 100.0, 1.0), _doc("b", 101.5, 1.5), _doc("c", 120.0, 1.0)])
    assert table.ranks()["runtime_ms"] == {}
    # a separates from all: best; b and c overlap: no second
    table = build_table([_doc("a", 90.0, 1.0), _doc("b", 101.5, 1.5), _doc("c", 102.0, 1.0)])
    assert table.ranks()["runtime_ms"] == {"a": 1}
    table = build_table([_doc("a", 90.0, 1.0), _doc("b", 101.5, 1.5), _doc("c", 120.0, 1.0)])
    assert table.ranks()["runtime_ms"] == {"a": 1, "b": 2}


def test_two_models_whose_intervals_overlap_get_no_marks() -> None:
    table = build_table([_doc("fmen", 100.0, 6.0), _doc("fmen_s", 104.0, 6.0)])
    assert table.ranks()["runtime_ms"] == {}
    md = render_table_markdown(table)
    assert "**" not in md.split("| fmen |")[1].split("\n")[0].split("|")[2]  # no bold runtime cell


def test_the_cell_shows_the_interval_as_it_is_and_the_legend_says_how_ranks_are_given() -> None:
    md = render_table_markdown(build_table([_doc("a", 100.0, 2.0), _doc("b", 150.0, 3.0)]))
    assert "only where intervals separate" in md and "±" not in md
    assert "**100.0ms [98.0, 102.0]**" in md and "*150.0ms [147.0, 153.0]*" in md


def test_an_asymmetric_interval_is_never_shown_as_a_symmetric_one() -> None:
    # the case: median 6500 ms, interval [2801, 6641]
    table = build_table([_doc("a", 6500.0, 6500.0 - 2801.0, high=6641.0), _doc("b", 100.0, 1.0)])
    text = table.cell_text(table.rows[0], next(c for c in table.columns if c.column == "runtime_ms"))
    assert text == "6500ms [2800, 6600]"


def test_noisy_runtimes_are_marked_and_counted_in_the_header() -> None:
    why = "the median's 95% CI is +-6.2% of it, wider than the 2% target, after 113 repeats"
    table = build_table([_doc("a", 100.0, 6.0, noisy=True, noisy_reason=why), _doc("b", 150.0, 3.0)])
    md = render_table_markdown(table)
    assert "100.0ms [94.0, 106.0] (noisy)" in md.split("| a |")[1].split("\n")[0]
    assert "(noisy)" not in md.split("| b |")[1].split("\n")[0]
    assert "- Noisy: 1 of 2 runtimes (marked *(noisy)*)" in md
    assert why in table.spread_text(table.rows[0], next(c for c in table.columns if c.column == "runtime_ms"))
    assert "Noisy" not in render_table_markdown(build_table([_doc("a", 100.0, 2.0), _doc("b", 150.0, 3.0)]))


def test_without_intervals_the_column_ranks_by_value_as_before() -> None:
    table = build_table([_doc("a", 100.0, None), _doc("b", 101.0, None), _doc("c", 120.0, None)])
    assert table.ranks()["runtime_ms"] == {"a": 1, "b": 2}
    assert "only where intervals separate" not in render_table_markdown(table)

"""Runtimes with a 95 % interval: the table shows the spread and ranks only where intervals separate."""

from __future__ import annotations

from effbench.base.results import new_result
from effbench.report.markdown import render_table_markdown
from effbench.report.table import build_table


def _doc(name: str, median: float, half: float | None, params: int = 1000) -> dict:
    runtime = {"median": median, "repeats": 20}
    if half is not None:
        runtime.update(ci_low=median - half, ci_high=median + half)
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


def test_overlapping_intervals_share_a_place_and_separated_ones_rank() -> None:
    # a and b overlap (a tie for best); c is slower beyond both intervals
    table = build_table([_doc("a", 100.0, 1.0), _doc("b", 101.5, 1.5), _doc("c", 120.0, 1.0)])
    assert table.ranks()["runtime_ms"] == {"a": 1, "b": 1, "c": 2}


def test_two_models_whose_intervals_overlap_get_no_marks() -> None:
    table = build_table([_doc("fmen", 100.0, 6.0), _doc("fmen_s", 104.0, 6.0)])
    assert table.ranks()["runtime_ms"] == {}
    md = render_table_markdown(table)
    assert "**" not in md.split("| fmen |")[1].split("\n")[0].split("|")[2]  # no bold runtime cell


def test_the_cell_shows_the_interval_and_the_legend_says_how_ranks_are_given() -> None:
    md = render_table_markdown(build_table([_doc("a", 100.0, 2.0), _doc("b", 150.0, 3.0)]))
    assert "±2.0%" in md and "±2.0%" in md.split("| a |")[1].split("\n")[0]
    assert "only where intervals separate" in md
    assert "**100.0ms ±2.0%**" in md and "*150.0ms ±2.0%*" in md


def test_without_intervals_the_column_ranks_by_value_as_before() -> None:
    table = build_table([_doc("a", 100.0, None), _doc("b", 101.0, None), _doc("c", 120.0, None)])
    assert table.ranks()["runtime_ms"] == {"a": 1, "b": 2}
    assert "only where intervals separate" not in render_table_markdown(table)

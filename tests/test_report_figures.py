"""Reports people would rather look at: spreads and honest ranks, MiB everywhere, the environment block, Pareto
fronts with labels that never overlap, timelines as small multiples, the breakdown, captions, the report written
beside the results."""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path

import pytest

from effbench.base.results import new_result, write_json_atomic
from effbench.cli import main
from effbench.commands.profile import _human
from effbench.report import render_report
from effbench.report.figures import pareto_front, place_labels
from effbench.report.markdown import render_table_markdown
from effbench.report.plotting import pyplot as _pyplot
from effbench.report.table import build_table, significant, spread_of


def _doc(name: str, runtime: dict | float, mib: float = 100.0, **env) -> dict:
    return new_result(
        name,
        scale=4,
        input_shape=[1, 3, 64, 64],
        device="cpu",
        dtype="fp32",
        protocol="steady",
        env=env,
        metrics={
            "params": 1e5,
            "flops": 1e9,
            "runtime_ms": runtime,
            "peak_memory_predicted_bytes": mib * 2**20,
        },
    )


def test_rounding_keeps_two_significant_digits_of_the_spread() -> None:
    assert significant(1134.25, 153.0, 2) == (1130.0, 0)
    assert significant(100.0, 2.0, 2) == (100.0, 1)
    assert significant(27.113, 0.27, 2) == (27.11, 2)  # never more digits than the column's own
    assert significant(5.0, 0.0, 2) == (5.0, 2)


def test_spread_from_samples_95ci_from_six_on_else_iqr() -> None:
    seven = {"median": 4.0, "repeats": 7, "samples": [1, 2, 3, 4, 5, 6, 7]}
    sp = spread_of(seven)
    assert (sp.low, sp.high, sp.kind, sp.n) == (1, 7, "95% CI", 7)  # n = 7: the order statistics x(1), x(7)
    few = spread_of({"median": 2.0, "samples": [1.0, 2.0, 3.0]})
    assert few.kind == "IQR" and (few.low, few.high) == (1.5, 2.5)
    assert spread_of({"median": 3.0, "ci_low": 2.0, "ci_high": 4.0}).kind == "95% CI"
    assert spread_of(3.0) is None


def test_runtime_cells_show_spread_and_n_and_overlaps_get_no_mark() -> None:
    a = {"median": 1134.25, "repeats": 7, "samples": [1061.8, 1100, 1120, 1134.25, 1150, 1200, 1367.3]}
    b = {"median": 1200.0, "repeats": 7, "samples": [1150, 1170, 1190, 1200, 1210, 1230, 1250]}
    c = {"median": 3000.0, "repeats": 7, "samples": [2900, 2950, 2980, 3000, 3010, 3050, 3100]}
    t = build_table([_doc("a", a), _doc("b", b), _doc("c", c)])
    md = render_table_markdown(t)
    assert "| a | 100K | 1.00G | 1130ms [1060, 1370] | 100.00MiB |" in md  # not 1134.25ms
    assert t.ranks()["runtime_ms"] == {}  # a and b overlap: no best, and so no second
    assert "median of n = 7 samples" in md and "MiB: 2^20 bytes" in md


def test_memory_is_mib_everywhere() -> None:
    md = render_table_markdown(build_table([_doc("a", 10.0, 52.07), _doc("b", 11.0, 60.0)]))
    assert "52.07MiB" in md and "52.07M |" not in md
    assert _human(54599680, "B") == "52.07 MiB"  # effbench profile's peak, as effbench memory prints it
    assert _human(341066) == "341.07 K"


def test_environment_block_names_what_the_cells_recorded() -> None:
    env = {
        "gpu_name": "NVIDIA H200",
        "gpu_driver": "560.35",
        "cuda_version": "12.4",
        "cudnn_version": 90100,
        "torch_version": "2.13.0",
        "torch_threads": 8,
        "cpu_count": 16,
        "gpu_clock_sm_mhz": 1980,
        "effbench_version": "0.1.0",
        "load": {"other_cpu_share": 0.03, "loadavg_1m": 0.5},
    }
    t = build_table([_doc("a", 10.0, **env), _doc("b", 11.0, **{**env, "gpu_clock_sm_mhz": 1755})])
    block = dict(t.meta["environment"])
    assert block["Device"] == "cpu (NVIDIA H200)" and block["Driver"] == "560.35"
    assert block["CUDA"] == "CUDA 12.4, cuDNN 90100"
    assert block["Threads / cores"] == "8 torch threads / 16 cores"
    assert block["Clocks"] == "SM 1755-1980 MHz"  # the cells disagree: the range
    assert block["Load"] == "other processes used 3% of the CPUs, load average 0.50"
    assert block["Models' git commit"] == "not recorded in these results"
    assert "  - torch: 2.13.0" in render_table_markdown(t)


def test_pareto_front() -> None:
    pts = [("a", 1.0, 5.0), ("b", 2.0, 3.0), ("c", 3.0, 4.0), ("d", 4.0, 1.0)]
    assert pareto_front(pts) == ["a", "b", "d"]  # c is beaten by b on both
    assert pareto_front(pts, higher_y=True) == ["a"]  # a is faster and higher than everyone


def test_labels_of_a_crowded_cluster_never_overlap() -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    # the CPU report's cluster: imdn / rfdn / e_rfdn and rlfn / fmen_s nearly on top of one another
    pts = [
        (1620, 227),
        (1620, 217),
        (1790, 201),
        (1010, 83),
        (1130, 52),
        (1907, 120),
        (1960, 68),
        (2530, 212),
    ]
    for x, y in pts:
        ax.scatter([x], [y], s=40)
    ax.set_xlim(0, 6000)
    ax.set_ylim(0, 600)
    names = ["imdn", "rfdn", "e_rfdn", "rlfn", "fmen_s", "imdn_ntire", "fmen", "latticenet"]
    texts = place_labels(ax, [(x, y, 3.2) for x, y in pts], names)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in texts]
    assert all(not a.overlaps(b) for a, b in combinations(boxes, 2))
    plt.close(fig)


def _rich_docs() -> list[dict]:
    docs = []
    for i, name in enumerate(["m1", "m2", "m3"]):
        d = _doc(name, {"median": 10.0 + i, "repeats": 6, "samples": [10.0 + i + 0.1 * k for k in range(6)]})
        d["metrics"]["psnr"] = 28.0 + 0.1 * i
        d["metrics"]["memory_timeline"] = [2**20 * k for k in (1, 3, 2, 5 + i, 1)]
        d["metrics"]["op_time"] = {"kinds": {"conv": 6.0, "elementwise": 3.0 + i}, "conv_gflop_per_s": 40.0}
        docs.append(d)
    return docs


def test_figures_pareto_small_multiples_breakdown_and_captions(tmp_path: Path) -> None:
    paths = render_report(_rich_docs(), tmp_path)
    names = {p.name for p in paths}
    for stem in ("fig1_runtime_memory", "pareto_psnr_runtime", "pareto_flops_runtime", "breakdown_op_time"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
    # no two figures of the same axes: memory against runtime is Fig. 1's alone (with its Pareto front)
    assert not any(n.startswith("pareto_memory_runtime") for n in names)
    assert "memory_timelines.png" in names and not any(n.startswith("memory_timeline_") for n in names)
    md = (tmp_path / "report.md").read_text()
    assert "*Figure 2: PSNR vs runtime.* PSNR against runtime. The red line joins the Pareto front" in md
    assert "On the front here: m1, m3." not in md and "On the front here: m1, m2, m3." in md
    svg = (tmp_path / "pareto_psnr_runtime.svg").read_text()
    assert svg.count('class="hover"><title>') == 3 and "m2\nRuntime: median 11 ms, 95% CI" in svg
    html = (tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//|<link|@import""", html)  # nothing from the network
    assert html.count('<figure class="fig"') == 5 and 'data-keys="model,params_k,flops_g,runtime_ms,' in html
    assert "Environment" in html and "Figure 4: Memory timelines." in html
    assert "Figure 1: Runtime vs peak memory" in html
    assert "joins the Pareto front" in html.split("Figure 1:")[1].split("Figure 2:")[0]
    doc = json.loads((tmp_path / "report.json").read_text())
    assert "fig1_runtime_memory.svg" in doc["figures"] and "memory_timelines.svg" in doc["figures"]


def test_report_is_written_beside_the_results_unless_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    for d in _rich_docs():
        write_json_atomic(sweep / "cells" / f"{d['model']}.json", d)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(sweep / "cells"), "--no-figures", "--format", "md"]) == 0
    assert (sweep / "report" / "report.md").is_file() and not (tmp_path / "report").exists()
    assert main(["report", str(sweep), "--no-figures", "--format", "md", "--out", "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / "report.md").is_file()

"""The metric catalogue: a metric added in one temporary file (its registration and the result type producing it)
shows up as a report column in markdown, HTML and CSV and is gated, with no other file touched; duplicate keys
and bad definitions are refused; every typed result's ``.metrics()`` speaks catalogue keys."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from sweep_models import Nearest

from effbench.base import catalogue
from effbench.base.catalogue import Metric, metric, register_metric
from effbench.base.results import new_result, write_json_atomic
from effbench.ci.gate import gate
from effbench.ci.selftest import load_from_docs
from effbench.cli import main
from effbench.report import render_report

TOY_PLUGIN = '''
"""A toy metric and the result type that produces it: the only file a new metric needs."""
from dataclasses import dataclass

from effbench.base.catalogue import Metric, register_metric

register_metric(Metric("toy_score", "Toy", "pts", "higher", "deterministic", fmt=".1f", column="toy_score",
                       gate="toy"))


@dataclass
class ToyResult:
    score: float

    def metrics(self):
        return {"toy_score": self.score}
'''


@pytest.fixture
def toy_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The toy metric's file, named in EFFBENCH_PLUGINS; the catalogue is restored after the test."""
    monkeypatch.setattr(catalogue, "_REGISTRY", dict(catalogue._REGISTRY))
    path = tmp_path / "toy_metric.py"
    path.write_text(textwrap.dedent(TOY_PLUGIN))
    monkeypatch.setenv("EFFBENCH_PLUGINS", str(path))
    metric("toy_score")  # the discovery call imports the plugin
    from effbench.base.plugins import load_plugins

    return next(m for m in load_plugins() if m.__file__ == str(path))


def docs_with(toy: object | None) -> list[dict]:
    docs = []
    for name, params, score in (("A", 300e3, 3.5), ("B", 400e3, 4.5), ("C", 500e3, 2.0)):
        metrics = {"params": params, "flops": params * 6e4, "runtime_ms": {"median": params / 1e4}}
        if toy is not None:
            metrics.update(toy.ToyResult(score).metrics())
        docs.append(
            new_result(
                name,
                scale=4,
                input_shape=[1, 3, 64, 64],
                device="cpu",
                dtype="fp32",
                protocol="steady",
                convention="full",
                metrics=metrics,
            )
        )
    return docs


def md_row(md: str, model: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {model}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_a_metric_in_one_temporary_file_is_a_report_column(toy_plugin, tmp_path: Path) -> None:
    assert [p.name for p in tmp_path.iterdir()] == ["toy_metric.py"]  # the one file touched
    render_report(docs_with(toy_plugin), tmp_path / "rep", figures=False, formats=("md", "html", "csv"))
    md = (tmp_path / "rep" / "report.md").read_text()
    header = md_row(md, "Method")
    assert header[-1] == "Toy"
    # higher is better: B best, A second; one decimal, the unit after the value
    assert [md_row(md, m)[-1] for m in "ABC"] == ["*3.5pts*", "**4.5pts**", "2.0pts"]
    assert "Toy pts" in md  # the units line
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<th>Toy</th>" in html and '<td class="best">4.5pts</td>' in html
    assert "toy_score" in (tmp_path / "rep" / "report.csv").read_text().splitlines()[0]


def test_the_cli_report_shows_the_plugin_column(toy_plugin, tmp_path: Path) -> None:
    for d in docs_with(toy_plugin):
        write_json_atomic(tmp_path / "cells" / f"{d['model']}.json", d)
    assert (
        main(
            [
                "report",
                str(tmp_path / "cells"),
                "--out",
                str(tmp_path / "rep"),
                "--format",
                "md,json",
                "--no-figures",
                "--baseline",
                "A",
            ]
        )
        == 0
    )
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md_row(md, "Method")[-1] == "Toy"
    assert "B vs A: " in md and "Toy +28.6%" in md  # deltas read the catalogue too
    ranks = json.loads((tmp_path / "rep" / "report.json").read_text())["tables"][0]["ranks"]
    assert ranks["toy_score"] == {"B": 1, "A": 2}


def test_a_column_no_result_carries_is_left_out(toy_plugin, tmp_path: Path) -> None:
    render_report(docs_with(None), tmp_path / "rep", figures=False, formats=("md",))
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Toy" not in md
    # the paper's Table 4 columns stay, dashes with footnotes when missing
    assert md_row(md, "Method")[1:] == [
        "Params",
        "FLOPs",
        "Runtime",
        "Memory",
        "Activations",
        "Convs",
        "PSNR",
    ]


def test_the_gate_checks_the_plugin_metric_in_its_direction(toy_plugin) -> None:
    base, cur = docs_with(toy_plugin), docs_with(toy_plugin)
    cur[0]["metrics"]["toy_score"] = 3.4  # A got worse (higher is better)
    cur[1]["metrics"]["toy_score"] = 5.0  # B got better: not a regression
    res = gate(load_from_docs(base), load_from_docs(cur))
    assert [(c.model, c.metric) for c in res.regressions] == [("A", "Toy")]
    assert res.exit_code == 1 and "toy" in res.thresholds


def test_a_duplicate_key_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "_REGISTRY", dict(catalogue._REGISTRY))
    with pytest.raises(ValueError, match="'params' is already registered"):
        register_metric(Metric("params", "Parameters", "K", "lower"))
    assert metric("params").title == "Params"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"kind": "noisy"}, "kind"),
        ({"better": "smaller"}, "better"),
        ({"key": "Toy Score"}, "key"),
        ({"scale": 0}, "scale"),
    ],
)
def test_a_bad_definition_is_refused(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        Metric(**{"key": "toy", "title": "Toy", **kwargs})


def test_an_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="params"):
        metric("no_such_metric")


def test_typed_results_speak_catalogue_keys() -> None:
    from effbench.counting import profile
    from effbench.memory import predict_memory
    from effbench.quality.evaluate import Evaluation
    from effbench.timing import WarmupRule, benchmark

    known = {m.key for m in catalogue.metrics()}
    bench = benchmark(
        Nearest(), (8, 8), repeats=2, warmup=WarmupRule(window=2, max_runs=4, max_seconds=0.5), threads=1
    )
    assert bench["metrics"] is not None and set(bench.metrics()) == set(
        bench["metrics"]
    )  # still the document
    parts = {
        "profile": profile(Nearest(), (8, 8), peak_memory=False).metrics(),
        "memory": predict_memory(Nearest(), (8, 8)).metrics(),
        "benchmark": bench.metrics(),
        "evaluation": Evaluation(model="m", psnr=30.0, ssim=0.9, images=[]).metrics(),
    }
    for name, got in parts.items():
        assert got and set(got) <= known, (name, set(got) - known)
    assert parts["evaluation"] == {"psnr": 30.0, "ssim": 0.9}
    assert parts["memory"]["peak_memory_predicted_bytes"] > 0 and "runtime_ms" in parts["benchmark"]

"""The report's runtime-by-backend section: a runtime column per backend/dtype, the equivalence PSNR beside it,
the rank under each variant (shared where intervals overlap) and the ranking change from eager fp32."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from effbench.base.results import new_result
from effbench.report import render_report
from effbench.report.backends import backend_comparisons, render_backends_markdown


def doc(model: str, runtime: float, backend: str = "eager", dtype: str = "fp32", spread: float = 0.01, **kw):
    samples = [runtime * (1 + spread * ((i % 5) - 2)) for i in range(20)]
    metrics = {
        "params": 1e5,
        "flops": 1e9,
        "runtime_ms": {"median": runtime, "repeats": 20, "samples": samples},
    }
    if backend != "eager" or dtype != "fp32":
        metrics["equivalence_psnr_db"] = kw.pop("psnr", 80.0)
    fields = dict(scale=4, input_shape=[1, 3, 64, 64], device="cpu", dtype=dtype, protocol="steady")
    return new_result(model, backend=backend, metrics=metrics, **{**fields, **kw})


def zoo_docs() -> list[dict]:
    return [
        doc("alpha", 10.0),
        doc("beta", 20.0),
        doc("gamma", 30.0),
        doc("alpha", 25.0, "onnxruntime", psnr=71.5),
        doc("beta", 12.0, "onnxruntime"),
        doc("gamma", 31.0, "onnxruntime"),
        doc("alpha", 5.0, "compile"),
        doc("beta", 15.0, "compile"),
        doc("gamma", 40.0, "compile"),
    ]


def test_each_backend_is_a_runtime_column_with_its_equivalence_psnr() -> None:
    (c,) = backend_comparisons(zoo_docs())
    cols = [col.title for col in c.table.columns]
    assert cols == [
        "eager fp32",
        "compile fp32",
        "PSNR vs eager fp32 (compile fp32)",
        "onnxruntime fp32",
        "PSNR vs eager fp32 (onnxruntime fp32)",
    ]
    alpha = next(r for r in c.table.rows if r.model == "alpha")
    assert alpha.values["runtime_ms_onnxruntime_fp32"] == 25.0
    assert alpha.values["equivalence_psnr_db_onnxruntime_fp32"] == 71.5
    assert alpha.values["runtime_ms_eager_fp32"] == 10.0


def test_the_ranking_change_from_eager_names_the_models_that_moved() -> None:
    (c,) = backend_comparisons(zoo_docs())
    assert c.changes() == [
        "rank eager fp32 -> compile fp32: no change",
        "rank eager fp32 -> onnxruntime fp32: alpha 1 -> 2, beta 2 -> 1",
    ]
    md = render_backends_markdown(c)
    assert "| alpha | 1 | 1 | 2 |" in md
    assert "- rank eager fp32 -> onnxruntime fp32: alpha 1 -> 2, beta 2 -> 1" in md


def test_overlapping_intervals_share_a_place_so_noise_is_no_change() -> None:
    docs = [
        doc("alpha", 10.0),
        doc("beta", 20.0),
        doc("alpha", 10.2, "onnxruntime", spread=0.05),
        doc("beta", 10.0, "onnxruntime", spread=0.05),
    ]
    (c,) = backend_comparisons(docs)
    assert c.rank_text(("onnxruntime", "fp32"), "alpha") == "1="
    assert c.rank_text(("onnxruntime", "fp32"), "beta") == "1="
    assert c.changes() == ["rank eager fp32 -> onnxruntime fp32: beta 2 -> 1="]


def test_a_model_that_failed_under_a_backend_has_no_rank_and_is_named() -> None:
    docs = zoo_docs()[:5]
    docs.append(
        new_result(
            "gamma",
            backend="onnxruntime",
            status="error",
            error="ONNX export failed at aten::foo in body.0 (Foo)",
            scale=4,
            input_shape=[1, 3, 64, 64],
            device="cpu",
            dtype="fp32",
            protocol="steady",
        )
    )
    (c,) = backend_comparisons([d for d in docs if d.get("backend") != "compile"])
    assert c.rank_text(("onnxruntime", "fp32"), "gamma") == "-"
    assert c.changes() == [
        "rank eager fp32 -> onnxruntime fp32: alpha 1 -> 2, beta 2 -> 1 "
        "(not measured under onnxruntime fp32: gamma)"
    ]
    md = render_backends_markdown(c)
    assert "error: ONNX export failed at aten::foo in body.0 (Foo)" in md


def test_int8_is_a_variant_of_its_backend() -> None:
    docs = [
        doc("alpha", 10.0),
        doc("alpha", 4.0, "onnxruntime", "int8", psnr=41.0),
        doc("alpha", 8.0, "onnxruntime"),
    ]
    (c,) = backend_comparisons(docs)
    assert c.variants == [("eager", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def test_the_report_has_the_section_in_markdown_html_and_json(tmp_path) -> None:
    render_report(zoo_docs(), tmp_path, figures=False)
    md = (tmp_path / "report.md").read_text()
    assert "## Runtime by backend" in md
    assert "rank eager fp32 -> onnxruntime fp32: alpha 1 -> 2, beta 2 -> 1" in md
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Runtime by backend</h2>" in page
    assert "rank eager fp32 -&gt; onnxruntime fp32: alpha 1 -&gt; 2, beta 2 -&gt; 1" in page
    assert (
        'class="plain" id="b0"' in page
    )  # not sorted by the address's #sort=, which names main-table columns
    rec = json.loads((tmp_path / "report.json").read_text())["backends"]
    assert rec[0]["variants"] == ["eager fp32", "compile fp32", "onnxruntime fp32"]
    beta = next(r for r in rec[0]["rows"] if r["method"] == "beta")
    assert beta["rank_onnxruntime_fp32"] == 1 and beta["rank_eager_fp32"] == 2


def test_eager_only_results_have_no_backend_section(tmp_path) -> None:
    render_report([d for d in zoo_docs() if d["backend"] == "eager"], tmp_path, figures=False)
    assert "Runtime by backend" not in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["backends"] == []


def test_tables_of_each_backend_have_their_own_names_figures_and_csv_rows(tmp_path) -> None:
    render_report(zoo_docs(), tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "### cpu · 1x3x64x64 · x4 · steady\n" in md
    assert "### cpu · 1x3x64x64 · x4 · steady · onnxruntime fp32\n" in md
    figs = {p.name for p in tmp_path.glob("pareto_flops_runtime*.png")}
    assert figs == {
        "pareto_flops_runtime_cpu_1x3x64x64_x4.png",
        "pareto_flops_runtime_cpu_1x3x64x64_x4_compile_fp32.png",
        "pareto_flops_runtime_cpu_1x3x64x64_x4_onnxruntime_fp32.png",
    }
    import pandas as pd

    frame = pd.read_csv(tmp_path / "report.csv")
    assert sorted(frame[frame.method == "beta"].backend) == ["compile", "eager", "onnxruntime"]


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_the_page_sorted_by_the_address_has_no_script_error_and_leaves_the_backend_tables(tmp_path) -> None:
    render_report(zoo_docs(), tmp_path, figures=False, formats=("html",))
    url = (tmp_path / "report.html").as_uri() + "#sort=-runtime_ms"
    cmd = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    cmd += [f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'data-ready="yes"' in dom
    assert re.search(r'<pre id="errors" hidden=""></pre>', dom), "a script error was recorded"
    backend_table = dom[dom.index('id="b0"') :]
    models = re.findall(r'<tr data-model="(\w+)"', backend_table)
    assert models == ["alpha", "beta", "gamma"]  # in the report's order, not resorted

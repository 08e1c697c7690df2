"""The report reproduces Table 4 of the FMEN paper from result documents: units, rounding, best/second marks,
dashes with footnotes for missing metrics, deltas against a baseline, figures, CSV/JSON/HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from effbench.base.results import new_result, write_json_atomic
from effbench.cli import main
from effbench.report import render_report
from effbench.report.table import build_table

# Table 4 (FMEN paper, NTIRE 2022 protocol on a 1080Ti): params, FLOPs, runtime ms, memory MiB, activations M,
# convs, DIV2K val PSNR.
TABLE4 = {
    "IMDN": (894e3, 58.53e9, 50.86, 471.76, 154.14, 43, 29.13),
    "E-RFDN": (433e3, 27.1e9, 41.97, 788.13, 112.03, 64, 29.04),
    "ByteESR": (317e3, 19.7e9, 27.11, 377.91, 80.05, 39, 29.00),
    "NEESR": (272e3, 16.86e9, 29.97, 575.99, 79.59, 59, 29.01),
    "Super": (326e3, 20.06e9, 32.09, 663.07, 93.82, 59, 29.00),
    "MegSR": (290e3, 17.7e9, 32.59, 640.63, 91.72, 64, 29.00),
    "rainbow": (276e3, 17.98e9, 34.1, 309.23, 92.8, 59, 29.01),
    "FMEN-S": (341e3, 22.28e9, 28.07, 204.6, 72.09, 34, 29.00),
}


def table4_docs(**overrides) -> list[dict]:
    docs = []
    for name, (p, f, rt, mem, act, convs, psnr) in TABLE4.items():
        samples = [rt * (1 + 0.01 * ((i % 5) - 2)) for i in range(20)]
        fields = {
            "scale": 4,
            "input_shape": [1, 3, 256, 256],
            "device": "cuda",
            "dtype": "fp32",
            "protocol": "ntire",
            "convention": "ntire2022",
            "env": {"gpu_name": "NVIDIA GeForce GTX 1080 Ti"},
            "metrics": {
                "params": p,
                "flops": f,
                "runtime_ms": {"median": rt, "repeats": 20, "samples": samples},
                "peak_memory_measured_bytes": mem * 2**20,
                "activations": act * 1e6,
                "convs": convs,
                "psnr": psnr,
            },
        }
        docs.append(new_result(name, **{**fields, **overrides}))
    return docs


def md_row(md: str, model: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {model}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_table4_markdown_units_rounding_and_marks(tmp_path: Path) -> None:
    paths = render_report(table4_docs(), tmp_path, figures=False, formats=("md",))
    md = (tmp_path / "report.md").read_text()
    assert paths == [tmp_path / "report.md"]
    # the paper's units and rounding
    assert md_row(md, "IMDN")[1:] == [
        "894K",
        "58.53G",
        "50.86ms [50.35, 51.37]",
        "471.76MiB",
        "154.14M",
        "43",
        "**29.13**",
    ]
    # FMEN-S: best memory, activations and convs, second-best runtime (the paper's claim for Table 4)
    fmen = md_row(md, "FMEN-S")
    assert fmen[4] == "**204.60MiB**" and fmen[5] == "**72.09M**" and fmen[6] == "**34**"
    assert fmen[3] == "*28.07ms [27.79, 28.35]*"
    # ByteESR is the fastest; NEESR has the fewest params and FLOPs; E-RFDN is second in PSNR
    assert md_row(md, "ByteESR")[3] == "**27.11ms [26.84, 27.38]**"
    assert md_row(md, "NEESR")[1:3] == ["**272K**", "**16.86G**"]
    assert md_row(md, "rainbow")[1] == "*276K*"
    assert md_row(md, "E-RFDN")[7] == "*29.04*"
    # header names device, protocol, input size and convention
    assert "NVIDIA GeForce GTX 1080 Ti" in md and "Protocol: ntire" in md and "1x3x256x256" in md
    assert "FLOPs convention: ntire2022" in md and "measured peak" in md


def test_ties_share_the_mark() -> None:
    t = build_table(table4_docs())
    ranks = t.ranks()
    # 29.00 dB for ByteESR, Super, MegSR and FMEN-S: none best (IMDN 29.13), none second (E-RFDN 29.04)
    assert ranks["psnr_db"] == {"IMDN": 1, "E-RFDN": 2}
    # NEESR and ... 59 convs tie: Super, NEESR, rainbow are all third; 34 best, 39 second
    assert ranks["convs"] == {"FMEN-S": 1, "ByteESR": 2}


def test_missing_metric_is_a_dash_with_footnote_never_zero(tmp_path: Path) -> None:
    docs = table4_docs()
    del docs[1]["metrics"]["psnr"]  # E-RFDN without a quality run
    del docs[0]["metrics"]["activations"]  # IMDN without activations
    render_report(docs, tmp_path, figures=False, formats=("md", "csv"))
    md = (tmp_path / "report.md").read_text()
    erfdn, imdn = md_row(md, "E-RFDN"), md_row(md, "IMDN")
    assert re.fullmatch(r"-\[\^\d+\]", erfdn[7]) and re.fullmatch(r"-\[\^\d+\]", imdn[5])
    n = erfdn[7].split("^")[1].rstrip("]")
    assert f"[^{n}]: PSNR not measured" in md
    assert "activations not counted" in md
    csv = (tmp_path / "report.csv").read_text().splitlines()
    row = next(r for r in csv if r.startswith("E-RFDN,"))
    header = csv[0].split(",")
    assert row.split(",")[header.index("psnr_db")] == ""  # NaN in CSV, not 0


def test_failed_cell_is_footnoted(tmp_path: Path) -> None:
    docs = table4_docs()
    docs.append(
        new_result(
            "BrokenNet",
            scale=4,
            input_shape=[1, 3, 256, 256],
            device="cuda",
            dtype="fp32",
            protocol="ntire",
            convention="ntire2022",
            status="oom",
            error="CUDA out of memory (tried to allocate 2.00 GiB)",
        )
    )
    render_report(docs, tmp_path, figures=False, formats=("md",))
    md = (tmp_path / "report.md").read_text()
    row = md_row(md, "BrokenNet")
    assert row[1:] == ["-"] * 7 and "[^" in row[0]
    assert "oom: CUDA out of memory" in md


def test_deltas_reproduce_the_papers_fmen_s_vs_e_rfdn(tmp_path: Path) -> None:
    # Sec. 4.6: "decrease 21.2% parameters, 17.8% FLOPs, 33.1% runtime, 74% peak memory and 35.7% activations"
    render_report(table4_docs(), tmp_path, baseline="E-RFDN", figures=False, formats=("md", "json"))
    md = (tmp_path / "report.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- FMEN-S vs E-RFDN:"))
    for part in (
        "params -21.2%",
        "FLOPs -17.8%",
        "runtime -33.1%",
        "memory -74.0%",
        "activations -35.7%",
        "PSNR -0.04 dB",
    ):
        assert part in line
    doc = json.loads((tmp_path / "report.json").read_text())
    d = next(r for r in doc["tables"][0]["deltas"] if r["method"] == "FMEN-S")
    assert d["runtime_ms_pct"] == pytest.approx(-33.12, abs=0.01)


def test_predicted_memory_is_used_and_said_when_nothing_is_measured(tmp_path: Path) -> None:
    docs = table4_docs(device="cpu")
    for d in docs:
        d["metrics"]["peak_memory_predicted_bytes"] = d["metrics"].pop("peak_memory_measured_bytes")
    docs[0]["metrics"]["peak_memory_measured_bytes"] = 500 * 2**20  # IMDN measured: mixed sources
    render_report(docs, tmp_path, figures=False, formats=("md",))
    md = (tmp_path / "report.md").read_text()
    assert "measured peak where available, otherwise predicted (marked)" in md
    assert md_row(md, "IMDN")[4] == "500.00MiB"
    assert "predicted (no measured peak in this result)" in md


def test_whole_zoo_report_figures_html_csv_json(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    docs = table4_docs()
    docs[7]["memory_timeline"] = [
        {"index": i, "op": "aten.convolution", "allocated_bytes": (i % 7 + 1) * 2**20} for i in range(40)
    ]
    docs.append(
        new_result(
            "FMEN-S",
            scale=4,
            device="cpu",
            psd={
                "blocks": [
                    {
                        "name": "hfab1",
                        "freqs": [0.05 * i for i in range(1, 10)],
                        "input_curve": [1.0 / i for i in range(1, 10)],
                        "output_curve": [2.0 / i for i in range(1, 10)],
                    }
                ]
            },
        )
    )
    paths = render_report(docs, tmp_path, baseline="E-RFDN")
    names = {p.name for p in paths}
    assert {
        "report.md",
        "report.csv",
        "report.json",
        "report.html",
        "fig1_runtime_memory.png",
        "fig1_runtime_memory.svg",
        "memory_timelines.png",
        "psd_FMEN-S.png",
    } <= names
    img = mpimg.imread(tmp_path / "fig1_runtime_memory.png")
    assert img.shape[0] >= 400 and img.shape[1] >= 600  # 7x5 in at 150 dpi, tight bbox
    assert mpimg.imread(tmp_path / "psd_FMEN-S.png").shape[0] >= 300
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 3 and 'class="best"' in html and "FMEN-S vs E-RFDN" in html
    assert 'src="http' not in html  # self-contained
    import pandas as pd

    frame = pd.read_csv(tmp_path / "report.csv")
    assert len(frame) == 8 and frame.loc[frame.method == "FMEN-S", "params_k"].item() == 341
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["tables"][0]["ranks"]["memory_mib"]["FMEN-S"] == 1


def test_one_table_per_measurement_condition(tmp_path: Path) -> None:
    docs = table4_docs() + table4_docs(input_shape=[1, 3, 128, 128])
    render_report(docs, tmp_path, figures=False, formats=("md",))
    md = (tmp_path / "report.md").read_text()
    assert md.count("| Method |") == 2 and "1x3x128x128" in md


def test_cli_report_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "sweep" / "cells"
    for d in table4_docs():
        write_json_atomic(folder / f"{d['model']}.json", d)
    out = tmp_path / "rep"
    assert (
        main(
            [
                "report",
                str(tmp_path / "sweep"),
                "--out",
                str(out),
                "--format",
                "md,csv",
                "--no-figures",
                "--baseline",
                "E-RFDN",
            ]
        )
        == 0
    )
    assert (out / "report.md").is_file() and not (out / "report.html").exists()
    assert "FMEN-S vs E-RFDN" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "sweep"), "--out", str(out), "--baseline", "NoSuchNet"]) == 2
    assert "NoSuchNet" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main(["report", str(tmp_path / "sweep"), "--out", str(out), "--format", "pdf"]) == 2

"""The GPU validation script's report layer, exercised on CPU so that the one GPU call cannot fail on a typo:
every table (including the CUDA-only columns) renders, the headline compares FMEN-S with E-RFDN, and the
outputs land in $OUT as the device tool returns them (a tarball of reports/gpu/<gpu-name>/ plus flat copies)."""

from __future__ import annotations

import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _results(gc) -> dict:
    steady = []
    ntire = []
    for name, ms, mib in (("fmen_s", 2.0, 60.0), ("e_rfdn", 3.0, 240.0)):
        steady.append(
            {
                "model": name,
                "size": [256, 256],
                "status": "ok",
                "median_ms": ms,
                "medians_ms": [ms] * 5,
                "run_to_run_cv": 0.004,
                "within_run_cv": 0.01,
                "first_call_ms": 40.0,
                "warmup_runs": 20,
                "peak_memory_bytes": int(mib * 2**20),
                "energy_j_per_image": 0.5,
                "bound_ms": 0.5,
                "measured_over_bound": ms / 0.5,
                "limited_by": "memory",
            }
        )
        ntire.append(
            {
                "model": name,
                "size": [256, 256],
                "status": "ok",
                "mean_ms": ms * 2,
                "first_image_ms": 90.0,
                "median_ms": ms,
                "images": 10,
                "memory_mib": mib,
                "dataset": "synthetic: 10 images",
            }
        )
    return {
        "device": "cuda",
        "dry_run": False,
        "parts": {"steady": {"status": "ok", "seconds": 1.0}},
        "steady": steady,
        "ntire": ntire,
        "memory": [
            {
                "model": "fmen_s",
                "size": [256, 256],
                "status": "ok",
                "predicted_bytes": 70 * 2**20,
                "measured_bytes": 72 * 2**20,
                "error_pct": 2.78,
            }
        ],
        "env": {"gpu_name": "NVIDIA Test GPU 80GB", "torch_version": "2.x"},
        "peaks": {
            "peak_flops_per_s": 4e14,
            "matmul_flops_per_s": 5e13,
            "conv_flops_per_s": 4e14,
            "peak_bytes_per_s": 2.5e12,
            "calibration": "test",
            "tf32": False,
        },
        "overhead": {
            "work_ms": 5.0,
            "median_ms": 5.003,
            "overhead_median_us": 3.0,
            "overhead_pct": 0.06,
            "overhead_max_us": 9.0,
        },
        "started": "now",
        "_t0": 0.0,
    }


def test_headline_compares_fmen_s_with_e_rfdn_like_the_paper(gpu_check):
    R = _results(gpu_check)
    gpu_check.part_headline(R)
    steady = next(r for r in R["headline"]["rows"] if r["protocol"] == "steady")
    ntire = next(r for r in R["headline"]["rows"] if r["protocol"] == "ntire")
    assert steady["runtime_change"] == pytest.approx(2.0 / 3.0 - 1)
    assert steady["memory_change"] == pytest.approx(-0.75) and ntire["memory_change"] == pytest.approx(-0.75)
    assert R["headline"]["paper"]["runtime_change"] == pytest.approx(28.07 / 41.97 - 1, abs=1e-3)
    assert R["headline"]["paper"]["memory_change"] == pytest.approx(204.6 / 788.13 - 1, abs=5e-3)


def test_outputs_are_a_tarball_of_reports_gpu_name_plus_flat_copies(gpu_check, tmp_path: Path):
    R = _results(gpu_check)
    gpu_check.part_headline(R)
    gpu_check.write_outputs(R, tmp_path / "work", tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["gpu_report.md", "gpu_report.tar.gz", "gpu_results.json"]
    with tarfile.open(out / "gpu_report.tar.gz") as tar:
        names = set(tar.getnames())
    base = "reports/gpu/nvidia-test-gpu-80gb"
    assert {
        f"{base}/report.md",
        f"{base}/results.json",
        f"{base}/runtime.png",
        f"{base}/memory.png",
        f"{base}/cv.png",
    } <= names
    md = (out / "gpu_report.md").read_text()
    assert "| fmen_s | 256x256 | no | 2.000 | 0.40 |" in md  # no CUDA graphs; median and run-to-run CV (%)
    assert "-33.1 %" in md and "+2.78" not in md and "2.78" in md
    assert json.loads((out / "gpu_results.json").read_text())["env"]["gpu_name"] == "NVIDIA Test GPU 80GB"

"""int8 under ONNX Runtime: static post-training quantisation on a calibration set (Set5/Set14 LR, or synthetic
images), timed like any backend with its equivalence PSNR against eager fp32; a collapsed quantisation is
``bad_output``, and int8 on a backend without a quantisation is a usage error."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effbench.backends import dtype_names, model_dtype, prepare
from effbench.backends.ort import export_onnx
from effbench.backends.quantise import CALIBRATION_ENV, calibration_batches, calibration_images
from effbench.base.errors import UsageError
from effbench.cli import main
from effbench.timing import benchmark
from effbench.zoo.spec import resolve_model

pytestmark = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(p) for p in ("onnx", "onnxruntime")),
    reason="onnx/onnxruntime not installed (pip install 'effbench[onnx]')",
)


def _images(folder: Path, n: int = 4, value: int | None = None) -> Path:
    """``n`` synthetic LR images (random, or all ``value``) of assorted sizes in ``folder``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shape = (20 + 7 * i, 40 - 5 * i, 3)
        img = (
            rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
        )
        Image.fromarray(img).save(folder / f"im{i}.png")
    return folder


def test_int8_is_a_dtype_only_onnxruntime_offers() -> None:
    assert dtype_names() == ["fp32", "fp16", "bf16", "int8"]
    assert model_dtype("onnxruntime", "int8") == torch.float32  # the backend quantises the fp32 model
    with pytest.raises(
        UsageError, match="int8 is a post-training quantisation that backend eager does not offer"
    ):
        model_dtype("eager", "int8")
    with pytest.raises(UsageError, match="use --backend onnxruntime"):
        benchmark("fmen_s", (16, 16), dtype="int8", backend="compile", repeats=2)
    with pytest.raises(UsageError, match="unknown dtype 'int4'"):
        model_dtype("onnxruntime", "int4")


def test_bench_command_refuses_int8_on_eager(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "fmen_s", "--size", "16x16", "--dtype", "int8", "--repeats", "2"]) != 0
    assert "backend eager does not offer" in capsys.readouterr().err


def test_int8_needs_calibration_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CALIBRATION_ENV, raising=False)
    with pytest.raises(UsageError, match=f"int8 needs calibration images: set {CALIBRATION_ENV}"):
        benchmark("fmen_s", (16, 16), dtype="int8", backend="onnxruntime", repeats=2)


def test_calibration_images_are_cropped_or_mirrored_to_the_input_size(tmp_path: Path) -> None:
    images = calibration_images([_images(tmp_path / "lr")])
    batches = calibration_batches(images, (1, 3, 24, 24), data_range=255.0)
    assert [b.shape for b in batches] == [(1, 3, 24, 24)] * 4
    assert all(b.dtype == np.float32 and 0 <= b.min() and b.max() <= 255 for b in batches)
    # the 20x40 image: rows mirrored out to 24, the centre 24 of its 40 columns
    np.testing.assert_array_equal(batches[0][0, :, 2:22, :], images[0][:, 8:32].transpose(2, 0, 1))


def test_an_int8_zoo_model_runs_with_its_equivalence_psnr(tmp_path: Path) -> None:
    lr = _images(tmp_path / "lr")
    res = benchmark(
        "fmen_s", (24, 24), dtype="int8", backend="onnxruntime", repeats=3, threads=1, calibration=[lr]
    )
    assert res["dtype"] == "int8" and res["backend"] == "onnxruntime"
    m = res["metrics"]
    assert m["runtime_ms"]["median"] > 0
    assert 30.0 <= m["equivalence_psnr_db"] < math.inf  # changed by quantisation, not collapsed
    assert m["equivalence_max_abs_diff"] > 0
    assert "per-channel" in res["settings"]["backend_details"]["quantisation"]
    fp32 = resolve_model("fmen_s").model.eval()
    fp32_bytes = len(export_onnx(fp32, torch.rand(1, 3, 24, 24)))
    assert m["artifact_bytes"] < 0.5 * fp32_bytes  # int8 weights: about a quarter of fp32's


def test_a_collapsed_int8_model_is_bad_output(tmp_path: Path) -> None:
    # calibrated on black images only, every activation range is [0, 0]: any other input saturates
    black = _images(tmp_path / "black", value=0)
    with pytest.raises(Exception) as info:
        benchmark(
            "fmen_s", (24, 24), dtype="int8", backend="onnxruntime", repeats=2, threads=1, calibration=[black]
        )
    assert getattr(info.value, "status", None) == "bad_output"
    assert "fmen_s under onnxruntime int8" in str(info.value)


@pytest.mark.shared
def test_int8_calibrated_on_set5_and_set14_lr(data_dir: Path) -> None:
    folders = [data_dir / "Set5" / "LR_bicubic" / "X4", data_dir / "Set14" / "LR_bicubic" / "X4"]
    model = resolve_model("rlfn").model.eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    prepared = prepare(model, x, "onnxruntime", "int8", calibration=folders)
    assert prepared.details["calibration_images"] == 19  # 5 + 14
    assert prepared.details["calibration_from"] == os.pathsep.join(map(str, folders))
    with torch.no_grad():
        ref, out = model(x), prepared.fn(x)
    psnr = 10 * math.log10(1.0 / float((out - ref).pow(2).mean()))
    assert psnr > 30.0


@pytest.mark.slow
def test_run_sweeps_int8_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CALIBRATION_ENV, str(_images(tmp_path / "lr")))
    out = tmp_path / "sweep"
    argv = ["run", "--models", "fmen_s", "--sizes", "16x16", "--devices", "cpu", "--backends", "onnxruntime"]
    argv += ["--dtypes", "fp32", "int8", "--repeats", "2", "--no-static", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    docs = {d["dtype"]: d for d in map(json.loads, (p.read_text() for p in (out / "cells").glob("*.json")))}
    assert docs["int8"]["status"] == "ok" and docs["fp32"]["status"] == "ok"
    assert docs["int8"]["metrics"]["equivalence_psnr_db"] < docs["fp32"]["metrics"]["equivalence_psnr_db"]

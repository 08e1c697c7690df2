"""The int8 calibration set is an argument, not hidden state: ``--calibration FOLDER[,FOLDER]`` on ``effbench run``
and ``effbench bench`` (``EFFBENCH_CALIBRATION`` read by the commands only, as the flag's default), recorded in the
sweep cell, its result's settings and its id, so that ``--resume`` never mixes two calibrations."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effbench.backends.quantise import CALIBRATION_ENV
from effbench.base.errors import UsageError
from effbench.challenge.cells import EntryCell
from effbench.cli import main
from effbench.commands._options import add_calibration, calibration_from_args
from effbench.sweep import Cell, SweepConfig, load_config
from effbench.sweep.worker import options_of
from effbench.timing import benchmark

needs_onnx = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(p) for p in ("onnx", "onnxruntime")),
    reason="onnx/onnxruntime not installed (pip install 'effbench[onnx]')",
)


def _images(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


def _int8_cells(calibration: list[str]) -> dict[str, Cell]:
    cfg = SweepConfig(
        models=["fmen_s"],
        sizes=[(16, 16)],
        devices=["cpu"],
        backends=["onnxruntime"],
        dtypes=["fp32", "int8"],
        calibration=calibration,
    )
    return {c.dtype: c for c in cfg.cells()}


def test_an_int8_cell_carries_its_calibration_in_its_settings_and_its_id() -> None:
    plain = _int8_cells([])
    a = _int8_cells(["calib/a"])
    b = _int8_cells(["calib/b", "calib/c"])
    assert a["int8"].calibration == ("calib/a",) and b["int8"].calibration == ("calib/b", "calib/c")
    assert len({plain["int8"].cell_id, a["int8"].cell_id, b["int8"].cell_id}) == 3
    assert a["int8"].to_dict()["calibration"] == ["calib/a"]
    assert Cell.from_dict(json.loads(json.dumps(b["int8"].to_dict()))) == b["int8"]
    assert options_of(b["int8"])["calibration"] == ("calib/b", "calib/c")  # what the runtime measurement gets


def test_a_cell_nothing_calibrates_keeps_its_id_and_settings() -> None:
    plain, calibrated = _int8_cells([]), _int8_cells(["calib/a"])
    assert calibrated["fp32"] == plain["fp32"] and calibrated["fp32"].calibration == ()
    assert "calibration" not in plain["int8"].to_dict()  # documents written before the setting existed match


def test_a_challenge_cell_carries_its_calibration_in_its_settings_and_its_id() -> None:
    def cell(*calibration: str) -> EntryCell:
        return EntryCell(
            "e", {}, 2024, ("runtime",), backend="onnxruntime", dtype="int8", calibration=calibration
        )

    a, b, plain = cell("calib/a"), cell("calib/b"), cell()
    assert len({a.cell_id, b.cell_id, plain.cell_id}) == 3
    assert a.to_dict()["calibration"] == ["calib/a"] and "calibration" not in plain.to_dict()
    assert EntryCell.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_a_sweep_config_names_its_calibration_folders(tmp_path: Path) -> None:
    toml = tmp_path / "sweep.toml"
    toml.write_text('calibration = "calib/a"\ndtypes = ["int8"]\nbackends = ["onnxruntime"]\n')
    assert load_config(toml).calibration == ["calib/a"]


def test_the_environment_variable_is_only_the_commands_default(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_calibration(parser)
    monkeypatch.setenv(CALIBRATION_ENV, os.pathsep.join(["env/a", "env/b"]))
    assert calibration_from_args(parser.parse_args([])) == ("env/a", "env/b")
    assert calibration_from_args(parser.parse_args([]), ["toml/a"]) == ("toml/a",)
    assert calibration_from_args(parser.parse_args(["--calibration", "x,y"]), ["toml/a"]) == ("x", "y")
    monkeypatch.delenv(CALIBRATION_ENV)
    assert calibration_from_args(parser.parse_args([])) == ()


@needs_onnx
def test_measurement_code_does_not_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CALIBRATION_ENV, str(_images(tmp_path / "lr", 0)))
    with pytest.raises(UsageError, match="int8 needs calibration images"):
        benchmark("fmen_s", (16, 16), dtype="int8", backend="onnxruntime", repeats=2, threads=1)


@needs_onnx
def test_bench_records_the_calibration_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lr = _images(tmp_path / "lr", 0)
    argv = ["bench", "fmen_s", "--size", "16x16", "--device", "cpu", "--backend", "onnxruntime"]
    argv += ["--dtype", "int8", "--calibration", str(lr), "--repeats", "2", "--threads", "1", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["calibration"] == [str(lr)]
    assert doc["settings"]["backend_details"]["calibration_from"] == str(lr)


@needs_onnx
@pytest.mark.slow
def test_a_resume_with_another_calibration_reruns_the_int8_cell(tmp_path: Path) -> None:
    a, b = _images(tmp_path / "a", 0), _images(tmp_path / "b", 1)
    out = tmp_path / "sweep"
    argv = ["run", "--models", "fmen_s", "--sizes", "16x16", "--devices", "cpu", "--backends", "onnxruntime"]
    argv += ["--dtypes", "int8", "--repeats", "2", "--threads", "1", "--no-static", "--no-progress"]
    argv += ["--no-report", "--out", str(out)]

    def docs() -> dict[str, dict]:
        return {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}

    assert main([*argv, "--calibration", str(a)]) == 0
    (first,) = docs().values()
    assert first["status"] == "ok" and first["cell"]["calibration"] == [str(a)]
    assert first["settings"]["calibration"] == [str(a)]
    runs = (out / "runs.log").read_text().count(" start ")
    assert main([*argv, "--calibration", str(a), "--resume"]) == 0  # same calibration: nothing to do
    assert (out / "runs.log").read_text().count(" start ") == runs
    assert main([*argv, "--calibration", str(b), "--resume"]) == 0  # another one: another cell, measured
    assert (out / "runs.log").read_text().count(" start ") == runs + 1
    by_calibration = {tuple(d["cell"]["calibration"]): d for d in docs().values()}
    assert set(by_calibration) == {(str(a),), (str(b),)}
    assert all(d["status"] == "ok" for d in by_calibration.values())

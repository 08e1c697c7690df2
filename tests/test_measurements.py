"""Measurements as registered units (effbench.base.measurement): the registry refuses a second measurement under a
taken name and an unknown name is a usage error listing the registered ones; run_measurements runs each
measurement after those it reads, records failures and measurements that do not apply, and goes on; a Workload
checks its fields; a sweep cell's measurements are a list of names derived from its flags. And the acceptance test
of docs/architecture.md's "Add a measurement": a toy measurement in one temporary file outside the package, named
in EFFBENCH_PLUGINS, runs in ``effbench run --measure toy`` (its metric in the result and a column of the report)
and in ``effbench challenge MANIFEST --parts static,toy``."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from sweep_models import Nearest

from effbench.base import measurement as registry
from effbench.base.errors import UsageError
from effbench.base.measurement import (
    Context,
    NotApplicable,
    Workload,
    measurement,
    measurement_names,
    register_measurement,
    run_measurements,
)
from effbench.sweep.config import Cell, SweepConfig
from effbench.zoo.spec import resolve_model

ROOT = Path(__file__).resolve().parent.parent
MINI = Path(__file__).parent / "data" / "challenge_mini"

TOY_MEASUREMENT = '''
"""A toy measurement and its metric: the one file a new measurement needs as a plugin."""
from dataclasses import dataclass

from effbench.base.catalogue import Metric, register_metric
from effbench.base.measurement import register_measurement

register_metric(Metric("toy_score", "Toy", "pts", "higher", fmt=".1f", column="toy_score"))


@dataclass(frozen=True)
class ToyScore:
    score: float

    def metrics(self):
        return {"toy_score": self.score}


@register_measurement("toy", summary="parameters per input pixel")
def toy(resolved, workload, context):
    params = sum(p.numel() for p in resolved.model.parameters())
    return ToyScore(params / (workload.size[0] * workload.size[1]))
'''


@dataclass(frozen=True)
class Value:
    """A typed result for the in-process toy measurements."""

    key: str
    value: float

    def metrics(self) -> dict[str, float]:
        return {self.key: self.value}


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The registry with its built-in measurements, restored after the test."""
    measurement_names()  # loads the built-in ones
    copy = dict(registry._TABLE)
    monkeypatch.setattr(registry, "_TABLE", copy)
    return copy


@pytest.fixture(scope="module")
def nearest():
    return resolve_model(Nearest(), scale=4)


def test_a_second_measurement_under_a_taken_name_is_refused(table: dict) -> None:
    register_measurement("toy_once", lambda r, w, c: Value("params", 1.0))
    with pytest.raises(UsageError, match="'toy_once' is already registered"):
        register_measurement("toy_once", lambda r, w, c: Value("params", 2.0))
    with pytest.raises(UsageError, match="'counts' is already registered"):
        register_measurement("counts", lambda r, w, c: Value("params", 2.0))
    assert measurement("counts").run.__module__ == "effbench.counting.units"  # the built-in one stays


def test_the_sweeps_built_in_measurements_are_registered_beside_what_they_measure() -> None:
    where = {name: measurement(name).run.__module__ for name in measurement_names()}
    assert where["counts"] == "effbench.counting.units"
    assert where["predicted_memory"] == where["measured_memory"] == "effbench.memory.units"
    assert where["runtime"] == where["op_time_breakdown"] == where["dataset_psnr"] == "effbench.timing.units"
    assert not measurement("counts").needs_device and not measurement("predicted_memory").needs_device
    assert measurement("runtime").needs_device and measurement("measured_memory").needs_device


def test_an_unknown_measurement_is_a_usage_error_listing_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown measurement 'nope'; registered: counts, predicted_memory"):
        measurement("nope")
    with pytest.raises(UsageError, match="unknown measurement 'nope'"):
        SweepConfig(models=["fmen_s"], devices=["cpu"], measure=["nope"]).cells()
    from effbench.cli import main

    out = tmp_path / "out"
    assert main(["run", "--models", "fmen_s", "--no-timing", "--measure", "nope", "--out", str(out)]) == 2
    assert not out.exists()  # refused before anything ran


def test_run_measurements_runs_each_after_those_it_reads_and_records_failures_and_not_applicable(
    table: dict, nearest
) -> None:
    seen: list[str] = []

    def first(r, w, c: Context) -> Value:
        seen.append("first")
        return Value("params", 10.0)

    def second(r, w, c: Context) -> Value:
        seen.append("second")
        return Value("flops", c.earlier["toy_first"].metrics()["params"] * 2)

    def fails(r, w, c: Context) -> Value:
        seen.append("fails")
        raise RuntimeError("broken on purpose")

    def skips(r, w, c: Context) -> Value:
        seen.append("skips")
        raise NotApplicable("not on this workload")

    def untyped(r, w, c: Context) -> dict:
        seen.append("untyped")
        return {"params": 1.0}

    register_measurement("toy_second", second, after=("toy_first",))
    register_measurement("toy_first", first)
    register_measurement("toy_fails", fails)
    register_measurement("toy_skips", skips)
    register_measurement("toy_untyped", untyped)

    run = run_measurements(
        nearest, Workload(size=(8, 8)), ["toy_second", "toy_fails", "toy_skips", "toy_untyped", "toy_first"]
    )
    assert seen == ["first", "second", "fails", "skips", "untyped"]  # toy_second after what it reads
    assert run.metrics() == {"params": 10.0, "flops": 20.0}
    assert isinstance(run.failed["toy_fails"], RuntimeError) and "toy_fails" not in run.results
    assert run.skipped == {"toy_skips": "not on this workload"}
    assert "has no .metrics()" in str(run.failed["toy_untyped"])
    assert set(run.seconds) == {"toy_first", "toy_second", "toy_fails", "toy_skips", "toy_untyped"}

    seen.clear()  # on_error returning True stops the run at that failure
    run_measurements(nearest, Workload(size=(8, 8)), ["toy_fails", "toy_first"], on_error=lambda n, e: True)
    assert seen == ["fails"]


def test_measured_memory_does_not_apply_on_a_cpu(nearest) -> None:
    run = run_measurements(nearest, Workload(size=(8, 8), device="cpu"), ["measured_memory"])
    assert "CUDA" in run.skipped["measured_memory"] and not run.failed


def test_a_workload_checks_its_fields_and_is_frozen() -> None:
    w = Workload(size=(12, 16), batch=2, dtype="fp16", memory_format="channels_last", threads=2)
    assert w.input_shape == (2, 3, 12, 16) and w.channels_last
    assert Workload.from_dict(json.loads(json.dumps(w.to_dict()))) == w
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.scale = 2  # type: ignore[misc]
    for bad, message in (
        ({"size": (0, 16)}, "height must be positive"),
        ({"batch": 0}, "batch must be positive"),
        ({"scale": 0}, "scale must be a positive integer"),
        ({"dtype": "fp64"}, "unknown dtype 'fp64'"),
        ({"memory_format": "nhwc"}, "unknown memory format 'nhwc'"),
        ({"threads": 0}, "threads must be a positive integer"),
    ):
        with pytest.raises(UsageError, match=message):
            Workload(**bad)
    with pytest.raises(UsageError, match="unknown field"):
        Workload.from_dict({"size": [8, 8], "colour": "red"})


def test_a_sweep_cell_lists_its_measurements_from_its_flags_and_keeps_its_id(table: dict) -> None:
    register_measurement("toy_static", lambda r, w, c: Value("params", 1.0))
    register_measurement("toy_timed", lambda r, w, c: Value("params", 1.0), needs_device=True)
    cell = Cell("fmen_s", size=(16, 16))
    assert cell.parts == ("counts", "predicted_memory", "runtime")
    assert cell.cell_id == "fmen_s_x4_16x16_cpu_fp32_steady"  # unchanged for cells without extra measurements
    assert Cell("fmen_s", size=(16, 16), dataset="Set5").parts[-1] == "dataset_psnr"
    assert "dataset_psnr" not in Cell("fmen_s", size=(16, 16), dataset="Set5", protocol="ntire").parts
    assert Cell("fmen_s", static=False, breakdown=True, device="cuda").parts == (
        "runtime",
        "op_time_breakdown",
        "measured_memory",
    )
    extra = Cell("fmen_s", size=(16, 16), measure=("toy_static",))
    assert extra.parts == ("counts", "predicted_memory", "runtime", "toy_static")
    assert extra.cell_id == "fmen_s_x4_16x16_cpu_fp32_steady_toy_static"  # an extra adds itself to the id
    assert Cell.from_dict(json.loads(json.dumps(extra.to_dict()))) == extra
    assert "measure" not in cell.to_dict()  # results written before extra measurements hold the same settings
    static = Cell("fmen_s", size=(16, 16), timing=False, measure=("toy_static",))
    assert static.cell_id == "fmen_s_x4_16x16_static_toy_static" and static.device_free
    assert not Cell("fmen_s", timing=False, measure=("toy_timed",)).device_free


def _effbench(args: list[str], plugin: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EFFBENCH_PLUGINS=str(plugin))
    return subprocess.run(
        [sys.executable, "-m", "effbench", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def toy_plugin(tmp_path: Path) -> Path:
    path = tmp_path / "toy_measure.py"
    path.write_text(textwrap.dedent(TOY_MEASUREMENT))
    return path


def test_a_measurement_in_one_plugin_file_runs_in_effbench_run_and_is_a_report_column(
    toy_plugin: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["run", "--models", "fmen_s", "--sizes", "16x16", "--no-timing", "--measure", "toy"]
    proc = _effbench([*args, "--out", str(out), "--no-progress"], toy_plugin, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((out / "cells" / "fmen_s_x4_16x16_static_toy.json").read_text())
    assert doc["status"] == "ok" and "partial_errors" not in doc
    assert doc["metrics"]["toy_score"] == pytest.approx(doc["metrics"]["params"] / (16 * 16))
    assert doc["metrics"]["flops"] > 0  # the cell's own measurements ran beside it
    md = (out / "report" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    row = next(line for line in md.splitlines() if line.startswith("| fmen_s"))
    assert header.rstrip(" |").endswith("| Toy") and row.rstrip(" |").endswith(
        f"{doc['metrics']['toy_score']:.1f}pts"
    )
    with open(out / "results.csv", newline="") as f:
        (result,) = list(csv.DictReader(f))
    assert float(result["toy_score"]) == pytest.approx(doc["metrics"]["toy_score"])


def test_a_measurement_in_one_plugin_file_runs_in_effbench_challenge(
    toy_plugin: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "challenge.toml"
    manifest.write_text(
        textwrap.dedent(f"""
            [challenge]
            name = "mini"
            year = 2023
            root = "{MINI}"

            [[entry]]
            name = "00_CommonNet_baseline"
            model = "models/team01_common.py:CommonNet"
        """)
    )
    out = tmp_path / "out"
    proc = _effbench(
        ["challenge", str(manifest), "--out", str(out), "--parts", "static,toy", "--no-progress"],
        toy_plugin,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]  # one cell: both device-free
    assert doc["status"] == "ok" and "partial_errors" not in doc, doc
    from effbench.challenge.years import year_rules

    *_, h, w = year_rules(2023).counting_input  # the workload: the year's counting input
    assert doc["metrics"]["toy_score"] == pytest.approx(doc["metrics"]["params"] / (h * w))
    assert "Toy [pts]" in (out / "leaderboard.md").read_text()  # and a leaderboard column

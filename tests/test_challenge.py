"""Challenge mode end to end on a small challenge repository written like the organisers' (tests/data/challenge_mini:
one entry per real-world failure pattern), drafted with ``effbench challenge init``, run with ``effbench challenge``,
and its counts checked against the counting tools themselves (fvcore here; the organisers' hook tool in
tests/test_challenge_ntire2024.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from effbench.challenge.cells import EntryCell, parse_parts
from effbench.challenge.leaderboard import build_leaderboard
from effbench.challenge.manifest import load_manifest
from effbench.challenge.run import challenge_cells, run_challenge
from effbench.zoo.spec import ModelSpec

MINI = Path(__file__).parent / "data" / "challenge_mini"
ROOT = Path(__file__).resolve().parent.parent

# entry -> (spec under the repository root, positional args, kwargs, checkpoint entry)
_CHECKPOINTS = {
    "team01_common": ("models/team01_common.py:CommonNet", (), {}, None),
    "team02_pkg": ("models.team02_pkg:PkgNet", (), {"channels": 8, "blocks": 2}, "params_ema"),
    "team03_positional": ("models/team03_positional.py:PosNet", (3, 8, 4), {"blocks": 2}, None),
    "team04_cuda": ("models/team04_cuda.py:CudaNet", (), {}, None),
    "team05_mean": ("models/team05_mean.py:MeanNet", (), {}, None),
    "team06_datadep": ("models/team06_datadep.py:DataDepNet", (), {}, None),
    "team07_prints": ("models/team07_prints.py:PrintNet", (), {}, None),
    "team08_same": ("models/team08_same.py:SameNet", (), {}, None),
}


def _effbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "effbench", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the mini repository with a seeded checkpoint per entry (team09's model cannot be built: a state
    dict of its shape stands in)."""
    root = tmp_path_factory.mktemp("challenge") / "repo"
    shutil.copytree(MINI, root)
    (root / "model_zoo").mkdir()
    for name, (target, args, kwargs, key) in _CHECKPOINTS.items():
        torch.manual_seed(len(name))
        target = target if target.startswith("models.") else f"{root}/{target}"
        model = ModelSpec(target, dict(kwargs), args=args, root=str(root)).build()
        sd = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save({key: sd} if key else sd, root / "model_zoo" / f"{name}.pth")
    conv = torch.nn.Conv2d(3, 48, 3, 1, 1)
    torch.save(
        {f"conv.{k}": v for k, v in conv.state_dict().items()}, root / "model_zoo" / "team09_missing.pth"
    )
    return root


@pytest.fixture(scope="module")
def manifest(repo: Path) -> Path:
    out = _effbench("challenge", "init", str(repo), "--year", "2023", "-o", str(repo / "challenge.toml"))
    assert out.returncode == 0, out.stderr
    return repo / "challenge.toml"


@pytest.fixture(scope="module")
def measured(manifest: Path) -> tuple[Path, dict[str, dict]]:
    out_dir = manifest.parent / "results"
    run = _effbench(
        "challenge", str(manifest), "--out", str(out_dir), "--no-progress", "--compare-conventions"
    )
    # 09_MissingNet fails (missing package): the command says so with exit code 1
    assert run.returncode == 1 and "1 of 9 entries failed (09_MissingNet: missing_package)" in run.stderr
    rows = json.loads((out_dir / "leaderboard.json").read_text())["rows"]
    return out_dir, {r["name"]: r for r in rows}


def test_init_drafts_every_branch_of_the_harness(manifest: Path) -> None:
    challenge = load_manifest(manifest)
    names = [e.name for e in challenge.entries]
    assert names == [
        "00_CommonNet_baseline",
        "02_PkgNet",
        "03_PosNet",
        "04_CudaNet",
        "05_MeanNet",
        "06_DataDepNet",
        "07_PrintNet",
        "08_SameNet",
        "09_MissingNet",
    ]
    assert challenge.year == 2023 and challenge.baseline == "00_CommonNet_baseline"
    pos = challenge.entry("03_PosNet")
    assert pos.args == (3, 8, 4) and pos.kwargs == {"blocks": 2} and pos.strict is False
    assert challenge.entry("02_PkgNet").weights_key == "params_ema"
    assert (
        challenge.entry("07_PrintNet").data_range == 255.0 and challenge.entry("05_MeanNet").data_range == 1.0
    )


def test_every_entry_that_builds_is_counted_and_the_rest_say_why(measured: tuple[Path, dict]) -> None:
    _, rows = measured
    assert rows["09_MissingNet"]["status"] == "missing_package"
    assert "effbench_no_such_package" in rows["09_MissingNet"]["error"]
    for name, row in rows.items():
        if name == "09_MissingNet":
            continue
        assert row["status"] == "ok", (name, row["error"])
        assert row["params"] > 0 and row["flops"] > 0 and row["convs"] > 0
        assert row["memory_predicted_mib"] > 0, name  # predicted for every entry that builds


def test_counts_equal_the_tools_run_on_the_built_entries(measured: tuple[Path, dict], manifest: Path) -> None:
    """2023 counts with the hook tool: #Conv is the number of Conv2d modules run, params the parameters' numel."""
    _, rows = measured
    for entry in load_manifest(manifest).entries:
        if entry.name == "09_MissingNet":
            continue
        model = entry.spec().build()
        row = rows[entry.name]
        assert row["params"] == sum(p.numel() for p in model.parameters()), entry.name
        assert row["convs"] == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()), entry.name


def test_fvcore_counts_padding_same_as_zero_and_full_counts_it(manifest: Path, tmp_path: Path) -> None:
    """Under 2024 rules FLOPs come from fvcore, whose trace sees padding='same' as aten::_convolution_mode and
    counts it 0; the leaderboard keeps fvcore's figure and shows the full convention's beside it."""
    from fvcore.nn import FlopCountAnalysis

    text = manifest.read_text().replace("year = 2023", "year = 2024")
    m24 = manifest.with_name("challenge2024.toml")
    m24.write_text(text)
    challenge = load_manifest(m24)
    same = challenge.entry("08_SameNet")
    run_challenge(
        challenge.__class__(**{**challenge.__dict__, "entries": (same,)}),
        tmp_path / "out",
        progress=False,
        compare_conventions=True,
    )
    row = build_leaderboard(
        challenge.__class__(**{**challenge.__dict__, "entries": (same,)}), tmp_path / "out"
    )[0]
    model = same.spec().build()
    official = FlopCountAnalysis(model, torch.rand(1, 3, 256, 256))
    official.unsupported_ops_warnings(False)
    official.uncalled_modules_warnings(False)
    assert row["flops"] == int(official.total())
    assert row["flops_full"] > 2 * row["flops"]  # the two 'same' convs are most of the work
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "FLOPs full [G]" in md


def test_model_prints_do_not_reach_the_leaderboard_or_break_it(measured: tuple[Path, dict]) -> None:
    out_dir, rows = measured
    assert rows["07_PrintNet"]["status"] == "ok"
    logs = "".join(p.read_text() for p in (out_dir / "logs").glob("07_PrintNet*"))
    assert "team07: building PrintNet" in logs  # kept in the cell's log
    json.loads((out_dir / "leaderboard.json").read_text())


def test_tensor_attribute_and_data_dependent_entries_get_memory_predicted(
    measured: tuple[Path, dict],
) -> None:
    _, rows = measured
    for name in ("05_MeanNet", "06_DataDepNet", "04_CudaNet"):
        assert rows[name]["memory_predicted_mib"] > 0, name


def test_the_leaderboard_is_written_in_four_formats_one_row_per_entry(measured: tuple[Path, dict]) -> None:
    out_dir, rows = measured
    for ext in ("json", "csv", "md", "html"):
        assert (out_dir / f"leaderboard.{ext}").stat().st_size > 0
    md = (out_dir / "leaderboard.md").read_text()
    assert md.count("\n| 0") == len(rows)  # every row starts with its harness name ("00_...", "02_...")
    assert "missing_package" in md and "(baseline)" in md
    html = (out_dir / "leaderboard.html").read_text()
    assert "<table>" in html and "09_MissingNet" in html
    # 2023 is a rank year: the tracks' ranks are there for the entries that have every metric of a track
    assert rows["00_CommonNet_baseline"].get("rank_complexity") is not None


def test_resume_reruns_nothing_that_is_finished(manifest: Path, measured: tuple[Path, dict]) -> None:
    out_dir, _ = measured
    before = {p.name: p.stat().st_mtime_ns for p in (out_dir / "cells").glob("*.json")}
    run = _effbench("challenge", str(manifest), "--out", str(out_dir), "--no-progress", "--resume")
    assert run.returncode == 1, run.stderr  # 09_MissingNet still fails
    after = {p.name: p.stat().st_mtime_ns for p in (out_dir / "cells").glob("*.json")}
    assert after.keys() == before.keys()
    rerun = [n for n in after if after[n] != before[n]]
    assert rerun == ["09_MissingNet-static_memory.json"]  # only the failed entry ran again


def test_a_skipped_entry_is_listed_with_its_reason(manifest: Path, tmp_path: Path) -> None:
    challenge = load_manifest(manifest)
    entry = challenge.entry("00_CommonNet_baseline")
    skipped = entry.__class__(**{**entry.__dict__, "skip": "withdrawn by the team"})
    c = challenge.__class__(**{**challenge.__dict__, "entries": (skipped,)})
    summary = run_challenge(c, tmp_path / "out", progress=False)
    row = summary["leaderboard"][0]
    assert row["status"] == "skipped" and "withdrawn by the team" in row["error"]
    assert summary["ran"] == 0


def test_cells_carry_the_year_rules_they_were_measured_under(manifest: Path) -> None:
    cells = challenge_cells(load_manifest(manifest), "static,memory,runtime")
    static = [c for c in cells if c.parts == ("static", "memory")]
    assert len(static) == 9 and all(c.counting["flops"] == "ntire2022" for c in static)
    assert all(c.memory_size == (510, 510) for c in static)  # DIV2K valid's largest LR image
    measured = [c for c in cells if c.parts == ("runtime",)]
    assert measured and measured[0].cell_id.endswith("-runtime-cpu")
    assert EntryCell.from_dict(json.loads(json.dumps(static[0].to_dict()))) == static[0]


def test_bad_parts_and_bad_manifests_are_usage_errors(tmp_path: Path) -> None:
    from effbench.base.errors import UsageError

    with pytest.raises(UsageError, match="unknown part"):
        parse_parts("static,speed")
    bad = tmp_path / "m.toml"
    bad.write_text('[challenge]\nname = "x"\nyear = 2031\nroot = "."\n')
    run = _effbench("challenge", str(bad), "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "2031" in run.stderr


def test_a_tiled_entry_is_predicted_tile_by_tile(manifest: Path, tmp_path: Path) -> None:
    """An entry the organisers measure tile by tile: its memory is predicted for the tiled run (much lower at the
    year's 510x510 input than the whole image at once), its counts stay the whole model's on the counting input."""
    challenge = load_manifest(manifest)
    entry = challenge.entry("00_CommonNet_baseline")
    wide = entry.__class__(**{**entry.__dict__, "name": "wide", "kwargs": {"channels": 64}, "weights": None})
    tiled = wide.__class__(**{**wide.__dict__, "name": "wide_tiled", "tile": 128})
    c = challenge.__class__(**{**challenge.__dict__, "entries": (wide, tiled), "baseline": None})
    rows = {r["name"]: r for r in run_challenge(c, tmp_path / "out", progress=False)["leaderboard"]}
    whole, by_tile = rows["wide"], rows["wide_tiled"]
    assert by_tile["status"] == "ok" and by_tile["flops"] == whole["flops"]
    assert by_tile["memory_predicted_mib"] < 0.8 * whole["memory_predicted_mib"]
    output_mib = 3 * 2040 * 2040 * 4 / 2**20
    assert (
        by_tile["memory_predicted_mib"] > 2 * output_mib
    )  # the harness's sum E and count W are output-sized


@pytest.mark.shared
def test_2023_counts_equal_the_organisers_hook_tool(
    measured: tuple[Path, dict], manifest: Path, shared_dir: Path
) -> None:
    """2022/2023 count FLOPs, #Acts and #Conv with the organisers' hook tool (utils/model_summary.py, the copy in
    the NTIRE 2024 repository: the same tool), run here on every mini entry that builds."""
    import importlib.util

    path = shared_dir / "challenges" / "ntire2024" / "utils" / "model_summary.py"
    if not path.is_file():
        pytest.skip(f"the organisers' hook tool is not at {path}")
    spec = importlib.util.spec_from_file_location("ntire_model_summary", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _, rows = measured
    compared = 0
    for entry in load_manifest(manifest).entries:
        if rows[entry.name]["status"] != "ok":
            continue
        model = entry.spec().build()
        with torch.no_grad():
            acts, convs = tool.get_model_activation(model, (3, 256, 256))
            flops = tool.get_model_flops(model, (3, 256, 256), False)
        row = rows[entry.name]
        assert (row["flops"], row["activations"], row["convs"]) == (int(flops), int(acts), convs), entry.name
        compared += 1
    assert compared == 8


def test_runtime_and_quality_cells_run_the_harness_loop_under_a_backend(
    manifest: Path, tmp_path: Path
) -> None:
    """The measured parts on the CPU: synthetic stand-ins without a data set (runtime only); under ONNX Runtime the
    cell id and document name the backend and carry the equivalence check against eager fp32."""
    from effbench.base.errors import UsageError

    challenge = load_manifest(manifest)
    one = challenge.__class__(**{**challenge.__dict__, "entries": (challenge.entry("03_PosNet"),)})
    rows = run_challenge(one, tmp_path / "eager", parts="runtime", progress=False)["leaderboard"]
    assert rows[0]["status"] == "ok" and rows[0]["runtime_ms"] > 0 and rows[0]["psnr_db"] is None
    with pytest.raises(UsageError, match="no_such_backend"):
        run_challenge(one, tmp_path / "bad", parts="runtime", backend="no_such_backend", progress=False)
    with pytest.raises(UsageError, match="--dataset"):
        run_challenge(one, tmp_path / "q", parts="quality", progress=False)
    pytest.importorskip("onnxruntime")
    summary = run_challenge(one, tmp_path / "ort", parts="runtime", backend="onnxruntime", progress=False)
    (cell,) = (tmp_path / "ort" / "cells").glob("*.json")
    assert cell.name == "03_PosNet-runtime-cpu-onnxruntime-fp32.json"
    doc = json.loads(cell.read_text())
    assert doc["backend"] == "onnxruntime" and doc["metrics"]["equivalence_psnr_db"] > 60
    assert summary["leaderboard"][0]["runtime_ms"] > 0

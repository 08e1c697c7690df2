"""Challenge mode on the NTIRE 2024 organisers' repository (../shared/challenges/ntire2024): ``effbench challenge
init`` then ``effbench challenge --parts static,memory`` on every entry, checked integer for integer against the
organisers' own tools run as their harness runs them (tests/ntire_official.py: ``utils/model_summary.py`` for
#Acts and #Conv, fvcore for FLOPs, on each entry's ``select_model()``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = [pytest.mark.shared, pytest.mark.slow, pytest.mark.heavy]

HERE = Path(__file__).resolve().parent
COUNTED = ("params", "flops", "activations", "convs")


@pytest.fixture(scope="module")
def repo(shared_dir: Path) -> Path:
    r = shared_dir / "challenges" / "ntire2024"
    if not (r / "test_demo.py").is_file():
        pytest.skip(f"the NTIRE 2024 repository is not at {r}")
    return r


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)
    # the shared repository stays as it is; effbench is this checkout's, whatever is installed
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def leaderboard(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("ntire2024")
    init = _run(
        [sys.executable, "-m", "effbench", "challenge", "init", str(repo), "--year", "2024", "-o", "m.toml"],
        work,
    )
    assert init.returncode == 0, init.stderr
    run = _run(
        [sys.executable, "-m", "effbench", "challenge", "m.toml", "--out", "out", "--parts", "static,memory",
         "--no-progress"],
        work,
    )  # fmt: skip
    rows = {r["name"]: r for r in json.loads((work / "out" / "leaderboard.json").read_text())["rows"]}
    failed = [r for r in rows.values() if r["status"] not in ("ok", "skipped")]
    assert run.returncode == (1 if failed else 0), run.stderr  # exit code 1: some entry failed
    return rows


@pytest.fixture(scope="module")
def official(repo: Path, leaderboard: dict[str, dict]) -> dict[str, dict]:
    """What the organisers' tools give for each entry (or why they cannot build it here), by entry name."""
    ids = {int(name.split("_", 1)[0]): name for name in leaderboard}

    def one(model_id: int) -> dict:
        out = _run([sys.executable, str(HERE / "ntire_official.py"), str(repo), str(model_id)])
        return json.loads(out.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(2) as pool:
        return {ids[d["id"]]: d for d in pool.map(one, ids)}


def test_every_entry_is_listed_with_a_status(leaderboard: dict[str, dict]) -> None:
    assert len(leaderboard) == 35  # every branch of test_demo.py's select_model()
    statuses = {r["status"] for r in leaderboard.values()}
    assert statuses <= {"ok", "missing_package", "skipped", "needs_cuda"}
    for r in leaderboard.values():
        if r["status"] != "ok":
            assert r["error"], r["name"]
    # its checkpoint is not in the repository: counted all the same (counting needs no weights), said in its note
    srgan = leaderboard["48_EfficientSRGAN"]
    assert srgan["status"] == "ok" and "not found" in srgan["note"]
    # mamba_ssm is CUDA-only: effbench's CPU stand-in builds DVMSR (effbench.base.stand_ins), else it is named
    dvmsr = leaderboard["07_DVMSR"]
    assert dvmsr["status"] == "ok" or (dvmsr["status"] == "missing_package" and "mamba_ssm" in dvmsr["error"])


def test_counts_equal_the_organisers_tools_integer_for_integer(
    leaderboard: dict[str, dict], official: dict[str, dict]
) -> None:
    compared = 0
    for name, o in official.items():
        row = leaderboard[name]
        if "error" in o:  # their harness cannot build it here either: effbench must say why
            if "mamba_ssm" not in o["error"]:  # (a CUDA-only package effbench stands in for on a CPU host)
                assert row["status"] != "ok", (name, o["error"])
            continue
        assert row["status"] == "ok", (name, row["error"])
        assert {k: row[k] for k in COUNTED} == {k: o[k] for k in COUNTED}, name
        compared += 1
    assert (
        compared >= 26
    )  # 29 with einops installed (test extras); the SPAN entries build through the CUDA guard


def test_padding_same_entries_keep_fvcores_zero_and_show_the_gap(leaderboard: dict[str, dict]) -> None:
    for name in ("28_MSN", "33_IFADNet", "41_HARN", "44_LSANet"):
        row = leaderboard[name]
        if row["status"] != "ok":
            continue
        assert row["uncounted_ops"] == ["aten._convolution_mode"], name


def test_memory_is_predicted_for_every_entry_that_builds(leaderboard: dict[str, dict], repo: Path) -> None:
    built = [r for r in leaderboard.values() if r["status"] == "ok"]
    assert built and all(r["memory_predicted_mib"] > 0 for r in built)
    # the largest LR image, 510x510; a window model's padded up to its window (34_craft: 512x512)
    for r in built:
        n, c, h, w = r["memory_input"]
        assert (n, c) == (1, 3) and 510 <= h < 574 and 510 <= w < 574, (r["name"], r["memory_input"])
    # the baseline's own recorded peak over the validation run (results.json, RTX 3090)
    recorded = json.loads((repo / "results.json").read_text())["00_RLFN_baseline"]["valid_memory"]
    predicted = leaderboard["00_RLFN_baseline"]["memory_predicted_mib"]
    assert abs(predicted / recorded - 1) < 0.01, (predicted, recorded)


def test_baseline_psnr_on_set5_with_its_checkpoint_and_data_range(
    repo: Path, data_dir: Path, tmp_path: Path
) -> None:
    from effbench.challenge.check import check_entry

    report = check_entry(
        f"{repo}/models/team00_RLFN.py:RLFN_Prune",
        2024,
        weights=str(repo / "model_zoo" / "team00_rlfn.pth"),
        data_range=255.0,
        dataset=data_dir / "Set5",
        repo=repo,  # timed against the organisers' own baseline code: the same network and code as the entry
        rounds=12,
        timing_size=(96, 96),
    )
    assert report["passed"], report["checks"]
    assert 29.5 < report["psnr"] < 31.0  # the harness's RGB PSNR, border 4
    assert 31.8 < report["psnr_y"] < 32.6  # Y channel, as RLFN's paper reports Set5 x4 (32.24 dB)
    p = report["projected"]
    # a ~95% interval misses the truth about one time in twenty: the claim is checked on up to three independent
    # timings (each with the same checks), so the test fails only when the projection is really off
    for _ in range(2):
        if p["low"] <= p["baseline_score"] <= p["high"]:
            break
        p = check_entry(
            f"{repo}/models/team00_RLFN.py:RLFN_Prune",
            2024,
            weights=str(repo / "model_zoo" / "team00_rlfn.pth"),
            data_range=255.0,
            repo=repo,
            rounds=12,
            timing_size=(96, 96),
        )["projected"]
    assert p["low"] <= p["baseline_score"] <= p["high"]  # the baseline projects its own score, exp(2) = 7.389
    assert abs(p["baseline_score"] - 7.389056) < 1e-5

"""Challenge mode on the NTIRE 2025 organisers' repository (../shared/challenges/ntire2025), as a new user runs it:
``effbench challenge init`` then ``effbench challenge --parts static,memory --jobs 2``, no hand edits; every built
entry checked integer for integer against the organisers' own tools run as their ``test_demo.py`` runs them
(tests/ntire_official.py: ``select_model()``, a forward as ``main()`` runs the validation set first, then
``utils/model_summary.py`` for #Acts and #Conv and fvcore on ``torch.rand`` for FLOPs)."""

from __future__ import annotations

import importlib.util
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
#: what the organisers' log gives the EFDN baseline (NTIRE2025-EfficientSR.log): params [M], FLOPs [G], #Acts [M],
#: #Conv, as logged with 4 decimals
EFDN_LOGGED = (0.2762, 16.7035, 111.1167, 65)
#: packages of the challenge extra the 2025 entries import (27, 28, 54: torchvision / timm)
EXTRA = ("torchvision", "timm")
#: where effbench and the organisers' tools still differ (measured 2026-12-07; fixing one takes it off this list,
#: a new difference fails the test). 10_MoeASR (routed by the input's values: the hook tool's uninitialised input
#: held a different heap-address table in each run, 287,256,576 to 291,450,880 #Acts in twelve runs here) and
#: 16_SCMSR (Gumbel sampling in forward: 17,586,868,248 to 17,606,286,360 FLOPs in four runs) are no longer on it:
#: effbench draws each tool's input as the tool gets it and gives the prediction interval of one more run.
KNOWN_DIFFERENCES: dict[str, str] = {}
#: runs of the organisers' tools per value-dependent entry (each a draw of their uninitialised input / unseeded RNG)
REPEATS = 3


@pytest.fixture(scope="module")
def repo(shared_dir: Path) -> Path:
    r = shared_dir / "challenges" / "ntire2025"
    if not (r / "test_demo.py").is_file():
        pytest.skip(f"the NTIRE 2025 repository is not at {r}")
    return r


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)
    # the shared repository stays as it is; effbench is this checkout's, whatever is installed
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=1800)


@pytest.fixture(scope="module")
def work(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("ntire2025")
    init = _run(
        [sys.executable, "-m", "effbench", "challenge", "init", str(repo), "--year", "2025", "-o", "m.toml"],
        work,
    )
    assert init.returncode == 0, init.stderr
    run = _run(
        [sys.executable, "-m", "effbench", "challenge", "m.toml", "--out", "out", "--parts", "static,memory",
         "--device", "cpu", "--jobs", "2", "--no-progress"],
        work,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr  # 1: some entry failed, named on stderr
    return work


@pytest.fixture(scope="module")
def leaderboard(work: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads((work / "out" / "leaderboard.json").read_text())["rows"]}


@pytest.fixture(scope="module")
def cells(work: Path) -> dict[str, dict]:
    """Each entry's static+memory cell document (its metrics as measured)."""
    docs = (json.loads(p.read_text()) for p in (work / "out" / "cells").glob("*.json"))
    return {d["entry"]: d for d in docs}


@pytest.fixture(scope="module")
def official(repo: Path, leaderboard: dict[str, dict]) -> dict[str, dict]:
    """What the organisers' tools give for each entry (or why they cannot build it here), by entry name."""
    ids = {int(name.split("_", 1)[0]): name for name in leaderboard}
    with ThreadPoolExecutor(2) as pool:
        return {ids[d["id"]]: d for d in pool.map(lambda i: _official(repo, i), ids)}


def _official(repo: Path, model_id: int) -> dict:
    """One run of the organisers' tools on one entry (tests/ntire_official.py), in a fresh process."""
    out = _run([sys.executable, str(HERE / "ntire_official.py"), str(repo), str(model_id)])
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"id": model_id, "error": out.stderr[-400:]}


def test_init_drafts_every_entry_without_hand_edits(work: Path, leaderboard: dict[str, dict]) -> None:
    assert len(leaderboard) == 45  # every branch of select_model() that builds a model (model_id 1 is `pass`)
    text = (work / "m.toml").read_text()
    assert "model_id 1 (test_demo.py line 30)" in text  # listed with its line, not a crash
    assert 'after_load = [{ call = "switch_deploy", each_module = true }]' in text  # 17_FSANet
    assert 'after_load = [{ call = "repa" }]' in text  # 44_SPAN
    assert 'load_method = "load_weights"' in text  # 40_MambaIRv2LightModel


def test_at_least_42_of_45_entries_are_measured(leaderboard: dict[str, dict]) -> None:
    ok = [n for n, r in leaderboard.items() if r["status"] == "ok"]
    for name, r in leaderboard.items():
        if r["status"] != "ok":
            assert r["error"], name  # every other entry says why
    missing = [p for p in EXTRA if importlib.util.find_spec(p) is None]
    if missing:  # without the challenge extra the entries importing it are missing_package, named
        pytest.skip(f"the challenge extra is not installed ({', '.join(missing)}): {len(ok)} of 45 ok")
    assert len(ok) >= 42, sorted(set(leaderboard) - set(ok))


def test_counts_equal_the_organisers_tools_integer_for_integer(
    leaderboard: dict[str, dict], cells: dict[str, dict], official: dict[str, dict]
) -> None:
    compared, differ = 0, {}
    for name, o in official.items():
        row = leaderboard[name]
        if "error" in o or row["status"] != "ok":
            continue  # built on one side only: the other says why (test above; a CUDA-only package here)
        metrics = cells[name]["metrics"]
        ranges = metrics.get("ranges") or {}
        for k in COUNTED:
            if metrics.get("input_dependent") and k in ranges:  # counted on several draws of the tool's input
                lo, hi = ranges[k]
                same = lo <= o[k] <= hi
            else:
                same = row[k] == o[k]
            if not same:
                differ.setdefault(name, []).append(k)
        compared += 1
    unexplained = {n: ks for n, ks in differ.items() if ks != [KNOWN_DIFFERENCES.get(n)]}
    assert not unexplained, unexplained
    assert compared >= 38 and compared - len(differ) >= 34, (compared, differ)


def test_the_baseline_is_exact_to_the_log(leaderboard: dict[str, dict]) -> None:
    r = leaderboard["00_EFDN_baseline"]
    got = (
        round(r["params"] / 1e6, 4),
        round(r["flops"] / 1e9, 4),
        round(r["activations"] / 1e6, 4),
        r["convs"],
    )
    assert got == EFDN_LOGGED
    # the harness's max_memory_allocated over its run: 662.886 MiB in the organisers' log
    assert abs(r["memory_predicted_mib"] / 662.886 - 1) < 0.01, r["memory_predicted_mib"]


def test_reparameterised_entries_are_counted_deploy_form(leaderboard: dict[str, dict]) -> None:
    # 17_FSANet's harness branch calls switch_deploy() on every module after loading: 308,776 params, not the
    # train-time 316,840
    r = leaderboard["17_FSANet"]
    assert (r["params"], r["convs"]) == (308776, 158)


def test_missing_checkpoints_are_counted_all_the_same(leaderboard: dict[str, dict]) -> None:
    for name in ("22_ParticalSRFormer3_baseline", "35_SFNet_baseline", "44_SPAN", "50_TenInOneSR_baseline"):
        r = leaderboard[name]
        assert r["status"] == "ok" and r["params"] > 0, (name, r["error"])
        assert "not found" in (r.get("note") or ""), name


def test_value_dependent_entries_hold_repeated_runs_of_the_organisers_tools(
    repo: Path, leaderboard: dict[str, dict], cells: dict[str, dict]
) -> None:
    # the organisers' figure for such an entry is one draw (their uninitialised input, their unseeded RNG): every
    # one of several runs of their tools falls in effbench's ranges
    dependent = sorted(
        n
        for n, d in cells.items()
        if d["metrics"].get("input_dependent") and leaderboard[n]["status"] == "ok"
    )
    assert {"10_MoeASR", "16_SCMSR"} <= set(dependent), dependent
    runs = [(n, int(n.split("_", 1)[0])) for n in dependent for _ in range(REPEATS)]
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda r: _official(repo, r[1]), runs))
    outside = []
    for (name, _), o in zip(runs, outs):
        assert "error" not in o, (name, o)
        for k, (lo, hi) in cells[name]["metrics"]["ranges"].items():
            if not lo <= o[k] <= hi:
                outside.append((name, k, o[k], (lo, hi)))
    assert not outside, outside

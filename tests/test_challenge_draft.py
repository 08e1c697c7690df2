"""``effbench challenge init`` on a harness written the ways organisers write it (tests/data/challenge_draft): every
``select_model`` branch drafted or listed with its line, the manifest keys that load an entry as the harness does
(an entry from a checkpoint key, its own ``load_state_dict``, ``load_weights``, calls after loading), and each entry
built in the very form the harness builds it, compared with the harness's own ``select_model`` run on the same
checkpoints. ``effbench challenge check --repo`` through the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from effbench.challenge.draft import draft_manifest
from effbench.challenge.manifest import load_manifest
from effbench.zoo.spec import AfterLoad, ModelSpec, resolve_model

DRAFT = Path(__file__).parent / "data" / "challenge_draft"
ROOT = Path(__file__).resolve().parent.parent
ENTRIES = [
    "00_Base_baseline",
    "02_RepNet",
    "03_OwnLoad",
    "04_SwitchNet",
    "05_SelfLoading",
    "06_RunTimeKey",
    "07_NoCheckpoint",
    "08_Shared6",
    "09_Shared10",
]

# the harness run as the organisers run it: its own select_model() on the CPU (`.cuda()` kept on the CPU, as a
# harness on a CPU host would need), each model's params and state-dict keys (its form: fused or not)
_HARNESS = """
import argparse, json, os, sys, torch
os.chdir(sys.argv[1]); sys.path.insert(0, sys.argv[1])
if not torch.cuda.is_available():
    torch.nn.Module.cuda = lambda self, *a, **k: self
import test_demo
out = {}
for i in map(int, sys.argv[2:]):
    try:
        model, name, data_range, tile = test_demo.select_model(argparse.Namespace(model_id=i), torch.device("cpu"))
    except Exception as exc:
        out[i] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    keys = sorted(model.state_dict())
    out[i] = {"name": name, "params": sum(p.numel() for p in model.parameters()), "keys": keys, "tile": tile}
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}


def _effbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "effbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(),
        timeout=600,
    )


def _build(root: Path, target: str, *args, **kwargs) -> torch.nn.Module:
    return ModelSpec(f"{root}/{target}", dict(kwargs), args=args, root=str(root)).build()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with each entry's checkpoint written as its harness branch reads it (team07's
    left out: not submitted)."""
    root = tmp_path_factory.mktemp("draft") / "repo"
    shutil.copytree(DRAFT, root)
    zoo = root / "model_zoo"
    zoo.mkdir()
    torch.manual_seed(0)
    torch.save(_build(root, "models/team00_base.py:Base", feats=8).state_dict(), zoo / "team00_base.pth")
    torch.save(
        {"params": _build(root, "models/team02_rep.py:RepNet", feats=8).state_dict()}, zoo / "team02_rep.pth"
    )
    fused = _build(root, "models/team03_ownload.py:OwnLoadNet", feats=8)
    fused.repa()  # its checkpoint holds the fused form only: loadable only through its own load_state_dict
    torch.save(fused.state_dict(), zoo / "team03_ownload.pth")
    switch = _build(root, "models/team04_switch.py:SwitchNet", feats=8)
    torch.save({"params_ema": switch.state_dict()}, zoo / "team04_switch.pth")
    torch.save(
        {"model": _build(root, "models/team05_selfload.py:SelfLoading").state_dict()},
        zoo / "team05_selfload.pth",
    )
    # the harness prefers params_ema; params is of another shape, so taking it would fail a strict load
    ema, other = (_build(root, "models/team00_base.py:Base", f).state_dict() for f in (12, 5))
    torch.save({"params": other, "params_ema": ema}, zoo / "team06_runtime_key.pth")
    return root


@pytest.fixture(scope="module")
def draft(repo: Path):
    return draft_manifest(repo, 2025)


@pytest.fixture(scope="module")
def harness(repo: Path) -> dict[int, dict]:
    """What the harness's own select_model builds, by model_id."""
    ids = [0, 2, 3, 4, 5, 6, 7, 8, 9]
    out = subprocess.run(
        [sys.executable, "-c", _HARNESS, str(repo), *map(str, ids)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def test_every_branch_is_drafted_or_listed_with_its_line(draft) -> None:
    c = draft.challenge
    assert [e.name for e in c.entries] == ENTRIES and c.baseline == "00_Base_baseline"
    notes = "\n".join(draft.unresolved)
    # `elif model_id == 1: pass`: no model, no files to pair: listed with its line, never a crash
    assert "model_id 1 (test_demo.py line 18): constructs no model the draft can read" in notes
    assert "no models/team01_* file to pair; not listed" in notes


def test_the_draft_reads_what_organisers_write(draft, repo: Path) -> None:
    c = draft.challenge
    base = c.entry("00_Base_baseline")
    assert base.kwargs == {"feats": 8, "img_range": 1.0} and base.data_range == 1.0  # img_range=data_range
    rep = c.entry("02_RepNet")
    assert rep.weights_key == "params" and rep.after_load == (AfterLoad("repa"),)
    own = c.entry("03_OwnLoad")
    assert own.own_load_state_dict is True and own.weights_key is None
    switch = c.entry("04_SwitchNet")
    assert switch.weights_key == "params_ema"
    assert switch.after_load == (AfterLoad("switch_deploy", each_module=True),)
    selfload = c.entry(
        "05_SelfLoading"
    )  # `model = model.cuda()` passed through, then model.load_weights(path)
    assert selfload.load_method == "load_weights" and selfload.weights == str(
        repo / "model_zoo/team05_selfload.pth"
    )
    key = c.entry("06_RunTimeKey")  # importlib + getattr(...)(12).eval().to(device), key chosen at run time
    assert key.model == f"{repo}/models/team00_base.py:Base" and key.args == (12,) and key.data_range == 255.0
    assert key.weights_key == ("params_ema", "params") and key.weights == str(
        repo / "model_zoo/team06_runtime_key.pth"
    )
    missing = c.entry("07_NoCheckpoint")
    assert missing.skip is None and missing.weights_missing and missing.after_load == (AfterLoad("repa"),)
    shared6, shared10 = c.entry("08_Shared6"), c.entry("09_Shared10")  # one branch, two ids
    assert (shared6.args, shared10.args, shared6.kwargs) == ((6,), (10,), {"img_range": 255.0})
    assert (shared6.tile, shared10.tile) == (
        None,
        64,
    )  # `tile = 64 if model_id == 9 else None` after the branches
    path = repo / "drafted.toml"
    path.write_text(draft.text)
    assert load_manifest(path).entries == c.entries  # the TOML reads back to the same entries


def test_each_entry_is_built_in_the_form_the_harness_builds_it(draft, harness: dict[int, dict]) -> None:
    for n, entry in zip([0, 2, 3, 4, 5, 6, 7, 8, 9], draft.challenge.entries):
        model = resolve_model(entry.spec(with_weights=not entry.weights_missing)).model
        got = {"params": sum(p.numel() for p in model.parameters()), "keys": sorted(model.state_dict())}
        if n == 7:  # the harness cannot load a checkpoint that is not there; effbench counts without it
            assert "FileNotFoundError" in harness[7]["error"]
            assert got["keys"] == sorted(k for k in got["keys"] if "conv3" not in k and "conv1." not in k)
            continue
        assert got == {k: harness[n][k] for k in ("params", "keys")}, entry.name
    # re-parameterised before counting: 8x8 3x3 convs only, not train-time 3x3 + 1x1 branches
    head, tail, rep = 3 * 8 * 9 + 8, 8 * 48 * 9 + 48, 8 * 8 * 9 + 8
    assert harness[2]["params"] == head + tail + 2 * rep


def test_a_missing_checkpoint_skips_only_runtime_and_quality(draft, tmp_path: Path) -> None:
    from effbench.challenge.run import challenge_cells, run_challenge

    c = replace(draft.challenge, entries=(draft.challenge.entry("07_NoCheckpoint"),), baseline=None)
    static, measured = challenge_cells(c, ("static", "memory", "runtime"))
    assert static.model["weights"] is None and static.model["after_load"] == [{"call": "repa"}]
    assert measured.model["weights"].endswith("team07_not_submitted.pth")
    run_challenge(c, tmp_path / "out", parts=("runtime",), progress=False)  # no process starts
    doc = json.loads(next((tmp_path / "out" / "cells").glob("*.json")).read_text())
    assert doc["status"] == "skipped" and "team07_not_submitted.pth not found" in doc["error"]


def test_challenge_check_repo_through_the_command_line(repo: Path, harness: dict[int, dict]) -> None:
    out = _effbench(
        "challenge", "check", "--year", "2025", f"{repo}/models/team03_ownload.py:OwnLoadNet",
        "--kwargs", '{"feats": 8}', "--weights", str(repo / "model_zoo" / "team03_ownload.pth"),
        "--data-range", "1", "--repo", str(repo), "--baseline", f"{repo}/models/team00_base.py:Base",
        "--rounds", "2", "--size", "16x16", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["passed"] and {c["check"]: c["ok"] for c in report["checks"]}["loads strictly"] is True
    assert (
        report["counts"]["params"] == harness[3]["params"]
    )  # loaded (and fused) through its own load_state_dict
    bad = _effbench(
        "challenge", "check", "--year", "2025", f"{repo}/models/team00_base.py:Base", "--repo", "/nowhere"
    )
    assert (
        bad.returncode == 2 and "--repo: the organisers' repository is not a folder: /nowhere" in bad.stderr
    )


# written the other ways a harness may tell entries apart: a registry dict, a helper function, `match`
OTHER_HARNESS = """
import importlib
import os

import torch

REGISTRY = {
    10: ("models.team00_base", "Base", {"feats": 6}, "team10.pth"),
    11: ("models.team02_rep", "RepNet", {"feats": 4}, "team11.pth"),
}


def build(module, cls, kwargs):
    net = getattr(importlib.import_module(module), cls)(**kwargs)
    return net


def select_model(args, device):
    model_id = args.model_id
    match model_id:
        case 12 | 13:
            from models.team00_base import Base

            model = torch.nn.DataParallel(Base(feats=model_id - 8))
            name, data_range = f"{model_id}_Parallel", 1.0
            model.load_state_dict(torch.load(os.path.join("model_zoo", f"team{model_id}.pth")))
            return model, name, data_range, None
        case _:
            module, cls, kwargs, ckpt = REGISTRY[model_id]
            model = build(module, cls, kwargs)
            name, data_range = f"{model_id}_{cls}", 255.0
            sd = torch.load(f"model_zoo/{ckpt}")
            model.load_state_dict(sd.get("params_ema", sd), strict=False)
            if model_id == 11:
                model.repa()
    return model, name, data_range, None
"""


def test_a_registry_a_helper_and_match_cases_are_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(DRAFT / "models", repo / "models")
    (repo / "test_demo.py").write_text(OTHER_HARNESS)
    c = draft_manifest(repo, 2024).challenge
    assert [e.name for e in c.entries] == ["10_Base", "11_RepNet", "12_Parallel", "13_Parallel"]
    base, rep, par = c.entry("10_Base"), c.entry("11_RepNet"), c.entry("13_Parallel")
    assert base.model == f"{repo}/models/team00_base.py:Base" and base.kwargs == {"feats": 6}
    assert (base.strict, base.data_range, base.weights_key) == (False, 255.0, None)  # .get("params_ema", sd)
    assert base.weights == str(repo / "model_zoo" / "team10.pth") and base.weights_missing
    assert rep.after_load == (AfterLoad("repa"),) and not base.after_load
    assert par.kwargs == {"feats": 5} and par.weights == str(repo / "model_zoo" / "team13.pth")

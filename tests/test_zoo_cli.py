"""``effbench zoo``: the zoo as a table and as JSON; unknown names exit with code 2 and the closest names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import effbench
from effbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
ISSUE_NAMES = {"imdn", "imdn_ntire", "rfdn", "e_rfdn", "latticenet", "edsr_baseline", "fmen", "fmen_s"}


def zoo_json(capsys, *argv: str) -> dict:
    assert main(["zoo", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_every_registered_model_with_params_per_scale(capsys) -> None:
    data = zoo_json(capsys)
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == set(effbench.list_models())
    assert by_name["fmen_s"]["params"] == {"4": 341_066}
    assert by_name["rlfn"]["params"] == {"4": 317_218}
    assert set(by_name["fmen"]["params"]) == {"2", "3", "4"}
    assert by_name["fmen"]["data_range"] == 255.0 and by_name["fmen"]["has_deploy_form"] is True


def test_the_issue_names_are_all_in_the_zoo(capsys) -> None:
    names = {m["name"] for m in zoo_json(capsys)["models"]}
    assert ISSUE_NAMES <= names, f"missing: {sorted(ISSUE_NAMES - names)}"


def test_checkpoint_status_follows_the_cache(
    capsys, weights_cache: Path, monkeypatch, tmp_path: Path
) -> None:
    data = zoo_json(capsys, "--model", "fmen_s", "--model", "fmen")
    assert data["weights_dir"] == str(weights_cache)
    fmen_s, fmen = data["models"]
    assert [c["status"] for c in fmen_s["checkpoints"]["4"]] == ["cached", "cached"]
    assert fmen["checkpoints"] == {"2": [], "3": [], "4": []}
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(tmp_path))
    fmen_s = zoo_json(capsys, "--model", "fmen_s")["models"][0]
    assert [c["status"] for c in fmen_s["checkpoints"]["4"]] == ["downloadable", "downloadable"]


def test_table_shows_names_params_range_and_checkpoints(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EFFBENCH_WEIGHTS_DIR", str(tmp_path))
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    for name in effbench.list_models():
        assert name in out
    assert "341,066" in out and "[0,255]" in out
    assert "x4: downloadable" in out and "x2: none" in out


@pytest.mark.parametrize("argv", [["zoo", "--model", "fmen_ss"], ["zoo", "--json", "--model", "rlnf"]])
def test_unknown_model_exits_2_with_the_closest_names(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown model" in err and "closest:" in err
    assert ("fmen_s" in err) if "fmen_ss" in argv else ("rlfn" in err)


def test_console_entry_point_runs_in_a_fresh_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "effbench", "zoo", "--json", "--model", "fmen_s"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["params"] == {"4": 341_066}

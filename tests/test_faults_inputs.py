"""Issue 25, bad inputs and full disks: each gets a clear error naming the file or value and its own exit code, and
nothing already measured is lost. A full file system under --out (a real tmpfs), --out naming a file, non-UTF-8
sweep and manifest files, impossible metric values in results, --scales 0 and absurd sizes, a challenge whose
entries failed, an empty entry name, a failing entry's 150 KB error text."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_runs import MODELS, ROOT, run_argv

from effbench.base.errors import UsageError
from effbench.base.results import load_results, new_result, validate_result, write_json_atomic
from effbench.challenge.manifest import load_manifest
from effbench.cli import main
from effbench.sweep.runner import ERROR_MAX_CHARS, cap_errors

OUTPUT_ERROR_RC = 5


def _effbench(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "effbench", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_fs(tmp_path: Path):
    """A real 2 MiB tmpfs mounted at ``tmp_path/fs`` (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip() or done.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


_FILLS = '''
import os
from torch import nn


class FillsTheDisk(nn.Module):
    """Fills the file system its result goes to, then builds nothing: the next write there fails."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        with open(os.path.join(FOLDER, "filler"), "wb", buffering=0) as f:
            for block in (65536, 4096, 1):  # to the last byte
                try:
                    while True:
                        f.write(b"x" * block)
                except OSError:
                    pass
'''


@pytest.mark.slow
def test_a_full_disk_under_out_is_a_clear_error_with_its_own_exit_code_and_no_tmp_file(
    tmp_path: Path, small_fs: Path
):
    fills = tmp_path / "fills.py"
    fills.write_text(f"FOLDER = {str(small_fs)!r}\n" + _FILLS)
    out = small_fs / "out"
    done = subprocess.run(
        run_argv(out, [f"{MODELS}:Nearest", f"{fills}:FillsTheDisk"]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == OUTPUT_ERROR_RC, done.stdout + done.stderr
    assert "no space left on the device writing" in done.stderr and "Traceback" not in done.stderr
    assert _tmp_files(small_fs) == []
    docs = {d["model"]: d for d in load_results([out / "cells"])}
    assert docs["Nearest"]["status"] == "ok"  # the cell measured before the disk filled up is kept
    if "FillsTheDisk" in docs:  # its failure fitted where its own half-written file was removed
        assert docs["FillsTheDisk"]["status"] == "error"  # its log could not be written either


def test_write_json_atomic_on_a_full_disk_raises_output_error_and_leaves_no_tmp(small_fs: Path):
    with open(small_fs / "filler", "wb", buffering=0) as f:
        for block in (65536, 4096, 1):
            try:
                while True:
                    f.write(b"x" * block)
            except OSError:
                pass
    from effbench.base.errors import OutputError

    with pytest.raises(OutputError, match=r"no space left on the device writing .*r\.json"):
        write_json_atomic(small_fs / "r.json", {"big": "y" * 200_000})
    assert _tmp_files(small_fs) == []


# ----------------------------------------------------------------------------------------------- bad files and values


def test_out_naming_a_file_is_a_usage_error_and_the_file_is_untouched(tmp_path: Path, capsys):
    f = tmp_path / "passwd"
    f.write_text("root:x:0:0::/root:/bin/bash\n")
    assert main(run_argv(f, [f"{MODELS}:Nearest"])[3:]) == 2
    assert f"--out {f} is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "root:x:0:0::/root:/bin/bash\n"


def test_a_non_utf8_sweep_file_and_manifest_are_usage_errors_naming_the_file(tmp_path: Path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_bytes(b'models = ["caf\xe9"]\n')
    assert main(["run", str(sweep), "--out", str(tmp_path / "o")]) == 2
    assert f"sweep config {sweep} is not UTF-8 text (byte 14" in capsys.readouterr().err
    manifest = tmp_path / "m.toml"
    manifest.write_bytes(b'[challenge]\nname = "caf\xe9"\nyear = 2024\n')
    assert main(["challenge", str(manifest), "--out", str(tmp_path / "o2")]) == 2
    assert f"the manifest {manifest} is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--scales", "0"], "--scales must be positive integers, got 0"),
        (["--scales", "-2"], "--scales must be positive integers, got -2"),
        (["--sizes", "99999999999x99999999999"], "the output image alone needs"),
    ],
)
def test_impossible_scales_and_sizes_are_refused_before_any_cell_runs(tmp_path: Path, extra, message, capsys):
    out = tmp_path / "o"
    argv = run_argv(out, [f"{MODELS}:Nearest"])[3:]
    if "--sizes" in extra:
        i = argv.index("--sizes")
        del argv[i : i + 2]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "cells").exists()


def test_negative_or_infinite_costs_make_a_result_invalid_and_reports_skip_it_by_name(
    tmp_path: Path, caplog, capsys
):
    good = new_result("Good", scale=4, metrics={"flops": 1e9, "runtime_ms": {"median": 2.0}, "psnr": 30.0})
    negative = new_result("Negative", scale=4, metrics={"runtime_ms": {"median": -3.0, "samples": [-3.0]}})
    infinite = new_result("Infinite", scale=4, metrics={"flops": float("inf")})
    assert validate_result(good) is None
    assert validate_result({**good, "metrics": {"psnr": float("inf")}}) is None  # identical images
    assert "runtime_ms.median is -3.0: runtime cannot be negative" in validate_result(negative)
    assert "flops is inf: FLOPs cannot be infinite" in validate_result(infinite)
    for doc in (good, negative, infinite):
        write_json_atomic(tmp_path / "cells" / f"{doc['model']}.json", doc)
    with caplog.at_level(logging.WARNING, "effbench.results"):
        assert (
            main(["report", str(tmp_path / "cells"), "--out", str(tmp_path / "rep"), "--format", "md"]) == 0
        )
    assert "Negative.json" in caplog.text and "Infinite.json" in caplog.text
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Good" in md and "Negative" not in md and "infG" not in md
    assert main(["report", str(tmp_path / "cells"), "--out", str(tmp_path / "rep2"), "--strict"]) == 2
    assert "cannot be" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- challenge


def _manifest(tmp_path: Path, entries: str) -> Path:
    m = tmp_path / "m.toml"
    m.write_text('[challenge]\nname = "t"\nyear = 2024\n\n' + entries)
    return m


@pytest.mark.slow
def test_challenge_exits_1_naming_the_failed_entries(tmp_path: Path):
    m = _manifest(
        tmp_path,
        f'[[entry]]\nname = "good"\nmodel = "{ROOT / MODELS}:Nearest"\n\n'
        f'[[entry]]\nname = "broken"\nmodel = "{ROOT / MODELS}:NoSuchClass"\n\n'
        f'[[entry]]\nname = "left_out"\nmodel = "{ROOT / MODELS}:Nearest"\nskip = "not this year"\n',
    )
    done = _effbench("challenge", str(m), "--out", str(tmp_path / "lb"), "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "1 of 3 entries failed (broken: " in done.stderr
    help_text = _effbench("challenge", "run", "--help").stdout
    assert "exit code 4" not in help_text and "(exit code 1)" in help_text


def test_an_empty_entry_name_is_refused(tmp_path: Path):
    m = _manifest(tmp_path, f'[[entry]]\nname = " "\nmodel = "{ROOT / MODELS}:Nearest"\n')
    with pytest.raises(UsageError, match=r"entry 1.*name is empty"):
        load_manifest(m)


# ----------------------------------------------------------------------------------------------- long errors


def test_cap_errors_keeps_both_ends_of_a_long_error_and_writes_the_whole_text(tmp_path: Path):
    long = "first line\n" + "x" * 150_000 + "\nlast line"
    doc = cap_errors(
        {"error": long, "partial_errors": {"static": "short", "memory": long}}, tmp_path / "e.txt"
    )
    for text in (doc["error"], doc["partial_errors"]["memory"]):
        assert len(text) < ERROR_MAX_CHARS + 300
        assert (
            text.startswith("first line") and text.endswith("last line") and str(tmp_path / "e.txt") in text
        )
    assert doc["partial_errors"]["static"] == "short"
    assert (tmp_path / "e.txt").read_text().count(long) == 2
    assert cap_errors({"error": "short"}, tmp_path / "none.txt") == {"error": "short"}
    assert not (tmp_path / "none.txt").exists()


@pytest.mark.slow
def test_a_noisy_failing_cell_keeps_its_error_short_and_the_whole_text_in_a_file(tmp_path: Path):
    noisy = tmp_path / "noisy.py"
    noisy.write_text(
        "from torch import nn\n\n\nclass Noisy(nn.Module):\n    def __init__(self, scale: int = 4) -> None:\n"
        "        super().__init__()\n        raise RuntimeError('start ' + 'blah ' * 30000 + ' end')\n"
    )
    out = tmp_path / "o"
    done = subprocess.run(
        run_argv(out, [f"{noisy}:Noisy"]), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    (doc,) = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert doc["status"] == "error" and len(doc["error"]) < ERROR_MAX_CHARS + 300
    assert "characters cut; the whole text is in" in doc["error"] and doc["error"].rstrip().endswith("end")
    (full,) = (out / "logs").glob("*.error.txt")
    assert "blah " * 30000 in full.read_text() and str(full) in doc["error"]


# ----------------------------------------------------------------------------------------------- legacy pickles


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_legacy_format_code_running_pickle_is_named_as_such_and_nothing_runs(tmp_path: Path):
    import torch

    from effbench.base.errors import CheckpointError
    from effbench.zoo.weights import read_state_dict

    marker = tmp_path / "ran"
    evil, plain = tmp_path / "evil.pth", tmp_path / "plain.pth"
    torch.save({"w": torch.zeros(3), "x": _RunsCode(marker)}, evil, _use_new_zipfile_serialization=False)
    torch.save({"w": torch.ones(3)}, plain, _use_new_zipfile_serialization=False)
    assert not evil.read_bytes().startswith(b"PK")  # the legacy format: pickles in a row, not a zip archive
    with pytest.raises(
        CheckpointError, match=r"would import and run code \(it refers to (posix|os)\.system\)"
    ):
        read_state_dict(evil)
    assert not marker.exists()
    assert list(read_state_dict(plain)) == ["w"]


def test_scales_in_a_sweep_file_are_checked_like_the_flag(tmp_path: Path, capsys):
    words, zero = tmp_path / "words.toml", tmp_path / "zero.toml"
    words.write_text('scales = ["x4"]\n')
    zero.write_text(f'scales = [0]\nmodels = ["{MODELS}:Nearest"]\n')
    assert main(["run", str(words), "--out", str(tmp_path / "o")]) == 2
    assert "scales must be an integer or a list of integers, got ['x4']" in capsys.readouterr().err
    assert main(["run", str(zero), "--out", str(tmp_path / "o")]) == 2
    assert "--scales must be positive integers, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

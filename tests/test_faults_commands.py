"""Issue 25, single commands: profile, bench, memory and eval run model code in a supervised forked process and
judge it as sweeps do. A model that calls sys.exit(0) or os._exit(0) in forward is an error with exit code 6 (not
a silent success); --timeout is a hard limit even for a forward that swallows every exception; what the model
started is killed and named. eval keeps and prints what it scored, names a too-small, a decompression-bomb-sized
or a 16-bit image (grey and RGB alike) and skips each of them with --skip-bad."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODEL_EXITED_RC = 6
TIMEOUT_RC = 4

MODELS = '''
import os
import subprocess
import sys
import time

from torch import nn


class Tiny(nn.Module):
    def __init__(self, scale=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.up(self.conv(x))


class Chatty(Tiny):
    """Prints 140 KB of two-byte characters while it is built (more than a pipe holds, split between reads)."""

    def __init__(self, scale=4):
        super().__init__(scale)
        print("\u00e9" * 70000)


class SysExit(Tiny):
    def forward(self, x):
        sys.exit(0)


class HardExit(Tiny):
    def forward(self, x):
        os._exit(0)


class Swallows(Tiny):
    """Sleeps for ever and swallows every exception, the timeout's included."""

    def forward(self, x):
        while True:
            try:
                time.sleep(0.05)
            except BaseException:
                pass


class Daemon(Tiny):
    """Starts a child in a session of its own that would sleep for ever, and writes its PID down."""

    def forward(self, x):
        if not getattr(self, "started", False):
            self.started = True
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"], start_new_session=True)
            with open(os.environ["EFFBENCH_TEST_PIDS"], "a") as f:
                f.write(f"{p.pid}\\n")
        return super().forward(x)
'''


@pytest.fixture()
def models(tmp_path: Path) -> str:
    f = tmp_path / "fault_models.py"
    f.write_text(MODELS)
    return str(f)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _images(folder: Path, names: list[str], size: tuple[int, int] = (32, 32)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{n}.png")


def _png(path: Path, width: int, height: int, depth: int, colour: int, pixels: np.ndarray | None) -> None:
    """A PNG written byte by byte: any bit depth, or a header that claims a size with no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = b""
    if pixels is not None:
        rows = pixels.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1)
        data = zlib.compress(b"".join(b"\x00" + r.tobytes() for r in rows))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


# ----------------------------------------------------------------------------------------------- a model that exits


@pytest.mark.parametrize("model", ["SysExit", "HardExit"])
@pytest.mark.parametrize(
    "command",
    [
        ["profile", "--size", "8x8", "--json"],
        ["bench", "--size", "8x8", "--device", "cpu", "--repeats", "2", "--json"],
        ["memory", "--size", "8x8", "--json"],
    ],
    ids=["profile", "bench", "memory"],
)
def test_a_model_that_ends_the_process_is_an_error_with_its_own_exit_code(models, model, command, capsys):
    rc = main([command[0], f"{models}:{model}", *command[1:]])
    out, err = capsys.readouterr()
    assert rc == MODEL_EXITED_RC, err
    assert out == ""  # no document: nothing a CI step could read as a result
    assert f"effbench {command[0]}: error: {command[0]} of {models}:{model} did not finish" in err
    assert ("sys.exit(0)" if model == "SysExit" else "ended with exit code 0") in err


def test_eval_of_a_model_that_exits_is_an_error_too(models, tmp_path, capsys):
    _images(tmp_path / "set" / "HR", ["a"])
    rc = main(["eval", f"{models}:SysExit", "--dataset", str(tmp_path / "set"), "--json"])
    out, err = capsys.readouterr()
    assert rc == MODEL_EXITED_RC and out == "" and "called sys.exit(0)" in err


def test_a_working_model_still_prints_its_document_through_the_fork(models, capsys):
    assert main(["profile", f"{models}:Tiny", "--size", "8x8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["convs"] == 1 and doc["model"] == "Tiny"


def test_what_the_model_prints_comes_through_the_fork_whole_and_off_the_json_stdout(models, capsys):
    assert main(["profile", f"{models}:Chatty", "--size", "8x8", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["convs"] == 1
    assert err.count("\u00e9") == 70000 and "\ufffd" not in err


# ----------------------------------------------------------------------------------------------- hard timeout


@pytest.mark.parametrize("command", ["bench", "profile"])
def test_timeout_is_a_hard_limit_for_a_forward_that_swallows_every_exception(models, command):
    argv = [
        sys.executable,
        "-m",
        "effbench",
        command,
        f"{models}:Swallows",
        "--size",
        "8x8",
        "--timeout",
        "3",
    ]
    if command == "bench":
        argv += ["--device", "cpu", "--repeats", "2"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == TIMEOUT_RC, done.stderr
    assert f"{command} of {models}:Swallows timed out after 3 s" in done.stderr
    assert "Traceback" not in done.stderr


def test_what_the_model_started_is_killed_and_named(models, tmp_path, capsys, monkeypatch):
    pids = tmp_path / "pids.txt"
    monkeypatch.setenv("EFFBENCH_TEST_PIDS", str(pids))
    try:
        assert main(["bench", f"{models}:Daemon", "--size", "8x8", "--device", "cpu", "--repeats", "2"]) == 0
        err = capsys.readouterr().err
        started = [int(p) for p in pids.read_text().split()]  # one per copy of the model that ran
        assert started and not any(_alive(p) for p in started)
        assert f"killed {len(started)} process(es) the model left running: PID {started[0]}" in err
    finally:
        for p in pids.read_text().split() if pids.exists() else []:
            if _alive(int(p)):
                os.kill(int(p), signal.SIGKILL)


# ----------------------------------------------------------------------------------------------- eval's bad images


@pytest.fixture()
def bad_images(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A data set of good images a, c, e, g and four bad ones: too small, too large, 16-bit grey, 16-bit RGB."""
    hr = tmp_path / "set" / "HR"
    _images(hr, ["a", "c", "e", "g"])
    rng = np.random.default_rng(1)
    bad = {
        "b": hr / "b.png",  # 6x7: 4x4 after the x4 crop, inside a border of 4
        "d": hr / "d.png",  # 20000x20000 in the header: past PIL's decompression-bomb limit
        "f": hr / "f.png",  # 16-bit grey
        "h": hr / "h.png",  # 16-bit RGB
    }
    Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(bad["b"])
    _png(bad["d"], 20000, 20000, 8, 2, None)
    _png(bad["f"], 32, 32, 16, 0, rng.integers(0, 65536, (32, 32)))
    _png(bad["h"], 32, 32, 16, 2, rng.integers(0, 65536, (32, 32, 3)))
    return tmp_path / "set", bad


def test_eval_stops_at_the_first_bad_image_naming_it_and_prints_what_it_scored(models, bad_images, capsys):
    folder, bad = bad_images
    rc = main(["eval", f"{models}:Tiny", "--dataset", str(folder), "--json"])
    out, err = capsys.readouterr()
    assert rc == 2 and str(bad["b"]) in err and "too small to score" in err and "Traceback" not in err
    doc = json.loads(out)
    assert [r["name"] for r in doc["images"]] == ["a"]


def test_eval_skip_bad_skips_every_unusable_image_with_the_reason(models, bad_images, capsys):
    folder, bad = bad_images
    rc = main(["eval", f"{models}:Tiny", "--dataset", str(folder), "--json", "--skip-bad"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert [r["name"] for r in doc["images"]] == ["a", "c", "e", "g"]
    reasons = {Path(s["path"]).stem: s["error"] for s in doc["skipped"]}
    assert set(reasons) == set(bad)
    assert "too small to score" in reasons["b"] and "too large to read safely" in reasons["d"]
    # 16-bit grey and 16-bit RGB are handled the same way: both refused, naming the bit depth
    assert "more than 8 bits per channel" in reasons["f"] and "more than 8 bits per channel" in reasons["h"]


def test_where_cuda_is_initialised_already_the_work_runs_here_and_sys_exit_is_still_an_error(
    models, monkeypatch, capsys
):
    from effbench.commands import _isolate

    monkeypatch.setattr(_isolate, "_cuda_initialised", lambda: True)  # a forked child could not use CUDA
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked although CUDA is initialised"))
    assert main(["profile", f"{models}:SysExit", "--size", "8x8", "--json"]) == MODEL_EXITED_RC
    assert "called sys.exit(0)" in capsys.readouterr().err
    assert main(["profile", f"{models}:Tiny", "--size", "8x8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["convs"] == 1

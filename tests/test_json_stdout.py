"""Every ``--json`` command's stdout is exactly its JSON document, even when the model file prints at import, in
its constructor and in forward (the prints go to stderr)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = """
import torch.nn as nn
print("model file: imported")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        print("model file: building")
        self.conv = nn.Conv2d(3, 48, 3, 1, 1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        print("model file: forward")
        return self.up(self.conv(x))
"""


@pytest.mark.parametrize(
    "command",
    [
        ["profile", "{spec}", "--size", "32x32"],
        ["memory", "{spec}", "--size", "32x32"],
        ["bench", "{spec}", "--size", "16x16", "--repeats", "3"],
    ],
    ids=lambda c: c[0],
)
def test_json_stdout_is_only_the_document(command: list[str], tmp_path: Path) -> None:
    model = tmp_path / "printing_model.py"
    model.write_text(MODEL)
    args = [a.format(spec=f"{model}:Net") for a in command]
    out = subprocess.run(
        [sys.executable, "-m", "effbench", *args, "--json"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    json.loads(out.stdout)  # nothing but the document
    assert "model file: building" in out.stderr

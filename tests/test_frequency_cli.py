"""``effbench psd`` end to end, and the study's machinery on the real checkpoint and images of ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effbench.cli import main
from effbench.frequency import psd

USER_MODEL = '''
import torch
from torch import nn


class Sharpener(nn.Module):
    """conv -> x - Laplacian(x) -> conv; a sharpening block the PSD must show raising high frequencies."""

    data_range = 1.0

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 4, 1)
        self.body = nn.Sequential(Lap())
        self.tail = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))


class Lap(nn.Module):
    def forward(self, x):
        k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).expand(x.shape[1], 1, 3, 3)
        return x - nn.functional.conv2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1])
'''


@pytest.fixture()
def user_model(tmp_path: Path) -> str:
    f = tmp_path / "sharp.py"
    f.write_text(USER_MODEL)
    return f"{f}:Sharpener"


@pytest.fixture()
def lr_folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate([(40, 48), (48, 40), (44, 44)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    return d


def test_cli_writes_json_and_both_figures(user_model: str, lr_folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    rc = main(
        ["psd", user_model, "--dataset", str(lr_folder), "--lr", "--out", str(out), "--json", "--remove-mean"]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "effbench.result/1" and doc["model"] == "Sharpener"
    (blk,) = doc["psd"]["blocks"]
    assert blk["name"] == "body.0" and blk["n_images"] == 3 and blk["strengthens_high"] is True
    assert len(blk["freqs"]) == 21  # the smallest map is 40 px: rings 0..20
    assert sum(blk["input_curve"]) == pytest.approx(1.0)
    assert {p.name for p in out.iterdir()} == {
        "psd_Sharpener_x4.json",
        "psd_Sharpener_x4_curves.png",
        "psd_Sharpener_x4_maps.png",
    }


def test_cli_table_and_usage_errors(user_model: str, lr_folder: Path, tmp_path: Path, capsys) -> None:
    rc = main(
        [
            "psd",
            user_model,
            "--dataset",
            str(lr_folder),
            "--lr",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
            "--modules",
            "body.0",
            "--max-images",
            "1",
            "--tile",
            "32",
        ]
    )
    assert rc == 0
    assert "body.0" in capsys.readouterr().out
    assert main(["psd", user_model, "--dataset", str(lr_folder), "--modules", "nothing*", "--lr"]) == 2
    assert "matches 'nothing*'" in capsys.readouterr().err
    assert main(["psd", user_model, "--dataset", str(tmp_path / "nope")]) == 2
    assert "data set folder not found" in capsys.readouterr().err


@pytest.mark.shared
def test_hr_only_folder_makes_lr_with_imresize(user_model: str, data_dir: Path) -> None:
    """B100-68 is HR only (481 x 321 or 321 x 481): the x4 LR input is 120 x 80 (or 80 x 120), 40 rings."""
    res = psd(user_model, data_dir / "B100-68", max_images=1, progress=False)
    assert "imresize" in res.source
    b = res["body.0"]
    assert len(b.freqs) == 41 and sorted(b.input_map.shape) == [80, 120]


@pytest.mark.shared
def test_fmen_s_official_checkpoint_default_blocks_are_its_five_hfabs(
    weights_dir: Path, data_dir: Path
) -> None:
    import effbench

    model = effbench.create_model("fmen_s", scale=4, weights=str(weights_dir / "ntire22_team03_fmen.pth"))
    res = psd(model, data_dir / "Set5", max_images=1, progress=False)
    assert "given LR x4" in res.source and res.data_range == 255.0
    assert [b.name for b in res.blocks] == ["warmup.1", "HFABs.0", "HFABs.1", "HFABs.2", "HFABs.3"]
    for b in res.blocks:
        assert b.input_curve.sum() == pytest.approx(1.0) and b.output_curve.sum() == pytest.approx(1.0)
        assert b.input_map.shape == b.output_map.shape == (128, 128)  # baby x4 LR is 128 x 128
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())

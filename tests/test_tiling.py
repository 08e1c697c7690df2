"""Tiled inference (the NTIRE harness's tile/E/W arithmetic): equal to the whole-image forward for a pointwise
model, the tile offsets as the harness lays them, clear errors for bad tiles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effbench.base.errors import ModelError, UsageError
from effbench.quality.tiling import tile_starts, tiled_forward


def _pointwise() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 3 * 16, 1), nn.PReLU(), nn.PixelShuffle(4)).eval()


def test_tile_offsets_step_by_tile_minus_overlap_and_end_at_the_edge() -> None:
    assert tile_starts(100, 48, 16) == [0, 32, 52]
    assert tile_starts(64, 64, 32) == [0]
    assert tile_starts(65, 64, 32) == [0, 1]


@pytest.mark.parametrize(("tile", "overlap"), [(16, 4), (24, 8), (40, 0), (500, 32)])
def test_tiled_output_equals_the_whole_image_for_a_pointwise_model(tile: int, overlap: int) -> None:
    model = _pointwise()
    x = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        whole = model(x)
    tiled = tiled_forward(model, x, tile, overlap=overlap, scale=4)
    assert tiled.shape == whole.shape == (1, 3, 148, 180)
    torch.testing.assert_close(tiled, whole, rtol=1e-6, atol=1e-6)


def test_tiles_really_cut_the_image() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 48, 5, padding=2), nn.PixelShuffle(4)).eval()  # sees its neighbours
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        whole = model(x)
    assert not torch.allclose(tiled_forward(model, x, 12, overlap=2), whole, atol=1e-4)
    assert torch.equal(tiled_forward(model, x, None), whole)


def test_bad_tiles_are_refused() -> None:
    model, x = _pointwise(), torch.rand(1, 3, 16, 16)
    with pytest.raises(UsageError, match="larger than the overlap"):
        tiled_forward(model, x, 8, overlap=8)
    with pytest.raises(UsageError, match="tile must be positive"):
        tiled_forward(model, x, 0)
    with pytest.raises(ModelError, match="not x2"):
        tiled_forward(model, x, 8, overlap=2, scale=2)

"""Tiled inference as the NTIRE ESR harnesses run it (``test_demo.py``'s ``forward(img_lq, model, tile,
tile_overlap, scale)``): overlapping square tiles, each super-resolved alone, summed into an accumulator ``E``
with a count of contributions ``W``, and the output ``E / W``.

Tiles start every ``tile - overlap`` pixels, and a last tile is aligned with the far edge, so every pixel is
covered and the overlaps are averaged. The tile is clipped to the image (``min(tile, H, W)``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..base.errors import ModelError, UsageError


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """The offsets of the tiles along one side of ``size`` pixels (the harness's ``range(0, size - tile, stride)``
    plus ``size - tile``)."""
    stride = tile - overlap
    if stride <= 0:
        raise UsageError(f"the tile ({tile}) must be larger than the overlap ({overlap})")
    return [*range(0, size - tile, stride), size - tile]


@torch.no_grad()
def tiled_forward(
    model: nn.Module, x: torch.Tensor, tile: int | None, overlap: int = 32, scale: int = 4
) -> torch.Tensor:
    """``model(x)`` computed tile by tile for a ``B x C x H x W`` input (``tile=None``: the whole image at once).

    Each ``tile x tile`` patch's ``scale``-times output is added into its place and divided by how many patches
    covered each output pixel, in the harness's order and arithmetic. Raises :class:`UsageError` for a
    non-positive tile or an overlap not smaller than it, :class:`ModelError` when a patch's output is not
    ``scale`` times the patch.
    """
    if tile is None:
        return model(x)
    if tile <= 0 or overlap < 0:
        raise UsageError(
            f"tile must be positive and overlap non-negative, got tile={tile}, overlap={overlap}"
        )
    b, _, h, w = x.shape
    tile = min(tile, h, w)
    acc: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    for i in tile_starts(h, tile, overlap):
        for j in tile_starts(w, tile, overlap):
            out = model(x[..., i : i + tile, j : j + tile])
            if tuple(out.shape[-2:]) != (tile * scale, tile * scale):
                got = "x".join(map(str, out.shape[-2:]))
                raise ModelError(f"a {tile}x{tile} tile gave a {got} output, not x{scale}")
            if acc is None:
                acc = torch.zeros(b, out.shape[1], h * scale, w * scale, dtype=out.dtype, device=out.device)
                weight = torch.zeros_like(acc)
            region = (..., slice(i * scale, (i + tile) * scale), slice(j * scale, (j + tile) * scale))
            acc[region].add_(out)
            weight[region].add_(torch.ones_like(out))  # type: ignore[index]
    assert acc is not None and weight is not None  # at least one tile
    return acc.div_(weight)


class Tiled(nn.Module):
    """``model`` run tile by tile (:func:`tiled_forward`) as one module, so every measurement of it (timing,
    PSNR, predicted memory) sees the tiled inference the organisers ran for an entry measured that way."""

    def __init__(self, model: nn.Module, tile: int, overlap: int = 32, scale: int = 4) -> None:
        super().__init__()
        if tile <= overlap:
            raise UsageError(f"the tile ({tile}) must be larger than the overlap ({overlap})")
        self.model, self.tile, self.overlap, self.scale = model, tile, overlap, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tiled_forward(self.model, x, self.tile, self.overlap, self.scale)

    def extra_repr(self) -> str:
        return f"tile={self.tile}, overlap={self.overlap}, scale={self.scale}"

"""How :func:`effbench.psd` sees a block: hooks capturing each block's channel-averaged input and output maps
(:class:`BlockCapture`), an image run tile by tile (:func:`tile_boxes`, :func:`run_image`), and the per-image
curves combined into a :class:`~effbench.frequency.block_psd.BlockPSD` (:func:`combine`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..base.errors import EffbenchError, ModelError, UsageError
from .block_psd import BlockPSD
from .spectrum import frequency_axis, high_share, normalised_curve, resample_curve

__all__ = ["BlockCapture", "combine", "mean_curve", "run_image", "tile_boxes"]


def tile_boxes(h: int, w: int, tile: int | None) -> list[tuple[int, int, int, int]]:
    """Tiles ``(y0, x0, th, tw)`` covering an H x W image: a regular grid of ``tile`` x ``tile`` squares whose
    last row/column is shifted back to end at the border, so every tile has the same size (they overlap a
    little). An image no larger than ``tile`` is one tile."""
    if tile is None:
        return [(0, 0, h, w)]
    if tile < 8:
        raise UsageError(f"tile must be at least 8 pixels, got {tile}")
    th, tw = min(tile, h), min(tile, w)

    def starts(n: int, t: int) -> list[int]:
        s = list(range(0, n - t + 1, t))
        if s[-1] + t < n:
            s.append(n - t)
        return s

    return [(y, x, th, tw) for y in starts(h, th) for x in starts(w, tw)]


class BlockCapture:
    """Hooks storing the channel-averaged input (pre-hook, so in-place edits in the block cannot alter it) and
    output (forward hook) map of each block, for batch size 1."""

    def __init__(self, blocks: list[tuple[str, nn.Module]]):
        self.blocks = blocks
        self.maps: dict[str, list[tuple[Tensor, Tensor]]] = {n: [] for n, _ in blocks}
        self.pending: dict[str, list[Tensor]] = {n: [] for n, _ in blocks}
        self.handles: list[RemovableHandle] = []

    @staticmethod
    def _channel_mean(name: str, module: nn.Module, what: str, t: object) -> Tensor:
        if isinstance(t, (tuple, list)):
            t = next((o for o in t if isinstance(o, Tensor)), None)
        if not isinstance(t, Tensor) or t.ndim != 4 or t.shape[0] != 1:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ModelError(
                f"block {name!r} ({type(module).__name__}): its {what} is not a 1 x C x H x W feature map "
                f"(got {shape}); choose a block that maps feature maps to feature maps"
            )
        return t[0].detach().float().mean(0)

    def _pre_hook(self, name: str) -> Callable[[nn.Module, tuple[object, ...]], None]:
        def hook(module: nn.Module, args: tuple[object, ...]) -> None:
            self.pending[name].append(self._channel_mean(name, module, "input", args[0] if args else None))

        return hook

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[object, ...], object], None]:
        def hook(module: nn.Module, args: tuple[object, ...], output: object) -> None:
            xin = self.pending[name].pop()
            self.maps[name].append((xin, self._channel_mean(name, module, "output", output)))

        return hook

    def __enter__(self) -> BlockCapture:
        try:
            for name, mod in self.blocks:
                self.handles.append(mod.register_forward_pre_hook(self._pre_hook(name)))
                self.handles.append(mod.register_forward_hook(self._hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def take(self) -> dict[str, list[tuple[Tensor, Tensor]]]:
        out = self.maps
        self.maps = {n: [] for n, _ in self.blocks}
        self.pending = {n: [] for n, _ in self.blocks}
        return out


def run_image(
    model: nn.Module,
    img: Tensor,
    tile: int | None,
    cap: BlockCapture,
    model_name: str,
    img_name: str,
    remove_mean: bool = False,
) -> dict[str, tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]]:
    """Run one image (tile by tile); per block: the per-tile (input, output) curves and the stitched maps."""
    _, _, h, w = img.shape
    tiles: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    canvas: dict[str, list[np.ndarray]] = {}
    for y0, x0, th, tw in tile_boxes(h, w, tile):
        try:
            with torch.inference_mode():
                model(img[:, :, y0 : y0 + th, x0 : x0 + tw])
        except EffbenchError:
            raise
        except Exception as exc:
            raise ModelError(
                f"{model_name} failed on {img_name} (tile {th}x{tw} at {y0},{x0}): {type(exc).__name__}: {exc}"
            ) from exc
        for bname, calls in cap.take().items():
            if not calls:
                raise ModelError(f"block {bname!r} was not called during the forward pass of {model_name}")
            for xin, xout in calls:
                cin, cout = normalised_curve(xin, remove_mean), normalised_curve(xout, remove_mean)
                tiles.setdefault(bname, []).append((cin, cout))
            xin, xout = calls[0]
            maps = canvas.get(bname)
            if maps is None:
                fh, fw = xin.shape
                maps = canvas[bname] = [
                    np.zeros((round(h * fh / th), round(w * fw / tw)), np.float32),
                    np.zeros((round(h * xout.shape[0] / th), round(w * xout.shape[1] / tw)), np.float32),
                ]
            for k, m in enumerate((xin, xout)):
                mh, mw = m.shape
                oy, ox = round(y0 * mh / th), round(x0 * mw / tw)
                dst = maps[k][oy : oy + mh, ox : ox + mw]
                dst[...] = m.cpu().numpy()[: dst.shape[0], : dst.shape[1]]
    for bname, cur in tiles.items():
        if any(np.isnan(c).any() for pair in cur for c in pair):
            raise ModelError(f"block {bname!r} gave an all-zero or non-finite feature map on {img_name}")
    return {b: (tiles[b], (canvas[b][0], canvas[b][1])) for b in tiles}


def mean_curve(curves: list[np.ndarray]) -> np.ndarray:
    """Average of normalised curves (resampled to the shortest one first when their lengths differ)."""
    n_rings = min(len(c) for c in curves) - 1
    return np.mean([resample_curve(c, n_rings) for c in curves], axis=0)


def combine(
    name: str,
    kind: str,
    per_image: list[tuple[np.ndarray, np.ndarray]],
    split: float,
    maps: tuple[np.ndarray, np.ndarray] | None,
) -> BlockPSD:
    n_rings = min(min(len(ci), len(co)) for ci, co in per_image) - 1
    cin = np.stack([resample_curve(ci, n_rings) for ci, _ in per_image])
    cout = np.stack([resample_curve(co, n_rings) for _, co in per_image])
    up = sum(high_share(a, split) < high_share(b, split) for a, b in zip(cin, cout))
    return BlockPSD(
        name=name,
        kind=kind,
        freqs=frequency_axis(n_rings),
        input_curve=cin.mean(0),
        output_curve=cout.mean(0),
        input_std=cin.std(0),
        output_std=cout.std(0),
        split=split,
        n_images=len(per_image),
        images_high_up=int(up),
        input_map=maps[0] if maps else None,
        output_map=maps[1] if maps else None,
    )

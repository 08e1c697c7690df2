"""The power-spectrum study of the FMEN paper (Sec. 4.3, Fig. 6-8) for any block of any model."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..base.errors import EffbenchError, ModelError, UsageError
from ..base.identity import ModelIdentity
from ..zoo.spec import ModelSpec, resolve_model
from .select import ModuleSelector, select_modules
from .sources import InputSource, array_inputs, dataset_inputs
from .spectrum import frequency_axis, high_share, normalised_curve, resample_curve

AVERAGING = (
    "Each captured feature map is averaged over channels; its centred power spectrum is averaged over rings of "
    "normalised radial frequency (ring k of R = min(H, W) // 2 holds round(R * rho) == k, rho = 1 at Nyquist) and "
    "divided by its sum. Tiles of one image: their normalised curves are averaged into the image's curve. "
    "Images: each image's curve is resampled (linear interpolation, renormalised) onto the rings of the "
    "smallest feature map, then the per-image normalised curves are averaged with equal weight. Shares are "
    "sums of the averaged curve over rings with k / R > split (high) and <= split (low)."
)


@dataclass
class BlockPSD:
    """Input and output spectra of one block, averaged over the data set."""

    name: str
    kind: str
    freqs: np.ndarray
    input_curve: np.ndarray
    output_curve: np.ndarray
    input_std: np.ndarray
    output_std: np.ndarray
    split: float
    n_images: int
    images_high_up: int  # images whose output high share exceeds their input high share
    input_map: np.ndarray | None = None
    output_map: np.ndarray | None = None

    @property
    def input_high(self) -> float:
        return high_share(self.input_curve, self.split)

    @property
    def output_high(self) -> float:
        return high_share(self.output_curve, self.split)

    @property
    def input_low(self) -> float:
        return 1.0 - self.input_high

    @property
    def output_low(self) -> float:
        return 1.0 - self.output_high

    @property
    def high_gain(self) -> float:
        """Output minus input high-frequency share (positive: the block strengthens high frequencies)."""
        return self.output_high - self.input_high

    @property
    def strengthens_high(self) -> bool:
        """The paper's first observation for this block: low frequencies suppressed, high ones strengthened."""
        return self.high_gain > 0

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "class": self.kind,
            "n_images": self.n_images,
            "split": self.split,
            "input_high_share": self.input_high,
            "output_high_share": self.output_high,
            "input_low_share": self.input_low,
            "output_low_share": self.output_low,
            "high_share_gain": self.high_gain,
            "strengthens_high": self.strengthens_high,
            "images_high_share_up": self.images_high_up,
        }
        if curves:
            d.update(
                freqs=self.freqs.tolist(),
                input_curve=self.input_curve.tolist(),
                output_curve=self.output_curve.tolist(),
                input_std=self.input_std.tolist(),
                output_std=self.output_std.tolist(),
            )
        return d


@dataclass
class PSDResult:
    """What :func:`psd` measured: one :class:`BlockPSD` per selected block, in model order."""

    model: str
    spec: str
    scale: int
    split: float
    tile: int | None
    device: str
    data_range: float
    images: list[str]
    source: str
    selection: str
    blocks: list[BlockPSD] = field(default_factory=list)
    preview_image: str | None = None
    remove_mean: bool = False
    averaging: str = AVERAGING
    identity: ModelIdentity | None = None

    def __getitem__(self, name: str) -> BlockPSD:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"no block {name!r}; blocks: {', '.join(b.name for b in self.blocks)}")

    def __len__(self) -> int:
        return len(self.blocks)

    def to_frame(self):
        """One row per block: shares of input and output below/above the split, gain and verdict."""
        import pandas as pd

        return pd.DataFrame([b.to_dict(curves=False) for b in self.blocks])

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """A result document (schema ``effbench.result/1``) with the study under ``"psd"``."""
        from ..base.results import new_result

        metrics = {f"psd.{b.name}.input_high_share": b.input_high for b in self.blocks}
        metrics.update({f"psd.{b.name}.output_high_share": b.output_high for b in self.blocks})
        return new_result(
            self.model,
            self.spec,
            identity=self.identity.as_dict() if self.identity else None,
            scale=self.scale,
            device=self.device,
            dtype="fp32",
            protocol=None,
            convention=None,
            metrics=metrics,
            psd={
                "split": self.split,
                "tile": self.tile,
                "data_range": self.data_range,
                "source": self.source,
                "selection": self.selection,
                "remove_mean": self.remove_mean,
                "n_images": len(self.images),
                "images": self.images,
                "preview_image": self.preview_image,
                "averaging": self.averaging,
                "blocks": [b.to_dict(curves=curves) for b in self.blocks],
            },
        )

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PSDResult:
        """Rebuild a result from :meth:`to_dict` output (curves included; the preview maps are not stored)."""
        try:
            p = doc["psd"]
            blocks = [
                BlockPSD(
                    name=b["name"],
                    kind=b["class"],
                    freqs=np.asarray(b["freqs"]),
                    input_curve=np.asarray(b["input_curve"]),
                    output_curve=np.asarray(b["output_curve"]),
                    input_std=np.asarray(b["input_std"]),
                    output_std=np.asarray(b["output_std"]),
                    split=float(b["split"]),
                    n_images=int(b["n_images"]),
                    images_high_up=int(b["images_high_share_up"]),
                )
                for b in p["blocks"]
            ]
            return cls(
                model=doc["model"],
                spec=doc["spec"],
                scale=int(doc["scale"]),
                split=float(p["split"]),
                tile=p["tile"],
                device=doc["device"],
                data_range=float(p["data_range"]),
                images=list(p["images"]),
                source=p["source"],
                selection=p["selection"],
                blocks=blocks,
                preview_image=p.get("preview_image"),
                remove_mean=bool(p.get("remove_mean", False)),
                averaging=p.get("averaging", AVERAGING),
            )
        except (KeyError, TypeError) as exc:
            raise UsageError(f"not a psd result document (missing {exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> PSDResult:
        """Read a result written by :meth:`save_json`."""
        import json

        return cls.from_dict(json.loads(Path(path).read_text()))

    def save_json(self, path: str | Path) -> Path:
        from ..base.results import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    def plot_curves(self, path: str | Path | None = None, log: bool = True):
        """Fig. 6 style: one panel per block, input and output curves on a shared axis."""
        from .plots import plot_curves

        return plot_curves(self, path, log=log)

    def plot_maps(self, path: str | Path | None = None):
        """Fig. 8 style: the channel-averaged input and output maps of the preview image, normalised for display."""
        from .plots import plot_maps

        return plot_maps(self, path)


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


class _Capture:
    """Hooks storing the channel-averaged input (pre-hook, so in-place edits in the block cannot alter it) and
    output (forward hook) map of each block, for batch size 1."""

    def __init__(self, blocks: list[tuple[str, nn.Module]]):
        self.blocks = blocks
        self.maps: dict[str, list[tuple[Tensor, Tensor]]] = {n: [] for n, _ in blocks}
        self.pending: dict[str, list[Tensor]] = {n: [] for n, _ in blocks}
        self.handles: list[Any] = []

    @staticmethod
    def _channel_mean(name: str, module: nn.Module, what: str, t: Any) -> Tensor:
        if isinstance(t, (tuple, list)):
            t = next((o for o in t if isinstance(o, Tensor)), None)
        if not isinstance(t, Tensor) or t.ndim != 4 or t.shape[0] != 1:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ModelError(
                f"block {name!r} ({type(module).__name__}): its {what} is not a 1 x C x H x W feature map "
                f"(got {shape}); choose a block that maps feature maps to feature maps"
            )
        return t[0].detach().float().mean(0)

    def _pre_hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            self.pending[name].append(self._channel_mean(name, module, "input", args[0] if args else None))

        return hook

    def _hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            xin = self.pending[name].pop()
            self.maps[name].append((xin, self._channel_mean(name, module, "output", output)))

        return hook

    def __enter__(self) -> _Capture:
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


def _progress(enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def psd(
    model_or_spec: nn.Module | str | ModelSpec,
    images_or_dataset: str | Path | Sequence[np.ndarray | Tensor],
    modules: ModuleSelector = None,
    split: float = 0.5,
    tile: int | None = None,
    device: str | torch.device = "cpu",
    data_range: float | None = None,
    progress: bool = True,
    *,
    scale: int = 4,
    weights: str | None = None,
    max_images: int | None = None,
    lr: bool = False,
    preview: int = 0,
    remove_mean: bool = False,
) -> PSDResult:
    """Radially averaged power spectra of the inputs and outputs of a model's blocks (FMEN paper, Sec. 4.3).

    For each selected block (``modules``: see :func:`effbench.frequency.select_modules`; default: every HFAB of
    FMEN / FMEN-S, the family's attention blocks for other zoo models, else the top-level body blocks) the
    block's input and output are captured with forward hooks (removed afterwards), averaged over channels, and
    turned into PSD curves (:mod:`effbench.frequency.spectrum`), averaged over all images as described in
    :data:`AVERAGING`. ``images_or_dataset`` is a data set folder (HR-only: LR made with
    :func:`effbench.imresize`; or ``LR_bicubic/X{scale}``; ``lr=True``: the folder's images are LR already)
    or a list of images (uint8 mapped to the model's ``data_range``; floats used as given). ``tile`` runs the
    model on ``tile`` x ``tile`` LR tiles (per-tile curves averaged per image). ``split`` is the high/low
    boundary as a fraction of Nyquist. ``preview`` picks the image whose maps are kept for Fig. 8.
    ``remove_mean=True`` subtracts each map's mean before the FFT (no DC in the curves; default: kept).
    """
    if not 0.0 < split < 1.0:
        raise UsageError(f"split must be a fraction of the Nyquist frequency in (0, 1), got {split}")
    resolved = resolve_model(model_or_spec, scale=scale, weights=weights)
    model, ident = resolved.model, resolved.identity
    name = ident.name
    data_range = ident.data_range if data_range is None else data_range
    if isinstance(images_or_dataset, (str, Path)):
        if data_range is None:
            raise UsageError(f"cannot tell the data range of {name}; pass data_range= (1.0 or 255.0)")
        source: InputSource = dataset_inputs(
            images_or_dataset, scale=scale, data_range=data_range, lr=lr, max_images=max_images
        )
    else:
        if isinstance(images_or_dataset, (np.ndarray, Tensor)):
            raise UsageError("give a list of images (or a data set folder), not a single array")
        imgs = list(images_or_dataset)
        if max_images is not None:
            imgs = imgs[:max_images]
        if data_range is None and any(
            torch.as_tensor(np.asarray(i) if not isinstance(i, Tensor) else i).dtype == torch.uint8
            for i in imgs
        ):
            raise UsageError(f"cannot tell the data range of {name} for uint8 images; pass data_range=")
        source = array_inputs(imgs, data_range=data_range or 1.0)
    if not 0 <= preview < len(source):
        raise UsageError(f"preview={preview} is not an image index (0..{len(source) - 1})")
    blocks, selection = select_modules(model, modules)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"bad device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but CUDA is not available")
    try:
        old_device = next(model.parameters()).device
    except StopIteration:
        old_device = dev
    was_training = model.training
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n, _ in blocks}
    preview_maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    preview_name: str | None = None
    try:
        model.to(dev).eval()
        with _Capture(blocks) as cap, _progress(progress) as prog:
            task = prog.add_task(f"psd {name}", total=len(source)) if prog is not None else None
            for idx, (img_name, img) in enumerate(source):
                per_block = _run_image(model, img.to(dev), tile, cap, name, img_name, remove_mean)
                for bname, (tiles, stitched) in per_block.items():
                    curves[bname].append(
                        (_mean_curve([c for c, _ in tiles]), _mean_curve([c for _, c in tiles]))
                    )
                    if idx == preview:
                        preview_maps[bname] = stitched
                if idx == preview:
                    preview_name = img_name
                if prog is not None:
                    prog.update(task, advance=1)
    finally:
        model.to(old_device)
        model.train(was_training)
    result = PSDResult(
        model=name,
        spec=ident.spec,
        identity=ident,
        scale=scale,
        split=split,
        tile=tile,
        device=str(dev),
        data_range=float(data_range) if data_range is not None else float("nan"),
        images=list(source.names),
        source=source.description,
        selection=selection,
        preview_image=preview_name,
        remove_mean=remove_mean,
    )
    for bname, mod in blocks:
        result.blocks.append(
            _combine(bname, type(mod).__name__, curves[bname], split, preview_maps.get(bname))
        )
    return result


def _run_image(
    model: nn.Module,
    img: Tensor,
    tile: int | None,
    cap: _Capture,
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


def _mean_curve(curves: list[np.ndarray]) -> np.ndarray:
    """Average of normalised curves (resampled to the shortest one first when their lengths differ)."""
    n_rings = min(len(c) for c in curves) - 1
    return np.mean([resample_curve(c, n_rings) for c in curves], axis=0)


def _combine(
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

"""The power-spectrum study of the FMEN paper (Sec. 4.3, Fig. 6-8) for any block of any model: :func:`psd`."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..base.errors import UsageError
from ..base.options import with_changes
from ..zoo.spec import ModelSpec, ResolvedModel, resolve_model
from .capture import BlockCapture, combine, mean_curve, run_image
from .result import AVERAGING, PSDResult
from .select import ModuleSelector, select_modules
from .sources import InputSource, array_inputs, dataset_inputs

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["AVERAGING", "PSDOptions", "psd"]


@dataclass(frozen=True)
class PSDOptions:
    """How :func:`psd` analyses: ``split``, the high/low boundary as a fraction of Nyquist; ``tile``, run the model
    on ``tile`` x ``tile`` LR tiles (per-tile curves averaged per image; None: whole images); ``preview``, the
    image whose maps are kept for Fig. 8; ``remove_mean``, subtract each map's mean before the FFT (no DC in the
    curves); ``max_images``, use the first images only; ``lr``, a data set folder's images are LR already."""

    split: float = 0.5
    tile: int | None = None
    preview: int = 0
    remove_mean: bool = False
    max_images: int | None = None
    lr: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.split < 1.0:
            raise UsageError(f"split must be a fraction of the Nyquist frequency in (0, 1), got {self.split}")
        if self.max_images is not None and self.max_images < 1:
            raise UsageError(f"max_images must be >= 1, got {self.max_images}")


def _progress(enabled: bool) -> contextlib.AbstractContextManager[Progress | None]:
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


def _source(
    images_or_dataset: str | Path | Sequence[np.ndarray | Tensor],
    opts: PSDOptions,
    scale: int,
    data_range: float | None,
    name: str,
) -> InputSource:
    """The model inputs: a data set folder's images, or the images given."""
    if isinstance(images_or_dataset, (str, Path)):
        if data_range is None:
            raise UsageError(f"cannot tell the data range of {name}; pass data_range= (1.0 or 255.0)")
        return dataset_inputs(
            images_or_dataset, scale=scale, data_range=data_range, lr=opts.lr, max_images=opts.max_images
        )
    if isinstance(images_or_dataset, (np.ndarray, Tensor)):
        raise UsageError("give a list of images (or a data set folder), not a single array")
    imgs = list(images_or_dataset)
    if opts.max_images is not None:
        imgs = imgs[: opts.max_images]
    if data_range is None and any(
        torch.as_tensor(np.asarray(i) if not isinstance(i, Tensor) else i).dtype == torch.uint8 for i in imgs
    ):
        raise UsageError(f"cannot tell the data range of {name} for uint8 images; pass data_range=")
    return array_inputs(imgs, data_range=data_range or 1.0)


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"bad device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but CUDA is not available")
    return dev


def psd(
    model_or_spec: nn.Module | str | ModelSpec | ResolvedModel,
    images_or_dataset: str | Path | Sequence[np.ndarray | Tensor],
    modules: ModuleSelector = None,
    options: PSDOptions | None = None,
    device: str | torch.device = "cpu",
    data_range: float | None = None,
    progress: bool = True,
    *,
    scale: int = 4,
    weights: str | None = None,
    **option_changes: object,
) -> PSDResult:
    """Radially averaged power spectra of the inputs and outputs of a model's blocks (FMEN paper, Sec. 4.3).

    For each selected block (``modules``: see :func:`effbench.frequency.select_modules`; default: every HFAB of
    FMEN / FMEN-S, the family's attention blocks for other zoo models, else the top-level body blocks) the
    block's input and output are captured with forward hooks (removed afterwards), averaged over channels, and
    turned into PSD curves (:mod:`effbench.frequency.spectrum`), averaged over all images as described in
    :data:`AVERAGING`. ``images_or_dataset`` is a data set folder (HR-only: LR made with
    :func:`effbench.imresize`; or ``LR_bicubic/X{scale}``; ``lr=True``: the folder's images are LR already)
    or a list of images (uint8 mapped to the model's ``data_range``; floats used as given). ``options``
    (:class:`PSDOptions`: ``split``, ``tile``, ``preview``, ``remove_mean``, ``max_images``, ``lr``); any of
    its fields may be given as a keyword instead (``psd(model, "Set5", split=0.25, tile=64)``).
    """
    opts = with_changes(options or PSDOptions(), option_changes, caller="psd")
    resolved = resolve_model(model_or_spec, scale=scale, weights=weights)
    model, ident = resolved.model, resolved.identity
    data_range = ident.data_range if data_range is None else data_range
    source = _source(images_or_dataset, opts, scale, data_range, ident.name)
    if not 0 <= opts.preview < len(source):
        raise UsageError(f"preview={opts.preview} is not an image index (0..{len(source) - 1})")
    blocks, selection = select_modules(model, modules)
    dev = _device(device)
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
        with BlockCapture(blocks) as cap, _progress(progress) as prog:
            task = prog.add_task(f"psd {ident.name}", total=len(source)) if prog is not None else None
            for idx, (img_name, img) in enumerate(source):
                per_block = run_image(
                    model, img.to(dev), opts.tile, cap, ident.name, img_name, opts.remove_mean
                )
                for bname, (tiles, stitched) in per_block.items():
                    curves[bname].append(
                        (mean_curve([c for c, _ in tiles]), mean_curve([c for _, c in tiles]))
                    )
                    if idx == opts.preview:
                        preview_maps[bname] = stitched
                if idx == opts.preview:
                    preview_name = img_name
                if prog is not None and task is not None:
                    prog.update(task, advance=1)
    finally:
        model.to(old_device)
        model.train(was_training)
    return PSDResult(
        model=ident.name,
        spec=ident.spec,
        identity=ident,
        scale=scale,
        split=opts.split,
        tile=opts.tile,
        device=str(dev),
        data_range=float(data_range) if data_range is not None else float("nan"),
        images=list(source.names),
        source=source.description,
        selection=selection,
        preview_image=preview_name,
        remove_mean=opts.remove_mean,
        blocks=[
            combine(bname, type(mod).__name__, curves[bname], opts.split, preview_maps.get(bname))
            for bname, mod in blocks
        ],
    )

"""Run a model over a test set and score it: per-image and mean PSNR/SSIM under the paper's or NTIRE's protocol."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.images import DatasetError, is_grey, to_tensor, to_uint8, write_image
from ..zoo.spec import ModelSpec, resolve_model
from .datasets import SRDataset, open_dataset
from .metrics import NTIRE_BORDER, SCORE_PROTOCOLS, Protocol, score

__all__ = ["Evaluation", "EvaluationStopped", "evaluate", "super_resolve"]


@dataclass(frozen=True)
class Evaluation(Mapping[str, Any]):
    """What :func:`evaluate` returns: the model, the data set and protocol it was scored on, the mean scores and
    each image's (``images``: ``{"name", "psnr", "ssim", "hr_size", "grey"}``), the images skipped
    (``skipped``: ``{"path", "error"}``). Read as a mapping it is the summary document (:meth:`to_dict`, what
    ``effbench eval --json`` prints): ``res["psnr"]``, ``res["images"]``; :meth:`metrics` gives the means by
    catalogue key."""

    model: str
    psnr: float = math.nan
    ssim: float = math.nan
    images: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    spec: str | None = None
    model_key: str | None = None
    identity: dict[str, Any] | None = None
    dataset: str | None = None
    dataset_dir: str | None = None
    scale: int | None = None
    protocol: str | None = None
    data_range: float | None = None
    layout: str | None = None
    lr_source: str | None = None

    @property
    def n_images(self) -> int:
        """How many images were scored."""
        return len(self.images)

    def metrics(self) -> dict[str, float]:
        """The mean scores, keyed by :mod:`effbench.base.catalogue` keys (``psnr``, ``ssim``)."""
        return {"psnr": self.psnr, "ssim": self.ssim}

    def to_dict(self) -> dict[str, Any]:
        """The summary document, in the order ``effbench eval --json`` has always printed it."""
        return {k: getattr(self, k) for k in _DOC_KEYS}

    def __getitem__(self, key: str) -> Any:
        if key not in _DOC_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_DOC_KEYS)

    def __len__(self) -> int:
        return len(_DOC_KEYS)


_DOC_KEYS = (
    "model",
    "spec",
    "model_key",
    "identity",
    "dataset",
    "dataset_dir",
    "scale",
    "protocol",
    "data_range",
    "layout",
    "lr_source",
    "n_images",
    "psnr",
    "ssim",
    "images",
    "skipped",
)


class EvaluationStopped(DatasetError):
    """An evaluation stopped at an unreadable image (named in the message); ``partial`` is the result so far."""

    def __init__(self, message: str, partial: Evaluation) -> None:
        super().__init__(message)
        self.partial = partial


def super_resolve(
    model: nn.Module,
    lr: np.ndarray,
    scale: int,
    data_range: float = 255.0,
    device: str | torch.device = "cpu",
    *,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """Run ``model`` on one ``uint8`` ``(h, w, 3)`` LR image; returns the ``uint8`` ``(h*s, w*s, 3)`` SR image.

    The input is scaled to ``[0, data_range]`` in ``dtype``; the output is scaled back, clamped and rounded
    (:func:`effbench.base.images.to_uint8`).
    """
    x = to_tensor(lr, data_range, device, dtype)
    try:
        with torch.inference_mode():
            y = model(x)
    except Exception as exc:
        raise ModelError(
            f"the model failed on a {lr.shape[1]}x{lr.shape[0]} input: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(y, torch.Tensor):
        raise ModelError(f"the model returned {type(y).__name__}, not a tensor")
    want = (1, 3, lr.shape[0] * scale, lr.shape[1] * scale)
    if tuple(y.shape) != want:
        raise ModelError(
            f"the model returned shape {tuple(y.shape)} for x{scale} of a {tuple(x.shape)} input; "
            f"expected {want}"
        )
    if not torch.isfinite(y).all():
        raise ModelError("the model returned NaN or infinite values")
    return to_uint8(y[0].permute(1, 2, 0), data_range)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def evaluate(
    model_or_spec: nn.Module | str | ModelSpec,
    dataset_dir: str | Path | SRDataset,
    scale: int = 4,
    protocol: Protocol = "paper",
    data_range: float | None = None,
    device: str | torch.device = "cpu",
    save_dir: str | Path | None = None,
    progress: bool = True,
    *,
    pretrained: bool = False,
    weights: str | None = None,
    skip_bad: bool = False,
) -> Evaluation:
    """Super-resolve every image of a test set and score it, keeping each image's scores as it goes.

    ``model_or_spec``: a module, or a spec (zoo name, ``file.py:Name``, ``package.module:Name``; ``pretrained``
    and ``weights`` load checkpoints). ``data_range`` defaults to the model's metadata (the zoo's ``data_range``,
    a ``data_range`` attribute, else 255). ``protocol="paper"``: PSNR/SSIM on Y, border = scale; ``"ntire"``:
    RGB, border 4. SR images are written to ``save_dir/<name>.png`` when given.

    Returns ``{"model", "dataset", "scale", "protocol", "data_range", "layout", "lr_source", "n_images",
    "psnr", "ssim", "images": [{"name", "psnr", "ssim", "hr_size", "grey"}, ...], "skipped": [{"path", "error"}]}``
    (means over the scored images). An unreadable image stops the run with :class:`EvaluationStopped`, naming its
    path and carrying the images scored so far (``.partial``); ``skip_bad=True`` lists it under ``skipped`` and goes
    on. The largest LR image so far is first checked against free memory
    (:func:`effbench.memory.preflight.check_fits`).
    """
    if protocol not in SCORE_PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; choose from {', '.join(SCORE_PROTOCOLS)}")
    dataset = dataset_dir if isinstance(dataset_dir, SRDataset) else open_dataset(dataset_dir, scale)
    if dataset.scale != scale:
        raise UsageError(f"the data set was opened at x{dataset.scale}, not x{scale}")
    resolved = resolve_model(model_or_spec, scale=scale, pretrained=pretrained, weights=weights)
    model, ident = resolved.model.eval(), resolved.identity
    name, rng = ident.name, ident.data_range if data_range is None else data_range
    if not rng > 0:
        raise UsageError(f"data_range must be positive, got {rng}")
    model = model.to(device)
    out_dir = Path(save_dir) if save_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    images: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []

    def summary() -> Evaluation:
        return Evaluation(
            model=name,
            spec=ident.spec,
            model_key=ident.key,
            identity=ident.as_dict(),
            dataset=dataset.name,
            dataset_dir=str(dataset.root),
            scale=scale,
            protocol=protocol,
            data_range=rng,
            layout=dataset.layout,
            lr_source=dataset.lr_source,
            psnr=_mean([r["psnr"] for r in images]),
            ssim=_mean([r["ssim"] for r in images]),
            images=list(images),
            skipped=list(skipped),
        )

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..memory.preflight import check_fits

    checked_pixels = 0  # the largest LR image whose memory was checked: smaller ones fit too
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task(f"{name} x{scale} on {dataset.name}", total=len(dataset), last="")
        border = scale if protocol == "paper" else NTIRE_BORDER
        for i in range(len(dataset)):
            try:
                sample = dataset[i]
                hh, hw = sample.hr.shape[:2]
                if min(hh, hw) <= 2 * border:
                    raise DatasetError(
                        f"{sample.hr_path}: the HR image is {hh}x{hw} pixels, too small to score with the "
                        f"{protocol} protocol's border of {border} pixels on each side"
                    )
            except DatasetError as exc:
                if not skip_bad:
                    raise EvaluationStopped(
                        f"{exc} (after {len(images)} scored images; --skip-bad goes on)", summary()
                    ) from exc
                skipped.append({"path": str(dataset.pairs[i][0]), "error": str(exc)})
                bar.update(task, advance=1, last=f"skipped {dataset.pairs[i][0].name}")
                continue
            h, w = sample.lr.shape[:2]
            if h * w > checked_pixels:
                check_fits(model, (h, w), torch.device(device), torch.float32, f"eval of {name}")
                checked_pixels = h * w
            sr = super_resolve(model, sample.lr, scale, rng, device)
            p, s = score(sr, sample.hr, scale, protocol)
            images.append(
                {
                    "name": sample.name,
                    "psnr": p,
                    "ssim": s,
                    "hr_size": list(sample.hr.shape[:2]),
                    "grey": is_grey(sample.hr_path),
                }
            )
            if out_dir is not None:
                write_image(out_dir / f"{sample.name}.png", sr)
            bar.update(task, advance=1, last=f"{sample.name}: {p:.2f} dB")
    return summary()

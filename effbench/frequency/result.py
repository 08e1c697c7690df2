"""What :func:`effbench.psd` returns: :class:`PSDResult`, one :class:`~effbench.frequency.block_psd.BlockPSD`
per selected block, with its result document (``to_dict``, ``save_json``, ``load``) and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base.errors import UsageError
from ..base.identity import ModelIdentity
from .block_psd import BlockPSD

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["AVERAGING", "PSDResult"]

AVERAGING = (
    "Each captured feature map is averaged over channels; its centred power spectrum is averaged over rings of "
    "normalised radial frequency (ring k of R = min(H, W) // 2 holds round(R * rho) == k, rho = 1 at Nyquist) and "
    "divided by its sum. Tiles of one image: their normalised curves are averaged into the image's curve. "
    "Images: each image's curve is resampled (linear interpolation, renormalised) onto the rings of the "
    "smallest feature map, then the per-image normalised curves are averaged with equal weight. Shares are "
    "sums of the averaged curve over rings with k / R > split (high) and <= split (low)."
)


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

    def to_frame(self) -> pd.DataFrame:
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

    def plot_curves(self, path: str | Path | None = None, log: bool = True) -> Figure:
        """Fig. 6 style: one panel per block, input and output curves on a shared axis."""
        from .plots import plot_curves

        return plot_curves(self, path, log=log)

    def plot_maps(self, path: str | Path | None = None) -> Figure:
        """Fig. 8 style: the channel-averaged input and output maps of the preview image, normalised for display."""
        from .plots import plot_maps

        return plot_maps(self, path)

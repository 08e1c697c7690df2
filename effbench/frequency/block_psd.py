"""One block's result in the power-spectrum study: its input and output spectra averaged over the images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .spectrum import high_share

__all__ = ["BlockPSD"]


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

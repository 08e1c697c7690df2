"""What the zoo records of a registered model: :class:`ModelInfo` and its official checkpoints
(:class:`PretrainedCfg`). A module of its own so that the registry and the checkpoint loader
(:mod:`effbench.zoo.weights`) both read these types without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class PretrainedCfg:
    """One official checkpoint: where it lives, its SHA-256 and how its keys map onto our modules.

    ``key_layout`` names a key-remapping rule known to :mod:`effbench.zoo.weights` (e.g. ``"module_prefix"``,
    ``"ntire_model_n"``); ``None`` means the keys already match.
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    key_layout: str | None = None
    source: str = ""
    licence: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """Metadata every registered model carries."""

    name: str
    factory: Callable[..., nn.Module]
    scales: tuple[int, ...]
    data_range: float  # 1.0 for [0,1] inputs, 255.0 for [0,255] inputs
    paper: str
    description: str = ""
    pretrained: dict[int, tuple[PretrainedCfg, ...]] = field(default_factory=dict)
    has_deploy_form: bool = False  # True when deploy=False gives a distinct train-time form
    reference: bool = False  # a non-learned reference (bicubic): listed, but left out of default comparisons

    def checkpoints(self, scale: int) -> tuple[PretrainedCfg, ...]:
        return self.pretrained.get(scale, ())

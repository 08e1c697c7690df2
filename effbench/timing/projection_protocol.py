"""What a harness times, for the runtime projection: the image sets at their mean-equivalent sizes
(:class:`ImageSetSize`, described in ``effbench/data/projection/image_sets.json``), the first image paying the
start-up, the dtype and the cuDNN settings (:class:`Protocol`); :func:`steady_protocol` for one size in steady
state."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

from ..base.errors import UsageError

__all__ = ["ImageSetSize", "Protocol", "image_set", "steady_protocol"]


@dataclass(frozen=True)
class ImageSetSize:
    """One timed image set: how many images and the size whose runtime equals the set's mean (runtime of a
    convolutional network is linear in pixels, so the mean-equivalent image has the set's mean pixel count)."""

    name: str
    count: int
    size: tuple[int, int]
    source: str


@functools.lru_cache(maxsize=1)
def _image_sets() -> dict[str, ImageSetSize]:
    path = resources.files("effbench") / "data" / "projection" / "image_sets.json"
    raw = json.loads(path.read_text())
    return {
        k: ImageSetSize(k, int(v["count"]), (int(v["size"][0]), int(v["size"][1])), v["source"])
        for k, v in raw["sets"].items()
    }


def image_set(name: str) -> ImageSetSize:
    """The described image set ``name`` (``DIV2K_valid``, ``DIV2K_test``, ``LSDIR_valid``, ``LSDIR_test``)."""
    sets = _image_sets()
    if name not in sets:
        raise UsageError(f"no size description of image set {name!r}; known: {', '.join(sets)}")
    return sets[name]


@dataclass(frozen=True)
class Protocol:
    """What a harness times: the runtime is the mean over ``sets`` of each set's per-image mean; the first image
    of the run (of the first set) pays the start-up when ``warmup_images`` is 0."""

    sets: tuple[ImageSetSize, ...]
    warmup_images: int = 0
    cudnn_benchmark: bool = False
    tf32: bool = True  #: ``torch.backends.cudnn.allow_tf32``, convolutions (PyTorch's default: True)
    matmul_tf32: bool = (
        False  #: ``torch.backends.cuda.matmul.allow_tf32`` (PyTorch's default since 1.12: False)
    )
    dtype: str = "fp32"
    name: str = ""
    #: seconds the first timed image pays for start-up, when the year's own published figures give it (None: the
    #: cost model's fitted constant)
    startup_s: float | None = None
    startup_source: str = ""

    def __post_init__(self) -> None:
        if not self.sets:
            raise UsageError("a runtime protocol needs at least one image set")
        if self.startup_s is not None and self.startup_s < 0:
            raise UsageError(f"start-up {self.startup_s} s: must not be negative")

    @property
    def size(self) -> tuple[int, int]:
        """The one size traced: the sets' mean pixel count (weighted as the runtime averages them), W kept."""
        pixels = sum(s.size[0] * s.size[1] for s in self.sets) / len(self.sets)
        w = max(s.size[1] for s in self.sets)
        return (max(1, round(pixels / w)), w)

    @property
    def startup_share(self) -> float:
        """How much of one start-up the runtime averages in: 1 / (first set's images x number of sets)."""
        if self.warmup_images > 0:
            return 0.0
        return 1.0 / (self.sets[0].count * len(self.sets))

    def describe(self) -> str:
        if self.warmup_images > 0 and len(self.sets) == 1 and self.sets[0].count == 1:
            h, w = self.sets[0].size
            return (
                f"one forward at {h}x{w} in steady state (after warm-up); {self.dtype}; "
                f"cudnn.benchmark={self.cudnn_benchmark}; cuDNN TF32 {'on' if self.tf32 else 'off'}"
            )
        sets = " + ".join(
            f"{s.name} ({s.count} images, mean-equivalent {s.size[0]}x{s.size[1]})" for s in self.sets
        )
        warm = "no warm-up" if self.warmup_images == 0 else f"{self.warmup_images} warm-up images"
        if self.warmup_images == 0 and self.startup_s is not None:
            warm += f" (first-image start-up {self.startup_s:.3f} s: {self.startup_source})"
        return (
            f"{self.name + ': ' if self.name else ''}per-image CUDA-event time, mean over {sets}; {warm}; "
            f"{self.dtype}; cudnn.benchmark={self.cudnn_benchmark}; cuDNN TF32 {'on' if self.tf32 else 'off'}"
        )


def steady_protocol(size: tuple[int, int], *, cudnn_benchmark: bool = False, dtype: str = "fp32") -> Protocol:
    """One forward at ``size`` in steady state (no start-up share): what ``effbench bench`` times."""
    one = ImageSetSize(f"{size[0]}x{size[1]}", 1, (int(size[0]), int(size[1])), "the size asked for")
    return Protocol((one,), warmup_images=1, cudnn_benchmark=cudnn_benchmark, dtype=dtype, name="steady")

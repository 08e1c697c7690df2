"""Plan inputs under a memory budget: the largest square input, 16:9 input and tile whose predicted peak fits.

Each answer is found by binary search on one side length over the device-free prediction
(:func:`~effbench.memory.predict_memory`, tens of milliseconds per call), so it assumes the predicted peak grows with
the input. That is checked, not trusted: every side the search visits is kept, and a visited side whose peak exceeds
that of a larger visited side is reported in :attr:`MemoryPlan.notes` (the answer may then not be the largest).
Every answer carries the peak at the answer and at one step above, which must exceed the budget.

Shapes: a square is ``s x s``; a 16:9 input is ``round(9 w / 16) x w`` (H x W); a tile is a square ``t x t`` LR
tile of which neighbours share ``overlap`` pixels (stride ``t - overlap``); with ``image`` given, the whole LR
image and the HR output it is assembled into are held on the device beside the tile's forward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..base.errors import UsageError
from ..base.inputs import check_size
from .allocator import round_size
from .predict import predict_memory
from .workload import resolve_inputs, torch_dtype
from .workspace import GpuProfile, load_profile

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .workload import ModelLike, WorkloadFields

MAX_SIDE = 1 << 15


@dataclass
class Fit:
    """The largest input of one shape under the budget."""

    shape: str  # "square", "16:9" or "tile"
    size: tuple[int, int] | None  # (H, W) of the answer; None when even the smallest does not fit
    peak_bytes: int | None  # predicted peak at the answer
    next_size: tuple[int, int]  # one step above
    next_peak_bytes: int  # predicted peak there (> budget)
    evaluations: int


@dataclass
class MemoryPlan:
    """The answers of :func:`plan_memory` (sizes are LR inputs, H x W)."""

    model: str
    budget_bytes: int
    scale: int
    dtype: str
    gpu_profile: str
    square: Fit
    wide: Fit  # 16:9
    tile: Fit
    overlap: int
    image: tuple[int, int] | None
    held_bytes: int  # the image and the HR output held beside a tile (0 without image)
    tiles: tuple[int, int] | None  # tiles down and across for image
    monotone: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wide(w: int) -> tuple[int, int]:
    return max(1, round(9 * w / 16)), w


def _search(
    shape: str,
    size_of: Callable[[int], tuple[int, int]],
    peak_of: Callable[[tuple[int, int]], int],
    budget: int,
    low: int,
    seen: dict[int, int],
) -> Fit:
    """Largest side ``s >= low`` with ``peak_of(size_of(s)) <= budget`` (binary search; peaks kept in ``seen``)."""

    def peak(s: int) -> int:
        if s not in seen:
            seen[s] = peak_of(size_of(s))
        return seen[s]

    n0 = len(seen)
    if peak(low) > budget:
        return Fit(shape, None, None, size_of(low), peak(low), len(seen) - n0)
    lo, hi = low, low
    while peak(hi) <= budget:  # double until over the budget
        lo, hi = hi, min(2 * hi, MAX_SIDE)
        if lo == MAX_SIDE:
            raise UsageError(f"the budget fits inputs beyond {MAX_SIDE} px a side; give a smaller budget")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if peak(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return Fit(shape, size_of(lo), peak(lo), size_of(lo + 1), peak(lo + 1), len(seen) - n0)


def _monotone(seen: dict[int, int]) -> bool:
    peaks = [seen[s] for s in sorted(seen)]
    return all(a <= b for a, b in zip(peaks, peaks[1:]))


def plan_memory(
    model: ModelLike,
    budget_bytes: int,
    *,
    gpu_profile: str | GpuProfile | None = None,
    overlap: int = 16,
    image: tuple[int, int] | None = None,
    deploy: bool = True,
    min_side: int = 64,
    **workload: Unpack[WorkloadFields],
) -> MemoryPlan:
    """The largest square, 16:9 and tile LR inputs whose predicted peak (``device_model="cuda"``, with the GPU
    profile's workspace when given) is at most ``budget_bytes``; see the module docstring. The searches start at
    ``min_side`` (the width for 16:9): many SR models refuse tiny inputs. The keywords are the workload's fields
    but its size (``batch``, ``channels``, ``dtype``, ``memory_format``, ``scale``), as
    :func:`~effbench.memory.predict_memory` takes them."""
    if not isinstance(budget_bytes, int) or budget_bytes <= 0:
        raise UsageError(f"the budget must be a positive number of bytes, got {budget_bytes!r}")
    if not isinstance(overlap, int) or overlap < 0:
        raise UsageError(f"the tile overlap must be a whole number of pixels >= 0, got {overlap!r}")
    r, w = resolve_inputs(model, 1, workload, deploy=deploy)
    net, scale, dtype = r.model, w.scale, torch_dtype(w)
    profile = load_profile(gpu_profile) if gpu_profile is not None else None
    held = 0
    if image is not None:
        ih, iw = check_size(image)
        elem = torch.empty((), dtype=dtype).element_size()
        pixels = w.batch * w.channels * ih * iw
        held = round_size(pixels * elem) + round_size(pixels * scale * scale * elem)

    def peak_of(size: tuple[int, int]) -> int:
        return predict_memory(net, w.with_(size=size), gpu_profile=profile).peak_bytes

    seen_sq: dict[int, int] = {}
    seen_wide: dict[int, int] = {}
    square = _search("square", lambda s: (s, s), peak_of, budget_bytes, min_side, seen_sq)
    wide = _search("16:9", _wide, peak_of, budget_bytes, min_side, seen_wide)
    tile_seen = {s: p + held for s, p in seen_sq.items() if s > overlap}
    tile = _search(
        "tile",
        lambda s: (s, s),
        lambda sz: peak_of(sz) + held,
        budget_bytes,
        max(min_side, overlap + 1),
        tile_seen,
    )
    notes: list[str] = []
    monotone = _monotone(seen_sq) and _monotone(seen_wide)
    if not monotone:
        notes.append(
            "the predicted peak is not monotone in the side over the sizes the search visited: the answers fit, "
            "but a larger input may fit too"
        )
    if profile is not None and square.size is not None:
        at = predict_memory(net, w.with_(size=square.size), gpu_profile=profile)
        notes += [f"at the square answer: {n}" for n in at.notes if n.startswith("workspace ")]
    tiles = None
    if image is not None:
        notes.append(
            f"a tile's peak includes the {image[0]}x{image[1]} LR image and its x{scale} output held on the device "
            f"({held / 2**20:.1f} MiB)"
        )
        if tile.size is not None:
            stride = tile.size[0] - overlap
            tiles = (-(-max(1, image[0] - overlap) // stride), -(-max(1, image[1] - overlap) // stride))
    return MemoryPlan(
        r.name,
        budget_bytes,
        scale,
        str(dtype).replace("torch.", ""),
        profile.name if profile is not None else "",
        square,
        wide,
        tile,
        overlap,
        tuple(image) if image is not None else None,
        held,
        tiles,
        monotone,
        notes,
    )

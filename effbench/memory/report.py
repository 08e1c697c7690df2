"""The predicted peak of one forward pass and what is alive there (:class:`MemoryReport`), as
:func:`~effbench.memory.predict_memory` returns it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from ..base.identity import ModelIdentity

__all__ = ["LiveTensor", "MemoryReport", "ModulePeak", "TimelineEntry", "mb", "op_word"]


class TimelineEntry(TypedDict):
    """The memory after one op of the measured forward: the allocator's bytes and the live blocks' bytes."""

    index: int
    op: str
    module: str
    allocated_bytes: int
    live_bytes: int


class _ModulePeakRequired(TypedDict):
    type: str
    first_op_index: int
    peak_bytes: int


class ModulePeak(_ModulePeakRequired, total=False):
    """The highest allocated bytes inside one module's calls: where (``op_index``, ``op``) and in C x H x W units
    (``x_feature``)."""

    op_index: int
    op: str
    x_feature: float


_OP_WORDS = {
    "add": "residual add",
    "add_": "residual add",
    "cat": "concat",
    "mul": "multiply",
    "mul_": "multiply",
    "convolution": "conv",
    "sigmoid": "sigmoid",
    "pixel_shuffle": "pixel shuffle",
}


def op_word(op: str) -> str:
    """``aten.mul.Tensor`` -> ``multiply``; unknown ops give their short name."""
    base = op.split(".")[1] if op.startswith("aten.") else op
    return _OP_WORDS.get(base, base)


@dataclass
class LiveTensor:
    """A storage alive at the peak."""

    shape: tuple[int, ...]
    dtype: str
    bytes: int  # the storage's size
    block_bytes: int  # rounded to 512 bytes
    kind: str  # "activation", "input", "parameter", "buffer", "external"
    producer: str  # producing module (activations) or the tensor's name
    why: str
    role: str  # "input", "output", "kept" or "net": its share of the decomposition


@dataclass
class MemoryReport:
    """The predicted peak of one forward pass and what is alive there. Bytes are integers."""

    peak_bytes: int
    peak_op: str
    peak_op_index: int
    peak_module: str
    peak_module_type: str
    peak_block: str  # the innermost non-leaf module around the peak op (e.g. "HFABs.0")
    peak_block_type: str
    peak_pass: str  # "warm" or "measured": the forward in which the allocator reached the peak
    live_at_peak: list[LiveTensor]
    decomposition: dict[str, Any]
    feature_shape: tuple[int, int, int]  # C, H, W of the main feature map
    feature_bytes: int
    timeline: list[TimelineEntry]
    per_module_peaks: dict[str, ModulePeak]
    resident_bytes: int
    plain_peak_bytes: int  # the peak of live blocks rounded to 512 bytes, no caching-allocator effects
    device_model: str
    input_shape: tuple[int, ...]
    dtype: str
    model: str = ""
    notes: list[str] = field(default_factory=list)
    identity: ModelIdentity | None = None  # set by predict_memory() and replay_memory_cpu()
    output_shape: tuple[int, ...] | None = None  # the output's shape, when the forward returns one tensor
    reserved_peak_bytes: int = (
        0  # the allocator's segments at the end (max_memory_reserved); plain: = plain peak
    )
    workspace_peak_bytes: int = 0  # the largest conv workspace added from the GPU profile (0: none)
    gpu_profile: str = ""  # the profile's name, when one was used
    memory_format: str = "contiguous"
    engine: str = "fake"  # "fake" replay; "real" or "real-scaled" CPU replays for data-dependent models
    autograd_kept: bool = False  # the forward built an autograd graph (grad=True and something required grad)

    def x(self, nbytes: int) -> float:
        """``nbytes`` in units of the main feature map C x H x W."""
        return nbytes / self.feature_bytes if self.feature_bytes else float("nan")

    @property
    def peak_x(self) -> float:
        return self.x(self.peak_bytes)

    def sentence(self) -> str:
        """The peak in words, e.g. 'peak inside body.3 (HFAB) at the multiply: 4.0 x C x H x W alive: ...'."""
        where = (
            f"{self.peak_block} ({self.peak_block_type})"
            if self.peak_block
            else f"the model ({self.peak_block_type})"
        )
        if self.peak_module != self.peak_block:
            where += f", in {self.peak_module} ({self.peak_module_type})"
        acts = [t for t in self.live_at_peak if t.role != "net"]
        acts_x = self.x(sum(t.block_bytes for t in acts))
        groups: dict[str, list[LiveTensor]] = {}
        for t in acts:
            groups.setdefault(t.why, []).append(t)
        parts = ", ".join(
            f"{self.x(sum(t.block_bytes for t in ts)):.2f}x {why}"
            + (f" ({len(ts)} tensors)" if len(ts) > 1 else "")
            for why, ts in sorted(groups.items(), key=lambda kv: -sum(t.block_bytes for t in kv[1]))
        )
        c, h, w = self.feature_shape
        return (
            f"peak {mb(self.peak_bytes)} inside {where} at the {op_word(self.peak_op)} ({self.peak_op}): "
            f"{acts_x:.1f} x C x H x W of features alive (C x H x W = {c} x {h} x {w}): {parts}; "
            f"plus {mb(self.decomposition['M_net'])} of parameters"
            + (
                f" and {mb(self.decomposition['M_allocator'])} of allocator rounding"
                if self.decomposition["M_allocator"]
                else ""
            )
            + "."
        )

    def peak_summary(self) -> dict[str, Any]:
        """Where the peak is and what is alive there, in C x H x W units: ``where``, ``block_type``, ``op``,
        ``features_x`` and ``parts`` (``[why, x]``, largest first), as :meth:`sentence` says it."""
        acts = [t for t in self.live_at_peak if t.role != "net"]
        groups: dict[str, int] = {}
        for t in acts:
            groups[t.why] = groups.get(t.why, 0) + t.block_bytes
        where = self.peak_block or "the model"
        if self.peak_module != self.peak_block:
            where += f" / {self.peak_module}"
        return {
            "where": where,
            "block_type": self.peak_block_type,
            "op": op_word(self.peak_op),
            "features_x": self.x(sum(t.block_bytes for t in acts)),
            "parts": [[why, self.x(b)] for why, b in sorted(groups.items(), key=lambda kv: -kv[1])],
        }

    def metrics(self) -> dict[str, Any]:
        """What goes into a result document's ``metrics`` (keys of :mod:`effbench.base.catalogue`): the predicted
        peak, where it is (in words and in C x H x W units) and the allocated bytes after each op (the report draws
        it as the model's memory timeline)."""
        return {
            "peak_memory_predicted_bytes": int(self.peak_bytes),
            "peak_memory_reserved_predicted_bytes": int(self.reserved_peak_bytes),
            "peak_memory_where": self.sentence(),
            "peak_memory_at": self.peak_summary(),
            "memory_timeline": [int(e["allocated_bytes"]) for e in self.timeline],
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["live_at_peak"] = [asdict(t) for t in self.live_at_peak]
        d["peak_x_feature"] = self.peak_x
        d["sentence"] = self.sentence()
        return d


def mb(n: int) -> str:
    """Bytes as MiB with two decimals."""
    return f"{n / 2**20:.2f} MiB"

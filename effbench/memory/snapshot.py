"""The memory prediction as a CUDA memory snapshot, for PyTorch's own viewer (pytorch.org/memory_viz).

:func:`predict_snapshot` replays the forward on fake tensors (:func:`~effbench.memory.traces.trace_storage`) and drives
the caching-allocator model (:class:`~effbench.memory.allocator.CachingAllocator`) over the protocol
:func:`~effbench.memory.predict_memory` simulates: parameters, buffers and input allocated, one warm forward whose
output is dropped, one measured forward. The allocator's trace and final state become the dictionary
``torch.cuda.memory._snapshot()`` returns (``segments`` with their ``blocks``, ``device_traces`` with one list of
``segment_alloc`` / ``alloc`` / ``free_requested`` / ``free_completed`` entries for device 0); :func:`write_snapshot`
pickles it as ``torch.cuda.memory._dump_snapshot`` does. As in a recorded snapshot, trace sizes are the requested
bytes and block sizes the allocator's (rounded, or a whole unsplit block). The frames of an entry name, innermost
first, the aten op, the modules around it (qualified name and class, from the module's source file and the line of
its ``forward``), and the pass; resident tensors are named after the parameter or buffer.

``at="peak"`` stops the snapshot where the predicted ``max_memory_allocated`` is reached, as a
``_dump_snapshot`` called there would: the trace up to that allocation, the segments as they are then.

:func:`measured_snapshot` records the same protocol on a GPU with ``torch.cuda.memory._record_memory_history``.
"""

from __future__ import annotations

import copy
import gc
import inspect
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..base.errors import UsageError
from ..base.measurement import Workload
from ..base.model_code import data_dependent_errors
from .allocator import AllocatorEvent, CachingAllocator, SegmentState
from .simulate import simulate, workspace_of
from .traces import fake_trace
from .tracker import OpRec, StorageRec, StorageTrace
from .workload import cuda_device, resolve_inputs, torch_dtype, torch_format
from .workspace import GpuProfile, load_profile

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .workload import ModelLike, WorkloadFields

SNAPSHOT_AT = ("end", "peak")

Frame = dict[str, Any]


@dataclass
class PredictedSnapshot:
    """A predicted snapshot and the figures it was made from."""

    snapshot: dict[str, Any]  # the dict torch.cuda.memory._snapshot() returns
    model: str
    peak_bytes: int  # predicted max_memory_allocated (the predict_memory figure)
    requested_peak_bytes: (
        int  # the most requested bytes allocated at once (memory_stats' requested_bytes peak)
    )
    reserved_bytes: int  # the segments opened (max_memory_reserved)
    at: str  # "end" or "peak"


def _source(obj: type) -> tuple[str, int]:
    """The source file of a module class and the line of its ``forward``."""
    try:
        filename = inspect.getsourcefile(obj) or "<unknown>"
    except TypeError:
        filename = "<unknown>"
    try:
        line = inspect.getsourcelines(obj.forward)[1]  # type: ignore[attr-defined]
    except (OSError, TypeError):
        line = 0
    return filename, line


class _Frames:
    """The frames (innermost first) of each step of the simulated protocol, built once per module and op."""

    def __init__(self, net: nn.Module, trace: StorageTrace) -> None:
        self._module: dict[str, Frame] = {}
        for qname, m in net.named_modules():
            filename, line = _source(type(m))
            label = f"{qname} ({type(m).__name__})" if qname else f"<model> ({type(m).__name__})"
            self._module[qname] = {"filename": filename, "line": line, "name": label}
        self._model_file = self._module[""]["filename"]
        self._trace = trace
        self._cache: dict[tuple[str, int], list[Frame]] = {}

    def step(self, part: str, what: OpRec | StorageRec) -> list[Frame]:
        if isinstance(what, StorageRec):
            key = ("resident", what.sid)
            if key not in self._cache:
                shape = "x".join(map(str, what.shape))
                name = f"{what.name} ({what.kind}, {shape} {str(what.dtype).replace('torch.', '')})"
                where = "model.to(device)" if what.kind in ("parameter", "buffer") else "the caller"
                self._cache[key] = [
                    {"filename": self._model_file, "line": 0, "name": name},
                    {"filename": "effbench", "line": 0, "name": where},
                ]
            return self._cache[key]
        key = (part, what.index)
        if key not in self._cache:
            frames: list[Frame] = [{"filename": "aten", "line": 0, "name": f"#{what.index} {what.name}"}]
            stack = what.module_stack if what.module_stack[:1] == ("",) else ("", *what.module_stack)
            frames += [
                self._module.get(q, {"filename": "<unknown>", "line": 0, "name": q}) for q in stack[::-1]
            ]
            frames.append({"filename": "effbench", "line": 0, "name": f"{part} forward"})
            self._cache[key] = frames
        return self._cache[key]


def _entry(e: AllocatorEvent) -> dict[str, Any]:
    return {"action": e.action, "addr": e.addr, "size": e.size, "stream": 0, "frames": e.context or []}


def _segment(s: SegmentState) -> dict[str, Any]:
    blocks = [
        {
            "address": b.addr,
            "size": b.size,
            "requested_size": b.requested,
            "state": "active_allocated" if b.allocated else "inactive",
            "frames": (b.context or []) if b.allocated else [],
        }
        for b in s.blocks
    ]
    allocated = sum(b.size for b in s.blocks if b.allocated)
    return {
        "device": 0,
        "address": s.addr,
        "total_size": s.size,
        "stream": 0,
        "segment_type": "small" if s.small else "large",
        "segment_pool_id": (0, 0),
        "allocated_size": allocated,
        "active_size": allocated,
        "requested_size": sum(b.requested for b in s.blocks),
        "is_expandable": False,
        "frames": s.context or [],
        "blocks": blocks,
    }


class _Recorder(CachingAllocator):
    """The caching-allocator model, recording, that also keeps its state at the first allocation reaching the most
    allocated bytes: ``at_peak`` = (events up to it, segments then)."""

    def __init__(self) -> None:
        super().__init__(record=True)
        self.at_peak: tuple[int, list[SegmentState]] = (0, [])
        self._best = -1

    def _record(self, action: str, addr: int, size: int) -> None:
        super()._record(action, addr, size)
        if action == "alloc" and self.allocated > self._best and self.history is not None:
            self._best = self.allocated
            self.at_peak = (len(self.history), self.state())


def predict_snapshot(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int = (256, 256),
    *,
    deploy: bool = True,
    donate_input: bool = False,
    gpu_profile: str | GpuProfile | None = None,
    at: str = "end",
    **workload: Unpack[WorkloadFields],
) -> PredictedSnapshot:
    """The caching-allocator prediction of one model (``device_model="cuda"``) as a CUDA memory snapshot.

    Arguments as :func:`~effbench.memory.predict_memory`; ``at`` is ``"end"`` (after the measured forward, its
    output alive) or ``"peak"`` (at the allocation that reaches the predicted peak).
    """
    if at not in SNAPSHOT_AT:
        raise UsageError(f"unknown snapshot point {at!r}; expected one of {', '.join(SNAPSHOT_AT)}")
    r, w = resolve_inputs(model, input_size, workload, deploy=deploy)
    try:
        trace = fake_trace(r.model, r.name, w)
    except data_dependent_errors() as exc:
        raise UsageError(
            f"{r.name} has data-dependent ops ({type(exc).__name__}), so its memory is predicted from real CPU "
            "forwards that a snapshot cannot stand for; no snapshot written"
        ) from None
    profile = load_profile(gpu_profile) if gpu_profile is not None else None
    workspace = workspace_of(trace, profile)[0] if profile is not None else {}
    frames = _Frames(r.model, trace)
    alloc = _Recorder()

    def step(part: str, what: OpRec | StorageRec) -> None:
        alloc.context = frames.step(part, what)

    simulate(trace, "cuda", donate_input, workspace, alloc=alloc, on_step=step)
    assert alloc.history is not None
    n, segments = (len(alloc.history), alloc.state()) if at == "end" else alloc.at_peak
    snapshot = {
        "segments": [_segment(s) for s in segments],
        "device_traces": [[_entry(e) for e in alloc.history[:n]]],
    }
    return PredictedSnapshot(
        snapshot, r.name, int(alloc.peak), int(alloc.requested_peak), int(alloc.reserved), at
    )


def write_snapshot(snapshot: dict[str, Any], path: str | Path) -> Path:
    """Pickle a snapshot dict to ``path`` as ``torch.cuda.memory._dump_snapshot`` does."""
    path = Path(path)
    if path.suffix.lower() not in (".pickle", ".pkl"):
        raise UsageError(f"--snapshot expects a .pickle file name, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(snapshot, f)
    return path


def measured_snapshot(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int = (256, 256),
    *,
    deploy: bool = True,
    device: str | torch.device | None = None,
    **workload: Unpack[WorkloadFields],
) -> dict[str, Any]:
    """The snapshot of the same protocol recorded on a GPU: history recording on, the model copied to the device,
    the input created there, a warm forward (output dropped) and a measured forward, then
    ``torch.cuda.memory._snapshot()``. Cached blocks are emptied first; recording is switched off after. Arguments
    as :func:`predict_snapshot`'s; ``device``: a CUDA device (default: the workload's when it is one, else
    ``cuda``)."""
    if not torch.cuda.is_available():
        raise UsageError("a measured snapshot needs a CUDA device; none is available")
    r, w = resolve_inputs(model, input_size, workload, deploy=deploy)
    dtype, fmt = torch_dtype(w), torch_format(w)
    dev = cuda_device(device, w)
    gpu = copy.deepcopy(r.model)
    if dtype != torch.float32:
        gpu = gpu.to(dtype=dtype)
    if w.channels_last:
        gpu = gpu.to(memory_format=fmt)
    gc.collect()
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    torch.cuda.memory._record_memory_history(max_entries=1_000_000, device=dev)
    try:
        gpu = gpu.to(device=dev).eval()
        with torch.no_grad():
            x = torch.rand(w.input_shape, device=dev, dtype=dtype).contiguous(memory_format=fmt)
            gpu(x)
            out = gpu(x)
            torch.cuda.synchronize(dev)
            snap = torch.cuda.memory._snapshot(dev)
            del out, x
    finally:
        torch.cuda.memory._record_memory_history(None)
    del gpu
    gc.collect()
    torch.cuda.empty_cache()
    return snap

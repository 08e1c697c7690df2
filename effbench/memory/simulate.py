"""Turn a storage trace into a memory report: the allocator driven over the measured protocol (resident set, a
warm forward whose output is dropped, a measured forward), the peak found, what is alive there and why
(:func:`analyse`), the cuDNN workspace of each convolution from a GPU profile (:func:`workspace_of`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..base.errors import ModelError
from .allocator import CachingAllocator, PlainAllocator, make_allocator, round_size
from .report import LiveTensor, MemoryReport, ModulePeak, TimelineEntry, mb, op_word
from .tracker import OpRec, StorageRec, StorageTrace
from .workspace import GpuProfile

__all__ = ["Simulation", "analyse", "simulate", "workspace_of"]


@dataclass
class Simulation:
    """What :func:`simulate` found: per pass (``"warm"``, ``"measured"``) the (allocated, live-block) bytes after
    each op, the peak as (bytes, pass, op index), the plain allocator's peak, the segments reserved, and the op
    after which a donated input was freed."""

    series: dict[str, list[tuple[int, int]]]
    peak: tuple[int, str, int]
    plain_peak: int
    reserved: int
    input_last_use: int | None


def _main_feature(trace: StorageTrace) -> tuple[tuple[int, ...], int]:
    """The main feature map: the output of the first convolution that changes the number of channels of the input
    (an SR network's head, i.e. the trunk width; a mean-shift 1x1 conv is skipped), else the first convolution's
    output, else the 4-D activation shape holding the most bytes over the pass (count x size)."""
    image = next((s.shape for s in trace.storages if s.kind == "input"), None)
    convs = [
        trace.storages[op.outputs[0]]
        for op in trace.ops
        if op.name.startswith("aten.convolution") and op.outputs
    ]
    convs = [s for s in convs if len(s.shape) == 4]
    widening = [s for s in convs if image is None or len(image) != 4 or s.shape[1] != image[1]]
    head = (widening or convs or [None])[0]
    if head is not None:
        return head.shape, _numel(head.shape) * torch.empty((), dtype=head.dtype).element_size()
    counts: Counter[tuple[tuple[int, ...], torch.dtype]] = Counter()
    for s in trace.storages:
        if s.kind == "activation" and len(s.shape) == 4:
            counts[(s.shape, s.dtype)] += 1
    if not counts:
        for s in trace.storages:
            if s.kind == "input":
                counts[(s.shape, s.dtype)] += 1
    if not counts:
        return (1, 1, 1, 1), 1
    (shape, dtype), _ = max(counts.items(), key=lambda kv: (kv[1] * _numel(kv[0][0]), _numel(kv[0][0])))
    return shape, _numel(shape) * torch.empty((), dtype=dtype).element_size()


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def simulate(
    trace: StorageTrace,
    device_model: str,
    donate_input: bool,
    workspace: dict[int, int],
    alloc: PlainAllocator | CachingAllocator | None = None,
    on_step: Callable[[str, OpRec | StorageRec], None] | None = None,
) -> Simulation:
    """Run the allocator over the protocol; return per-op allocated bytes of both passes and the peak position.

    ``workspace`` maps op indices to the bytes allocated inside the op after its outputs and freed before it returns.
    ``alloc`` is the allocator to drive (default: a fresh one of ``device_model``); ``on_step(pass, what)`` is
    called before each resident storage is allocated (pass ``"resident"``) and before each op of each pass.
    """
    n = len(trace.ops)
    frees: dict[int, list[int]] = {}
    transient = {s.sid for s in trace.storages if s.kind == "activation"}
    input_last_use: int | None = None
    if donate_input:
        for s in trace.storages:
            if s.kind == "input" and s.sid not in trace.output:
                transient.add(s.sid)
                input_last_use = max(s.uses) if s.uses else -1
                frees.setdefault(input_last_use + 1, []).append(s.sid)
    for s in trace.storages:
        if s.kind == "activation" and s.free_before is not None:
            frees.setdefault(s.free_before, []).append(s.sid)
    alloc = alloc if alloc is not None else make_allocator(device_model)
    plain = make_allocator("plain")
    nbytes = {s.sid: s.nbytes for s in trace.storages}
    handles: dict[int, tuple[int, int]] = {}
    for sid in trace.resident:
        if on_step is not None:
            on_step("resident", trace.storages[sid])
        handles[sid] = (alloc.malloc(nbytes[sid]), plain.malloc(nbytes[sid]))
    alloc.reset_peak()
    passes = ("warm", "measured") if device_model == "cuda" else ("measured",)
    per_pass: dict[str, list[tuple[int, int]]] = {}
    peak = (alloc.allocated, passes[0], -1)
    for p, name in enumerate(passes):
        if p > 0 and donate_input:
            for sid in transient - {s.sid for s in trace.storages if s.kind == "activation"}:
                handles[sid] = (alloc.malloc(nbytes[sid]), plain.malloc(nbytes[sid]))
        series = []
        for op in trace.ops:
            if on_step is not None:
                on_step(name, op)
            for sid in frees.get(op.index, ()):
                a, b = handles.pop(sid)
                alloc.free(a)
                plain.free(b)
            for sid in op.outputs:
                handles[sid] = (alloc.malloc(nbytes[sid]), plain.malloc(nbytes[sid]))
            ws = workspace.get(op.index, 0)
            if ws:
                a, b = alloc.malloc(ws), plain.malloc(ws)
                top = (alloc.allocated, plain.allocated)
                alloc.free(a)
                plain.free(b)
            else:
                top = (alloc.allocated, plain.allocated)
            series.append(top)
            if top[0] > peak[0]:
                peak = (top[0], name, op.index)
        for sid in frees.get(n, ()):
            a, b = handles.pop(sid)
            alloc.free(a)
            plain.free(b)
        per_pass[name] = series
        if p + 1 < len(passes):  # the warm output is dropped before the measured forward
            for sid in list(handles):
                if sid in transient:
                    a, b = handles.pop(sid)
                    alloc.free(a)
                    plain.free(b)
    return Simulation(per_pass, peak, plain.peak, alloc.reserved, input_last_use)


def _why(trace: StorageTrace, sid: int, at: int, role: str, donate_input: bool) -> str:
    s = trace.storages[sid]
    op = trace.ops[at]
    if s.kind in ("parameter", "buffer"):
        return s.kind
    if role == "output":
        return f"output of the current op ({op_word(op.name)})"
    if role == "input":
        return f"input of the current op ({op_word(op.name)})"
    later = [u for u in s.uses if u > at]
    if later:
        q = trace.ops[later[0]]
        what = "model input, " if s.kind == "input" else ""
        return f"{what}kept for a later {op_word(q.name)} in {q.module or trace.modules.get('', 'the model')}"
    if s.kind == "input":
        return "model input, held by the caller"
    if sid in trace.output:
        return "part of the model output"
    return "alive, not used again (held by a Python reference)"


def analyse(
    trace: StorageTrace,
    *,
    device_model: str = "cuda",
    donate_input: bool = False,
    input_shape: tuple[int, ...] = (),
    dtype: torch.dtype = torch.float32,
    model_name: str = "",
    feature_shape: tuple[int, int, int] | None = None,
    gpu_profile: GpuProfile | None = None,
) -> MemoryReport:
    """Turn a :class:`~effbench.memory.tracker.StorageTrace` into a :class:`MemoryReport`; with ``gpu_profile``
    each convolution also allocates its workspace (see :func:`workspace_of`)."""
    if not trace.ops:
        raise ModelError("the forward pass ran no tensor operation on the input")
    workspace, ws_notes = workspace_of(trace, gpu_profile) if gpu_profile is not None else ({}, [])
    sim = simulate(trace, device_model, donate_input, workspace)
    peak_bytes, peak_pass, at = sim.peak
    if at < 0:  # the resident set alone is the peak (cannot happen with a non-empty forward, kept for safety)
        at = 0
    if feature_shape is not None:
        fshape: tuple[int, ...] = (input_shape[0] if input_shape else 1, *feature_shape)
        fbytes = _numel(fshape) * torch.empty((), dtype=dtype).element_size()
    else:
        fshape, fbytes = _main_feature(trace)
    op = trace.ops[at]
    input_free = (sim.input_last_use + 1) if sim.input_last_use is not None else None
    live: list[LiveTensor] = []
    dec = {"M_input": 0, "M_output": 0, "M_kept": 0, "M_net": 0}
    for s in trace.storages:
        if s.kind == "activation":
            alive = (
                s.producer_op is not None
                and s.producer_op <= at
                and (s.free_before is None or s.free_before > at)
            )
        elif s.kind == "input" and input_free is not None:
            alive = at < input_free
        else:
            alive = True
        if not alive:
            continue
        if s.kind in ("parameter", "buffer"):
            role = "net"
        elif s.sid in op.outputs:
            role = "output"
        elif s.sid in op.inputs:
            role = "input"
        else:
            role = "kept"
        block = round_size(s.nbytes)
        dec[f"M_{role}"] += block
        producer = s.name if s.kind != "activation" else (s.name if s.name != "<model>" else "")
        live.append(
            LiveTensor(
                tuple(s.shape),
                str(s.dtype).replace("torch.", ""),
                s.nbytes,
                block,
                s.kind,
                producer,
                _why(trace, s.sid, at, role, donate_input),
                role,
            )
        )
    block = op.module
    if block in trace.leaves and block:
        block = next((m for m in reversed(op.module_stack) if m not in trace.leaves), "")
    dec["M_allocator"] = peak_bytes - sum(dec[k] for k in ("M_input", "M_output", "M_kept", "M_net"))
    dec["x_feature"] = {k: v / fbytes for k, v in dec.items() if k.startswith("M_")}
    dec["total"] = peak_bytes
    series = sim.series["measured"]
    timeline = [
        TimelineEntry(index=o.index, op=o.name, module=o.module, allocated_bytes=a, live_bytes=b)
        for o, (a, b) in zip(trace.ops, series)
    ]
    per_module: dict[str, ModulePeak] = {}
    for o, (a, _b) in zip(trace.ops, series):
        for name in ("", *o.module_stack):
            cur = per_module.get(name)
            if cur is None:
                cur = per_module[name] = ModulePeak(
                    type=trace.modules.get(name, ""), first_op_index=o.index, peak_bytes=-1
                )
            if a > cur["peak_bytes"]:
                cur.update(peak_bytes=a, op_index=o.index, op=o.name, x_feature=a / fbytes)
    resident = sum(round_size(trace.storages[s].nbytes) for s in trace.resident)
    notes = list(ws_notes)
    if device_model == "cuda" and gpu_profile is None:
        notes.append(
            "cuDNN/cuBLAS workspaces are not included (give a GPU profile, or measure them with "
            "measure_cuda_memory on a GPU)"
        )
    if gpu_profile is not None:
        ctx = gpu_profile.cuda_context_bytes
        notes.append(
            f"nvidia-smi shows about reserved + the CUDA context ({mb(ctx)} in profile {gpu_profile.name})"
            if ctx is not None
            else f"the CUDA context (not in reserved) is not stated by profile {gpu_profile.name}"
        )
    if donate_input:
        notes.append("the input is freed after its last use (as a feature inside a larger network)")
    return MemoryReport(
        peak_bytes=int(peak_bytes),
        peak_op=op.name,
        peak_op_index=op.index,
        peak_module=op.module,
        peak_module_type=trace.modules.get(op.module, ""),
        peak_block=block,
        peak_block_type=trace.modules.get(block, ""),
        peak_pass=peak_pass,
        live_at_peak=live,
        decomposition=dec,
        feature_shape=tuple(fshape[1:4]) if len(fshape) == 4 else tuple(fshape[-3:]),  # type: ignore[arg-type]
        feature_bytes=int(fbytes),
        timeline=timeline,
        per_module_peaks=per_module,
        resident_bytes=int(resident),
        plain_peak_bytes=int(sim.plain_peak),
        device_model=device_model,
        input_shape=tuple(input_shape),
        dtype=str(dtype).replace("torch.", ""),
        model=model_name,
        notes=notes,
        output_shape=trace.output_shape,
        reserved_peak_bytes=int(sim.reserved),
        workspace_peak_bytes=max(workspace.values(), default=0),
        gpu_profile=gpu_profile.name if gpu_profile is not None else "",
        memory_format=_format_name(trace),
    )


def _format_name(trace: StorageTrace) -> str:
    convs = [op.conv[0].layout for op in trace.ops if op.conv is not None]
    return convs[0] if convs else "contiguous"


def workspace_of(trace: StorageTrace, profile: GpuProfile) -> tuple[dict[int, int], list[str]]:
    """The workspace of every convolution of ``trace`` from ``profile`` (op index -> bytes) and notes on the
    lookups that were not on the grid (interpolated, extrapolated, signature missing)."""
    out: dict[int, int] = {}
    how: dict[str, set[str]] = {}
    for op in trace.ops:
        if op.conv is None:
            continue
        sig, shape = op.conv
        found = profile.workspace(sig, shape)
        if found.bytes:
            out[op.index] = found.bytes
        how.setdefault(found.how, set()).add(f"{sig.describe()} at {'x'.join(map(str, shape[2:]))}")
    notes = [f"cuDNN workspace from GPU profile {profile.name} at every convolution"]
    words = {
        "interpolated": "interpolated between grid sizes",
        "extrapolated": "extrapolated beyond the profile's grid (an estimate: cuDNN may pick another algorithm)",
        "missing": "signature not in the profile: no workspace added",
    }
    for key, text in words.items():
        if key in how:
            items = sorted(how[key])
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            notes.append(f"workspace {text} for {len(items)} conv(s): {'; '.join(items[:3])}{more}")
    return out, notes

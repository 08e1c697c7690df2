"""Predict and explain the peak GPU memory of one inference forward pass, without a GPU.

What is modelled
----------------
- One eager forward pass under ``torch.no_grad()`` replayed at the dispatch level (a ``TorchDispatchMode`` over a
  ``FakeTensorMode``: no arithmetic, no memory). Every aten op's new storages are allocations (outputs and the
  temporaries of composite ops, which reach the dispatcher as separate ops); views, in-place ops and ``out=`` ops
  allocate nothing; a storage is freed when its last reference dies; the final output stays.
- The resident set: parameters and buffers (allocated in ``model.to(device)`` order) and the input, on the device
  before the forward starts. The user's model is left untouched (fake parameters are swapped in through
  ``torch.func.functional_call`` and restored).
- The allocator: ``device_model="plain"`` rounds every block up to 512 bytes and sums live blocks;
  ``device_model="cuda"`` simulates the native CUDA caching allocator (pools, segment sizes, best-fit reuse,
  splitting rules; see :mod:`effbench.memory.allocator`) over the measured protocol: model and input on the GPU,
  ``reset_peak_memory_stats()``, one warm forward whose output is dropped, one measured forward;
  the prediction is ``max_memory_allocated()`` after it, and ``reserved_peak_bytes`` the segments it opened
  (``max_memory_reserved()``; ``nvidia-smi`` shows that plus the CUDA context, which a GPU profile states).
- dtypes (parameters and input cast to fp16/bf16 as ``model.to(dtype)``) and the channels-last layout (4-D
  parameters and input in channels-last order, as ``model.to(memory_format=torch.channels_last)``).

What is not modelled
--------------------
- Allocations made inside a kernel, below the dispatcher, unless a GPU profile is given: the cuDNN convolution
  workspace is then taken from the profile (:mod:`effbench.memory.workspace`) per convolution signature and size, and
  allocated and freed at the conv after its output. Without one it is left out (see
  :func:`effbench.memory.measure_cuda_memory`, which measures it on a GPU). Never modelled: the cuBLAS workspace
  (allocated once per handle by matmuls; SR conv nets rarely use it), the staging buffers of CUDA reductions (mean/std over large
  inputs), and device-specific internal copies.
- Constants made on the host inside ``forward`` (``torch.tensor``, ``torch.from_numpy``) are counted where the
  replay meets them (on the CPU they are tensors like any other; on a GPU only their device copies count).
- Data-dependent control flow (``.item()``, ``nonzero``) cannot be replayed on fake tensors: such a model is run
  for real on the CPU, at the requested size up to 48 pixels a side, else at two reduced sizes with the bytes
  extrapolated linearly in pixels (``MemoryReport.engine`` = ``"real"`` / ``"real-scaled"``, with a note).
- CUDA graphs, ``expandable_segments``, ``max_split_size_mb``, ``roundup_power2_divisions``, several streams,
  memory held by other code in the same process. The replay runs on CPU fake tensors, so a model whose op sequence
  differs between CPU and CUDA (device-dependent Python branches) is replayed as on CPU.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.identity import ModelIdentity
from ..base.inputs import check_size
from ..base.model_code import (
    data_dependent_errors,
    left_as_found,
    replace_tensor_attributes,
    running_model_code,
)
from .allocator import CachingAllocator, PlainAllocator, make_allocator, round_size
from .tracker import OpRec, StorageRec, StorageTrace, record_forward
from .workspace import GpuProfile, load_profile

MEMORY_FORMATS: dict[str, torch.memory_format] = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
}

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
    timeline: list[dict[str, Any]]
    per_module_peaks: dict[str, dict[str, Any]]
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
            f"peak {_mb(self.peak_bytes)} inside {where} at the {op_word(self.peak_op)} ({self.peak_op}): "
            f"{acts_x:.1f} x C x H x W of features alive (C x H x W = {c} x {h} x {w}): {parts}; "
            f"plus {_mb(self.decomposition['M_net'])} of parameters"
            + (
                f" and {_mb(self.decomposition['M_allocator'])} of allocator rounding"
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


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


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


def _simulate(
    trace: StorageTrace,
    device_model: str,
    donate_input: bool,
    workspace: dict[int, int],
    alloc: PlainAllocator | CachingAllocator | None = None,
    on_step: Callable[[str, OpRec | StorageRec], None] | None = None,
) -> dict[str, Any]:
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
    return {
        "series": per_pass,
        "peak": peak,
        "plain_peak": plain.peak,
        "reserved": alloc.reserved,
        "input_last_use": input_last_use,
    }


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
    sim = _simulate(trace, device_model, donate_input, workspace)
    peak_bytes, peak_pass, at = sim["peak"]
    if at < 0:  # the resident set alone is the peak (cannot happen with a non-empty forward, kept for safety)
        at = 0
    if feature_shape is not None:
        fshape: tuple[int, ...] = (input_shape[0] if input_shape else 1, *feature_shape)
        fbytes = _numel(fshape) * torch.empty((), dtype=dtype).element_size()
    else:
        fshape, fbytes = _main_feature(trace)
    op = trace.ops[at]
    input_free = (sim["input_last_use"] + 1) if sim["input_last_use"] is not None else None
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
    series = sim["series"]["measured"]
    timeline = [
        {"index": o.index, "op": o.name, "module": o.module, "allocated_bytes": a, "live_bytes": b}
        for o, (a, b) in zip(trace.ops, series)
    ]
    per_module: dict[str, dict[str, Any]] = {}
    for o, (a, _b) in zip(trace.ops, series):
        for name in ("", *o.module_stack):
            cur = per_module.get(name)
            if cur is None:
                cur = per_module[name] = {
                    "type": trace.modules.get(name, ""),
                    "first_op_index": o.index,
                    "peak_bytes": -1,
                }
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
            f"nvidia-smi shows about reserved + the CUDA context ({_mb(ctx)} in profile {gpu_profile.name})"
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
        plain_peak_bytes=int(sim["plain_peak"]),
        device_model=device_model,
        input_shape=tuple(input_shape),
        dtype=str(dtype).replace("torch.", ""),
        model=model_name,
        notes=notes,
        output_shape=trace.output_shape,
        reserved_peak_bytes=int(sim["reserved"]),
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


def _memory_format(fmt: str | torch.memory_format) -> torch.memory_format:
    if isinstance(fmt, torch.memory_format) and fmt in MEMORY_FORMATS.values():
        return fmt
    if isinstance(fmt, str) and fmt in MEMORY_FORMATS:
        return MEMORY_FORMATS[fmt]
    raise UsageError(f"unknown memory format {fmt!r}: use {', '.join(MEMORY_FORMATS)}")


def _fake_trace(
    net: nn.Module,
    name: str,
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    memory_format: torch.memory_format,
    keep_dtypes: bool = False,
    grad: bool = False,
) -> StorageTrace:
    """One forward of ``net`` on fake tensors: fresh parameters in ``dtype`` (floating ones, unless
    ``keep_dtypes``: then as the model has them; 4-D ones in ``memory_format``, as ``model.to(...)`` makes them,
    requiring grad as the model's do) and a fake input of ``shape``. Plain tensor attributes
    (``self.mean = torch.Tensor(...)``) get fake copies as they are (``model.to`` does not move them either);
    the model is left as found (:func:`~effbench.base.model_code.left_as_found`). ``grad``: autograd on (see
    :func:`~.tracker.record_forward`)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)  # constants outside the model (module globals) too
    device = torch.device("cpu")
    fake_of: dict[int, torch.Tensor] = {}
    with running_model_code(net), left_as_found(net), mode:
        replace_tensor_attributes(net, mode.from_tensor)
        for t in [*net.parameters(), *net.buffers()]:
            if id(t) not in fake_of:  # a fresh tensor, as model.to(device) makes for every parameter
                dt = dtype if (t.is_floating_point() and not keep_dtypes) else t.dtype
                fmt = memory_format if t.dim() == 4 else torch.contiguous_format
                fake = torch.empty(tuple(t.shape), dtype=dt, device=device, memory_format=fmt)
                fake_of[id(t)] = fake.requires_grad_(t.requires_grad) if t.is_floating_point() else fake
        try:
            return record_forward(
                net,
                lambda: torch.empty(shape, dtype=dtype, device=device, memory_format=memory_format),
                fake_of,
                device,
                grad=grad,
            )
        except (UsageError, ModelError, *data_dependent_errors()):
            raise
        except Exception as exc:
            raise ModelError(
                f"replaying the forward of {name} on fake tensors failed: {type(exc).__name__}: {exc}"
            ) from exc


def _real_trace(
    net: nn.Module,
    name: str,
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    memory_format: torch.memory_format,
    keep_dtypes: bool = False,
    grad: bool = False,
) -> StorageTrace:
    """One real forward of ``net`` on the CPU: CPU copies of the parameters and buffers in ``dtype`` (as
    :func:`_fake_trace` makes them), plain tensor attributes on the CPU, a random input of ``shape``."""
    device = torch.device("cpu")
    copies: dict[int, torch.Tensor] = {}
    for t in [*net.parameters(), *net.buffers()]:
        if id(t) not in copies:
            dt = dtype if (t.is_floating_point() and not keep_dtypes) else t.dtype
            fmt = memory_format if t.dim() == 4 else torch.contiguous_format
            copy = t.detach().to(device=device, dtype=dt).contiguous(memory_format=fmt)
            copies[id(t)] = copy.requires_grad_(t.requires_grad) if t.is_floating_point() else copy
    gen = torch.Generator().manual_seed(0)
    try:
        with running_model_code(net), left_as_found(net):
            replace_tensor_attributes(net, lambda t: t.to(device))
            return record_forward(
                net,
                lambda: torch.rand(shape, generator=gen, dtype=dtype).contiguous(memory_format=memory_format),
                copies,
                device,
                grad=grad,
            )
    except Exception as exc:
        hw = "x".join(map(str, shape[2:]))
        raise ModelError(
            f"the real CPU forward of {name} at {hw} failed: {type(exc).__name__}: {exc}"
        ) from exc


# The larger side of the two real CPU replays of a model the fake replay cannot run (data-dependent ops)
_REAL_SIDES = (32, 48)
# ... and the pair tried when a model cannot run those (its windows or downsampling need a larger input)
_REAL_SIDES_LARGER = (64, 96)


def _real_report(
    net: nn.Module,
    name: str,
    shape: tuple[int, int, int, int],
    memory_format: torch.memory_format,
    cause: BaseException,
    keep_dtypes: bool = False,
    grad: bool = False,
    **analyse_kw: Any,
) -> MemoryReport:
    """The memory of a model with data-dependent ops (``.item()``, ``nonzero``, value-dependent ``if``), from real
    CPU forwards: at the requested size when its larger side is at most the last of ``_REAL_SIDES``
    (``engine="real"``), else at two reduced sizes of the same aspect, every byte count extrapolated linearly in
    the number of input pixels (``engine="real-scaled"``): the activations of a convolutional SR network scale
    with H x W, the parameters do not. The other fields describe the larger replay. ``analyse_kw`` go to
    :func:`analyse` (``dtype`` included)."""
    dtype = analyse_kw["dtype"]
    opts = {"keep_dtypes": keep_dtypes, "grad": grad}
    why = f"the fake replay met a data-dependent op ({type(cause).__name__}: {str(cause).splitlines()[0]})"
    b, c, h, w = shape
    side = max(h, w)
    if side <= _REAL_SIDES[-1]:
        report = analyse(
            _real_trace(net, name, shape, dtype, memory_format, **opts), input_shape=shape, **analyse_kw
        )
        report.engine = "real"
        report.notes.append(f"{why}: predicted from one real CPU forward at {h}x{w} on a random input")
        return report
    for sides in (_REAL_SIDES, _REAL_SIDES_LARGER):
        sizes = [(max(1, round(h * s / side)), max(1, round(w * s / side))) for s in sides]
        try:
            small, big = (
                analyse(
                    _real_trace(net, name, (b, c, *hw), dtype, memory_format, **opts),
                    input_shape=(b, c, *hw),
                    **analyse_kw,
                )
                for hw in sizes
            )
            break
        except ModelError:  # too small for the model (windows, downsampling): the larger pair, if it fits
            if sides is _REAL_SIDES_LARGER or side <= _REAL_SIDES_LARGER[-1]:
                raise
    (p0, p1), target = (hh * ww for hh, ww in sizes), h * w

    def extrapolate(a: int, z: int) -> int:
        return int(round(a + (z - a) * (target - p0) / (p1 - p0)))

    big.peak_bytes = extrapolate(small.peak_bytes, big.peak_bytes)
    big.reserved_peak_bytes = extrapolate(small.reserved_peak_bytes, big.reserved_peak_bytes)
    big.plain_peak_bytes = extrapolate(small.plain_peak_bytes, big.plain_peak_bytes)
    big.input_shape, big.output_shape, big.engine = shape, None, "real-scaled"
    at = " and ".join(f"{hh}x{ww}" for hh, ww in sizes)
    big.notes.append(
        f"{why}: real CPU forwards at {at} on a random input, the peak extrapolated linearly in input pixels to "
        f"{h}x{w}; where it is and what is alive there are those of the {sizes[1][0]}x{sizes[1][1]} forward"
    )
    return big


@contextlib.contextmanager
def cuda_autocast_on_cpu() -> Iterator[None]:
    """While active on a host without CUDA, ``torch.autocast("cuda")`` / ``torch.cuda.amp.autocast()`` inside
    model code autocast the CPU replay to their dtype (fp16 unless given), so the replay allocates what the GPU
    run would instead of an fp32 forward (CPU autocast's op lists stand for CUDA's: convolutions and matrix
    products in fp16, reductions in fp32). A no-op where CUDA exists."""
    if torch.cuda.is_available():
        yield
        return
    from torch.amp import autocast_mode

    cls = autocast_mode.autocast
    original = cls.__init__

    def init(
        self: Any, device_type: str, dtype: torch.dtype | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if device_type == "cuda":
            device_type, dtype = "cpu", dtype or torch.float16
        original(self, device_type, dtype, *args, **kwargs)

    cls.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.__init__ = original  # type: ignore[method-assign]


def trace_model(
    model: nn.Module | str,
    input_size: tuple[int, int] | int = (256, 256),
    *,
    batch: int = 1,
    channels: int = 3,
    dtype: torch.dtype = torch.float32,
    memory_format: str | torch.memory_format = "contiguous",
    scale: int = 4,
    deploy: bool = True,
) -> StorageTrace:
    """The storage trace :func:`predict_memory` analyses (every op, its allocations and frees, conv signatures)."""
    h, w = check_size(input_size, batch=batch, channels=channels)
    from ..zoo.spec import resolve_model

    r = resolve_model(model, scale=scale, deploy=deploy)
    return _fake_trace(r.model, r.name, (batch, channels, h, w), dtype, _memory_format(memory_format))


def predict_memory(
    model: nn.Module | str,
    input_size: tuple[int, int] | int = (256, 256),
    *,
    batch: int = 1,
    channels: int = 3,
    dtype: torch.dtype = torch.float32,
    memory_format: str | torch.memory_format = "contiguous",
    device_model: str = "cuda",
    scale: int = 4,
    deploy: bool = True,
    donate_input: bool = False,
    feature_shape: tuple[int, int, int] | None = None,
    gpu_profile: str | GpuProfile | None = None,
    keep_dtypes: bool = False,
    grad: bool = False,
) -> MemoryReport:
    """Predict ``torch.cuda.max_memory_allocated()`` of one no-grad forward pass, on fake tensors.

    ``model`` is an ``nn.Module`` (left untouched) or a spec string (built with ``scale``/``deploy``).
    ``device_model`` is ``"cuda"`` (caching allocator, warm + measured forward) or ``"plain"`` (blocks rounded to
    512 bytes). ``donate_input=True`` frees the input after its last use, as for a block inside a network (the
    paper's Fig. 2 view); by default the caller keeps it, as in the NTIRE protocol. ``feature_shape`` (C, H, W)
    overrides the main feature map used as the unit of the decomposition. ``memory_format`` is ``"contiguous"`` or
    ``"channels_last"``. ``gpu_profile`` (a shipped profile's name, a JSON path or a
    :class:`~effbench.memory.workspace.GpuProfile`) adds each convolution's cuDNN workspace; the notes say where
    it was interpolated or extrapolated. ``keep_dtypes``: floating parameters stay in the model's own dtypes (the
    input is ``dtype``); ``grad``: the forward runs with autograd on, parameters requiring grad as the model's
    do; CUDA autocast inside ``forward`` replays as fp16 autocast (:func:`cuda_autocast_on_cpu`).
    """
    h, w = check_size(input_size, batch=batch, channels=channels)
    from ..zoo.spec import resolve_model

    fmt = _memory_format(memory_format)
    profile = load_profile(gpu_profile) if gpu_profile is not None else None
    r = resolve_model(model, scale=scale, deploy=deploy)
    make_allocator(device_model)  # validates the name
    shape = (batch, channels, h, w)
    kw: dict[str, Any] = dict(
        device_model=device_model,
        donate_input=donate_input,
        dtype=dtype,
        model_name=r.name,
        feature_shape=feature_shape,
        gpu_profile=profile,
    )
    opts = {"keep_dtypes": keep_dtypes, "grad": grad}
    try:
        with cuda_autocast_on_cpu():
            trace = _fake_trace(r.model, r.name, shape, dtype, fmt, **opts)
    except data_dependent_errors() as exc:
        with cuda_autocast_on_cpu():
            report = _real_report(r.model, r.name, shape, fmt, exc, **opts, **kw)
        report.autograd_kept = grad  # not looked at in the scaled replays: assume it did
    else:
        report = analyse(trace, input_shape=shape, **kw)
        report.autograd_kept = trace.output_requires_grad
    report.identity = r.identity
    return report


def replay_memory_cpu(
    model: nn.Module | str,
    input_size: tuple[int, int] | int = (32, 32),
    *,
    batch: int = 1,
    channels: int = 3,
    dtype: torch.dtype = torch.float32,
    memory_format: str | torch.memory_format = "contiguous",
    device_model: str = "plain",
    scale: int = 4,
    deploy: bool = True,
    donate_input: bool = False,
    seed: int = 0,
) -> MemoryReport:
    """Run the real forward on real CPU tensors and track live storages the same way (the check of the fake replay).

    The model must live on the CPU; it is run as it is, under ``torch.no_grad()``, on an input in
    ``memory_format`` (convert the model with ``model.to(memory_format=...)`` to match).
    """
    h, w = check_size(input_size, batch=batch, channels=channels)
    from ..zoo.spec import resolve_model

    r = resolve_model(model, scale=scale, deploy=deploy)
    net, name = r.model, r.name
    make_allocator(device_model)
    fmt = _memory_format(memory_format)
    for t in [*net.parameters(), *net.buffers()]:
        if t.device.type != "cpu":
            raise UsageError(f"replay_memory_cpu needs a model on the CPU, found a tensor on {t.device}")
    shape = (batch, channels, h, w)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device("cpu")
    if any(t.dtype != dtype for t in net.parameters() if t.is_floating_point()):
        raise UsageError(f"replay_memory_cpu runs the model as it is: its parameters are not {dtype}")
    try:
        with running_model_code(net), left_as_found(net):
            trace = record_forward(
                net,
                lambda: torch.rand(shape, generator=gen, dtype=dtype).contiguous(memory_format=fmt),
                None,
                dev,
            )
    except Exception as exc:
        raise ModelError(f"the forward of {name} failed on CPU: {type(exc).__name__}: {exc}") from exc
    report = analyse(
        trace,
        device_model=device_model,
        donate_input=donate_input,
        input_shape=shape,
        dtype=dtype,
        model_name=name,
    )
    report.identity = r.identity
    return report

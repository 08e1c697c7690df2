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

from typing import TYPE_CHECKING

import torch

from ..base.errors import ModelError, UsageError
from ..base.measurement import Workload
from ..base.model_code import data_dependent_errors, left_as_found, running_model_code
from .allocator import make_allocator
from .report import LiveTensor, MemoryReport
from .simulate import analyse
from .traces import cuda_autocast_on_cpu, fake_trace, real_report
from .tracker import record_forward
from .workload import memory_workload, resolve_inputs, torch_dtype, torch_format
from .workspace import GpuProfile, load_profile

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .workload import ModelLike, WorkloadFields

__all__ = ["LiveTensor", "MemoryReport", "analyse", "predict_memory", "replay_memory_cpu"]


def predict_memory(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int = (256, 256),
    *,
    device_model: str = "cuda",
    deploy: bool = True,
    donate_input: bool = False,
    feature_shape: tuple[int, int, int] | None = None,
    gpu_profile: str | GpuProfile | None = None,
    keep_dtypes: bool = False,
    grad: bool = False,
    **workload: Unpack[WorkloadFields],
) -> MemoryReport:
    """Predict ``torch.cuda.max_memory_allocated()`` of one no-grad forward pass, on fake tensors.

    ``model`` is an ``nn.Module`` (left untouched), a spec string (built at the workload's ``scale`` with
    ``deploy``) or a resolved model. ``input_size`` is a :class:`~effbench.base.measurement.Workload` or the input's
    ``(H, W)`` (or a side), with the workload's fields as keywords: ``batch``, ``channels``, ``dtype`` (a torch
    dtype or ``fp32``/``fp16``/``bf16``), ``memory_format`` (``"contiguous"`` or ``"channels_last"``), ``scale``.
    ``device_model`` is ``"cuda"`` (caching allocator, warm + measured forward) or ``"plain"`` (blocks rounded to
    512 bytes). ``donate_input=True`` frees the input after its last use, as for a block inside a network (the
    paper's Fig. 2 view); by default the caller keeps it, as in the NTIRE protocol. ``feature_shape`` (C, H, W)
    overrides the main feature map used as the unit of the decomposition. ``gpu_profile`` (a shipped profile's
    name, a JSON path or a :class:`~effbench.memory.workspace.GpuProfile`) adds each convolution's cuDNN
    workspace; the notes say where it was interpolated or extrapolated. ``keep_dtypes``: floating parameters stay
    in the model's own dtypes (the input is ``dtype``); ``grad``: the forward runs with autograd on, parameters
    requiring grad as the model's do; CUDA autocast inside ``forward`` replays as fp16 autocast
    (:func:`~effbench.memory.traces.cuda_autocast_on_cpu`).
    """
    w = _checked(input_size, workload)
    profile = load_profile(gpu_profile) if gpu_profile is not None else None
    r, w = resolve_inputs(model, w, {}, deploy=deploy)
    make_allocator(device_model)  # validates the name
    kw = {"device_model": device_model, "donate_input": donate_input, "feature_shape": feature_shape}
    try:
        with cuda_autocast_on_cpu():
            trace = fake_trace(r.model, r.name, w, keep_dtypes=keep_dtypes, grad=grad)
    except data_dependent_errors() as exc:
        with cuda_autocast_on_cpu():
            report = real_report(
                r.model, r.name, w, exc, gpu_profile=profile, keep_dtypes=keep_dtypes, grad=grad, **kw
            )
        report.autograd_kept = grad  # not looked at in the scaled replays: assume it did
    else:
        report = analyse(
            trace,
            input_shape=w.input_shape,
            dtype=torch_dtype(w),
            model_name=r.name,
            gpu_profile=profile,
            **kw,
        )
        report.autograd_kept = trace.output_requires_grad
    report.identity = r.identity
    return report


def _checked(input_size: Workload | tuple[int, int] | int, fields: WorkloadFields) -> Workload:
    """The workload, its dtype one the replay can run (checked before anything is built)."""
    w = memory_workload(input_size, fields)
    torch_dtype(w)
    return w


def replay_memory_cpu(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int = (32, 32),
    *,
    device_model: str = "plain",
    deploy: bool = True,
    donate_input: bool = False,
    seed: int = 0,
    **workload: Unpack[WorkloadFields],
) -> MemoryReport:
    """Run the real forward on real CPU tensors and track live storages the same way (the check of the fake replay).

    The model must live on the CPU; it is run as it is, under ``torch.no_grad()``, on an input in the workload's
    memory format (convert the model with ``model.to(memory_format=...)`` to match). Arguments as
    :func:`predict_memory`'s.
    """
    r, w = resolve_inputs(model, _checked(input_size, workload), {}, deploy=deploy)
    net, name = r.model, r.name
    make_allocator(device_model)
    shape, dtype, fmt = w.input_shape, torch_dtype(w), torch_format(w)
    for t in [*net.parameters(), *net.buffers()]:
        if t.device.type != "cpu":
            raise UsageError(f"replay_memory_cpu needs a model on the CPU, found a tensor on {t.device}")
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

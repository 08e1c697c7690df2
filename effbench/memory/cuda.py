"""Measure peak GPU memory on CUDA, side by side with the prediction (for the GPU validation).

Protocol (the one :func:`effbench.memory.predict_memory` simulates): free cached blocks, copy the model to the GPU,
create the input on the GPU, ``reset_peak_memory_stats()``, one warm forward whose output is dropped, one measured
forward, then ``max_memory_allocated()``. Everything runs under ``torch.no_grad()``.

The cuDNN workspace is estimated in a separate, third forward: around every ``nn.Conv*`` module the peak is reset
before the call and read after it; the workspace of that conv is the peak reached during the call minus the memory
allocated once it returned (its output included). Functional convolutions (``F.conv2d``) are not covered.
``predicted_with_workspace_bytes`` adds each conv's measured workspace to the predicted memory at that conv.
"""

from __future__ import annotations

import copy
import gc
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..base.errors import UsageError
from ..base.measurement import Workload
from .workload import cuda_device, resolve_inputs, torch_dtype, torch_format

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .workload import ModelLike, WorkloadFields


def _stat(stats: dict[str, Any], key: str) -> int | None:
    v = stats.get(key)
    return int(v) if v is not None else None


def measure_cuda_memory(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int = (256, 256),
    *,
    deploy: bool = True,
    device: str | torch.device | None = None,
    workspace: bool = True,
    **workload: Unpack[WorkloadFields],
) -> dict[str, Any]:
    """Measured ``max_memory_allocated`` and ``memory_stats`` of one forward, with the prediction beside it.

    ``input_size`` and the keywords as :func:`~effbench.memory.predict_memory`'s; ``device``: a CUDA device
    (default: the workload's when it is one, else ``cuda``). The user's model is copied, never moved. Returns a dict: ``measured_peak_bytes`` (max allocated minus what the
    process held before), ``predicted_peak_bytes`` (``device_model="cuda"``), ``predicted_plain_bytes``,
    ``difference_bytes`` / ``difference_pct`` (measured - predicted), ``requested_peak_bytes`` and
    ``allocated_peak_bytes`` from ``memory_stats()``, ``cudnn_workspace_max_bytes``, ``cudnn_workspace_by_module``,
    the predicted peak location, and the environment (GPU name, torch, CUDA, cuDNN versions).
    """
    from .predict import predict_memory

    if not torch.cuda.is_available():
        raise UsageError("measure_cuda_memory needs a CUDA device; none is available")
    r, w = resolve_inputs(model, input_size, workload, deploy=deploy)
    net, name = r.model, r.name
    dtype, fmt = torch_dtype(w), torch_format(w)
    pred = predict_memory(net, w, device_model="cuda")
    dev = cuda_device(device, w)

    gc.collect()
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_allocated(dev)
    gpu = copy.deepcopy(net)
    if dtype != torch.float32:
        gpu = gpu.to(dtype=dtype)  # on the host first, so that no freed block is left cached on the device
    if w.channels_last:
        gpu = gpu.to(memory_format=fmt)
    gpu = gpu.to(device=dev).eval()
    with torch.no_grad():
        x = torch.rand(w.input_shape, device=dev, dtype=dtype).contiguous(memory_format=fmt)
        torch.cuda.synchronize(dev)
        resident = torch.cuda.memory_allocated(dev) - baseline
        torch.cuda.reset_peak_memory_stats(dev)
        gpu(x)  # warm forward, output dropped
        out = gpu(x)  # measured forward
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - baseline
        stats = torch.cuda.memory_stats(dev)
        del out

        per_conv: dict[str, int] = {}
        if workspace:
            handles = []
            before: dict[str, int] = {}

            def pre(mod: nn.Module, args: tuple[object, ...], qn: str) -> None:
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
                before[qn] = torch.cuda.memory_allocated(dev)

            def post(mod: nn.Module, args: tuple[object, ...], output: object, qn: str) -> None:
                torch.cuda.synchronize(dev)
                extra = torch.cuda.max_memory_allocated(dev) - torch.cuda.memory_allocated(dev)
                per_conv[qn] = max(per_conv.get(qn, 0), int(extra))

            for qn, m in gpu.named_modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
                    handles.append(m.register_forward_pre_hook(lambda mod, a, qn=qn: pre(mod, a, qn)))
                    handles.append(m.register_forward_hook(lambda mod, a, o, qn=qn: post(mod, a, o, qn)))
            try:
                gpu(x)
                torch.cuda.synchronize(dev)
            finally:
                for hd in handles:
                    hd.remove()
    del x, gpu
    gc.collect()
    torch.cuda.empty_cache()

    diff = peak - pred.peak_bytes
    # the prediction with the measured workspaces: each conv's live set plus its workspace, on top of the timeline
    with_ws = pred.peak_bytes
    for e in pred.timeline:
        if e["op"].startswith("aten.convolution") and e["module"] in per_conv:
            with_ws = max(with_ws, e["allocated_bytes"] + per_conv[e["module"]])
    return {
        "model": name,
        "model_key": r.identity.key,
        "identity": r.identity.as_dict(),
        "input_shape": list(w.input_shape),
        "dtype": str(dtype).replace("torch.", ""),
        "measured_peak_bytes": int(peak),
        "predicted_peak_bytes": pred.peak_bytes,
        "predicted_plain_bytes": pred.plain_peak_bytes,
        "predicted_with_workspace_bytes": int(with_ws),
        "difference_with_workspace_pct": 100.0 * (peak - with_ws) / peak if peak else float("nan"),
        "difference_bytes": int(diff),
        "difference_pct": 100.0 * diff / peak if peak else float("nan"),
        "resident_measured_bytes": int(resident),
        "resident_predicted_bytes": pred.resident_bytes,
        "baseline_bytes": int(baseline),
        "allocated_peak_bytes": _stat(stats, "allocated_bytes.all.peak"),
        "requested_peak_bytes": _stat(stats, "requested_bytes.all.peak"),
        "reserved_peak_bytes": _stat(stats, "reserved_bytes.all.peak"),
        "cudnn_workspace_max_bytes": max(per_conv.values(), default=0),
        "cudnn_workspace_by_module": per_conv,
        "cudnn_workspace_at_predicted_peak_bytes": per_conv.get(pred.peak_module, 0),
        "predicted_peak_op": pred.peak_op,
        "predicted_peak_module": pred.peak_module,
        "env": {
            "gpu": torch.cuda.get_device_name(dev),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        },
    }

"""Build GPU workspace profiles (:mod:`effbench.memory.workspace`): measure every convolution signature's cuDNN
workspace on a GPU (:func:`calibrate_workspace`, ``effbench memory calibrate --device cuda``), or rebuild a profile
from a recorded validation run (:func:`profile_from_validation`). The signatures of the zoo's convolutions come
from the device-free storage trace (:func:`~effbench.memory.traces.trace_storage`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from ..base.errors import UsageError
from .conv_signature import ConvSignature
from .traces import trace_storage
from .workspace import GpuProfile, merge_points

__all__ = ["DEFAULT_GRID", "calibrate_workspace", "profile_from_validation", "zoo_signatures"]

DEFAULT_GRID: tuple[tuple[int, int], ...] = (
    (64, 64),
    (128, 128),
    (256, 256),
    (270, 480),
    (360, 640),
    (512, 512),
    (540, 960),
    (1080, 1920),
)


def profile_from_validation(
    rows: Iterable[Mapping[str, Any]], env: Mapping[str, Any], *, name: str, source: str
) -> GpuProfile:
    """Rebuild a profile from a validation run's memory rows (``scripts/gpu_check.py``'s ``memory`` part).

    Each row names a zoo model, its scale and size, and ``cudnn_workspace_by_module`` (conv module -> workspace
    bytes, as :func:`~effbench.memory.measure_cuda_memory` measured it); the signature and input size of every conv
    module come from the device-free trace of the same model. ``env`` is the run's environment document.
    """
    samples: list[tuple[ConvSignature, int, int, int]] = []
    for row in rows:
        per = row.get("cudnn_workspace_by_module")
        if row.get("status") != "ok" or not per:
            continue
        h, w = row["size"]
        trace = trace_storage(row["model"], (h, w), scale=int(row.get("scale", 4)))
        for op in trace.ops:
            if op.conv is not None and op.module in per:
                sig, shape = op.conv
                samples.append((sig, shape[2], shape[3], int(per[op.module])))
    key = {
        "gpu": env.get("gpu_name"),
        "driver": env.get("gpu_driver"),
        "cuda": env.get("cuda_version"),
        "cudnn": env.get("cudnn_version"),
        "torch": env.get("torch_version"),
        "cudnn_benchmark": env.get("cudnn_benchmark"),
        "allow_tf32": env.get("tf32_cudnn"),
    }
    return GpuProfile(name, key, merge_points(samples), source=source)


def _env_key(dev: torch.device) -> dict[str, Any]:
    from ..base.env import nvml_handle, nvml_state

    env = nvml_state(nvml_handle(dev.index or 0))
    return {
        "gpu": torch.cuda.get_device_name(dev),
        "driver": env.get("gpu_driver"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "torch": torch.__version__,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "allow_tf32": torch.backends.cudnn.allow_tf32,
    }


def zoo_signatures(
    models: Iterable[str] | None = None,
    *,
    scales: Sequence[int] = (2, 3, 4),
    dtypes: Sequence[torch.dtype] = (torch.float32,),
    channels_last: bool = False,
) -> set[ConvSignature]:
    """The conv signatures of zoo models (all of them by default) at the given scales and dtypes."""
    from ..zoo.registry import list_models, model_info

    found: set[ConvSignature] = set()
    for name in models or list_models():
        for s in scales:
            if s not in model_info(name).scales:
                continue
            for dt in dtypes:
                for cl in (False, True) if channels_last else (False,):
                    fmt = torch.channels_last if cl else torch.contiguous_format
                    trace = trace_storage(name, (32, 32), scale=s, dtype=dt, memory_format=fmt)
                    found.update(op.conv[0] for op in trace.ops if op.conv is not None)
    return found


def calibrate_workspace(
    signatures: Iterable[ConvSignature] | None = None,
    *,
    sizes: Sequence[tuple[int, int]] = DEFAULT_GRID,
    device: str | torch.device = "cuda",
    name: str | None = None,
    progress: Callable[[int, int, str], object] | None = None,
) -> GpuProfile:
    """Measure the workspace of every signature at every size on a GPU, under the current cuDNN settings.

    For each (signature, size): a conv with random weights on the device, one warm call, then peak reset, a second
    call and ``max_memory_allocated - memory_allocated`` (output included in the latter), as
    :func:`~effbench.memory.measure_cuda_memory` measures per module. Also measures the CUDA context: device memory in
    use (``mem_get_info``) minus what PyTorch reserved, before anything else is allocated. ``signatures`` defaults
    to the zoo's (fp32, contiguous; see :func:`zoo_signatures`). ``progress(i, n, text)`` is called per signature.
    """
    from ..base.inputs import resolve_device

    if not torch.cuda.is_available():
        raise UsageError(
            "calibrating cuDNN workspaces needs a CUDA GPU and none is available here; rebuild a profile from a "
            "recorded validation run instead (effbench memory calibrate --from RESULTS.json)"
        )
    dev = resolve_device(device)
    if dev.type != "cuda":
        raise UsageError(f"calibrating cuDNN workspaces needs a CUDA device, got {str(dev)!r}")
    torch.cuda.init()
    torch.cuda.synchronize(dev)
    free, total = torch.cuda.mem_get_info(dev)
    context = int(total - free - torch.cuda.memory_reserved(dev))
    sigs = sorted(set(signatures) if signatures is not None else zoo_signatures(), key=ConvSignature.sort_key)
    samples: list[tuple[ConvSignature, int, int, int]] = []
    t0 = time.perf_counter()
    for i, sig in enumerate(sigs):
        if progress is not None:
            progress(i, len(sigs), sig.describe())
        conv = _conv_module(sig).to(dev)
        for h, w in sizes:
            samples.append((sig, h, w, _measure_one(conv, sig, (h, w), dev)))
        del conv
        torch.cuda.empty_cache()
    key = _env_key(dev)
    return GpuProfile(
        name or re.sub(r"[^a-z0-9]+", "-", str(key["gpu"]).lower()).strip("-"),
        key,
        merge_points(samples),
        cuda_context_bytes=context,
        cuda_context_source="mem_get_info used - memory_reserved at calibration start",
        source=f"effbench memory calibrate: {len(sigs)} signatures x {len(sizes)} sizes in "
        f"{time.perf_counter() - t0:.0f} s",
    )


def _conv_module(sig: ConvSignature) -> torch.nn.Module:
    if len(sig.kernel) != 2:
        raise UsageError(f"calibration measures 2-D convolutions only, not {sig.describe()}")
    dt = getattr(torch, sig.dtype)
    cls = torch.nn.ConvTranspose2d if sig.transposed else torch.nn.Conv2d
    m = cls(
        sig.in_channels,
        sig.out_channels,
        sig.kernel,
        stride=sig.stride,
        padding=sig.padding,
        dilation=sig.dilation,
        groups=sig.groups,
    ).to(dtype=dt)
    if sig.layout == "channels_last":
        m = m.to(memory_format=torch.channels_last)
    return m.eval()


def _measure_one(conv: torch.nn.Module, sig: ConvSignature, size: tuple[int, int], dev: torch.device) -> int:
    dt = getattr(torch, sig.dtype)
    shape = (1, sig.in_channels, *size)
    fmt = torch.channels_last if sig.layout == "channels_last" else torch.contiguous_format
    with torch.no_grad():
        x = torch.rand(shape, device=dev, dtype=dt).contiguous(memory_format=fmt)
        conv(x)  # warm: cuDNN handles, plans
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        out = conv(x)
        torch.cuda.synchronize(dev)
        extra = torch.cuda.max_memory_allocated(dev) - torch.cuda.memory_allocated(dev)
        del out, x
    return int(extra)

"""The environment a measurement ran in: software versions, CPU, GPU and its live state through NVML.

Every field that cannot be read is left out (never guessed, never 0). NVML comes from ``nvidia-ml-py``
(module ``pynvml``) and is imported lazily, so a machine without it, or without an NVIDIA driver, still works.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

__all__ = ["capture_env", "cpu_model", "nvml_handle", "nvml_state", "read_energy_mj"]


def cpu_model() -> str | None:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


_NVML_READY: bool | None = None


def _nvml() -> Any | None:
    """The initialised ``pynvml`` module, or None when NVML is unavailable."""
    global _NVML_READY
    if _NVML_READY is False:
        return None
    try:
        import pynvml  # nvidia-ml-py

        if not _NVML_READY:
            pynvml.nvmlInit()
            _NVML_READY = True
        return pynvml
    except Exception:
        _NVML_READY = False
        return None


def nvml_handle(device_index: int | None = None) -> Any | None:
    """The NVML handle of a CUDA device (matched by PCI bus id when possible), or None."""
    nv = _nvml()
    if nv is None or not torch.cuda.is_available():
        return None
    idx = torch.cuda.current_device() if device_index is None else device_index
    try:
        bus = torch.cuda.get_device_properties(idx).pci_bus_id  # torch >= 2.1 on most builds
    except Exception:
        bus = None
    try:
        if bus:
            return nv.nvmlDeviceGetHandleByPciBusId(bus.encode() if isinstance(bus, str) else bus)
    except Exception:
        pass
    try:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        phys = int(ids[idx]) if ids and ids[idx].isdigit() else idx
        return nv.nvmlDeviceGetHandleByIndex(phys)
    except Exception:
        return None


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def nvml_state(handle: Any | None = None) -> dict[str, Any]:
    """Live GPU state: clocks (MHz), temperature (C), power draw and limit (W), P-state; absent fields omitted."""
    nv = _nvml()
    handle = handle if handle is not None else nvml_handle()
    if nv is None or handle is None:
        return {}
    out: dict[str, Any] = {}
    clk = {"sm": nv.NVML_CLOCK_SM, "mem": nv.NVML_CLOCK_MEM, "graphics": nv.NVML_CLOCK_GRAPHICS}
    for name, kind in clk.items():
        out[f"gpu_clock_{name}_mhz"] = _try(nv.nvmlDeviceGetClockInfo, handle, kind)
        out[f"gpu_clock_{name}_max_mhz"] = _try(nv.nvmlDeviceGetMaxClockInfo, handle, kind)
    out["gpu_temperature_c"] = _try(nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU)
    power = _try(nv.nvmlDeviceGetPowerUsage, handle)
    out["gpu_power_w"] = power / 1000.0 if power is not None else None
    limit = _try(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
    out["gpu_power_limit_w"] = limit / 1000.0 if limit is not None else None
    out["gpu_pstate"] = _try(nv.nvmlDeviceGetPerformanceState, handle)
    driver = _try(nv.nvmlSystemGetDriverVersion)
    out["gpu_driver"] = driver.decode() if isinstance(driver, bytes) else driver
    out["gpu_energy_counter_supported"] = read_energy_mj(handle) is not None
    return {k: v for k, v in out.items() if v is not None}


def read_energy_mj(handle: Any | None = None) -> int | None:
    """NVML's total-energy counter in millijoules since the driver loaded (Volta and newer), or None."""
    nv = _nvml()
    handle = handle if handle is not None else nvml_handle()
    if nv is None or handle is None:
        return None
    return _try(nv.nvmlDeviceGetTotalEnergyConsumption, handle)


def capture_env(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Describe the software and hardware a result was measured on (the result schema's ``env``)."""
    from .. import __version__

    dev = torch.device(device)
    env: dict[str, Any] = {
        "effbench_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_version": torch.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": _try(torch.get_num_interop_threads),
        "float32_matmul_precision": _try(torch.get_float32_matmul_precision),
        "device": dev.type,
    }
    if dev.type == "cuda" and torch.cuda.is_available():
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        env.update(
            {
                "gpu_name": props.name,
                "gpu_capability": f"{props.major}.{props.minor}",
                "gpu_memory_total_bytes": props.total_memory,
                "gpu_multiprocessors": props.multi_processor_count,
                "cuda_version": torch.version.cuda,
                "cudnn_version": _try(torch.backends.cudnn.version),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
            }
        )
        env.update(nvml_state(nvml_handle(idx)))
    return {k: v for k, v in env.items() if v is not None}

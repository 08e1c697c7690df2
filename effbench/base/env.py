"""The environment a measurement ran in: software versions, CPU, GPU and its live state through NVML.

Every field that cannot be read is left out (never guessed, never 0). NVML comes from ``nvidia-ml-py``
(module ``pynvml``) and is imported lazily, so a machine without it, or without an NVIDIA driver, still works.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import torch

__all__ = [
    "LoadProbe",
    "available_memory",
    "capture_env",
    "cpu_freq_mhz",
    "cpu_model",
    "nvml_handle",
    "nvml_state",
    "read_energy_mj",
]

T = TypeVar("T")


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


def _nvml() -> ModuleType | None:
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


def _try(fn: Callable[..., T], *args: object) -> T | None:
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


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def cpu_freq_mhz() -> float | None:
    """Mean current frequency of the CPUs (``scaling_cur_freq``), or None where cpufreq is not exposed."""
    freqs = []
    for i in range(os.cpu_count() or 0):
        text = _read(f"/sys/devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq")
        if text and text.strip().isdigit():
            freqs.append(int(text) / 1000.0)
    return sum(freqs) / len(freqs) if freqs else None


def _busy_ticks() -> int | None:
    """Busy CPU time of the whole machine in clock ticks (``/proc/stat``: all but idle and iowait)."""
    text = _read("/proc/stat")
    if not text or not text.startswith("cpu "):
        return None
    f = [int(v) for v in text.splitlines()[0].split()[1:]]
    return sum(f[:8]) - f[3] - f[4]  # user nice system idle iowait irq softirq steal


def _own_ticks() -> int | None:
    """CPU time of this process (all threads) and its waited-for children, in clock ticks (``/proc/self/stat``)."""
    text = _read("/proc/self/stat")
    if not text:
        return None
    f = text.rsplit(")", 1)[1].split()  # the fields after the command name
    return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime


class LoadProbe:
    """How busy the machine was while a measurement ran: start it before, :meth:`finish` after.

    ``other_cpu_s`` is the CPU time of every other process during the interval (machine busy time from
    ``/proc/stat`` minus this process's from ``/proc/self/stat``), ``other_cpu_share`` that time over the
    interval's capacity (wall time x CPUs); plus the load averages and the mean CPU frequency when readable.
    """

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._busy0 = _busy_ticks()
        self._own0 = _own_ticks()

    def finish(self) -> dict[str, Any]:
        """The load figures of the interval since construction (fields that cannot be read are left out)."""
        wall = time.perf_counter() - self._t0
        out: dict[str, Any] = {"wall_s": wall}
        busy, own = _busy_ticks(), _own_ticks()
        if None not in (busy, own, self._busy0, self._own0):
            tick = os.sysconf("SC_CLK_TCK")
            other = max(0, (busy - self._busy0) - (own - self._own0)) / tick  # type: ignore[operator]
            out["other_cpu_s"] = other
            out["other_cpu_share"] = other / (wall * (os.cpu_count() or 1)) if wall > 0 else None
        if hasattr(os, "getloadavg"):
            out["loadavg_1m"], out["loadavg_5m"], out["loadavg_15m"] = os.getloadavg()
        out["cpu_freq_mhz"] = cpu_freq_mhz()
        return {k: v for k, v in out.items() if v is not None}


def _meminfo_available() -> int | None:
    text = _read("/proc/meminfo")
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_available() -> int | None:
    """Bytes the memory cgroup still allows: limit - usage + reclaimable page cache (v2, else v1); None if unlimited."""
    for limit_f, usage_f, stat_f, inactive in (
        (
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory.current",
            "/sys/fs/cgroup/memory.stat",
            "inactive_file",
        ),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "/sys/fs/cgroup/memory/memory.stat",
            "total_inactive_file",
        ),
    ):
        limit, usage = _read(limit_f), _read(usage_f)
        if limit is None or usage is None:
            continue
        if not limit.strip().isdigit() or int(limit) >= 2**60:  # "max", or v1's "no limit" sentinel
            return None
        cache = 0
        for line in (_read(stat_f) or "").splitlines():
            key, _, val = line.partition(" ")
            if key == inactive and val.strip().isdigit():
                cache = int(val)
        return max(0, int(limit) - int(usage) + cache)
    return None


def available_memory(device: str | torch.device = "cpu") -> tuple[int, str] | None:
    """Bytes a new allocation can still get on ``device`` and where the figure comes from, or None if unknown.

    CPU: the smaller of ``MemAvailable`` (``/proc/meminfo``) and the memory cgroup's headroom; CUDA:
    ``torch.cuda.mem_get_info`` plus what the caching allocator holds reserved but unused.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return int(free + cached), "torch.cuda.mem_get_info"
    figures = [
        (v, src)
        for v, src in ((_meminfo_available(), "MemAvailable"), (_cgroup_available(), "cgroup limit"))
        if v is not None
    ]
    return min(figures) if figures else None


def capture_env(device: str | torch.device = "cpu", load: dict[str, Any] | None = None) -> dict[str, Any]:
    """Describe the software and hardware a result was measured on (the result schema's ``env``); ``load``
    (from :class:`LoadProbe`) is recorded under ``env.load``."""
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
        "load": load,
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

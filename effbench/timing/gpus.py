"""GPU descriptions as data (``effbench/data/gpus/*.json``): peak FLOP/s per dtype, memory bandwidth, kernel-launch
overhead and SM count, each file naming its source. Used by :mod:`effbench.timing.projection` to project a
runtime on a GPU that is not here.

Each file: ``name`` (the key, e.g. ``titan-xp``), ``gpu`` (the marketing name), ``arch``, ``sm_count``,
``peak_tflops`` (dtype -> dense TFLOP/s; ``tf32`` only where tensor cores run it), ``memory_gb_per_s``,
``launch_overhead_us``, ``aliases`` (other spellings, ``torch.cuda.get_device_name`` included), ``derivation``,
``source`` and ``launch_overhead_source``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from ..base.errors import UsageError

__all__ = ["GpuSpec", "gpu_names", "gpu_spec"]


@dataclass(frozen=True)
class GpuSpec:
    """One GPU's published figures (see the module docstring for the fields)."""

    name: str
    gpu: str
    arch: str
    sm_count: int
    peak_tflops: MappingProxyType
    memory_gb_per_s: float
    launch_overhead_us: float
    aliases: tuple[str, ...]
    derivation: str
    source: str
    launch_overhead_source: str

    def peak_flops_per_s(self, dtype: str = "fp32", *, tf32: bool = False) -> float:
        """Peak FLOP/s for ``dtype``; with ``tf32`` (cuDNN's default on Ampere and later) an fp32 convolution may
        run on the TF32 tensor cores, so the larger of the two peaks."""
        if dtype not in self.peak_tflops:
            raise UsageError(f"{self.name}: no published {dtype} peak (has {', '.join(self.peak_tflops)})")
        peak = self.peak_tflops[dtype]
        if dtype == "fp32" and tf32 and "tf32" in self.peak_tflops:
            peak = max(peak, self.peak_tflops["tf32"])
        return float(peak) * 1e12

    @property
    def bytes_per_s(self) -> float:
        return float(self.memory_gb_per_s) * 1e9

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gpu": self.gpu,
            "sm_count": self.sm_count,
            "peak_tflops": dict(self.peak_tflops),
            "memory_gb_per_s": self.memory_gb_per_s,
            "launch_overhead_us": self.launch_overhead_us,
            "source": self.source,
        }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


_REQUIRED = ("name", "gpu", "sm_count", "peak_tflops", "memory_gb_per_s", "launch_overhead_us", "source")


@functools.lru_cache(maxsize=1)
def _all() -> dict[str, GpuSpec]:
    out: dict[str, GpuSpec] = {}
    folder = resources.files("effbench") / "data" / "gpus"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".json"):
            continue
        d = json.loads(item.read_text())
        missing = [k for k in _REQUIRED if k not in d]
        if missing or "fp32" not in d.get("peak_tflops", {}):
            raise ValueError(f"GPU file {item.name}: missing {', '.join(missing) or 'peak_tflops.fp32'}")
        out[d["name"]] = GpuSpec(
            d["name"],
            d["gpu"],
            d.get("arch", ""),
            int(d["sm_count"]),
            MappingProxyType({k: float(v) for k, v in d["peak_tflops"].items()}),
            float(d["memory_gb_per_s"]),
            float(d["launch_overhead_us"]),
            tuple(d.get("aliases", ())),
            d.get("derivation", ""),
            d["source"],
            d.get("launch_overhead_source", ""),
        )
    return out


def gpu_names() -> tuple[str, ...]:
    """The names of the described GPUs."""
    return tuple(_all())


def gpu_spec(name: str | GpuSpec) -> GpuSpec:
    """The described GPU called ``name`` (its key, marketing name or an alias, case and punctuation ignored,
    so ``torch.cuda.get_device_name()`` works); an unknown name is a usage error listing the known ones."""
    if isinstance(name, GpuSpec):
        return name
    want = _slug(name)
    for spec in _all().values():
        if want in {_slug(spec.name), _slug(spec.gpu), *(_slug(a) for a in spec.aliases)}:
            return spec
    raise UsageError(f"no GPU description called {name!r}; known GPUs: {', '.join(gpu_names())}")

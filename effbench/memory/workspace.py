"""GPU workspace profiles: the memory cuDNN takes inside each convolution, per convolution signature and size.

A profile is a JSON document for one GPU and software stack (GPU name, driver, CUDA, cuDNN and torch versions, the
cuDNN settings). For every convolution signature (:class:`ConvSignature`: kernel, stride, padding, dilation,
groups, channels, transposed, dtype, memory layout) it holds the workspace measured at a grid of input sizes:
``points`` of ``[H, W, bytes]`` for a batch-1 input of that spatial size (the conv's own input, not the model's).
The bytes are what ``max_memory_allocated`` rose above the memory allocated once the conv returned, i.e. in the
caching allocator's block units.

:meth:`GpuProfile.workspace` interpolates linearly in the number of pixels (batch x H x W) between grid points and
extrapolates linearly from the two nearest end points (proportionally from a single point, never below 0), saying so:
workspace sizes follow cuDNN's algorithm choice, which can change between grid points, so an extrapolated figure is
an estimate. A signature the profile lacks has no workspace added, also said.

Profiles come from :func:`~effbench.memory.calibrate.calibrate_workspace` on a GPU (``effbench memory calibrate
--device cuda``) or are rebuilt from a recorded validation run
(:func:`~effbench.memory.calibrate.profile_from_validation`); the ones shipped with effbench live in
``effbench/data/gpu_profiles/`` and are found by name (:func:`load_profile`, :func:`profile_names`). The
convolution signature is :class:`~effbench.memory.conv_signature.ConvSignature`.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from ..base.errors import UsageError
from .conv_signature import ConvSignature

__all__ = ["FORMAT", "ConvSignature", "GpuProfile", "Lookup", "load_profile", "merge_points", "profile_names"]

FORMAT = 1


@dataclass
class Lookup:
    """One workspace figure and how it was found: ``"grid"`` (a grid point), ``"interpolated"``, ``"extrapolated"``
    or ``"missing"`` (signature not in the profile: 0 bytes)."""

    bytes: int
    how: str


@dataclass
class GpuProfile:
    """Workspace per convolution signature over a grid of sizes, for one GPU and software stack."""

    name: str
    key: dict[str, Any]  # gpu, driver, cuda, cudnn, torch, cudnn_benchmark, allow_tf32
    convs: dict[ConvSignature, list[tuple[int, int, int]]]  # signature -> sorted [(H, W, bytes)]
    cuda_context_bytes: int | None = None
    cuda_context_source: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def workspace(self, sig: ConvSignature, input_shape: Sequence[int]) -> Lookup:
        """The workspace of a conv with signature ``sig`` on an input of ``input_shape`` (N, C, H, W...)."""
        points = self.convs.get(sig)
        if not points:
            return Lookup(0, "missing")
        n = int(input_shape[0]) if input_shape else 1
        px = n * _pixels(input_shape[2:])
        xs = [h * w for h, w, _ in points]
        ys = [b for _, _, b in points]
        i = bisect.bisect_left(xs, px)
        if i < len(xs) and xs[i] == px:
            return Lookup(ys[i], "grid")
        if 0 < i < len(xs):
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            return Lookup(_round_block(y0 + (y1 - y0) * (px - x0) / (x1 - x0)), "interpolated")
        if len(xs) == 1:
            return Lookup(_round_block(ys[0] * px / xs[0]), "extrapolated")
        j = 0 if i == 0 else len(xs) - 2
        x0, x1, y0, y1 = xs[j], xs[j + 1], ys[j], ys[j + 1]
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        return Lookup(_round_block(max(0.0, y0 + slope * (px - x0))), "extrapolated")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            **{k: self.key.get(k) for k in _KEY_FIELDS},
            "cuda_context_bytes": self.cuda_context_bytes,
            "cuda_context_source": self.cuda_context_source,
            "source": self.source,
            "notes": list(self.notes),
            "convs": [
                {**_sig_dict(sig), "points": [list(p) for p in pts]}
                for sig, pts in sorted(self.convs.items(), key=lambda kv: kv[0].sort_key())
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "") -> GpuProfile:
        if d.get("format") != FORMAT:
            raise UsageError(
                f"GPU profile {where or d.get('name')!r} has format {d.get('format')!r}, not {FORMAT}"
            )
        convs: dict[ConvSignature, list[tuple[int, int, int]]] = {}
        for c in d.get("convs", []):
            pts = sorted((int(h), int(w), int(b)) for h, w, b in c["points"])
            convs[ConvSignature.from_dict(c)] = sorted(pts, key=lambda p: p[0] * p[1])
        ctx = d.get("cuda_context_bytes")
        return cls(
            str(d.get("name", "")),
            {k: d.get(k) for k in _KEY_FIELDS},
            convs,
            int(ctx) if ctx is not None else None,
            str(d.get("cuda_context_source", "")),
            str(d.get("source", "")),
            list(d.get("notes", [])),
        )

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return p


_KEY_FIELDS = ("gpu", "driver", "cuda", "cudnn", "torch", "cudnn_benchmark", "allow_tf32")


def _sig_dict(sig: ConvSignature) -> dict[str, Any]:
    d = asdict(sig)
    for k in ("kernel", "stride", "padding", "dilation"):
        d[k] = list(d[k])
    return d


def _pixels(spatial: Sequence[int]) -> int:
    n = 1
    for d in spatial:
        n *= int(d)
    return n


def _round_block(nbytes: float) -> int:
    """Round a workspace estimate up to the allocator's 512-byte blocks (0 stays 0)."""
    b = int(nbytes + 0.5)
    return 0 if b <= 0 else 512 * ((b + 511) // 512)


def _profiles_dir() -> Traversable:
    return resources.files("effbench").joinpath("data", "gpu_profiles")


def profile_names() -> list[str]:
    """Names of the GPU profiles shipped with effbench (``effbench/data/gpu_profiles/*.json``)."""
    return sorted(p.name[:-5] for p in _profiles_dir().iterdir() if p.name.endswith(".json"))


def load_profile(profile: str | Path | GpuProfile) -> GpuProfile:
    """A profile by shipped name (``"nvidia-h200"``), by JSON path, or one already loaded."""
    if isinstance(profile, GpuProfile):
        return profile
    path = Path(profile)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise UsageError(f"GPU profile file {str(path)!r} does not exist")
        text, where = path.read_text(), str(path)
    else:
        entry = _profiles_dir().joinpath(f"{profile}.json")
        if not entry.is_file():
            raise UsageError(
                f"unknown GPU profile {str(profile)!r}: shipped profiles are {', '.join(profile_names()) or 'none'}"
                " (or give a path to a profile JSON file)"
            )
        text, where = entry.read_text(), str(profile)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"GPU profile {where!r} is not valid JSON: {exc}") from None
    return GpuProfile.from_dict(doc, where=where)


def merge_points(
    samples: Iterable[tuple[ConvSignature, int, int, int]],
) -> dict[ConvSignature, list[tuple[int, int, int]]]:
    """``(signature, H, W, bytes)`` samples -> the profile's grid; several samples at one size keep the largest."""
    best: dict[ConvSignature, dict[tuple[int, int], int]] = {}
    for sig, h, w, b in samples:
        cell = best.setdefault(sig, {})
        cell[(h, w)] = max(cell.get((h, w), 0), int(b))
    return {
        sig: sorted(((h, w, b) for (h, w), b in cells.items()), key=lambda p: (p[0] * p[1], p[0]))
        for sig, cells in best.items()
    }

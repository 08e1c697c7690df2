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

Profiles come from :func:`calibrate_workspace` on a GPU (``effbench memory calibrate --device cuda``) or are rebuilt
from a recorded validation run (:func:`profile_from_validation`); the ones shipped with effbench live in
``effbench/data/gpu_profiles/`` and are found by name (:func:`load_profile`, :func:`profile_names`).
"""

from __future__ import annotations

import bisect
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..base.errors import UsageError

FORMAT = 1
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


@dataclass(frozen=True)
class ConvSignature:
    """What cuDNN's choice of algorithm (and so its workspace) depends on, apart from the input size."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    in_channels: int
    out_channels: int
    transposed: bool
    dtype: str  # "float32", "float16", "bfloat16"
    layout: str  # "contiguous" or "channels_last"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConvSignature:
        try:
            return cls(
                tuple(d["kernel"]),
                tuple(d["stride"]),
                tuple(d["padding"]),
                tuple(d["dilation"]),
                int(d["groups"]),
                int(d["in_channels"]),
                int(d["out_channels"]),
                bool(d["transposed"]),
                str(d["dtype"]),
                str(d["layout"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad convolution signature in a GPU profile: {dict(d)!r} ({exc})") from None

    def describe(self) -> str:
        k = "x".join(map(str, self.kernel))
        s = "x".join(map(str, self.stride))
        return (
            f"{'deconv' if self.transposed else 'conv'} {k}/s{s} {self.in_channels}->{self.out_channels}"
            f" g{self.groups} {self.dtype} {self.layout}"
        )


def layout_of(t: torch.Tensor) -> str:
    """``"channels_last"`` for a 4-D tensor in channels-last order that is not also contiguous, else ``"contiguous"``."""
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "contiguous"


def conv_call(args: Sequence[Any]) -> tuple[ConvSignature, tuple[int, ...]]:
    """The signature and input shape of one ``aten.convolution.default`` call from its arguments."""
    x, weight, _bias, stride, padding, dilation, transposed, _out_pad, groups = args[:9]
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    sig = ConvSignature(
        tuple(int(k) for k in weight.shape[2:]),
        tuple(int(v) for v in stride),
        tuple(int(v) for v in padding),
        tuple(int(v) for v in dilation),
        int(groups),
        int(x.shape[1]),
        int(out_channels),
        bool(transposed),
        str(x.dtype).replace("torch.", ""),
        layout_of(x),
    )
    return sig, tuple(int(d) for d in x.shape)


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
                for sig, pts in sorted(self.convs.items(), key=lambda kv: _sig_sort(kv[0]))
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


def _sig_sort(sig: ConvSignature) -> tuple:
    return (sig.dtype, sig.layout, sig.kernel, sig.in_channels, sig.out_channels, sig.groups, sig.stride)


def _pixels(spatial: Sequence[int]) -> int:
    n = 1
    for d in spatial:
        n *= int(d)
    return n


def _round_block(nbytes: float) -> int:
    """Round a workspace estimate up to the allocator's 512-byte blocks (0 stays 0)."""
    b = int(nbytes + 0.5)
    return 0 if b <= 0 else 512 * ((b + 511) // 512)


def _profiles_dir() -> Any:
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


# --------------------------------------------------------------------------------------------- building profiles
def profile_from_validation(
    rows: Iterable[Mapping[str, Any]], env: Mapping[str, Any], *, name: str, source: str
) -> GpuProfile:
    """Rebuild a profile from a validation run's memory rows (``scripts/gpu_check.py``'s ``memory`` part).

    Each row names a zoo model, its scale and size, and ``cudnn_workspace_by_module`` (conv module -> workspace
    bytes, as :func:`~effbench.memory.measure_cuda_memory` measured it); the signature and input size of every conv
    module come from the device-free trace of the same model. ``env`` is the run's environment document.
    """
    from .predict import trace_model

    samples: list[tuple[ConvSignature, int, int, int]] = []
    for row in rows:
        per = row.get("cudnn_workspace_by_module")
        if row.get("status") != "ok" or not per:
            continue
        h, w = row["size"]
        trace = trace_model(row["model"], (h, w), scale=int(row.get("scale", 4)))
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
    from .predict import trace_model

    found: set[ConvSignature] = set()
    for name in models or list_models():
        for s in scales:
            if s not in model_info(name).scales:
                continue
            for dt in dtypes:
                for cl in (False, True) if channels_last else (False,):
                    fmt = torch.channels_last if cl else torch.contiguous_format
                    trace = trace_model(name, (32, 32), scale=s, dtype=dt, memory_format=fmt)
                    found.update(op.conv[0] for op in trace.ops if op.conv is not None)
    return found


def calibrate_workspace(
    signatures: Iterable[ConvSignature] | None = None,
    *,
    sizes: Sequence[tuple[int, int]] = DEFAULT_GRID,
    device: str | torch.device = "cuda",
    name: str | None = None,
    progress: Any = None,
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
    sigs = sorted(set(signatures) if signatures is not None else zoo_signatures(), key=_sig_sort)
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

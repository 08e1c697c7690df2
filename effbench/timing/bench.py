"""``effbench.benchmark``: the runtime (and, on CUDA, the measured peak memory) of one model under one
:class:`~effbench.base.measurement.Workload`, by one of two protocols: ``steady``
(:func:`effbench.timing.steady.run_steady`) or ``ntire`` (:func:`effbench.timing.ntire.run_ntire`).

:func:`benchmark` checks the workload and the :class:`BenchOptions`, resolves the model once, prepares it under
its backend (:func:`prepare_timed_model`: placement, dtype, memory format, export, equivalence with eager fp32),
then hands it to the protocol and records the result (:class:`~effbench.timing.result.BenchmarkResult`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..backends import DEFAULT_THRESHOLD_DB, check_equivalence, get_backend, model_dtype, prepare
from ..base.env import LoadProbe, capture_env
from ..base.errors import ModelError, UsageError
from ..base.images import to_tensor
from ..base.inputs import DTYPES, num_threads, resolve_device
from ..base.measurement import Workload
from ..base.options import with_changes
from ..zoo.spec import ModelSpec, ResolvedModel, resolve_model
from .image_pairs import ImagePair, find_pairs, synthetic_pairs
from .ntire import evaluate_psnr, run_ntire
from .result import BenchmarkResult
from .steady import TimingTarget, WarmupRule, run_steady

if TYPE_CHECKING:
    from ..memory import MemoryReport

__all__ = ["TIMING_PROTOCOLS", "BenchOptions", "BenchmarkResult", "OutOfMemory", "benchmark"]

TIMING_PROTOCOLS = ("steady", "ntire")


@dataclass(frozen=True)
class BenchOptions:
    """How :func:`benchmark` times (what it times is the :class:`~effbench.base.measurement.Workload`).

    ``protocol``: ``steady`` or ``ntire``. ``repeats``: timed forwards (None: 100 on CUDA; on CPU as many as
    ``target`` asks, :class:`~effbench.timing.steady.TimingTarget`); ``warmup``: the steady warm-up rule (None:
    the device's default). ``cuda_graphs``: time CUDA-graph replays (steady, CUDA, eager or compile). ``dataset``:
    a data set folder (ntire: the images timed; steady: times the first image's size and scores PSNR over all);
    ``images``: synthetic images for ntire without a data set. ``roofline``: add ``metrics.roofline``.
    ``energy_seconds``: the NVML energy loop on CUDA (None: 1 s on CUDA, none on CPU). ``seed``: of the random
    input. ``backend`` (:mod:`effbench.backends`) and ``equivalence_db``, the PSNR against eager fp32 below which
    an exported or reduced-precision model is refused. ``preflight``: check the predicted peak memory against the
    device's free memory first. ``calibration``: the folders of LR images a quantised dtype (``int8``) is
    calibrated on (recorded in the result's ``settings``)."""

    protocol: str = "steady"
    repeats: int | None = None
    warmup: WarmupRule | None = None
    target: TimingTarget | None = None
    cuda_graphs: bool = False
    dataset: str | Path | None = None
    images: int = 10
    roofline: bool = False
    energy_seconds: float | None = None
    seed: int = 0
    backend: str = "eager"
    equivalence_db: float = DEFAULT_THRESHOLD_DB
    preflight: bool = True
    calibration: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        folders = [self.calibration] if isinstance(self.calibration, (str, Path)) else self.calibration
        object.__setattr__(self, "calibration", tuple(str(f) for f in folders))
        if self.protocol not in TIMING_PROTOCOLS:
            raise UsageError(f"unknown protocol {self.protocol!r}: use {' or '.join(TIMING_PROTOCOLS)}")
        if self.repeats is not None and self.repeats < 1:
            raise UsageError(f"repeats must be >= 1, got {self.repeats}")
        if self.images < 1:
            raise UsageError(f"images must be >= 1, got {self.images}")
        if self.cuda_graphs and self.protocol != "steady":
            raise UsageError("CUDA graphs need --device cuda and the steady protocol")
        get_backend(self.backend)  # an unknown name is a usage error before anything is built
        if self.cuda_graphs and self.backend not in ("eager", "compile"):
            raise UsageError(f"CUDA graphs need the eager or compile backend, not {self.backend}")

    def with_(self, **changes: object) -> BenchOptions:
        """A copy with ``changes`` (checked again); an unknown name is a :class:`TypeError` naming the options."""
        return with_changes(self, changes, caller="benchmark")


class OutOfMemory(ModelError):
    """The device ran out of memory during the measurement (sweep status ``oom``)."""

    status = "oom"


@contextlib.contextmanager
def _map_errors() -> Iterator[None]:
    """Turn what a forward can raise into effbench errors carrying a sweep status."""
    try:
        yield
    except (ModelError, UsageError):
        raise
    except torch.cuda.OutOfMemoryError as exc:
        raise OutOfMemory(f"CUDA out of memory: {str(exc).splitlines()[0]}") from exc
    except RuntimeError as exc:
        msg = str(exc)
        if "out of memory" in msg.lower() or "can't allocate memory" in msg:
            raise OutOfMemory(f"out of memory: {msg.splitlines()[0]}") from exc
        raise ModelError(
            f"forward failed: {type(exc).__name__}: {msg.splitlines()[0] if msg else ''}"
        ) from exc
    except Exception as exc:
        raise ModelError(f"forward failed: {type(exc).__name__}: {exc}") from exc


def _workload(
    size_or_workload: Workload | tuple[int, int],
    scale: int | None,
    device: str | torch.device | None,
    dtype: str | None,
    threads: int | None,
    channels_last: bool | None,
) -> Workload:
    """The workload, from a :class:`Workload` (the keywords given override its fields) or a size."""
    changes: dict[str, int | str] = {
        k: v for k, v in (("scale", scale), ("dtype", dtype), ("threads", threads)) if v is not None
    }
    if device is not None:
        changes["device"] = str(device)
    if channels_last is not None:
        changes["memory_format"] = "channels_last" if channels_last else "contiguous"
    if isinstance(size_or_workload, Workload):
        return size_or_workload.with_(**changes) if changes else size_or_workload
    # the workload needs a scale; the model's own one is used when the caller gave none
    changes.setdefault("scale", 4)
    return Workload(size=size_or_workload, **changes)


def benchmark(
    model_or_spec: nn.Module | str | ModelSpec | ResolvedModel,
    workload: Workload | tuple[int, int] = (256, 256),
    options: BenchOptions | None = None,
    *,
    scale: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
    threads: int | None = None,
    channels_last: bool | None = None,
    predicted_memory: MemoryReport | None = None,
    pretrained: bool = False,
    deploy: bool = True,
    **option_changes: object,
) -> BenchmarkResult:
    """Measure the runtime of a model (module, zoo name, spec or resolved model) under ``workload``.

    ``workload``: a :class:`~effbench.base.measurement.Workload`, or the LR input's ``(H, W)`` with ``scale``,
    ``device`` (default cpu), ``dtype`` (default fp32), ``threads`` and ``channels_last`` as keywords (given
    with a Workload, they override its fields). ``options``: a :class:`BenchOptions`; any of its fields may be
    given as a keyword instead (``benchmark(m, (64, 64), repeats=20, protocol="ntire")``). ``scale=None`` with a
    size: a spec is built at x4, an instance has whatever scale its output shows.

    ``protocol="steady"`` (default): cold first call, warm-up until timings settle (:class:`WarmupRule`), then
    ``repeats`` timed forwards under ``inference_mode``; runtime statistics with the median's CI (``ci_low``,
    ``ci_high``, ``ci_rel``, ``noisy``) in ``metrics.runtime_ms`` and, on CUDA, the peak memory of one forward
    after a reset and the energy per image. ``protocol="ntire"``: the challenge's script
    (:mod:`effbench.timing.ntire`) over ``dataset`` or ``images`` synthetic images of the workload's size. With a
    data set the steady protocol times the first image's size and scores PSNR over all images. The machine's
    load is recorded in ``env.load``. ``preflight`` first checks the predicted peak memory against the device's
    free memory and refuses with the figures (:class:`~effbench.memory.preflight.MemoryWontFit`);
    ``predicted_memory``, a :func:`~effbench.predict_memory` report the caller already has for this model,
    spares it a second prediction when it is for the measured input and dtype. ``backend`` prepares the model
    once before timing (``export_seconds``, ``artifact_bytes``); an exported or reduced-precision model is first
    compared with eager fp32 (``equivalence_psnr_db``, ``equivalence_max_abs_diff``) and refused as
    ``bad_output`` below ``equivalence_db``. ``dtype="int8"`` is the backend's post-training quantisation.
    Raises :class:`~effbench.base.errors.UsageError` for bad arguments and
    :class:`~effbench.base.errors.ModelError` (``BadOutputError``, ``NonFiniteOutputError``, :class:`OutOfMemory`)
    when the model fails.
    """
    opts = (
        (options or BenchOptions()).with_(**option_changes) if option_changes else options or BenchOptions()
    )
    wl = _workload(workload, scale, device, dtype, threads, channels_last)
    model_dtype(opts.backend, wl.dtype)  # int8 under a backend that cannot quantise: refused before building
    dev = resolve_device(wl.device)
    if opts.cuda_graphs and dev.type != "cuda":
        raise UsageError("CUDA graphs need --device cuda and the steady protocol")
    if opts.protocol == "ntire" and wl.input_shape[:2] != (1, 3):
        raise UsageError("the ntire protocol runs one RGB image at a time: batch 1, 3 channels")
    # a spec is built at x4 unless told; an instance without a scale has whatever scale its output says
    known_scale = wl.scale if isinstance(workload, Workload) or scale is not None else None
    resolved = resolve_model(model_or_spec, scale=known_scale, pretrained=pretrained, deploy=deploy)
    return _measure(
        resolved, wl, dev, opts, predicted_memory, caller_owns_model=isinstance(model_or_spec, nn.Module)
    )


def _measure(
    resolved: ResolvedModel,
    wl: Workload,
    dev: torch.device,
    opts: BenchOptions,
    predicted_memory: MemoryReport | None,
    caller_owns_model: bool,
) -> BenchmarkResult:
    """Prepare the resolved model and run the chosen protocol on it."""
    ident = resolved.identity
    scale, data_range = ident.scale, ident.data_range
    tdtype = model_dtype(opts.backend, wl.dtype)  # fp32 for int8, which the backend quantises itself
    repeats = opts.repeats if opts.repeats is not None or dev.type != "cuda" else 100
    rule = opts.warmup or (
        WarmupRule(window=10) if dev.type == "cuda" else WarmupRule(window=5, tolerance=0.05, max_seconds=3.0)
    )
    energy_seconds = opts.energy_seconds
    if energy_seconds is None:
        energy_seconds = 1.0 if dev.type == "cuda" else 0.0
    pairs = find_pairs(opts.dataset, scale or 4) if opts.dataset is not None else None
    if pairs is not None:
        wl = wl.with_(size=pairs[0].lr_array().shape[:2])
    dataset = (
        str(opts.dataset)
        if opts.dataset is not None
        else (
            f"synthetic: {opts.images} random uint8 images {wl.size[0]}x{wl.size[1]}"
            if opts.protocol == "ntire"
            else None
        )
    )
    settings: dict[str, Any] = {
        "channels_last": wl.channels_last,
        "cuda_graphs": opts.cuda_graphs,
        "repeats": repeats,
        "threads": wl.threads,
        "warmup": vars(rule) if hasattr(rule, "__dict__") else str(rule),
        "data_range": data_range,
        "timing_target": vars(opts.target or TimingTarget()) if repeats is None else None,
        "backend": opts.backend,
    }
    if opts.calibration and wl.dtype not in DTYPES:  # what a quantised dtype was calibrated on
        settings["calibration"] = list(opts.calibration)
    model = resolved.model
    if opts.preflight:
        from ..memory.preflight import check_fits

        settings["preflight"] = check_fits(
            model, wl.size, dev, tdtype, f"bench of {ident.name}", predicted=predicted_memory
        )
    probe = LoadProbe()
    with num_threads(wl.threads), _map_errors():
        other = _memory_held_before(model, dev)
        if caller_owns_model and any(
            t.device != dev or (t.is_floating_point() and t.dtype != tdtype)
            for t in [*model.parameters(), *model.buffers()]
        ):
            model = copy.deepcopy(model)  # nn.Module.to works in place: leave the caller's model where it was
        timed_model, example, backend_metrics, details = prepare_timed_model(
            model, wl, dev, opts, data_range, ident.name
        )
        settings["backend_details"] = details
        if opts.protocol == "ntire":
            src = (
                pairs
                if pairs is not None
                else list(synthetic_pairs(opts.images, wl.size, scale or 4, opts.seed))
            )
            metrics = run_ntire(
                timed_model,
                src,
                dev,
                data_range=data_range,
                scale=scale,
                dtype=example.dtype,
                channels_last=wl.channels_last,
            )
            scale = metrics.pop("scale")
        else:
            x = example if pairs is None else _first_image(pairs, data_range, wl, dev, example.dtype)
            metrics, scale = run_steady(
                timed_model,
                x,
                dev,
                scale,
                repeats=repeats,
                rule=rule,
                target=opts.target,
                cuda_graphs=opts.cuda_graphs,
                energy_seconds=energy_seconds,
                other_bytes=other,
            )
            if pairs is not None:
                metrics.update(
                    evaluate_psnr(
                        timed_model, pairs, dev, data_range=data_range, scale=scale, dtype=example.dtype
                    )
                )
        if opts.roofline:
            metrics.update(_roofline(model, wl, dev, example.dtype, metrics["runtime_ms"]["median"]))
        metrics.update(backend_metrics)
        env = capture_env(dev, load=probe.finish())
    return BenchmarkResult(
        identity=ident,
        input_shape=wl.input_shape,
        scale=scale,
        device=dev.type,
        dtype=wl.dtype,
        protocol=opts.protocol,
        backend=opts.backend,
        dataset=dataset,
        settings=settings,
        measured=metrics,
        env=env,
    )


def _memory_held_before(model: nn.Module, dev: torch.device) -> int:
    """On CUDA, what the process holds already, less the model's own tensors on that device; 0 elsewhere."""
    if dev.type != "cuda":
        return 0
    own = sum(
        t.untyped_storage().nbytes() for t in [*model.parameters(), *model.buffers()] if t.device == dev
    )
    return max(0, torch.cuda.memory_allocated(dev) - own)


def prepare_timed_model(
    model: nn.Module,
    wl: Workload,
    dev: torch.device,
    opts: BenchOptions,
    data_range: float,
    name: str,
) -> tuple[nn.Module, torch.Tensor, dict[str, float | int], dict[str, Any] | None]:
    """``model`` on the workload's device, dtype and memory format, prepared under ``opts.backend``; an exported
    or reduced-precision model compared with eager fp32 on a seeded input first. Returns the module to time, the
    seeded example input, the backend's metrics (export time, artifact size, equivalence) and its details."""
    tdtype = model_dtype(opts.backend, wl.dtype)
    gen = torch.Generator().manual_seed(opts.seed)
    x32 = (torch.rand(*wl.input_shape, generator=gen) * data_range).to(device=dev)
    model = model.to(device=dev).eval()
    reference = None
    if opts.backend != "eager" or wl.dtype != "fp32":  # eager fp32 is the reference
        with torch.inference_mode():
            reference = model(x32)
    model = model.to(dtype=tdtype)
    example = x32.to(tdtype)
    if wl.channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    prepared = prepare(model, example, opts.backend, wl.dtype, data_range, calibration=opts.calibration)
    metrics: dict[str, float | int] = {
        k: v
        for k, v in (("export_seconds", prepared.export_seconds), ("artifact_bytes", prepared.artifact_bytes))
        if v is not None
    }
    if reference is not None:
        with torch.inference_mode():
            out = prepared.fn(example)
        what = f"{name} under {opts.backend} {wl.dtype}"
        metrics.update(check_equivalence(out, reference, data_range, opts.equivalence_db, what=what))
        del out, reference
    timed = model if opts.backend == "eager" else prepared.as_module(model)
    return timed, example, metrics, prepared.details or None


def _first_image(
    pairs: list[ImagePair], data_range: float, wl: Workload, dev: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The data set's first LR image as the model's input (the size the steady protocol times with a data set)."""
    x = to_tensor(pairs[0].lr_array(), data_range, dev, dtype)
    return x.contiguous(memory_format=torch.channels_last) if wl.channels_last else x


def _roofline(
    model: nn.Module, wl: Workload, dev: torch.device, dtype: torch.dtype, median_ms: float
) -> dict[str, Any]:
    """``roofline`` (the bound at the measured median), or ``roofline_error``: the bound is an extra, its failure
    must not lose the measurement."""
    from .roofline import roofline

    try:
        return {"roofline": roofline(model, wl.input_shape, dev, dtype, median_ms)}
    except Exception as exc:
        return {"roofline_error": f"{type(exc).__name__}: {exc}"}

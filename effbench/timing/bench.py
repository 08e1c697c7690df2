"""``effbench.benchmark``: runtime (and measured peak memory) of one model at one input size."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..backends import DEFAULT_THRESHOLD_DB, check_equivalence, get_backend, model_dtype, prepare
from ..base.env import LoadProbe, capture_env
from ..base.errors import ModelError, UsageError
from ..base.images import to_tensor
from ..base.inputs import check_size, num_threads, resolve_device
from ..base.results import new_result
from ..zoo.spec import ModelSpec, resolve_model
from .image_pairs import find_pairs, synthetic_pairs
from .ntire import evaluate_psnr, run_ntire
from .steady import TimingTarget, WarmupRule, make_timer, time_steady
from .output_check import check_output

if TYPE_CHECKING:
    from ..memory.predict import MemoryReport

__all__ = ["BenchmarkResult", "benchmark", "OutOfMemory"]


class BenchmarkResult(dict[str, Any]):
    """What :func:`benchmark` returns: the ``effbench.result/1`` document itself (a dict, written as JSON as it is),
    with :meth:`metrics`."""

    def metrics(self) -> dict[str, Any]:
        """The measured metrics, keyed by :mod:`effbench.base.catalogue` keys (runtime statistics, measured peak
        memory and energy on CUDA, PSNR with a data set, the roofline bound)."""
        return dict(self.get("metrics") or {})


TIMING_PROTOCOLS = ("steady", "ntire")


class OutOfMemory(ModelError):
    """The device ran out of memory during the measurement (sweep status ``oom``)."""

    status = "oom"


@contextlib.contextmanager
def _map_errors() -> Iterator[None]:
    """Turn what a forward can raise into effbench errors carrying a sweep status."""
    try:
        yield
    except ModelError:
        raise
    except UsageError:
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


def _energy(model: nn.Module, x: torch.Tensor, device: torch.device, seconds: float) -> dict[str, Any]:
    """Joules per forward from NVML's total-energy counter over a loop of at least ``seconds``."""
    from ..base.env import nvml_handle, read_energy_mj

    handle = nvml_handle(device.index)
    if handle is None or read_energy_mj(handle) is None:
        return {}
    torch.cuda.synchronize(device)
    e0, t0, n = read_energy_mj(handle), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or n < 3:
        model(x)
        n += 1
        if n % 10 == 0:
            torch.cuda.synchronize(device)
    torch.cuda.synchronize(device)
    e1, dt = read_energy_mj(handle), time.perf_counter() - t0
    if e0 is None or e1 is None or e1 <= e0:
        return {}
    joules = (e1 - e0) / 1000.0
    return {"energy_j_per_image": joules / n, "power_w_mean": joules / dt, "energy_loop_images": n}


def _cuda_graph_step(model: nn.Module, x: torch.Tensor) -> tuple[Any, torch.cuda.CUDAGraph]:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay, graph


def _steady(
    model: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    scale: int | None,
    *,
    repeats: int | None,
    rule: WarmupRule,
    target: TimingTarget | None,
    cuda_graphs: bool,
    energy_seconds: float,
    other_bytes: int = 0,
) -> tuple[dict[str, Any], int]:
    """Time ``model(x)`` under the steady protocol; on CUDA also the peak of one forward after a reset, less
    ``other_bytes`` (device memory held before the benchmark that is not the model's, e.g. a cuBLAS workspace
    left by earlier matmuls: 32 MiB on Hopper), so the figure is what this model needs in a fresh process."""
    metrics: dict[str, Any] = {}
    cuda = device.type == "cuda"
    timer = make_timer(device)
    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize(device)
        cold_ms, out = timer(lambda: model(x))
        scale = check_output(out, x, scale)
        del out
        step: Any = lambda: model(x)  # noqa: E731
        graph = None
        if cuda_graphs:
            step, graph = _cuda_graph_step(model, x)
        stats = time_steady(step, device, repeats=repeats, rule=rule, target=target, cold_ms=cold_ms)
        stats["cuda_graphs"] = bool(graph is not None)
        del graph
        metrics["runtime_ms"] = stats
        if cuda:
            if energy_seconds > 0:
                metrics.update(_energy(model, x, device, energy_seconds))
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            out = model(x)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            del out
            metrics["peak_memory_measured_bytes"] = int(peak - other_bytes)
            metrics["peak_memory_above_inputs_bytes"] = int(peak - base)
            metrics["device_memory_held_before_bytes"] = int(other_bytes)
    return metrics, scale


def benchmark(
    model_or_spec: nn.Module | str | ModelSpec,
    input_size: tuple[int, int] = (256, 256),
    *,
    scale: int | None = None,
    device: str | torch.device = "cpu",
    protocol: str = "steady",
    dtype: str = "fp32",
    channels_last: bool = False,
    cuda_graphs: bool = False,
    repeats: int | None = None,
    threads: int | None = None,
    dataset: str | Path | None = None,
    images: int = 10,
    warmup: WarmupRule | None = None,
    target: TimingTarget | None = None,
    preflight: bool = True,
    predicted_memory: MemoryReport | None = None,
    roofline: bool = False,
    energy_seconds: float | None = None,
    pretrained: bool = False,
    deploy: bool = True,
    seed: int = 0,
    backend: str = "eager",
    equivalence_db: float = DEFAULT_THRESHOLD_DB,
) -> BenchmarkResult:
    """Measure the runtime of a model (module, zoo name or spec) and return an ``effbench.result/1`` document.

    ``protocol="steady"`` (default): cold first call, warm-up until timings settle (:class:`WarmupRule`), then
    ``repeats`` timed forwards under ``inference_mode`` (default 100 on CUDA; on CPU as many as ``target`` asks:
    until the median's 95% CI is within 2% of it or 20 s are spent, see :class:`TimingTarget`); runtime statistics
    with the CI (``ci_low``, ``ci_high``, ``ci_rel``, ``noisy``) in ``metrics.runtime_ms`` and, on CUDA, the peak
    memory of one forward after a reset and the energy per image. The machine's load during the measurement is
    recorded in ``env.load``. ``preflight=True`` first checks the predicted peak memory against the device's free
    memory and refuses with the figures (:class:`~effbench.memory.preflight.MemoryWontFit`) when it cannot fit;
    ``predicted_memory``, a :func:`~effbench.predict_memory` report the caller already has for this model, spares
    that check a second prediction when it is for the measured input and dtype.
    ``protocol="ntire"``: the challenge's script (see :mod:`effbench.timing.ntire`) over ``dataset`` or, without
    one, ``images`` synthetic images of ``input_size``. With a data set the steady protocol times the first
    image's size and scores PSNR over all images. ``roofline=True`` adds ``metrics.roofline``.
    ``backend`` (:mod:`effbench.backends`: ``eager``, ``compile``, ``onnxruntime``, ``tensorrt``) prepares the model
    once before timing (``export_seconds``, ``artifact_bytes``); an exported or reduced-precision model is first
    compared with eager fp32 on a seeded input (``equivalence_psnr_db``, ``equivalence_max_abs_diff``) and refused
    as ``bad_output`` (:class:`~effbench.backends.CollapsedOutputError`) below ``equivalence_db``. ``dtype="int8"``
    is the backend's post-training quantisation (``onnxruntime`` on CPU, calibrated on ``EFFBENCH_CALIBRATION``).
    Raises :class:`~effbench.base.errors.UsageError` for bad arguments and :class:`~effbench.base.errors.ModelError`
    (``BadOutputError``, ``NonFiniteOutputError``, ``OutOfMemory``) when the model fails.
    """
    if protocol not in TIMING_PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}: use {' or '.join(TIMING_PROTOCOLS)}")
    tdtype = model_dtype(backend, dtype)  # fp32 for int8, which the backend quantises itself
    dev = resolve_device(device)
    if cuda_graphs and (dev.type != "cuda" or protocol != "steady"):
        raise UsageError("CUDA graphs need --device cuda and the steady protocol")
    get_backend(backend)  # an unknown name is a usage error before anything is built
    if cuda_graphs and backend not in ("eager", "compile"):
        raise UsageError(f"CUDA graphs need the eager or compile backend, not {backend}")
    h, w = check_size(input_size)
    if repeats is None and dev.type == "cuda":
        repeats = 100
    if repeats is not None and repeats < 1:
        raise UsageError(f"repeats must be >= 1, got {repeats}")
    if images < 1:
        raise UsageError(f"images must be >= 1, got {images}")
    rule = warmup or (
        WarmupRule(window=10) if dev.type == "cuda" else WarmupRule(window=5, tolerance=0.05, max_seconds=3.0)
    )
    if energy_seconds is None:
        energy_seconds = 1.0 if dev.type == "cuda" else 0.0

    # a spec is built at x4 unless told; an instance without a scale has whatever scale its output says
    resolved = resolve_model(model_or_spec, scale=scale, pretrained=pretrained, deploy=deploy)
    model, ident = resolved.model, resolved.identity
    name, data_range, scale = ident.name, ident.data_range, ident.scale
    pairs = find_pairs(dataset, scale or 4) if dataset is not None else None
    if pairs is not None:
        h, w = pairs[0].lr_array().shape[:2]
    result = BenchmarkResult(
        new_result(
            name,
            ident.spec,
            identity=ident.as_dict(),
            scale=scale,
            input_shape=[1, 3, h, w],
            device=dev.type,
            dtype=dtype,
            protocol=protocol,
            convention=None,
            backend=backend,
        )
    )
    result["dataset"] = (
        str(dataset)
        if dataset is not None
        else (f"synthetic: {images} random uint8 images {h}x{w}" if protocol == "ntire" else None)
    )
    result["settings"] = {
        "channels_last": channels_last,
        "cuda_graphs": cuda_graphs,
        "repeats": repeats,
        "threads": threads,
        "warmup": vars(rule) if hasattr(rule, "__dict__") else str(rule),
        "data_range": data_range,
        "timing_target": vars(target or TimingTarget()) if repeats is None else None,
        "backend": backend,
    }
    if preflight:
        from ..memory.preflight import check_fits

        result["settings"]["preflight"] = check_fits(
            model, (h, w), dev, tdtype, f"bench of {name}", predicted=predicted_memory
        )
    probe = LoadProbe()
    with num_threads(threads), _map_errors():
        other = 0
        if dev.type == "cuda":  # what the process holds already, less the model's own tensors on that device
            own = sum(
                t.untyped_storage().nbytes()
                for t in [*model.parameters(), *model.buffers()]
                if t.device == dev
            )
            other = max(0, torch.cuda.memory_allocated(dev) - own)
        if isinstance(model_or_spec, nn.Module) and any(
            t.device != dev or (t.is_floating_point() and t.dtype != tdtype)
            for t in [*model.parameters(), *model.buffers()]
        ):
            model = copy.deepcopy(model)  # nn.Module.to works in place: leave the caller's model where it was
        gen = torch.Generator().manual_seed(seed)
        x32 = (torch.rand(1, 3, h, w, generator=gen) * data_range).to(device=dev)
        model = model.to(device=dev).eval()
        reference = None
        if backend != "eager" or dtype != "fp32":  # eager fp32 is the reference
            with torch.inference_mode():
                reference = model(x32)
        model = model.to(dtype=tdtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        example = x32.to(tdtype)
        if channels_last:
            example = example.contiguous(memory_format=torch.channels_last)
        prepared = prepare(model, example, backend, dtype, data_range)
        backend_metrics: dict[str, Any] = {
            k: v
            for k, v in (
                ("export_seconds", prepared.export_seconds),
                ("artifact_bytes", prepared.artifact_bytes),
            )
            if v is not None
        }
        result["settings"]["backend_details"] = prepared.details or None
        if reference is not None:
            with torch.inference_mode():
                out = prepared.fn(example)
            backend_metrics.update(
                check_equivalence(
                    out, reference, data_range, equivalence_db, what=f"{name} under {backend} {dtype}"
                )
            )
            del out, reference
        timed_model = model if backend == "eager" else prepared.as_module(model)
        if protocol == "ntire":
            src = pairs if pairs is not None else list(synthetic_pairs(images, (h, w), scale or 4, seed))
            with torch.enable_grad():  # the official script never disables autograd
                metrics = run_ntire(
                    timed_model,
                    src,
                    dev,
                    data_range=data_range,
                    scale=scale,
                    dtype=tdtype,
                    channels_last=channels_last,
                )
            scale = metrics.pop("scale")
        else:
            if pairs is not None:
                x = to_tensor(pairs[0].lr_array(), data_range, dev, tdtype)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
            else:
                x = example
            metrics, scale = _steady(
                timed_model,
                x,
                dev,
                scale,
                repeats=repeats,
                rule=rule,
                target=target,
                cuda_graphs=cuda_graphs,
                energy_seconds=energy_seconds,
                other_bytes=other,
            )
            if pairs is not None:
                metrics.update(
                    evaluate_psnr(timed_model, pairs, dev, data_range=data_range, scale=scale, dtype=tdtype)
                )
        if roofline:
            from .roofline import roofline as _roofline

            try:
                metrics["roofline"] = _roofline(
                    model, (1, 3, h, w), dev, tdtype, metrics["runtime_ms"]["median"]
                )
            except Exception as exc:  # the bound is an extra; its failure must not lose the measurement
                metrics["roofline_error"] = f"{type(exc).__name__}: {exc}"
        metrics.update(backend_metrics)
        result["metrics"] = metrics
        result["scale"] = scale
        result["env"] = capture_env(dev, load=probe.finish())
    return result

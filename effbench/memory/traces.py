"""The storage traces :mod:`effbench.memory.simulate` analyses: one forward replayed on fake tensors
(:func:`fake_trace`, :func:`trace_storage`), or, for a model with data-dependent ops, real CPU forwards
(:func:`real_trace`, :func:`real_report`); CUDA autocast inside model code replayed on the CPU
(:func:`cuda_autocast_on_cpu`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.measurement import Workload
from ..base.model_code import (
    data_dependent_errors,
    left_as_found,
    replace_tensor_attributes,
    running_model_code,
)
from .report import MemoryReport
from .simulate import analyse
from .tracker import StorageTrace, record_forward
from .workload import resolve_inputs, torch_dtype, torch_format
from .workspace import GpuProfile

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .workload import ModelLike, WorkloadFields

__all__ = ["cuda_autocast_on_cpu", "fake_trace", "real_report", "real_trace", "trace_storage"]


def fake_trace(
    net: nn.Module, name: str, workload: Workload, *, keep_dtypes: bool = False, grad: bool = False
) -> StorageTrace:
    """One forward of ``net`` on fake tensors: fresh parameters in the workload's dtype (floating ones, unless
    ``keep_dtypes``: then as the model has them; 4-D ones in its memory format, as ``model.to(...)`` makes them,
    requiring grad as the model's do) and a fake input of its shape. Plain tensor attributes
    (``self.mean = torch.Tensor(...)``) get fake copies as they are (``model.to`` does not move them either);
    the model is left as found (:func:`~effbench.base.model_code.left_as_found`). ``grad``: autograd on (see
    :func:`~.tracker.record_forward`)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    shape, dtype, memory_format = workload.input_shape, torch_dtype(workload), torch_format(workload)
    mode = FakeTensorMode(allow_non_fake_inputs=True)  # constants outside the model (module globals) too
    device = torch.device("cpu")
    fake_of: dict[int, torch.Tensor] = {}
    with running_model_code(net), left_as_found(net), mode:
        replace_tensor_attributes(net, mode.from_tensor)
        for t in [*net.parameters(), *net.buffers()]:
            if id(t) not in fake_of:  # a fresh tensor, as model.to(device) makes for every parameter
                dt = dtype if (t.is_floating_point() and not keep_dtypes) else t.dtype
                fmt = memory_format if t.dim() == 4 else torch.contiguous_format
                fake = torch.empty(tuple(t.shape), dtype=dt, device=device, memory_format=fmt)
                fake_of[id(t)] = fake.requires_grad_(t.requires_grad) if t.is_floating_point() else fake
        try:
            return record_forward(
                net,
                lambda: torch.empty(shape, dtype=dtype, device=device, memory_format=memory_format),
                fake_of,
                device,
                grad=grad,
            )
        except (UsageError, ModelError, *data_dependent_errors()):
            raise
        except Exception as exc:
            raise ModelError(
                f"replaying the forward of {name} on fake tensors failed: {type(exc).__name__}: {exc}"
            ) from exc


def real_trace(
    net: nn.Module, name: str, workload: Workload, *, keep_dtypes: bool = False, grad: bool = False
) -> StorageTrace:
    """One real forward of ``net`` on the CPU: CPU copies of the parameters and buffers in the workload's dtype (as
    :func:`fake_trace` makes them), plain tensor attributes on the CPU, a random input of its shape; the global
    RNG seeded for the forward and restored after it."""
    shape, dtype, memory_format = workload.input_shape, torch_dtype(workload), torch_format(workload)
    device = torch.device("cpu")
    copies: dict[int, torch.Tensor] = {}
    for t in [*net.parameters(), *net.buffers()]:
        if id(t) not in copies:
            dt = dtype if (t.is_floating_point() and not keep_dtypes) else t.dtype
            fmt = memory_format if t.dim() == 4 else torch.contiguous_format
            copy = t.detach().to(device=device, dtype=dt).contiguous(memory_format=fmt)
            copies[id(t)] = copy.requires_grad_(t.requires_grad) if t.is_floating_point() else copy
    gen = torch.Generator().manual_seed(0)
    try:
        # a forward that samples (random routing) samples the same every run; the caller's RNG is left as it was
        with running_model_code(net), left_as_found(net), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            replace_tensor_attributes(net, lambda t: t.to(device))
            return record_forward(
                net,
                lambda: torch.rand(shape, generator=gen, dtype=dtype).contiguous(memory_format=memory_format),
                copies,
                device,
                grad=grad,
            )
    except Exception as exc:
        hw = "x".join(map(str, shape[2:]))
        raise ModelError(
            f"the real CPU forward of {name} at {hw} failed: {type(exc).__name__}: {exc}"
        ) from exc


# The larger side of the two real CPU replays of a model the fake replay cannot run (data-dependent ops)
_REAL_SIDES = (32, 48)
# ... and the pair tried when a model cannot run those (its windows or downsampling need a larger input)
_REAL_SIDES_LARGER = (64, 96)


def real_report(
    net: nn.Module,
    name: str,
    workload: Workload,
    cause: BaseException,
    *,
    device_model: str,
    donate_input: bool = False,
    feature_shape: tuple[int, int, int] | None = None,
    gpu_profile: GpuProfile | None = None,
    keep_dtypes: bool = False,
    grad: bool = False,
) -> MemoryReport:
    """The memory of a model with data-dependent ops (``.item()``, ``nonzero``, value-dependent ``if``), from real
    CPU forwards: at the requested size when its larger side is at most the last of ``_REAL_SIDES``
    (``engine="real"``), else at two reduced sizes of the same aspect, every byte count extrapolated linearly in
    the number of input pixels (``engine="real-scaled"``): the activations of a convolutional SR network scale
    with H x W, the parameters do not. The other fields describe the larger replay; the keywords are
    :func:`~effbench.memory.simulate.analyse`'s and :func:`real_trace`'s."""

    def replay(at: Workload) -> MemoryReport:
        trace = real_trace(net, name, at, keep_dtypes=keep_dtypes, grad=grad)
        return analyse(
            trace,
            device_model=device_model,
            donate_input=donate_input,
            input_shape=at.input_shape,
            dtype=torch_dtype(at),
            model_name=name,
            feature_shape=feature_shape,
            gpu_profile=gpu_profile,
        )

    why = f"the fake replay met a data-dependent op ({type(cause).__name__}: {str(cause).splitlines()[0]})"
    shape = workload.input_shape
    h, w = workload.size
    side = max(h, w)
    if side <= _REAL_SIDES[-1]:
        report = replay(workload)
        report.engine = "real"
        report.notes.append(f"{why}: predicted from one real CPU forward at {h}x{w} on a random input")
        return report
    for sides in (_REAL_SIDES, _REAL_SIDES_LARGER):
        sizes = [(max(1, round(h * s / side)), max(1, round(w * s / side))) for s in sides]
        try:
            small, big = (replay(workload.with_(size=hw)) for hw in sizes)
            break
        except ModelError:  # too small for the model (windows, downsampling): the larger pair, if it fits
            if sides is _REAL_SIDES_LARGER or side <= _REAL_SIDES_LARGER[-1]:
                raise
    (p0, p1), target = (hh * ww for hh, ww in sizes), h * w

    def extrapolate(a: int, z: int) -> int:
        return int(round(a + (z - a) * (target - p0) / (p1 - p0)))

    big.peak_bytes = extrapolate(small.peak_bytes, big.peak_bytes)
    big.reserved_peak_bytes = extrapolate(small.reserved_peak_bytes, big.reserved_peak_bytes)
    big.plain_peak_bytes = extrapolate(small.plain_peak_bytes, big.plain_peak_bytes)
    big.input_shape, big.output_shape, big.engine = shape, None, "real-scaled"
    at = " and ".join(f"{hh}x{ww}" for hh, ww in sizes)
    big.notes.append(
        f"{why}: real CPU forwards at {at} on a random input, the peak extrapolated linearly in input pixels to "
        f"{h}x{w}; where it is and what is alive there are those of the {sizes[1][0]}x{sizes[1][1]} forward"
    )
    return big


@contextlib.contextmanager
def cuda_autocast_on_cpu() -> Iterator[None]:
    """While active on a host without CUDA, ``torch.autocast("cuda")`` / ``torch.cuda.amp.autocast()`` inside
    model code autocast the CPU replay to their dtype (fp16 unless given), so the replay allocates what the GPU
    run would instead of an fp32 forward (CPU autocast's op lists stand for CUDA's: convolutions and matrix
    products in fp16, reductions in fp32). A no-op where CUDA exists."""
    if torch.cuda.is_available():
        yield
        return
    from torch.amp import autocast_mode

    cls = autocast_mode.autocast
    original = cls.__init__

    def init(
        self: autocast_mode.autocast,
        device_type: str,
        dtype: torch.dtype | None = None,
        *args: object,
        **kwargs: object,
    ) -> None:
        if device_type == "cuda":
            device_type, dtype = "cpu", dtype or torch.float16
        original(self, device_type, dtype, *args, **kwargs)

    cls.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.__init__ = original  # type: ignore[method-assign]


def trace_storage(
    model: ModelLike,
    input_size: Workload | tuple[int, int] | int = (256, 256),
    *,
    deploy: bool = True,
    **workload: Unpack[WorkloadFields],
) -> StorageTrace:
    """The storage trace :func:`~effbench.memory.predict_memory` analyses (every op, its allocations and frees,
    conv signatures), on fake tensors. ``input_size``: a :class:`~effbench.base.measurement.Workload` or a size,
    with the workload's fields as keywords (``batch``, ``channels``, ``dtype``, ``memory_format``, ``scale``)."""
    r, w = resolve_inputs(model, input_size, workload, deploy=deploy)
    return fake_trace(r.model, r.name, w)

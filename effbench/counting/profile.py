""":func:`profile`: params, MACs, FLOPs, activations and #conv of a model under a counting convention."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.identity import ModelIdentity
from ..base.inputs import check_size
from ._records import OpTrace
from ._trace import as_module, record
from .conventions import Convention, Rule, RuleKey, convention_names, get_convention

DEFAULT_CONVENTION = "full"


@dataclass
class Profile:
    """Static metrics of one model at one input size under one convention.

    ``flops``: under ``full`` every arithmetic op (a multiply-add is 2 FLOPs); under ``ntire2022`` and ``fvcore``
    the official tools' number, which counts one multiply-add as one FLOP (so ``flops == macs`` there).
    ``by_module`` rows are inclusive (a module's row contains its children; ``calls`` there is the number of counted
    ops inside); ``by_op`` rows are per operator. ``bytes`` is the output size of those ops (for data movement
    such as pixel shuffle, cat or pad: the bytes written, at 0 FLOPs).
    """

    model: str
    convention: str
    params: int
    macs: int
    flops: int
    activations: int
    convs: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    peak_memory_bytes: int | None = None
    by_module: list[dict[str, Any]] = field(default_factory=list)
    by_op: list[dict[str, Any]] = field(default_factory=list)
    unknown_ops: list[str] = field(default_factory=list)
    engine: str = "fake"
    identity: ModelIdentity | None = None  # set by profile() and compare_conventions()
    cuda_redirected: bool = False  # the model's code asked for CUDA on a host without it: kept on the CPU
    memory_error: str | None = None  # why the peak memory could not be predicted (the counts still stand)

    def to_dict(self, breakdowns: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (the keys of ``effbench profile --json``)."""
        d: dict[str, Any] = {
            "model": self.model,
            "model_key": self.identity.key if self.identity else None,
            "identity": self.identity.as_dict() if self.identity else None,
            "params": self.params,
            "flops": self.flops,
            "macs": self.macs,
            "activations": self.activations,
            "convs": self.convs,
            "peak_memory_bytes": self.peak_memory_bytes,
            "convention": self.convention,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "unknown_ops": list(self.unknown_ops),
            "engine": self.engine,
            "cuda_redirected": self.cuda_redirected,
            "memory_error": self.memory_error,
        }
        if breakdowns:
            d["by_module"] = [dict(r) for r in self.by_module]
            d["by_op"] = [dict(r) for r in self.by_op]
        return d

    def metrics(self) -> dict[str, Any]:
        """The subset that goes into a result document's ``metrics`` (see :mod:`effbench.base.results`)."""
        m = {k: getattr(self, k) for k in ("params", "flops", "macs", "activations", "convs")}
        if self.peak_memory_bytes is not None:
            m["peak_memory_predicted_bytes"] = self.peak_memory_bytes
        return m

    def frame(self, by: str = "module"):
        """The per-module (``by="module"``) or per-operator (``by="op"``) breakdown as a pandas DataFrame."""
        import pandas as pd

        if by not in ("module", "op"):
            raise UsageError(f"frame(by=...) takes 'module' or 'op', not {by!r}")
        return pd.DataFrame(self.by_module if by == "module" else self.by_op)


def _peak_memory(
    model: nn.Module, input_size: tuple[int, int], batch: int, channels: int, dtype: torch.dtype
) -> tuple[int | None, str | None]:
    """The predicted peak, or ``None`` and the reason when the model's forward cannot be replayed for memory."""
    from ..memory import predict_memory

    try:
        report = predict_memory(model, input_size, batch=batch, channels=channels, dtype=dtype)
    except ModelError as exc:
        return None, str(exc)
    return int(report.peak_bytes), None


def trace_model(
    model: nn.Module | str,
    input_size: int | Sequence[int] = (256, 256),
    *,
    scale: int | None = None,
    batch: int = 1,
    channels: int = 3,
    dtype: torch.dtype = torch.float32,
    label: str | None = None,
    keep_dtypes: bool = False,
    real_input: Callable[[tuple[int, ...], torch.dtype, torch.device], torch.Tensor] | None = None,
    force_real: bool = False,
) -> tuple[OpTrace, str]:
    """Record one shapes-only forward pass (the input of every convention); returns the trace and a model label.
    ``keep_dtypes``, ``real_input`` and ``force_real`` go to :func:`~._trace.record` (parameters in their own
    dtypes; the real engine's input; the real engine only)."""
    from ..zoo.spec import resolve_model

    r = resolve_model(as_module(model), scale=scale)
    net, label = r.model, label or r.name
    shape = (batch, channels, *check_size(input_size, batch=batch, channels=channels))
    trace = record(
        net,
        shape,
        dtype=dtype,
        name=label,
        keep_dtypes=keep_dtypes,
        real_input=real_input,
        force_real=force_real,
    )
    if scale is not None:
        if len(trace.output_shape) != 4 or trace.output_shape[2:] != (shape[2] * scale, shape[3] * scale):
            got = "x".join(map(str, trace.output_shape))
            raise ModelError(
                f"model {label!r} returned a {got} output for a {'x'.join(map(str, shape))} input: "
                f"not x{scale} (wrong scale, or the model cannot take a {shape[2]}x{shape[3]} input)"
            )
    return trace, label


def profile_trace(
    trace: OpTrace, convention: str | Convention = DEFAULT_CONVENTION, label: str = ""
) -> Profile:
    """Apply one convention's rules to a recorded trace."""
    conv = get_convention(convention)
    c = conv.count(trace)
    return Profile(
        model=label,
        convention=conv.name,
        params=trace.params,
        macs=int(c.macs),
        flops=int(c.flops),
        activations=int(c.activations),
        convs=int(c.convs),
        input_shape=trace.input_shape,
        output_shape=trace.output_shape,
        by_module=[r.as_dict() for r in c.by_module],
        by_op=[r.as_dict() for r in c.by_op],
        unknown_ops=c.unknown_ops,
        engine=trace.engine,
        cuda_redirected=bool(trace.cuda_redirects),
    )


def profile(
    model: nn.Module | str,
    input_size: int | Sequence[int] = (256, 256),
    convention: str | Convention = DEFAULT_CONVENTION,
    scale: int | None = None,
    batch: int = 1,
    channels: int = 3,
    dtype: torch.dtype = torch.float32,
    *,
    peak_memory: bool = True,
    overrides: Mapping[RuleKey, Rule] | None = None,
) -> Profile:
    """Count params, MACs, FLOPs, activations and convolutions of ``model`` for a ``batch x channels x H x W`` input.

    ``model`` is an ``nn.Module`` (a ``torch.compile``'d one counts as its eager module, a ``torch.export``
    program as its ``.module()``) or a spec (zoo name, ``file.py:Name``, ``package.module:Name``; built at
    ``scale``, default 4). ``convention`` is ``"full"`` (default: every arithmetic op), ``"ntire2022"`` (the
    official NTIRE 2022/2023 hook tool, exactly) or ``"fvcore"`` (``FlopCountAnalysis(...).total()``, exactly).
    When ``scale`` is given, the output must be ``scale`` times the input, else :class:`ModelError`.

    The forward runs on fake tensors: no arithmetic, no allocation, nothing left on the model. The predicted peak
    memory comes from :func:`effbench.predict_memory` (``None`` with ``peak_memory=False``, or when the
    prediction fails: ``memory_error`` then says why, and the counts still stand). ``overrides`` replaces
    single rules of the convention for this run only, e.g. ``{"aten.add": lambda op: Cost(flops=...)}``.
    """
    conv = get_convention(convention)
    if overrides:
        conv = conv.with_overrides(overrides)
    from ..zoo.spec import resolve_model

    r = resolve_model(as_module(model), scale=scale)
    net, label = r.model, r.name
    trace, _ = trace_model(
        r, input_size, scale=scale, batch=batch, channels=channels, dtype=dtype, label=label
    )
    prof = profile_trace(trace, conv, label)
    prof.identity = r.identity
    if peak_memory:
        prof.peak_memory_bytes, prof.memory_error = _peak_memory(
            net, tuple(trace.input_shape[2:]), batch, channels, dtype
        )
    return prof


def compare_conventions(
    model: nn.Module | str,
    input_size: int | Sequence[int] = (256, 256),
    conventions: Sequence[str | Convention] | None = None,
    scale: int | None = None,
    batch: int = 1,
    channels: int = 3,
    dtype: torch.dtype = torch.float32,
    *,
    peak_memory: bool = False,
) -> dict[str, Profile]:
    """Profiles of one model under several conventions (default: every registered one) from a single trace, so
    the gaps are like for like and the model runs once. ``peak_memory=True`` predicts the peak memory once and
    puts it on every profile."""
    convs = [get_convention(c) for c in (convention_names() if conventions is None else conventions)]
    if not convs:
        raise UsageError("compare_conventions needs at least one convention")
    from ..zoo.spec import resolve_model

    r = resolve_model(as_module(model), scale=scale)
    net, label = r.model, r.name
    trace, _ = trace_model(
        r, input_size, scale=scale, batch=batch, channels=channels, dtype=dtype, label=label
    )
    peak, error = (
        _peak_memory(net, tuple(trace.input_shape[2:]), batch, channels, dtype)
        if peak_memory
        else (None, None)
    )
    profiles = {c.name: profile_trace(trace, c, label) for c in convs}
    for p in profiles.values():
        p.peak_memory_bytes, p.memory_error, p.identity = peak, error, r.identity
    return profiles

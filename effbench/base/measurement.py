"""Measurements as registered units: what a cell measures is a list of names, each a :class:`Measurement` in one
table, run in order by :func:`run_measurements` on a model resolved once and a frozen :class:`Workload`.

A measurement registers itself (``register_measurement``) with its name, whether it needs the workload's device
(a device-free one runs in static cells, side by side), and a function ``(resolved model, workload, context) ->
result`` whose result has ``.metrics()``. Sweep cells, challenge cells, ``challenge check`` and studies carry the
names of their measurements and loop over this table; none combines measurements by hand. The built-in ones live
beside what they measure (``effbench.counting.units``, ``effbench.memory.units``, ``effbench.timing.units``,
``effbench.challenge.units``) and are imported the first
time the table is queried, plugins (:mod:`effbench.base.plugins`) after them.

To add a measurement: one module that calls :func:`register_measurement`, plus the catalogue entries of the
metrics its result reports (:func:`effbench.base.catalogue.register_metric`).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import UsageError

if TYPE_CHECKING:
    import torch.nn as nn

    from .identity import ModelIdentity

__all__ = [
    "MEMORY_FORMATS",
    "Context",
    "Measurement",
    "MeasurementRun",
    "NotApplicable",
    "Resolved",
    "Result",
    "Workload",
    "measurement",
    "measurement_names",
    "measurements",
    "register_measurement",
    "run_measurements",
]

MEMORY_FORMATS = ("contiguous", "channels_last")

#: the modules that register the built-in measurements, imported the first time the table is queried
_BUILTIN_MODULES = (
    "effbench.counting.units",
    "effbench.memory.units",
    "effbench.timing.units",
    "effbench.challenge.units",
)


@dataclass(frozen=True)
class Workload:
    """What a measurement runs the model on: one frozen value, checked once.

    ``size`` is the LR input's ``(H, W)``; ``scale`` the model's upscaling factor; ``dtype`` one of ``fp32``,
    ``fp16``, ``bf16`` (or ``int8`` for backends that quantise); ``memory_format`` ``contiguous`` or
    ``channels_last``; ``device`` as torch names it (``cpu``, ``cuda``, ``cuda:1``); ``threads`` the CPU
    intra-op threads (None: torch's default)."""

    size: tuple[int, int] = (256, 256)
    scale: int = 4
    batch: int = 1
    channels: int = 3
    dtype: str = "fp32"
    memory_format: str = "contiguous"
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        from .inputs import check_size

        size = check_size(
            tuple(self.size) if not isinstance(self.size, int) else self.size,
            batch=self.batch,
            channels=self.channels,
        )
        object.__setattr__(self, "size", size)
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1:
            raise UsageError(f"workload: scale must be a positive integer, got {self.scale!r}")
        if self.dtype not in ("fp32", "fp16", "bf16", "int8"):
            raise UsageError(f"workload: unknown dtype {self.dtype!r}; choose fp32, fp16, bf16 or int8")
        if self.memory_format not in MEMORY_FORMATS:
            raise UsageError(
                f"workload: unknown memory format {self.memory_format!r}; choose {', '.join(MEMORY_FORMATS)}"
            )
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) < 1):
            raise UsageError(f"workload: threads must be a positive integer, got {self.threads!r}")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(batch, channels, H, W)`` of the LR input."""
        return (self.batch, self.channels, *self.size)

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "channels_last"

    def with_(self, **changes: Any) -> Workload:
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "scale": self.scale,
            "batch": self.batch,
            "channels": self.channels,
            "dtype": self.dtype,
            "memory_format": self.memory_format,
            "device": self.device,
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Workload:
        d = dict(d)
        if "size" in d:
            d["size"] = tuple(d["size"])
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise UsageError(f"workload: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**d)


@runtime_checkable
class Result(Protocol):
    """What a measurement returns: anything with ``.metrics()`` (metric key -> value, keys in the catalogue)."""

    def metrics(self) -> Mapping[str, Any]: ...


class Resolved(Protocol):
    """A model resolved once (:class:`effbench.zoo.spec.ResolvedModel`): the module and its identity."""

    @property
    def model(self) -> nn.Module: ...

    @property
    def identity(self) -> ModelIdentity: ...


class NotApplicable(Exception):
    """Raised by a measurement that does not apply to this model or workload (measured memory on a CPU): the
    cell records the reason under ``skipped``, not as an error."""


@dataclass
class Context:
    """What a measurement may read besides the model and the workload.

    ``options``: the cell's settings for its measurements (read-only: repeats, timing target, data set, backend,
    the challenge year's rules ...); ``earlier``: the results of the measurements that ran before it in this cell
    (name -> result), e.g. the predicted memory the runtime's pre-flight check reuses; ``failed``: name -> the
    exception of each earlier one that failed; ``shared``: objects the cell's measurements hand each other that
    are not results (the challenge harness's first forward, run once for its static and memory parts)."""

    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    earlier: dict[str, Result] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    @property
    def model_failed(self) -> BaseException | None:
        """The first earlier failure raised by the model itself (a :class:`~effbench.base.errors.ModelError`)."""
        from .errors import ModelError

        return next((e for e in self.failed.values() if isinstance(e, ModelError)), None)


MeasureFn = Callable[["Resolved", Workload, Context], Result]


@dataclass(frozen=True)
class Measurement:
    """One registered measurement.

    ``name``: its key in cells (``--measure NAME``, ``--parts NAME``); ``run``: ``(resolved, workload, context)
    -> result`` (raise :class:`NotApplicable` to skip with a reason); ``needs_device``: it runs the model on the
    workload's device (timed or measured cells), else it is device-free (static cells, run side by side);
    ``after``: measurements it reads from ``context.earlier`` when they are in the same cell (they run first);
    ``summary``: one line for ``--help`` and the docs."""

    name: str
    run: MeasureFn
    needs_device: bool = False
    after: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise UsageError(
                f"a measurement's name must be a word (letters, digits, _ or -), got {self.name!r}"
            )
        if not callable(self.run):
            raise UsageError(f"measurement {self.name!r}: run must be callable")
        object.__setattr__(self, "after", tuple(self.after))


_TABLE: dict[str, Measurement] = {}
_builtins_loaded = False


def register_measurement(
    name: str,
    run: MeasureFn | None = None,
    *,
    needs_device: bool = False,
    after: Iterable[str] = (),
    summary: str = "",
) -> Any:
    """Register a measurement; a second one under the same name is refused. Usable as a decorator
    (``@register_measurement("toy")``) or a call (``register_measurement("toy", fn)``); returns ``run``."""

    def add(fn: MeasureFn) -> MeasureFn:
        m = Measurement(name, fn, needs_device=needs_device, after=tuple(after), summary=summary)
        if name in _TABLE:
            raise UsageError(f"measurement {name!r} is already registered (by {_TABLE[name].run.__module__})")
        _TABLE[name] = m
        return fn

    return add if run is None else add(run)


def _load() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
    from .plugins import load_plugins

    load_plugins()


def measurements() -> tuple[Measurement, ...]:
    """Every registered measurement, built-in ones first, in registration order."""
    _load()
    return tuple(_TABLE.values())


def measurement_names() -> tuple[str, ...]:
    return tuple(m.name for m in measurements())


def measurement(name: str) -> Measurement:
    """The measurement registered as ``name``; an unknown name is a usage error listing the known ones."""
    _load()
    try:
        return _TABLE[name]
    except KeyError:
        raise UsageError(
            f"unknown measurement {name!r}; registered: {', '.join(_TABLE) or '(none)'}"
        ) from None


def _ordered(names: Iterable[str]) -> list[Measurement]:
    """``names`` as measurements, each after those it reads (``after``) when they are asked for too."""
    wanted = [measurement(n) for n in dict.fromkeys(names)]
    asked = {m.name for m in wanted}
    done: list[Measurement] = []
    placed: set[str] = set()

    def place(m: Measurement, stack: tuple[str, ...]) -> None:
        if m.name in placed:
            return
        if m.name in stack:
            raise UsageError(f"measurements read each other in a circle: {' -> '.join([*stack, m.name])}")
        for dep in m.after:
            if dep in asked:
                place(measurement(dep), (*stack, m.name))
        placed.add(m.name)
        done.append(m)

    for m in wanted:
        place(m, ())
    return done


@dataclass
class MeasurementRun:
    """The outcome of :func:`run_measurements`: each measurement's result, failure or reason for not applying,
    and the seconds each took."""

    results: dict[str, Result] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """Every result's metrics merged in run order (a later one wins a shared key); ``None`` values left out."""
        out: dict[str, Any] = {}
        for res in self.results.values():
            out.update({k: v for k, v in res.metrics().items() if v is not None})
        return out


def run_measurements(
    resolved: Resolved,
    workload: Workload,
    names: Iterable[str],
    *,
    options: Mapping[str, Any] | None = None,
    shared: dict[str, Any] | None = None,
    on_error: Callable[[str, BaseException], bool] | None = None,
) -> MeasurementRun:
    """Run the measurements ``names`` (each after those it reads) on ``resolved`` under ``workload``.

    A measurement that raises is recorded in ``failed`` and the others still run, unless ``on_error(name,
    exc)`` returns True (stop here). :class:`NotApplicable` goes to ``skipped`` with its reason."""
    ctx = Context(
        options=MappingProxyType(dict(options or {})),
        shared=shared if shared is not None else {},
    )
    run = MeasurementRun(shared=ctx.shared)
    for m in _ordered(names):
        t0 = time.perf_counter()
        try:
            res = m.run(resolved, workload, ctx)
        except NotApplicable as why:
            run.skipped[m.name] = str(why)
            continue
        except Exception as exc:
            run.failed[m.name] = ctx.failed[m.name] = exc
            if on_error is not None and on_error(m.name, exc):
                break
            continue
        finally:
            run.seconds[m.name] = round(time.perf_counter() - t0, 3)
        if not isinstance(res, Result):
            exc = TypeError(f"measurement {m.name!r} returned {type(res).__name__}, which has no .metrics()")
            run.failed[m.name] = ctx.failed[m.name] = exc
            continue
        run.results[m.name] = ctx.earlier[m.name] = res
    return run

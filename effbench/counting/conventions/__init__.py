"""Counting conventions: tables of pure counting rules applied to a recorded :class:`~.._records.OpTrace`.

A rule takes one recorded call (an aten op, a torch-level function call or a module call) and returns a
:class:`Cost`. Rules are registered into a convention's tables with a decorator, in the style of
``torch.utils.flop_counter.register_flop_formula``::

    @FULL.op("aten.add", "aten.sub")
    def _binary(op: OpCall) -> Cost:
        return Cost(flops=out(op).numel)

Each convention is one module of this package (``full.py``, ``ntire2022.py``, ``fvcore.py``) that registers itself
with :func:`register_convention`; every module here is imported on the first lookup, so adding a convention is
adding a file. Modules whose name starts with ``_`` are not conventions: ``full``'s rules by op family
(``_full_products.py``, ``_full_elementwise.py``, collected in a :class:`~._rules.RuleTable`). A convention outside effbench is a plugin module (:mod:`effbench.base.plugins`: named in
``EFFBENCH_PLUGINS`` or an ``effbench.plugins`` entry point), imported on the first lookup. A convention name or a rule key registered twice raises :class:`ValueError`, as
``torch.utils.flop_counter.register_flop_formula`` refuses a second formula for one op.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ...base.errors import UsageError
from ...base.plugins import load_plugins
from .._records import FunctionCall, ModuleCall, OpCall, OpTrace, TensorMeta, tensors_in

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Cost:
    """What one call costs: multiply-accumulates, floating-point operations, activations (output elements that
    count as activations under the convention) and convolutions (0 or 1)."""

    macs: int = 0
    flops: int = 0
    activations: int = 0
    convs: int = 0


ZERO = Cost()


def out(call: OpCall | FunctionCall | ModuleCall) -> TensorMeta:
    """The first tensor the call returned."""
    ts = tensors_in(call.output)
    if not ts:
        raise ValueError(f"{getattr(call, 'name', getattr(call, 'packet', '?'))} returned no tensor")
    return ts[0]


def arg(call: OpCall | FunctionCall, i: int = 0) -> Any:
    """Positional argument ``i`` (``None`` when absent)."""
    return call.args[i] if len(call.args) > i else None


@dataclass
class TallyRow:
    """One line of a breakdown (per module or per operator); ``bytes`` is the output size of the counted calls."""

    name: str
    kind: str = ""
    calls: int = 0
    macs: int = 0
    flops: int = 0
    activations: int = 0
    convs: int = 0
    bytes: int = 0

    def add(self, cost: Cost, nbytes: int = 0) -> None:
        self.calls += 1
        self.macs += int(cost.macs)
        self.flops += int(cost.flops)
        self.activations += int(cost.activations)
        self.convs += int(cost.convs)
        self.bytes += int(nbytes)

    def merge(self, other: TallyRow) -> None:
        """Add another row's sums (calls included) to this one."""
        self.calls += other.calls
        self.macs += other.macs
        self.flops += other.flops
        self.activations += other.activations
        self.convs += other.convs
        self.bytes += other.bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "calls": self.calls,
            "macs": self.macs,
            "flops": self.flops,
            "activations": self.activations,
            "convs": self.convs,
            "bytes": self.bytes,
        }


@dataclass
class Counts:
    """The totals and breakdowns a convention produces from one trace."""

    macs: int
    flops: int
    activations: int
    convs: int
    by_module: list[TallyRow]
    by_op: list[TallyRow]
    unknown_ops: list[str] = field(default_factory=list)


class Tally:
    """Accumulates costs into totals, a per-operator table and an inclusive per-module table.

    :meth:`add` only sums into one row per (operator, module) pair; the totals and the inclusive module rows
    (each module's ancestors get its costs too) are built once, by :meth:`counts`."""

    def __init__(self, trace: OpTrace) -> None:
        self.trace = trace
        self.cells: dict[tuple[str, str], TallyRow] = {}

    def add(self, op_name: str, module: str, cost: Cost, nbytes: int = 0) -> None:
        row = self.cells.get((op_name, module))
        if row is None:
            row = self.cells[(op_name, module)] = TallyRow(op_name)
        row.add(cost, nbytes)

    def counts(self, unknown: Iterable[str] = ()) -> Counts:
        kinds = {c.name: type(c.module).__name__ for c in self.trace.modules if c.in_model}
        total = TallyRow("total")
        ops: dict[str, TallyRow] = {}
        own: dict[str, TallyRow] = {}  # each module's own calls, in order of first appearance
        for (op_name, module), row in self.cells.items():
            total.merge(row)
            r = ops.get(op_name)
            if r is None:
                r = ops[op_name] = TallyRow(op_name, "op")
            r.merge(row)
            r = own.get(module)
            if r is None:
                r = own[module] = TallyRow(module)
            r.merge(row)
        modules: dict[str, TallyRow] = {"": TallyRow("", kinds.get("", ""))}
        for module, row in own.items():  # inclusive rows: every ancestor gets the module's own sums
            for name in _ancestors(module):
                r = modules.get(name)
                if r is None:
                    r = modules[name] = TallyRow(name, kinds.get(name, ""))
                r.merge(row)
        by_op = sorted(ops.values(), key=lambda r: (-r.flops, -r.macs, r.name))
        return Counts(
            total.macs,
            total.flops,
            total.activations,
            total.convs,
            list(modules.values()),
            by_op,
            sorted(set(unknown)),
        )


def _ancestors(name: str) -> list[str]:
    if not name:
        return [""]
    parts = name.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]


Rule = Callable[[Any], Cost]
#: what a rule is registered under: an op packet (``"aten.add"``), a torch-level function's name
#: (``"interpolate"``, fvcore) or a module type (``nn.Conv2d``, ntire2022)
RuleKey: TypeAlias = "str | type[nn.Module]"


class Convention:
    """A named counting convention: rule tables and a :meth:`count` that applies them to a trace.

    The base class holds the aten-op table (:meth:`op`) and counts a trace with it; subclasses add tables of their own through
    :meth:`add_rule` (which refuses a key registered twice) and say which table a key belongs to in
    :meth:`table_for`. ``order`` places the convention in listings (lower first, then by name).
    """

    name: str = ""
    description: str = ""
    order: int = 100
    #: ``False``: ops whose results never reach the output (nor write to memory that does, nor to the model's
    #: input, parameters or buffers) count 0, as a JIT trace's dead-code elimination drops them
    #: (:meth:`~.._records.OpTrace.live_ops`); ``True``: every op the forward ran counts.
    counts_dead_ops: bool = True

    def __init__(self) -> None:
        self.op_rules: dict[str, Rule] = {}

    def table_for(self, key: RuleKey) -> dict[Any, Rule]:
        """The rule table a key belongs to: op packets (``"aten.add"``, a custom op's ``"mylib.scan"``) here."""
        if isinstance(key, str) and "." in key.strip("."):  # "aten.add", "prim.device", "mylib.scan"
            return self.op_rules
        raise UsageError(
            f"convention {self.name!r} has no rule table for {key!r} (op rules look like 'aten.add')"
        )

    def add_rule(self, key: RuleKey, rule: Rule) -> None:
        """Register ``rule`` under ``key``; a key that already has a rule raises :class:`ValueError`."""
        table = self.table_for(key)
        if key in table:
            label = key.__name__ if isinstance(key, type) else key
            raise ValueError(f"convention {self.name!r}: a rule for {label!r} is already registered")
        table[key] = rule

    def op(self, *packets: str) -> Callable[[Rule], Rule]:
        """Register a rule for aten op packets such as ``"aten.convolution"`` (in-place ``add_`` maps to ``add``)."""

        def wrap(fn: Rule) -> Rule:
            for p in packets:
                self.add_rule(p, fn)
            return fn

        return wrap

    def op_rule(self, packet: str) -> Rule | None:
        rule = self.op_rules.get(packet)
        if rule is None and packet.endswith("_") and not packet.endswith("__"):
            rule = self.op_rules.get(packet[:-1])
        return rule

    def with_overrides(self, overrides: Mapping[RuleKey, Rule]) -> Convention:
        """A copy of this convention with some rules replaced or added (for one run; the registered one is kept)."""
        conv = copy.copy(self)
        for attr, value in vars(self).items():
            if isinstance(value, dict):
                setattr(conv, attr, dict(value))
        for key, rule in overrides.items():
            if not callable(rule):
                raise UsageError(
                    f"override for {key!r} must be a rule (a callable returning Cost), not {rule!r}"
                )
            conv.table_for(key)[key] = rule
        return conv

    def count(self, trace: OpTrace) -> Counts:
        """Apply the op rules to every aten op of the trace; an op without a rule counts 0 and is listed in
        ``unknown_ops``. Conventions with other tables (module calls, torch-level calls) override this."""
        tally = Tally(trace)
        unknown: list[str] = []
        known: dict[str, tuple[Rule | None, str]] = {}  # packet -> (rule, short name), looked up once
        alive = None if self.counts_dead_ops else trace.live_ops()
        for i, op in enumerate(trace.ops):
            if alive is not None and not alive[i]:
                continue
            entry = known.get(op.packet)
            if entry is None:
                entry = known[op.packet] = (self.op_rule(op.packet), op.packet.split(".", 1)[-1])
            rule, short = entry
            if rule is None:
                unknown.append(op.packet)
            o = tensors_in(op.output)
            tally.add(short, op.module, ZERO if rule is None else rule(op), o[0].nbytes if o else 0)
        return tally.counts(unknown)


_CONVENTIONS: dict[str, Convention] = {}
_loaded_builtins = False


def register_convention(conv: Convention) -> Convention:
    """Register a convention under ``conv.name``; a name already taken raises :class:`ValueError`."""
    if not conv.name:
        raise ValueError(f"{type(conv).__name__} has no name")
    known = _CONVENTIONS.get(conv.name)
    if known is not None and known is not conv:
        raise ValueError(f"convention {conv.name!r} is already registered (by {type(known).__module__})")
    _CONVENTIONS[conv.name] = conv
    return conv


def _discover() -> None:
    """Import this package's convention modules (once) and the plugins (:mod:`effbench.base.plugins`)."""
    global _loaded_builtins
    if not _loaded_builtins:
        for m in pkgutil.iter_modules(__path__):
            if not m.name.startswith("_"):
                importlib.import_module(f"{__name__}.{m.name}")
        _loaded_builtins = True
    load_plugins()


def all_conventions() -> list[Convention]:
    """Every registered convention, in listing order."""
    _discover()
    return sorted(_CONVENTIONS.values(), key=lambda c: (c.order, c.name))


def convention_names() -> tuple[str, ...]:
    """The names of every registered convention, in listing order."""
    return tuple(c.name for c in all_conventions())


def get_convention(name: str | Convention) -> Convention:
    """The convention called ``name``; raises :class:`UsageError` listing the known ones."""
    if isinstance(name, Convention):
        return name
    _discover()
    try:
        return _CONVENTIONS[name]
    except KeyError:
        raise UsageError(
            f"unknown convention {name!r}; choose one of {', '.join(convention_names())}"
        ) from None

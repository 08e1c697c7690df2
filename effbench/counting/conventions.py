"""Counting conventions: tables of pure counting rules applied to a recorded :class:`~._trace.OpTrace`.

A rule takes one recorded call (an aten op, a torch-level function call or a module call) and returns a
:class:`Cost`. Rules are registered into a convention's tables with a decorator, in the style of
``torch.utils.flop_counter.register_flop_formula``::

    @FULL.op("aten.add", "aten.sub")
    def _binary(op: OpCall) -> Cost:
        return Cost(flops=out(op).numel)

The three conventions (``full``, ``ntire2022``, ``fvcore``) live in their own modules and register themselves in
:data:`CONVENTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..base.errors import UsageError
from ._trace import FunctionCall, ModuleCall, OpCall, OpTrace, TensorMeta, tensors_in


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "calls": self.calls, "macs": self.macs, "flops": self.flops,
            "activations": self.activations, "convs": self.convs, "bytes": self.bytes,
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
    """Accumulates costs into totals, a per-operator table and an inclusive per-module table."""

    def __init__(self, trace: OpTrace) -> None:
        self.total = TallyRow("total")
        self.ops: dict[str, TallyRow] = {}
        self.modules: dict[str, TallyRow] = {}
        self.kinds = {c.name: type(c.module).__name__ for c in trace.modules if c.in_model}
        self.kinds.setdefault("", self.kinds.get("", ""))
        self.modules[""] = TallyRow("", self.kinds.get("", ""))

    def add(self, op_name: str, module: str, cost: Cost, nbytes: int = 0) -> None:
        self.total.add(cost, nbytes)
        self.ops.setdefault(op_name, TallyRow(op_name, "op")).add(cost, nbytes)
        for name in _ancestors(module):
            self.modules.setdefault(name, TallyRow(name, self.kinds.get(name, ""))).add(cost, nbytes)

    def counts(self, unknown: Iterable[str] = ()) -> Counts:
        t = self.total
        by_op = sorted(self.ops.values(), key=lambda r: (-r.flops, -r.macs, r.name))
        return Counts(t.macs, t.flops, t.activations, t.convs, list(self.modules.values()), by_op,
                      sorted(set(unknown)))


def _ancestors(name: str) -> list[str]:
    if not name:
        return [""]
    parts = name.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]


Rule = Callable[[Any], Cost]


class Convention:
    """A named counting convention. Subclasses implement :meth:`count`; rules live in the tables below."""

    name: str = ""
    description: str = ""

    def __init__(self) -> None:
        self.op_rules: dict[str, Rule] = {}

    def op(self, *packets: str) -> Callable[[Rule], Rule]:
        """Register a rule for aten op packets such as ``"aten.convolution"`` (in-place ``add_`` maps to ``add``)."""

        def wrap(fn: Rule) -> Rule:
            for p in packets:
                self.op_rules[p] = fn
            return fn

        return wrap

    def op_rule(self, packet: str) -> Rule | None:
        rule = self.op_rules.get(packet)
        if rule is None and packet.endswith("_") and not packet.endswith("__"):
            rule = self.op_rules.get(packet[:-1])
        return rule

    def count(self, trace: OpTrace) -> Counts:  # pragma: no cover - abstract
        raise NotImplementedError


CONVENTIONS: dict[str, Convention] = {}


def register_convention(conv: Convention) -> Convention:
    CONVENTIONS[conv.name] = conv
    return conv


def get_convention(name: str | Convention) -> Convention:
    """The convention called ``name``; raises :class:`UsageError` listing the known ones."""
    if isinstance(name, Convention):
        return name
    from . import full, fvcore, ntire2022  # noqa: F401  (register the built-in conventions)

    try:
        return CONVENTIONS[name]
    except KeyError:
        raise UsageError(f"unknown convention {name!r}; choose one of {', '.join(sorted(CONVENTIONS))}") from None

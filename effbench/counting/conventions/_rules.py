"""Op rules collected by family in their own modules before a convention takes them all
(:meth:`RuleTable.register_into`): the ``full`` convention's rules are split this way, one module per op family."""

from __future__ import annotations

from collections.abc import Callable

from .._records import OpCall
from . import ZERO, Convention, Cost, Rule

__all__ = ["RuleTable", "data_movement"]


def data_movement(op: OpCall) -> Cost:
    """An op that moves data but does no arithmetic: 0 FLOPs (its output bytes are reported)."""
    return ZERO


class RuleTable:
    """Rules for op packets (``"aten.add"``) in the order they were declared."""

    def __init__(self) -> None:
        self.entries: list[tuple[tuple[str, ...], Rule]] = []

    def op(self, *packets: str) -> Callable[[Rule], Rule]:
        """Declare ``fn`` the rule of ``packets`` (a decorator, as :meth:`Convention.op`)."""

        def add(fn: Rule) -> Rule:
            self.entries.append((packets, fn))
            return fn

        return add

    def zero(self, *packets: str) -> None:
        """Declare ops that move data but do no arithmetic."""
        self.op(*packets)(data_movement)

    def register_into(self, convention: Convention) -> None:
        """Register every rule in ``convention`` (a packet registered twice raises, as there)."""
        for packets, fn in self.entries:
            convention.op(*packets)(fn)

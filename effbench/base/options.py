"""Frozen option sets that a caller may also give as keywords: one check for every entry point that takes them
(``benchmark``'s ``BenchOptions``, ``psd``'s ``PSDOptions``, ``run_study``'s ``StudySettings``)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

__all__ = ["with_changes"]

T = TypeVar("T")


def with_changes(options: T, changes: dict[str, Any], *, caller: str, what: str = "option") -> T:
    """A copy of the dataclass ``options`` with ``changes`` (``options`` itself when there are none); a name that
    is not one of its fields is a :class:`TypeError` naming ``caller`` and listing the fields."""
    if not changes:
        return options
    known = sorted(f.name for f in fields(options))  # type: ignore[arg-type]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise TypeError(f"{caller}() got unknown {what}(s) {', '.join(unknown)}; {what}s: {', '.join(known)}")
    return replace(options, **changes)  # type: ignore[type-var]
